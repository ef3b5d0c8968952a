import pytest

from glueline.shared.audit import AuditQuery, AuditRecord, Status, content_identity, count_attributes, file_id
from glueline.shared.counts import Counts

from ..conftest import TARGET


def test_file_id_names_one_content_for_one_target():
    a = file_id("b", "source/x.csv", "CRC64NVME:abc:10", TARGET)
    assert a != file_id("b", "source/x.csv", "CRC64NVME:abd:10", TARGET)
    assert a != file_id("b", "source/y.csv", "CRC64NVME:abc:10", TARGET)
    assert a != file_id("b", "source/x.csv", "CRC64NVME:abc:10", "other:5432/db/public.transactions")
    assert len(a) == 32


MD5 = "900150983cd24fb0d6963f7d28e17f72"


@pytest.mark.parametrize(
    "answer, identity",
    [
        # a full-object checksum, whatever the ETag: part size and encryption do not change it
        ({"ETag": '"aa-3"', "ChecksumCRC64NVME": "y3/Psw==", "ChecksumType": "FULL_OBJECT"}, "CRC64NVME:y3/Psw==:7"),
        ({"ETag": '"bb-2"', "ChecksumCRC64NVME": "y3/Psw==", "ChecksumType": "FULL_OBJECT"}, "CRC64NVME:y3/Psw==:7"),
        ({"ETag": '"cc"', "ChecksumCRC64NVME": "y3/Psw==", "ServerSideEncryption": "aws:kms"}, "CRC64NVME:y3/Psw==:7"),
        ({"ETag": '"cc"', "ChecksumSHA256": "q8w=", "ChecksumType": "FULL_OBJECT"}, "SHA256:q8w=:7"),
        # a single-part MD5 ETag, quoted or not, where there is no checksum
        ({"ETag": f'"{MD5}"'}, f"MD5:{MD5}:7"),
        ({"ETag": MD5, "ServerSideEncryption": "AES256"}, f"MD5:{MD5}:7"),
        # neither: a composite checksum depends on the part size; a KMS object's ETag is no MD5
        ({"ETag": '"aa-3"', "ChecksumCRC32": "a5FEdQ==-3", "ChecksumType": "COMPOSITE"}, 'ETag:"aa-3"'),
        ({"ETag": '"aa-3"', "ChecksumCRC32": "a5FEdQ=="}, 'ETag:"aa-3"'),
        ({"ETag": f'"{MD5}"', "ServerSideEncryption": "aws:kms"}, f'ETag:"{MD5}"'),
        ({"ETag": f'"{MD5}"', "SSECustomerAlgorithm": "AES256"}, f'ETag:"{MD5}"'),
    ],
)
def test_content_identity_does_not_depend_on_how_the_bytes_were_uploaded_where_s3_can_tell(answer, identity):
    assert content_identity(answer, 7) == identity


def test_a_record_round_trips_through_dynamodb(aws):
    record = AuditRecord("f1", "a.csv", "bkt", "source/a.csv", '"e"', 10, "2024-07-13T08:00:00.000Z", target=TARGET)
    record.counts, record.timings, record.warnings = Counts(5, 3, 1, 1, 2, 0), {"stage": 1.2345}, ["w"]
    assert aws.audit.create(record)
    item = record.to_item()
    assert item["RowsRead"] == 5 and item["Target"] == TARGET and "Counts" not in item
    stored = aws.audit.get("f1")
    assert stored.counts == Counts(5, 3, 1, 1, 2, 0) and stored.timings == {"stage": 1.234}
    assert (stored.status, stored.warnings, stored.target) == (Status.PENDING, ["w"], TARGET)
    assert not aws.audit.create(record)  # the FileID exists


def test_updates_are_conditional_on_what_the_writer_expects(aws):
    uploaded = "2024-07-13T08:00:00.000Z"
    aws.audit.create(AuditRecord("f1", "a.csv", "bkt", "source/a.csv", '"e"', 10, uploaded, target=TARGET))
    failed = {"Status": Status.FAILED}
    assert not aws.audit.update("f1", failed, expect={"Status": Status.PROCESSING}, uploaded=uploaded)
    with pytest.raises(TypeError):  # a status change without what its day's tally needs
        aws.audit.update("f1", failed, expect={"Status": Status.PENDING})
    assert aws.audit.update("f1", {"GlueJobID": "jr_1"}, expect={"Status": Status.PENDING, "GlueJobID": None})
    assert not aws.audit.update("f1", {"GlueJobID": "jr_2"}, expect={"GlueJobID": None})
    now = aws.audit.update("f1", {}, expect={"GlueJobID": "jr_1"}, increment=("Attempts",))
    assert (now.attempts, now.glue_job_id) == (1, "jr_1") and aws.audit.get("f1") == now
    assert not aws.audit.update("nope", {"Status": Status.FAILED}, expect={"Status": Status.PENDING}, uploaded=uploaded)


def test_each_upload_day_tallies_its_files_by_status_and_their_counts_with_every_write(aws):
    day1, day2 = "2024-07-13T08:00:00.000Z", "2024-07-14T23:59:59.999Z"
    for fid, uploaded in (("a", day1), ("b", day1), ("c", day2)):
        aws.audit.create(AuditRecord(fid, f"{fid}.csv", "bkt", f"source/{fid}.csv", '"e"', 1, uploaded, TARGET))
    assert not aws.audit.create(AuditRecord("a", "a.csv", "bkt", "source/a.csv", '"e"', 1, day1, TARGET))
    claim = {"Status": Status.PROCESSING, "GlueJobID": "jr_1"}
    for fid in ("a", "b"):
        assert (
            aws.audit.update(fid, claim, expect={"Status": Status.PENDING}, uploaded=day1).status == Status.PROCESSING
        )
    done = {"Status": Status.COMPLETED, **count_attributes(Counts(10, 8, 1, 1, 2, 3))}
    aws.audit.update("a", done, expect={"Status": Status.PROCESSING}, uploaded=day1)
    assert not aws.audit.update("a", done, expect={"Status": Status.PROCESSING}, uploaded=day1)  # counted once
    aws.audit.update("b", {"Status": Status.FAILED}, expect={"Status": Status.PROCESSING}, uploaded=day1)

    tallies = aws.audit.daily(["2024-07-12", "2024-07-13", "2024-07-14"])
    assert sorted(tallies) == ["2024-07-13", "2024-07-14"]  # no file, no tally
    assert {s: n for s, n in tallies["2024-07-13"].files.items() if n} == {Status.COMPLETED: 1, Status.FAILED: 1}
    assert tallies["2024-07-13"].counts == Counts(10, 8, 1, 1, 2, 3)
    assert {s: n for s, n in tallies["2024-07-14"].files.items() if n} == {Status.PENDING: 1}
    assert [r.file_id for r in aws.audit.all()] == ["a", "b", "c"]  # a scan lists files, not tallies
    assert aws.audit.upload_days() == ["2024-07-13", "2024-07-14"]
    on_day1 = aws.audit.find(AuditQuery(day="2024-07-13"), newest_first=True)  # the day index
    assert [r.file_id for r in on_day1] == ["b", "a"]  # newest first; the same moment by name
    assert [r.file_id for r in aws.audit.find(AuditQuery(day="2024-07-13", status=Status.FAILED))] == ["b"]
    assert [r.file_id for r in aws.audit.find(AuditQuery(day="2024-07-14", since=day2))] == ["c"]


def test_a_write_meeting_another_transaction_on_its_tally_is_tried_again(aws, monkeypatch):
    """DynamoDB cancels a transaction that meets another on the same item (``TransactionConflict``): in
    a burst, every file of the day updates one tally."""
    client, sleeps = aws.audit.client, []
    real, conflicts = client.transact_write_items, [2]

    def conflicting(**request):
        if conflicts[0]:
            conflicts[0] -= 1
            raise client.exceptions.TransactionCanceledException(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "Transaction cancelled"},
                    "CancellationReasons": [{"Code": "None"}, {"Code": "TransactionConflict"}],
                },
                "TransactWriteItems",
            )
        return real(**request)

    monkeypatch.setattr(client, "transact_write_items", conflicting)
    aws.audit.sleep = sleeps.append
    assert aws.audit.create(AuditRecord("a", "a.csv", "bkt", "source/a.csv", '"e"', 1, "2024-07-13T08:00:00.000Z"))
    assert len(sleeps) == 2 and aws.audit.daily(["2024-07-13"])["2024-07-13"].files[Status.PENDING] == 1


def test_counts_reconcile_and_add_up():
    assert Counts(10, 7, 2, 1).reconciles and not Counts(10, 7, 2, 0).reconciles
    assert Counts(1, 1, 0, 0, 1, 0) + Counts(2, 1, 1, 0, 0, 1) == Counts(3, 2, 1, 0, 1, 1)


def test_find_selects_by_status_upload_time_and_name_oldest_first(aws, monkeypatch):
    uploads = [
        ("f1", "daily_2024-07-12.csv", "2024-07-12T08:00:00.000Z", Status.COMPLETED),
        ("f2", "daily_2024-07-13.csv", "2024-07-13T08:00:00.000Z", Status.FAILED),
        ("f3", "weekly_2024-07-13.csv", "2024-07-13T09:00:00.000Z", Status.COMPLETED),
        ("f4", "daily_2024-07-14.csv", "2024-07-14T08:00:00.000Z", Status.COMPLETED),
    ]
    for fid, name, uploaded, status in reversed(uploads):
        aws.audit.create(AuditRecord(fid, name, "bkt", f"source/{name}", '"e"', 1, uploaded, TARGET, status))
    calls = []
    client = aws.audit.client
    monkeypatch.setattr(client, "get_paginator", lambda op: calls.append(op) or type(client).get_paginator(client, op))

    def found(**query) -> list[str]:
        return [r.file_id for r in aws.audit.find(AuditQuery(**query))]

    assert found() == ["f1", "f2", "f3", "f4"]
    assert found(status=Status.COMPLETED) == ["f1", "f3", "f4"] and calls[-1] == "query"
    assert found(status=Status.COMPLETED, since="2024-07-13T00:00:00.000Z") == ["f3", "f4"] and calls[-1] == "query"
    assert found(since="2024-07-13T08:30:00.000Z") == ["f3", "f4"] and calls[-1] == "scan"
    assert found(name="daily") == ["f1", "f2", "f4"]
    assert found(name="daily", since="2024-07-13T00:00:00.000Z", status=Status.COMPLETED) == ["f4"]
    assert found(name="DAILY") == [] and found(status=Status.REJECTED) == []
    assert found(since="2024-07-13T00:00:00.000Z", until="2024-07-14T00:00:00.000Z") == ["f2", "f3"]
    assert found(status=Status.COMPLETED, until="2024-07-13T09:00:00.000Z") == ["f1"]
    newest = aws.audit.find(AuditQuery(status=Status.COMPLETED), newest_first=True, limit=2)
    assert [r.file_id for r in newest] == ["f4", "f3"] and calls[-1] == "query"
