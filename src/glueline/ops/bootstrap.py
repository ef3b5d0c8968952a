"""Create or converge every resource of the pipeline, idempotently, on whatever the AWS configuration
points at (the embedded stack, LocalStack, or a real account): one code path for all.

Each step compares what exists with what should exist and reports ``created``, ``updated`` or
``unchanged``; a second run changes nothing and says so.

Least privilege instead of the FullAccess policies of the AWS console walkthrough glueline grew from (see
the README): every statement names its actions and the pipeline's own resources (this bucket's prefixes,
this table, this job, this secret, these log groups). EventBridge invokes the Lambda through the
function's resource policy, scoped to the two rules (``EventBridgeInvokeLambdaRole`` is created as in the
walkthrough, allowed to invoke only this function).
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import boto3
import psycopg

from glueline.job import schema
from glueline.ops import packaging
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import table_spec
from glueline.shared.dbsecret import DbConnection

PSYCOPG_REQUIREMENT = "psycopg[binary]==3.3.9"
LAMBDA_RUNTIME = "python3.11"


@dataclass
class Change:
    resource: str
    action: str  # created | updated | unchanged | skipped
    detail: str = ""


def _trust(service: str) -> dict:
    return {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}],
    }


def _policy(*statements: tuple[list[str], list[str]] | tuple[list[str], list[str], dict]) -> dict:
    body = []
    for statement in statements:
        actions, resources, *condition = statement
        item = {"Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources)}
        if condition:
            item["Condition"] = condition[0]
        body.append(item)
    return {"Version": "2012-10-17", "Statement": body}


def _document(value: Any) -> dict:
    """IAM answers with policy documents as dicts, JSON or URL-encoded JSON depending on the service."""
    if isinstance(value, str):
        value = json.loads(unquote(value))
    return value


def _normalized(document: dict) -> dict:
    def listify(v):
        return sorted(v) if isinstance(v, list) else [v]

    statements = []
    for s in document.get("Statement", []):
        s = dict(s)
        for key in ("Action", "Resource"):
            if key in s:
                s[key] = listify(s[key])
        statements.append(s)
    return {"Statement": statements}


class Bootstrap:
    def __init__(self, settings: Settings, db: DbConnection, session: boto3.Session | None = None, log=print):
        self.settings = settings
        self.db = db
        self.session = session or boto3.Session()
        self.log = log
        self.changes: list[Change] = []
        self.region = self.session.region_name or settings.region
        self.account = self.session.client("sts").get_caller_identity()["Account"]
        self.bucket = settings.bucket_name(self.account, self.region)
        self.target = db.target(str(settings.table))  # where the rows go; part of every FileID

    # -- names and ARNs -----------------------------------------------------------------------------

    def arn(self, service: str, resource: str) -> str:
        region = "" if service in ("iam", "s3") else self.region
        account = "" if service == "s3" else self.account
        return f"arn:aws:{service}:{region}:{account}:{resource}"

    @property
    def lambda_arn(self) -> str:
        return self.arn("lambda", f"function:{self.settings.lambda_function}")

    @property
    def role_arns(self) -> dict[str, str]:
        s = self.settings
        return {name: self.arn("iam", f"role/{name}") for name in (s.lambda_role, s.glue_role, s.events_role)}

    def client(self, service: str):
        return self.session.client(service, region_name=self.region)

    # -- the whole run ------------------------------------------------------------------------------

    def run(self) -> list[Change]:
        steps: list[Callable[[], None]] = [
            self.ensure_bucket,
            self.ensure_audit_table,
            self.ensure_roles,
            self.ensure_secret,
            self.ensure_glue_job,
            self.ensure_lambda,
            self.ensure_rules,
            self.ensure_database_schema,
        ]
        for step in steps:
            step()
        return self.changes

    def _record(self, resource: str, action: str, detail: str = "") -> None:
        change = Change(resource, action, detail)
        self.changes.append(change)
        self.log(change)

    # -- S3 -----------------------------------------------------------------------------------------

    def ensure_bucket(self) -> None:
        s3 = self.client("s3")
        name = f"s3://{self.bucket}"
        try:
            s3.head_bucket(Bucket=self.bucket)
            action = "unchanged"
        except s3.exceptions.ClientError:
            kwargs: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            s3.create_bucket(**kwargs)
            s3.put_public_access_block(
                Bucket=self.bucket,
                PublicAccessBlockConfiguration={
                    "BlockPublicAcls": True,
                    "IgnorePublicAcls": True,
                    "BlockPublicPolicy": True,
                    "RestrictPublicBuckets": True,
                },
            )
            action = "created"
        self._record(name, action)
        for prefix in layout.ALL_PREFIXES:
            try:
                s3.head_object(Bucket=self.bucket, Key=prefix)
            except s3.exceptions.ClientError:
                s3.put_object(Bucket=self.bucket, Key=prefix, Body=b"")
                self._record(f"{name}/{prefix}", "created")
        notification = s3.get_bucket_notification_configuration(Bucket=self.bucket)
        if "EventBridgeConfiguration" in notification:
            self._record(f"{name} EventBridge notifications", "unchanged")
        else:
            s3.put_bucket_notification_configuration(
                Bucket=self.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
            )
            self._record(f"{name} EventBridge notifications", "created")

    def _upload_if_changed(self, key: str, body: bytes) -> None:
        s3 = self.client("s3")
        md5 = hashlib.md5(body).hexdigest()
        try:
            current = s3.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        except s3.exceptions.ClientError:
            current = None
        if current == md5:
            self._record(f"s3://{self.bucket}/{key}", "unchanged")
            return
        s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        self._record(f"s3://{self.bucket}/{key}", "created" if current is None else "updated")

    # -- DynamoDB -----------------------------------------------------------------------------------

    def ensure_audit_table(self) -> None:
        ddb = self.client("dynamodb")
        name = self.settings.audit_table
        try:
            ddb.describe_table(TableName=name)
            self._record(f"dynamodb {name}", "unchanged")
        except ddb.exceptions.ResourceNotFoundException:
            ddb.create_table(**table_spec(name))
            ddb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 120})
            self._record(f"dynamodb {name}", "created")

    # -- IAM ----------------------------------------------------------------------------------------

    def role_policies(self) -> dict[str, tuple[str, dict]]:
        """Role name → (trusted service, inline policy)."""
        s = self.settings
        bucket = self.arn("s3", self.bucket)
        objects = lambda prefix: f"{bucket}/{prefix}*"  # noqa: E731
        table = self.arn("dynamodb", f"table/{s.audit_table}")
        index = f"{table}/index/*"
        lambda_logs = self.arn("logs", f"log-group:/aws/lambda/{s.lambda_function}")
        glue_logs = self.arn("logs", "log-group:/aws-glue/*")
        secret = self.arn("secretsmanager", f"secret:{s.db_secret_name}-??????")
        return {
            s.lambda_role: (
                "lambda.amazonaws.com",
                _policy(
                    (["logs:CreateLogGroup"], [lambda_logs]),
                    (["logs:CreateLogStream", "logs:PutLogEvents"], [f"{lambda_logs}:*"]),
                    (["s3:ListBucket"], [bucket], {"StringLike": {"s3:prefix": [layout.SOURCE + "*"]}}),
                    (["s3:GetObject"], [objects(layout.SOURCE)]),
                    (["s3:PutObject"], [objects(layout.PROCESSED), objects(layout.REJECTED)]),
                    (["s3:DeleteObject"], [objects(layout.SOURCE)]),
                    (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [table]),
                    (["dynamodb:Query"], [index]),
                    (["glue:StartJobRun", "glue:GetJobRun"], [self.arn("glue", f"job/{s.glue_job}")]),
                ),
            ),
            s.glue_role: (
                "glue.amazonaws.com",
                _policy(
                    (["s3:ListBucket"], [bucket]),
                    (["s3:GetObject"], [objects(layout.SOURCE), objects(layout.SCRIPTS), objects(layout.TEMP)]),
                    (
                        ["s3:PutObject"],
                        [objects(layout.PROCESSED), objects(layout.REJECTED), objects(layout.TEMP)],
                    ),
                    (["s3:DeleteObject"], [objects(layout.SOURCE), objects(layout.TEMP)]),
                    (["dynamodb:GetItem", "dynamodb:UpdateItem"], [table]),
                    (["dynamodb:Query"], [index]),
                    (["secretsmanager:GetSecretValue"], [secret]),
                    (["glue:GetJobRun"], [self.arn("glue", f"job/{s.glue_job}")]),
                    (
                        ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                        [glue_logs, f"{glue_logs}:*"],
                    ),
                ),
            ),
            s.events_role: (
                "events.amazonaws.com",
                _policy((["lambda:InvokeFunction"], [self.lambda_arn])),
            ),
        }

    def ensure_roles(self) -> None:
        iam = self.client("iam")
        for role, (service, policy) in self.role_policies().items():
            trust = _trust(service)
            try:
                current = iam.get_role(RoleName=role)["Role"]
                action = "unchanged"
                if _normalized(_document(current["AssumeRolePolicyDocument"])) != _normalized(trust):
                    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
                    action = "updated"
            except iam.exceptions.NoSuchEntityException:
                iam.create_role(
                    RoleName=role,
                    AssumeRolePolicyDocument=json.dumps(trust),
                    Description="glueline: least-privilege role of the batch ETL pipeline",
                )
                action = "created"
            policy_name = f"{role}Policy"
            try:
                existing = _document(iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"])
            except iam.exceptions.NoSuchEntityException:
                existing = None
            if existing is None or _normalized(existing) != _normalized(policy):
                iam.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(policy))
                action = "created" if action == "created" else "updated"
            self._record(f"iam role {role}", action)

    # -- Secrets Manager ----------------------------------------------------------------------------

    def ensure_secret(self) -> None:
        sm = self.client("secretsmanager")
        name = self.settings.db_secret_name
        value = self.db.secret_string()
        try:
            current = sm.get_secret_value(SecretId=name)["SecretString"]
        except sm.exceptions.ResourceNotFoundException:
            sm.create_secret(Name=name, SecretString=value, Description="glueline: PostgreSQL connection")
            self._record(f"secret {name}", "created", self.db.url(with_password=False))
            return
        if current == value:
            self._record(f"secret {name}", "unchanged", self.db.url(with_password=False))
        else:
            sm.put_secret_value(SecretId=name, SecretString=value)
            self._record(f"secret {name}", "updated", self.db.url(with_password=False))

    # -- Glue ---------------------------------------------------------------------------------------

    def glue_job_definition(self) -> dict[str, Any]:
        s = self.settings
        scripts = f"s3://{self.bucket}/{layout.SCRIPTS}"
        return {
            "Description": "glueline: clean, validate and load transaction files into PostgreSQL",
            "Role": self.role_arns[s.glue_role],
            "Command": {
                "Name": "glueetl",
                "ScriptLocation": scripts + packaging.GLUE_SCRIPT,
                "PythonVersion": "3",
            },
            "DefaultArguments": {
                "--job-language": "python",
                "--job-bookmark-option": "job-bookmark-enable",
                "--TempDir": f"s3://{self.bucket}/{layout.TEMP}",
                "--extra-py-files": scripts + packaging.GLUE_LIBRARY,
                "--additional-python-modules": PSYCOPG_REQUIREMENT,
                "--enable-continuous-cloudwatch-log": "true",
                "--AUDIT_TABLE": s.audit_table,
                "--DB_SECRET_ID": s.db_secret_name,
                "--TARGET_TABLE": str(s.table),
                "--TARGET": self.target,
                "--MAX_ATTEMPTS": str(s.max_attempts),
            },
            "ExecutionProperty": {"MaxConcurrentRuns": s.glue_max_concurrent_runs},
            "MaxRetries": 0,
            "Timeout": s.glue_timeout_minutes,
            "GlueVersion": s.glue_version,
            "WorkerType": s.glue_worker_type,
            "NumberOfWorkers": s.glue_workers,
        }

    def ensure_glue_job(self) -> None:
        self._upload_if_changed(
            layout.SCRIPTS + packaging.GLUE_SCRIPT, packaging.glue_script()
        )
        self._upload_if_changed(layout.SCRIPTS + packaging.GLUE_LIBRARY, packaging.glue_library_zip())
        glue = self.client("glue")
        name = self.settings.glue_job
        wanted = self.glue_job_definition()
        try:
            current = glue.get_job(JobName=name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            glue.create_job(Name=name, **wanted)
            self._record(f"glue job {name}", "created", f"Glue {wanted['GlueVersion']}")
            return
        if all(current.get(k) == v for k, v in wanted.items()):
            self._record(f"glue job {name}", "unchanged", f"Glue {wanted['GlueVersion']}")
        else:
            glue.update_job(JobName=name, JobUpdate=wanted)
            self._record(f"glue job {name}", "updated", f"Glue {wanted['GlueVersion']}")

    # -- Lambda -------------------------------------------------------------------------------------

    def lambda_environment(self) -> dict[str, str]:
        env = {
            "AUDIT_TABLE": self.settings.audit_table,
            "GLUE_JOB_NAME": self.settings.glue_job,
            "SOURCE_BUCKET": self.bucket,
            "MAX_ATTEMPTS": str(self.settings.max_attempts),
            "TARGET": self.target,
        }
        # Where Glue is not AWS's own (the local runner), tell the function through the standard
        # variable; on AWS nothing is added.
        glue_endpoint = self.client("glue").meta.endpoint_url
        if "amazonaws.com" not in glue_endpoint:
            env["AWS_ENDPOINT_URL_GLUE"] = glue_endpoint
        return env

    def ensure_lambda(self) -> None:
        lam = self.client("lambda")
        s = self.settings
        code = packaging.lambda_zip()
        sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
        config = {
            "Role": self.role_arns[s.lambda_role],
            "Handler": packaging.LAMBDA_HANDLER,
            "Runtime": LAMBDA_RUNTIME,
            "Timeout": s.lambda_timeout_seconds,
            "MemorySize": 256,
            "Environment": {"Variables": self.lambda_environment()},
        }
        name = f"lambda {s.lambda_function}"
        try:
            current = lam.get_function(FunctionName=s.lambda_function)["Configuration"]
        except lam.exceptions.ResourceNotFoundException:
            self._retry_role_propagation(
                lambda: lam.create_function(
                    FunctionName=s.lambda_function,
                    Code={"ZipFile": code},
                    Description="glueline: integrity check, audit and Glue start for new files",
                    **config,
                )
            )
            lam.get_waiter("function_active_v2").wait(FunctionName=s.lambda_function)
            self._record(name, "created")
            return
        action = "unchanged"
        if current.get("CodeSha256") != sha:
            lam.update_function_code(FunctionName=s.lambda_function, ZipFile=code)
            lam.get_waiter("function_updated_v2").wait(FunctionName=s.lambda_function)
            action = "updated"
        if any(current.get(k) != v for k, v in config.items()):
            lam.update_function_configuration(FunctionName=s.lambda_function, **config)
            lam.get_waiter("function_updated_v2").wait(FunctionName=s.lambda_function)
            action = "updated"
        self._record(name, action)

    @staticmethod
    def _retry_role_propagation(call: Callable[[], Any], attempts: int = 10) -> Any:
        """A new IAM role takes seconds to become assumable by Lambda on AWS."""
        for attempt in range(attempts):
            try:
                return call()
            except Exception as err:  # InvalidParameterValueException: role not yet assumable
                if "InvalidParameterValue" not in type(err).__name__ or attempt == attempts - 1:
                    raise
                time.sleep(3)

    # -- EventBridge --------------------------------------------------------------------------------

    def rule_definitions(self) -> dict[str, dict[str, Any]]:
        s = self.settings
        return {
            s.schedule_rule: {
                "ScheduleExpression": s.schedule_expression,
                "Description": "glueline: daily sweep of source/ at 08:00 UTC",
            },
            s.s3_rule: {
                "EventPattern": json.dumps(
                    {
                        "source": ["aws.s3"],
                        "detail-type": ["Object Created"],
                        "detail": {
                            "bucket": {"name": [self.bucket]},
                            "object": {"key": [{"prefix": layout.SOURCE}]},
                        },
                    },
                    sort_keys=True,
                ),
                "Description": "glueline: a new file under source/",
            },
        }

    def ensure_rules(self) -> None:
        events = self.client("events")
        lam = self.client("lambda")
        for rule, definition in self.rule_definitions().items():
            try:
                current = events.describe_rule(Name=rule)
                same = (
                    all(
                        (json.loads(current.get(k, "{}")) == json.loads(v))
                        if k == "EventPattern"
                        else current.get(k) == v
                        for k, v in definition.items()
                    )
                    and current.get("State") == "ENABLED"
                )
                action = "unchanged" if same else "updated"
            except events.exceptions.ResourceNotFoundException:
                action = "created"
            if action != "unchanged":
                events.put_rule(Name=rule, State="ENABLED", **definition)
            rule_arn = self.arn("events", f"rule/{rule}")
            targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
            if [t["Arn"] for t in targets] != [self.lambda_arn]:
                events.put_targets(Rule=rule, Targets=[{"Id": "ETL_Lambda_Function", "Arn": self.lambda_arn}])
                action = "updated" if action == "unchanged" else action
            statement_id = f"glueline-{rule}"
            try:
                lam.add_permission(
                    FunctionName=self.settings.lambda_function,
                    StatementId=statement_id,
                    Action="lambda:InvokeFunction",
                    Principal="events.amazonaws.com",
                    SourceArn=rule_arn,
                )
                action = "updated" if action == "unchanged" else action
            except lam.exceptions.ResourceConflictException:
                pass  # the permission exists
            detail = definition.get("ScheduleExpression", "Object Created under source/")
            self._record(f"eventbridge rule {rule}", action, detail)

    # -- PostgreSQL ---------------------------------------------------------------------------------

    def ensure_database_schema(self) -> None:
        table = self.settings.table
        with psycopg.connect(**self.db.connect_kwargs(), autocommit=True) as conn:
            exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (str(table),)).fetchone()[0]
            conn.execute(schema.create_target(table))
        self._record(f"postgres table {table}", "unchanged" if exists else "created", self.db.url(with_password=False))
