"""The Lambda's decisions: which files an event admits and when a Glue run is started, against moto's S3
and DynamoDB and a scripted Glue."""

from __future__ import annotations

import pytest

from glueline.intake.intake import AdmitError, Intake
from glueline.shared.audit import Status
from glueline.shared.events import object_created_event, scheduled_event

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
    assert result["glue_job_run_id"] == "jr_1" and glue.arguments == [{"--FILE_IDS": record.file_id}]


def lagging_listings(aws, monkeypatch, key: str) -> None:
    """Make every listing of the bucket lack ``key``, as a listing or an index that lags may."""

    def without(page: dict) -> dict:
        return {**page, "Contents": [o for o in page.get("Contents", []) if o["Key"] != key]}

    get_paginator, list_objects_v2 = aws.s3.get_paginator, aws.s3.list_objects_v2

    class Paginator:
        def __init__(self, name):
            self.pages = get_paginator(name)

        def paginate(self, **kwargs):
            return (without(page) for page in self.pages.paginate(**kwargs))

    monkeypatch.setattr(aws.s3, "get_paginator", Paginator)
    monkeypatch.setattr(aws.s3, "list_objects_v2", lambda **kwargs: without(list_objects_v2(**kwargs)))


@pytest.mark.parametrize("details", [True, False])
def test_an_announced_file_is_read_by_its_key_not_found_through_a_listing(aws, monkeypatch, details):
    """An S3 event names its file: it is read by key (HeadObject, GetItem), so a listing of source/ and a
    status index that do not show it yet cost it neither its item nor its run."""
    from glueline.job.run import JobRun
    from glueline.shared.lifecycle import Lifecycle

    from ..job.harness import ScriptedLoader

    aws.put("source/a.csv", GOOD_CSV)
    aws.lag_index(monkeypatch)
    lagging_listings(aws, monkeypatch, "source/a.csv")
    assert aws.keys() == []  # the listing indeed lacks it
    event = object_created_event(BUCKET, "source/a.csv")
    if details:  # as EventBridge sends it
        head = aws.s3.head_object(Bucket=BUCKET, Key="source/a.csv")
        event["detail"]["object"].update(etag=head["ETag"].strip('"'), size=head["ContentLength"])
    glue = FakeGlue()
    result = intake(aws, glue).handle(event)
    (record,) = aws.audit.all()
    assert result["files"] == {"source/a.csv": Status.PENDING} and result["glue_job_run_id"] == "jr_1"
    loader = ScriptedLoader()
    announced = Lifecycle.announced(glue.arguments[0]["--FILE_IDS"])
    assert JobRun(aws.lifecycle(glue), "jr_1", lambda: loader, announced, log=lambda m: None).run() == []
    assert loader.batches == [["a.csv"]] and aws.audit.get(record.file_id).status == Status.COMPLETED


def test_the_file_id_glueline_upload_waits_for_is_the_one_the_lambda_admits(aws, tmp_path):
    from glueline.ops.uploads import upload

    path = tmp_path / "a.csv"
    path.write_bytes(GOOD_CSV)
    (sent,) = upload(aws.s3, BUCKET, [path], TARGET)
    intake(aws, FakeGlue()).handle(object_created_event(BUCKET, sent.key))
    assert [r.file_id for r in aws.audit.all()] == [sent.file_id]


def test_with_the_jobs_runs_busy_a_run_is_queued_at_once_not_waited_for(aws):
    """The job's one slot is taken: the Lambda does not hold its own (reserved concurrency) waiting for
    it; the run it starts waits in Glue's queue."""
    glue = FakeGlue(states={"jr_active": "RUNNING"})
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    assert result["glue_job_run_id"] == "jr_1" and glue.queuing == [True]
    (record,) = aws.audit.all()
    assert record.status == Status.PENDING and record.glue_job_id == "jr_1"


def test_files_join_a_run_already_waiting_in_glues_queue_which_takes_them_when_it_starts(aws):
    """A burst: the second file's trigger finds the first one's run WAITING and announces its file to
    it (no second run); that run, when it starts, takes both."""
    from glueline.job.run import JobRun
    from glueline.shared.lifecycle import Lifecycle

    from ..job.harness import ScriptedLoader

    glue = FakeGlue(states={"jr_active": "RUNNING"})
    lambda_ = intake(aws, glue)
    aws.put("source/a.csv", GOOD_CSV)
    assert lambda_.handle(object_created_event(BUCKET, "source/a.csv"))["glue_job_run_id"] == "jr_1"
    glue.states = {"jr_1": "WAITING", "jr_active": "RUNNING"}
    aws.put("source/b.csv", GOOD_CSV + b"2,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,b\n")
    assert lambda_.handle(object_created_event(BUCKET, "source/b.csv"))["glue_job_run_id"] == "jr_1"
    assert glue.calls == 1
    b = next(r for r in aws.audit.all() if r.file_name == "b.csv")
    assert aws.lifecycle(glue).announced_to("jr_1") == [b.file_id] and b.glue_job_id == "jr_1"

    glue.states["jr_1"] = "RUNNING"
    loader = ScriptedLoader()
    announced = Lifecycle.announced(glue.arguments[0]["--FILE_IDS"])
    assert JobRun(aws.lifecycle(glue), "jr_1", lambda: loader, announced, log=lambda m: None).run() == []
    assert sorted(r.status for r in aws.audit.all()) == [Status.COMPLETED] * 2


def test_a_queued_run_that_starts_while_files_are_announced_to_it_is_not_relied_on(aws):
    """The waiting run started between the trigger's look and its announcement (it may have read what
    was announced to it already): the trigger starts a run of its own."""
    glue = FakeGlue(states={"jr_waiting": "WAITING"})
    glue.on_get_run = lambda run_id: glue.states.update({run_id: "RUNNING"})
    aws.put("source/a.csv", GOOD_CSV)
    result = intake(aws, glue).handle(object_created_event(BUCKET, "source/a.csv"))
    assert result["glue_job_run_id"] == "jr_1" and glue.calls == 1


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
