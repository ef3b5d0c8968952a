"""What holds the pipeline's files and memory: the bucket, the job's code in it, the audit table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from glueline.ops.deploy.aws import TABLE_STATE, normalized_policy, policy_document, read_tags, tag_drift, tag_list
from glueline.ops.deploy.models import Action, APICall, Change, Step, Wait
from glueline.ops.deploy.plans.base import Planning
from glueline.shared.awserrors import error_code


def bucket(p: Planning) -> list[Change]:
    """A bucket may be shared with other tools: what it has of theirs (a notification to their queue,
    their lifecycle rules, tags, policy statements) is read and kept; only the pipeline's own (EventBridge
    notifications, its rules by ID, its tags by key, its statements by Sid) are added or replaced."""
    s3, name = p.client("s3"), p.desired.bucket
    resource = f"s3://{name}"
    try:
        s3.head_bucket(Bucket=name)
    except s3.exceptions.ClientError:
        create: dict[str, Any] = {"Bucket": name}
        if p.desired.region != "us-east-1":
            create["CreateBucketConfiguration"] = {"LocationConstraint": p.desired.region}
        steps = [APICall("s3", "create_bucket", create), *_bucket_settings(p, p.desired.bucket_prefixes)]
        return [p.change(resource, "s3 bucket", None, steps)]
    tags = read_tags(s3.get_bucket_tagging, Bucket=name)
    changed = tag_drift(tags, p.tags)
    try:
        block = s3.get_public_access_block(Bucket=name)["PublicAccessBlockConfiguration"]
    except s3.exceptions.ClientError:
        block = {}
    if block != p.desired.bucket_public_access_block:
        changed.append("public access block")
    notifications = s3.get_bucket_notification_configuration(Bucket=name)
    notifications.pop("ResponseMetadata", None)
    if "EventBridgeConfiguration" not in notifications:
        changed.append("EventBridge notifications")
    policy: dict[str, Any] = {}
    if p.desired.bucket_policy is not None:
        try:
            policy = policy_document(s3.get_bucket_policy(Bucket=name)["Policy"])
        except s3.exceptions.ClientError as err:
            if error_code(err) != "NoSuchBucketPolicy":  # e.g. AccessDenied: another's statements, unknown
                raise
        present = normalized_policy({"Statement": _statements(policy)})["Statement"]
        if any(st not in present for st in normalized_policy(p.desired.bucket_policy)["Statement"]):
            changed.append("TLS-only policy")
    try:
        lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=name)
    except s3.exceptions.ClientError as err:
        if error_code(err) != "NoSuchLifecycleConfiguration":  # a put replaces them all: only what is known
            raise
        lifecycle = {}
    rules = {rule["ID"]: rule for rule in lifecycle.get("Rules", [])}
    if any(rules.get(rule["ID"]) != rule for rule in p.desired.bucket_lifecycle["Rules"]):
        changed.append("lifecycle rules")
    missing = []
    for prefix in p.desired.bucket_prefixes:
        try:
            s3.head_object(Bucket=name, Key=prefix)
        except s3.exceptions.ClientError:
            missing.append(prefix)
    changed += missing
    steps = _bucket_settings(p, missing, tags, notifications, policy, lifecycle)
    return [p.change(resource, "s3 bucket", changed, steps, tags=tags)]


def _bucket_settings(
    p: Planning,
    prefixes: Sequence[str],
    tags: dict[str, str] | None = None,
    notifications: dict[str, Any] | None = None,
    policy: dict[str, Any] | None = None,
    lifecycle: dict[str, Any] | None = None,
) -> list[Step]:
    """Everything a bucket of the pipeline's has, merged into what it has (each as read; None: nothing,
    a new bucket): S3 replaces a bucket's tags, notifications, policy and lifecycle rules as a whole. And
    the empty markers of ``prefixes``."""
    name, desired = p.desired.bucket, p.desired
    ours = desired.bucket_lifecycle["Rules"]
    rules = [r for r in (lifecycle or {}).get("Rules", []) if r["ID"] not in {o["ID"] for o in ours}] + ours
    put_lifecycle: dict[str, Any] = {"Bucket": name, "LifecycleConfiguration": {"Rules": rules}}
    if lifecycle and "TransitionDefaultMinimumObjectSize" in lifecycle:
        put_lifecycle["TransitionDefaultMinimumObjectSize"] = lifecycle["TransitionDefaultMinimumObjectSize"]
    return [
        APICall("s3", "put_bucket_tagging", {"Bucket": name, "Tagging": {"TagSet": tag_list((tags or {}) | p.tags)}}),
        APICall(
            "s3",
            "put_public_access_block",
            {"Bucket": name, "PublicAccessBlockConfiguration": p.desired.bucket_public_access_block},
        ),
        APICall(
            "s3",
            "put_bucket_notification_configuration",
            {
                "Bucket": name,
                "NotificationConfiguration": (notifications or {}) | {"EventBridgeConfiguration": {}},
                # S3 tests every SNS, SQS and Lambda destination of the configuration put: another
                # tool's queue deleted since would fail the put, though deploy only added EventBridge.
                "SkipDestinationValidation": True,
            },
        ),
        *(
            [
                APICall(
                    "s3",
                    "put_bucket_policy",
                    {"Bucket": name, "Policy": json.dumps(_policy(desired.bucket_policy, policy or {}))},
                )
            ]
            if desired.bucket_policy is not None
            else []
        ),
        APICall("s3", "put_bucket_lifecycle_configuration", put_lifecycle),
        *(APICall("s3", "put_object", {"Bucket": name, "Key": prefix, "Body": b""}) for prefix in prefixes),
    ]


def _statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements as a list (IAM also takes a single statement as an object)."""
    statements = policy.get("Statement", [])
    return [statements] if isinstance(statements, dict) else statements


def _policy(ours: dict[str, Any], current: dict[str, Any]) -> dict[str, Any]:
    """The bucket's policy with our statements put in, replacing those of our statements' Sids."""
    sids = {statement["Sid"] for statement in ours["Statement"]}
    theirs = [statement for statement in _statements(current) if statement.get("Sid") not in sids]
    return {**ours, **current, "Statement": theirs + ours["Statement"]}


def code(p: Planning, content: Callable[[str], bytes]) -> list[Change]:
    """The job's code, each file put where its bytes differ (``content``: a code file's bytes by name)."""
    s3, bucket_name = p.client("s3"), p.desired.code_bucket
    changes = []
    for key, name in p.desired.code_files.items():
        body = content(name)
        try:
            current = s3.head_object(Bucket=bucket_name, Key=key)["ETag"].strip('"')
        except s3.exceptions.ClientError:
            current = None
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()  # S3's ETag of a single-part upload
        changed = None if current is None else ([] if current == etag else ["content"])
        put = APICall("s3", "put_object", {"Bucket": bucket_name, "Key": key, "Body": body})
        changes.append(p.change(f"s3://{bucket_name}/{key}", "s3 object", changed, [put]))
    return changes


def audit_table(p: Planning) -> list[Change]:
    """An existing table is checked for the keys and the status index the pipeline queries: neither can
    be changed in place, so a table made otherwise is a conflict, not an update."""
    ddb = p.client("dynamodb")
    wanted = p.desired.audit_table
    name = wanted["TableName"]
    resource = f"dynamodb {name}"
    # Right after CreateTable, AWS may answer that continuous backups are not available yet.
    recovery = APICall(
        "dynamodb",
        "update_continuous_backups",
        {"TableName": name, "PointInTimeRecoverySpecification": p.desired.audit_table_recovery},
        retry_while="ContinuousBackupsUnavailableException",
    )
    try:
        table = ddb.describe_table(TableName=name)["Table"]
    except ddb.exceptions.ResourceNotFoundException:
        steps: list[Step] = [
            APICall("dynamodb", "create_table", {**wanted, "Tags": tag_list(p.tags)}),
            _table_ready(name),
            recovery,
        ]
        return [p.change(resource, "dynamodb table", None, steps)]
    unusable = _table_mismatch(table, wanted)
    if unusable:
        return [Change(resource, "dynamodb table", Action.CONFLICT, [], unusable)]
    arn = table["TableArn"]
    tags = read_tags(ddb.list_tags_of_resource, ResourceArn=arn)
    changed = tag_drift(tags, p.tags)
    steps = [APICall("dynamodb", "tag_resource", {"ResourceArn": arn, "Tags": tag_list(p.tags)})]
    backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    status = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if status != "ENABLED":
        changed.append("point-in-time recovery")
        steps.append(recovery)
    present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
    for index in wanted["GlobalSecondaryIndexes"]:
        if index["IndexName"] not in present:  # an index can be added in place
            changed.append(f"index {index['IndexName']}")
            update = {"AttributeDefinitions": wanted["AttributeDefinitions"]}
            update["GlobalSecondaryIndexUpdates"] = [{"Create": index}]
            steps += [
                APICall("dynamodb", "update_table", {"TableName": name, **update}),
                _table_ready(name),
            ]
    return [p.change(resource, "dynamodb table", changed, steps, tags=tags)]


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema]


def _table_mismatch(table: dict[str, Any], wanted: dict[str, Any]) -> str:
    """Why an existing audit table cannot serve the pipeline ("" if it can): its key, or an index of
    the pipeline's name on other keys. Neither changes in place; a missing index can be added."""
    if _keys(table.get("KeySchema", [])) != _keys(wanted["KeySchema"]):
        return f"its key is {_keys(table.get('KeySchema', []))}, not {_keys(wanted['KeySchema'])}: not an audit table"
    indexes = {index["IndexName"]: _keys(index["KeySchema"]) for index in table.get("GlobalSecondaryIndexes", [])}
    for index in wanted["GlobalSecondaryIndexes"]:
        name = index["IndexName"]
        if name in indexes and indexes[name] != _keys(index["KeySchema"]):
            return f"its index {name} is on {indexes[name]}, not {_keys(index['KeySchema'])}"
    return ""


def _table_ready(name: str) -> Wait:
    """The audit table created or its index added: ACTIVE again."""
    return Wait("dynamodb", "table_exists", f"the DynamoDB table {name}", 1, 120, {"TableName": name}, TABLE_STATE)
