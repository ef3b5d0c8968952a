from glueline.shared.audit import AuditRecord, Status, file_id
from glueline.shared.counts import Counts

from ..conftest import TARGET


def test_file_id_names_one_version_for_one_target_and_ignores_etag_quoting():
    a = file_id("b", "source/x.csv", '"abc"', TARGET)
    assert a == file_id("b", "source/x.csv", "abc", TARGET)
    assert a != file_id("b", "source/x.csv", "abd", TARGET)
    assert a != file_id("b", "source/y.csv", "abc", TARGET)
    assert a != file_id("b", "source/x.csv", "abc", "other:5432/db/public.transactions")
    assert len(a) == 32


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
    aws.audit.create(AuditRecord("f1", "a.csv", "bkt", "source/a.csv", '"e"', 10, "t", target=TARGET))
    assert not aws.audit.update("f1", {"Status": Status.FAILED}, expect={"Status": Status.PROCESSING})
    assert aws.audit.update("f1", {"GlueJobID": "jr_1"}, expect={"Status": Status.PENDING, "GlueJobID": None})
    assert not aws.audit.update("f1", {"GlueJobID": "jr_2"}, expect={"GlueJobID": None})
    now = aws.audit.update("f1", {}, expect={"GlueJobID": "jr_1"}, increment=("Attempts",))
    assert (now.attempts, now.glue_job_id) == (1, "jr_1") and aws.audit.get("f1") == now
    assert not aws.audit.update("nope", {"Status": Status.FAILED}, expect={})


def test_counts_reconcile_and_add_up():
    assert Counts(10, 7, 2, 1).reconciles and not Counts(10, 7, 2, 0).reconciles
    assert Counts(1, 1, 0, 0, 1, 0) + Counts(2, 1, 1, 0, 0, 1) == Counts(3, 2, 1, 0, 1, 1)
