"""The desired state is data computed from the settings and the account's facts, with no AWS call."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date, timedelta
from importlib import resources

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
    arguments = desired_state(with_ui, ENV).glue_job["DefaultArguments"]
    assert arguments["--enable-spark-ui"] == "true"
    assert arguments["--spark-event-logs-path"] == f"s3://{ENV.bucket}/spark-events/"
    events = f"arn:aws:s3:::{ENV.bucket}/spark-events/*"
    assert events in puts(with_ui) and events not in puts(plain)
    assert set(puts(with_ui)) - set(puts(plain)) == {events}
