"""What holds the pipeline's files and memory: the bucket, the job's code in it, the audit table."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from typing import Any

from glueline.ops.deploy.aws import TABLE_STATE, normalized_policy, policy_document, read_tags, tag_drift, tag_list
from glueline.ops.deploy.models import Action, APICall, Change, Step, Wait
from glueline.ops.deploy.plans.base import Planning


def bucket(p: Planning) -> list[Change]:
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
    if "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=name):
        changed.append("EventBridge notifications")
    if p.desired.bucket_policy is not None:
        try:
            policy = policy_document(s3.get_bucket_policy(Bucket=name)["Policy"])
        except s3.exceptions.ClientError:
            policy = {}
        if normalized_policy(policy) != normalized_policy(p.desired.bucket_policy):
            changed.append("TLS-only policy")
    try:
        rules = s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    except s3.exceptions.ClientError:
        rules = []
    by_id = lambda rule: rule["ID"]  # noqa: E731
    if sorted(rules, key=by_id) != sorted(p.desired.bucket_lifecycle["Rules"], key=by_id):
        changed.append("lifecycle rules")
    missing = []
    for prefix in p.desired.bucket_prefixes:
        try:
            s3.head_object(Bucket=name, Key=prefix)
        except s3.exceptions.ClientError:
            missing.append(prefix)
    changed += missing
    return [p.change(resource, "s3 bucket", changed, _bucket_settings(p, missing), tags=tags)]


def _bucket_settings(p: Planning, prefixes: Sequence[str]) -> list[Step]:
    """Everything a bucket of the pipeline's has, and the empty markers of ``prefixes``."""
    name, desired = p.desired.bucket, p.desired
    return [
        APICall("s3", "put_bucket_tagging", {"Bucket": name, "Tagging": {"TagSet": tag_list(p.tags)}}),
        APICall(
            "s3",
            "put_public_access_block",
            {"Bucket": name, "PublicAccessBlockConfiguration": p.desired.bucket_public_access_block},
        ),
        APICall(
            "s3",
            "put_bucket_notification_configuration",
            {"Bucket": name, "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
        ),
        *(
            [APICall("s3", "put_bucket_policy", {"Bucket": name, "Policy": json.dumps(desired.bucket_policy)})]
            if desired.bucket_policy is not None
            else []
        ),
        APICall(
            "s3",
            "put_bucket_lifecycle_configuration",
            {"Bucket": name, "LifecycleConfiguration": desired.bucket_lifecycle},
        ),
        *(APICall("s3", "put_object", {"Bucket": name, "Key": prefix, "Body": b""}) for prefix in prefixes),
    ]


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
    recovery = APICall(
        "dynamodb",
        "update_continuous_backups",
        {"TableName": name, "PointInTimeRecoverySpecification": p.desired.audit_table_recovery},
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
