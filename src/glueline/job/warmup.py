"""The job's warm-up, offered by the job script as its ``warm_up(spark)`` hook: what a process that
starts Spark before its run arrives can do so the run is fast (see ``glueline.local.runner.standby``).

It runs the job's own read and cleaning plan — split and multi-line — on a small generated file, so the
JVM has planned and compiled what a run does and Spark's Python workers have imported what the load
imports. Nothing is read from or written to S3, DynamoDB or PostgreSQL.
"""

from __future__ import annotations

import csv
import io
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from pyspark.sql import SparkSession

from glueline.job.load import columns_for_loading
from glueline.job.read import InputFile, read_multiline, read_split
from glueline.job.spark import use_sql_settings
from glueline.job.transform import clean
from glueline.shared.contract import COLUMNS, match_header

_ROW = ["1", "ACC0001", "42", "2024-07-13", "deposit", "10.00", "USD", "100.00", "7", "12", "Groceries, weekly"]
# Overrides that take every path through the rules: blank CustomerID, bad date, rejected values, a
# record with a line break inside quotes.
_VARIANTS = [{}, {2: " "}, {3: "2024-02-30"}, {5: "1.234"}, {6: "EURO"}, {10: 'Two\nlines, "quoted"'}]


def warm_up(spark: SparkSession, rows: int = 50_000, small_files: int = 20) -> None:
    """Two files of ``rows`` records, split into at least as many tasks as Spark runs at once (so every
    Python worker a run will use is started and has imported the load's modules), then a batch of
    ``small_files`` files of 500 records, packed into tasks as Spark packs a batch of many files."""
    use_sql_settings(spark)
    with tempfile.TemporaryDirectory(prefix="glueline-warm-") as directory:
        header = match_header(list(COLUMNS))  # what _sample writes
        files = []
        for index, size in enumerate([rows, rows] + [500] * small_files):
            path = Path(directory) / f"warm{index}.csv"
            path.write_text(_sample(size))
            files.append(InputFile(index, f"warm{index}", str(path), header))
        large, small = files[:2], files[2:]
        split_bytes = sum(Path(f.path).stat().st_size for f in large) // (2 * spark.sparkContext.defaultParallelism)
        spark.conf.set("spark.sql.files.maxPartitionBytes", str(split_bytes))
        try:
            _run_plan(spark, large)
        finally:
            spark.conf.unset("spark.sql.files.maxPartitionBytes")
        _run_plan(spark, small)


def _run_plan(spark: SparkSession, files: list[InputFile]) -> None:
    run_date = datetime.now(timezone.utc).date()
    for raw in (read_split(spark, files), read_multiline(spark, files)):
        loading = columns_for_loading(clean(raw, run_date))
        loading.mapInArrow(_import_what_the_load_imports, loading.schema).collect()


def _sample(rows: int) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for i in range(rows):
        row = list(_ROW)
        row[0] = str(i + 1)
        for position, value in _VARIANTS[i % len(_VARIANTS)].items():
            row[position] = value
        writer.writerow(row)
    return out.getvalue()


def _import_what_the_load_imports(batches):
    import numpy  # noqa: F401
    import psycopg  # noqa: F401
    import pyarrow.compute  # noqa: F401

    for _ in batches:
        pass
    yield from ()
