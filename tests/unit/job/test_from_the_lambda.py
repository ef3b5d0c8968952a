"""The Lambda's trigger and the Glue run it hands its files to, together: the job's side of what the
Lambda decides (here, not in tests/unit/intake, which also run on the Lambda's runtime from its zip alone,
where the job's code is not)."""

from __future__ import annotations

import pytest

from glueline.intake.intake import Intake
from glueline.job.run import JobRun
from glueline.shared.audit import Status
from glueline.shared.events import object_created_event
from glueline.shared.lifecycle import Lifecycle

from ..conftest import BUCKET, GOOD_CSV, FakeGlue
from .harness import ScriptedLoader


def intake(aws, glue) -> Intake:
    return Intake(aws.lifecycle(glue), BUCKET)


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


def test_files_join_a_run_already_waiting_in_glues_queue_which_takes_them_when_it_starts(aws):
    """A burst: the second file's trigger finds the first one's run WAITING and announces its file to
    it (no second run); that run, when it starts, takes both."""
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
