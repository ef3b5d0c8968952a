"""The desired state as a CloudFormation template, for accounts that allow only CloudFormation and for
reviews of infrastructure as code (``glueline package --format cloudformation``).

The template is the same ``desired_state`` deploy converges to, computed from an ``Environment`` of
CloudFormation references instead of an account's values: ``${AWS::AccountId}``, ``${AWS::Region}``,
the parameters below, ``${GlueSecurityGroup.GroupId}``; every string holding one becomes an ``Fn::Sub``.

What differs from ``glueline deploy``, and why:
- The code (the Lambda's zip, the job's script, library and wheels) is read from ``ArtifactsBucket``
  under ``glueline/``, where ``package --artifacts DIR`` writes it to be copied (``aws s3 sync``): a
  function's code must exist before the stack that creates the pipeline's bucket.
- The database password is the ``DbPassword`` parameter (NoEcho), substituted into the secret; the
  host, port, database and user come from ``--db-url`` as for deploy. ``--create-database`` is not in
  the template yet: deploy creates the RDS instance.
- The bucket, the audit table and the secret hold data: ``DeletionPolicy: Retain``, as destroy keeps them.
- S3 has no folders: the empty ``source/``… markers deploy writes are not resources.
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import Any

from glueline.artifacts import GLUE_LIBRARY, GLUE_SCRIPT, GLUE_WHEELS
from glueline.ops import packaging
from glueline.ops.deploy.desired import (
    ENDPOINT_SERVICES,
    ENDPOINTS_SECURITY_GROUP,
    ENDPOINTS_SECURITY_GROUP_DESCRIPTION,
    GLUE_SECURITY_GROUP,
    GLUE_SECURITY_GROUP_DESCRIPTION,
    LAMBDA_DESCRIPTION,
    PUBLIC_ACCESS_BLOCK,
    DesiredState,
    Environment,
    desired_state,
)
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection

ARTIFACTS_PREFIX = "glueline/"
LAMBDA_ZIP = "lambda.zip"
RETAINED = {"DeletionPolicy": "Retain", "UpdateReplacePolicy": "Retain"}
# A password is substituted into the secret's JSON as it is: no quote or backslash, which would end it.
PASSWORD_PATTERN = r'^[^"\\]+$'


def template(settings: Settings, db: DbConnection, wheels: list[str]) -> dict[str, Any]:
    """The whole stack as a template; ``db`` without its password (the DbPassword parameter), ``wheels``
    the file names of the job's wheels as ``artifacts`` writes them."""
    s = settings
    group_id = s.glue_security_group_id or "${GlueSecurityGroup.GroupId}"
    env = Environment(
        account="${AWS::AccountId}",
        region="${AWS::Region}",
        bucket=s.bucket_name("${AWS::AccountId}", "${AWS::Region}"),
        target=db.target(str(s.table)),
        db_secret_string=replace(db, password="${DbPassword}").secret_string(),
        subnet_id="${GlueSubnetId}",
        availability_zone="${GlueAvailabilityZone}",
        security_group_id=group_id,
        wheels=wheels,
        code_bucket="${ArtifactsBucket}",
        code_prefix=ARTIFACTS_PREFIX,
    )
    desired = desired_state(s, env)
    resources = {
        **_storage(desired),
        **_network(s, env, desired),
        **_roles(desired),
        **_compute(s, desired),
    }
    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": f"glueline {s.stack}: S3 → EventBridge → Lambda → Glue → PostgreSQL batch ETL",
        "Parameters": _parameters(s),
        "Resources": _substituted(resources),
    }


def _parameters(s: Settings) -> dict[str, Any]:
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
    if s.vpc_endpoints:
        parameters["RouteTableId"] = {
            "Type": "String",
            "AllowedPattern": "rtb-[0-9a-f]+",
            "Description": "the route table of GlueSubnetId: the S3 and DynamoDB gateway endpoints route it only",
        }
        parameters["VpcCidrBlock"] = {
            "Type": "String",
            "AllowedPattern": r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}",
            "Description": "the CIDR block of VpcId: the interface endpoints answer the whole VPC, so admit it",
        }
    return parameters


def _tags(desired: DesiredState) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(desired.tags.items())]


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
                "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK,
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
                "Tags": _tags(desired),
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
                "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
                "Tags": _tags(desired),
            },
        },
        "DbSecret": {
            "Type": "AWS::SecretsManager::Secret",
            **RETAINED,
            "Properties": {**desired.secret, "Tags": _tags(desired)},
        },
    }


def _network(s: Settings, env: Environment, desired: DesiredState) -> dict[str, Any]:
    tags = _tags(desired)
    resources: dict[str, Any] = {}
    if not s.glue_security_group_id:
        resources["GlueSecurityGroup"] = _security_group(GLUE_SECURITY_GROUP, GLUE_SECURITY_GROUP_DESCRIPTION, tags)
        resources["GlueSecurityGroupSelfIngress"] = {
            "Type": "AWS::EC2::SecurityGroupIngress",
            "Properties": {
                "GroupId": {"Fn::GetAtt": ["GlueSecurityGroup", "GroupId"]},
                "IpProtocol": "tcp",
                "FromPort": 0,
                "ToPort": 65535,
                "SourceSecurityGroupId": {"Fn::GetAtt": ["GlueSecurityGroup", "GroupId"]},
                "Description": "Glue's workers talk to each other",
            },
        }
    if s.vpc_endpoints:
        https = {
            "IpProtocol": "tcp",
            "FromPort": 443,
            "ToPort": 443,
            "CidrIp": {"Ref": "VpcCidrBlock"},
            "Description": "HTTPS from the VPC",
        }
        resources["EndpointsSecurityGroup"] = _security_group(
            ENDPOINTS_SECURITY_GROUP, ENDPOINTS_SECURITY_GROUP_DESCRIPTION, tags, SecurityGroupIngress=[https]
        )
        for service, kind in ENDPOINT_SERVICES.items():
            properties: dict[str, Any] = {
                "ServiceName": f"com.amazonaws.{env.region}.{service}",
                "VpcEndpointType": kind,
                "VpcId": {"Ref": "VpcId"},
            }
            if kind == "Gateway":
                properties["RouteTableIds"] = [{"Ref": "RouteTableId"}]
            else:
                properties |= {
                    "SubnetIds": [env.subnet_id],
                    "SecurityGroupIds": [{"Fn::GetAtt": ["EndpointsSecurityGroup", "GroupId"]}],
                    "PrivateDnsEnabled": True,
                }
            resources[f"{_logical_id(service)}Endpoint"] = {"Type": "AWS::EC2::VPCEndpoint", "Properties": properties}
    return resources


def _security_group(name: str, description: str, tags: list[dict[str, str]], **properties: Any) -> dict[str, Any]:
    """A security group of the pipeline in VpcId."""
    return {
        "Type": "AWS::EC2::SecurityGroup",
        "Properties": {
            "GroupName": name,
            "GroupDescription": description,
            "VpcId": {"Ref": "VpcId"},
            **properties,
            "Tags": tags,
        },
    }


def _roles(desired: DesiredState) -> dict[str, Any]:
    return {
        _logical_id(name): {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": name,
                "Description": "glueline: least-privilege role of the batch ETL pipeline",
                "AssumeRolePolicyDocument": role.trust,
                "Policies": [{"PolicyName": role.policy_name, "PolicyDocument": role.policy}],
                "Tags": _tags(desired),
            },
        }
        for name, role in desired.roles.items()
    }


def _compute(s: Settings, desired: DesiredState) -> dict[str, Any]:
    connection = dict(desired.glue_connection)
    connection.pop("ConnectionProperties")  # none for a NETWORK connection
    resources: dict[str, Any] = {
        "GlueConnection": {
            "Type": "AWS::Glue::Connection",
            "Properties": {"CatalogId": "${AWS::AccountId}", "ConnectionInput": connection},
        },
        "GlueJob": {
            "Type": "AWS::Glue::Job",
            "DependsOn": [_logical_id(s.glue_role), "GlueConnection"],
            "Properties": {"Name": s.glue_job, **desired.glue_job, "Tags": desired.tags},
        },
        "Function": {
            "Type": "AWS::Lambda::Function",
            "DependsOn": [_logical_id(s.lambda_role)],
            "Properties": {
                "FunctionName": s.lambda_function,
                "Description": LAMBDA_DESCRIPTION,
                "Code": {"S3Bucket": "${ArtifactsBucket}", "S3Key": ARTIFACTS_PREFIX + LAMBDA_ZIP},
                **desired.lambda_function,
                **(
                    {"ReservedConcurrentExecutions": desired.lambda_concurrency}
                    if desired.lambda_concurrency is not None
                    else {}
                ),
                "Tags": _tags(desired),
            },
        },
        "FunctionLogGroup": {
            "Type": "AWS::Logs::LogGroup",
            **RETAINED,
            "Properties": {
                "LogGroupName": desired.lambda_log_group["logGroupName"],
                "RetentionInDays": desired.lambda_log_group["retentionInDays"],
                "Tags": _tags(desired),
            },
        },
        "FailureQueue": {
            "Type": "AWS::SQS::Queue",
            **RETAINED,
            "Properties": {
                "QueueName": desired.failure_queue["QueueName"],
                "MessageRetentionPeriod": int(desired.failure_queue["Attributes"]["MessageRetentionPeriod"]),
                "SqsManagedSseEnabled": True,
                "Tags": _tags(desired),
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


def _substituted(value: Any) -> Any:
    """Every string holding a ``${…}`` reference as ``Fn::Sub``; intrinsic functions left as they are."""
    if isinstance(value, str):
        return {"Fn::Sub": value} if "${" in value else value
    if isinstance(value, list):
        return [_substituted(v) for v in value]
    if isinstance(value, dict):
        if len(value) == 1 and next(iter(value)) in ("Ref", "Fn::GetAtt", "Fn::Sub"):
            return value
        return {k: _substituted(v) for k, v in value.items()}
    return value


def write_artifacts(settings: Settings, directory: Path) -> list[str]:
    """The pipeline's code as the template reads it from ``ArtifactsBucket``: ``directory`` mirrors the
    bucket (``aws s3 sync DIR s3://BUCKET``). Returns the job's wheels' file names."""
    code = directory / ARTIFACTS_PREFIX
    (code / GLUE_WHEELS).mkdir(parents=True, exist_ok=True)
    (code / LAMBDA_ZIP).write_bytes(packaging.lambda_zip())
    (code / GLUE_SCRIPT).write_bytes(packaging.glue_script())
    (code / GLUE_LIBRARY).write_bytes(packaging.glue_library_zip())
    wheels = packaging.glue_wheels(settings.glue_version)
    for wheel in wheels:
        shutil.copyfile(wheel, code / GLUE_WHEELS / wheel.name)
    return [wheel.name for wheel in wheels]


def dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
