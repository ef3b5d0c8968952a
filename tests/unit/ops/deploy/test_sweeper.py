"""Destroy's plan as data, against an account state made in moto (no emulator server): only resources
the settings name *and* this stack's tag are deleted; data is kept unless asked; every step declared."""

from __future__ import annotations

import json

from glueline.ops.deploy.desired import STACK_TAG
from glueline.ops.deploy.executor import Executor
from glueline.ops.deploy.models import APICall, EmptyBucket
from glueline.ops.deploy.sweeper import Sweeper
from glueline.settings import Settings

from .conftest import REGION, target_of

TRUST = json.dumps(
    {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
)
POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}]}
)
OURS = [{"Key": STACK_TAG, "Value": "glueline"}]


def sweeper(session) -> Sweeper:
    settings = Settings(_env_file=None)
    return Sweeper(settings, target_of(session, settings))


def test_our_name_without_our_tag_is_left_and_our_tag_on_another_name_is_not_looked_at(session):
    iam = session.client("iam")
    # The walkthrough's role, made by hand: our name, no tag, a FullAccess policy attached.
    iam.create_role(RoleName="GlueServiceRole", AssumeRolePolicyDocument=TRUST)
    full_access = iam.create_policy(PolicyName="S3FullAccess", PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="GlueServiceRole", PolicyArn=full_access)
    iam.create_role(RoleName="SomeoneElsesRole", AssumeRolePolicyDocument=TRUST, Tags=OURS)
    deletions = {d.resource: d for d in sweeper(session).plan_destroy()}
    assert set(deletions) == {"iam role GlueServiceRole"}
    left = deletions["iam role GlueServiceRole"]
    assert (left.ours, left.action(delete_data=True), left.steps) == (False, "left", [])
    assert "not tagged glueline:stack=glueline" in left.detail


def test_a_role_of_ours_is_deleted_with_its_policies_inline_and_attached(session):
    iam = session.client("iam")
    iam.create_role(RoleName="LambdaS3ExecutionRole", AssumeRolePolicyDocument=TRUST, Tags=OURS)
    iam.put_role_policy(
        RoleName="LambdaS3ExecutionRole", PolicyName="LambdaS3ExecutionRolePolicy", PolicyDocument=POLICY
    )
    arn = iam.create_policy(PolicyName="LambdaFullAccess", PolicyDocument=POLICY)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="LambdaS3ExecutionRole", PolicyArn=arn)
    (deletion,) = sweeper(session).plan_destroy()
    assert deletion.action(delete_data=False) == "delete"
    assert deletion.steps == [
        APICall(
            "iam",
            "delete_role_policy",
            {"RoleName": "LambdaS3ExecutionRole", "PolicyName": "LambdaS3ExecutionRolePolicy"},
        ),
        APICall("iam", "detach_role_policy", {"RoleName": "LambdaS3ExecutionRole", "PolicyArn": arn}),
        APICall("iam", "delete_role", {"RoleName": "LambdaS3ExecutionRole"}),
    ]
    assert iam.list_roles()["Roles"]  # planning deleted nothing
    Executor(session.client).execute(deletion.steps)
    assert iam.list_roles()["Roles"] == []


def test_data_is_kept_unless_asked_and_the_plan_deletes_nothing(session):
    sweep = sweeper(session)
    s3 = session.client("s3")
    s3.create_bucket(Bucket=sweep.bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    s3.put_bucket_tagging(Bucket=sweep.bucket, Tagging={"TagSet": OURS})
    s3.put_object(Bucket=sweep.bucket, Key="source/a.csv", Body=b"x")
    session.client("secretsmanager").create_secret(Name="glueline/rds", SecretString="{}", Tags=OURS)
    deletions = {d.resource: d for d in sweep.plan_destroy()}
    assert set(deletions) == {f"s3://{sweep.bucket}", "secret glueline/rds"}
    assert {d.action(delete_data=False) for d in deletions.values()} == {"keep"}
    assert {d.action(delete_data=True) for d in deletions.values()} == {"delete"}
    bucket = deletions[f"s3://{sweep.bucket}"]
    assert bucket.steps == [EmptyBucket(sweep.bucket), APICall("s3", "delete_bucket", {"Bucket": sweep.bucket})]
    assert s3.list_objects_v2(Bucket=sweep.bucket)["KeyCount"] == 1
    Executor(session.client).execute(bucket.steps)
    assert sweep.bucket not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_a_database_loses_its_deletion_protection_only_in_a_deletion_of_data(session):
    session.client("rds").create_db_instance(
        DBInstanceIdentifier="glueline-db",
        Engine="postgres",
        DBInstanceClass="db.t4g.micro",
        AllocatedStorage=20,
        MasterUsername="glueline",
        ManageMasterUserPassword=True,
        DeletionProtection=True,
        Tags=OURS,
    )
    (database,) = sweeper(session).plan_destroy()
    assert database.holds_data and database.action(delete_data=False) == "keep"
    lift = database.steps[0]
    assert (lift.method, lift.params["DeletionProtection"]) == ("modify_db_instance", False)
    assert database.steps[1].params["SkipFinalSnapshot"] is False
