"""The Lambda's decisions: which files an event admits and when a Glue run is started, against moto's S3
and DynamoDB and a scripted Glue."""

from __future__ import annotations

import pytest

from glueline.intake.intake import AdmitError, Intake
from glueline.shared.audit import Status
from glueline.shared.events import object_created_event, scheduled_event
from glueline.shared.lifecycle import FILES_TARGET

from ..conftest import BUCKET, GOOD_CSV, TARGET, FakeGlue

SCHEDULE = scheduled_event("000000000000", "us-east-1", "ETL_Daily_Schedule")


def intake(aws, glue) -> Intake:
    return Intake(aws.lifecycle(glue), BUCKET)


def test_a_new_file_is_recorded_and_a_run_started_for_it(aws):
    glue = FakeGlue()
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    (record,) = aws.audit.all()
    timings = {key: result.pop(key) for key in ("seconds", "glue_seconds")}
    assert result == {"files": {"source/a.csv": Status.PENDING}, "sweep": False, "work": 1, "glue_job_run_id": "jr_1"}
    assert 0 <= timings["glue_seconds"] <= timings["seconds"]
    assert (record.status, record.glue_job_id) == (Status.PENDING, "jr_1")


def test_a_file_with_a_bad_header_costs_no_glue_run(aws):
    glue = FakeGlue()
    aws.put("source/bad.csv", b"TransactionID,Amount\n1,2\n")
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/bad.csv"))
    assert result["files"] == {"source/bad.csv": Status.REJECTED} and result["glue_job_run_id"] is None
    assert glue.calls == 0 and aws.keys() == ["rejected/bad.csv"]


def test_the_sweep_admits_everything_in_source_and_starts_one_run(aws):
    glue = FakeGlue()
    aws.put("source/", b"")
    aws.put("source/a.csv", GOOD_CSV)
    aws.put("source/b.csv", GOOD_CSV.replace(b"x\n", b"y\n"))
    result = intake(aws, glue).handle(SCHEDULE)
    assert result["files"] == {"source/": "IGNORED", "source/a.csv": Status.PENDING, "source/b.csv": Status.PENDING}
    assert result["sweep"] and result["work"] == 2 and glue.calls == 1


def test_the_sweep_retries_failed_files_without_new_uploads(aws):
    glue = FakeGlue()
    aws.put("source/a.csv", GOOD_CSV)
    lambda_ = intake(aws, glue)
    lambda_.handle(object_created_event(BUCKET, "source/a.csv"))
    (record,) = aws.audit.all()
    lifecycle = aws.lifecycle(glue)
    lifecycle.fail(lifecycle.claim(record, "jr_1"), "jr_1", "database down")
    result = lambda_.handle(SCHEDULE)
    assert result["files"] == {"source/a.csv": Status.FAILED} and result["glue_job_run_id"] == "jr_2"


@pytest.mark.parametrize("trigger", ["s3 event", "schedule"])
def test_a_lagging_status_index_costs_no_file_its_run(aws, monkeypatch, trigger):
    """DynamoDB's status index may not show an item written a moment ago: the trigger reads the items it
    admitted directly and names them to the run it starts."""
    aws.lag_index(monkeypatch)
    glue = FakeGlue()
    aws.put("source/a.csv", GOOD_CSV)
    event = object_created_event(BUCKET, "source/a.csv") if trigger == "s3 event" else SCHEDULE
    result = intake(aws, glue).handle(event)
    (record,) = aws.audit.all()
    assert aws.audit.with_status(Status.PENDING) == []  # the index indeed lags
    assert result["glue_job_run_id"] == "jr_1"
    assert glue.arguments == [{"--FILE_IDS": record.file_id, FILES_TARGET: TARGET}]


def test_with_the_jobs_runs_busy_a_run_is_queued_at_once_not_waited_for(aws):
    """The job's one slot is taken: the Lambda does not hold its own (reserved concurrency) waiting for
    it; the run it starts waits in Glue's queue."""
    glue = FakeGlue(states={"jr_active": "RUNNING"})
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    assert result["glue_job_run_id"] == "jr_1" and glue.queuing == [True]
    (record,) = aws.audit.all()
    assert record.status == Status.PENDING and record.glue_job_id == "jr_1"


def test_a_queued_run_that_starts_while_files_are_announced_to_it_is_not_relied_on(aws):
    """The waiting run started between the trigger's look and its announcement (it may have read what
    was announced to it already): the trigger starts a run of its own."""
    glue = FakeGlue(states={"jr_waiting": "WAITING"})
    glue.run_arguments["jr_waiting"] = {FILES_TARGET: TARGET}
    glue.on_get_run = lambda run_id: glue.states.update({run_id: "RUNNING"})
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    assert result["glue_job_run_id"] == "jr_1" and glue.calls == 1


def test_files_join_no_queued_run_started_for_another_target(aws):
    """A run queued before a deploy that changed the database has the job's earlier --TARGET and will
    refuse to load: a trigger for the new target starts a run of its own instead of joining it."""
    glue = FakeGlue(states={"jr_before_deploy": "WAITING"})
    glue.run_arguments["jr_before_deploy"] = {FILES_TARGET: "127.0.0.1:5432/elsewhere/public.transactions"}
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    assert result["glue_job_run_id"] == "jr_1" and glue.calls == 1
    assert glue.arguments[0][FILES_TARGET] == TARGET
    assert aws.lifecycle(glue).announced_to("jr_before_deploy") == []


def test_when_glue_refuses_even_to_queue_a_run_the_file_stays_pending_for_the_next_trigger(aws):
    glue = FakeGlue(busy_for=1)
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    assert result["glue_job_run_id"] is None and glue.calls == 1
    assert [r.status for r in aws.audit.all()] == [Status.PENDING]


def test_an_object_that_cannot_be_admitted_does_not_stop_the_sweep(aws, monkeypatch):
    glue = FakeGlue()
    aws.put("source/a.csv", GOOD_CSV)
    aws.put("source/broken.csv", GOOD_CSV.replace(b"x\n", b"y\n"))
    aws.put("source/c.csv", GOOD_CSV.replace(b"x\n", b"z\n"))
    lambda_ = intake(aws, glue)
    admit = lambda_.lifecycle.admit

    def admit_or_fail(ref):
        if ref.key == "source/broken.csv":
            raise PermissionError("AccessDenied")
        return admit(ref)

    monkeypatch.setattr(lambda_.lifecycle, "admit", admit_or_fail)
    with pytest.raises(AdmitError, match="source/broken.csv: PermissionError: AccessDenied") as failed:
        lambda_.handle(SCHEDULE)
    assert failed.value.result["files"] == {"source/a.csv": Status.PENDING, "source/c.csv": Status.PENDING}
    assert failed.value.result["glue_job_run_id"] == "jr_1"
    assert sorted(r.file_name for r in aws.audit.all()) == ["a.csv", "c.csv"]
