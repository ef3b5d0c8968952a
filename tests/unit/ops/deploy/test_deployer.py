"""Deploy's plans as data, against account states made in moto (no emulator server): what a plan
declares, that plan writes nothing, that deploy converges to a plan with nothing to do, and what deploy
refuses (another stack's resources; resources nobody tagged, unless adopted)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import botocore.exceptions
import pytest

from glueline.ops.deploy import executor
from glueline.ops.deploy.aws import GLUE_RUN_ENDED, DeployError, wait_until
from glueline.ops.deploy.desired import GLUE_SECURITY_GROUP, REGION_TAG, STACK_TAG
from glueline.ops.deploy.executor import Executor
from glueline.ops.deploy.models import APICall, Ref, Wait
from glueline.ops.deploy.plans import compute, database
from glueline.ops.deploy.plans.base import Planning
from glueline.shared.audit import table_spec

from .conftest import REGION, deployer_in

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
FULL_ACCESS = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}
)


def deployer(session, adopt: bool = False, tls_only: bool = False):
    """moto denies every request once a bucket has a policy that denies on a condition, the condition
    not evaluated (AWS denies only requests without TLS): the TLS-only policy is only planned here."""
    return deployer_in(session, adopt, bucket_tls_only=tls_only)


def by_resource(changes) -> dict:
    return {change.resource: change for change in changes}


def test_a_new_account_is_planned_as_declared_calls_and_plan_writes_nothing(session):
    changes = by_resource(deployer(session, tls_only=True).plan())
    assert {c.action for c in changes.values()} == {"create"}
    group = changes[f"security group {GLUE_SECURITY_GROUP}"]
    create, ingress = group.steps
    assert (create.method, create.store) == ("create_security_group", (GLUE_SECURITY_GROUP, "GroupId"))
    # The group's id exists only once created: the self-referencing rule names it by reference.
    assert ingress.params["GroupId"] == Ref(GLUE_SECURITY_GROUP)
    (pair,) = ingress.params["IpPermissions"][0]["UserIdGroupPairs"]
    assert pair["GroupId"] == Ref(GLUE_SECURITY_GROUP)
    # Only roles something assumes: EventBridge invokes the Lambda through its resource policy.
    assert {r for r, c in changes.items() if c.type == "iam role"} == {
        "iam role LambdaS3ExecutionRole",
        "iam role GlueServiceRole",
    }
    role = changes["iam role GlueServiceRole"]
    assert [step.method for step in role.steps] == ["create_role", "put_role_policy"]
    assert {t["Key"]: t["Value"] for t in role.steps[0].params["Tags"]} == {
        STACK_TAG: "glueline",
        REGION_TAG: REGION,
    }
    bucket = {step.method: step.params for step in next(c for r, c in changes.items() if r.startswith("s3://")).steps}
    (deny,) = json.loads(bucket["put_bucket_policy"]["Policy"])["Statement"]
    assert (deny["Effect"], deny["Condition"]) == ("Deny", {"Bool": {"aws:SecureTransport": "false"}})
    rules = {
        rule["ID"]: rule for rule in bucket["put_bucket_lifecycle_configuration"]["LifecycleConfiguration"]["Rules"]
    }
    assert rules["glueline-rejected-rows"]["Filter"] == {"Prefix": "rejected/rows/"}
    assert "Expiration" not in rules["glueline-incomplete-uploads"]  # the bank's files never expire
    # The secret says where it points, without its password, and what the server offered from here; the
    # login, the user's own, could not be checked from here.
    said, login = changes["secret glueline/rds"].detail.split("; ", 1)
    assert said == "postgresql://etl@db.example:5432/bank, sslmode=prefer (the server: unreachable from here)"
    assert login.startswith("the login: not checked (unreachable from here: ")
    assert not any(resource.startswith("database login") for resource in changes)  # the user's own
    table = changes["dynamodb S3_Audit_1"].steps
    assert table[-1].method == "update_continuous_backups"
    assert [s.method for s in changes["log group /aws/lambda/ETL_Lambda_Function"].steps] == [
        "create_log_group",
        "put_retention_policy",
    ]
    function = changes["lambda ETL_Lambda_Function"]
    assert isinstance(function.steps[1], Wait) and function.steps[0].retry_while == "InvalidParameterValueException"
    assert session.client("iam").list_roles()["Roles"] == []
    assert session.client("s3").list_buckets()["Buckets"] == []


def test_deploy_applies_the_plan_and_the_next_plan_has_nothing_to_do(session):
    applied = deployer(session).deploy()
    assert {c.action for c in applied} == {"created"}
    deploying = deployer(session)
    left = [(c.resource, c.changed) for c in deploying.plan() if c.action != "unchanged"]
    # moto 5.2 does not answer a bucket's EventBridgeConfiguration back (AWS and the emulators do).
    assert left == [(f"s3://{deploying.bucket}", ["EventBridge notifications"])]
    ec2 = session.client("ec2")
    (group,) = ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [GLUE_SECURITY_GROUP]}])[
        "SecurityGroups"
    ]
    pairs = [p["GroupId"] for rule in group["IpPermissions"] for p in rule.get("UserIdGroupPairs", [])]
    assert pairs == [group["GroupId"]]
    # A burst of uploads cannot drain the account's concurrency; a failed event is kept, not dropped.
    lam = session.client("lambda")
    assert lam.get_function(FunctionName="ETL_Lambda_Function")["Concurrency"] == {"ReservedConcurrentExecutions": 2}
    invoke = lam.get_function_event_invoke_config(FunctionName="ETL_Lambda_Function")
    queue = session.client("sqs").get_queue_url(QueueName="glueline-lambda-failures")["QueueUrl"]
    assert invoke["DestinationConfig"]["OnFailure"]["Destination"].endswith(":glueline-lambda-failures")
    assert invoke["MaximumRetryAttempts"] == 2 and queue.endswith("/glueline-lambda-failures")


def test_a_role_nobody_tagged_is_adopted_only_when_asked_and_loses_its_full_access(session):
    iam = session.client("iam")
    iam.create_role(RoleName="GlueServiceRole", AssumeRolePolicyDocument=TRUST)
    full_access = iam.create_policy(PolicyName="AmazonS3FullAccess", PolicyDocument=FULL_ACCESS)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="GlueServiceRole", PolicyArn=full_access)
    iam.put_role_policy(RoleName="GlueServiceRole", PolicyName="console", PolicyDocument=FULL_ACCESS)

    role = by_resource(deployer(session).plan())["iam role GlueServiceRole"]
    assert role.action == "adopt"
    assert "managed policy AmazonS3FullAccess detached" in role.changed
    assert "inline policy console removed" in role.changed

    with pytest.raises(DeployError, match=r"not made by this stack.*iam role GlueServiceRole.*--adopt"):
        deployer(session).deploy()
    assert iam.list_attached_role_policies(RoleName="GlueServiceRole")["AttachedPolicies"] != []
    assert session.client("s3").list_buckets()["Buckets"] == []  # refused before anything was made

    adopted = by_resource(deployer(session, adopt=True).deploy())["iam role GlueServiceRole"]
    assert adopted.action == "adopted"
    assert iam.list_attached_role_policies(RoleName="GlueServiceRole")["AttachedPolicies"] == []
    assert iam.list_role_policies(RoleName="GlueServiceRole")["PolicyNames"] == ["GlueServiceRolePolicy"]
    tags = {t["Key"]: t["Value"] for t in iam.list_role_tags(RoleName="GlueServiceRole")["Tags"]}
    assert tags == {STACK_TAG: "glueline", REGION_TAG: REGION}


@pytest.mark.parametrize(
    "owner",
    [{STACK_TAG: "glueline", REGION_TAG: "us-east-1"}, {STACK_TAG: "payments"}],
    ids=["another-region", "another-stack"],
)
def test_a_role_of_another_stack_or_region_is_a_conflict_that_even_adopt_leaves_alone(session, owner):
    iam = session.client("iam")
    tags = [{"Key": k, "Value": v} for k, v in owner.items()]
    iam.create_role(RoleName="GlueServiceRole", AssumeRolePolicyDocument=TRUST, Tags=tags)
    role = by_resource(deployer(session).plan())["iam role GlueServiceRole"]
    assert (role.action, role.steps) == ("conflict", [])
    with pytest.raises(DeployError, match="another stack's"):
        deployer(session, adopt=True).deploy()
    assert iam.list_role_policies(RoleName="GlueServiceRole")["PolicyNames"] == []


def test_an_audit_table_with_another_key_is_a_conflict_and_a_missing_index_is_added(session):
    ddb = session.client("dynamodb")
    spec = table_spec("S3_Audit_1")
    ddb.create_table(
        TableName="S3_Audit_1",
        BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": "FileName", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "FileName", "KeyType": "HASH"}],
    )
    table = by_resource(deployer(session).plan())["dynamodb S3_Audit_1"]
    assert table.action == "conflict" and "FileName" in table.detail

    ddb.delete_table(TableName="S3_Audit_1")
    bare = {k: v for k, v in spec.items() if k != "GlobalSecondaryIndexes"}
    bare["AttributeDefinitions"] = [{"AttributeName": "FileID", "AttributeType": "S"}]
    bare["Tags"] = [{"Key": STACK_TAG, "Value": "glueline"}]
    ddb.create_table(**bare)
    table = by_resource(deployer(session).plan())["dynamodb S3_Audit_1"]
    names = [index["IndexName"] for index in spec["GlobalSecondaryIndexes"]]
    assert (table.action, table.changed) == ("update", ["point-in-time recovery", *(f"index {n}" for n in names)])
    updates = [s for s in table.steps if getattr(s, "method", None) == "update_table"]
    assert [len(u.params["GlobalSecondaryIndexUpdates"]) for u in updates] == [1, 1]  # AWS adds one per call
    deployer(session).deploy()
    indexes = ddb.describe_table(TableName="S3_Audit_1")["Table"]["GlobalSecondaryIndexes"]
    assert sorted(i["IndexName"] for i in indexes) == sorted(names)
    assert by_resource(deployer(session).plan())["dynamodb S3_Audit_1"].action == "unchanged"


def _rds_answering(instance: dict) -> SimpleNamespace:
    """An RDS client that answers DescribeDBInstances with ``instance`` (moto's are available at once)."""
    return SimpleNamespace(
        exceptions=SimpleNamespace(DBInstanceNotFoundFault=LookupError),
        describe_db_instances=lambda **kwargs: {"DBInstances": [instance]},
    )


def test_a_database_still_being_created_is_waited_for_not_created_again(session):
    desired = deployer_in(session, create_database=True).desired()
    assert desired.database is not None
    creating = {
        "DBInstanceStatus": "creating",
        "DBInstanceArn": "arn:aws:rds:eu-west-1:123456789012:db:glueline",
        "PubliclyAccessible": False,
        "StorageEncrypted": True,
        "DeletionProtection": True,
        "TagList": [{"Key": STACK_TAG, "Value": "glueline"}],
    }
    planning = Planning(desired, lambda service: _rds_answering(creating))
    change = database._instance(planning, desired.database)
    assert change.action == "update" and change.changed == ["status creating"]
    assert isinstance(change.steps[0], Wait) and change.steps[0].waiter == "db_instance_available"
    assert not any(isinstance(s, APICall) and s.method == "create_db_instance" for s in change.steps)

    planning = Planning(desired, lambda service: _rds_answering(creating | {"DBInstanceStatus": "deleting"}))
    deleting = by_resource([database._instance(planning, desired.database)])
    assert [c.action for c in deleting.values()] == ["conflict"]


def test_endpoints_in_a_shared_vpc_admit_the_vpc_route_only_glues_subnet_and_reuse_what_exists(session):
    ec2 = session.client("ec2")
    deploying = deployer(session)
    net = deploying.facts().network
    (vpc,) = ec2.describe_vpcs(VpcIds=[net.vpc_id])["Vpcs"]
    # Another workload's route table and its own Secrets Manager endpoint, made before glueline came.
    theirs = ec2.create_route_table(VpcId=net.vpc_id)["RouteTable"]["RouteTableId"]
    their_group = ec2.create_security_group(GroupName="payments", Description="payments", VpcId=net.vpc_id)["GroupId"]
    secretsmanager = f"com.amazonaws.{REGION}.secretsmanager"
    their_endpoint = ec2.create_vpc_endpoint(
        VpcEndpointType="Interface",
        VpcId=net.vpc_id,
        ServiceName=secretsmanager,
        SubnetIds=[net.subnet_id],
        SecurityGroupIds=[their_group],
        PrivateDnsEnabled=True,
    )["VpcEndpoint"]["VpcEndpointId"]

    changes = by_resource(deploying.plan())
    group = changes["security group glueline-endpoints"]
    https = group.steps[1].params["IpPermissions"][0]
    assert (https["FromPort"], [r["CidrIp"] for r in https["IpRanges"]]) == (443, [vpc["CidrBlock"]])
    (create_s3,) = changes[f"vpc endpoint com.amazonaws.{REGION}.s3"].steps
    main = ec2.describe_route_tables(Filters=[{"Name": "association.main", "Values": ["true"]}])["RouteTables"]
    assert create_s3.params["RouteTableIds"] == [main[0]["RouteTableId"]] != [theirs]
    (create_logs,) = changes[f"vpc endpoint com.amazonaws.{REGION}.logs"].steps
    assert create_logs.params["SecurityGroupIds"] == [Ref("glueline-endpoints")]
    reused = changes[f"vpc endpoint {secretsmanager}"]
    assert reused.action == "adopt" and "reused, left by destroy" in reused.detail
    assert [(s.method, s.params["VpcEndpointId"]) for s in reused.steps] == [("modify_vpc_endpoint", their_endpoint)]

    # Another workload's endpoint is changed only when asked (--adopt), as every resource not ours.
    with pytest.raises(DeployError, match=f"not made by this stack.*vpc endpoint {secretsmanager}"):
        deploying.deploy()
    (endpoint,) = ec2.describe_vpc_endpoints(VpcEndpointIds=[their_endpoint])["VpcEndpoints"]
    assert [g["GroupId"] for g in endpoint["Groups"]] == [their_group]
    deployer(session, adopt=True).deploy()
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "service-name", "Values": [secretsmanager]}])
    assert [e["VpcEndpointId"] for e in endpoints["VpcEndpoints"]] == [their_endpoint]  # reused, not doubled


def test_private_dns_on_a_vpc_without_dns_hostnames_is_refused_by_plan_before_anything_is_made(session):
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.1.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.1.0.0/24", AvailabilityZone=f"{REGION}a")["Subnet"]
    # A VPC made without the console's defaults: AWS refuses an endpoint's private DNS there (moto does not).
    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": False})
    changes = by_resource(deployer_in(session, glue_subnet_id=subnet["SubnetId"]).plan())
    refused = changes[f"vpc {vpc}"]
    assert refused.action == "conflict" and "enableDnsHostnames off" in refused.detail
    with pytest.raises(DeployError, match=f"vpc {vpc} .*enableDnsHostnames"):
        deployer_in(session, glue_subnet_id=subnet["SubnetId"]).deploy()
    assert session.client("s3").list_buckets()["Buckets"] == []
    assert ec2.describe_vpc_endpoints()["VpcEndpoints"] == []

    ec2.modify_vpc_attribute(VpcId=vpc, EnableDnsHostnames={"Value": True})
    changes = by_resource(deployer_in(session, glue_subnet_id=subnet["SubnetId"]).plan())
    assert f"vpc {vpc}" not in changes


def _stubbed(service: str):
    """A real boto3 client of ``service`` (its real models) answered by botocore's Stubber."""
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(service, region_name=REGION, aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    stubber.activate()
    return client, stubber


def _step(change, method: str) -> APICall:
    return next(s for s in change.steps if isinstance(s, APICall) and s.method == method)


def test_point_in_time_recovery_right_after_create_table_is_retried_while_aws_says_unavailable(session):
    table = by_resource(deployer(session).plan())["dynamodb S3_Audit_1"]
    recovery = _step(table, "update_continuous_backups")
    ddb, stubber = _stubbed("dynamodb")
    stubber.add_client_error("update_continuous_backups", "ContinuousBackupsUnavailableException")
    stubber.add_response("update_continuous_backups", {}, recovery.params)
    slept: list[float] = []
    Executor(lambda service: ddb, slept.append).execute([recovery])
    stubber.assert_no_pending_responses()
    assert slept == [15]


def test_create_function_waits_for_the_role_only_and_fails_at_once_on_any_other_invalid_parameter(session):
    create = _step(by_resource(deployer(session).plan())["lambda ETL_Lambda_Function"], "create_function")
    lam, stubber = _stubbed("lambda")
    stubber.add_client_error(
        "create_function",
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
    stubber.add_response("create_function", {})
    slept: list[float] = []
    Executor(lambda service: lam, slept.append).execute([create])
    assert slept == [15]
    stubber.add_client_error(
        "create_function", "InvalidParameterValueException", "Unzipped size must be smaller than 262144000 bytes"
    )
    stubber.add_response("create_function", {})
    with pytest.raises(botocore.exceptions.ClientError, match="Unzipped size"):
        Executor(lambda service: lam, slept.append).execute([create])
    assert slept == [15]


def test_reserved_concurrency_that_would_leave_the_account_under_its_unreserved_minimum_is_a_conflict(session):
    """Lambda keeps 100 executions unreserved (PutFunctionConcurrency's reference), or an account's whole
    limit where that is lower: the default reservation of 2 is refused by plan, not half-way through
    deploy."""
    desired = deployer(session).desired()
    planned = {}
    for total, unreserved in ((1000, 101), (1000, 102), (50, 50)):
        lam, stubber = _stubbed("lambda")
        stubber.add_client_error("get_function", "ResourceNotFoundException")
        limit = {"ConcurrentExecutions": total, "UnreservedConcurrentExecutions": unreserved}
        stubber.add_response("get_account_settings", {"AccountLimit": limit})
        (planned[total, unreserved],) = compute.lambda_function(Planning(desired, lambda service, lam=lam: lam), b"PK")
        stubber.assert_no_pending_responses()
    assert (planned[1000, 101].action, planned[1000, 101].steps) == ("conflict", [])
    assert "would leave the account 99 unreserved; Lambda keeps 100" in planned[1000, 101].detail
    assert planned[1000, 102].action == "create"
    assert "Lambda keeps 50" in planned[50, 50].detail


def test_a_bucket_keeps_the_notifications_lifecycle_rules_and_tags_another_tool_gave_it(session):
    s3, sqs = session.client("s3"), session.client("sqs")
    name = deployer(session).bucket
    s3.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(
        Bucket=name, Tagging={"TagSet": [{"Key": STACK_TAG, "Value": "glueline"}, {"Key": "team", "Value": "payments"}]}
    )
    queue = sqs.create_queue(QueueName="payments-uploads")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    theirs = {"Id": "payments", "QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
    s3.put_bucket_notification_configuration(Bucket=name, NotificationConfiguration={"QueueConfigurations": [theirs]})
    archive = {
        "ID": "payments-archive",
        "Filter": {"Prefix": "archive/"},
        "Status": "Enabled",
        "Expiration": {"Days": 400},
    }
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [archive]})

    for _ in range(2):
        deployer(session).deploy()
        queues = s3.get_bucket_notification_configuration(Bucket=name)["QueueConfigurations"]
        assert [(q["Id"], q["QueueArn"]) for q in queues] == [("payments", queue_arn)]
        rules = {r["ID"] for r in s3.get_bucket_lifecycle_configuration(Bucket=name)["Rules"]}
        assert rules == {"payments-archive", "glueline-rejected-rows", "glueline-temp", "glueline-incomplete-uploads"}
        tags = {t["Key"]: t["Value"] for t in s3.get_bucket_tagging(Bucket=name)["TagSet"]}
        assert tags == {STACK_TAG: "glueline", "team": "payments"}
    bucket = by_resource(deployer(session).plan())[f"s3://{name}"]
    assert "lifecycle rules" not in bucket.changed
    # Their policy statements too (the TLS-only policy is only planned here: see ``deployer``).
    read = {"Sid": "payments-read", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"}}
    read |= {"Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{name}/archive/*"}
    s3.put_bucket_policy(Bucket=name, Policy=json.dumps({"Version": "2012-10-17", "Statement": [read]}))
    bucket = by_resource(deployer(session, tls_only=True).plan())[f"s3://{name}"]
    statements = json.loads(_step(bucket, "put_bucket_policy").params["Policy"])["Statement"]
    assert [st["Sid"] for st in statements] == ["payments-read", "TLSOnly"]


def test_a_deleted_secret_is_recoverable_for_seven_days_and_a_deploy_within_them_restores_it(session):
    deployer(session).deploy()
    sm = session.client("secretsmanager")
    destroying = deployer(session)
    # moto deletes no Glue connection: the secret's deletion alone, as destroy --delete-data runs it
    deletions = [d for d in destroying.plan_destroy() if d.resource == "secret glueline/rds"]
    (secret,) = destroying.destroy(deletions, delete_data=True)
    assert secret.action == "deleted" and "restore-secret --secret-id glueline/rds" in secret.detail
    assert "DeletedDate" in sm.describe_secret(SecretId="glueline/rds")  # scheduled, not gone
    assert "secret glueline/rds" not in by_resource(deployer(session).plan_destroy())  # nothing left to delete

    planned = by_resource(deployer(session).plan())["secret glueline/rds"]
    assert planned.action == "update" and planned.changed[0] == "restored from its scheduled deletion"
    deployer(session).deploy()
    assert "DeletedDate" not in sm.describe_secret(SecretId="glueline/rds")
    assert "etl" in sm.get_secret_value(SecretId="glueline/rds")["SecretString"]


def test_a_database_deploy_creates_gets_the_jobs_own_login_made_by_the_login_job_once(session, tmp_path, monkeypatch):
    """Deploy never connects to the database: the login job makes the ETL's login from inside its network
    (the one role that reads RDS's master secret), started and waited for by deploy, and the job's secret
    remembers what it made, so the next deploy runs no job; a new password makes it again."""
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n")
    deploying = deployer_in(session, create_database=True, db_url=None, db_ca_bundle=bundle, bucket_tls_only=False)
    deploying.deploy()
    secrets = session.client("secretsmanager")
    stored = json.loads(secrets.get_secret_value(SecretId="glueline/rds")["SecretString"])
    instance = session.client("rds").describe_db_instances(DBInstanceIdentifier="glueline-db")["DBInstances"][0]
    assert stored["username"] == "glueline_etl" and len(stored["password"]) >= 32
    assert stored["master_secret"] == instance["MasterUserSecret"]["SecretArn"]
    runs = session.client("glue").get_job_runs(JobName="ETL_DB_Login")["JobRuns"]
    assert [run["JobRunState"] for run in runs] == ["SUCCEEDED"]

    again = by_resource(deploying.plan())
    assert again["database login glueline_etl"].action == "unchanged"
    assert again["secret glueline/rds"].action == "unchanged"  # the password kept

    secrets.put_secret_value(SecretId="glueline/rds", SecretString=json.dumps({**stored, "password": "changed"}))
    changed = by_resource(deploying.plan())["database login glueline_etl"]
    assert (changed.action, [getattr(s, "method", None) or s.waiter for s in changed.steps]) == (
        "update",
        ["start_job_run", "job_run_succeeded", "tag_resource"],
    )

    # A deployment of the release before this one: its secret named the master with RDS's secret as
    # password_secret. The next deploy (the database found from the secret) makes the job's own login.
    legacy = {**stored, "username": "glueline", "password": "", "password_secret": stored["master_secret"]}
    del legacy["master_secret"]
    secrets.put_secret_value(SecretId="glueline/rds", SecretString=json.dumps(legacy))
    upgrading = deployer_in(session, db_url=None, db_ca_bundle=bundle, bucket_tls_only=False)

    def login_job_fails(client, waiter, *args, **kwargs):
        if waiter == GLUE_RUN_ENDED:
            raise DeployError("the Glue job ETL_DB_Login to make the login glueline_etl: FAILED")
        return wait_until(client, waiter, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(executor, "wait_until", login_job_fails)
        with pytest.raises(DeployError, match="ETL_DB_Login"):
            upgrading.deploy()

    def value(stage: str) -> dict:
        return json.loads(secrets.get_secret_value(SecretId="glueline/rds", VersionStage=stage)["SecretString"])

    # The ETL still logs in as it did: the new login waits, in the secret's AWSPENDING value.
    assert value("AWSCURRENT") == legacy and value("AWSPENDING")["username"] == "glueline_etl"
    upgrading.deploy()
    # (moto answers a read naming no stage from the version created first: AWS from AWSCURRENT)
    upgraded = value("AWSCURRENT")
    assert (upgraded["username"], upgraded["master_secret"]) == ("glueline_etl", stored["master_secret"])
    assert upgraded["password"] not in ("", stored["password"]) and "password_secret" not in upgraded
    assert len(session.client("glue").get_job_runs(JobName="ETL_DB_Login")["JobRuns"]) == 3
    assert "AWSPENDING" not in str(secrets.describe_secret(SecretId="glueline/rds")["VersionIdsToStages"])
