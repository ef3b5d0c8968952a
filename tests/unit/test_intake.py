"""The Lambda's decisions, with in-memory stand-ins for S3, the audit table and Glue."""

from datetime import datetime, timezone

import pytest

from glueline import layout
from glueline.audit import AuditRecord, Status, needs_run
from glueline.contract import COLUMNS
from glueline.intake import Intake, ObjectRef, parse_event

GOOD_CSV = (",".join(COLUMNS) + "\n1,ACC,,2024-02-30,deposit,1.00,USD,2.00,3,4,x\n").encode()
BUCKET = "bkt"
UPLOADED = datetime(2024, 7, 13, 8, tzinfo=timezone.utc)


class ClientError(Exception):
    def __init__(self, code):
        super().__init__(code)
        self.response = {"Error": {"Code": code}}


class ConcurrentRunsExceededException(Exception):
    pass


class FakeS3:
    class exceptions:
        ClientError = ClientError

    def __init__(self):
        self.objects: dict[str, bytes] = {}

    def etag(self, key):
        return '"' + str(abs(hash(self.objects[key]))) + '"'

    def head_object(self, Bucket, Key, IfMatch=None):
        if Key not in self.objects or (IfMatch and IfMatch != self.etag(Key)):
            raise ClientError("404")
        return {"ETag": self.etag(Key), "ContentLength": len(self.objects[Key]), "LastModified": UPLOADED}

    def get_object(self, Bucket, Key, IfMatch=None, Range=None):
        self.head_object(Bucket, Key, IfMatch)
        import io

        return {"Body": io.BytesIO(self.objects[Key])}

    def get_paginator(self, name):
        assert name == "list_objects_v2"
        objects = self.objects

        class Paginator:
            def paginate(self, Bucket, Prefix):
                keys = sorted(k for k in objects if k.startswith(Prefix))
                return [
                    {
                        "Contents": [
                            {"Key": k, "ETag": FakeS3.etag(fake, k), "Size": len(objects[k]), "LastModified": UPLOADED}
                            for k in keys
                        ]
                    }
                ]

        fake = self
        return Paginator()

    def copy_object(self, Bucket, Key, CopySource):
        self.objects[Key] = self.objects[CopySource["Key"]]

    def delete_object(self, Bucket, Key):
        del self.objects[Key]


class FakeAudit:
    def __init__(self):
        self.items: dict[str, AuditRecord] = {}

    def get(self, fid):
        return self.items.get(fid)

    def create(self, record, status):
        if record.file_id in self.items:
            return False
        record.status = status
        self.items[record.file_id] = record
        return True

    def reject(self, fid, reason, final_key, holder):
        record = self.items[fid]
        assert record.status == Status.PROCESSING and record.glue_job_id == holder
        record.status, record.error_message, record.final_key = Status.REJECTED, reason, final_key
        return True

    def redelivered(self, fid, status):
        record = self.items[fid]
        record.redeliveries = (record.redeliveries or 0) + 1
        return True

    def note_job_run(self, fid, run_id):
        if self.items[fid].status == Status.PENDING:
            self.items[fid].glue_job_id = run_id

    def work(self, max_attempts, run_is_active):
        return [r for r in self.items.values() if needs_run(r, max_attempts, run_is_active)]


class EntityNotFoundException(Exception):
    pass


class FakeGlue:
    class exceptions:
        ConcurrentRunsExceededException = ConcurrentRunsExceededException
        EntityNotFoundException = EntityNotFoundException

    def __init__(self, busy_for=0, on_busy=None, states=None):
        self.calls = 0
        self.busy_for = busy_for
        self.on_busy = on_busy
        self.states = states or {}

    def get_job_run(self, JobName, RunId):
        if RunId not in self.states:
            raise EntityNotFoundException(RunId)
        return {"JobRun": {"JobRunState": self.states[RunId]}}

    def start_job_run(self, JobName):
        self.calls += 1
        if self.calls <= self.busy_for:
            if self.on_busy:
                self.on_busy()
            raise ConcurrentRunsExceededException()
        return {"JobRunId": f"jr_{self.calls}"}


def intake(s3=None, audit=None, glue=None):
    return Intake(
        s3 or FakeS3(), audit or FakeAudit(), glue or FakeGlue(), "ETL_Job_to_RDS", BUCKET, 3, sleep=lambda s: None
    )


def s3_event(key, etag=None):
    detail = {"bucket": {"name": BUCKET}, "object": {"key": key, "size": len(GOOD_CSV)}}
    if etag:
        detail["object"]["etag"] = etag
    return {"source": "aws.s3", "detail-type": "Object Created", "time": "2024-07-13T08:00:00Z", "detail": detail}


def test_parse_event_shapes():
    refs, sweep = parse_event(s3_event("source/a.csv", "abc"))
    assert not sweep and refs == [ObjectRef(BUCKET, "source/a.csv", "abc", len(GOOD_CSV), "2024-07-13T08:00:00.000Z")]
    assert parse_event({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}}) == ([], True)
    classic = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2024-07-13T08:00:00.000Z",
                "s3": {"bucket": {"name": BUCKET}, "object": {"key": "source/my+file.csv", "size": 1}},
            }
        ]
    }
    assert parse_event(classic)[0][0].key == "source/my file.csv"
    with pytest.raises(ValueError):
        parse_event({"hello": "world"})


def test_a_new_file_becomes_pending_with_its_integrity_sample_and_a_run_is_started():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue()
    s3.objects["source/a.csv"] = GOOD_CSV
    result = intake(s3, audit, glue).handle(s3_event("source/a.csv", s3.etag("source/a.csv")), lambda: 60_000)
    fid = layout.file_id(BUCKET, "source/a.csv", s3.etag("source/a.csv"))
    record = audit.items[fid]
    assert result["files"] == {"source/a.csv": Status.PENDING} and result["glue_job_run_id"] == "jr_1"
    assert (record.status, record.glue_job_id, record.file_name) == (Status.PENDING, "jr_1", "a.csv")
    assert record.integrity["SampleBlankCustomerIDs"] == 1 and record.integrity["SampleBadTransactionDates"] == 1


def test_the_same_file_announced_twice_is_recorded_once():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue(states={"jr_1": "RUNNING"})
    s3.objects["source/a.csv"] = GOOD_CSV
    lam = intake(s3, audit, glue)
    lam.handle(s3_event("source/a.csv"), lambda: 60_000)
    audit.items[next(iter(audit.items))].status = Status.PROCESSING  # the run took it
    second = lam.handle({"detail-type": "Scheduled Event"}, lambda: 60_000)
    assert second["files"] == {"source/a.csv": Status.PROCESSING}
    assert len(audit.items) == 1 and glue.calls == 1


def test_a_file_with_a_bad_header_is_rejected_without_a_glue_run():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue()
    s3.objects["source/bad.csv"] = b"TransactionID,Amount\n1,2\n"
    result = intake(s3, audit, glue).handle(s3_event("source/bad.csv"), lambda: 60_000)
    assert result["files"] == {"source/bad.csv": Status.REJECTED} and glue.calls == 0
    (record,) = audit.items.values()
    assert record.final_key == "rejected/bad.csv" and "CustomerID" in record.error_message
    assert set(s3.objects) == {"rejected/bad.csv"}


def test_done_content_uploaded_again_goes_straight_to_its_final_place():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue()
    s3.objects["source/a.csv"] = GOOD_CSV
    lam = intake(s3, audit, glue)
    lam.handle(s3_event("source/a.csv"), lambda: 60_000)
    (record,) = audit.items.values()
    record.status = Status.COMPLETED
    s3.copy_object(BUCKET, "processed/a.csv", {"Key": "source/a.csv"})
    s3.delete_object(BUCKET, "source/a.csv")
    assert lam.handle(s3_event("source/a.csv"), lambda: 60_000)["files"] == {"source/a.csv": "GONE"}  # late event
    s3.objects["source/a.csv"] = GOOD_CSV  # the same bytes uploaded again
    assert lam.handle(s3_event("source/a.csv"), lambda: 60_000)["files"] == {"source/a.csv": "REDELIVERED"}
    assert set(s3.objects) == {"processed/a.csv"} and record.redeliveries == 1
    assert record.status == Status.COMPLETED and glue.calls == 1


def failed_item(audit, attempts, status=Status.FAILED, run=None):
    record = AuditRecord("f1", "a.csv", BUCKET, "source/a.csv", '"e"', 10, "2024-07-13T08:00:00.000Z")
    record.status, record.attempts, record.glue_job_id = status, attempts, run
    audit.items["f1"] = record
    return record


@pytest.mark.parametrize(
    "status, attempts, run_state, retried",
    [
        (Status.FAILED, 1, None, True),  # attempts left
        (Status.FAILED, 3, None, False),  # out of attempts (the job has moved it to rejected/)
        (Status.PROCESSING, 1, "FAILED", True),  # its Glue run died: a stale claim
        (Status.PROCESSING, 1, None, True),  # its Glue run is unknown to Glue
        (Status.PROCESSING, 1, "RUNNING", False),  # still being processed
        (Status.COMPLETED, 1, "SUCCEEDED", False),
    ],
)
def test_any_trigger_starts_a_run_for_retries_and_dead_claims(status, attempts, run_state, retried):
    audit = FakeAudit()
    glue = FakeGlue(states={"jr_old": run_state} if run_state else {})
    failed_item(audit, attempts, status, run="jr_old")
    result = intake(FakeS3(), audit, glue).handle({"detail-type": "Scheduled Event"}, lambda: 60_000)
    assert (result["glue_job_run_id"] is not None) == retried
    assert glue.calls == (1 if retried else 0)


def test_busy_glue_waits_until_the_active_run_claims_the_file():
    s3, audit = FakeS3(), FakeAudit()
    s3.objects["source/a.csv"] = GOOD_CSV

    def claim_on_third_refusal():
        if glue.calls == 3:
            for record in audit.items.values():
                record.status, record.glue_job_id = Status.PROCESSING, "jr_active"

    glue = FakeGlue(busy_for=100, on_busy=claim_on_third_refusal, states={"jr_active": "RUNNING"})
    result = intake(s3, audit, glue).handle(s3_event("source/a.csv"), lambda: 60_000)
    assert result["glue_job_run_id"] is None and glue.calls == 3


def test_busy_glue_retries_start_when_the_active_run_ends_first():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue(busy_for=2)
    s3.objects["source/a.csv"] = GOOD_CSV
    result = intake(s3, audit, glue).handle(s3_event("source/a.csv"), lambda: 60_000)
    assert result["glue_job_run_id"] == "jr_3"


def test_busy_glue_gives_up_before_the_lambda_timeout_and_leaves_the_file_pending():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue(busy_for=1000)
    s3.objects["source/a.csv"] = GOOD_CSV
    remaining = iter([60_000, 30_000, 10_000])
    result = intake(s3, audit, glue).handle(s3_event("source/a.csv"), lambda: next(remaining))
    assert result["glue_job_run_id"] is None
    assert [r.status for r in audit.items.values()] == [Status.PENDING]


def test_the_sweep_lists_source_and_starts_a_run_for_old_pending_files():
    s3, audit, glue = FakeS3(), FakeAudit(), FakeGlue()
    s3.objects["source/"] = b""
    s3.objects["source/a.csv"] = GOOD_CSV
    result = intake(s3, audit, glue).handle({"detail-type": "Scheduled Event"}, lambda: 60_000)
    assert result["files"] == {"source/": "IGNORED", "source/a.csv": Status.PENDING}
    assert result["sweep"] and result["glue_job_run_id"] == "jr_1"
