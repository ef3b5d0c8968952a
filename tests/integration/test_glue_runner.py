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


def serve(pipeline, state_dir, standby=False):
    """A runner of its own on a free port (short Timeout minutes), its store, and a glue client for it
    with the job ``probe`` defined."""
    port = free_port()
    store = JobStore(
        RunnerConfig(state_dir, [sys.executable], f"http://127.0.0.1:{port}", minute_seconds=2, standby=standby)
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
    return client, store, server


@pytest.fixture(scope="module")
def probe_script(pipeline):
    """The probe job's script and its --extra-py-files zip, in the pipeline's bucket."""
    import io
    import zipfile

    s3 = boto3.client("s3")
    s3.put_object(Bucket=pipeline.bucket, Key="scripts/test_job.py", Body=SCRIPT)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("helper.py", "NAME = 'from the zip'\n")
    s3.put_object(Bucket=pipeline.bucket, Key="scripts/helper.zip", Body=buffer.getvalue())


@pytest.fixture(scope="module")
def glue(pipeline, probe_script, tmp_path_factory):
    client, store, server = serve(pipeline, tmp_path_factory.mktemp("runner"))
    yield client, store
    store.stop_all()
    server.shutdown()


@pytest.fixture(scope="module")
def standby_glue(pipeline, probe_script, tmp_path_factory):
    client, store, server = serve(pipeline, tmp_path_factory.mktemp("standby-runner"), standby=True)
    yield client, store
    store.close()
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


def ready_standby(store, timeout=180) -> int:
    """The pid of the runner's warm standby, once it is ready."""
    deadline = time.time() + timeout
    while not store.standby_ready_file.exists():
        assert time.time() < deadline, "no standby became ready"
        time.sleep(0.2)
    return int(store.standby_ready_file.read_text())


def test_a_warm_standby_takes_the_next_run_with_the_code_it_was_deployed_with(standby_glue):
    client, store = standby_glue
    standby = ready_standby(store)
    run_id = client.start_job_run(JobName="probe", Arguments={"--color": "red"})["JobRunId"]
    assert finished(client, run_id)["JobRunState"] == "SUCCEEDED"
    run_dir = store.config.state_dir / "runs" / "probe" / run_id
    assert int((run_dir / "pid").read_text()) == standby  # served by the warm process, not a new one
    log = log_of(store, run_id)
    assert '"--color": "red"' in log and "HELPER from the zip" in log

    successor = ready_standby(store)  # warmed after the run, for the next one
    assert successor != standby
    failing = client.start_job_run(JobName="probe", Arguments={"--fail": "row 7"})["JobRunId"]
    run = finished(client, failing)
    assert int((store.config.state_dir / "runs" / "probe" / failing / "pid").read_text()) == successor
    assert run["JobRunState"] == "FAILED" and "ValueError: the data is bad: row 7" in run["ErrorMessage"]
