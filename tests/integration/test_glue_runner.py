"""The local Glue runner through an unmodified boto3 glue client: API shapes, states, limits, errors."""

from __future__ import annotations

import sys
import threading
import time

import boto3
import pytest

from glueline.runner.jobs import JobStore, RunnerConfig
from glueline.runner.server import make_server
from glueline.stack import free_port

SCRIPT = b"""
import json, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("ARGS " + json.dumps(args))
import helper  # from --extra-py-files
print("HELPER " + helper.NAME)
if "--sleep" in args:
    time.sleep(float(args["--sleep"]))
if "--fail" in args:
    raise ValueError("the data is bad: " + args["--fail"])
"""


@pytest.fixture(scope="module")
def glue(pipeline, tmp_path_factory):
    """A second runner on its own port (short Timeout minutes), and a glue client pointed at it."""
    s3 = boto3.client("s3")
    s3.put_object(Bucket=pipeline.bucket, Key="scripts/test_job.py", Body=SCRIPT)
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("helper.py", "NAME = 'from the zip'\n")
    s3.put_object(Bucket=pipeline.bucket, Key="scripts/helper.zip", Body=buffer.getvalue())
    port = free_port()
    store = JobStore(
        RunnerConfig(tmp_path_factory.mktemp("runner"), [sys.executable], f"http://127.0.0.1:{port}", minute_seconds=2)
    )
    server = make_server(store, "127.0.0.1", port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = boto3.client("glue", endpoint_url=f"http://127.0.0.1:{port}")
    client.create_job(
        Name="probe",
        Role="arn:aws:iam::000000000000:role/GlueServiceRole",
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{pipeline.bucket}/scripts/test_job.py"},
        DefaultArguments={"--color": "blue", "--extra-py-files": f"s3://{pipeline.bucket}/scripts/helper.zip"},
        ExecutionProperty={"MaxConcurrentRuns": 1},
        GlueVersion="5.0",
        Timeout=30,
    )
    yield client, store
    store.stop_all()
    server.shutdown()


def finished(client, run_id, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        run = client.get_job_run(JobName="probe", RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING"):
            return run
        time.sleep(0.1)
    raise AssertionError("run did not finish")


def log_of(store, run_id):
    return (store.config.state_dir / "runs" / "probe" / run_id / "output.log").read_text()


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
    client.create_job(Name="temp", Role="r", Command={"Name": "glueetl", "ScriptLocation": "s3://b/k.py"})
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
    runs = client.get_job_runs(JobName="probe")["JobRuns"]
    assert runs and runs == sorted(runs, key=lambda r: r["StartedOn"], reverse=True)


def test_an_operation_the_runner_does_not_serve_is_a_clear_error(glue):
    client, _ = glue
    with pytest.raises(client.exceptions.ClientError, match="not supported by glueline's local Glue runner"):
        client.get_databases()
