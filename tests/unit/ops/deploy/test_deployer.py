"""Deploy's plans as data, against account states made in moto (no emulator server): what a plan
declares, that plan writes nothing, that deploy converges to a plan with nothing to do, and what deploy
refuses (another stack's resources; resources nobody tagged, unless adopted)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from glueline.ops.deploy.aws import DeployError
from glueline.ops.deploy.desired import GLUE_SECURITY_GROUP, REGION_TAG, STACK_TAG
from glueline.ops.deploy.models import APICall, Ref, Wait
from glueline.ops.deploy.plans import database
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
    # The secret says where it points, without its password, and what the server offered from here.
    assert changes["secret glueline/rds"].detail == (
        "postgresql://etl@db.example:5432/bank, sslmode=prefer (the server: unreachable from here)"
    )
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
    assert reused.action == "update" and "reused, left by destroy" in reused.detail
    assert [(s.method, s.params["VpcEndpointId"]) for s in reused.steps] == [("modify_vpc_endpoint", their_endpoint)]

    deploying.deploy()
    endpoints = ec2.describe_vpc_endpoints(Filters=[{"Name": "service-name", "Values": [secretsmanager]}])
    assert [e["VpcEndpointId"] for e in endpoints["VpcEndpoints"]] == [their_endpoint]  # reused, not doubled
