"""The pipeline's resources as they should be: plain data computed from the settings and an
``Environment``, with no AWS call. Deploy (``glueline.ops.deploy.planner``) resolves the environment against
an account and converges the account to this; ``glueline package`` resolves it to CloudFormation
references and writes the same data as a template. One definition of every name, policy and property.

Least privilege instead of the FullAccess policies of the AWS console walkthrough glueline grew from (see
the README): every statement names its actions and the pipeline's own resources (this bucket's prefixes,
this table, this job, this secret, these log groups). EventBridge invokes the Lambda through the
function's resource policy, scoped to the two rules, so the walkthrough's ``EventBridgeInvokeLambdaRole``,
which nothing would assume, is not created.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from glueline.artifacts import DEBUG_ARGUMENT, GLUE_LIBRARY, GLUE_SCRIPT, GLUE_WHEELS, LAMBDA_HANDLER, LAMBDA_RUNTIME
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import table_spec
from glueline.shared.lifecycle import NO_FILE_IDS

LAMBDA_MEMORY_MB = 256
LAMBDA_DESCRIPTION = "glueline: integrity check, audit and Glue start for new files"
STACK_TAG = "glueline:stack"  # every resource deploy creates carries it; destroy finds them by it
REGION_TAG = "glueline:region"  # IAM is global: a role also says which region's stack it serves
GLUE_SECURITY_GROUP = "glueline-glue"
# EC2 refuses a group description with characters outside a-zA-Z0-9. _-:/()#,@[]+=&;{}!$* (an apostrophe
# among them), though emulators accept it; cfn-lint carries the rule (E3031).
GLUE_SECURITY_GROUP_DESCRIPTION = "glueline: Glue workers (self-referencing)"
ENDPOINTS_SECURITY_GROUP = "glueline-endpoints"
ENDPOINTS_SECURITY_GROUP_DESCRIPTION = "glueline: the interface endpoints of the pipeline, HTTPS from the VPC"
DB_SECURITY_GROUP = "glueline-db"
DB_SECURITY_GROUP_DESCRIPTION = "glueline: PostgreSQL, from the Glue workers only"
# What the job calls from its subnet, and how: S3 and DynamoDB have (free) gateway endpoints.
ENDPOINT_SERVICES = {
    "s3": "Gateway",
    "dynamodb": "Gateway",
    "secretsmanager": "Interface",
    "logs": "Interface",
    "sts": "Interface",
    "glue": "Interface",
}
PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}
# The one run argument a run may set: the files the Lambda admitted. Every other argument is the job's
# and cannot be overridden by a run (a caller allowed to start runs must not choose the code that runs
# as the Glue role: Glue reads ``--scriptLocation`` and ``--extra-py-files`` from a run's arguments).
RUN_ARGUMENT = "--FILE_IDS"


def arn(service: str, region: str, account: str, resource: str) -> str:
    """An ARN as the service writes it: IAM's have no region, S3's neither region nor account."""
    region = "" if service in ("iam", "s3") else region
    account = "" if service == "s3" else account
    return f"arn:aws:{service}:{region}:{account}:{resource}"


@dataclass(frozen=True)
class Environment:
    """What the desired state needs beyond the settings, decided once: by deploy from the account it
    talks to, or as CloudFormation references by ``glueline package``."""

    account: str
    region: str
    bucket: str
    target: str  # where the rows go, part of every FileID (``DbConnection.target``)
    db_secret_string: str  # the secret's value (the connection, with its password)
    subnet_id: str
    availability_zone: str
    security_group_id: str | None  # None until deploy has created Glue's group
    wheels: list[str] = field(default_factory=list)  # file names of the job's wheels under the code prefix
    code_bucket: str | None = None  # where the job's code is; default: the pipeline's bucket
    code_prefix: str = layout.SCRIPTS
    db_password_secret: str | None = None  # the secret RDS manages for a database deploy created
    function_glue_endpoint: str | None = None  # Glue's endpoint for the Lambda where Glue is not AWS's own

    def arn(self, service: str, resource: str) -> str:
        return arn(service, self.region, self.account, resource)

    @property
    def code(self) -> str:
        """The S3 URL prefix of the job's code."""
        return f"s3://{self.code_bucket or self.bucket}/{self.code_prefix}"

    @property
    def wheel_urls(self) -> list[str]:
        return [f"{self.code}{GLUE_WHEELS}{name}" for name in self.wheels]


@dataclass(frozen=True)
class Role:
    service: str  # the AWS service that assumes it
    policy_name: str
    policy: dict[str, Any]

    @property
    def trust(self) -> dict[str, Any]:
        statement = {"Effect": "Allow", "Principal": {"Service": self.service}, "Action": "sts:AssumeRole"}
        return {"Version": "2012-10-17", "Statement": [statement]}


@dataclass(frozen=True)
class DesiredState:
    tags: dict[str, str]
    role_tags: dict[str, str]  # the tags and the region: two regions' stacks must not share a role
    bucket: str
    bucket_policy: dict[str, Any] | None  # TLS only; None: not wanted (settings.bucket_tls_only)
    bucket_lifecycle: dict[str, Any]  # PutBucketLifecycleConfiguration's LifecycleConfiguration
    audit_table: dict[str, Any]  # CreateTable's arguments
    lambda_log_group: dict[str, Any]  # the Lambda's log group: logGroupName, retentionInDays
    roles: dict[str, Role]
    secret: dict[str, str]  # CreateSecret's Name, Description and SecretString
    glue_connection: dict[str, Any]  # ConnectionInput
    glue_job: dict[str, Any]  # CreateJob's arguments but Name and Tags
    lambda_function: dict[str, Any]  # CreateFunction's configuration but FunctionName, Code and Tags
    lambda_concurrency: int | None  # reserved concurrent executions; None: none reserved
    lambda_invoke_config: dict[str, Any]  # PutFunctionEventInvokeConfig's arguments but FunctionName
    failure_queue: dict[str, Any]  # CreateQueue's QueueName and Attributes
    rules: dict[str, dict[str, Any]]  # rule name → PutRule's arguments but Name, State and Tags
    lambda_arn: str


def policy(*statements: tuple[list[str], list[str]] | tuple[list[str], list[str], dict]) -> dict[str, Any]:
    body = []
    for statement in statements:
        actions, resources, *condition = statement
        item: dict[str, Any] = {"Effect": "Allow", "Action": sorted(actions), "Resource": sorted(resources)}
        if condition:
            item["Condition"] = condition[0]
        body.append(item)
    return {"Version": "2012-10-17", "Statement": body}


def desired_state(settings: Settings, env: Environment) -> DesiredState:
    s = settings
    lambda_arn = env.arn("lambda", f"function:{s.lambda_function}")
    return DesiredState(
        tags={STACK_TAG: s.stack},
        role_tags={STACK_TAG: s.stack, REGION_TAG: env.region},
        bucket=env.bucket,
        bucket_policy=bucket_policy(env) if s.bucket_tls_only else None,
        bucket_lifecycle=bucket_lifecycle(s),
        audit_table=table_spec(s.audit_table),
        lambda_log_group={
            "logGroupName": f"/aws/lambda/{s.lambda_function}",
            "retentionInDays": s.log_retention_days,
        },
        roles=roles(s, env),
        secret={
            "Name": s.db_secret_name,
            "Description": "glueline: PostgreSQL connection",
            "SecretString": env.db_secret_string,
        },
        glue_connection={
            "Name": s.glue_connection,
            "Description": "glueline: Glue's workers in the database's network",
            "ConnectionType": "NETWORK",
            "ConnectionProperties": {},
            "PhysicalConnectionRequirements": {
                "SubnetId": env.subnet_id,
                "SecurityGroupIdList": [env.security_group_id],
                "AvailabilityZone": env.availability_zone,
            },
        },
        glue_job=glue_job(s, env),
        lambda_function=lambda_function(s, env),
        lambda_concurrency=s.lambda_reserved_concurrency or None,
        lambda_invoke_config={
            # EventBridge invokes asynchronously: two retries, then the event is kept in the queue
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 6 * 3600,
            "DestinationConfig": {"OnFailure": {"Destination": env.arn("sqs", s.lambda_failure_queue)}},
        },
        failure_queue={
            "QueueName": s.lambda_failure_queue,
            "Attributes": {"MessageRetentionPeriod": str(14 * 24 * 3600), "SqsManagedSseEnabled": "true"},
        },
        rules=rules(s, env),
        lambda_arn=lambda_arn,
    )


def roles(s: Settings, env: Environment) -> dict[str, Role]:
    bucket = env.arn("s3", env.bucket)
    objects = lambda prefix: f"{bucket}/{prefix}*"  # noqa: E731
    code = env.arn("s3", f"{env.code_bucket or env.bucket}/{env.code_prefix}*")
    table = env.arn("dynamodb", f"table/{s.audit_table}")
    index = f"{table}/index/*"
    lambda_logs = env.arn("logs", f"log-group:/aws/lambda/{s.lambda_function}")
    glue_logs = env.arn("logs", "log-group:/aws-glue/*")
    secret = env.arn("secretsmanager", f"secret:{s.db_secret_name}-??????")
    # A database deploy created keeps its password in the secret RDS manages for it.
    secrets = [secret] + ([env.db_password_secret] if env.db_password_secret else [])
    # Where files are and go: a move reads its destination first (layout.move_object), and S3 answers
    # a read of a missing key with 404 only to a caller allowed s3:ListBucket on the bucket, else 403;
    # that check carries no s3:prefix, so the grant is the bucket's, unconditioned (listing reveals
    # only the pipeline's own key names).
    placed = (layout.SOURCE, layout.PROCESSED, layout.REJECTED)
    ec2 = f"arn:aws:ec2:{env.region}:{env.account}"
    eni, subnet = f"{ec2}:network-interface/*", f"{ec2}:subnet/{env.subnet_id}"
    group = f"{ec2}:security-group/{env.security_group_id or '*'}"  # known once deploy has created it
    job = env.arn("glue", f"job/{s.glue_job}")
    return {
        s.lambda_role: Role(
            "lambda.amazonaws.com",
            f"{s.lambda_role}Policy",
            policy(
                (["logs:CreateLogGroup"], [lambda_logs]),
                (["logs:CreateLogStream", "logs:PutLogEvents"], [f"{lambda_logs}:*"]),
                (["s3:ListBucket"], [bucket]),
                (["s3:GetObject"], [objects(p) for p in placed]),
                (["s3:PutObject"], [objects(layout.PROCESSED), objects(layout.REJECTED)]),
                # rejected/: the copy a give-up left, when the same file is uploaded again to retry it
                (["s3:DeleteObject"], [objects(layout.SOURCE), objects(layout.REJECTED)]),
                (["dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem"], [table]),
                (["dynamodb:Query"], [index]),
                (["glue:StartJobRun", "glue:GetJobRun"], [job]),
                (["sqs:SendMessage"], [env.arn("sqs", s.lambda_failure_queue)]),  # its on-failure destination
            ),
        ),
        s.glue_role: Role(
            "glue.amazonaws.com",
            f"{s.glue_role}Policy",
            policy(
                (["s3:ListBucket"], [bucket]),
                (["s3:GetObject"], sorted({*(objects(p) for p in (*placed, layout.SCRIPTS, layout.TEMP)), code})),
                (
                    ["s3:PutObject"],
                    [objects(p) for p in (layout.PROCESSED, layout.REJECTED, layout.TEMP)]
                    + ([objects(layout.SPARK_EVENTS)] if s.spark_ui else []),  # Glue writes the event log
                ),
                (["s3:DeleteObject"], [objects(layout.SOURCE), objects(layout.TEMP)]),
                (["dynamodb:GetItem", "dynamodb:UpdateItem"], [table]),
                (["dynamodb:Query"], [index]),
                (["secretsmanager:GetSecretValue"], secrets),
                (["glue:GetJobRun"], [job]),
                (
                    ["glue:GetConnection"],
                    [env.arn("glue", "catalog"), env.arn("glue", f"connection/{s.glue_connection}")],
                ),
                (
                    ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                    [glue_logs, f"{glue_logs}:*"],
                ),
                # What Glue documents for a job with a NETWORK connection: its workers' network
                # interfaces in the connection's subnet. EC2's Describe actions take no resource.
                (["ec2:CreateNetworkInterface"], [eni, subnet, group]),
                (["ec2:DeleteNetworkInterface"], [eni]),
                (
                    ["ec2:CreateTags", "ec2:DeleteTags"],
                    [eni],
                    {"ForAllValues:StringEquals": {"aws:TagKeys": ["aws-glue-service-resource"]}},
                ),
                (
                    [
                        "ec2:DescribeNetworkInterfaces",
                        "ec2:DescribeRouteTables",
                        "ec2:DescribeSecurityGroups",
                        "ec2:DescribeSubnets",
                        "ec2:DescribeVpcAttribute",
                        "ec2:DescribeVpcEndpoints",
                    ],
                    ["*"],
                ),
            ),
        ),
    }


def glue_job(s: Settings, env: Environment) -> dict[str, Any]:
    script = env.code + GLUE_SCRIPT
    return {
        "Description": "glueline: clean, validate and load transaction files into PostgreSQL",
        "Role": env.arn("iam", f"role/{s.glue_role}"),
        "Command": {"Name": "glueetl", "ScriptLocation": script, "PythonVersion": "3"},
        "DefaultArguments": {RUN_ARGUMENT: NO_FILE_IDS, **_inner_loop_arguments(s, env)},
        "NonOverridableArguments": {
            "--scriptLocation": script,
            "--job-language": "python",
            "--job-bookmark-option": "job-bookmark-enable",
            "--TempDir": f"s3://{env.bucket}/{layout.TEMP}",
            "--extra-py-files": env.code + GLUE_LIBRARY,
            # Installed from the wheels deploy put beside the script: no internet egress needed.
            "--additional-python-modules": ",".join(env.wheel_urls),
            "--python-modules-installer-option": "--no-index",
            "--enable-continuous-cloudwatch-log": "true",
            "--AUDIT_TABLE": s.audit_table,
            "--DB_SECRET_ID": s.db_secret_name,
            "--TARGET_TABLE": str(s.table),
            "--TARGET": env.target,
            "--MAX_ATTEMPTS": str(s.max_attempts),
            **s.db_bounds.job_arguments(),
        },
        "Connections": {"Connections": [s.glue_connection]},
        "ExecutionProperty": {"MaxConcurrentRuns": s.glue_max_concurrent_runs},
        "MaxRetries": 0,
        "Timeout": s.glue_timeout_minutes,
        "GlueVersion": s.glue_version,
        "WorkerType": s.glue_worker_type,
        "NumberOfWorkers": s.glue_workers,
    }


def _inner_loop_arguments(s: Settings, env: Environment) -> dict[str, str]:
    """Spark's UI and event log (Glue's own arguments), and where a run waits for a debugger (the local
    runner's: glueline.local.runner.debug)."""
    arguments = {}
    if s.spark_ui:
        arguments["--enable-spark-ui"] = "true"
        arguments["--spark-event-logs-path"] = f"s3://{env.bucket}/{layout.SPARK_EVENTS}"
    if s.glue_debug:
        arguments[DEBUG_ARGUMENT] = s.glue_debug
    return arguments


def bucket_policy(env: Environment) -> dict[str, Any]:
    """Refuse every request that does not use TLS (the AWS Security Hub control S3.5)."""
    bucket = env.arn("s3", env.bucket)
    deny = {
        "Sid": "TLSOnly",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket, f"{bucket}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }
    return {"Version": "2012-10-17", "Statement": [deny]}


def bucket_lifecycle(s: Settings) -> dict[str, Any]:
    """Rejected rows kept for a while, the job's scratch space a week, unfinished uploads a week; the
    files themselves (source/, processed/, rejected/) are the bank's records and never expire."""
    week = {"Days": 7}
    return {
        "Rules": [
            {
                "ID": "glueline-rejected-rows",
                "Filter": {"Prefix": layout.REJECTED_ROWS},
                "Status": "Enabled",
                "Expiration": {"Days": s.rejected_rows_retention_days},
            },
            {"ID": "glueline-temp", "Filter": {"Prefix": layout.TEMP}, "Status": "Enabled", "Expiration": week},
            {
                "ID": "glueline-incomplete-uploads",
                "Filter": {"Prefix": ""},
                "Status": "Enabled",
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
            },
        ]
    }


def lambda_function(s: Settings, env: Environment) -> dict[str, Any]:
    variables = {
        "AUDIT_TABLE": s.audit_table,
        "GLUE_JOB_NAME": s.glue_job,
        "SOURCE_BUCKET": env.bucket,
        "MAX_ATTEMPTS": str(s.max_attempts),
        "TARGET": env.target,
    }
    # Where Glue is not AWS's own (the local runner), the function is told through the standard
    # variable; on AWS nothing is added.
    if env.function_glue_endpoint:
        variables["AWS_ENDPOINT_URL_GLUE"] = env.function_glue_endpoint
    return {
        "Role": env.arn("iam", f"role/{s.lambda_role}"),
        "Handler": LAMBDA_HANDLER,
        "Runtime": LAMBDA_RUNTIME,
        "Timeout": s.lambda_timeout_seconds,
        "MemorySize": LAMBDA_MEMORY_MB,
        "Environment": {"Variables": variables},
    }


def rules(s: Settings, env: Environment) -> dict[str, dict[str, Any]]:
    return {
        s.schedule_rule: {
            "ScheduleExpression": s.schedule_expression,
            "Description": "glueline: daily sweep of source/ at 08:00 UTC",
        },
        s.s3_rule: {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [env.bucket]}, "object": {"key": [{"prefix": layout.SOURCE}]}},
            },
            "Description": "glueline: a new file under source/",
        },
    }
