"""`glueline plan / deploy / plan / destroy` as a user runs them against an AWS account — here moto server,
an offline emulator of the AWS APIs (IAM, S3, DynamoDB, Secrets Manager, Glue, Lambda, EventBridge,
STS) reached over HTTP through the standard AWS configuration (`AWS_ENDPOINT_URL`), nothing else set."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import pytest

from glueline.local.ports import free_port
from glueline.ops.deploy.desired import STACK_TAG

pytestmark = pytest.mark.embedded_only  # deploy against moto, no stack

DB_URL = "postgresql://etl:s3cr3t-pw@db.example:5432/bank"
REGION = "eu-west-1"


def report_eventbridge_notifications(monkeypatch) -> None:
    """moto 5.2.5 stores a bucket's EventBridgeConfiguration but leaves it out of
    GetBucketNotificationConfiguration, where AWS returns it (``<EventBridgeConfiguration/>``): put it
    back, so that the emulator answers as AWS does."""
    from moto.s3.responses import S3Response

    original = S3Response.get_bucket_notification

    def get_bucket_notification(self):
        status, headers, body = original(self)
        config = self.backend.get_bucket_notification_configuration(self.bucket_name)
        if config is not None and config.event_bridge is not None and "EventBridgeConfiguration" not in body:
            element = "<EventBridgeConfiguration/></NotificationConfiguration>"
            body = (
                body[:-2] + ">" + element
                if body.endswith("/>")
                else body.replace("</NotificationConfiguration>", element)
            )
        return status, headers, body

    monkeypatch.setattr(S3Response, "get_bucket_notification", get_bucket_notification)


def delete_glue_connections(monkeypatch) -> None:
    """moto 5.2.5 creates Glue connections but has no DeleteConnection: add it, as Glue answers it."""
    from moto.glue.models import GlueBackend
    from moto.glue.responses import GlueResponse

    def delete_connection(self):
        name = json.loads(self.body)["ConnectionName"]
        backend: GlueBackend = self.glue_backend
        connection = backend.connections.pop(name)
        backend.tagger.delete_all_tags_for_resource(connection.arn)
        return "{}"

    monkeypatch.setattr(GlueResponse, "delete_connection", delete_connection, raising=False)


def answer_lambda_account_settings(monkeypatch) -> None:
    """moto 5.2.5 has no Lambda GetAccountSettings, which plan reads before it reserves concurrency: add
    it, as Lambda answers it for an account of AWS's default limit (1000)."""
    from moto.awslambda import urls

    def account_settings(request, full_url, headers):
        limit = {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000}
        return 200, {"Content-Type": "application/json"}, json.dumps({"AccountLimit": limit})

    monkeypatch.setitem(urls.url_paths, r"{0}/(?P<api_version>[^/]+)/account-settings/?$", account_settings)


@pytest.fixture
def account(tmp_path, monkeypatch):
    """An empty account in a moto server of its own; the environment a user's shell would have."""
    from moto.server import ThreadedMotoServer

    report_eventbridge_notifications(monkeypatch)
    delete_glue_connections(monkeypatch)
    answer_lambda_account_settings(monkeypatch)
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    # moto keeps its accounts in the process: every test starts from an empty one.
    urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}/moto-api/reset", method="POST")).close()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "GLUELINE_"))}
    env |= {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "GLUELINE_STATE_DIR": str(tmp_path / "state"),
    }
    try:
        yield env
    finally:
        server.stop()


def glueline(env: dict, *args: str, answer: str | None = None) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).with_name("glueline")), *args]
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300, input=answer)
    assert "s3cr3t-pw" not in result.stdout + result.stderr  # the password is never printed
    return result


def changes(result: subprocess.CompletedProcess) -> dict[str, dict]:
    assert result.returncode == 0, result.stdout + result.stderr
    return {c["resource"]: c for c in json.loads(result.stdout)}


def client(env: dict, service: str):
    return boto3.client(
        service,
        endpoint_url=env["AWS_ENDPOINT_URL"],
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def tagged(env: dict) -> set[str]:
    """Every resource of the account that carries the stack tag."""
    found = set()
    s3, ddb, sm = client(env, "s3"), client(env, "dynamodb"), client(env, "secretsmanager")
    iam, lam, glue, events = client(env, "iam"), client(env, "lambda"), client(env, "glue"), client(env, "events")
    for bucket in s3.list_buckets()["Buckets"]:
        tags = s3.get_bucket_tagging(Bucket=bucket["Name"]).get("TagSet", [])
        if any(t["Key"] == STACK_TAG for t in tags):
            found.add(f"s3://{bucket['Name']}")
    for table in ddb.list_tables()["TableNames"]:
        arn = ddb.describe_table(TableName=table)["Table"]["TableArn"]
        if any(t["Key"] == STACK_TAG for t in ddb.list_tags_of_resource(ResourceArn=arn).get("Tags", [])):
            found.add(f"dynamodb {table}")
    for secret in sm.list_secrets()["SecretList"]:
        if any(t["Key"] == STACK_TAG for t in secret.get("Tags", [])):
            found.add(f"secret {secret['Name']}")
    for role in iam.list_roles()["Roles"]:
        if any(t["Key"] == STACK_TAG for t in iam.list_role_tags(RoleName=role["RoleName"])["Tags"]):
            found.add(f"iam role {role['RoleName']}")
    for function in lam.list_functions()["Functions"]:
        if STACK_TAG in lam.list_tags(Resource=function["FunctionArn"]).get("Tags", {}):
            found.add(f"lambda {function['FunctionName']}")
    for job in glue.get_jobs()["Jobs"]:
        arn = f"arn:aws:glue:{REGION}:123456789012:job/{job['Name']}"
        if STACK_TAG in glue.get_tags(ResourceArn=arn).get("Tags", {}):
            found.add(f"glue job {job['Name']}")
    for connection in glue.get_connections()["ConnectionList"]:
        arn = f"arn:aws:glue:{REGION}:123456789012:connection/{connection['Name']}"
        if STACK_TAG in glue.get_tags(ResourceArn=arn).get("Tags", {}):
            found.add(f"glue connection {connection['Name']}")
    ec2 = client(env, "ec2")
    for endpoint in ec2.describe_vpc_endpoints()["VpcEndpoints"]:
        alive = endpoint["State"].lower() not in ("deleted", "deleting")  # AWS lists deleted ones a while
        if alive and any(t["Key"] == STACK_TAG for t in endpoint.get("Tags", [])):
            found.add(f"vpc endpoint {endpoint['ServiceName']}")
    for group in ec2.describe_security_groups()["SecurityGroups"]:
        if any(t["Key"] == STACK_TAG for t in group.get("Tags", [])):
            found.add(f"security group {group['GroupName']}")
    rds = client(env, "rds")
    for instance in rds.describe_db_instances()["DBInstances"]:
        if any(t["Key"] == STACK_TAG for t in instance.get("TagList", [])):
            found.add(f"rds instance {instance['DBInstanceIdentifier']}")
    for group in rds.describe_db_subnet_groups()["DBSubnetGroups"]:
        tags = rds.list_tags_for_resource(ResourceName=group["DBSubnetGroupArn"])["TagList"]
        if any(t["Key"] == STACK_TAG for t in tags):
            found.add(f"db subnet group {group['DBSubnetGroupName']}")
    for rule in events.list_rules()["Rules"]:
        if any(t["Key"] == STACK_TAG for t in events.list_tags_for_resource(ResourceARN=rule["Arn"])["Tags"]):
            found.add(f"eventbridge rule {rule['Name']}")
    logs = client(env, "logs")
    for group in logs.describe_log_groups().get("logGroups", []):
        if STACK_TAG in logs.list_tags_log_group(logGroupName=group["logGroupName"]).get("tags", {}):
            found.add(f"log group {group['logGroupName']}")
    sqs = client(env, "sqs")
    for url in sqs.list_queues().get("QueueUrls", []):
        if STACK_TAG in sqs.list_queue_tags(QueueUrl=url).get("Tags", {}):
            found.add(f"sqs queue {url.rsplit('/', 1)[-1]}")
    return found


def test_deploy_refuses_what_it_did_not_make_and_adopts_only_when_asked(account):
    """The walkthrough's role made by hand (no tag, AmazonS3FullAccess attached) is shown as adopt and
    refused; --adopt takes it over and detaches the FullAccess policy. A role another stack tagged is a
    conflict even --adopt leaves alone."""
    iam = client(account, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName="GlueServiceRole", AssumeRolePolicyDocument=trust)
    full = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]})
    full_access = iam.create_policy(PolicyName="AmazonS3FullAccess", PolicyDocument=full)["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="GlueServiceRole", PolicyArn=full_access)

    planned = changes(glueline(account, "plan", "--db-url", DB_URL, "--json"))
    role = planned["iam role GlueServiceRole"]
    assert role["action"] == "adopt" and "managed policy AmazonS3FullAccess detached" in role["changed"]
    shown = glueline(account, "plan", "--db-url", DB_URL, "--calls")
    assert "iam.detach_role_policy(RoleName='GlueServiceRole'" in shown.stdout, shown.stdout
    assert "--adopt" in shown.stderr

    refused = glueline(account, "deploy", "--db-url", DB_URL, "--yes")
    assert refused.returncode != 0 and "not made by this stack" in refused.stderr, refused.stderr
    assert tagged(account) == set()  # refused before anything was made

    adopted = changes(glueline(account, "deploy", "--db-url", DB_URL, "--json", "--yes", "--adopt"))
    assert adopted["iam role GlueServiceRole"]["action"] == "adopted"
    assert iam.list_attached_role_policies(RoleName="GlueServiceRole")["AttachedPolicies"] == []
    assert {c["action"] for c in changes(glueline(account, "plan", "--json")).values()} == {"unchanged"}

    iam.tag_role(RoleName="LambdaS3ExecutionRole", Tags=[{"Key": STACK_TAG, "Value": "payments"}])
    conflict = changes(glueline(account, "plan", "--json"))["iam role LambdaS3ExecutionRole"]
    assert conflict["action"] == "conflict" and "payments" in conflict["detail"]
    refused = glueline(account, "deploy", "--yes", "--adopt")
    assert refused.returncode != 0 and "another stack" in refused.stderr, refused.stderr


def test_plan_deploy_plan_destroy_on_an_account(account):
    planned = changes(glueline(account, "plan", "--db-url", DB_URL, "--json"))
    assert {c["action"] for c in planned.values()} == {"create"}
    assert {c["type"] for c in planned.values()} >= {
        "s3 bucket",
        "s3 object",
        "dynamodb table",
        "iam role",
        "secret",
        "glue job",
        "lambda function",
        "eventbridge rule",
        "security group",
        "vpc endpoint",
        "glue connection",
    }
    assert tagged(account) == set()  # plan wrote nothing

    deployed = changes(glueline(account, "deploy", "--db-url", DB_URL, "--json", "--yes"))
    assert set(deployed) == set(planned) and {c["action"] for c in deployed.values()} == {"created"}

    # The job needs no internet: its modules come from wheels in the bucket, it runs in the VPC.
    job = client(account, "glue").get_job(JobName="ETL_Job_to_RDS")["Job"]
    modules = job["NonOverridableArguments"]["--additional-python-modules"].split(",")
    assert job["NonOverridableArguments"]["--python-modules-installer-option"] == "--no-index"
    assert any("/scripts/wheels/psycopg_binary-" in m and "x86_64" in m for m in modules), modules
    for module in modules:
        bucket, key = module.removeprefix("s3://").split("/", 1)
        client(account, "s3").head_object(Bucket=bucket, Key=key)
    assert job["Connections"] == {"Connections": ["glueline-network"]}

    # --profile selects the account exactly as AWS_PROFILE does: a profile with the emulator's endpoint.
    config = Path(account["GLUELINE_STATE_DIR"]).parent / "aws-config"
    config.write_text(f"[profile moto]\nendpoint_url = {account['AWS_ENDPOINT_URL']}\nregion = {REGION}\n")
    by_profile = {k: v for k, v in account.items() if k not in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")}
    by_profile["AWS_CONFIG_FILE"] = str(config)
    profiled = changes(glueline(by_profile, "plan", "--profile", "moto", "--json"))
    assert {c["action"] for c in profiled.values()} == {"unchanged"}

    # No --db-url any more: the target comes from the deployed secret.
    again = changes(glueline(account, "plan", "--json"))
    assert {c["action"] for c in again.values()} == {"unchanged"}, [
        c for c in again.values() if c["action"] != "unchanged"
    ]
    assert set(again) == set(planned)
    redeployed = changes(glueline(account, "deploy", "--json", "--yes"))
    assert {c["action"] for c in redeployed.values()} == {"unchanged"}

    expected = {r for r, c in planned.items() if c["type"] != "s3 object"}
    assert tagged(account) == expected

    # Drift shows as an update naming what changed.
    client(account, "lambda").update_function_configuration(FunctionName="ETL_Lambda_Function", Timeout=3)
    drifted = changes(glueline(account, "plan", "--json"))
    assert drifted["lambda ETL_Lambda_Function"]["action"] == "update"
    assert drifted["lambda ETL_Lambda_Function"]["changed"] == ["Timeout"]

    # Destroy lists what it would delete and asks; answered no, it deletes nothing.
    refused = glueline(account, "destroy", answer="n\n")
    assert refused.returncode == 1 and "lambda ETL_Lambda_Function" in refused.stdout, refused.stdout + refused.stderr
    assert "delete these" in refused.stderr and tagged(account) == expected

    # A tag anyone can set is not enough: a role of another name carrying this stack's tag is not
    # this stack's to delete.
    iam = client(account, "iam")
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(
        RoleName="SomeoneElsesRole", AssumeRolePolicyDocument=trust, Tags=[{"Key": STACK_TAG, "Value": "glueline"}]
    )

    destroyed = changes(glueline(account, "destroy", "--json", "--yes"))
    kept = {r for r, c in destroyed.items() if c["action"] == "kept"}
    data = {r for r in expected if r.startswith(("s3://", "dynamodb ", "secret ", "sqs queue ", "log group "))}
    assert kept == data and {r for r, c in destroyed.items() if c["action"] == "deleted"} == expected - data
    assert tagged(account) == data | {"iam role SomeoneElsesRole"}  # nothing of ours is left but the data

    removed = changes(glueline(account, "destroy", "--json", "--yes", "--delete-data"))
    assert {r for r, c in removed.items() if c["action"] == "deleted"} == data
    assert tagged(account) == {"iam role SomeoneElsesRole"}


def test_an_rds_database_is_verified_against_the_rds_ca_bundle(account, tmp_path):
    """libpq's default (prefer) checks no certificate: for RDS, deploy stores verify-full and ships the
    CA bundle to scripts/, from where the job reads it."""
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    env = {**account, "GLUELINE_DB_CA_BUNDLE": str(bundle)}
    url = "postgresql://etl:s3cr3t-pw@mydb.abc123.eu-west-1.rds.amazonaws.com:5432/bank"
    changes(glueline(env, "deploy", "--db-url", url, "--json", "--yes"))
    secret = json.loads(client(env, "secretsmanager").get_secret_value(SecretId="glueline/rds")["SecretString"])
    assert secret["sslmode"] == "verify-full"
    bucket, key = secret["sslrootcert"].removeprefix("s3://").split("/", 1)
    assert key == "scripts/rds-ca-bundle.pem"
    assert client(env, "s3").get_object(Bucket=bucket, Key=key)["Body"].read() == bundle.read_bytes()
    assert {c["action"] for c in changes(glueline(env, "plan", "--json")).values()} == {"unchanged"}


def test_deploy_creates_a_private_database_only_glue_can_reach(account, tmp_path):
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")
    env = {**account, "GLUELINE_DB_CA_BUNDLE": str(bundle)}
    planned = changes(glueline(env, "plan", "--create-database", "--json"))
    assert {r for r, c in planned.items() if c["type"] in ("rds instance", "db subnet group")} == {
        "rds instance glueline-db",
        "db subnet group glueline-db",
    }
    assert planned["security group glueline-db"]["action"] == "create"
    deployed = changes(glueline(env, "deploy", "--create-database", "--json", "--yes"))
    assert {c["action"] for c in deployed.values()} == {"created"}

    rds, ec2 = client(env, "rds"), client(env, "ec2")
    (instance,) = rds.describe_db_instances(DBInstanceIdentifier="glueline-db")["DBInstances"]
    assert (instance["Engine"], instance["EngineVersion"].split(".")[0]) == ("postgres", "16")
    assert instance["PubliclyAccessible"] is False and instance["StorageEncrypted"] is True
    assert instance["DeletionProtection"] is True and instance["MasterUserSecret"]["SecretArn"]
    groups = {g["GroupName"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}
    (rule,) = groups["glueline-db"]["IpPermissions"]  # PostgreSQL from Glue's workers, nothing else
    assert (rule["FromPort"], rule["ToPort"], rule["IpRanges"]) == (5432, 5432, [])
    assert [p["GroupId"] for p in rule["UserIdGroupPairs"]] == [groups["glueline-glue"]["GroupId"]]
    assert [v["VpcSecurityGroupId"] for v in instance["VpcSecurityGroups"]] == [groups["glueline-db"]["GroupId"]]

    secret = json.loads(client(env, "secretsmanager").get_secret_value(SecretId="glueline/rds")["SecretString"])
    # The job's own login (made by the login job, a run on moto's Glue), never the master: the master's
    # password stays in RDS's secret, which only the login job's role reads.
    assert secret["host"] == instance["Endpoint"]["Address"] and secret["username"] == "glueline_etl"
    assert len(secret["password"]) >= 32 and secret["master_secret"] == instance["MasterUserSecret"]["SecretArn"]
    assert deployed["database login glueline_etl"]["action"] == "created"
    policy = json.dumps(
        client(env, "iam").get_role_policy(RoleName="GlueServiceRole", PolicyName="GlueServiceRolePolicy")
    )
    assert instance["MasterUserSecret"]["SecretArn"] not in policy
    assert secret["sslmode"] == "verify-full"
    lambda_env = client(env, "lambda").get_function(FunctionName="ETL_Lambda_Function")["Configuration"]
    assert lambda_env["Environment"]["Variables"]["TARGET"].startswith(instance["Endpoint"]["Address"] + ":")

    again = changes(glueline(env, "plan", "--json"))
    assert {c["action"] for c in again.values()} == {"unchanged"}, [
        c for c in again.values() if c["action"] != "unchanged"
    ]
    kept = changes(glueline(env, "destroy", "--json", "--yes"))
    database = {"rds instance glueline-db", "db subnet group glueline-db", "security group glueline-db"}
    assert {r for r, c in kept.items() if c["action"] == "kept"} >= database
    assert tagged(env) >= database
    removed = changes(glueline(env, "destroy", "--json", "--yes", "--delete-data"))
    assert {r for r, c in removed.items() if c["action"] == "deleted"} >= database
    assert tagged(env) == set()
    assert rds.describe_db_snapshots()["DBSnapshots"]  # a final snapshot was kept


def test_status_filters_and_run_logs_on_an_account_by_profile(account, tmp_path):
    """The AWS path of `status --status/--since/--file` (DynamoDB) and `logs --run` (Glue, CloudWatch
    Logs), reached by `--profile` alone: a profile whose configuration names the endpoint."""
    from glueline.shared.audit import AuditRecord, AuditTable, Status, table_spec
    from glueline.shared.gluerun import OUTPUT_GROUP

    ddb = client(account, "dynamodb")
    ddb.create_table(**table_spec("S3_Audit_1"))
    audit = AuditTable(ddb, "S3_Audit_1")
    for fid, name, uploaded, status in [
        ("f1", "daily_2024-07-12.csv", "2024-07-12T08:00:00.000Z", Status.COMPLETED),
        ("f2", "daily_2024-07-13.csv", "2024-07-13T08:00:00.000Z", Status.FAILED),
        ("f3", "weekly_2024-07-13.csv", "2024-07-13T09:00:00.000Z", Status.FAILED),
    ]:
        audit.create(AuditRecord(fid, name, "b", f"source/{name}", '"e"', 1, uploaded, "h:5432/d/public.t", status))
    glue, logs = client(account, "glue"), client(account, "logs")
    glue.create_job(Name="ETL_Job_to_RDS", Role="arn:aws:iam::123456789012:role/r", Command={"Name": "glueetl"})
    run_id = glue.start_job_run(JobName="ETL_Job_to_RDS")["JobRunId"]
    logs.create_log_group(logGroupName=OUTPUT_GROUP)
    logs.create_log_stream(logGroupName=OUTPUT_GROUP, logStreamName=run_id)
    now = int(time.time() * 1000)
    lines = ["batch of 1 file(s): claim 0.1s", "daily_2024-07-13.csv: FAILED (attempt 1: database refused)"]
    logs.put_log_events(
        logGroupName=OUTPUT_GROUP,
        logStreamName=run_id,
        logEvents=[{"timestamp": now + i, "message": line} for i, line in enumerate(lines)],
    )

    config = tmp_path / "aws-config"
    config.write_text(
        f"[profile moto]\nregion = {REGION}\nendpoint_url = {account['AWS_ENDPOINT_URL']}\n"
        "aws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    env = {k: v for k, v in account.items() if not k.startswith("AWS_")} | {"AWS_CONFIG_FILE": str(config)}

    def names(*args: str) -> list[str]:
        result = glueline(env, "status", "--json", "--profile", "moto", *args)
        assert result.returncode == 0, result.stdout + result.stderr
        return [f["file_name"] for f in json.loads(result.stdout)["files"]]

    assert names() == ["daily_2024-07-12.csv", "daily_2024-07-13.csv", "weekly_2024-07-13.csv"]
    assert names("--status", "FAILED", "--file", "daily") == ["daily_2024-07-13.csv"]
    assert names("--since", "2024-07-13T08:30") == ["weekly_2024-07-13.csv"]
    assert names("--since", "2024-07-13T10:30+02:00", "--status", "failed") == ["weekly_2024-07-13.csv"]

    shown = glueline(env, "logs", "--run", run_id, "--profile", "moto")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines() == lines and f"run {run_id}: " in shown.stderr
    assert "configured AWS environment (moto)" not in shown.stdout  # the lines, nothing else, on stdout
