"""The local Glue runner through an unmodified boto3 glue client: API shapes, states, limits, errors."""

from __future__ import annotations

import json
import sys
import threading
import time
import urllib.request

import boto3
import pytest

from glueline.local.ports import free_port
from glueline.local.runner.backend import GlueBackend
from glueline.local.runner.config import RunnerConfig
from glueline.local.runner.server import make_server
from glueline.polling import wait_for

from .harness import finished

pytestmark = pytest.mark.embedded_only  # the runner on its own, in this process

SCRIPT = b"""
import json, os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("ARGS " + json.dumps(args))
print("SPARK " + os.environ.get("PYSPARK_SUBMIT_ARGS", ""))
import helper  # from --extra-py-files
print("HELPER " + helper.NAME)
if "--sleep" in args:
    time.sleep(float(args["--sleep"]))
if "--fail" in args:
    raise ValueError("the data is bad: " + args["--fail"])
"""


def serve(glueline_stack, state_dir, standby=False):
    """A runner of its own on a free port (short Timeout minutes), its store, and a glue client for it
    with the job ``probe`` defined."""
    port = free_port()
    store = GlueBackend(
        RunnerConfig(state_dir, [sys.executable], f"http://127.0.0.1:{port}", minute_seconds=2, standby=standby)
    )
    server = make_server(store, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = boto3.client("glue", endpoint_url=f"http://127.0.0.1:{port}")
    client.create_job(
        Name="probe",
        Role="arn:aws:iam::000000000000:role/GlueServiceRole",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{glueline_stack.bucket}/scripts/test_job.py"},
        DefaultArguments={"--color": "blue", "--extra-py-files": f"s3://{glueline_stack.bucket}/scripts/helper.zip"},
        ExecutionProperty={"MaxConcurrentRuns": 1},
        GlueVersion="5.0",
        Timeout=30,
    )
    return client, store, server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def probe_script(glueline_stack):
    """The probe job's script and its --extra-py-files zip, in the pipeline's bucket."""
    import io
    import zipfile

    s3 = boto3.client("s3")
    s3.put_object(Bucket=glueline_stack.bucket, Key="scripts/test_job.py", Body=SCRIPT)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("helper.py", "NAME = 'from the zip'\n")
    s3.put_object(Bucket=glueline_stack.bucket, Key="scripts/helper.zip", Body=buffer.getvalue())


@pytest.fixture(scope="module")
def glue(glueline_stack, probe_script, tmp_path_factory):
    client, store, server, _ = serve(glueline_stack, tmp_path_factory.mktemp("runner"))
    yield client, store
    store.close()
    server.shutdown()


@pytest.fixture(scope="module")
def standby_glue(glueline_stack, probe_script, tmp_path_factory):
    client, store, server, url = serve(glueline_stack, tmp_path_factory.mktemp("standby-runner"), standby=True)
    yield client, store, url
    store.close()
    server.shutdown()


def log_of(store, run_id, job="probe"):
    return (store.config.state_dir / "runs" / job / run_id / "output.log").read_text()


def test_a_run_gets_glue_arguments_and_succeeds(glue):
    client, store = glue
    run_id = client.start_job_run(JobName="probe", Arguments={"--color": "red", "--size": "3"})["JobRunId"]
    assert run_id.startswith("jr_")
    run = finished(client, run_id)
    assert run["JobRunState"] == "SUCCEEDED"
    assert run["CompletedOn"] >= run["StartedOn"] and run["ExecutionTime"] >= 0
    assert run["Arguments"] == {"--color": "red", "--size": "3"}
    log = log_of(store, run_id)
    assert f'"--JOB_RUN_ID": "{run_id}"' in log and '"--JOB_NAME": "probe"' in log
    assert '"--color": "red"' in log and '"--size": "3"' in log  # run arguments override defaults
    assert "HELPER from the zip" in log
    # Spark's driver listens on the loopback interface only
    assert "spark.driver.bindAddress=127.0.0.1" in log and "spark.driver.host=127.0.0.1" in log


def test_max_concurrent_runs_is_enforced(glue):
    client, _ = glue
    first = client.start_job_run(JobName="probe", Arguments={"--sleep": "3"})["JobRunId"]
    with pytest.raises(client.exceptions.ConcurrentRunsExceededException):
        client.start_job_run(JobName="probe")
    assert finished(client, first)["JobRunState"] == "SUCCEEDED"
    second = client.start_job_run(JobName="probe")["JobRunId"]  # a slot is free again
    assert finished(client, second)["JobRunState"] == "SUCCEEDED"


def test_a_failing_script_reports_failed_with_its_error(glue):
    client, _ = glue
    run = finished(client, client.start_job_run(JobName="probe", Arguments={"--fail": "row 7"})["JobRunId"])
    assert run["JobRunState"] == "FAILED"
    assert run["ErrorMessage"].startswith("ValueError: the data is bad: row 7")


def test_timeout_and_stop(glue):
    client, _ = glue
    timed = client.start_job_run(JobName="probe", Arguments={"--sleep": "60"}, Timeout=1)["JobRunId"]
    run = finished(client, timed)
    assert run["JobRunState"] == "TIMEOUT" and "timed out" in run["ErrorMessage"]
    stopped = client.start_job_run(JobName="probe", Arguments={"--sleep": "60"})["JobRunId"]
    while client.get_job_run(JobName="probe", RunId=stopped)["JobRun"]["JobRunState"] == "STARTING":
        time.sleep(0.1)
    answer = client.batch_stop_job_run(JobName="probe", JobRunIds=[stopped, "jr_unknown"])
    assert answer["SuccessfulSubmissions"] == [{"JobName": "probe", "JobRunId": stopped}]
    assert answer["Errors"][0]["ErrorDetail"]["ErrorCode"] == "EntityNotFoundException"
    assert finished(client, stopped)["JobRunState"] == "STOPPED"


def test_unknown_jobs_and_runs_and_duplicates_are_aws_errors(glue):
    client, _ = glue
    with pytest.raises(client.exceptions.EntityNotFoundException):
        client.get_job(JobName="nope")
    with pytest.raises(client.exceptions.EntityNotFoundException):
        client.start_job_run(JobName="nope")
    with pytest.raises(client.exceptions.EntityNotFoundException):
        client.get_job_run(JobName="probe", RunId="jr_nope")
    with pytest.raises(client.exceptions.AlreadyExistsException):
        client.create_job(Name="probe", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/k.py"})
    with pytest.raises(client.exceptions.InvalidInputException):
        client.create_job(Name="bad", Role="r", Command={"Name": "glueetl", "ScriptLocation": "/local/path.py"})


def test_job_definitions_update_list_and_delete(glue):
    client, _ = glue
    job = client.get_job(JobName="probe")["Job"]
    assert job["ExecutionProperty"] == {"MaxConcurrentRuns": 1} and job["GlueVersion"] == "5.0"
    client.create_job(
        Name="temp",
        Role="r",
        Command={"Name": "glueetl", "ScriptLocation": "s3://b/k.py"},
        Tags={"glueline:stack": "t"},
    )
    arn = "arn:aws:glue:us-east-1:000000000000:job/temp"
    assert client.get_tags(ResourceArn=arn)["Tags"] == {"glueline:stack": "t"}
    assert "Tags" not in client.get_job(JobName="temp")["Job"]  # as on Glue: tags are not the definition
    client.tag_resource(ResourceArn=arn, TagsToAdd={"team": "etl"})
    client.untag_resource(ResourceArn=arn, TagsToRemove=["glueline:stack"])
    assert client.get_tags(ResourceArn=arn)["Tags"] == {"team": "etl"}
    client.update_job(
        JobName="temp",
        JobUpdate={"Role": "r2", "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/k2.py"}, "Timeout": 5},
    )
    updated = client.get_job(JobName="temp")["Job"]
    assert (updated["Role"], updated["Timeout"], updated["Command"]["ScriptLocation"]) == ("r2", 5, "s3://b/k2.py")
    assert {"probe", "temp"} <= {j["Name"] for j in client.get_jobs()["Jobs"]}
    assert client.delete_job(JobName="temp")["JobName"] == "temp"
    with pytest.raises(client.exceptions.EntityNotFoundException):
        client.get_job(JobName="temp")
    for _ in range(2):
        finished(client, client.start_job_run(JobName="probe")["JobRunId"])
    runs = client.get_job_runs(JobName="probe")["JobRuns"]
    assert len(runs) >= 2 and runs == sorted(runs, key=lambda r: r["StartedOn"], reverse=True)


def test_connections_are_kept_as_glue_keeps_them(glue):
    client, _ = glue
    requirements = {"SubnetId": "subnet-1", "SecurityGroupIdList": ["sg-1"], "AvailabilityZone": "us-east-1a"}
    connection = {
        "Name": "net",
        "ConnectionType": "NETWORK",
        "ConnectionProperties": {},
        "PhysicalConnectionRequirements": requirements,
    }
    client.create_connection(ConnectionInput=connection, Tags={"glueline:stack": "t"})
    with pytest.raises(client.exceptions.AlreadyExistsException):
        client.create_connection(ConnectionInput=connection)
    assert client.get_connection(Name="net")["Connection"]["PhysicalConnectionRequirements"] == requirements
    arn = "arn:aws:glue:us-east-1:000000000000:connection/net"
    assert client.get_tags(ResourceArn=arn)["Tags"] == {"glueline:stack": "t"}
    moved = {**requirements, "SubnetId": "subnet-2"}
    client.update_connection(Name="net", ConnectionInput={**connection, "PhysicalConnectionRequirements": moved})
    assert [c["PhysicalConnectionRequirements"]["SubnetId"] for c in client.get_connections()["ConnectionList"]] == [
        "subnet-2"
    ]
    client.delete_connection(ConnectionName="net")
    with pytest.raises(client.exceptions.EntityNotFoundException):
        client.get_connection(Name="net")


def test_an_operation_the_runner_does_not_serve_is_a_clear_error(glue):
    client, _ = glue
    with pytest.raises(client.exceptions.ClientError, match="not supported by glueline's local Glue runner"):
        client.get_databases()


WARM_SCRIPT = """
import sys

VERSION = "{version}"


def warm_up(spark):  # the hook a standby calls before the run arrives
    print("WARM UP " + VERSION + " " + str(spark.range(3).count()), flush=True)


if __name__ == "__main__":
    import helper  # from --extra-py-files, on the standby's path
    args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
    print("RUN " + VERSION + " " + helper.NAME + " " + args["--color"])
    if "--fail" in args:  # as the ETL refuses a target it was not deployed for: a message, no traceback
        raise SystemExit("the data is bad: " + args["--fail"])
"""


def standby_of(runner_url: str, job: str) -> dict:
    """The runner's standby, as its own API reports it, once it is ready for ``job``."""

    def ready():
        with urllib.request.urlopen(runner_url + "/") as response:
            standby = json.loads(response.read())["standby"]
        return standby if standby and standby["job"] == job and standby["state"] == "ready" else None

    return wait_for(ready, 180, f"a warm standby for {job}", interval=0.2)


def test_a_warm_standby_takes_the_next_run_only_with_the_code_it_was_warmed_with(standby_glue, glueline_stack):
    client, store, url = standby_glue
    s3 = boto3.client("s3")
    s3.put_object(
        Bucket=glueline_stack.bucket, Key="scripts/warm_job.py", Body=WARM_SCRIPT.format(version="v1").encode()
    )
    client.create_job(
        Name="warm",
        Role="arn:aws:iam::000000000000:role/GlueServiceRole",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{glueline_stack.bucket}/scripts/warm_job.py"},
        DefaultArguments={"--color": "blue", "--extra-py-files": f"s3://{glueline_stack.bucket}/scripts/helper.zip"},
    )
    standby = standby_of(url, "warm")
    assert "WARM UP v1 3" in (store.config.state_dir / "standby.log").read_text()  # the script's own hook ran

    run_id = client.start_job_run(JobName="warm", Arguments={"--color": "red"})["JobRunId"]
    assert finished(client, run_id, "warm")["JobRunState"] == "SUCCEEDED"
    assert int((store.config.state_dir / "runs" / "warm" / run_id / "pid").read_text()) == standby["pid"]
    assert "RUN v1 from the zip red" in log_of(store, run_id, "warm")

    successor = standby_of(url, "warm")  # warmed after the run, for the next one
    assert successor["pid"] != standby["pid"]
    failing = client.start_job_run(JobName="warm", Arguments={"--fail": "row 7"})["JobRunId"]
    run = finished(client, failing, "warm")
    assert int((store.config.state_dir / "runs" / "warm" / failing / "pid").read_text()) == successor["pid"]
    assert run["JobRunState"] == "FAILED"
    error_log = store.config.state_dir / "runs" / "warm" / failing / "error.log"
    assert "the data is bad: row 7" in error_log.read_text()  # the standby says why, as python does

    warm_for_v1 = standby_of(url, "warm")
    s3.put_object(
        Bucket=glueline_stack.bucket, Key="scripts/warm_job.py", Body=WARM_SCRIPT.format(version="v2").encode()
    )
    redeployed = client.start_job_run(JobName="warm")["JobRunId"]  # new code, same job: the standby is stale
    assert finished(client, redeployed, "warm")["JobRunState"] == "SUCCEEDED"
    assert int((store.config.state_dir / "runs" / "warm" / redeployed / "pid").read_text()) != warm_for_v1["pid"]
    assert "RUN v2 from the zip blue" in log_of(store, redeployed, "warm")


def test_a_job_without_a_warm_up_displaces_no_standby(standby_glue, glueline_stack):
    """Deploy creates the ETL's job and its one-off login job back to back, and runs the login job: the
    ETL's standby is what stays (a script with no warm_up hook gets none, and takes no one's place)."""
    client, store, url = standby_glue
    s3, bucket = boto3.client("s3"), glueline_stack.bucket
    s3.put_object(Bucket=bucket, Key="scripts/daily.py", Body=WARM_SCRIPT.format(version="daily").encode())
    s3.put_object(Bucket=bucket, Key="scripts/once.py", Body=b"print('ONCE')\n")
    role = "arn:aws:iam::000000000000:role/GlueServiceRole"
    helper = {"--color": "blue", "--extra-py-files": f"s3://{bucket}/scripts/helper.zip"}
    for name, key, arguments in (("daily", "daily.py", helper), ("once", "once.py", {})):
        command = {"Name": "glueetl", "ScriptLocation": f"s3://{bucket}/scripts/{key}"}
        client.create_job(Name=name, Role=role, Command=command, DefaultArguments=arguments)
    standby = standby_of(url, "daily")
    once = client.start_job_run(JobName="once")["JobRunId"]
    assert finished(client, once, "once")["JobRunState"] == "SUCCEEDED"
    assert "ONCE" in log_of(store, once, "once")
    assert standby_of(url, "daily")["pid"] == standby["pid"]  # still there, for the daily job's next run
    daily = client.start_job_run(JobName="daily")["JobRunId"]
    assert finished(client, daily, "daily")["JobRunState"] == "SUCCEEDED"
    assert int((store.config.state_dir / "runs" / "daily" / daily / "pid").read_text()) == standby["pid"]


ENDLESS_WARM_UP_SCRIPT = """
import time


def warm_up(spark):  # a warm-up that would never end: job after job
    print("WARM UP STARTED", flush=True)
    while True:
        spark.range(10**7).selectExpr("sum(id)").collect()
        time.sleep(0.05)


if __name__ == "__main__":
    print("RUN after a warm-up cut short")
"""


def test_a_run_that_arrives_while_the_standby_warms_up_cuts_the_warm_up_short(standby_glue, glueline_stack):
    """The run waits for Spark's start, not for the rest of the warm-up: the standby cancels its hook's
    Spark jobs until it gives up, and runs the run."""
    client, store, url = standby_glue
    boto3.client("s3").put_object(
        Bucket=glueline_stack.bucket, Key="scripts/endless_warm_up.py", Body=ENDLESS_WARM_UP_SCRIPT.encode()
    )
    client.create_job(
        Name="endless",
        Role="arn:aws:iam::000000000000:role/GlueServiceRole",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{glueline_stack.bucket}/scripts/endless_warm_up.py"},
    )
    standby_log = store.config.state_dir / "standby.log"
    wait_for(lambda: "WARM UP STARTED" in standby_log.read_text(), 180, "the endless warm-up to start")
    with urllib.request.urlopen(url + "/") as response:
        standby = json.loads(response.read())["standby"]
    assert (standby["job"], standby["state"]) == ("endless", "warming")

    run_id = client.start_job_run(JobName="endless")["JobRunId"]
    run = finished(client, run_id, "endless")
    assert run["JobRunState"] == "SUCCEEDED", run.get("ErrorMessage")
    assert int((store.config.state_dir / "runs" / "endless" / run_id / "pid").read_text()) == standby["pid"]
    assert "RUN after a warm-up cut short" in log_of(store, run_id, "endless")
    assert "warm-up ended early" in standby_log.read_text()
