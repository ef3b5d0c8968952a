"""Loading one file's cleaned rows into PostgreSQL, all or nothing.

1. The driver creates the file's UNLOGGED staging table.
2. Each Spark partition streams its good rows as Arrow batches → CSV bytes → ``COPY`` into staging
   (bulk transfer, no per-row Python), and hands its rejected rows back to the driver.
3. The driver runs one upsert from staging into the target and drops staging, in one transaction.

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
from glueline.transform import CORRUPT, NEWLINES, RAW, REASON, RECORD

LINE = "line_number"
RAW_RECORD = "raw_record"
# The rejected-rows file: where the row was, why it was refused, and its fields exactly as read.
REJECTED_HEADER = (LINE, RECORD, REASON, *COLUMNS.keys(), RAW_RECORD)
_REJECTED_SCHEMA = T.StructType(
    [T.StructField(LINE, T.LongType()), T.StructField(RECORD, T.LongType()), T.StructField(REASON, T.StringType())]
    + [T.StructField(c, T.StringType()) for c in FIELDS]
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


def _for_loading(cleaned: DataFrame) -> DataFrame:
    """The columns that travel to the Python side: typed values for good rows, raw text for bad ones."""
    rejected = F.col(REASON).isNotNull()
    raw = [F.when(rejected, F.col(f"{RAW}.{c}")).alias(f"raw_{c}") for c in FIELDS]
    return cleaned.select(
        *schema.STAGED_COLUMNS, REASON, NEWLINES, *raw, F.when(rejected, F.col(CORRUPT)).alias(RAW_RECORD)
    )


def _stage_partition(connect_kwargs: dict, copy_sql: str, copy_seconds):
    """The function each partition runs: COPY good rows, yield rejected ones with their line numbers."""

    def stage(batches: Iterator) -> Iterator:
        import time

        import pyarrow as pa
        import pyarrow.compute as pc
        import pyarrow.csv as pacsv

        write_options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
        # Line numbers need the line breaks of every earlier record: exact because a file is read as
        # one partition, in file order (multiLine CSV).
        lines_before = 0
        with psycopg.connect(**connect_kwargs) as conn, conn.cursor() as cur:
            with cur.copy(copy_sql) as copy:
                for batch in batches:
                    table = pa.Table.from_batches([batch])
                    breaks = pc.fill_null(table.column(NEWLINES), 0)
                    earlier = pc.subtract(pc.cumulative_sum(breaks), breaks)
                    line = pc.add(pc.add(table.column(RECORD), 1), pc.add(earlier, lines_before))
                    lines_before += pc.sum(breaks).as_py() or 0
                    good = pc.is_null(table.column(REASON))
                    staged = table.filter(good).select(list(schema.STAGED_COLUMNS))
                    if staged.num_rows:
                        started = time.perf_counter()
                        buffer = io.BytesIO()
                        pacsv.write_csv(staged, buffer, write_options)
                        copy.write(buffer.getbuffer())
                        copy_seconds.add(time.perf_counter() - started)
                    bad = table.append_column(LINE, line).filter(pc.invert(good))
                    if bad.num_rows:
                        columns = [LINE, RECORD, REASON] + [f"raw_{c}" for c in FIELDS] + [RAW_RECORD]
                        yield from bad.select(columns).rename_columns(list(_REJECTED_SCHEMA.names)).to_batches()

    return stage


def load_file(
    cleaned: DataFrame, db: DbConnection, table: schema.TableName, fid: str, rejected_out: TextIO
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
        rejected = 0
        staged_rows = _for_loading(cleaned).mapInArrow(
            _stage_partition(db.connect_kwargs(), copy_sql, copy_seconds), _REJECTED_SCHEMA
        )
        for row in staged_rows.toLocalIterator():
            writer.writerow(row)
            rejected += 1
        staged_at = time.perf_counter()
        with psycopg.connect(**db.connect_kwargs()) as conn:  # one transaction: commit on success
            staged, loaded, filled, replaced = conn.execute(schema.merge_staging(table, fid)).fetchone()
            conn.execute(schema.drop_staging(table, fid))
        merged_at = time.perf_counter()
    except BaseException:
        with contextlib.suppress(psycopg.Error):  # the database may be what failed; keep its error
            with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
                conn.execute(schema.drop_staging(table, fid))
        raise
    return LoadResult(
        rows_read=staged + rejected,
        rows_loaded=loaded,
        rows_rejected=rejected,
        rows_duplicate=staged - loaded,
        customer_id_filled=filled,
        dates_replaced=replaced,
        timings={"stage": staged_at - clock, "copy": copy_seconds.value, "merge": merged_at - staged_at},
    )
