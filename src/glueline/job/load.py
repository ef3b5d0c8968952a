"""Loading a batch of files into PostgreSQL: one Spark pass for all of them, all or nothing per file.

1. The driver creates the batch's staging and rejects tables, partitioned by file: each file's rows land
   in UNLOGGED tables of its own (``glueline.job.schema``).
2. One Spark pass reads (``glueline.job.read``) and cleans (``glueline.job.transform``) every file. Spark
   formats each good row as a CSV line; each partition streams those lines with one ``COPY`` into the
   staging table — the bytes go as Spark made them, no per-row Python, and a partition holding many
   small files never waits for PostgreSQL between them — puts its rejected rows into the rejects table,
   and hands back one line of statistics for each part of a file it read.
3. A file in which the split read found a line break inside quotes is staged again from a multi-line read.
4. Per file, in a transaction of its own: the rejected rows are numbered and exported to a local CSV
   file, the staged rows move into the target (a plain INSERT when every TransactionID is new and occurs
   once: the common case, and the cheapest for the database; otherwise the de-duplicating upsert), and
   the file's tables are dropped.

A failure before a file's commit leaves none of its rows in the target; one file's failure in step 4
leaves the others' commits alone.
"""

from __future__ import annotations

import contextlib
import csv
import math
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glueline.job import schema
from glueline.job.read import (
    FILE,
    NEWLINES,
    ODD_QUOTES,
    SPLIT,
    InputFile,
    LocalCopies,
    S3Snapshots,
    read_multiline,
    read_split,
)
from glueline.job.run import SETTLE_SECONDS, ClaimedFile
from glueline.job.transform import CORRUPT, CUSTOMER_FILLED, DATE_ORIGINAL, RAW, REASON, clean
from glueline.shared.contract import COLUMNS, FIELDS
from glueline.shared.counts import Counts
from glueline.shared.dbsecret import DbConnection, SecretReference
from glueline.shared.lifecycle import Outcome, RecordedLoad, TargetUnavailable
from glueline.shared.tablename import TableName

# The rejected-rows file: where the row was, why it was refused, its fields exactly as read.
REJECTED_HEADER = ("line_number", "record_number", REASON, *COLUMNS.keys(), "raw_record")

COPY_LINE = "_copy_line"  # a good row as a CSV line for COPY into staging; NULL for a rejected row
REJECT_LINE = "_reject_line"  # a rejected row as CSV (schema.REJECT_COLUMNS); NULL for a good row
FLAGS = "_flags"  # 1: CustomerID filled, 2: TransactionDate replaced (good rows)
_CSV = {"quote": '"', "escape": '"', "dateFormat": "yyyy-MM-dd"}

# One line of statistics per (file, split) a partition read.
_STATS = T.StructType(
    [T.StructField(FILE, T.IntegerType()), T.StructField(SPLIT, T.LongType())]
    + [T.StructField(n, T.LongType()) for n in ("records", "newlines", "odd", "rejected", "filled", "replaced")]
)


@dataclass
class _Part:
    split: int
    records: int = 0
    newlines: int = 0  # line breaks inside its records' quoted fields
    odd: int = 0
    rejected: int = 0
    filled: int = 0
    replaced: int = 0


@dataclass
class _FileStats:
    parts: list[_Part] = field(default_factory=list)

    def total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.parts)

    def offsets(self) -> list[tuple[int, int, int]]:
        """For each split in file order: (byte offset, records and lines before it)."""
        offsets, records, lines = [], 0, 0
        for part in sorted(self.parts, key=lambda p: p.split):
            offsets.append((part.split, records, lines))
            records += part.records
            lines += part.records + part.newlines
        return offsets


def connect(connection: DbConnection | SecretReference, autocommit: bool = False) -> psycopg.Connection:
    """A connection of the job, bounded at both ends: the client's by its connection parameters, the
    server's by the same settings for its side (see ``glueline.shared.timeouts``)."""
    conn = psycopg.connect(**connection.connect_kwargs(), autocommit=autocommit)
    try:
        conn.execute(schema.session_settings(connection.bounds.server_settings()))
        conn.commit()  # kept: a setting made in a transaction that is rolled back is undone
    except BaseException:
        conn.close()
        raise
    return conn


def columns_for_loading(cleaned: DataFrame) -> DataFrame:
    """What travels to the Python side: a good row as its COPY line, a rejected one as its CSV."""
    good = F.col(REASON).isNull()
    staged = F.struct(*schema.STAGED_COLUMNS)
    rejected = F.struct(F.col(REASON), *(F.col(f"{RAW}.{c}") for c in FIELDS), F.col(CORRUPT))
    flags = F.col(CUSTOMER_FILLED).cast("int") + 2 * F.col(DATE_ORIGINAL).isNotNull().cast("int")
    return cleaned.select(
        F.when(good, F.concat(F.to_csv(staged, _CSV), F.lit("\n"))).alias(COPY_LINE),
        F.when(~good, F.to_csv(rejected, _CSV)).alias(REJECT_LINE),
        F.when(good, flags).otherwise(0).cast("byte").alias(FLAGS),
        FILE,
        SPLIT,
        NEWLINES,
        ODD_QUOTES,
    )


class BatchLoader:
    """The job's Loader (see ``glueline.job.run``): Spark reads and cleans, PostgreSQL stores."""

    def __init__(
        self,
        spark: SparkSession,
        db: DbConnection,
        table: TableName,
        run_date: date,
        source: S3Snapshots | LocalCopies,
        workdir: str | Path,
        run_id: str,
        spark_start: float = 0.0,
        tasks_connect_with: DbConnection | SecretReference | None = None,
        time_left: Callable[[], float] = lambda: math.inf,
    ):
        self.spark = spark
        self.db = db
        # What the Spark tasks connect with: on the job, the secret's name (no password in a closure).
        self.tasks_connect_with = tasks_connect_with or db
        self.table = table
        self.run_date = run_date
        self.source = source
        self.workdir = Path(workdir)
        self.run_id = run_id  # named in the load ledger beside each file's counts
        self.spark_start = spark_start  # told to the first batch's files
        self.time_left = time_left  # of the run's Timeout (glueline.job.run.time_left): bounds each merge
        self._target_ready = False  # the job creates its table (deploy needs no database connection)

    def load(self, claimed: list[ClaimedFile]) -> dict[str, Outcome | Exception]:
        """Load every file; per FileID its outcome or the error that kept it out of the target. An
        error raised from here concerns the whole pass: no file of the batch has a row in the target."""
        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            paths = list(pool.map(lambda c: self.source.path(c.record), claimed))
        timings = {"spark_start": self.spark_start, "fetch": time.perf_counter() - started}
        self.spark_start = 0.0  # told to the first batch's files only
        files = [
            InputFile(i, c.record.file_id, path, c.header)
            for i, (c, path) in enumerate(zip(claimed, paths, strict=True))
        ]
        # Where each file's rows come from, and when it was uploaded (a newer upload's rows win).
        lineage = {
            c.record.file_id: (f"s3://{c.record.bucket}/{c.record.source_key}", c.record.upload_timestamp)
            for c in claimed
        }
        batch = schema.batch_name([f.file_id for f in files])
        try:
            # One connection for the driver's statements: each file's tables, then each file's transaction.
            with self._prepare(batch, files) as conn:
                results = self._load(conn, batch, files, lineage, timings)
        except BaseException:
            for path in paths:
                self.source.discard(path)
            raise
        for f in files:
            if isinstance(outcome := results[f.file_id], Outcome):
                outcome.snapshot = f.path  # kept until the move has the file (JobRun discards it)
            else:
                self.source.discard(f.path)
        return results

    def discard(self, snapshot: str) -> None:
        self.source.discard(snapshot)

    def _prepare(self, batch: str, files: list[InputFile]) -> psycopg.Connection:
        """The driver's connection, with the target and the batch's tables ready. Until then a database
        problem is not the files' (TargetUnavailable: their attempts do not count): unreachable, or DDL
        that did not finish within its statement timeout — a lock held by another session's long query."""
        target = self.db.target(str(self.table))
        try:
            conn = connect(self.db, autocommit=True)
        except psycopg.OperationalError as err:
            raise TargetUnavailable(f"the database {target} is unreachable: {err}") from err
        try:
            conn.execute(schema.statement_timeout(self.db.bounds.ddl_statement_seconds))
            if not self._target_ready:
                conn.execute(schema.create_target(self.table))
                self._target_ready = True
            conn.execute(schema.create_batch_tables(self.table, batch, [f.file_id for f in files]))
        except psycopg.OperationalError as err:  # QueryCanceled (the statement timeout) is one
            conn.close()
            raise TargetUnavailable(f"the database {target} could not prepare the load: {err}") from err
        return conn

    def _load(self, conn, batch: str, files: list[InputFile], lineage: dict[str, tuple[str, str]], timings: dict):
        started = time.perf_counter()
        copy_seconds = self.spark.sparkContext.accumulator(0.0)
        try:
            stats = self._stage(read_split(self.spark, files), batch, files, copy_seconds, split_read=True)
            again = [f for f in files if stats[f.index].total("odd")]
            if again:  # quoted line breaks: these files' split read is void
                conn.execute(sql.SQL("; ").join(schema.empty_file_tables(self.table, f.file_id) for f in again))
                stats.update(self._stage(read_multiline(self.spark, again), batch, again, copy_seconds, False))
            timings = {
                **timings,
                "stage": time.perf_counter() - started,
                "copy": copy_seconds.value,
                "batch_files": len(files),
            }
            results: dict[str, Outcome | Exception] = {}
            for f in files:
                try:
                    results[f.file_id] = self._merge(conn, f, stats[f.index], lineage[f.file_id], timings)
                except Exception as err:  # this file only: the others commit on their own
                    results[f.file_id] = err
            return results
        finally:
            self._drop(schema.drop_batch_tables(self.table, batch))

    def _stage(self, raw: DataFrame, batch: str, files: list[InputFile], copy_seconds, split_read: bool) -> dict:
        copy_sql = schema.copy_into_staging(self.table, batch).as_string()
        rejects_sql = schema.copy_into_rejects(self.table, batch).as_string()
        stage = _Stager(self.tasks_connect_with, copy_sql, rejects_sql, copy_seconds, split_read)
        rows = columns_for_loading(clean(raw, self.run_date)).mapInArrow(stage, _STATS).collect()
        stats = {f.index: _FileStats() for f in files}
        for row in rows:
            values = row.asDict()
            stats[values.pop(FILE)].parts.append(_Part(split=values.pop(SPLIT), **values))
        return stats

    def _merge(
        self, conn, f: InputFile, stats: _FileStats, source: tuple[str, str], batch: dict[str, float]
    ) -> Outcome:
        bound = merge_bound(self.time_left())
        try:
            return self._merge_bounded(conn, f, stats, source, batch, bound)
        except psycopg.errors.LockNotAvailable as err:  # the database's state, not the file's fault
            raise TargetUnavailable(
                f"the load waited {self.db.bounds.ddl_statement_seconds} s (lock_timeout) for a lock another session "
                f"holds in {self.db.target(str(self.table))}: {err}"
            ) from err
        except psycopg.errors.QueryCanceled as err:
            if not bound:
                raise
            left = f"the {bound:.0f} s left of the run's Timeout"
            raise RuntimeError(f"the merge did not end within {left}: {err}") from err

    def _merge_bounded(
        self, conn, f: InputFile, stats: _FileStats, source: tuple[str, str], batch: dict[str, float], bound: float
    ) -> Outcome:
        source_file, uploaded = source
        started = time.perf_counter()
        rejected_file = None
        with conn.transaction():  # commits on success
            # The merge is the load itself: bounded by what is left of the run's Timeout (``bound``), not
            # by the DDL's statement timeout.
            conn.execute(schema.statement_timeout(bound, local=True))
            conn.execute("SET LOCAL work_mem = '256MB'")
            reasons: dict[str, int] = {}
            if stats.total("rejected"):
                reasons = dict(conn.execute(schema.count_reject_reasons(self.table, f.file_id)).fetchall())
                rejected_file = str(self.workdir / f"rejected-{f.file_id}.csv")
                with open(rejected_file, "w", newline="", encoding="utf-8") as out:
                    csv.writer(out).writerow(REJECTED_HEADER)
                with open(rejected_file, "ab") as out, conn.cursor() as cur:
                    with cur.copy(schema.export_rejects(self.table, f.file_id, stats.offsets())) as copy:
                        for data in copy:
                            out.write(data)
            try:
                with conn.transaction():  # a savepoint: new TransactionIDs, each once, need no more
                    loaded = conn.execute(schema.insert_staging(self.table, f.file_id, source_file, uploaded)).rowcount
                    filled, replaced = stats.total("filled"), stats.total("replaced")
            except psycopg.errors.UniqueViolation:
                upsert = schema.upsert_staging(self.table, f.file_id, source_file, uploaded)
                loaded, filled, replaced = conn.execute(upsert).fetchone()
            read, rejected = stats.total("records"), stats.total("rejected")
            counts = Counts(read, loaded, rejected, read - rejected - loaded, filled, replaced)
            conn.execute(schema.record_load(self.table, f.file_id, self.run_id, counts, reasons))
            conn.execute(schema.drop_file_tables(self.table, f.file_id))
        timings = {**batch, "merge": time.perf_counter() - started}
        return Outcome(counts, rejected_file, reasons=reasons, timings=timings)

    def _drop(self, statement: sql.Composed) -> None:
        with contextlib.suppress(psycopg.Error):  # the database may be what failed; keep its error
            with connect(self.db, autocommit=True) as conn:
                conn.execute(schema.statement_timeout(self.db.bounds.ddl_statement_seconds))
                conn.execute(statement)


def merge_bound(time_left: float) -> float:
    """Seconds a file's merge may take: what is left of the run's Timeout less what settling needs
    (SETTLE_SECONDS), one second at least; 0 (unbounded) when the run's Timeout is not known."""
    return 0.0 if math.isinf(time_left) else max(1.0, time_left - SETTLE_SECONDS)


def recorded_load(db: DbConnection, table: TableName, fid: str) -> RecordedLoad | None:
    """What the load ledger holds for a file (see glueline.job.schema), or None: no load of it committed.
    TargetUnavailable when the database cannot say."""
    try:
        with connect(db) as conn:
            conn.execute(schema.statement_timeout(db.bounds.ddl_statement_seconds))
            row = conn.execute(schema.recorded_load(table, fid)).fetchone()
    except psycopg.errors.UndefinedTable:
        return None  # no load has committed into this database yet
    except psycopg.Error as err:
        raise TargetUnavailable(f"the load ledger of {db.target(str(table))} is unreachable: {err}") from err
    if row is None:
        return None
    run_id, *counts, reasons = row
    return RecordedLoad(run_id, Counts(*counts), reasons)


class _Stager:
    """What each partition runs: COPY its good rows into the batch's staging table and its rejected rows,
    with where they were read, into the batch's rejects table (both route each row to its file's
    partition), and answer one line of statistics per (file, split) it read."""

    def __init__(
        self,
        connection: DbConnection | SecretReference,
        copy_sql: str,
        rejects_sql: str,
        copy_seconds,
        split_read: bool,
    ):
        self.connection = connection
        self.copy_sql = copy_sql
        self.rejects_sql = rejects_sql
        self.copy_seconds = copy_seconds  # an accumulator: time spent writing to COPY
        self.split_read = split_read

    def __call__(self, batches: Iterable[Any]) -> Iterator[Any]:
        import pyarrow as pa

        self.parts: dict[tuple[int, int], _Part] = {}
        self.rejects = tempfile.SpooledTemporaryFile(8 << 20)
        with connect(self.connection) as conn:
            with contextlib.ExitStack() as copying:
                self.copy: psycopg.Copy | None = None
                self.open_copy = lambda: copying.enter_context(conn.cursor().copy(self.copy_sql))
                for batch in batches:
                    for key, run in _runs(batch):
                        self._take(key, run)
            if self.rejects.tell():
                self.rejects.seek(0)
                with conn.cursor().copy(self.rejects_sql) as copy:
                    while chunk := self.rejects.read(1 << 20):
                        copy.write(chunk)
        names = [f.name for f in _STATS.fields]
        arrow_schema = pa.schema([(names[0], pa.int32())] + [(n, pa.int64()) for n in names[1:]])
        for (file_index, split), part in self.parts.items():
            values = [file_index, split, *(getattr(part, n) for n in names[2:])]
            yield pa.RecordBatch.from_pylist([dict(zip(names, values, strict=True))], schema=arrow_schema)

    def _take(self, key: tuple[int, int], run) -> None:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc

        if key not in self.parts:
            self.parts[key] = _Part(split=key[1])
            if self.split_read and key[1] == 0:  # the file's first line: its header
                run = run.slice(1)
        if run.num_rows == 0:
            return
        part = self.parts[key]
        lines = run.column(COPY_LINE).drop_null()
        if len(lines):
            started = time.perf_counter()
            self.copy = self.copy or self.open_copy()
            self.copy.write(_values(lines))
            self.copy_seconds.add(time.perf_counter() - started)
        breaks = pc.fill_null(run.column(NEWLINES), 0).cast(pa.int64())
        bad = pc.is_valid(run.column(REJECT_LINE))
        rejected = pc.sum(bad).as_py() or 0
        if rejected:
            index = pa.array(np.arange(part.records, part.records + run.num_rows, dtype=np.int64))
            line = pc.add(index, pc.add(pc.subtract(pc.cumulative_sum(breaks), breaks), part.newlines))
            located = pc.binary_join_element_wise(
                pa.array([f"{key[0]},{key[1]}"] * rejected),
                pc.cast(index.filter(bad), pa.string()),
                pc.cast(line.filter(bad), pa.string()),
                run.column(REJECT_LINE).filter(bad),
                ",",
            )
            self.rejects.write("".join(f"{text}\n" for text in located.to_pylist()).encode())
        flags = pc.cast(run.column(FLAGS), pa.int32())
        part.records += run.num_rows
        part.newlines += pc.sum(breaks).as_py() or 0
        part.odd += pc.sum(pc.cast(run.column(ODD_QUOTES), pa.int32())).as_py() or 0
        part.rejected += rejected
        part.filled += pc.sum(pc.bit_wise_and(flags, 1)).as_py() or 0
        part.replaced += pc.sum(pc.shift_right(flags, 1)).as_py() or 0


def _runs(batch):
    """The batch cut where its file or split changes: ((file index, split offset), rows)."""
    import numpy as np

    files = batch.column(FILE).to_numpy(zero_copy_only=False)
    splits = batch.column(SPLIT).to_numpy(zero_copy_only=False)
    cuts = np.flatnonzero((files[1:] != files[:-1]) | (splits[1:] != splits[:-1])) + 1
    for start, end in zip([0, *cuts], [*cuts, batch.num_rows], strict=True):
        yield (int(files[start]), int(splits[start])), batch.slice(start, end - start)


def _values(strings) -> memoryview:
    """The bytes of an Arrow string array without nulls, end to end: COPY lines as Spark wrote them."""
    import numpy as np

    offsets = np.frombuffer(strings.buffers()[1], np.int32)[strings.offset : strings.offset + len(strings) + 1]
    return memoryview(strings.buffers()[2])[offsets[0] : offsets[-1]]
