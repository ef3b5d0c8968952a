"""A file's lifecycle, against moto's S3 and DynamoDB: every transition, its conditions, and where the
file ends."""

from __future__ import annotations

from pathlib import Path

import pytest

from glueline.shared.audit import AuditRecord, Status, content_identity, file_id, to_timestamp
from glueline.shared.counts import Counts
from glueline.shared.events import ObjectRef
from glueline.shared.lifecycle import GONE, IGNORED, REDELIVERED, Outcome

from ..conftest import BUCKET, GOOD_CSV, TARGET, FakeGlue


def announce(aws, key: str, body: bytes | None = GOOD_CSV) -> ObjectRef:
    """Upload (unless ``body`` is None) and describe the object as an S3 event would."""
    etag = aws.put(key, body) if body is not None else '"0"'
    return ObjectRef(BUCKET, key, etag, len(body or b""), "2024-07-13T08:00:00.000Z")


def test_a_new_file_becomes_pending_for_its_target(aws):
    lifecycle = aws.lifecycle()
    ref = announce(aws, "source/a.csv")
    fid, status = lifecycle.admit(ref)
    record = aws.audit.get(fid)
    head = aws.s3.head_object(Bucket=BUCKET, Key="source/a.csv", ChecksumMode="ENABLED")
    assert status == Status.PENDING and fid == file_id(BUCKET, "source/a.csv", content_identity(head, ref.size), TARGET)
    assert (record.status, record.target, record.file_name, record.size) == (
        Status.PENDING,
        TARGET,
        "a.csv",
        len(GOOD_CSV),
    )
    assert record.integrity["SampleBlankCustomerIDs"] == 1 and record.integrity["SampleBadTransactionDates"] == 1
    assert lifecycle.admit(ref) == (fid, Status.PENDING)  # announced again: the same item
    assert len(aws.audit.all()) == 1


def test_an_event_without_object_details_is_looked_up(aws):
    announce(aws, "source/a.csv")
    fid, status = aws.lifecycle().admit(ObjectRef(BUCKET, "source/a.csv"))
    assert status == Status.PENDING and aws.audit.get(fid).size == len(GOOD_CSV)


@pytest.mark.parametrize(
    "key, body, expected",
    [("processed/a.csv", GOOD_CSV, IGNORED), ("source/", b"", IGNORED)],
)
def test_objects_that_are_not_files_to_process(aws, key, body, expected):
    ref = announce(aws, key, body)
    assert aws.lifecycle().admit(ref)[1] == expected
    assert aws.audit.all() == []


@pytest.mark.parametrize("replaced", [True, False])
def test_a_version_gone_before_it_was_admitted_is_recorded_with_why(aws, replaced):
    """Overwritten (or deleted) before any trigger saw it: nothing to load or move, but the upload has an
    item that says what became of it (found by the soak: an overwrite in flight left no trace)."""
    first = announce(aws, "source/a.csv")
    if replaced:
        announce(aws, "source/a.csv", GOOD_CSV + b"1,ABCD12345678901234,1,2024-07-01,deposit,1.00,USD,2.00,1,,x\n")
    else:
        aws.s3.delete_object(Bucket=BUCKET, Key="source/a.csv")
    fid, status = aws.lifecycle().admit(first)
    record = aws.audit.get(fid)
    assert status == GONE and record.status == Status.REJECTED and record.final_key is None
    assert "replaced or deleted before it was admitted" in record.error_message
    assert aws.keys() == (["source/a.csv"] if replaced else [])  # the new version is left for its own item
    assert aws.audit.tallies_disagree() == {}
    assert aws.lifecycle().admit(first)[1] == Status.REJECTED  # the event again: the item is found


@pytest.mark.parametrize(
    "body, reason",
    [(b"TransactionID,Amount\n1,2\n", "missing required column(s)"), (b"", "empty file (0 bytes)")],
)
def test_a_file_refused_as_a_whole_is_rejected_by_the_lambda(aws, body, reason):
    fid, status = aws.lifecycle().admit(announce(aws, "source/bad.csv", body))
    record = aws.audit.get(fid)
    assert status == Status.REJECTED and reason in record.error_message
    assert (record.final_key, record.glue_job_id) == ("rejected/bad.csv", None)
    assert aws.keys() == ["rejected/bad.csv"]
    assert [(step["Event"], step.get("Key")) for step in record.history] == [
        ("admitted", None),
        (Status.REJECTED, "rejected/bad.csv"),
    ]


def test_identical_content_with_a_final_outcome_is_a_redelivery(aws):
    lifecycle = aws.lifecycle()
    ref = announce(aws, "source/a.csv")
    fid, _ = lifecycle.admit(ref)
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    lifecycle.complete(record, "jr_1", Outcome(Counts(1, 1, 0, 0, 1, 1)))
    assert lifecycle.admit(ref) == (fid, Status.COMPLETED)  # a late event for the moved file
    assert lifecycle.admit(announce(aws, "source/a.csv")) == (fid, REDELIVERED)  # the same bytes again
    record = aws.audit.get(fid)
    assert (record.status, record.redeliveries, record.counts) == (Status.COMPLETED, 1, Counts(1, 1, 0, 0, 1, 1))
    assert aws.keys() == ["processed/a.csv"]


def test_a_file_given_up_and_uploaded_again_is_retried_but_a_refused_one_stays_refused(aws):
    lifecycle = aws.lifecycle(max_attempts=1)
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    assert lifecycle.fail(record, "jr_1", "OperationalError: the server closed the connection") == Status.REJECTED
    assert aws.audit.get(fid).gave_up and aws.keys() == ["rejected/a.csv"]
    assert lifecycle.admit(announce(aws, "source/a.csv")) == (fid, Status.PENDING)  # the operator's retry
    retried = aws.audit.get(fid)
    assert (retried.status, retried.attempts, retried.gave_up, retried.final_key) == (Status.PENDING, 0, None, None)
    assert aws.keys() == ["source/a.csv"] and lifecycle.work() == [retried]  # one place: the upload
    bad = announce(aws, "source/bad.csv", b"TransactionID,Amount\n1,2\n")
    bad_fid, _ = lifecycle.admit(bad)
    assert lifecycle.admit(announce(aws, "source/bad.csv", b"TransactionID,Amount\n1,2\n")) == (bad_fid, REDELIVERED)
    assert aws.audit.get(bad_fid).status == Status.REJECTED and "rejected/bad.csv" in aws.keys()


def test_the_same_file_for_another_target_is_another_file(aws):
    """Loaded into one database, the file is not loaded into another: it is new work there."""
    first = aws.lifecycle()
    ref = announce(aws, "source/a.csv")
    fid, _ = first.admit(ref)
    first.complete(first.claim(aws.audit.get(fid), "jr_1"), "jr_1", Outcome(Counts(1, 1, 0, 0, 1, 1)))
    other = aws.lifecycle(target="other.example:5432/fresh/public.transactions")
    other_fid, status = other.admit(announce(aws, "source/a.csv"))
    assert status == Status.PENDING and other_fid != fid
    assert [r.file_id for r in other.work()] == [other_fid] and first.work() == []


def record_in(aws, status: str, attempts: int = 1, run: str | None = None, started: str | None = None, **fields):
    record = AuditRecord(
        "f1", "a.csv", BUCKET, "source/a.csv", '"e"', 10, "2024-07-13T08:00:00.000Z", target=TARGET, status=status
    )
    record.attempts, record.glue_job_id, record.processing_start_timestamp = attempts, run, started
    for name, value in fields.items():
        setattr(record, name, value)
    assert aws.audit.create(record)
    return record


@pytest.mark.parametrize(
    "status, attempts, run, run_state, started, needs_run",
    [
        (Status.PENDING, 0, None, None, None, True),
        (Status.FAILED, 2, "jr_old", "FAILED", None, True),  # attempts left: a retry
        (Status.FAILED, 3, "jr_old", "FAILED", None, False),  # out of attempts (given up already)
        (Status.PROCESSING, 1, "jr_old", "FAILED", None, True),  # its Glue run died: a dead claim
        (Status.PROCESSING, 1, "jr_old", None, None, True),  # its Glue run is unknown to Glue
        (Status.PROCESSING, 1, "jr_old", "RUNNING", None, False),  # still being processed
        (Status.PROCESSING, 0, None, None, "2020-01-01T00:00:00.000Z", True),  # a Lambda claim, long dead
        (Status.PROCESSING, 0, None, None, "now", False),  # a Lambda rejecting it right now
        (Status.COMPLETED, 1, "jr_old", "SUCCEEDED", None, False),
        (Status.REJECTED, 3, "jr_old", "FAILED", None, False),
    ],
)
def test_what_needs_a_run(aws, status, attempts, run, run_state, started, needs_run):
    from datetime import datetime, timezone

    if started == "now":
        started = to_timestamp(datetime.now(timezone.utc))
    record_in(aws, status, attempts, run, started)
    glue = FakeGlue(states={"jr_old": run_state} if run_state else {})
    assert [r.file_id for r in aws.lifecycle(glue).work()] == (["f1"] if needs_run else [])


def test_a_claim_takes_the_item_once_and_counts_the_attempt(aws):
    lifecycle = aws.lifecycle()
    seen = record_in(aws, Status.FAILED, attempts=1)
    seen = aws.audit.get(seen.file_id)
    claimed = lifecycle.claim(seen, "jr_2")
    assert (claimed.status, claimed.glue_job_id, claimed.attempts) == (Status.PROCESSING, "jr_2", 2)
    assert lifecycle.claim(seen, "jr_3") is None  # another run read the same item: it lost
    assert aws.audit.get(seen.file_id).glue_job_id == "jr_2"


def test_complete_moves_the_file_and_records_the_outcome(aws, tmp_path: Path):
    lifecycle = aws.lifecycle()
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    rejected = tmp_path / "rejected.csv"
    rejected.write_text("line_number,record_number\n3,2\n")
    reasons = {"bad_currency": 1}
    outcome = Outcome(Counts(2, 1, 1, 0, 1, 1), str(rejected), ["extra column(s) ignored: X"], {"stage": 1.5}, reasons)
    assert lifecycle.complete(record, "jr_1", outcome) == "processed/a.csv"
    done = aws.audit.get(fid)
    assert (done.status, done.counts, done.final_key, done.warnings) == (
        Status.COMPLETED,
        Counts(2, 1, 1, 0, 1, 1),
        "processed/a.csv",
        ["extra column(s) ignored: X"],
    )
    assert done.rejected_rows_key == "rejected/rows/a.csv/jr_1.csv" and set(done.timings) == {"stage", "move"}
    assert done.reject_reasons == reasons
    assert aws.keys() == ["processed/a.csv", "rejected/rows/a.csv/jr_1.csv"]


def test_only_the_run_holding_the_claim_settles_the_file(aws):
    lifecycle = aws.lifecycle()
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    record.glue_job_id = "jr_other"
    lifecycle.fail(record, "jr_other", "boom")
    assert aws.audit.get(fid).status == Status.PROCESSING


def test_a_failed_attempt_leaves_the_file_for_a_retry_until_the_last_one(aws):
    lifecycle = aws.lifecycle(max_attempts=2)
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    first = lifecycle.claim(aws.audit.get(fid), "jr_1")
    assert lifecycle.fail(first, "jr_1", "OperationalError: connection refused") == Status.FAILED
    failed = aws.audit.get(fid)
    assert (failed.status, failed.error_message, aws.keys()) == (
        Status.FAILED,
        "OperationalError: connection refused",
        ["source/a.csv"],
    )
    second = lifecycle.claim(failed, "jr_2")
    assert lifecycle.fail(second, "jr_2", "CheckViolation: no_1") == Status.REJECTED
    given_up = aws.audit.get(fid)
    assert given_up.status == Status.REJECTED and given_up.final_key == "rejected/a.csv"
    assert given_up.error_message == "gave up after 2 attempt(s); last error: CheckViolation: no_1"
    assert aws.keys() == ["rejected/a.csv"] and lifecycle.work() == []
    steps = [{k: v for k, v in step.items() if k != "At"} for step in given_up.history]
    assert steps == [  # every attempt, in order, with its run and how it ended
        {"Event": "admitted"},
        {"Event": "claimed", "GlueJobID": "jr_1", "Attempt": 1, "From": Status.PENDING},
        {"Event": Status.FAILED, "Error": "OperationalError: connection refused"},
        {"Event": "claimed", "GlueJobID": "jr_2", "Attempt": 2, "From": Status.FAILED},
        {"Event": Status.REJECTED, "Error": given_up.error_message, "GaveUp": True, "Key": "rejected/a.csv"},
    ]
    assert [step["At"] for step in given_up.history] == sorted(step["At"] for step in given_up.history)


def test_an_attempt_given_back_and_a_reopening_are_in_the_history(aws):
    lifecycle = aws.lifecycle(max_attempts=1)
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    lifecycle.fail(lifecycle.claim(aws.audit.get(fid), "jr_1"), "jr_1", "database unreachable", counts=False)
    lifecycle.fail(lifecycle.claim(aws.audit.get(fid), "jr_2"), "jr_2", "CheckViolation: no_1")
    lifecycle.admit(announce(aws, "source/a.csv"))  # the operator's retry of a file given up
    lifecycle.complete(lifecycle.claim(aws.audit.get(fid), "jr_3"), "jr_3", Outcome(Counts(1, 1, 0, 0)))
    history = aws.audit.get(fid).history
    assert [(step["Event"], step.get("GlueJobID"), step.get("Attempt")) for step in history] == [
        ("admitted", None, None),
        ("claimed", "jr_1", 1),
        (Status.FAILED, None, None),
        ("claimed", "jr_2", 1),  # the attempt the unreachable database took was given back
        (Status.REJECTED, None, None),
        ("reopened", None, None),
        ("claimed", "jr_3", 1),
        (Status.COMPLETED, None, None),
    ]
    assert history[2]["Counted"] is False and history[4]["GaveUp"] and history[-1]["Key"] == "processed/a.csv"


def test_a_file_that_left_source_is_rejected_without_a_move(aws):
    lifecycle = aws.lifecycle()
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    aws.put("source/a.csv", GOOD_CSV + b"2,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,y\n")  # replaced
    from glueline.shared.integrity import SourceGone

    with pytest.raises(SourceGone):
        lifecycle.inspect(record)
    lifecycle.reject(record, "gone", holder="jr_1", move=False)
    assert aws.audit.get(fid).status == Status.REJECTED and aws.audit.get(fid).final_key is None
    assert aws.keys() == ["source/a.csv"]  # the new version stays, for its own FileID


def test_objects_just_put_under_source_without_an_item_are_still_arriving(aws, monkeypatch):
    import glueline.shared.lifecycle as lifecycle_module

    lifecycle = aws.lifecycle()
    known = {("source/a.csv", announce(aws, "source/a.csv").etag)}  # a file of this target
    aws.put("source/b.csv", GOOD_CSV + b"2,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,y\n")  # no event yet
    aws.put("processed/c.csv", GOOD_CSV)  # not in source/
    assert lifecycle.arriving(BUCKET, known) == 1
    other = aws.lifecycle(target="other.example:5432/db/public.transactions")
    assert other.arriving(BUCKET, set()) == 2  # another target knows none of them
    monkeypatch.setattr(lifecycle_module, "ARRIVAL_SECONDS", -1.0)
    assert lifecycle.arriving(BUCKET, known) == 0  # an object this old lost its event: the sweep's work


MIB = 1024 * 1024


def multipart_put(aws, key: str, body: bytes, part_size: int = 5 * MIB) -> str:
    """Upload as the AWS CLI and SDKs do above 8 MB: in parts, so the ETag is "<md5 of part md5s>-<parts>"
    (it depends on the part size), with a full-object CRC64NVME checksum (it does not)."""
    full_object = {"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT"}
    upload = aws.s3.create_multipart_upload(Bucket=BUCKET, Key=key, **full_object)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), part_size), start=1):
        chunk = body[start : start + part_size]
        answer = aws.s3.upload_part(Bucket=BUCKET, Key=key, UploadId=upload, PartNumber=number, Body=chunk)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    aws.s3.complete_multipart_upload(
        Bucket=BUCKET, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}, ChecksumType="FULL_OBJECT"
    )
    return aws.s3.head_object(Bucket=BUCKET, Key=key)["ETag"]


def eleven_mib() -> bytes:
    """A good file of about 11 MiB: two parts of 6 MiB or three of 5 MiB."""
    rows = b"".join(b"%d,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,x\n" % i for i in range(2, 250_000))
    return (GOOD_CSV + rows)[: 11 * MIB - 100].rsplit(b"\n", 1)[0] + b"\n"


def test_the_same_bytes_uploaded_with_other_parts_are_one_file(aws):
    """Another part size gives the same bytes another ETag, not another full-object checksum: uploaded
    again after its outcome, the file is a redelivery, not a second item and a second copy in processed/."""
    body = eleven_mib()
    lifecycle = aws.lifecycle()
    first = multipart_put(aws, "source/big.csv", body, 5 * MIB)
    fid, _ = lifecycle.admit(ObjectRef(BUCKET, "source/big.csv", first, len(body), "2024-07-13T08:00:00.000Z"))
    lifecycle.complete(lifecycle.claim(aws.audit.get(fid), "jr_1"), "jr_1", Outcome(Counts(1, 1, 0, 0, 0, 0)))
    second = multipart_put(aws, "source/big.csv", body, 6 * MIB)
    assert (first[-3:], second[-3:]) == ('-3"', '-2"')
    assert lifecycle.admit(ObjectRef(BUCKET, "source/big.csv", second, len(body), "2024-07-13T09:00:00.000Z")) == (
        fid,
        REDELIVERED,
    )
    assert [r.file_id for r in aws.audit.all()] == [fid] and aws.audit.get(fid).redeliveries == 1
    assert aws.keys() == ["processed/big.csv"]


def test_the_same_bytes_uploaded_again_while_the_file_waits_are_the_version_it_loads(aws):
    """Re-uploaded with other parts before its run: one item, which follows the upload now in source/
    (the one it had is gone), so the run loads and moves that one instead of rejecting the file as gone."""
    body = eleven_mib()
    lifecycle = aws.lifecycle()
    first = multipart_put(aws, "source/big.csv", body, 5 * MIB)
    fid, _ = lifecycle.admit(ObjectRef(BUCKET, "source/big.csv", first, len(body), "2024-07-13T08:00:00.000Z"))
    second = multipart_put(aws, "source/big.csv", body, 6 * MIB)
    assert lifecycle.admit(ObjectRef(BUCKET, "source/big.csv", second)) == (fid, Status.PENDING)
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    assert lifecycle.inspect(record).ok and record.etag == aws.audit.get(fid).etag == second
    lifecycle.complete(record, "jr_1", Outcome(Counts(1, 1, 0, 0, 0, 0)))
    assert [r.status for r in aws.audit.all()] == [Status.COMPLETED] and aws.keys() == ["processed/big.csv"]


def test_a_multipart_upload_copied_before_a_crash_is_recognized_by_its_file_id_not_its_etag(aws, monkeypatch):
    """A copy's ETag is not a multipart upload's: the copy an attempt made before it stopped (between
    copy and delete) is still found, completed from, and never copied a second time."""
    body = GOOD_CSV + b"".join(b"%d,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,x\n" % i for i in range(2, 120_000))
    etag = multipart_put(aws, "source/big.csv", body)
    assert etag.endswith('-2"')
    lifecycle = aws.lifecycle()
    fid, _ = lifecycle.admit(ObjectRef(BUCKET, "source/big.csv", etag, len(body), "2024-07-13T08:00:00.000Z"))
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")

    delete = aws.s3.delete_object
    monkeypatch.setattr(aws.s3, "delete_object", lambda **kwargs: (_ for _ in ()).throw(SystemExit("crash")))
    with pytest.raises(SystemExit):
        lifecycle.complete(record, "jr_1", Outcome(Counts(1, 1, 0, 0, 0, 0), None, [], {}))
    monkeypatch.setattr(aws.s3, "delete_object", delete)
    assert aws.keys() == ["processed/big.csv", "source/big.csv"]
    assert aws.s3.head_object(Bucket=BUCKET, Key="processed/big.csv")["ETag"] != etag

    # The next attempt: the earlier one's copy is this file's, found whatever its ETag.
    assert lifecycle.moved_by_an_earlier_attempt(record) == "processed/big.csv"
    # Moving again (a redelivery, a retried move) deletes the source and makes no second copy.
    assert lifecycle.complete(record, "jr_1", Outcome(Counts(1, 1, 0, 0, 0, 0), None, [], {})) == "processed/big.csv"
    assert aws.keys() == ["processed/big.csv"]


def test_a_file_replaced_after_its_load_is_moved_from_the_runs_copy_of_it(aws, tmp_path: Path):
    """New content under the key between the load and the move: the loaded bytes still end in
    processed/ (from the run's copy of them), and the new upload stays in source/ for its own FileID."""
    lifecycle = aws.lifecycle()
    fid, _ = lifecycle.admit(announce(aws, "source/a.csv"))
    record = lifecycle.claim(aws.audit.get(fid), "jr_1")
    snapshot = tmp_path / "a.csv"
    snapshot.write_bytes(GOOD_CSV)  # what the run loaded
    newer = GOOD_CSV + b"2,ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,y\n"
    aws.put("source/a.csv", newer)
    outcome = Outcome(Counts(1, 1, 0, 0, 1, 1), snapshot=str(snapshot))
    assert lifecycle.complete(record, "jr_1", outcome) == "processed/a.csv"
    assert aws.s3.get_object(Bucket=BUCKET, Key="processed/a.csv")["Body"].read() == GOOD_CSV
    assert aws.s3.get_object(Bucket=BUCKET, Key="source/a.csv")["Body"].read() == newer
    assert aws.audit.get(fid).status == Status.COMPLETED
    assert lifecycle.moved_by_an_earlier_attempt(record) == "processed/a.csv"  # its copy, by its metadata
