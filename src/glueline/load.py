"""Loading one file's cleaned rows into PostgreSQL, all or nothing.

1. The driver creates the file's UNLOGGED staging table.
2. Each Spark partition streams its good rows as Arrow batches → CSV bytes → ``COPY`` into staging
   (bulk transfer, no per-row Python), hands its rejected rows back to the driver, and ends with one
   line of statistics (its record and line counts) from which the driver numbers the rejected rows.
3. The driver moves staging into the target and drops staging, in one transaction: first as a plain
   INSERT (new rows, each TransactionID once: the common case, and the cheapest for the database), and
   only if that meets a TransactionID twice, as the de-duplicating upsert.

A failure at any point before that commit leaves the target without a single row of the file.
"""

from __future__ import annotations

import contextlib
import csv
import io
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import TextIO

import psycopg
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glueline import schema
from glueline.contract import COLUMNS, FIELDS
from glueline.dbsecret import DbConnection
from glueline.transform import CORRUPT, NEWLINES, POSITION, RAW, REASON

LINE = "line_number"
RECORD = "record_number"
RAW_RECORD = "raw_record"
# The rejected-rows file: where the row was, why it was refused, and its fields exactly as read.
REJECTED_HEADER = (LINE, RECORD, REASON, *COLUMNS.keys(), RAW_RECORD)

# What a partition hands back: its rejected rows (kind "row": index and line offset within the
# partition), then one "partition" line (records, and line breaks inside its records).
_KIND, _PARTITION, _INDEX, _LINES = "kind", "partition", "index", "lines"
_RETURNED = T.StructType(
    [
        T.StructField(_KIND, T.StringType()),
        T.StructField(_PARTITION, T.LongType()),
        T.StructField(_INDEX, T.LongType()),
        T.StructField(_LINES, T.LongType()),
        T.StructField(REASON, T.StringType()),
    ]
    + [T.StructField(f"raw_{c}", T.StringType()) for c in FIELDS]
    + [T.StructField(RAW_RECORD, T.StringType())]
)


@dataclass
class LoadResult:
    rows_read: int
    rows_loaded: int
    rows_rejected: int
    rows_duplicate: int
    customer_id_filled: int
    dates_replaced: int
    # Seconds per phase: stage (read + clean + COPY, one pipelined pass), copy (time inside COPY, summed
    # over partitions), merge (upsert + commit).
    timings: dict[str, float] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        return {k: v for k, v in asdict(self).items() if k != "timings"}


def columns_for_loading(cleaned: DataFrame) -> DataFrame:
    """The columns that travel to the Python side: typed values for good rows, raw text for bad ones."""
    rejected = F.col(REASON).isNotNull()
    raw = [F.when(rejected, F.col(f"{RAW}.{c}")).alias(f"raw_{c}") for c in FIELDS]
    return cleaned.select(
        *schema.STAGED_COLUMNS, REASON, NEWLINES, *raw, F.when(rejected, F.col(CORRUPT)).alias(RAW_RECORD)
    )


def _stage_partition(connect_kwargs: dict, copy_sql: str, copy_seconds):
    """The function each partition runs: COPY its good rows, return its rejected rows and statistics."""

    def stage(batches: Iterator) -> Iterator:
        import numpy as np
        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        write_options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
        partition, records, lines = None, 0, 0  # so far in this partition
        with psycopg.connect(**connect_kwargs) as conn, conn.cursor() as cur:
            with cur.copy(copy_sql) as copy:
                for batch in batches:
                    if batch.num_rows == 0:
                        continue
                    table = pa.Table.from_batches([batch])  # (column arrays below come from the batch)
                    if partition is None:
                        partition = batch.column(POSITION)[0].as_py() >> 33
                    breaks = pc.fill_null(batch.column(NEWLINES), 0).cast(pa.int64())
                    index = pa.array(np.arange(records, records + batch.num_rows, dtype=np.int64))
                    line = pc.add(index, pc.add(pc.subtract(pc.cumulative_sum(breaks), breaks), lines))
                    good = pc.is_null(batch.column(REASON))
                    staged = table.filter(good).select(list(schema.STAGED_COLUMNS))
                    if staged.num_rows:
                        started = time.perf_counter()
                        buffer = io.BytesIO()
                        pacsv.write_csv(staged, buffer, write_options)
                        copy.write(buffer.getbuffer())
                        copy_seconds.add(time.perf_counter() - started)
                    bad = pc.invert(good)
                    if pc.any(bad).as_py():
                        rejected = table.filter(bad)
                        count = rejected.num_rows
                        yield pa.RecordBatch.from_arrays(
                            [
                                pa.array(["row"] * count),
                                pa.array([partition] * count, pa.int64()),
                                index.filter(bad),
                                line.filter(bad),
                                *(rejected.column(name).combine_chunks() for name in _RETURNED.names[4:]),
                            ],
                            names=_RETURNED.names,
                        )
                    records += batch.num_rows
                    lines += pc.sum(breaks).as_py() or 0
        if partition is not None:
            stats = [pa.array(["partition"]), *(pa.array([n], pa.int64()) for n in (partition, records, lines))]
            nulls = [pa.nulls(1, pa.string()) for _ in _RETURNED.names[len(stats) :]]
            yield pa.RecordBatch.from_arrays([*stats, *nulls], names=_RETURNED.names)

    return stage


def load_file(
    cleaned: DataFrame,
    db: DbConnection,
    table: schema.TableName,
    fid: str,
    source_file: str,
    rejected_out: TextIO,
) -> LoadResult:
    """Load one file's cleaned DataFrame; rejected rows are written as CSV to ``rejected_out``."""
    clock = time.perf_counter()
    copy_seconds = cleaned.sparkSession.sparkContext.accumulator(0.0)
    with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
        conn.execute(schema.create_staging(table, fid))
        copy_sql = schema.copy_into_staging(table, fid).as_string(conn)
    try:
        writer = csv.writer(rejected_out)
        writer.writerow(REJECTED_HEADER)
        # Partitions come back in file order, each ending with its statistics: numbering a rejected row
        # needs only the partitions before its own.
        records_before, lines_before, rejected = 0, 0, 0
        returned = columns_for_loading(cleaned).mapInArrow(
            _stage_partition(db.connect_kwargs(), copy_sql, copy_seconds), _RETURNED
        )
        for row in returned.toLocalIterator():
            if row[_KIND] == "partition":
                records_before += row[_INDEX]
                lines_before += row[_INDEX] + row[_LINES]
                continue
            line = 2 + lines_before + row[_LINES]  # the header is line 1
            writer.writerow([line, records_before + row[_INDEX] + 1, *row[4:]])
            rejected += 1
        staged = records_before - rejected
        staged_at = time.perf_counter()
        with psycopg.connect(**db.connect_kwargs()) as conn:  # one transaction: commit on success
            conn.execute("SET LOCAL work_mem = '256MB'")
            try:
                with conn.transaction():  # a savepoint: new transactions, each once, need no more
                    loaded = conn.execute(schema.insert_staging(table, fid, source_file)).rowcount
                    filled, replaced = conn.execute(schema.count_flags(table, fid)).fetchone()
            except psycopg.errors.UniqueViolation:
                loaded, filled, replaced = conn.execute(schema.upsert_staging(table, fid, source_file)).fetchone()
            conn.execute(schema.drop_staging(table, fid))
        merged_at = time.perf_counter()
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # the database may be what failed; keep its error
            with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
                conn.execute(schema.drop_staging(table, fid))
        raise
    return LoadResult(
        rows_read=records_before,
        rows_loaded=loaded,
        rows_rejected=rejected,
        rows_duplicate=staged - loaded,
        customer_id_filled=filled,
        dates_replaced=replaced,
        timings={"stage": staged_at - clock, "copy": copy_seconds.value, "merge": merged_at - staged_at},
    )
