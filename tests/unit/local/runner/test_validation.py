"""The Glue runner's request rules and event shape, without a runner (tests/integration/test_glue_api.py
drives them through real clients)."""

from __future__ import annotations

import json

import pytest

from glueline.local.runner.cloud import state_change_event
from glueline.local.runner.exceptions import InvalidInputException
from glueline.local.runner.validation import default_timeout, validate_request

JOB = {"Name": "j", "Role": "r", "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/s.py"}}


def test_a_valid_request_passes_and_unknown_members_are_ignored():
    validate_request("CreateJob", {**JOB, "GlueVersion": "5.0", "WorkerType": "G.1X", "NumberOfWorkers": 2})
    validate_request("CreateJob", {**JOB, "SomethingNewer": {"x": 1}})


@pytest.mark.parametrize(
    ("operation", "request_", "message"),
    [
        ("CreateJob", {"Role": "r", "Command": {}}, "Value null at 'name'"),
        ("CreateJob", {**JOB, "Name": "n" * 256}, "Member must have length less than or equal to 255"),
        ("CreateJob", {**JOB, "WorkerType": "G.3X", "NumberOfWorkers": 1}, "Member must satisfy enum value set"),
        ("CreateJob", {**JOB, "MaxRetries": "3"}, "must be an integer"),
        ("CreateJob", {**JOB, "Timeout": 10081}, "more than the maximum of 10080"),
        ("UpdateJob", {"JobName": "j", "JobUpdate": {"GlueVersion": "6.0"}}, "Glue version 6.0 is not supported"),
        ("StartJobRun", {"JobName": "j", "WorkerType": "G.1X", "NumberOfWorkers": 2, "MaxCapacity": 2.0}, "not both"),
        ("GetJobRuns", {"JobName": "j", "MaxResults": 201}, "less than or equal to 200"),
        ("CreateJob", {**JOB, "AllocatedCapacity": 10, "MaxCapacity": 10.0}, "exclusive"),
        ("StartJobRun", {"JobName": "j", "AllocatedCapacity": 10, "MaxCapacity": 10.0}, "exclusive"),
        ("CreateJob", {**JOB, "GlueVersion": "2.0", "ExecutionClass": "FLEX"}, "FLEX needs a glueetl job of Glue 3.0"),
        ("CreateJob", {**JOB, "Command": {"Name": "pythonshell"}, "ExecutionClass": "FLEX"}, "not a pythonshell job"),
        ("GetJobs", {"MaxResults": 0}, "greater than or equal to 1"),
    ],
)
def test_what_aws_refuses(operation, request_, message):
    with pytest.raises(InvalidInputException, match=message):
        validate_request(operation, request_)


def test_flex_is_for_spark_jobs_of_glue_3_or_later_and_a_run_may_override_one_half_of_the_workers():
    validate_request("CreateJob", {**JOB, "GlueVersion": "3.0", "ExecutionClass": "FLEX"})
    validate_request("CreateJob", {**JOB, "ExecutionClass": "FLEX"})  # Glue 5.1 by default
    validate_request("StartJobRun", {"JobName": "j", "NumberOfWorkers": 4})  # combined with the job's later


def test_timeout_defaults_follow_the_glue_version():
    assert [default_timeout(v) for v in ("2.0", "4.0", "5.0", "5.1")] == [2880, 2880, 480, 480]


def test_state_change_events_are_shaped_as_aws_documents_them():
    failed = state_change_event("job", "jr_1", "FAILED", "ValueError: bad")
    assert (failed["Source"], failed["DetailType"]) == ("aws.glue", "Glue Job State Change")
    assert json.loads(failed["Detail"]) == {
        "jobName": "job",
        "severity": "ERROR",
        "state": "FAILED",
        "jobRunId": "jr_1",
        "message": "ValueError: bad",
    }
    timed_out = json.loads(state_change_event("job", "jr_2", "TIMEOUT", "x")["Detail"])
    assert (timed_out["severity"], timed_out["message"]) == ("WARN", "Job run timed out")
