"""Reading a Glue run's output from CloudWatch Logs (moto's), once and following the run to its end."""

from __future__ import annotations

import time

import boto3
import pytest

from glueline.shared.gluerun import ERROR_GROUP, OUTPUT_GROUP, RunNotFoundError, show_run_logs

RUN = "jr_0123456789abcdef"


class ScriptedGlue:
    """get_job_run answers the scripted states in turn (the last one from then on)."""

    def __init__(self, *states: str):
        self.states = list(states)
        self.exceptions = type("E", (), {"EntityNotFoundException": KeyError})

    def get_job_run(self, JobName, RunId):  # noqa: N803 - boto3's parameter names
        if RunId != RUN:
            raise KeyError(RunId)
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        return {"JobRun": {"Id": RunId, "JobName": JobName, "JobRunState": state}}


@pytest.fixture
def logs(aws):
    client = boto3.client("logs")
    for group in (OUTPUT_GROUP, ERROR_GROUP):
        client.create_log_group(logGroupName=group)
    return client


def put(logs, group: str, *lines: str) -> None:
    try:
        logs.create_log_stream(logGroupName=group, logStreamName=RUN)
    except logs.exceptions.ResourceAlreadyExistsException:
        pass
    now = int(time.time() * 1000)  # CloudWatch Logs refuses events older than 14 days
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    logs.put_log_events(logGroupName=group, logStreamName=RUN, logEvents=events)


def test_a_finished_runs_output_and_errors_are_read_once(logs):
    put(logs, OUTPUT_GROUP, "stage read: 3 rows", "stage load: 3 rows")
    put(logs, ERROR_GROUP, "WARN something")
    written = []
    state = show_run_logs(
        logs, ScriptedGlue("SUCCEEDED"), "ETL_Job_to_RDS", RUN, False, lambda group, line: written.append((group, line))
    )
    assert state == "SUCCEEDED"
    assert written == [
        (OUTPUT_GROUP, "stage read: 3 rows"),
        (OUTPUT_GROUP, "stage load: 3 rows"),
        (ERROR_GROUP, "WARN something"),
    ]


def test_following_prints_each_line_once_until_the_run_ends(logs):
    glue = ScriptedGlue("STARTING", "RUNNING", "RUNNING", "SUCCEEDED")
    arrivals = [["first"], ["second", "third"], ["last"]]  # written between polls, the last before SUCCEEDED
    written, sleeps = [], []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if arrivals:
            put(logs, OUTPUT_GROUP, *arrivals.pop(0))

    state = show_run_logs(logs, glue, "ETL_Job_to_RDS", RUN, True, lambda group, line: written.append(line), sleep)
    assert state == "SUCCEEDED" and len(sleeps) == 3
    assert written == ["first", "second", "third", "last"]


def test_an_unknown_run_is_a_clear_error(logs):
    with pytest.raises(RunNotFoundError, match="no run jr_nope of job ETL_Job_to_RDS"):
        show_run_logs(logs, ScriptedGlue("RUNNING"), "ETL_Job_to_RDS", "jr_nope", True, print)


def test_a_run_with_no_output_yet_has_no_lines(logs):
    written = []
    assert (
        show_run_logs(logs, ScriptedGlue("RUNNING"), "J", RUN, False, lambda group, line: written.append(line))
        == "RUNNING"
    )
    assert written == []
