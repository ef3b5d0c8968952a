"""The soak's verdict: what S3, the audit table and the database hold at the end, against the
traffic's ground truth. Every difference is a problem naming the files involved; none is the verdict
"nothing lost, nothing doubled".

``observe`` reads the end state once into a ``World``; ``judge`` compares a world with the plan. The unit
tests (tests/unit/bench/test_verdict.py) build a world a correct pipeline would leave, then break it one
way at a time: each defect must fail the verdict and name its file.
"""

from __future__ import annotations

import csv
import hashlib
import io
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone

import psycopg
from psycopg import sql

from glueline.job import schema
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, Status, content_identity, file_id
from glueline.shared.contract import FIELDS
from glueline.shared.counts import COUNT_NAMES, Counts

from . import figures
from .history import RunLife, first_illegal_step
from .stack import SoakStack
from .traffic import PlannedUpload, canonical, loaded_row, truth_rows

SHOWN = 10  # examples printed per kind of difference


@dataclass
class Verdict:
    problems: list[str] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.problems

    def problem(self, what: str, examples: list[str]) -> None:
        if examples:
            more = f" (and {len(examples) - SHOWN} more)" if len(examples) > SHOWN else ""
            self.problems.append(f"{what}: {len(examples)}{more}\n    " + "\n    ".join(examples[:SHOWN]))


@dataclass
class Loaded:
    """A load ledger row: what a file's committed load counted."""

    counts: Counts
    reasons: dict[str, int]


@dataclass
class World:
    """The end state, read once (``observe``)."""

    bucket: str
    target: str  # the database and table, as FileIDs name it
    records: dict[str, AuditRecord]  # the audit items, by FileID
    objects: dict[str, bytes]  # every object under source/, processed/ and rejected/, by key
    rows: Callable[[], Iterable[tuple]]  # the table's rows: its eleven columns, dq_flags, file_id
    ledger: dict[str, Loaded]  # the load ledger, by FileID
    job_tables_left: list[str]  # a batch's or a file's staging and rejects tables still there
    tallies_disagree: dict[str, tuple[int, int]]  # days whose tally disagrees with their files
    runs: dict[str, RunLife] = field(default_factory=dict)  # the job's Glue runs: when each started and ended


def observe(stack: SoakStack) -> World:
    s3, bucket, table = stack.client("s3"), stack.bucket, stack.settings.table
    objects = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for o in page.get("Contents", []):
            if o["Key"].startswith((layout.SOURCE, layout.PROCESSED, layout.REJECTED)) and not o["Key"].endswith("/"):
                objects[o["Key"]] = s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read()
    records = {r.file_id: r for r in stack.audit.all()}
    names, prefixes = schema.job_tables(table)
    with psycopg.connect(**stack.db.connect_kwargs()) as conn:
        tables = [t for (t,) in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [table.schema])]
        ledger = {}
        if names[1] in tables:
            for fid, *counts, reasons in conn.execute(
                sql.SQL("SELECT file_id, {}, reject_reasons FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, COUNT_NAMES)), schema.ledger(table)
                )
            ):
                ledger[fid] = Loaded(Counts(**dict(zip(COUNT_NAMES, counts, strict=True))), reasons or {})

    def rows() -> Iterable[tuple]:
        with psycopg.connect(**stack.db.connect_kwargs()) as conn, conn.cursor(name="soak") as cursor:
            cursor.itersize = 50_000
            cursor.execute(
                sql.SQL("SELECT {}, dq_flags, file_id FROM {}").format(
                    sql.SQL(", ").join(map(sql.Identifier, FIELDS)), schema.identifier(table)
                )
            )
            yield from cursor

    return World(
        bucket=bucket,
        target=stack.target,
        records=records,
        objects=objects,
        rows=rows,
        ledger=ledger,
        job_tables_left=sorted(t for t in tables if t.startswith(tuple(prefixes))),
        tallies_disagree=stack.audit.tallies_disagree(list(records.values())),
        runs={
            run["Id"]: RunLife(run["StartedOn"], run.get("CompletedOn"))
            for run in figures.glue_runs(stack.client("glue"), stack.settings.glue_job)
        },
    )


def judge(world: World, uploads: list[PlannedUpload], faults: list[dict], started: float, ended: float) -> Verdict:
    verdict = Verdict()
    records, objects = world.records, world.objects
    sent = [u for u in uploads if u.identity is not None]
    verdict.checked.update(uploads=len(sent), items=len(records), objects=len(objects))
    verdict.problem("planned uploads never sent", [u.key for u in uploads if u.identity is None])

    # Every upload: its item, in an expected status, with its file in exactly one final place.
    by_fid: dict[str, list[PlannedUpload]] = {}
    for u in sent:
        by_fid.setdefault(_item_of(world, u), []).append(u)
    missing, wrong_status, misplaced, wrong_counts, unreconciled, stuck, final_keys = [], [], [], [], [], [], Counter()
    wrong_version, bad_rejected_rows, unledgered = [], [], []
    for fid, group in by_fid.items():
        record, name = records.get(fid), group[0].key
        if record is None:
            if _event_lost_then_overwritten(group[0], uploads, faults):
                verdict.checked["overwritten_while_its_event_was_lost"] = 1 + verdict.checked.get(
                    "overwritten_while_its_event_was_lost", 0
                )
            else:
                missing.append(f"{name} ({fid})")
            continue
        expect = frozenset.intersection(*(u.expect for u in group))
        if record.status not in expect:
            why = f": {record.error_message}" if record.error_message else ""
            wrong_status.append(f"{name}: {record.status}, expected {'/'.join(sorted(expect))}{why}")
        if record.status not in Status.FINAL:
            stuck.append(f"{name}: {record.status} (attempts {record.attempts}) {record.error_message or ''}")
            continue
        if record.final_key:
            final_keys[record.final_key] += 1
            if record.final_key not in objects:
                misplaced.append(f"{name}: its final key {record.final_key} is not in the bucket")
            elif not record.final_key.startswith(
                layout.PROCESSED if record.status == Status.COMPLETED else layout.REJECTED
            ):
                misplaced.append(f"{name}: {record.status} but in {record.final_key}")
            elif objects[record.final_key] != group[0].content.path.read_bytes():
                wrong_version.append(f"{name}: {record.final_key} holds other bytes than the upload of {fid}")
        elif record.status == Status.COMPLETED or not record.error_message:
            misplaced.append(f"{name}: {record.status} with no final key and no reason")
        elif not all(u.kind == "overwritten" for u in group):  # only a replaced object is gone, not moved
            misplaced.append(f"{name}: {record.status} with no final key ({record.error_message})")
        if record.status == Status.COMPLETED:
            problem = _counts_problem(record, group[0])
            if problem:
                wrong_counts.append(f"{name}: {problem}")
            if record.counts is not None and not record.counts.reconciles:
                unreconciled.append(f"{name}: {record.counts}")
            bad_rejected_rows += [f"{name}: {p}" for p in _rejected_rows_problems(record, objects)]
            loaded = world.ledger.get(fid)
            if loaded is None:
                unledgered.append(f"{name}: COMPLETED, no load in the ledger")
            elif (loaded.counts, loaded.reasons) != (record.counts, record.reject_reasons):
                unledgered.append(f"{name}: the ledger has {loaded.counts} {loaded.reasons}, the item {record.counts}")
    verdict.problem("uploads with no audit item", missing)
    verdict.problem("files in an unexpected status", wrong_status)
    verdict.problem("files not final (stuck PENDING, PROCESSING or FAILED)", stuck)
    verdict.problem("files whose audit item disagrees with S3", misplaced)
    verdict.problem("files with wrong counts", wrong_counts)
    verdict.problem("files whose counts do not reconcile", unreconciled)
    verdict.problem("files whose final object is another version", wrong_version)
    verdict.problem("files whose rejected rows disagree with their counts", bad_rejected_rows)
    verdict.problem("files whose item and load ledger disagree", unledgered)
    verdict.problem(
        "loads in the ledger of no COMPLETED item",
        [fid for fid in world.ledger if getattr(records.get(fid), "status", None) != Status.COMPLETED],
    )
    verdict.problem("staging or rejects tables left behind", world.job_tables_left)
    verdict.problem(
        "audit items of no upload", [f"{r.file_name} ({fid})" for fid, r in records.items() if fid not in by_fid]
    )

    # S3: nothing left in source/, every object in a final place is exactly one item's.
    verdict.problem("objects left in source/", [k for k in objects if k.startswith(layout.SOURCE)])
    finals = [
        k
        for k in objects
        if k.startswith((layout.PROCESSED, layout.REJECTED)) and not k.startswith(layout.REJECTED_ROWS)
    ]
    verdict.problem("objects in processed/ or rejected/ that no item names", [k for k in finals if k not in final_keys])
    verdict.problem("final keys named by more than one item", [k for k, n in final_keys.items() if n > 1])
    rows_keys = Counter(r.rejected_rows_key for r in records.values() if r.rejected_rows_key)
    verdict.problem("rejected-rows files named by items but absent", [k for k in rows_keys if k not in objects])
    verdict.problem(
        "rejected-rows files that no item names",
        [k for k in objects if k.startswith(layout.REJECTED_ROWS) and k not in rows_keys],
    )
    verdict.checked["final_objects"] = len(finals)

    _judge_table(verdict, world, uploads, by_fid, started, ended)
    verdict.problem(
        "days whose tally disagrees with their files",
        [f"{d}: kept {k}, files {f}" for d, (k, f) in world.tallies_disagree.items()],
    )
    # Each file's history (the steps its item records) against the lifecycle's state machine.
    illegal = {fid: first_illegal_step(r.history, r.status, world.runs) for fid, r in records.items()}
    verdict.problem(
        "files whose history breaks the lifecycle (the first illegal step)",
        [f"{records[fid].file_name} ({fid}): {why}" for fid, why in illegal.items() if why],
    )
    verdict.checked["histories"] = len(illegal)
    return verdict


def _rejected_rows_problems(record: AuditRecord, objects: dict[str, bytes]) -> list[str]:
    """A COMPLETED file's rejected rows: one line each in its rejected-rows file, one reason each."""
    rejected = record.counts.rows_rejected if record.counts else 0
    problems = []
    if sum(record.reject_reasons.values()) != rejected:
        problems.append(f"reasons for {sum(record.reject_reasons.values())} rows, {rejected} rejected")
    if not record.rejected_rows_key:
        return problems + ([f"{rejected} rows rejected, no rejected-rows file"] if rejected else [])
    body = objects.get(record.rejected_rows_key)
    if body is not None:
        lines = sum(1 for _ in csv.reader(io.StringIO(body.decode("utf-8")))) - 1  # its header
        if lines != rejected:
            problems.append(f"{record.rejected_rows_key} holds {lines} rows, {rejected} rejected")
    return problems


def _item_of(world: World, planned: PlannedUpload) -> str:
    """The FileID of an upload's item: its content's identity as the uploader computed it. Except an
    upload replaced before its event was handled: the Lambda can no longer read its checksum, only the
    event's ETag (the MD5 of its bytes: one part, no KMS), and records it under that identity."""
    assert planned.identity is not None
    fid = file_id(world.bucket, planned.key, planned.identity, world.target)
    if planned.kind == "overwritten" and fid not in world.records:
        body = planned.content.path.read_bytes()
        etag = hashlib.md5(body, usedforsecurity=False).hexdigest()
        gone = file_id(world.bucket, planned.key, content_identity({"ETag": etag}, len(body)), world.target)
        return gone if gone in world.records else fid
    return fid


def _event_lost_then_overwritten(planned: PlannedUpload, uploads: list[PlannedUpload], faults: list[dict]) -> bool:
    """An upload overwritten before any trigger saw it, its S3 event lost with a killed emulator (the
    Lambda invocations it was running die with it; AWS would retry them): no trigger can know of it, as
    S3 itself (unversioned) no longer does. Anything else without an item is lost."""
    if planned.kind != "overwritten":
        return False
    newer = next(u for u in uploads if u.repeats is planned)
    return any(
        f["kind"] == "emulator_kill" and planned.uploaded_at - 1 <= f["started"] <= (newer.uploaded_at or 0) + 1
        for f in faults
    )


def _counts_problem(record: AuditRecord, planned: PlannedUpload) -> str | None:
    want, got = planned.content.counts, record.counts
    if got is None:
        return "no counts"
    if planned.contested:  # its rows came in another file too: loaded here or counted a duplicate
        same = (got.rows_read, got.rows_rejected, got.rows_loaded + got.rows_duplicate) == (
            want.rows_read,
            want.rows_rejected,
            want.rows_loaded + want.rows_duplicate,
        )
        return None if same else f"{got}, expected read/rejected/loaded+duplicate as {want}"
    return None if got == want else f"{got}, expected {want}"


def _judge_table(verdict, world: World, uploads, by_fid: dict[str, list[PlannedUpload]], started, ended) -> None:
    """The table holds exactly the truth's rows, with their content (a replaced date: a day of the soak),
    each from a COMPLETED file that carries it."""
    truth, origin = truth_rows(uploads)
    names = {u.index: u.key for u in uploads}
    days = {
        datetime.fromtimestamp(t, timezone.utc).date().isoformat() for t in (started, ended)
    }  # the run's date is UTC
    extra, wrong, bad_day, lineage = [], [], [], []
    seen = 0
    for row in world.rows():
        seen += 1
        flags = row[11] or {}
        replaced = "transactiondate_original" in flags
        if replaced and row[3].isoformat() not in days:
            bad_day.append(f"TransactionID {row[0]}: date {row[3]} replaced by no day of the soak")
        want = truth.pop(row[0], None)
        if want is None:
            extra.append(f"TransactionID {row[0]} (from FileID {row[12]})")
        elif canonical(loaded_row(row[:11], replaced)) != want:
            wrong.append(f"TransactionID {row[0]}: content differs from {names[origin[row[0]]]}")
        record = world.records.get(row[12])
        if record is None or record.status != Status.COMPLETED:
            lineage.append(f"TransactionID {row[0]}: from FileID {row[12]}, which is not COMPLETED")
        elif not any(row[0] in u.content.rows for u in by_fid.get(row[12], [])):
            lineage.append(f"TransactionID {row[0]}: from {record.file_name}, which does not carry it")
    verdict.checked["table_rows"] = seen
    verdict.problem("rows missing from the table", [f"TransactionID {t} of {names[origin[t]]}" for t in truth])
    verdict.problem("rows in the table no file should have put there", extra)
    verdict.problem("rows whose content is wrong", wrong)
    verdict.problem("rows with a replaced date outside the soak", bad_day)
    verdict.problem("rows whose file is not COMPLETED or does not carry them", lineage)
