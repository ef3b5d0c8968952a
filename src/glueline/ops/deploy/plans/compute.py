"""What runs: the Lambda (its log group, its on-failure queue, the function, the rules that invoke it)
and the Glue job with its network connection."""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from glueline.ops.deploy.aws import NO_SUCH_QUEUE, read_tags, tag_drift, tag_list
from glueline.ops.deploy.desired import LAMBDA_DESCRIPTION
from glueline.ops.deploy.models import Action, APICall, Change, Step, Wait
from glueline.ops.deploy.plans.base import Planning
from glueline.shared.awserrors import error_code

# What Lambda answers CreateFunction while a role just made (or its policy) has not reached it yet: IAM is
# eventually consistent. Any other InvalidParameterValueException is a mistake, failed at once.
ROLE_NOT_YET = ("cannot be assumed by Lambda", "The provided execution role does not have permissions")
# Lambda refuses a reservation that leaves the account fewer unreserved concurrent executions than 100
# (PutFunctionConcurrency's reference), or than its whole limit where that is lower (10 for a new account).
UNRESERVED_MINIMUM = 100


def failure_queue(p: Planning) -> list[Change]:
    """The on-failure destination of the Lambda's asynchronous invocations (EventBridge's): an event the
    Lambda failed on after its retries is kept 14 days, encrypted, for an operator to replay. An attribute
    an emulator does not answer back is not counted as drift."""
    sqs = p.client("sqs")
    wanted = p.desired.failure_queue
    name = wanted["QueueName"]
    resource = f"sqs queue {name}"
    detail = "on-failure destination of the Lambda"
    try:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    except sqs.exceptions.ClientError as err:
        if error_code(err) not in NO_SUCH_QUEUE:
            raise
        return [
            p.change(resource, "sqs queue", None, [APICall("sqs", "create_queue", {**wanted, "tags": p.tags})], detail)
        ]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
    changed = [k for k, v in wanted["Attributes"].items() if k in attributes and attributes[k] != v]
    tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
    changed += tag_drift(tags, p.tags)
    steps = [
        APICall("sqs", "set_queue_attributes", {"QueueUrl": url, "Attributes": wanted["Attributes"]}),
        APICall("sqs", "tag_queue", {"QueueUrl": url, "Tags": p.tags}),
    ]
    return [p.change(resource, "sqs queue", changed, steps, detail, tags=tags)]


def glue_connection(p: Planning) -> list[Change]:
    glue = p.client("glue")
    connection = p.desired.glue_connection
    name = connection["Name"]
    resource = f"glue connection {name}"
    wanted = connection["PhysicalConnectionRequirements"]
    detail = f"{wanted['SubnetId']} ({wanted['AvailabilityZone']})"
    try:
        current = glue.get_connection(Name=name)["Connection"]
    except glue.exceptions.EntityNotFoundException:
        create = APICall("glue", "create_connection", {"ConnectionInput": connection, "Tags": p.tags})
        return [p.change(resource, "glue connection", None, [create], detail)]
    arn = p.desired.glue_connection_arn
    tags = glue.get_tags(ResourceArn=arn).get("Tags", {})
    requirements = current.get("PhysicalConnectionRequirements", {})
    changed = [k for k, v in wanted.items() if requirements.get(k) != v] + tag_drift(tags, p.tags)
    steps = [
        APICall("glue", "update_connection", {"Name": name, "ConnectionInput": connection}),
        APICall("glue", "tag_resource", {"ResourceArn": arn, "TagsToAdd": p.tags}),
    ]
    return [p.change(resource, "glue connection", changed, steps, detail, tags=tags)]


def glue_jobs(p: Planning) -> list[Change]:
    """The ETL's job and, where deploy makes the job's database login, the login job."""
    d = p.desired
    login = [_glue_job(p, d.login_job_name, d.login_job, d.login_job_arn)] if d.login_job else []
    return [_glue_job(p, d.glue_job_name, d.glue_job, d.glue_job_arn), *login]


def _glue_job(p: Planning, name: str, wanted: dict, arn: str) -> Change:
    glue = p.client("glue")
    resource = f"glue job {name}"
    detail = f"Glue {wanted['GlueVersion']}"
    try:
        current = glue.get_job(JobName=name)["Job"]
    except glue.exceptions.EntityNotFoundException:
        create = APICall("glue", "create_job", {"Name": name, "Tags": p.tags, **wanted})
        return p.change(resource, "glue job", None, [create], detail)
    tags = glue.get_tags(ResourceArn=arn).get("Tags", {})
    changed = [k for k, v in wanted.items() if current.get(k) != v] + tag_drift(tags, p.tags)
    steps = [
        APICall("glue", "update_job", {"JobName": name, "JobUpdate": wanted}),
        APICall("glue", "tag_resource", {"ResourceArn": arn, "TagsToAdd": p.tags}),
    ]
    return p.change(resource, "glue job", changed, steps, detail, tags=tags)


def lambda_logs(p: Planning) -> list[Change]:
    """The Lambda's log group, made before the function (which would make it, kept forever) with a
    retention. Not tagged as ours to adopt: a function of an earlier deploy may have made it. Glue's log
    groups (/aws-glue/jobs/…) are every job's in the account: left as they are."""
    logs = p.client("logs")
    wanted = p.desired.lambda_log_group
    name, days = wanted["logGroupName"], wanted["retentionInDays"]
    resource = f"log group {name}"
    retention = APICall("logs", "put_retention_policy", {"logGroupName": name, "retentionInDays": days})
    found = [
        group
        for group in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if group["logGroupName"] == name
    ]
    if not found:
        create = APICall("logs", "create_log_group", {"logGroupName": name, "tags": p.tags})
        return [p.change(resource, "log group", None, [create, retention], f"kept {days} days")]
    changed = [] if found[0].get("retentionInDays") == days else ["retention"]
    return [p.change(resource, "log group", changed, [retention], f"kept {days} days")]


def lambda_function(p: Planning, code: bytes) -> list[Change]:
    """The function with ``code`` (its zip), its reserved concurrency and its asynchronous invocations'
    retries and on-failure destination."""
    lam = p.client("lambda")
    function = p.desired.lambda_function_name
    sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
    config = p.desired.lambda_function
    resource = f"lambda {function}"

    def ready(waiter: str) -> Wait:
        what = f"the Lambda function {function} to be ready"
        state = "Configuration.State" if waiter == "function_active_v2" else "Configuration.LastUpdateStatus"
        return Wait("lambda", waiter, what, 1, 300, {"FunctionName": function}, state)

    try:
        found = lam.get_function(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException:
        found = None
    reserved = (found or {}).get("Concurrency", {}).get("ReservedConcurrentExecutions")
    unreservable = _unreservable(p, lam, reserved or 0) if reserved != p.desired.lambda_concurrency else ""
    if unreservable:
        return [Change(resource, "lambda function", Action.CONFLICT, [], unreservable)]
    if found is None:
        create = {
            "FunctionName": function,
            "Code": {"ZipFile": code},
            "Description": LAMBDA_DESCRIPTION,
            "Tags": p.tags,
            **config,
        }
        # A new IAM role takes seconds to become assumable by Lambda on AWS.
        steps: list[Step] = [
            APICall(
                "lambda",
                "create_function",
                create,
                retry_while="InvalidParameterValueException",
                retry_messages=ROLE_NOT_YET,
            ),
            ready("function_active_v2"),
            *_concurrency(p),
            _invoke_config(p),
        ]
        return [p.change(resource, "lambda function", None, steps)]
    current = found["Configuration"]
    tags = lam.list_tags(Resource=current["FunctionArn"]).get("Tags", {})
    changed = [k for k, v in config.items() if current.get(k) != v] + tag_drift(tags, p.tags)
    steps = []
    if reserved != p.desired.lambda_concurrency:
        changed.append("reserved concurrency")
        steps += _concurrency(p)
    try:
        invoke_config = lam.get_function_event_invoke_config(FunctionName=function)
    except lam.exceptions.ResourceNotFoundException:
        invoke_config = {}
    if any(invoke_config.get(k) != v for k, v in p.desired.lambda_invoke_config.items()):
        changed.append("retries and on-failure destination")
        steps.append(_invoke_config(p))
    if current.get("CodeSha256") != sha:
        changed.insert(0, "code")
        steps += [
            APICall("lambda", "update_function_code", {"FunctionName": function, "ZipFile": code}),
            ready("function_updated_v2"),
        ]
    if set(changed) & set(config):
        steps += [
            APICall("lambda", "update_function_configuration", {"FunctionName": function, **config}),
            ready("function_updated_v2"),
        ]
    steps.append(APICall("lambda", "tag_resource", {"Resource": current["FunctionArn"], "Tags": p.tags}))
    return [p.change(resource, "lambda function", changed, steps, tags=tags)]


def _unreservable(p: Planning, lam, reserved: int) -> str:
    """Why Lambda would refuse the function's reservation ("" if it would not), ``reserved`` its
    reservation now: what the account leaves unreserved must stay at least UNRESERVED_MINIMUM, or its
    whole limit where that is lower (so an account of AWS's starting limit, 10, has none to reserve)."""
    wanted = p.desired.lambda_concurrency
    if wanted is None:
        return ""
    limit = lam.get_account_settings()["AccountLimit"]
    keep = min(UNRESERVED_MINIMUM, limit["ConcurrentExecutions"])
    left = limit["UnreservedConcurrentExecutions"] + reserved - wanted
    if left >= keep:
        return ""
    return (
        f"reserving {wanted} concurrent executions would leave the account {left} unreserved; Lambda keeps "
        f"{keep}: GLUELINE_LAMBDA_RESERVED_CONCURRENCY=0 reserves none (or ask AWS for a higher limit)"
    )


def _concurrency(p: Planning) -> list[Step]:
    function, reserved = p.desired.lambda_function_name, p.desired.lambda_concurrency
    if reserved is None:
        return [APICall("lambda", "delete_function_concurrency", {"FunctionName": function})]
    return [
        APICall(
            "lambda", "put_function_concurrency", {"FunctionName": function, "ReservedConcurrentExecutions": reserved}
        )
    ]


def _invoke_config(p: Planning) -> APICall:
    """Lambda checks that the function's role may send to the destination: a role just given that
    permission may not be effective yet."""
    params = {"FunctionName": p.desired.lambda_function_name, **p.desired.lambda_invoke_config}
    return APICall("lambda", "put_function_event_invoke_config", params, retry_while="InvalidParameterValueException")


def rules(p: Planning) -> list[Change]:
    events, lam = p.client("events"), p.client("lambda")
    desired = p.desired
    function = desired.lambda_function_name
    try:
        policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
        statements = {st["Sid"] for st in policy.get("Statement", [])}
    except lam.exceptions.ResourceNotFoundException:
        statements = set()
    changes = []
    for rule, wanted in desired.rules.items():
        # PutRule takes the pattern as JSON text
        definition = {k: json.dumps(v, sort_keys=True) if k == "EventPattern" else v for k, v in wanted.items()}
        rule_arn = desired.rule_arns[rule]
        statement_id = f"glueline-{rule}"
        detail = definition.get("ScheduleExpression", "Object Created under source/")
        steps: list[Step] = [
            APICall("events", "put_rule", {"Name": rule, "State": "ENABLED", "Tags": tag_list(p.tags), **definition}),
            APICall("events", "tag_resource", {"ResourceARN": rule_arn, "Tags": tag_list(p.tags)}),
            APICall(
                "events",
                "put_targets",
                {"Rule": rule, "Targets": [{"Id": "ETL_Lambda_Function", "Arn": desired.lambda_arn}]},
            ),
        ]
        if statement_id not in statements:
            grant = {
                "FunctionName": function,
                "StatementId": statement_id,
                "Action": "lambda:InvokeFunction",
                "Principal": "events.amazonaws.com",
                "SourceArn": rule_arn,
            }
            steps.append(APICall("lambda", "add_permission", grant, ignore="ResourceConflictException"))
        try:
            current = events.describe_rule(Name=rule)
        except events.exceptions.ResourceNotFoundException:
            changes.append(p.change(f"eventbridge rule {rule}", "eventbridge rule", None, steps, detail))
            continue
        changed = [k for k, v in definition.items() if not _same(k, current.get(k), v)]
        if current.get("State") != "ENABLED":
            changed.append("State")
        targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
        if [t["Arn"] for t in targets] != [desired.lambda_arn]:
            changed.append("target")
        tags = read_tags(events.list_tags_for_resource, ResourceARN=rule_arn)
        changed += tag_drift(tags, p.tags)
        if statement_id not in statements:
            changed.append("invoke permission")
        changes.append(p.change(f"eventbridge rule {rule}", "eventbridge rule", changed, steps, detail, tags=tags))
    return changes


def _same(key: str, current: Any, wanted: str) -> bool:
    return json.loads(current or "{}") == json.loads(wanted) if key == "EventPattern" else current == wanted
