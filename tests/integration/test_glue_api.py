"""The local Glue runner as a drop-in for the Glue API, driven only through real clients — the AWS CLI
(its own installation, tests/awscli) and boto3 with paginators — against a runner of its own whose AWS
side (S3 for scripts, CloudWatch Logs, EventBridge) is the session's emulator. Every raw response is
checked against botocore's output shape of its operation; every validation rule against the error AWS
answers with. What Terraform's AWS provider and Airflow's GlueJobHook do, call by call; retries,
queuing, stopping, deleting, restarting."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3
import botocore.session
import pytest
from botocore.config import Config

from glueline.local.ports import free_port
from glueline.polling import wait_for

from .harness import finished

pytestmark = pytest.mark.embedded_only  # a runner of its own, started here, beside the embedded stack's emulator

MODEL = botocore.session.get_session().get_service_model("glue")
AWS_CLI = Path(__file__).parents[1] / "awscli" / ".venv" / "bin" / "aws"
ROLE = "arn:aws:iam::000000000000:role/GlueServiceRole"
SCRIPT = b"""
import os, sys, time
args = dict(zip(sys.argv[1::2], sys.argv[2::2]))
print("OUT started " + args["--JOB_RUN_ID"], flush=True)
print("ERR warming up", file=sys.stderr, flush=True)
time.sleep(float(args.get("--sleep", "0")))
marker = args.get("--fail-once")
if marker and not os.path.exists(marker):
    open(marker, "w").close()
    raise RuntimeError("first attempt fails on purpose")
if "--fail" in args:
    raise ValueError("the data is bad")
print("OUT done", flush=True)
"""


# -- a runner of its own, as a user starts it -------------------------------------------------------


class Runner:
    """``python -m glueline.local.runner`` in its own process, with the stack's AWS configuration."""

    def __init__(self, state_dir: Path):
        self.state_dir = state_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> Runner:
        command = [sys.executable, "-m", "glueline.local.runner", "--port", str(self.port)]
        command += ["--state-dir", str(self.state_dir), "--minute-seconds", "2"]
        self.log = open(self.state_dir.parent / f"{self.state_dir.name}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(self._answers, 30, "the Glue runner to answer")
        return self

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/", timeout=1):
                return True
        except OSError:
            return False

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=60)
        self.log.close()

    def client(self, recorder: Recorder | None = None, retries: int = 0):
        config = Config(retries={"total_max_attempts": retries + 1, "mode": "standard"})
        client = boto3.client("glue", endpoint_url=self.url, config=config)
        if recorder is not None:
            client.meta.events.register("before-parse.glue.*", recorder.capture)
        return client


class Recorder:
    """Every raw Glue response the client receives, with the operation it answers."""

    def __init__(self):
        self.responses: list[tuple[str, int, dict]] = []

    def capture(self, operation_model, response_dict, **_):
        body = json.loads(response_dict["body"] or b"{}")
        self.responses.append((operation_model.name, response_dict["status_code"], body))


def conformance_problems(shape, value, path: str) -> list[str]:
    """Where a raw JSON value departs from a botocore output shape: unknown or missing members, wrong types."""
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        problems = [f"{path}.{name}: not in the model" for name in value if name not in shape.members]
        problems += [f"{path}.{name}: required, missing" for name in shape.required_members if name not in value]
        for name, item in value.items():
            if name in shape.members:
                problems += conformance_problems(shape.members[name], item, f"{path}.{name}")
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"{path}: not a list"]
        return [p for i, item in enumerate(value) for p in conformance_problems(shape.member, item, f"{path}[{i}]")]
    if kind == "map":
        if not isinstance(value, dict):
            return [f"{path}: not a map"]
        return [p for k, item in value.items() for p in conformance_problems(shape.value, item, f"{path}[{k}]")]
    expected = {
        "string": str,
        "boolean": bool,
        "integer": int,
        "long": int,
        "double": (int, float),
        "float": (int, float),
        "timestamp": (int, float),
    }.get(kind)
    if expected is not None and (not isinstance(value, expected) or (kind != "boolean" and isinstance(value, bool))):
        return [f"{path}: {type(value).__name__} where the model has {kind}"]
    if kind == "string" and shape.enum and value not in shape.enum:
        return [f"{path}: {value!r} not in the model's enum"]
    return []


def assert_conforms(recorder: Recorder) -> None:
    assert recorder.responses
    for operation, status, body in recorder.responses:
        if status == 200:
            problems = conformance_problems(MODEL.operation_model(operation).output_shape, body, operation)
            assert problems == [], problems
        else:
            assert set(body) == {"__type", "Message"}, body
            assert body["__type"] in {e.name for e in MODEL.operation_model(operation).error_shapes}, (operation, body)


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scripts(glueline_stack):
    s3 = boto3.client("s3")
    s3.put_object(Bucket=glueline_stack.bucket, Key="scripts/api_probe.py", Body=SCRIPT)
    return f"s3://{glueline_stack.bucket}/scripts/api_probe.py"


@pytest.fixture
def runner(glueline_stack, scripts, tmp_path):
    runner = Runner(tmp_path / "runner").start()
    yield runner
    runner.stop()


def create_job(glue, name: str, script: str, **extra):
    definition = {
        "Name": name,
        "Role": ROLE,
        "Command": {"Name": "glueetl", "ScriptLocation": script, "PythonVersion": "3"},
        "GlueVersion": "5.0",
        "WorkerType": "G.1X",
        "NumberOfWorkers": 2,
    }
    glue.create_job(**{k: v for k, v in {**definition, **extra}.items() if v is not None})  # None: left out


def until_running(glue, job: str, run_id: str) -> None:
    """Wait until the run's process runs."""

    def is_running() -> bool:
        return glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] == "RUNNING"

    wait_for(is_running, 30, f"run {run_id} to be RUNNING")


def aws_cli(runner: Runner, *args: str) -> dict:
    if not AWS_CLI.exists():
        pytest.fail("the AWS CLI is installed by `make test` (tests/awscli/.venv)")
    env = {**os.environ, "AWS_ENDPOINT_URL_GLUE": runner.url}
    result = subprocess.run([str(AWS_CLI), *args, "--output", "json"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout) if result.stdout.strip() else {}


# -- through the AWS CLI -------------------------------------------------------------------------------


def test_the_aws_cli_manages_and_runs_a_job(runner, scripts, glueline_stack):
    command = json.dumps({"Name": "glueetl", "ScriptLocation": scripts, "PythonVersion": "3"})
    created = aws_cli(
        runner, "glue", "create-job", "--name", "cli", "--role", ROLE, "--command", command,
        "--glue-version", "5.0", "--worker-type", "G.1X", "--number-of-workers", "2", "--tags", "team=etl",
    )  # fmt: skip
    assert created == {"Name": "cli"}
    assert aws_cli(runner, "glue", "get-job", "--job-name", "cli")["Job"]["WorkerType"] == "G.1X"
    assert aws_cli(runner, "glue", "list-jobs", "--tags", "team=etl")["JobNames"] == ["cli"]
    run_id = aws_cli(runner, "glue", "start-job-run", "--job-name", "cli", "--arguments", '{"--sleep":"0"}')["JobRunId"]
    run = finished(runner.client(), run_id, job="cli", timeout=60)
    assert run["JobRunState"] == "SUCCEEDED"
    runs = aws_cli(runner, "glue", "get-job-runs", "--job-name", "cli")["JobRuns"]
    assert [r["Id"] for r in runs] == [run_id] and runs[0]["LogGroupName"] == "/aws-glue/jobs"
    events = aws_cli(
        runner, "logs", "get-log-events", "--log-group-name", "/aws-glue/jobs/output", "--log-stream-name", run_id
    )["events"]  # fmt: skip
    assert [e["message"] for e in events] == [f"OUT started {run_id}", "OUT done"]
    batch = aws_cli(runner, "glue", "batch-get-jobs", "--job-names", "cli", "nope")
    assert [j["Name"] for j in batch["Jobs"]] == ["cli"] and batch["JobsNotFound"] == ["nope"]
    assert aws_cli(runner, "glue", "delete-job", "--job-name", "cli") == {"JobName": "cli"}


def test_a_missing_job_and_a_concurrent_run_are_refused_in_glues_own_words(runner, scripts):
    """What the AWS CLI prints against Glue (as users' transcripts show it), printed here too."""
    env = {**os.environ, "AWS_ENDPOINT_URL_GLUE": runner.url}
    for args, said in [
        (
            ["get-job", "--job-name", "nope"],
            "(EntityNotFoundException) when calling the GetJob operation: Job not found.",
        ),
        (
            ["start-job-run", "--job-name", "nope"],
            "(EntityNotFoundException) when calling the StartJobRun operation: "
            "Failed to start job run due to missing metadata.",
        ),
    ]:
        result = subprocess.run([str(AWS_CLI), "glue", *args], capture_output=True, text=True, env=env)
        assert result.returncode != 0 and said in result.stderr, result.stderr
    glue = runner.client()
    create_job(glue, "single", scripts, DefaultArguments={"--sleep": "5"})
    first = glue.start_job_run(JobName="single")["JobRunId"]
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException) as refused:
        glue.start_job_run(JobName="single")
    assert refused.value.response["Error"]["Message"] == "Concurrent runs exceeded for single"
    glue.batch_stop_job_run(JobName="single", JobRunIds=[first])


# -- the service model ---------------------------------------------------------------------------------


def test_every_response_and_page_conforms_to_the_service_model(runner, scripts):
    recorder = Recorder()
    glue = runner.client(recorder)
    for i in range(5):
        create_job(glue, f"page-{i}", scripts, Tags={"n": str(i % 2)}, DefaultArguments={"--sleep": "0"})
    run_ids = [glue.start_job_run(JobName="page-0")["JobRunId"]]
    finished(glue, run_ids[0], job="page-0", timeout=60)
    glue.update_job(
        JobName="page-1", JobUpdate={"Role": ROLE, "Command": {"Name": "glueetl", "ScriptLocation": scripts}}
    )
    names = [
        n
        for page in glue.get_paginator("list_jobs").paginate(PaginationConfig={"PageSize": 2})
        for n in page["JobNames"]
    ]
    assert names == [f"page-{i}" for i in range(5)]
    jobs = [
        j["Name"]
        for page in glue.get_paginator("get_jobs").paginate(PaginationConfig={"PageSize": 2})
        for j in page["Jobs"]
    ]
    assert jobs == names
    assert glue.list_jobs(Tags={"n": "1"})["JobNames"] == ["page-1", "page-3"]
    runs = [r for page in glue.get_paginator("get_job_runs").paginate(JobName="page-0") for r in page["JobRuns"]]
    assert [r["Id"] for r in runs] == run_ids
    glue.get_job(JobName="page-1")
    glue.batch_get_jobs(JobNames=["page-0", "missing"])
    glue.get_tags(ResourceArn="arn:aws:glue:us-east-1:000000000000:job/page-2")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job(JobName="missing")
    glue.batch_stop_job_run(JobName="page-0", JobRunIds=run_ids + ["jr_missing"])
    for i in range(5):
        glue.delete_job(JobName=f"page-{i}")
    assert_conforms(recorder)


DEFINITION = {"Role": ROLE, "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/s.py"}}
WORKERS = {"WorkerType": "G.1X", "NumberOfWorkers": 2}


@pytest.mark.parametrize(
    ("operation", "request_", "complaint"),
    [
        ("create_job", {"Name": "x", **DEFINITION, "WorkerType": "G.3X", "NumberOfWorkers": 2}, "enum value set"),
        ("create_job", {"Name": "x", **DEFINITION, "Timeout": 20000}, "10080"),
        ("create_job", {"Name": "n" * 300, **DEFINITION}, "less than or equal to 255"),
        ("create_job", {"Name": "x", **DEFINITION, **WORKERS, "MaxCapacity": 10.0}, "not both"),
        ("create_job", {"Name": "x", **DEFINITION, "WorkerType": "G.1X"}, "together"),
        ("create_job", {"Name": "x", **DEFINITION, "AllocatedCapacity": 10, "MaxCapacity": 10.0}, "exclusive"),
        ("start_job_run", {"JobName": "x", "AllocatedCapacity": 10, "MaxCapacity": 10.0}, "exclusive"),
        ("create_job", {"Name": "x", **DEFINITION, "GlueVersion": "2.0", "ExecutionClass": "FLEX"}, "FLEX"),
        ("create_job", {"Name": "x", **DEFINITION, "GlueVersion": "9.9"}, "Glue version 9.9"),
        ("get_job_runs", {"JobName": "x", "MaxResults": 5000}, "less than or equal to 200"),
        ("get_jobs", {"MaxResults": 5000}, "less than or equal to 1000"),
        ("get_jobs", {"NextToken": "not-a-token"}, "NextToken"),
        ("start_job_run", {"JobName": "x", "Timeout": 20000}, "10080"),
    ],
)  # fmt: skip
def test_what_aws_refuses_is_refused_the_same_way(runner, operation, request_, complaint):
    recorder = Recorder()
    glue = runner.client(recorder, retries=3)
    with pytest.raises(glue.exceptions.InvalidInputException, match=complaint):
        getattr(glue, operation)(**request_)
    assert len(recorder.responses) == 1  # a client error: not retried
    assert_conforms(recorder)


def test_a_member_the_runner_does_not_know_is_ignored_not_refused(runner, scripts):
    """A client built on a newer service model than the runner's sends members it does not know."""
    body = json.dumps({"Name": "newer", "Role": ROLE, "Command": {"ScriptLocation": scripts}, "FutureField": {"a": 1}})
    request = urllib.request.Request(
        runner.url + "/",
        data=body.encode(),
        headers={"X-Amz-Target": "AWSGlue.CreateJob", "Content-Type": "application/x-amz-json-1.1"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert json.loads(response.read()) == {"Name": "newer"}
    assert "FutureField" not in runner.client().get_job(JobName="newer")["Job"]


def test_defaults_are_the_current_service_models(runner, scripts):
    glue = runner.client()
    glue.create_job(Name="plain", Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": scripts})
    glue.create_job(Name="four", Role=ROLE, Command={"Name": "glueetl", "ScriptLocation": scripts}, GlueVersion="4.0")
    plain, four = glue.get_job(JobName="plain")["Job"], glue.get_job(JobName="four")["Job"]
    assert (plain["GlueVersion"], plain["Timeout"], plain["MaxRetries"]) == ("5.1", 480, 0)
    assert (four["GlueVersion"], four["Timeout"]) == ("4.0", 2880)


def test_capacity_run_settings_and_connections_are_answered_as_glue_answers_them(runner, scripts):
    """A job and a run show both sizings (workers and DPUs); a run may override one half of the worker
    pair; a run carries what it was started with and no Arguments when given none; a finished FLEX run
    reports its DPU-seconds; a connection is READY and its password can be hidden."""
    recorder = Recorder()
    glue = runner.client(recorder)
    create_job(glue, "sized", scripts, WorkerType="G.2X", NumberOfWorkers=3, DefaultArguments={"--sleep": "0"})
    job = glue.get_job(JobName="sized")["Job"]
    assert (job["WorkerType"], job["NumberOfWorkers"], job["MaxCapacity"], job["AllocatedCapacity"]) == (
        "G.2X",
        3,
        6.0,
        6,
    )
    run_id = glue.start_job_run(
        JobName="sized",
        NumberOfWorkers=5,
        ExecutionClass="FLEX",
        SecurityConfiguration="encrypted-logs",
        NotificationProperty={"NotifyDelayAfter": 5},
    )["JobRunId"]
    run = finished(glue, run_id, job="sized", timeout=60)
    assert run["JobRunState"] == "SUCCEEDED" and "Arguments" not in run
    assert (run["WorkerType"], run["NumberOfWorkers"], run["MaxCapacity"], run["AllocatedCapacity"]) == (
        "G.2X",
        5,
        10.0,
        10,
    )
    assert (run["ExecutionClass"], run["SecurityConfiguration"]) == ("FLEX", "encrypted-logs")
    assert run["NotificationProperty"] == {"NotifyDelayAfter": 5}
    assert run["DPUSeconds"] == run["ExecutionTime"] * 10.0 and run["CompletedOn"] >= run["StartedOn"]
    create_job(glue, "by-dpus", scripts, WorkerType=None, NumberOfWorkers=None, GlueVersion="1.0", MaxCapacity=4.0)
    with pytest.raises(glue.exceptions.InvalidInputException, match="together"):  # G.1X with no NumberOfWorkers
        glue.start_job_run(JobName="by-dpus", WorkerType="G.1X")
    with pytest.raises(glue.exceptions.InvalidInputException, match="FLEX"):  # Glue 1.0
        glue.start_job_run(JobName="by-dpus", ExecutionClass="FLEX")

    properties = {"JDBC_CONNECTION_URL": "jdbc:postgresql://db:5432/bank", "USERNAME": "etl", "PASSWORD": "p4ss"}
    created = glue.create_connection(
        ConnectionInput={"Name": "bank", "ConnectionType": "JDBC", "ConnectionProperties": properties}
    )
    assert created["CreateConnectionStatus"] == "READY"
    connection = glue.get_connection(Name="bank")["Connection"]
    assert connection["Status"] == "READY" and connection["ConnectionProperties"]["PASSWORD"] == "p4ss"
    hidden = glue.get_connection(Name="bank", HidePassword=True)["Connection"]["ConnectionProperties"]
    assert "PASSWORD" not in hidden and hidden["USERNAME"] == "etl"
    listed = glue.get_connections(HidePassword=True)["ConnectionList"]
    assert [c["Name"] for c in listed] == ["bank"] and "PASSWORD" not in listed[0]["ConnectionProperties"]
    assert_conforms(recorder)


# -- what real tools do ----------------------------------------------------------------------------------


def test_terraform_aws_glue_job_lifecycle(runner, scripts):
    """The AWS provider's aws_glue_job: create with tags, read (GetJob + GetTags), update, read, untag,
    delete, and the read after delete that tells it the job is gone."""
    recorder = Recorder()
    glue = runner.client(recorder)
    arn = "arn:aws:glue:us-east-1:000000000000:job/tf"
    create_job(glue, "tf", scripts, Tags={"env": "dev", "owner": "data"}, MaxRetries=1)
    job = glue.get_job(JobName="tf")["Job"]
    assert "Tags" not in recorder.responses[-1][2]["Job"]  # tags are not part of the definition
    assert glue.get_tags(ResourceArn=arn)["Tags"] == {"env": "dev", "owner": "data"}
    # Glue answers both sizings and refuses both in an update: the provider sends MaxCapacity only for a
    # job sized by it (and never the deprecated AllocatedCapacity).
    shown_only = ("Name", "CreatedOn", "LastModifiedOn", "MaxCapacity", "AllocatedCapacity")
    update = {k: v for k, v in job.items() if k not in shown_only} | {"MaxRetries": 2}
    with pytest.raises(glue.exceptions.InvalidInputException, match="not both"):
        glue.update_job(JobName="tf", JobUpdate={**update, "MaxCapacity": job["MaxCapacity"]})
    glue.update_job(JobName="tf", JobUpdate=update)
    assert glue.get_job(JobName="tf")["Job"]["MaxRetries"] == 2
    assert glue.get_tags(ResourceArn=arn)["Tags"] == {"env": "dev", "owner": "data"}  # an update keeps them
    glue.untag_resource(ResourceArn=arn, TagsToRemove=["owner"])
    glue.tag_resource(ResourceArn=arn, TagsToAdd={"team": "etl"})
    assert glue.get_tags(ResourceArn=arn)["Tags"] == {"env": "dev", "team": "etl"}
    glue.delete_job(JobName="tf")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job(JobName="tf")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_tags(ResourceArn=arn)
    glue.delete_job(JobName="tf")  # deleting what is gone is no error, as on Glue
    assert_conforms(recorder)


def test_airflow_glue_job_hook_polls_then_reads_both_log_groups(runner, scripts):
    """GlueJobHook: get_job_run until a final state (the output shows up while it runs), then the
    run's streams in LogGroupName + /output and /error."""
    glue, logs = runner.client(), boto3.client("logs")
    create_job(glue, "airflow", scripts)
    run_id = glue.start_job_run(JobName="airflow", Arguments={"--sleep": "4"})["JobRunId"]

    def streamed_while_running():
        run = glue.get_job_run(JobName="airflow", RunId=run_id)["JobRun"]
        assert run["JobRunState"] in ("STARTING", "RUNNING"), run["JobRunState"]
        return read(logs, "/aws-glue/jobs/output", run_id)

    assert wait_for(streamed_while_running, 10, "the run's output in CloudWatch Logs", interval=0.2) == [
        f"OUT started {run_id}"
    ]
    run = finished(glue, run_id, job="airflow", timeout=60)
    assert run["JobRunState"] == "SUCCEEDED" and run["LogGroupName"] == "/aws-glue/jobs"
    assert read(logs, run["LogGroupName"] + "/output", run_id) == [f"OUT started {run_id}", "OUT done"]
    assert read(logs, run["LogGroupName"] + "/error", run_id) == ["ERR warming up"]


def read(logs, group: str, stream: str) -> list[str]:
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group, logStreamNames=[stream])
        return [event["message"] for page in pages for event in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


# -- retries, queuing, stopping, deleting, restarting ------------------------------------------------------


@pytest.fixture
def glue_events(glueline_stack):
    """The Glue Job State Change and Glue Job Run Status events on the default bus, through a rule and an
    SQS queue, as a user would subscribe to them."""
    sqs, events = boto3.client("sqs"), boto3.client("events")
    queue = sqs.create_queue(QueueName=f"glue-events-{time.time_ns()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    rule = f"glue-state-{time.time_ns()}"
    events.put_rule(
        Name=rule,
        EventPattern=json.dumps(
            {"source": ["aws.glue"], "detail-type": ["Glue Job State Change", "Glue Job Run Status"]}
        ),
    )
    events.put_targets(Rule=rule, Targets=[{"Id": "queue", "Arn": arn}])
    received: list[dict] = []

    def receive(count: int) -> list[dict]:
        def enough():
            for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get(
                "Messages", []
            ):
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
            return len(received) >= count

        wait_for(enough, 30, f"{count} Glue events")
        return received

    yield receive
    events.remove_targets(Rule=rule, Ids=["queue"])
    events.delete_rule(Name=rule)
    sqs.delete_queue(QueueUrl=queue)


def test_a_failed_run_is_retried_up_to_max_retries_with_an_event_for_each(runner, scripts, glue_events, tmp_path):
    glue = runner.client()
    create_job(glue, "retried", scripts, MaxRetries=1)
    first = glue.start_job_run(JobName="retried", Arguments={"--fail-once": str(tmp_path / "marker")})["JobRunId"]
    assert finished(glue, first, job="retried", timeout=60)["JobRunState"] == "FAILED"
    retry = wait_for(
        lambda: next((r for r in glue.get_job_runs(JobName="retried")["JobRuns"] if r["Id"] != first), None),
        30,
        "the retry",
    )
    assert (retry["Attempt"], retry["PreviousRunId"]) == (1, first)
    assert retry["Arguments"] == {"--fail-once": str(tmp_path / "marker")}
    assert finished(glue, retry["Id"], job="retried", timeout=60)["JobRunState"] == "SUCCEEDED"
    events = glue_events(2)
    assert [(e["source"], e["detail-type"]) for e in events] == [("aws.glue", "Glue Job State Change")] * 2
    details = [e["detail"] for e in events]
    assert details[0] == {
        "jobName": "retried",
        "severity": "ERROR",
        "state": "FAILED",
        "jobRunId": first,
        "message": details[0]["message"],
    } and details[0]["message"].startswith("RuntimeError: first attempt fails on purpose")
    assert details[1] == {
        "jobName": "retried",
        "severity": "INFO",
        "state": "SUCCEEDED",
        "jobRunId": retry["Id"],
        "message": "Job run succeeded",
    }
    assert len(glue.get_job_runs(JobName="retried")["JobRuns"]) == 2  # MaxRetries 1: no third attempt

    again = glue.start_job_run(JobName="retried", JobRunId=first)["JobRunId"]  # StartJobRun's own retry
    rerun = finished(glue, again, job="retried", timeout=60)
    assert (rerun["Attempt"], rerun["PreviousRunId"], rerun["JobRunState"]) == (1, first, "SUCCEEDED")


def test_a_run_past_its_notify_delay_after_sends_the_delay_notification(runner, scripts, glue_events):
    """NotificationProperty (the job's; here a minute is 2 s): a run still RUNNING after NotifyDelayAfter
    minutes sends Glue Job Run Status, once; a run that ended before sends none."""
    glue = runner.client()
    create_job(
        glue,
        "delayed",
        scripts,
        NotificationProperty={"NotifyDelayAfter": 1},
        ExecutionProperty={"MaxConcurrentRuns": 2},
    )
    slow = glue.start_job_run(JobName="delayed", Arguments={"--sleep": "6"})["JobRunId"]
    quick = glue.start_job_run(JobName="delayed", NotificationProperty={"NotifyDelayAfter": 5})["JobRunId"]
    assert finished(glue, quick, job="delayed", timeout=60)["JobRunState"] == "SUCCEEDED"
    assert finished(glue, slow, job="delayed", timeout=60)["JobRunState"] == "SUCCEEDED"
    events = glue_events(3)
    time.sleep(2)  # a late delay notification for the quick run would be here by now
    events = glue_events(3)
    delays = [e for e in events if e["detail-type"] == "Glue Job Run Status"]
    assert [(e["detail"]["jobRunId"], e["detail"]["state"]) for e in delays] == [(slow, "RUNNING")]
    assert delays[0]["source"] == "aws.glue" and delays[0]["detail"]["jobName"] == "delayed"
    assert delays[0]["detail"]["notificationCondition"] == {"NotificationDelay": 1}
    ends = [(e["detail"]["jobRunId"], e["detail"]["state"]) for e in events if e not in delays]
    assert sorted(ends) == sorted([(slow, "SUCCEEDED"), (quick, "SUCCEEDED")])


def test_queued_runs_wait_and_run_one_after_another(runner, scripts):
    glue = runner.client()
    create_job(glue, "queued", scripts, JobRunQueuingEnabled=True, ExecutionProperty={"MaxConcurrentRuns": 1})
    run_ids = [
        glue.start_job_run(JobName="queued", Arguments={"--sleep": "1"}, WorkerType="G.2X", NumberOfWorkers=3)[
            "JobRunId"
        ]
        for _ in range(3)
    ]
    seen: dict[str, set[str]] = {run_id: set() for run_id in run_ids}
    overlaps = []

    def all_done():
        states = {r["Id"]: r["JobRunState"] for r in glue.get_job_runs(JobName="queued")["JobRuns"]}
        for run_id, state in states.items():
            seen[run_id].add(state)
        if sum(state in ("STARTING", "RUNNING", "STOPPING") for state in states.values()) > 1:
            overlaps.append(states)
        return all(state == "SUCCEEDED" for state in states.values())

    wait_for(all_done, 60, "the queued runs", interval=0.05)
    assert overlaps == []
    assert "WAITING" in seen[run_ids[1]] and "WAITING" in seen[run_ids[2]]
    runs = {r["Id"]: r for r in glue.get_job_runs(JobName="queued")["JobRuns"]}
    assert [runs[i]["CompletedOn"] for i in run_ids] == sorted(runs[i]["CompletedOn"] for i in run_ids)
    assert {(r["WorkerType"], r["NumberOfWorkers"], r["JobRunQueuingEnabled"]) for r in runs.values()} == {
        ("G.2X", 3, True)
    }

    create_job(glue, "unqueued", scripts, ExecutionProperty={"MaxConcurrentRuns": 1})
    glue.start_job_run(JobName="unqueued", Arguments={"--sleep": "3"})
    with pytest.raises(glue.exceptions.ConcurrentRunsExceededException):
        glue.start_job_run(JobName="unqueued")


def test_stopping_answers_at_once_and_passes_through_stopping(runner, scripts, glue_events):
    glue = runner.client()
    create_job(glue, "stopped", scripts, JobRunQueuingEnabled=True)
    running = glue.start_job_run(JobName="stopped", Arguments={"--sleep": "60"})["JobRunId"]
    waiting = glue.start_job_run(JobName="stopped")["JobRunId"]
    until_running(glue, "stopped", running)
    clock = time.monotonic()
    answer = glue.batch_stop_job_run(JobName="stopped", JobRunIds=[running, waiting])
    assert time.monotonic() - clock < 1.0
    assert len(answer["SuccessfulSubmissions"]) == 2 and answer["Errors"] == []
    assert glue.get_job_run(JobName="stopped", RunId=waiting)["JobRun"]["JobRunState"] == "STOPPED"
    assert glue.get_job_run(JobName="stopped", RunId=running)["JobRun"]["JobRunState"] in ("STOPPING", "STOPPED")
    assert finished(glue, running, job="stopped", timeout=60)["JobRunState"] == "STOPPED"
    assert {e["detail"]["state"] for e in glue_events(2)} == {"STOPPED"}


def process_alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_deleting_a_job_stops_its_runs_and_a_new_job_of_that_name_starts_clean(runner, scripts):
    glue = runner.client()
    create_job(glue, "doomed", scripts)
    run_id = glue.start_job_run(JobName="doomed", Arguments={"--sleep": "60"})["JobRunId"]
    until_running(glue, "doomed", run_id)
    pid = int((runner.state_dir / "runs" / "doomed" / run_id / "pid").read_text())
    glue.delete_job(JobName="doomed")
    wait_for(lambda: not process_alive(pid), 30, "the run's process to end")
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job_runs(JobName="doomed")
    create_job(glue, "doomed", scripts)
    assert glue.get_job_runs(JobName="doomed")["JobRuns"] == []
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job_run(JobName="doomed", RunId=run_id)


def test_bookmarks_follow_bookmarked_runs_and_reset(runner, scripts):
    glue = runner.client()
    create_job(glue, "marked", scripts, DefaultArguments={"--job-bookmark-option": "job-bookmark-enable"})
    with pytest.raises(glue.exceptions.EntityNotFoundException):
        glue.get_job_bookmark(JobName="marked")
    first = glue.start_job_run(JobName="marked")["JobRunId"]
    finished(glue, first, job="marked", timeout=60)
    second = glue.start_job_run(JobName="marked")["JobRunId"]
    finished(glue, second, job="marked", timeout=60)
    entry = glue.get_job_bookmark(JobName="marked")["JobBookmarkEntry"]
    assert (entry["Run"], entry["RunId"], entry["PreviousRunId"], entry["Attempt"]) == (2, second, first, 0)
    reset = glue.reset_job_bookmark(JobName="marked")["JobBookmarkEntry"]
    assert reset["Version"] == entry["Version"] + 1 and reset["Run"] == 0
    assert glue.get_job_bookmark(JobName="marked", RunId=first)["JobBookmarkEntry"]["Run"] == 1


def test_jobs_and_runs_survive_a_restart_and_active_runs_end_with_a_reason(glueline_stack, scripts, tmp_path):
    state = tmp_path / "runner"
    first = Runner(state).start()
    try:
        glue = first.client()
        create_job(glue, "kept", scripts, Tags={"k": "v"})
        done = glue.start_job_run(JobName="kept")["JobRunId"]
        finished(glue, done, job="kept", timeout=60)
        create_job(glue, "crashed", scripts)
        cut = glue.start_job_run(JobName="crashed", Arguments={"--sleep": "60"})["JobRunId"]
        until_running(glue, "crashed", cut)
        orphan = int((state / "runs" / "crashed" / cut / "pid").read_text())
    finally:
        first.stop(signal.SIGKILL)  # a crash: no chance to stop its runs, which outlive it
    second = Runner(state).start()
    try:
        glue = second.client()
        assert glue.get_job(JobName="kept")["Job"]["Command"]["ScriptLocation"] == scripts
        assert glue.get_tags(ResourceArn="arn:aws:glue:us-east-1:000000000000:job/kept")["Tags"] == {"k": "v"}
        assert glue.get_job_run(JobName="kept", RunId=done)["JobRun"]["JobRunState"] == "SUCCEEDED"
        crashed = glue.get_job_run(JobName="crashed", RunId=cut)["JobRun"]
        assert (
            crashed["JobRunState"] == "FAILED"
            and "runner stopped while this run was RUNNING" in crashed["ErrorMessage"]
        )
        wait_for(lambda: not process_alive(orphan), 10, "the new runner to end the orphaned run's processes")
        again = glue.start_job_run(JobName="crashed", Arguments={"--sleep": "60"})["JobRunId"]
        until_running(glue, "crashed", again)
    finally:
        second.stop()  # a clean shutdown: active runs end STOPPED, saying why
    third = Runner(state).start()
    try:
        stopped = third.client().get_job_run(JobName="crashed", RunId=again)["JobRun"]
        assert stopped["JobRunState"] == "STOPPED" and "shut down" in stopped["ErrorMessage"]
    finally:
        third.stop()
