"""The desired state is data computed from the settings and the account's facts, with no AWS call."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import asdict, replace
from datetime import date, timedelta
from importlib import resources

import pytest
from pydantic import ValidationError

from glueline.artifacts import DEBUG_ARGUMENT, LAMBDA_RUNTIME
from glueline.ops.deploy.desired import RUN_ARGUMENT, AccountFacts, Network, desired_state
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection

ENV = AccountFacts(
    account="123456789012",
    region="eu-west-1",
    bucket="glueline-123456789012-eu-west-1",
    db=DbConnection(host="db.example", port=5432, dbname="bank", username="etl", password="not-in-the-state"),
    network=Network(vpc_id="vpc-1", subnet_id="subnet-1", availability_zone="eu-west-1a", glue_group="sg-1"),
    partition="aws",
    wheels=["psycopg-3.3.9-py3-none-any.whl"],
)


def test_a_run_can_set_only_the_files_it_takes():
    """Glue reads --scriptLocation and --extra-py-files from a run's arguments: were they overridable,
    whoever may start a run (the Lambda's role) would choose the code that runs as the Glue role."""
    job = desired_state(Settings(_env_file=None), ENV).glue_job
    assert set(job["DefaultArguments"]) == {RUN_ARGUMENT}
    pinned = job["NonOverridableArguments"]
    assert pinned["--scriptLocation"] == job["Command"]["ScriptLocation"]
    assert pinned["--extra-py-files"] == f"s3://{ENV.bucket}/scripts/glueline-lib.zip"
    assert pinned["--additional-python-modules"] == f"s3://{ENV.bucket}/scripts/wheels/psycopg-3.3.9-py3-none-any.whl"
    assert RUN_ARGUMENT not in pinned


def test_a_debugged_job_tells_its_runs_where_to_wait_for_a_debugger_and_nothing_else_changes():
    plain = desired_state(Settings(_env_file=None), ENV).glue_job
    debugged = desired_state(Settings(_env_file=None, glue_debug="127.0.0.1:5678"), ENV).glue_job
    assert debugged["DefaultArguments"] == {**plain["DefaultArguments"], DEBUG_ARGUMENT: "127.0.0.1:5678"}
    assert {k: v for k, v in debugged.items() if k != "DefaultArguments"} == {
        k: v for k, v in plain.items() if k != "DefaultArguments"
    }


def test_the_jobs_bounds_on_the_database_are_pinned_arguments_from_the_settings():
    """The job reads them as it reads its target (ETL_Job_to_RDS.ARGUMENTS): a run cannot change them."""
    pinned = desired_state(Settings(_env_file=None), ENV).glue_job["NonOverridableArguments"]
    assert (pinned["--DB_LOST_WITHIN_SECONDS"], pinned["--DB_DDL_TIMEOUT_SECONDS"]) == ("60", "60")
    short = Settings(_env_file=None, db_lost_within_seconds=12, db_ddl_timeout_seconds=5)
    pinned = desired_state(short, ENV).glue_job["NonOverridableArguments"]
    assert (pinned["--DB_LOST_WITHIN_SECONDS"], pinned["--DB_DDL_TIMEOUT_SECONDS"]) == ("12", "5")


def test_what_a_batch_may_take_is_a_pinned_argument_and_must_fit_in_the_jobs_timeout():
    pinned = desired_state(Settings(_env_file=None), ENV).glue_job["NonOverridableArguments"]
    assert pinned["--BATCH_SECONDS"] == "600"
    short = Settings(_env_file=None, glue_timeout_minutes=2, glue_batch_seconds=45)
    assert desired_state(short, ENV).glue_job["NonOverridableArguments"]["--BATCH_SECONDS"] == "45"
    with pytest.raises(ValidationError, match=r"glue_batch_seconds \(600\) must be less than the Glue job's Timeout"):
        Settings(_env_file=None, glue_timeout_minutes=10)


def test_the_lambda_runtime_is_supported_for_a_year_at_least():
    """AWS's runtime lifecycle as cfn-lint carries it: a pipeline deployed today stays deployable and
    updatable for a year (python3.11's creates are blocked from 2027-07-31)."""
    lifecycle = json.loads(
        resources.files("cfnlint.data.AdditionalSpecs").joinpath("LmbdRuntimeLifecycle.json").read_text()
    )
    deprecated = date.fromisoformat(lifecycle[LAMBDA_RUNTIME]["deprecated"])
    assert deprecated >= date.today() + timedelta(days=365), (LAMBDA_RUNTIME, deprecated)


def test_the_glue_role_reads_the_code_where_it_is_kept():
    env = replace(ENV, code_bucket="artifacts", code_prefix="glueline/")
    desired = desired_state(Settings(_env_file=None), env)
    reads = next(s for s in desired.roles["GlueServiceRole"].policy["Statement"] if s["Action"] == ["s3:GetObject"])
    assert "arn:aws:s3:::artifacts/glueline/*" in reads["Resource"]
    assert desired.glue_job["Command"]["ScriptLocation"] == "s3://artifacts/glueline/ETL_Job_to_RDS.py"


def test_the_function_is_told_of_a_glue_that_is_not_aws_only():
    settings = Settings(_env_file=None)
    on_aws = desired_state(settings, ENV).lambda_function["Environment"]["Variables"]
    assert "AWS_ENDPOINT_URL_GLUE" not in on_aws
    local = replace(ENV, function_glue_endpoint="http://glue:4567")
    assert desired_state(settings, local).lambda_function["Environment"]["Variables"]["AWS_ENDPOINT_URL_GLUE"] == (
        "http://glue:4567"
    )


def test_the_spark_ui_is_glues_own_arguments_and_only_then_may_the_job_write_event_logs():
    def puts(settings):
        glue = desired_state(settings, ENV).roles["GlueServiceRole"].policy["Statement"]
        return next(s["Resource"] for s in glue if s["Action"] == ["s3:PutObject"])

    plain, with_ui = Settings(_env_file=None), Settings(_env_file=None, spark_ui=True)
    arguments = desired_state(with_ui, ENV).glue_job["NonOverridableArguments"]
    assert arguments["--enable-spark-ui"] == "true"
    assert arguments["--spark-event-logs-path"] == f"s3://{ENV.bucket}/spark-events/"
    assert desired_state(plain, ENV).glue_job["NonOverridableArguments"]["--enable-spark-ui"] == "false"
    events = f"arn:aws:s3:::{ENV.bucket}/spark-events/*"
    assert events in puts(with_ui) and events not in puts(plain)
    assert set(puts(with_ui)) - set(puts(plain)) == {events}


# Glue's job parameters that load code, change the classpath or Spark's configuration (the developer
# guide's "Using job parameters in AWS Glue jobs"); desired._code_and_configuration says why each is what it is.
CODE_AND_CONFIGURATION = (
    "--scriptLocation",
    "--job-language",
    "--extra-py-files",
    "--extra-jars",
    "--extra-files",
    "--user-jars-first",
    "--additional-python-modules",
    "--python-modules-installer-option",
    "--conf",
    "--customer-driver-env-vars",
    "--customer-executor-env-vars",
    "--datalake-formats",
    "--use-postgres-driver",
    "--enable-glue-datacatalog",
    "--enable-spark-ui",
    "--enable-s3-parquet-optimized-committer",
    "--enable-rename-algorithm-v2",
    "--write-shuffle-files-to-s3",
    "--write-shuffle-spills-to-s3",
    "--enable-auto-scaling",
    "--enable-lakeformation-fine-grained-access",
    "--TempDir",
)


def test_a_run_cannot_choose_code_the_classpath_or_sparks_configuration():
    """Every job parameter through which Glue loads code, orders the classpath or configures Spark is the
    job's: the files a run would name are the job's own library; the rest Glue's defaults or the job's."""
    pinned = desired_state(Settings(_env_file=None), ENV).glue_job["NonOverridableArguments"]
    library = f"s3://{ENV.bucket}/scripts/glueline-lib.zip"
    assert pinned["--extra-jars"] == pinned["--extra-files"] == pinned["--extra-py-files"] == library
    assert pinned["--user-jars-first"] == "false"
    assert set(CODE_AND_CONFIGURATION) <= set(pinned), set(CODE_AND_CONFIGURATION) - set(pinned)


def _writable_by(role, bucket_arn_key: str) -> bool:
    """Whether ``role`` may put an object at ``bucket_arn_key`` (``arn:…:s3:::bucket/key``): a copy is a put."""
    for statement in role.policy["Statement"]:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        if statement["Effect"] == "Allow" and any(fnmatch.fnmatchcase("s3:PutObject", a) for a in actions):
            if any(fnmatch.fnmatchcase(bucket_arn_key, r) for r in statement["Resource"]):
                return True
    return False


@pytest.mark.parametrize(
    "settings, facts",
    [
        ({}, ENV),
        ({"spark_ui": True}, replace(ENV, code_bucket="artifacts", code_prefix="glueline/")),
        ({}, replace(ENV, partition="aws-cn", region="cn-north-1")),
    ],
    ids=["default", "code-elsewhere", "aws-cn"],
)
def test_the_lambda_can_write_nowhere_the_job_loads_code_from(settings, facts):
    """The Lambda's role writes processed/ and rejected/; the code the Glue role runs (its script and
    every location a pinned argument loads code from) is elsewhere, or the Lambda would choose it."""
    desired = desired_state(Settings(_env_file=None, **settings), facts)
    job = desired.glue_job
    pinned = job["NonOverridableArguments"]
    loaded = [job["Command"]["ScriptLocation"]]
    for argument in ("--scriptLocation", "--extra-py-files", "--extra-jars", "--extra-files"):
        loaded += pinned[argument].split(",")
    loaded += [url for url in pinned["--additional-python-modules"].split(",") if url]
    lambda_role = desired.roles[Settings(_env_file=None).lambda_role]
    assert all(url.startswith("s3://") for url in loaded), loaded
    for url in loaded:
        key = facts.arn("s3", url.removeprefix("s3://"))
        assert not _writable_by(lambda_role, key), url
    assert _writable_by(lambda_role, facts.arn("s3", f"{facts.bucket}/processed/a.csv"))  # the check works


def test_arns_are_of_the_accounts_partition():
    """China's and GovCloud's ARNs begin arn:aws-cn: and arn:aws-us-gov:; none is arn:aws: there."""
    for partition, region in (("aws-cn", "cn-north-1"), ("aws-us-gov", "us-gov-west-1")):
        env = replace(ENV, partition=partition, region=region)
        text = json.dumps(asdict(desired_state(Settings(_env_file=None, spark_ui=True), env)), default=str)
        assert "arn:aws:" not in text and f"arn:{partition}:" in text


LOCAL_MASTER = DbConnection(host="db.example", port=5432, dbname="bank", username="master", password="master-pw")
MADE_LOGIN = replace(ENV.db, username="glueline_etl", password="login-pw", master_secret="glueline/rds-master")
RDS_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0f1e2d3c-AbCdEf"


def _secret_readers(desired) -> dict[str, set[str]]:
    """Each role's secrets it may read."""
    return {
        name: {
            resource
            for statement in role.policy["Statement"]
            if "secretsmanager:GetSecretValue" in statement["Action"]
            for resource in statement["Resource"]
        }
        for name, role in desired.roles.items()
    }


@pytest.mark.parametrize(
    "facts, master",
    [
        (
            replace(ENV, db=MADE_LOGIN, db_master=LOCAL_MASTER),
            f"{ENV.arn('secretsmanager', 'secret:glueline/rds-master')}-??????",
        ),
        (replace(ENV, db=replace(MADE_LOGIN, master_secret=RDS_SECRET), creates_database=True), RDS_SECRET),
    ],
    ids=["a-local-stacks-database", "a-database-deploy-created"],
)
def test_the_etl_reads_only_its_own_logins_secret_and_the_login_job_alone_the_masters(facts, master):
    s = Settings(_env_file=None)
    desired = desired_state(s, facts)
    job_secret = f"{ENV.arn('secretsmanager', 'secret:glueline/rds')}-??????"
    assert _secret_readers(desired) == {
        s.lambda_role: set(),
        s.glue_role: {job_secret},
        s.db_login_role: {job_secret, master},
    }
    stored = DbConnection.from_secret(desired.secret["SecretString"])
    assert (stored.username, stored.password, stored.master_secret) == (
        "glueline_etl",
        "login-pw",
        facts.db.master_secret,
    )
    login_job = desired.login_job
    assert login_job is not None and login_job["Role"].endswith(f":role/{s.db_login_role}")
    pinned = login_job["NonOverridableArguments"]
    assert (
        pinned["--scriptLocation"]
        == login_job["Command"]["ScriptLocation"]
        == f"s3://{ENV.bucket}/scripts/ETL_DB_Login.py"
    )
    assert (pinned["--DB_SECRET_ID"], pinned["--TARGET_TABLE"]) == ("glueline/rds", "public.transactions")
    assert login_job["DefaultArguments"] == {}  # a run may set nothing
    assert "scripts/ETL_DB_Login.py" in desired.code_files
    # A local stack's master goes to a secret of the pipeline's, as RDS keeps one; RDS's own is RDS's.
    if facts.db_master is not None:
        assert desired.master_secret is not None
        assert json.loads(desired.master_secret["SecretString"]) == {"username": "master", "password": "master-pw"}
    else:
        assert desired.master_secret is None


def test_a_login_the_user_brings_is_the_jobs_and_nothing_reads_a_master():
    desired = desired_state(Settings(_env_file=None), ENV)
    assert desired.login_job is None and desired.master_secret is None
    assert Settings(_env_file=None).db_login_role not in desired.roles
    assert "scripts/ETL_DB_Login.py" not in desired.code_files
