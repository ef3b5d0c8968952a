"""The desired state as a CloudFormation template, for accounts that allow only CloudFormation and for
reviews of infrastructure as code (``glueline package --format cloudformation``).

The template is the same ``desired_state`` deploy converges to, computed from ``AccountFacts`` of
CloudFormation references instead of an account's values: ``${AWS::AccountId}``, ``${AWS::Region}``,
the parameters below, ``${GlueSecurityGroup.GroupId}``; every string holding one becomes an ``Fn::Sub``.
Nothing but the desired state is read: ``tests/unit/ops/deploy/test_parity.py`` holds the template,
rendered with what deploy finds in an account, against deploy's own calls there.

What differs from ``glueline deploy``, and why:
- The code (the Lambda's zip, the job's script, library and wheels, RDS's CA bundle where the job checks
  against it) is read from ``ArtifactsBucket`` under ``glueline/``, where ``package --artifacts DIR``
  writes it to be copied (``aws s3 sync``): a function's code must exist before the stack that creates
  the pipeline's bucket.
- The VPC's CIDR blocks are one list parameter (``VpcCidrBlocks``), each made an ingress rule of the
  endpoints' group by ``Fn::ForEach``: the template needs the ``AWS::LanguageExtensions`` transform
  (``--capabilities CAPABILITY_AUTO_EXPAND``).
- The database password is the ``DbPassword`` parameter (NoEcho), substituted into the secret; the
  host, port, database and user come from ``--db-url`` as for deploy. ``--create-database`` is not in
  the template yet: deploy creates the RDS instance.
- The bucket, the audit table and the secret hold data: ``DeletionPolicy: Retain``, as destroy keeps them.
- S3 has no folders: the empty ``source/``… markers deploy writes are not resources.
- What checkov asks and the pipeline does not do is skipped in the resource's ``Metadata``, with the
  reason (``CHECKOV_SKIPS``).
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from glueline.ops import packaging
from glueline.ops.database import Database
from glueline.ops.deploy.account import code_file
from glueline.ops.deploy.aws import tag_list
from glueline.ops.deploy.desired import (
    LAMBDA_DESCRIPTION,
    ROLE_DESCRIPTION,
    STACK_TAG,
    AccountFacts,
    DesiredState,
    Network,
    SecurityGroup,
    desired_state,
)
from glueline.settings import Settings

ARTIFACTS_PREFIX = "glueline/"
LAMBDA_ZIP = "lambda.zip"
RETAINED = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# A password is substituted into the secret's JSON as it is: no quote or backslash, which would end it.
PASSWORD_PATTERN = r'^[^"\\]+$'
# The VPC's CIDR blocks are a list parameter: each becomes an ingress rule (Fn::ForEach).
VPC_CIDRS = "${VpcCidrBlocks}"
GROUPS = {"glueline-glue": "GlueSecurityGroup", "glueline-endpoints": "EndpointsSecurityGroup"}
# What checkov (``checkov -f FILE --framework cloudformation``) asks of a resource that the pipeline does
# not do, and why: skipped on the resource itself (its ``Metadata``), where a reviewer reads the reason.
CHECKOV_SKIPS = {
    "Bucket": {
        "CKV_AWS_18": "server access logs need a bucket of their own; CloudTrail S3 data events, the account's "
        "choice, record the same requests",
        "CKV_AWS_21": "files are moved between prefixes (copied, then deleted) and each move is in the audit "
        "table; versions would keep a copy of a file per move",
    },
    "AuditTable": {
        "CKV_AWS_119": "encrypted at rest with DynamoDB's own key; a customer managed key is the "
        "account's choice (cost, key policy)"
    },
    "DbSecret": {
        "CKV_AWS_149": "encrypted with Secrets Manager's AWS managed key; a customer managed key "
        "serves cross-account access, which the pipeline has none of"
    },
    "GlueJob": {
        "CKV_AWS_195": "S3 encrypts every object the job writes (SSE-S3); a security configuration's "
        "CloudWatch and bookmark encryption take a KMS key the pipeline does not create"
    },
    "Function": {
        "CKV_AWS_116": "asynchronous failures go to FailureQueue, the on-failure destination of "
        "FunctionInvokeConfig (a dead-letter queue's successor)",
        "CKV_AWS_117": "the function calls AWS's APIs only (S3, DynamoDB, Glue, SQS), nothing in a VPC; in one "
        "it would need a NAT or an endpoint for each",
        "CKV_AWS_173": "the variables are names and the database's host, no secret; Lambda encrypts them at "
        "rest with its AWS managed key",
    },
    "FunctionLogGroup": {
        "CKV_AWS_158": "CloudWatch Logs encrypts every log group at rest; the function logs no secret"
    },
    "FailureQueue": {
        "CKV_AWS_27": "encrypted with SQS managed keys (SqsManagedSseEnabled); the check knows KmsMasterKeyId only"
    },
}


def desired(settings: Settings, database: Database) -> DesiredState:
    """The desired state with CloudFormation references for what deploy would find in an account;
    ``database`` as deploy would store it, its password the DbPassword parameter."""
    s = settings
    facts = AccountFacts(
        account="${AWS::AccountId}",
        region="${AWS::Region}",
        partition="${AWS::Partition}",
        bucket=s.bucket_name("${AWS::AccountId}", "${AWS::Region}"),
        db=replace(database.connection, password="${DbPassword}", master_secret=""),  # the user's own login
        rds_ca=database.rds_ca,
        network=Network(
            vpc_id="${VpcId}",
            subnet_id="${GlueSubnetId}",
            availability_zone="${GlueAvailabilityZone}",
            route_table_id="${RouteTableId}",
            cidrs=(VPC_CIDRS,),
            glue_group=s.glue_security_group_id or "${GlueSecurityGroup.GroupId}",
            endpoints_group="${EndpointsSecurityGroup.GroupId}",
        ),
        wheels=[wheel.name for wheel in packaging.glue_wheels(s.glue_version)],
        code_bucket="${ArtifactsBucket}",
        code_prefix=ARTIFACTS_PREFIX,
    )
    return desired_state(s, facts)


def template(settings: Settings, database: Database) -> dict[str, Any]:
    """The whole stack as a template, read from the desired state alone."""
    state = desired(settings, database)
    resources = {**_storage(state), **_network(state), **_roles(state), **_compute(state)}
    for logical, skips in _checkov_skips(state).items():
        skipped = [{"id": check, "comment": reason} for check, reason in skips.items()]
        resources[logical] = {**resources[logical], "Metadata": {"checkov": {"skip": skipped}}}
    document: dict[str, Any] = {"AWSTemplateFormatVersion": "2010-09-09"}
    if any(logical.startswith("Fn::ForEach::") for logical in resources):
        document["Transform"] = "AWS::LanguageExtensions"  # the VPC's CIDR blocks, a rule each
    return document | {
        "Description": f"glueline {state.tags[STACK_TAG]}: S3 → EventBridge → Lambda → Glue → PostgreSQL batch ETL",
        "Parameters": _parameters(state),
        "Resources": _substituted(resources),
    }


def _checkov_skips(desired: DesiredState) -> dict[str, dict[str, str]]:
    """CHECKOV_SKIPS, and the function's concurrency where the settings reserve none."""
    if desired.lambda_concurrency is not None:
        return CHECKOV_SKIPS
    unreserved = "GLUELINE_LAMBDA_RESERVED_CONCURRENCY=0: an account whose limit is 10 has none to reserve"
    return CHECKOV_SKIPS | {"Function": {**CHECKOV_SKIPS["Function"], "CKV_AWS_115": unreserved}}


def write_artifacts(settings: Settings, database: Database, directory: Path) -> list[str]:
    """The pipeline's code as the template reads it from ``ArtifactsBucket``: ``directory`` mirrors the
    bucket (``aws s3 sync DIR s3://BUCKET``): the Lambda's zip and each file of the job's code. What was
    written, by key."""
    keys = {ARTIFACTS_PREFIX + LAMBDA_ZIP: packaging.lambda_zip()}
    keys |= {key: code_file(name, settings) for key, name in desired(settings, database).code_files.items()}
    for key, body in keys.items():
        (directory / key).parent.mkdir(parents=True, exist_ok=True)
        (directory / key).write_bytes(body)
    return sorted(keys)


def _parameters(desired: DesiredState) -> dict[str, Any]:
    parameters: dict[str, Any] = {
        "ArtifactsBucket": {
            "Type": "String",
            "Description": f"the bucket holding the pipeline's code under {ARTIFACTS_PREFIX} (package --artifacts)",
        },
        "DbPassword": {
            "Type": "String",
            "NoEcho": True,
            "AllowedPattern": PASSWORD_PATTERN,
            "ConstraintDescription": "no quote or backslash",
            "Description": "the password of the database user (kept in the Secrets Manager secret only)",
        },
        "VpcId": {"Type": "AWS::EC2::VPC::Id", "Description": "the VPC of Glue's workers and the database"},
        "GlueSubnetId": {"Type": "AWS::EC2::Subnet::Id", "Description": "the subnet of Glue's workers"},
        "GlueAvailabilityZone": {
            "Type": "AWS::EC2::AvailabilityZone::Name",
            "Description": "the availability zone of GlueSubnetId",
        },
    }
    if desired.vpc_endpoints:
        parameters["RouteTableId"] = {
            "Type": "String",
            "AllowedPattern": "rtb-[0-9a-f]+",
            "Description": "the route table of GlueSubnetId: the S3 and DynamoDB gateway endpoints route it only",
        }
        parameters["VpcCidrBlocks"] = {
            "Type": "CommaDelimitedList",
            "Description": "every CIDR block associated with VpcId: the interface endpoints answer the whole VPC, "
            "so their group admits each",
        }
    return parameters


def _logical_id(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _storage(desired: DesiredState) -> dict[str, Any]:
    table = desired.audit_table
    return {
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            **RETAINED,
            "Properties": {
                "BucketName": desired.bucket,
                "PublicAccessBlockConfiguration": desired.bucket_public_access_block,
                "NotificationConfiguration": {"EventBridgeConfiguration": {"EventBridgeEnabled": True}},
                "LifecycleConfiguration": {
                    "Rules": [
                        {
                            "Id": rule["ID"],
                            "Prefix": rule["Filter"]["Prefix"],
                            "Status": rule["Status"],
                            **({"ExpirationInDays": rule["Expiration"]["Days"]} if "Expiration" in rule else {}),
                            **(
                                {"AbortIncompleteMultipartUpload": rule["AbortIncompleteMultipartUpload"]}
                                if "AbortIncompleteMultipartUpload" in rule
                                else {}
                            ),
                        }
                        for rule in desired.bucket_lifecycle["Rules"]
                    ]
                },
                "Tags": tag_list(desired.tags),
            },
        },
        **(
            {
                "BucketPolicy": {
                    "Type": "AWS::S3::BucketPolicy",
                    "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": desired.bucket_policy},
                }
            }
            if desired.bucket_policy is not None
            else {}
        ),
        "AuditTable": {
            "Type": "AWS::DynamoDB::Table",
            **RETAINED,
            "Properties": {
                **table,
                "PointInTimeRecoverySpecification": desired.audit_table_recovery,
                "Tags": tag_list(desired.tags),
            },
        },
        "DbSecret": {
            "Type": "AWS::SecretsManager::Secret",
            **RETAINED,
            "Properties": {**desired.secret, "Tags": tag_list(desired.tags)},
        },
    }


def _network(desired: DesiredState) -> dict[str, Any]:
    """The pipeline's security groups, each rule of theirs an ingress of its own (a group may admit
    itself), the VPC's CIDR blocks one rule each; the VPC endpoints."""
    resources: dict[str, Any] = {}
    for group in (desired.glue_security_group, desired.endpoints_security_group):
        if group is not None:
            resources |= _security_group(group, desired.tags)
    for name, endpoint in desired.vpc_endpoints.items():
        service = name.rsplit(".", 1)[1]
        properties = {**endpoint, "Tags": tag_list(desired.tags)}
        resources[f"{_logical_id(service)}Endpoint"] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": properties}
    return resources


def _security_group(group: SecurityGroup, tags: dict[str, str]) -> dict[str, Any]:
    logical = GROUPS[group.name]
    resources: dict[str, Any] = {
        logical: {
            "Type": "AWS::EC2::SecurityGroup",
            "Properties": {
                "GroupName": group.name,
                "GroupDescription": group.description,
                "VpcId": group.vpc_id,
                "Tags": tag_list(tags),
            },
        }
    }
    for rule in group.ingress:
        ports = {"IpProtocol": rule["IpProtocol"], "FromPort": rule["FromPort"], "ToPort": rule["ToPort"]}
        for pair in rule.get("UserIdGroupPairs", []):
            properties = {"GroupId": group.group_id, **ports, "SourceSecurityGroupId": pair["GroupId"]}
            if pair.get("Description"):
                properties["Description"] = pair["Description"]
            # The logical id templates have had for the group admitting itself: an update keeps the rule.
            name = (
                f"{logical}SelfIngress"
                if pair["GroupId"] == group.group_id
                else f"{logical}From{_logical_id(pair['GroupId'])}"
            )
            resources[name] = {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": properties}
        for cidr in rule.get("IpRanges", []):
            properties = {
                "GroupId": group.group_id,
                **ports,
                "CidrIp": cidr["CidrIp"],
                "Description": cidr["Description"],
            }
            if cidr["CidrIp"] != VPC_CIDRS:
                resources[f"{logical}From{_logical_id(cidr['CidrIp'])}"] = {
                    "Type": "AWS::EC2::SecurityGroupIngress",
                    "Properties": properties,
                }
                continue
            resources[f"Fn::ForEach::{logical}FromTheVpc"] = [
                "Cidr",
                {"Ref": "VpcCidrBlocks"},
                {
                    f"{logical}From&{{Cidr}}": {
                        "Type": "AWS::EC2::SecurityGroupIngress",
                        "Properties": {**properties, "CidrIp": {"Ref": "Cidr"}},
                    }
                },
            ]
    return resources


def _roles(desired: DesiredState) -> dict[str, Any]:
    return {
        _logical_id(name): {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": name,
                "Description": ROLE_DESCRIPTION,
                "AssumeRolePolicyDocument": role.trust,
                "Policies": [{"PolicyName": role.policy_name, "PolicyDocument": role.policy}],
                "Tags": tag_list(desired.role_tags),
            },
        }
        for name, role in desired.roles.items()
    }


def _compute(desired: DesiredState) -> dict[str, Any]:
    connection = dict(desired.glue_connection)
    connection.pop("ConnectionProperties")  # none for a NETWORK connection
    resources: dict[str, Any] = {
        "GlueConnection": {
            "Type": "AWS::Glue::Connection",
            "Properties": {"CatalogId": "${AWS::AccountId}", "ConnectionInput": connection},
        },
        "GlueJob": {
            "Type": "AWS::Glue::Job",
            "DependsOn": [_role(desired.glue_job["Role"]), "GlueConnection"],
            "Properties": {"Name": desired.glue_job_name, **desired.glue_job, "Tags": desired.tags},
        },
        "Function": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": [_role(desired.lambda_function["Role"])],
            "Properties": {
                "FunctionName": desired.lambda_function_name,
                "Description": LAMBDA_DESCRIPTION,
                "Code": {"S3Bucket": "${ArtifactsBucket}", "S3Key": ARTIFACTS_PREFIX + LAMBDA_ZIP},
                **desired.lambda_function,
                **(
                    {"ReservedConcurrentExecutions": desired.lambda_concurrency}
                    if desired.lambda_concurrency is not None
                    else {}
                ),
                "Tags": tag_list(desired.tags),
            },
        },
        "FunctionLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            **RETAINED,
            "Properties": {
                "LogGroupName": desired.lambda_log_group["logGroupName"],
                "RetentionInDays": desired.lambda_log_group["retentionInDays"],
                "Tags": tag_list(desired.tags),
            },
        },
        "FailureQueue": {
            "Type": "AWS::SQS::Queue",
            **RETAINED,
            "Properties": {
                "QueueName": desired.failure_queue["QueueName"],
                "MessageRetentionPeriod": int(desired.failure_queue["Attributes"]["MessageRetentionPeriod"]),
                "SqsManagedSseEnabled": True,
                "Tags": tag_list(desired.tags),
            },
        },
        "FunctionInvokeConfig": {
            "Type": "AWS::Lambda::EventInvokeConfig",
            "DependsOn": ["FailureQueue"],
            "Properties": {
                "FunctionName": {"Ref": "Function"},
                "Qualifier": "$LATEST",
                **desired.lambda_invoke_config,
            },
        },
    }
    for name, rule in desired.rules.items():
        logical = _logical_id(name)
        resources[logical] = {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "Name": name,
                **rule,
                "State": "ENABLED",
                "Targets": [{"Id": "ETL_Lambda_Function", "Arn": {"Fn::GetAtt": ["Function", "Arn"]}}],
                "Tags": tag_list(desired.tags),
            },
        }
        resources[f"{logical}Permission"] = {
            "Type": "AWS::Lambda::Permission",
            "Properties": {
                "FunctionName": {"Ref": "Function"},
                "Action": "lambda:InvokeFunction",
                "Principal": "events.amazonaws.com",
                "SourceArn": {"Fn::GetAtt": [logical, "Arn"]},
            },
        }
    return resources


def _role(role_arn: str) -> str:
    """The logical id of the role an ARN names."""
    return _logical_id(role_arn.rsplit("/", 1)[1])


def _substituted(value: Any) -> Any:
    """Every string holding a ``${…}`` reference as ``Fn::Sub`` (one that is nothing but a reference as
    ``Ref`` or ``Fn::GetAtt``); intrinsic functions left as they are."""
    if isinstance(value, str):
        whole = re.fullmatch(r"\$\{([^}]+)\}", value)
        if whole and "::" not in whole.group(1):
            name, _, attribute = whole.group(1).partition(".")
            return {"Fn::GetAtt": [name, attribute]} if attribute else {"Ref": name}
        return {"Fn::Sub": value} if "${" in value else value
    if isinstance(value, list):
        return [_substituted(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub"):
            return value
        return {k: _substituted(v) for k, v in value.items()}
    return value


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
