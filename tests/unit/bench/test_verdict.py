"""The soak's verdict can fail: a world a correct pipeline leaves passes, and each defect a pipeline could
have, put into that world alone, fails it with a problem naming the file (a mutation test per hole)."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest

from bench.soak.history import RunLife
from bench.soak.traffic import RUN_DATE, TrafficPlan, expected_row
from bench.soak.verdict import Loaded, World, judge
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, Status, content_identity, event, file_id, to_timestamp

BUCKET, TARGET = "soak-bucket", "db:5432/bank/public.transactions"
STARTED = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc).timestamp()
ENDED = STARTED + 600
TODAY = date(2026, 12, 7)


@pytest.fixture
def plan(tmp_path):
    """A good file with rejected rows, a clean one, a refused header, an upload replaced before it was
    processed by a newer one, and a copy of the first file under another name."""
    traffic = TrafficPlan(tmp_path, seed=1, duration=60, files_per_minute=1, max_rows=10)
    traffic._plan("good", 1.0, rows=40)
    traffic._plan("good", 2.0, rows=5)
    traffic._plan("header_refused", 3.0)
    traffic._plan("overwrite_in_flight", 4.0, rows=6)
    traffic._plan("duplicate_other_name", 20.0)
    uploads = sorted(traffic.uploads, key=lambda u: u.at)
    for upload in uploads:
        upload.identity = hashlib.md5(upload.content.path.read_bytes(), usedforsecurity=False).hexdigest()
        upload.uploaded_at = STARTED + upload.at
    assert uploads[0].content.counts.rows_rejected > 0  # the dirty file this plan relies on
    return uploads


def fid_of(upload) -> str:
    return file_id(BUCKET, upload.key, upload.identity, TARGET)


def table_row(values: tuple, fid: str) -> tuple:
    """A row as the table holds it (eleven columns, dq_flags, file_id) from the contract's canonical form."""
    tid, account, customer, day, kind, amount, currency, balance, branch, merchant, description = values
    replaced = day == RUN_DATE
    flags = {"transactiondate_original": "x"} if replaced else {}
    when = TODAY if replaced else date.fromisoformat(day)
    row = (tid, account, customer, when, kind, Decimal(amount), currency, Decimal(balance), branch, merchant)
    return (*row, description, flags, fid)


def correct_world(uploads) -> World:
    """What a correct pipeline leaves for ``uploads``: each file in its one final place with its item, its
    counts in the ledger, its rejected rows in their file, the newest upload's rows in the table."""
    records, objects, ledger, rows = {}, {}, {}, {}
    for upload in uploads:
        fid, name = fid_of(upload), layout.file_name(upload.key)
        record = AuditRecord(fid, name, BUCKET, upload.key, upload.identity, 1, "2026-12-07T09:00:00Z", TARGET)
        body = upload.content.path.read_bytes()
        record.history = [step("admitted", 0)]
        if upload.kind == "overwritten":  # replaced in S3 before any run took it
            record.status, record.error_message = Status.REJECTED, "its object was replaced before it was processed"
        elif not upload.loads:
            record.status, record.error_message = Status.REJECTED, "header: CustomerID missing"
            record.final_key = layout.destination_key(layout.REJECTED, upload.key)
            objects[record.final_key] = body
        else:
            counts = upload.content.counts
            record.status, record.counts = Status.COMPLETED, counts
            record.final_key = layout.destination_key(layout.PROCESSED, upload.key)
            objects[record.final_key] = body
            if counts.rows_rejected:
                record.reject_reasons = {"bad_row": counts.rows_rejected}
                record.rejected_rows_key = layout.rejected_rows_key(upload.key, "jr_1")
                objects[record.rejected_rows_key] = b"line_number,reason\n" + b"7,bad_row\n" * counts.rows_rejected
            ledger[fid] = Loaded(counts, record.reject_reasons)
            with open(upload.content.path, newline="", encoding="utf-8") as source:
                for line in csv.DictReader(source):
                    values = expected_row(line)
                    if values is not None:
                        rows[values[0]] = table_row(values, fid)  # the newest upload wins
        if record.status == Status.COMPLETED:
            record.history.append(step("claimed", 20, GlueJobID="jr_1", Attempt=1, From=Status.PENDING))
            record.attempts = 1
        record.history.append(step(record.status, 40))
        records[fid] = record
    runs = {"jr_1": RunLife(at(10), at(50))}
    return World(BUCKET, TARGET, records, objects, lambda: list(rows.values()), ledger, [], {}, runs)


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(STARTED + seconds, timezone.utc)


def step(name: str, seconds: float, **details) -> dict:
    """A History step as the lifecycle writes it (``event``), ``seconds`` after the soak started."""
    return {**event(name, **details), "At": to_timestamp(at(seconds))}


def verdict_of(world: World, uploads):
    return judge(world, uploads, [], STARTED, ENDED)


def record_of(world: World, upload) -> AuditRecord:
    return world.records[fid_of(upload)]


def named(verdict, what: str, name: str) -> bool:
    return any(p.startswith(what) and name in p for p in verdict.problems)


def test_a_correct_world_passes(plan):
    verdict = verdict_of(correct_world(plan), plan)
    assert verdict.passed, verdict.problems
    assert verdict.checked["uploads"] == len(plan) and verdict.checked["table_rows"] > 0


def test_a_file_claimed_while_another_run_held_it_fails_its_history(plan):
    world = correct_world(plan)
    record = record_of(world, plan[0])
    world.runs["jr_2"] = RunLife(at(15), at(60))
    # jr_2 takes the claim over while jr_1, which holds it, still runs: two live claims.
    record.history[2:2] = [step("claimed", 30, GlueJobID="jr_2", Attempt=2, From=Status.PROCESSING)]
    record.attempts = 2
    verdict = verdict_of(world, plan)
    assert named(verdict, "files whose history breaks the lifecycle", record.file_name)
    assert "took over the claim of jr_1 while it was running" in verdict.problems[0]


def test_an_upload_replaced_before_its_event_was_handled_is_found_under_its_etags_identity(plan):
    """Found by seed 24282949: the Lambda met the first version gone and recorded it under the identity
    its event's ETag gives (the MD5 of its bytes), not its SHA-256 checksum, which it could no longer read."""
    world = correct_world(plan)
    overwritten = next(u for u in plan if u.kind == "overwritten")
    record = world.records.pop(fid_of(overwritten))
    body = overwritten.content.path.read_bytes()
    md5 = hashlib.md5(body, usedforsecurity=False).hexdigest()
    record.file_id = file_id(BUCKET, overwritten.key, content_identity({"ETag": md5}, len(body)), TARGET)
    world.records[record.file_id] = record
    verdict = verdict_of(world, plan)
    assert verdict.passed, verdict.problems
    record.file_id = "0" * 32  # under neither identity: lost, and an item of no upload
    world.records = {fid: r for fid, r in world.records.items() if r is not record} | {record.file_id: record}
    assert named(verdict_of(world, plan), "uploads with no audit item", overwritten.key)


def test_a_refused_file_deleted_instead_of_moved_fails(plan):
    world = correct_world(plan)
    refused = next(u for u in plan if u.kind == "header_refused")
    record = record_of(world, refused)
    del world.objects[record.final_key]
    record.final_key = None  # a reason, no final key: the file is gone, not in rejected/
    assert named(verdict_of(world, plan), "files whose audit item disagrees with S3", "header_refused")


def test_rejected_rows_missing_from_their_file_fail(plan):
    world = correct_world(plan)
    record = record_of(world, plan[0])
    world.objects[record.rejected_rows_key] = b"line_number,reason\n7,bad_row\n"
    assert named(verdict_of(world, plan), "files whose rejected rows disagree", layout.file_name(plan[0].key))


def test_reject_reasons_that_do_not_add_up_fail(plan):
    world = correct_world(plan)
    record = record_of(world, plan[0])
    record.reject_reasons = {"bad_row": record.counts.rows_rejected - 1}
    world.ledger[record.file_id].reasons = record.reject_reasons
    assert named(verdict_of(world, plan), "files whose rejected rows disagree", record.file_name)


def test_a_rejected_rows_file_no_item_names_fails(plan):
    world = correct_world(plan)
    orphan = layout.rejected_rows_key(plan[0].key, "jr_earlier_attempt")
    world.objects[orphan] = b"line_number,reason\n7,bad_row\n"
    assert named(verdict_of(world, plan), "rejected-rows files that no item names", orphan)


def test_another_version_in_processed_fails(plan):
    world = correct_world(plan)
    record = record_of(world, plan[1])
    world.objects[record.final_key] = plan[0].content.path.read_bytes()
    assert named(verdict_of(world, plan), "files whose final object is another version", record.file_name)


def test_an_item_the_ledger_disagrees_with_fails(plan):
    world = correct_world(plan)
    record = record_of(world, plan[1])
    world.ledger[record.file_id] = Loaded(dataclasses.replace(record.counts, rows_loaded=0), {})
    assert named(verdict_of(world, plan), "files whose item and load ledger disagree", record.file_name)
    del world.ledger[record.file_id]
    assert named(verdict_of(world, plan), "files whose item and load ledger disagree", record.file_name)


def test_a_load_in_the_ledger_of_no_completed_item_fails(plan):
    world = correct_world(plan)
    refused = record_of(world, next(u for u in plan if u.kind == "header_refused"))
    world.ledger[refused.file_id] = Loaded(record_of(world, plan[1]).counts, {})
    assert named(verdict_of(world, plan), "loads in the ledger of no COMPLETED item", refused.file_id)


def test_a_staging_table_left_behind_fails(plan):
    world = correct_world(plan)
    world.job_tables_left = ["_stage_transactions_b0123456789"]
    assert named(verdict_of(world, plan), "staging or rejects tables left behind", "_stage_transactions_b0123456789")


def test_a_row_credited_to_a_file_that_does_not_carry_it_fails(plan):
    world = correct_world(plan)
    rows = world.rows()
    other = record_of(world, plan[1])
    rows[0] = (*rows[0][:12], other.file_id)  # the first file's row, credited to the second
    world.rows = lambda: rows
    assert named(verdict_of(world, plan), "rows whose file is not COMPLETED or does not carry them", other.file_name)
