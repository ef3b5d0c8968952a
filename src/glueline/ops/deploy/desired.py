"""The pipeline's resources as they should be: plain data computed from the settings and the account's
facts (``AccountFacts``), with no AWS call. Deploy (``glueline.ops.deploy.account``) finds the facts in an
account and its plans converge the account to this; ``glueline package`` gives CloudFormation references
as the facts and writes the same data as a template. One definition of every name, policy and property,
the network's and the database's included.

Least privilege instead of the FullAccess policies of the AWS console walkthrough glueline grew from (see
the README): every statement names its actions and the pipeline's own resources (this bucket's prefixes,
this table, this job, this secret, these log groups). EventBridge invokes the Lambda through the
function's resource policy, scoped to the two rules, so the walkthrough's ``EventBridgeInvokeLambdaRole``,
which nothing would assume, is not created.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field, replace
from typing import Any

from glueline.artifacts import (
    DEBUG_ARGUMENT,
    GLUE_LIBRARY,
    GLUE_LOGIN_SCRIPT,
    GLUE_SCRIPT,
    GLUE_WHEELS,
    LAMBDA_HANDLER,
    LAMBDA_RUNTIME,
    RDS_CA_BUNDLE,
)
from glueline.ops.deploy.models import Ref
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import table_spec
from glueline.shared.dbsecret import DbConnection
from glueline.shared.lifecycle import NO_FILE_IDS

LAMBDA_MEMORY_MB = 256
LAMBDA_DESCRIPTION = "glueline: integrity check, audit and Glue start for new files"
ROLE_DESCRIPTION = "glueline: least-privilege role of the batch ETL pipeline"
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
DB_SUBNET_GROUP_DESCRIPTION = "glueline: the database's subnets"
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
# as the Glue role: Glue reads ``--scriptLocation``, ``--extra-py-files``, ``--extra-jars``… from a run's
# arguments; see ``_code_and_configuration``). The local debugger's address is a default: a run of the
# local runner may name its own.
RUN_ARGUMENT = "--FILE_IDS"

GroupId = str | Ref  # a security group's id, or (deploy) the one it creates in the same stage


def arn(service: str, region: str, account: str, resource: str, partition: str) -> str:
    """An ARN as the service writes it: IAM's have no region, S3's neither region nor account."""
    region = "" if service in ("iam", "s3") else region
    account = "" if service == "s3" else account
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


@dataclass(frozen=True)
class Network:
    """Where Glue's workers run (and the database deploy creates): the subnet of the setting, else the
    default VPC's first by availability zone."""

    vpc_id: str
    subnet_id: str
    availability_zone: str
    route_table_id: str = ""  # the Glue subnet's: the gateway endpoints route it (and it alone)
    cidrs: tuple[str, ...] = ()  # the VPC's associated CIDR blocks: the interface endpoints answer all of them
    subnet_ids: tuple[str, ...] = ()  # every subnet of the VPC: the created database's subnet group
    # The pipeline's groups: the id of one that exists, else what names the one deploy creates.
    glue_group: GroupId = Ref(GLUE_SECURITY_GROUP)
    endpoints_group: GroupId = Ref(ENDPOINTS_SECURITY_GROUP)
    db_group: GroupId = Ref(DB_SECURITY_GROUP)


@dataclass(frozen=True)
class AccountFacts:
    """What the desired state needs beyond the settings, decided once: by deploy from the account it
    talks to (``glueline.ops.deploy.account``), or as CloudFormation references by ``glueline package``."""

    account: str
    region: str
    bucket: str
    db: DbConnection  # as the pipeline reaches it, its TLS mode decided (``glueline.ops.database``): the job's login
    network: Network
    partition: str  # aws, aws-cn, aws-us-gov…: STS's answer (the Target's), ${AWS::Partition} in the template
    rds_ca: bool = False  # the job checks the database against RDS's CA bundle, shipped beside its code
    # A local stack's master, whose username and password go to the master's secret; None: RDS keeps it
    # (a database deploy created: ``db.master_secret`` names RDS's secret) or the login is the user's own.
    db_master: DbConnection | None = None
    creates_database: bool = False  # deploy made (or makes) the RDS instance
    wheels: list[str] = field(default_factory=list)  # file names of the job's wheels under the code prefix
    code_bucket: str | None = None  # where the job's code is; default: the pipeline's bucket
    code_prefix: str = layout.SCRIPTS
    function_glue_endpoint: str | None = None  # Glue's endpoint for the Lambda where Glue is not AWS's own
    s3_over_tls: bool = True  # deploy reaches S3 over TLS (an emulator on plain HTTP does not)

    def arn(self, service: str, resource: str) -> str:
        return arn(service, self.region, self.account, resource, self.partition)

    @property
    def code(self) -> str:
        """The S3 URL prefix of the job's code."""
        return f"s3://{self.code_bucket or self.bucket}/{self.code_prefix}"

    @property
    def wheel_urls(self) -> list[str]:
        return [f"{self.code}{GLUE_WHEELS}{name}" for name in self.wheels]

    @property
    def makes_login(self) -> bool:
        """Deploy makes the job's login (the login job, ``glueline.job.login``): it knows the master, or
        creates the database (whose master's secret RDS makes with it)."""
        return bool(self.db.master_secret) or self.creates_database

    @property
    def master_secret_arn(self) -> str:
        """The master's secret: RDS's own (an ARN already), else the local stack's of the pipeline; "" until
        RDS has made it (deploy plans the roles once the database is available)."""
        name = self.db.master_secret
        if name.startswith("arn:") or not name:
            return name
        return self.arn("secretsmanager", f"secret:{name}-??????")

    @property
    def stored_db(self) -> DbConnection:
        """The secret's value: the RDS CA bundle, where the job checks against it, beside the code."""
        return replace(self.db, sslrootcert=f"{self.code}{RDS_CA_BUNDLE}") if self.rds_ca else self.db


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
class SecurityGroup:
    name: str
    description: str
    vpc_id: str
    group_id: GroupId  # its id once it exists
    ingress: list[dict[str, Any]]  # AuthorizeSecurityGroupIngress's IpPermissions (groups by id or Ref)


@dataclass(frozen=True)
class CreatedDatabase:
    """RDS PostgreSQL as deploy creates it (``--create-database``): private, encrypted, deletion
    protection on, the master password managed by RDS in Secrets Manager (never seen by glueline),
    reachable on 5432 from Glue's security group only."""

    security_group: SecurityGroup
    subnet_group: dict[str, Any]  # CreateDBSubnetGroup's arguments but Tags
    instance: dict[str, Any]  # CreateDBInstance's arguments but Tags
    guarded: dict[str, bool]  # what an existing instance must still be (modified in place where it can)


@dataclass(frozen=True)
class DesiredState:
    tags: dict[str, str]
    role_tags: dict[str, str]  # the tags and the region: two regions' stacks must not share a role
    region: str
    bucket: str
    bucket_prefixes: tuple[str, ...]  # the empty markers deploy writes (S3 has no folders; no template resource)
    bucket_public_access_block: dict[str, bool]  # PutPublicAccessBlock's configuration
    bucket_policy: dict[str, Any] | None  # TLS only; None: not wanted, or deploy speaks to S3 without TLS
    bucket_lifecycle: dict[str, Any]  # PutBucketLifecycleConfiguration's LifecycleConfiguration
    code_files: dict[str, str]  # S3 key → name of each file of the job's code (script, library, wheels, RDS's CA)
    code_bucket: str
    audit_table: dict[str, Any]  # CreateTable's arguments
    audit_table_recovery: dict[str, bool]  # UpdateContinuousBackups' PointInTimeRecoverySpecification
    lambda_log_group: dict[str, Any]  # the Lambda's log group: logGroupName, retentionInDays
    roles: dict[str, Role]
    secret: dict[str, str]  # CreateSecret's Name, Description and SecretString: the job's login
    master_secret: dict[str, str] | None  # a local stack's master (CreateSecret's); None: RDS's own, or none
    login_job_name: str
    login_job: dict[str, Any] | None  # CreateJob's arguments but Name and Tags; None: the login is the user's
    login_job_arn: str
    glue_group: GroupId  # Glue's workers' group: given by the settings, or the pipeline's own
    glue_security_group: SecurityGroup | None  # the pipeline's own; None: given (GLUELINE_GLUE_SECURITY_GROUP_ID)
    endpoints_security_group: SecurityGroup | None  # None: no VPC endpoints (settings.vpc_endpoints)
    vpc_endpoints: dict[str, dict[str, Any]]  # service name → CreateVpcEndpoint's arguments but Tags
    database: CreatedDatabase | None  # None: the database is not deploy's to create
    glue_connection: dict[str, Any]  # ConnectionInput
    glue_connection_arn: str
    glue_job_name: str
    glue_job: dict[str, Any]  # CreateJob's arguments but Name and Tags
    glue_job_arn: str
    lambda_function_name: str
    lambda_function: dict[str, Any]  # CreateFunction's configuration but FunctionName, Code and Tags
    lambda_concurrency: int | None  # reserved concurrent executions; None: none reserved
    lambda_invoke_config: dict[str, Any]  # PutFunctionEventInvokeConfig's arguments but FunctionName
    failure_queue: dict[str, Any]  # CreateQueue's QueueName and Attributes
    rules: dict[str, dict[str, Any]]  # rule name → PutRule's arguments but Name, State and Tags
    rule_arns: dict[str, str]
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


def desired_state(settings: Settings, facts: AccountFacts) -> DesiredState:
    s = settings
    lambda_arn = facts.arn("lambda", f"function:{s.lambda_function}")
    return DesiredState(
        tags={STACK_TAG: s.stack},
        role_tags={STACK_TAG: s.stack, REGION_TAG: facts.region},
        region=facts.region,
        bucket=facts.bucket,
        bucket_prefixes=layout.ALL_PREFIXES,
        bucket_public_access_block=PUBLIC_ACCESS_BLOCK,
        bucket_policy=bucket_policy(facts) if s.bucket_tls_only and facts.s3_over_tls else None,
        bucket_lifecycle=bucket_lifecycle(s),
        code_files=code_files(facts),
        code_bucket=facts.code_bucket or facts.bucket,
        audit_table=table_spec(s.audit_table),
        # The audit table is the pipeline's memory (what was loaded, what was given up): restorable to any
        # second of the last 35 days.
        audit_table_recovery={"PointInTimeRecoveryEnabled": True},
        lambda_log_group={
            "logGroupName": f"/aws/lambda/{s.lambda_function}",
            "retentionInDays": s.log_retention_days,
        },
        roles=roles(s, facts),
        secret={
            "Name": s.db_secret_name,
            "Description": "glueline: PostgreSQL connection",
            "SecretString": facts.stored_db.secret_string(),
        },
        master_secret=master_secret(s, facts.db_master),
        login_job_name=s.db_login_job,
        login_job=login_job(s, facts) if facts.makes_login else None,
        login_job_arn=facts.arn("glue", f"job/{s.db_login_job}"),
        glue_group=facts.network.glue_group,
        glue_security_group=None if s.glue_security_group_id else glue_security_group(facts.network),
        endpoints_security_group=endpoints_security_group(facts.network) if s.vpc_endpoints else None,
        vpc_endpoints=vpc_endpoints(facts) if s.vpc_endpoints else {},
        database=created_database(s, facts.network) if facts.creates_database else None,
        glue_connection={
            "Name": s.glue_connection,
            "Description": "glueline: Glue's workers in the database's network",
            "ConnectionType": "NETWORK",
            "ConnectionProperties": {},
            "PhysicalConnectionRequirements": {
                "SubnetId": facts.network.subnet_id,
                "SecurityGroupIdList": [facts.network.glue_group],
                "AvailabilityZone": facts.network.availability_zone,
            },
        },
        glue_connection_arn=facts.arn("glue", f"connection/{s.glue_connection}"),
        glue_job_name=s.glue_job,
        glue_job=glue_job(s, facts),
        glue_job_arn=facts.arn("glue", f"job/{s.glue_job}"),
        lambda_function_name=s.lambda_function,
        lambda_function=lambda_function(s, facts),
        lambda_concurrency=s.lambda_reserved_concurrency or None,
        lambda_invoke_config={
            # EventBridge invokes asynchronously: two retries, then the event is kept in the queue
            "MaximumRetryAttempts": 2,
            "MaximumEventAgeInSeconds": 6 * 3600,
            "DestinationConfig": {"OnFailure": {"Destination": facts.arn("sqs", s.lambda_failure_queue)}},
        },
        failure_queue={
            "QueueName": s.lambda_failure_queue,
            "Attributes": {"MessageRetentionPeriod": str(14 * 24 * 3600), "SqsManagedSseEnabled": "true"},
        },
        rules=rules(s, facts),
        rule_arns={rule: facts.arn("events", f"rule/{rule}") for rule in (s.schedule_rule, s.s3_rule)},
        lambda_arn=lambda_arn,
    )


def master_secret(s: Settings, master: DbConnection | None) -> dict[str, str] | None:
    """A local stack's master as RDS keeps one: its username and password, read by the login job alone."""
    if master is None:
        return None
    value = json.dumps({"username": master.username, "password": master.password}, sort_keys=True)
    return {
        "Name": s.db_master_secret_name,
        "Description": "glueline: the database master, for the login job only",
        "SecretString": value,
    }


def code_files(facts: AccountFacts) -> dict[str, str]:
    """Under the code prefix: the scripts, the library, the wheels and, where the job checks the database
    against it, RDS's CA bundle."""
    scripts = [GLUE_SCRIPT] + ([GLUE_LOGIN_SCRIPT] if facts.makes_login else [])
    names = [*scripts, GLUE_LIBRARY, *(GLUE_WHEELS + wheel for wheel in facts.wheels)]
    return {facts.code_prefix + name: name for name in names + ([RDS_CA_BUNDLE] if facts.rds_ca else [])}


def glue_security_group(network: Network) -> SecurityGroup:
    """Glue's workers talk to each other on every TCP port: a rule that admits the group itself."""
    itself = {
        "IpProtocol": "tcp",
        "FromPort": 0,
        "ToPort": 65535,
        "UserIdGroupPairs": [{"GroupId": network.glue_group, "Description": "Glue's workers talk to each other"}],
    }
    return SecurityGroup(
        GLUE_SECURITY_GROUP, GLUE_SECURITY_GROUP_DESCRIPTION, network.vpc_id, network.glue_group, [itself]
    )


def endpoints_security_group(network: Network) -> SecurityGroup:
    """The interface endpoints' group: HTTPS from every CIDR block of the VPC (an interface endpoint with
    private DNS answers for its service in the whole VPC, so whoever resolves the service's name to it
    must be able to reach it)."""
    ranges = [{"CidrIp": cidr, "Description": "HTTPS from the VPC"} for cidr in network.cidrs]
    https = {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": ranges}
    return SecurityGroup(
        ENDPOINTS_SECURITY_GROUP,
        ENDPOINTS_SECURITY_GROUP_DESCRIPTION,
        network.vpc_id,
        network.endpoints_group,
        [https],
    )


def vpc_endpoints(facts: AccountFacts) -> dict[str, dict[str, Any]]:
    """What the job calls, reachable from a subnet without internet: S3 and DynamoDB through gateway
    endpoints routing the Glue subnet's route table only, Secrets Manager, CloudWatch Logs, STS and Glue
    through interface endpoints in the Glue subnet, with private DNS."""
    network = facts.network
    endpoints = {}
    for service, kind in ENDPOINT_SERVICES.items():
        name = f"com.amazonaws.{facts.region}.{service}"
        endpoint: dict[str, Any] = {"VpcEndpointType": kind, "VpcId": network.vpc_id, "ServiceName": name}
        if kind == "Gateway":
            endpoint["RouteTableIds"] = [network.route_table_id]
        else:
            endpoint |= {
                "SubnetIds": [network.subnet_id],
                "SecurityGroupIds": [network.endpoints_group],
                "PrivateDnsEnabled": True,
            }
        endpoints[name] = endpoint
    return endpoints


def created_database(s: Settings, network: Network) -> CreatedDatabase:
    from_glue = {
        "IpProtocol": "tcp",
        "FromPort": 5432,
        "ToPort": 5432,
        "UserIdGroupPairs": [{"GroupId": network.glue_group, "Description": "Glue's workers"}],
    }
    guarded = {"PubliclyAccessible": False, "StorageEncrypted": True, "DeletionProtection": True}
    return CreatedDatabase(
        security_group=SecurityGroup(
            DB_SECURITY_GROUP, DB_SECURITY_GROUP_DESCRIPTION, network.vpc_id, network.db_group, [from_glue]
        ),
        subnet_group={
            "DBSubnetGroupName": s.db_instance,
            "DBSubnetGroupDescription": DB_SUBNET_GROUP_DESCRIPTION,
            "SubnetIds": list(network.subnet_ids),
        },
        instance={
            "DBInstanceIdentifier": s.db_instance,
            "Engine": "postgres",
            "EngineVersion": s.db_engine_version,
            "DBInstanceClass": s.db_instance_class,
            "AllocatedStorage": s.db_allocated_storage_gb,
            "DBName": s.db_name,
            "MasterUsername": s.db_username,
            "ManageMasterUserPassword": True,
            **guarded,
            "VpcSecurityGroupIds": [network.db_group],
            "DBSubnetGroupName": s.db_instance,
            "BackupRetentionPeriod": 7,
            "CopyTagsToSnapshot": True,
        },
        guarded=guarded,
    )


def roles(s: Settings, facts: AccountFacts) -> dict[str, Role]:
    bucket = facts.arn("s3", facts.bucket)
    objects = lambda prefix: f"{bucket}/{prefix}*"  # noqa: E731
    code = facts.arn("s3", f"{facts.code_bucket or facts.bucket}/{facts.code_prefix}*")
    table = facts.arn("dynamodb", f"table/{s.audit_table}")
    index = f"{table}/index/*"
    lambda_logs = facts.arn("logs", f"log-group:/aws/lambda/{s.lambda_function}")
    secret = facts.arn("secretsmanager", f"secret:{s.db_secret_name}-??????")
    # Where files are and go: a move reads its destination first (layout.move_object), and S3 answers
    # a read of a missing key with 404 only to a caller allowed s3:ListBucket on the bucket, else 403;
    # that check carries no s3:prefix, so the grant is the bucket's, unconditioned (listing reveals
    # only the pipeline's own key names).
    placed = (layout.SOURCE, layout.PROCESSED, layout.REJECTED)
    job = facts.arn("glue", f"job/{s.glue_job}")
    roles = {
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
                # GetJobRuns: a run waiting in Glue's queue, which the files join (glueline.intake)
                (["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns"], [job]),
                (["sqs:SendMessage"], [facts.arn("sqs", s.lambda_failure_queue)]),  # its on-failure destination
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
                # The job's login alone: never the master's secret (glueline.job.login).
                (["secretsmanager:GetSecretValue"], [secret]),
                # Its Timeout (GetJobRun); the next run for the work it leaves near it (glueline.job.run).
                (["glue:StartJobRun", "glue:GetJobRun", "glue:GetJobRuns"], [job]),
                *_glue_worker(s, facts),
            ),
        ),
    }
    if facts.makes_login:
        # The login job: it reads where the database is and the login to make (the job's secret), the
        # master's secret, and its own code; it writes nothing but its logs.
        roles[s.db_login_role] = Role(
            "glue.amazonaws.com",
            f"{s.db_login_role}Policy",
            policy(
                (["s3:GetObject"], [code]),
                (["secretsmanager:GetSecretValue"], sorted(filter(None, [secret, facts.master_secret_arn]))),
                *_glue_worker(s, facts),
            ),
        )
    return roles


def _glue_worker(s: Settings, facts: AccountFacts) -> list[tuple]:
    """What every Glue job of the pipeline needs to run in the database's network and log."""
    glue_logs = facts.arn("logs", "log-group:/aws-glue/*")
    eni, subnet = facts.arn("ec2", "network-interface/*"), facts.arn("ec2", f"subnet/{facts.network.subnet_id}")
    # Known once deploy has created it (deploy plans the roles after the groups).
    glue_group = facts.network.glue_group
    group = facts.arn("ec2", f"security-group/{glue_group if isinstance(glue_group, str) else '*'}")
    return [
        (
            ["glue:GetConnection"],
            [facts.arn("glue", "catalog"), facts.arn("glue", f"connection/{s.glue_connection}")],
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
    ]


def glue_job(s: Settings, facts: AccountFacts) -> dict[str, Any]:
    return {
        "Description": "glueline: clean, validate and load transaction files into PostgreSQL",
        "Role": facts.arn("iam", f"role/{s.glue_role}"),
        "Command": {"Name": "glueetl", "ScriptLocation": facts.code + GLUE_SCRIPT, "PythonVersion": "3"},
        "DefaultArguments": {RUN_ARGUMENT: NO_FILE_IDS, **({DEBUG_ARGUMENT: s.glue_debug} if s.glue_debug else {})},
        "NonOverridableArguments": {
            **_code_and_configuration(s, facts, GLUE_SCRIPT, s.spark_ui),
            "--job-bookmark-option": "job-bookmark-enable",
            "--enable-continuous-cloudwatch-log": "true",
            "--AUDIT_TABLE": s.audit_table,
            "--DB_SECRET_ID": s.db_secret_name,
            "--TARGET_TABLE": str(s.table),
            "--TARGET": facts.db.target(str(s.table)),
            "--MAX_ATTEMPTS": str(s.max_attempts),
            "--BATCH_SECONDS": str(s.glue_batch_seconds),
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


def login_job(s: Settings, facts: AccountFacts) -> dict[str, Any]:
    """The one-off job that makes the ETL's login from inside the database's network (deploy runs it
    when the login is new or changed): its own role, its own script, the job's code otherwise."""
    return {
        "Description": "glueline: make the ETL's own database login (deploy runs it)",
        "Role": facts.arn("iam", f"role/{s.db_login_role}"),
        "Command": {"Name": "glueetl", "ScriptLocation": facts.code + GLUE_LOGIN_SCRIPT, "PythonVersion": "3"},
        "DefaultArguments": {},
        "NonOverridableArguments": {
            **_code_and_configuration(s, facts, GLUE_LOGIN_SCRIPT, spark_ui=False),
            "--enable-continuous-cloudwatch-log": "true",
            "--DB_SECRET_ID": s.db_secret_name,
            "--TARGET_TABLE": str(s.table),
            **s.db_bounds.job_arguments(),
        },
        "Connections": {"Connections": [s.glue_connection]},
        "ExecutionProperty": {"MaxConcurrentRuns": 1},
        "MaxRetries": 0,
        "Timeout": 10,
        "GlueVersion": s.glue_version,
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,  # Glue's least for a Spark job
    }


def _code_and_configuration(s: Settings, facts: AccountFacts, script: str, spark_ui: bool) -> dict[str, str]:
    """Every job parameter of Glue's ("Using job parameters in AWS Glue jobs") through which a run could
    load code, reorder the classpath or configure Spark, pinned: Glue takes each from a run's arguments
    too, so whoever may start runs (the Lambda's role) would otherwise choose the code the Glue role runs.
    Where a parameter names files, it names the job's own library under the code prefix, which the Glue
    role reads already and no other role of the pipeline writes: a path Glue fetches, so valid on AWS,
    where an empty one's acceptance is unknown (the library is Python: on the Java classpath it adds no
    class, in the working directory it is a copy of what --extra-py-files puts there). Switches are
    pinned to Glue's defaults.

    Left to a run, loading no code: --class (read only for --job-language scala, pinned to python);
    logging (--continuous-log-*, --enable-continuous-log-filter, --enable-metrics,
    --enable-observability-metrics, --enable-job-insights, and Glue 5's --custom-logGroup-prefix and
    --custom-logStream-prefix: a run that moves its logs elsewhere loses them, as the Glue role writes
    only /aws-glue/* groups, and ``glueline logs`` finds none); --executor-cores (up to twice the
    worker's vCPUs: more tasks at once, so more load connections to the database, which its
    max_connections and the job's bounds answer); streaming's --auto-scale-within-microbatch, Ray's
    --s3-py-modules and --pip-install (not a glueetl job's); --disable-proxy-v2 (no proxy);
    --encryption-type (S3 encrypts every object); and Glue's internal --JOB_NAME, --debug, --mode,
    --endpoint."""
    library = facts.code + GLUE_LIBRARY
    return {
        "--scriptLocation": facts.code + script,
        "--job-language": "python",
        "--extra-py-files": library,
        "--extra-jars": library,
        "--extra-files": library,
        "--user-jars-first": "false",
        # Installed from the wheels deploy put beside the script: no internet egress, no other index.
        "--additional-python-modules": ",".join(facts.wheel_urls),
        "--python-modules-installer-option": "--no-index",
        # Spark's configuration (spark.jars, extraJavaOptions, ...): one setting the job sets on its session
        # anyway (glueline.job.spark).
        "--conf": "spark.sql.session.timeZone=UTC",
        # Environment variables of the driver and the executors: Glue sets only CUSTOMER_ ones (so not
        # JAVA_TOOL_OPTIONS or PYTHONPATH), which the job's libraries do not read; pinned all the same, to
        # one nothing reads, should a library ever read one.
        "--customer-driver-env-vars": "CUSTOMER_GLUELINE=pinned",
        "--customer-executor-env-vars": "CUSTOMER_GLUELINE=pinned",
        # Adds a data lake framework's jars (AWS's own, which Glue ships and supports beside Spark): a
        # value is needed to pin it; the job uses none of them.
        "--datalake-formats": "iceberg",
        "--use-postgres-driver": "false",  # moves a JDBC driver first on the classpath
        "--enable-glue-datacatalog": "false",  # the Data Catalog as Spark's Hive metastore
        "--enable-lakeformation-fine-grained-access": "false",
        "--enable-s3-parquet-optimized-committer": "true",  # Glue's default since 3.0
        "--enable-rename-algorithm-v2": "false",
        "--write-shuffle-files-to-s3": "false",  # Spark's shuffle manager
        "--write-shuffle-spills-to-s3": "false",
        "--enable-auto-scaling": "false",
        "--TempDir": f"s3://{facts.bucket}/{layout.TEMP}",
        # Spark's UI and event log, as the settings say (``--spark-ui`` of run and trigger turns them on).
        "--enable-spark-ui": "true" if spark_ui else "false",
        **({"--spark-event-logs-path": f"s3://{facts.bucket}/{layout.SPARK_EVENTS}"} if spark_ui else {}),
    }


def bucket_policy(facts: AccountFacts) -> dict[str, Any]:
    """Refuse every request that does not use TLS (the AWS Security Hub control S3.5)."""
    bucket = facts.arn("s3", facts.bucket)
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


def lambda_function(s: Settings, facts: AccountFacts) -> dict[str, Any]:
    variables = {
        "AUDIT_TABLE": s.audit_table,
        "GLUE_JOB_NAME": s.glue_job,
        "SOURCE_BUCKET": facts.bucket,
        "MAX_ATTEMPTS": str(s.max_attempts),
        "TARGET": facts.db.target(str(s.table)),
    }
    # Where Glue is not AWS's own (the local runner), the function is told through the standard
    # variable; on AWS nothing is added.
    if facts.function_glue_endpoint:
        variables["AWS_ENDPOINT_URL_GLUE"] = facts.function_glue_endpoint
    return {
        "Role": facts.arn("iam", f"role/{s.lambda_role}"),
        "Handler": LAMBDA_HANDLER,
        "Runtime": LAMBDA_RUNTIME,
        "Timeout": s.lambda_timeout_seconds,
        "MemorySize": LAMBDA_MEMORY_MB,
        "Environment": {"Variables": variables},
    }


def rules(s: Settings, facts: AccountFacts) -> dict[str, dict[str, Any]]:
    return {
        s.schedule_rule: {
            "ScheduleExpression": s.schedule_expression,
            "Description": "glueline: daily sweep of source/ at 08:00 UTC",
        },
        s.s3_rule: {
            "EventPattern": {
                "source": ["aws.s3"],
                "detail-type": ["Object Created"],
                "detail": {"bucket": {"name": [facts.bucket]}, "object": {"key": [{"prefix": layout.SOURCE}]}},
            },
            "Description": "glueline: a new file under source/",
        },
    }
