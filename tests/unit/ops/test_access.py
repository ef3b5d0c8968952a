"""Would IAM allow what the Lambda and the Glue job do? Emulators enforce no IAM, so this test records
every AWS call each side makes while it handles files — a new file, a refused one, the sweep, loads, a
failure given up, a redelivery, a retry — (real boto3 clients against moto) and has the IAM requests
they need evaluated against the role policies deploy makes (``tests/access/iam.py``). On AWS, Spark
reads the claimed object through Glue's S3 filesystem, outside boto3: its requests (``s3:GetObject`` on
the key, ``s3:ListBucket`` for the key's prefix) are added for the job.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field, replace

import boto3
import pytest

from glueline.intake.intake import Intake
from glueline.job.run import JobRun
from glueline.ops.deploy.desired import AccountFacts, desired_state
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import AuditTable, Status, table_spec
from glueline.shared.dbsecret import DbConnection, master_of
from glueline.shared.events import object_created_event, scheduled_event
from glueline.shared.lifecycle import Lifecycle

from ...access.iam import Request, denied, ensure_simulator, evaluate, iam_requests
from ..conftest import GOOD_CSV
from ..job.harness import ScriptedLoader

DB = DbConnection(host="db.example", port=5432, dbname="bank", username="etl", password="secret")


@dataclass
class Recorder:
    """The IAM requests of one role's calls, made through the clients it hands out."""

    role: str
    region: str
    account: str
    requests: list[Request] = field(default_factory=list)
    untranslated: list[str] = field(default_factory=list)

    def client(self, session: boto3.Session, service: str):
        client = session.client(service, region_name=self.region)
        client.meta.events.register("provide-client-params.*.*", self._before)
        client.meta.events.register("after-call.*.*", self._after)
        return client

    def _before(self, params, model, context, **_):
        context["glueline_params"] = dict(params)

    def _after(self, http_response, model, context, **_):
        service, operation = model.service_model.service_name, model.name
        params = context.get("glueline_params", {})
        translated = iam_requests(
            self.role, self.region, self.account, service, operation, params, http_response.status_code
        )
        if translated is None:
            self.untranslated.append(f"{service}.{operation}")
        else:
            self.requests.extend(translated)


@pytest.fixture(scope="module", autouse=True)
def simulator():
    ensure_simulator()


@dataclass
class Account:
    session: boto3.Session
    region: str
    account: str
    bucket: str
    settings: Settings
    policies: dict[str, dict]
    target: str
    facts: AccountFacts

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    def recorder(self, role: str) -> Recorder:
        return Recorder(role, self.region, self.account)

    def lifecycle(self, recorder: Recorder, max_attempts: int = 3) -> Lifecycle:
        s = self.settings
        audit = AuditTable(recorder.client(self.session, "dynamodb"), s.audit_table)
        return Lifecycle(
            audit,
            recorder.client(self.session, "s3"),
            recorder.client(self.session, "glue"),
            s.glue_job,
            max_attempts,
            self.target,
        )

    def put(self, key: str, body: bytes) -> None:
        self.session.client("s3").put_object(Bucket=self.bucket, Key=key, Body=body)

    def keys(self) -> list[str]:
        listing = self.session.client("s3").list_objects_v2(Bucket=self.bucket)
        return sorted(o["Key"] for o in listing.get("Contents", []))


@pytest.fixture
def account(monkeypatch):
    """An account in moto with what deploy would create for the pipeline's data (bucket, audit table,
    Glue job, secret) and the role policies deploy would attach."""
    from moto import mock_aws

    from glueline.ops.deploy.deployer import deployer_for
    from glueline.ops.target import resolve_target

    for name in [n for n in os.environ if n.startswith(("AWS_", "GLUELINE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.Session(region_name="eu-west-1")
        settings = Settings(_env_file=None, db_url=DB.url(with_password=True))
        with resolve_target(settings, session=session) as target:
            deployer = deployer_for(target)
        session.client("s3").create_bucket(
            Bucket=target.bucket, CreateBucketConfiguration={"LocationConstraint": target.region}
        )
        session.client("dynamodb").create_table(**table_spec(settings.audit_table))
        session.client("glue").create_job(
            Name=settings.glue_job, Role="GlueServiceRole", Command={"Name": "glueetl", "ScriptLocation": "s3://x/y.py"}
        )
        session.client("secretsmanager").create_secret(Name=settings.db_secret_name, SecretString=DB.secret_string())
        policies = {role: wanted.policy for role, wanted in deployer.desired().roles.items()}
        facts = deployer.facts()
        yield Account(
            session, target.region, target.account, target.bucket, settings, policies, deployer.rows_target, facts
        )


def test_every_call_of_the_lambda_and_the_job_is_allowed_by_its_role(account):
    s = account.settings
    lambda_calls, job_calls = account.recorder(s.lambda_role), account.recorder(s.glue_role)
    intake = Intake(account.lifecycle(lambda_calls), account.bucket)

    def announce(name: str, body: bytes) -> dict:
        account.put(f"source/{name}", body)
        return intake.handle(object_created_event(account.bucket, f"source/{name}"))

    # The Lambda: a new file, a file refused for its header, then the daily sweep.
    assert announce("a.csv", GOOD_CSV)["files"] == {"source/a.csv": Status.PENDING}
    assert announce("bad.csv", b"TransactionID,Amount\n1,2\n")["files"] == {"source/bad.csv": Status.REJECTED}
    account.put("source/b.csv", GOOD_CSV + b"2,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,b\n")
    account.put("source/c.csv", GOOD_CSV + b"3,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,c\n")
    intake.handle(scheduled_event(account.account, account.region, s.schedule_rule))

    # The job: reads its secret, loads a.csv and b.csv; c.csv fails on its only attempt and is given up.
    secrets = job_calls.client(account.session, "secretsmanager")
    assert DbConnection.from_secrets_manager(secrets, s.db_secret_name).host == DB.host
    failures = JobRun(
        account.lifecycle(job_calls, max_attempts=1),
        "jr_1",
        lambda: ScriptedLoader(errors={"c.csv": "boom"}),
        log=lambda line: None,
        sleep=lambda seconds: None,
    ).run()
    assert failures == ["c.csv: RuntimeError: boom"]
    for name in ("a.csv", "b.csv"):  # on Glue: a snapshot of the claimed version, read by Glue's S3 filesystem
        source, snapshot = f"{layout.SOURCE}{name}", f"{layout.TEMP}claimed/{name}"
        job_calls.requests += [
            Request(s.glue_role, "s3:GetObject", f"arn:aws:s3:::{account.bucket}/{source}"),
            Request(s.glue_role, "s3:PutObject", f"arn:aws:s3:::{account.bucket}/{snapshot}"),
            Request(s.glue_role, "s3:GetObject", f"arn:aws:s3:::{account.bucket}/{snapshot}"),
            Request(s.glue_role, "s3:ListBucket", f"arn:aws:s3:::{account.bucket}", (("s3:prefix", snapshot),)),
            Request(s.glue_role, "s3:DeleteObject", f"arn:aws:s3:::{account.bucket}/{snapshot}"),
        ]

    # The Lambda again: a.csv's content uploaded once more is a redelivery to processed/; c.csv, given up,
    # uploaded again is the operator's retry (its copy in rejected/ goes).
    assert announce("a.csv", GOOD_CSV)["files"] == {"source/a.csv": "REDELIVERED"}
    c_again = announce("c.csv", GOOD_CSV + b"3,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,c\n")
    assert c_again["files"] == {"source/c.csv": Status.PENDING}
    assert account.keys() == ["processed/a.csv", "processed/b.csv", "rejected/bad.csv", "source/c.csv"]

    assert lambda_calls.untranslated == [] and job_calls.untranslated == []
    refused = denied(account.policies, account.account, lambda_calls.requests + job_calls.requests)
    assert refused == [], "IAM would refuse:\n" + "\n".join(refused)


def test_the_simulator_refuses_what_iam_refuses(account):
    """The evaluation itself can fail: calls outside each role's grants are denied."""
    s, bucket = account.settings, f"arn:aws:s3:::{account.bucket}"
    refused = [
        Request(s.lambda_role, "s3:GetObject", f"{bucket}/scripts/ETL_Job_to_RDS.py"),
        Request(s.lambda_role, "s3:PutObject", f"{bucket}/scripts/ETL_Job_to_RDS.py"),
        Request(s.lambda_role, "s3:ListBucket", "arn:aws:s3:::someone-elses-bucket"),
        Request(
            s.lambda_role,
            "secretsmanager:GetSecretValue",
            account.arn("secretsmanager", f"secret:{s.db_secret_name}-AbCdEf"),
        ),
        Request(s.glue_role, "s3:DeleteObject", f"{bucket}/processed/a.csv"),
        Request(s.glue_role, "dynamodb:PutItem", account.arn("dynamodb", f"table/{s.audit_table}")),
    ]
    assert evaluate(account.policies, account.account, refused) == ["ImplicitlyDenied"] * len(refused)


def test_only_the_login_job_reads_the_masters_secret(account):
    """A database deploy created: the login job reads the ETL's secret and RDS's secret of the master
    (what ETL_DB_Login does, recorded) and fetches its script; the ETL's role may read the master's
    secret no more than the Lambda's."""
    s, sm = account.settings, account.session.client("secretsmanager")
    master = {"username": "master", "password": "kept by RDS"}
    master_arn = sm.create_secret(Name="rds!db-0f1e2d3c", SecretString=json.dumps(master))["ARN"]
    made = replace(DB, username=s.db_login, password="the login's", master_secret=master_arn)
    sm.put_secret_value(SecretId=s.db_secret_name, SecretString=made.secret_string())
    desired = desired_state(s, replace(account.facts, db=made, creates_database=True))
    policies = {role: wanted.policy for role, wanted in desired.roles.items()}

    login_job = account.recorder(s.db_login_role)
    recorded = login_job.client(account.session, "secretsmanager")
    login = DbConnection.from_secrets_manager(recorded, s.db_secret_name)
    assert (master_of(login, recorded).username, login.username) == ("master", s.db_login)
    script = desired.login_job["Command"]["ScriptLocation"].removeprefix("s3://")  # fetched by Glue, as the role
    login_job.requests.append(Request(s.db_login_role, "s3:GetObject", f"arn:aws:s3:::{script}"))
    assert login_job.untranslated == [] and len(login_job.requests) == 3
    assert denied(policies, account.account, login_job.requests) == []

    reads_master = [Request(role, "secretsmanager:GetSecretValue", master_arn) for role in (s.glue_role, s.lambda_role)]
    reads_elsewhere = [
        Request(s.db_login_role, "s3:GetObject", f"arn:aws:s3:::{account.bucket}/source/a.csv"),
        Request(s.db_login_role, "dynamodb:GetItem", account.arn("dynamodb", f"table/{s.audit_table}")),
    ]
    refused = reads_master + reads_elsewhere
    assert evaluate(policies, account.account, refused) == ["ImplicitlyDenied"] * len(refused)
