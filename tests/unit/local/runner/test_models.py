"""What the runner answers about a job's and a run's capacity, a run's settings and a connection, as
Glue answers it (tests/integration/test_glue_api.py asks the same through boto3)."""

from __future__ import annotations

import pytest

from glueline.local.runner.exceptions import InvalidInputException
from glueline.local.runner.models import Connection, Job, JobRun, run_capacity, shown_capacity

COMMAND = {"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"}


G2X3 = {"WorkerType": "G.2X", "NumberOfWorkers": 3}
QUARTERS = {"WorkerType": "G.025X", "NumberOfWorkers": 2}


@pytest.mark.parametrize(
    ("sizing", "command", "shown"),
    [
        (G2X3, "glueetl", {**G2X3, "MaxCapacity": 6.0, "AllocatedCapacity": 6}),
        (QUARTERS, "gluestreaming", {**QUARTERS, "MaxCapacity": 0.5, "AllocatedCapacity": 0}),
        ({"MaxCapacity": 4.0}, "glueetl", {"MaxCapacity": 4.0, "AllocatedCapacity": 4}),
        ({"AllocatedCapacity": 5}, "glueetl", {"MaxCapacity": 5.0, "AllocatedCapacity": 5}),
        ({}, "glueetl", {"MaxCapacity": 10.0, "AllocatedCapacity": 10}),
        ({}, "pythonshell", {"MaxCapacity": 0.0625, "AllocatedCapacity": 0}),
    ],
)
def test_capacity_is_answered_as_workers_and_dpus_both(sizing, command, shown):
    assert shown_capacity(sizing, command) == shown


def test_a_run_overrides_one_half_of_the_worker_pair_or_all_of_the_sizing():
    job = {"Command": COMMAND, "WorkerType": "G.1X", "NumberOfWorkers": 2}
    assert run_capacity(job, {"NumberOfWorkers": 5})["MaxCapacity"] == 5.0
    assert run_capacity(job, {"WorkerType": "G.2X"}) == {
        "WorkerType": "G.2X",
        "NumberOfWorkers": 2,
        "MaxCapacity": 4.0,
        "AllocatedCapacity": 4,
    }
    assert run_capacity(job, {"MaxCapacity": 3.0}) == {"MaxCapacity": 3.0, "AllocatedCapacity": 3}
    assert run_capacity(job, {}) == shown_capacity(job, "glueetl")
    with pytest.raises(InvalidInputException, match="set together"):  # the pair checked after combining
        run_capacity({"Command": COMMAND, "MaxCapacity": 10.0}, {"WorkerType": "G.1X"})


def test_a_job_answers_its_definition_with_its_capacity():
    job = Job.from_request({"Name": "j", "Role": "r", "Command": COMMAND, "WorkerType": "G.1X", "NumberOfWorkers": 4})
    answered = job.as_dict()
    assert (answered["MaxCapacity"], answered["AllocatedCapacity"]) == (4.0, 4)
    assert "MaxCapacity" not in job.definition  # what was asked for is kept apart from what is shown
    assert Job.from_saved(job.saved()).as_dict() == answered
    assert "MaxCapacity" not in job.saved()  # derived again after a restart, never stored


def run(**fields) -> JobRun:
    snapshot = {"GlueVersion": "5.0"}
    return JobRun("jr_1", "j", fields.pop("arguments", {}), 60, 1000.0, job_snapshot=snapshot, **fields)


def test_a_run_answers_what_it_was_started_with_and_omits_what_it_was_not():
    started = run(settings={"SecurityConfiguration": "sc", "NotificationProperty": {"NotifyDelayAfter": 5}})
    answered = started.as_dict()
    assert "Arguments" not in answered and "DPUSeconds" not in answered and "CompletedOn" not in answered
    assert answered["SecurityConfiguration"] == "sc" and answered["NotificationProperty"] == {"NotifyDelayAfter": 5}
    assert run(arguments={"--day": "1"}).as_dict()["Arguments"] == {"--day": "1"}


def test_a_finished_flex_run_reports_its_dpu_seconds():
    flex = run(
        settings={"ExecutionClass": "FLEX"},
        capacity=shown_capacity({"WorkerType": "G.2X", "NumberOfWorkers": 2}, "glueetl"),
    )
    flex.state, flex.completed_on = "SUCCEEDED", 1030.0
    answered = flex.as_dict()
    assert (answered["ExecutionTime"], answered["DPUSeconds"], answered["ExecutionClass"]) == (30, 120.0, "FLEX")
    standard = run(settings={"ExecutionClass": "STANDARD"}, capacity={"MaxCapacity": 2.0})
    standard.completed_on = 1030.0
    assert "DPUSeconds" not in standard.as_dict()


def test_a_connection_is_ready_and_its_password_can_be_hidden():
    definition = {"Name": "db", "ConnectionType": "JDBC", "ConnectionProperties": {"USERNAME": "u", "PASSWORD": "p"}}
    connection = Connection.from_input(definition)
    assert connection.as_dict()["Status"] == "READY"
    assert connection.as_dict()["ConnectionProperties"]["PASSWORD"] == "p"
    assert connection.as_dict(hide_password=True)["ConnectionProperties"] == {"USERNAME": "u"}
    assert connection.definition["ConnectionProperties"]["PASSWORD"] == "p"  # hidden in the answer only
