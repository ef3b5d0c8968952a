"""The tutorial baseline, for comparison only: a Glue tutorial's load, run as its users run it — the CSV
reader with a header (split across tasks, as ``spark.read.csv(path, header=True)`` reads), the same
cleaning rules as glueline's job, then ``DataFrame.write.jdbc`` with default options (append, INSERT
batches of 1000, one commit per partition — not idempotent, a failure leaves partial rows).

Run by ``bench/run.py`` as a fresh process, like a Glue run:
    BENCH_DB_URL=postgresql://… python bench/baseline_jdbc.py FILE.csv TABLE
"""

from __future__ import annotations

import glob
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from glueline.job.read import csv_schema
from glueline.job.transform import CORRUPT, REASON, clean
from glueline.shared.contract import FIELDS
from glueline.shared.dbsecret import DbConnection
from glueline.shared.integrity import check_prefix

JARS = ["/usr/share/java/postgresql.jar", *glob.glob(os.path.expanduser("~/.m2/repository/org/postgresql/*/*/*.jar"))]


def main(path: str, table: str) -> None:
    jar = next((j for j in JARS if Path(j).exists()), None)
    if jar is None:
        raise SystemExit("the baseline needs the PostgreSQL JDBC driver jar (apt-get install libpostgresql-jdbc-java)")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    spark = (
        SparkSession.builder.master("local[*]")
        .appName("tutorial-baseline")
        .config("spark.ui.enabled", "false")
        .config("spark.jars", jar)
        .config("spark.driver.memory", "2g")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.legacy.timeParserPolicy", "CORRECTED")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    with open(path, "rb") as head:
        header = check_prefix(head.read(65536), complete=False).header
    # The tutorial's read; the schema only names the columns, so that the same cleaning rules apply.
    raw = spark.read.csv(path, header=True, schema=csv_schema(header), escape='"', columnNameOfCorruptRecord=CORRUPT)
    cleaned = clean(raw, datetime.now(timezone.utc).date())
    rows = cleaned.filter(cleaned[REASON].isNull()).select(
        *FIELDS, F.lit(path).alias("source_file"), F.lit("baseline").alias("file_id")
    )
    db = DbConnection.from_url(os.environ["BENCH_DB_URL"])
    rows.write.jdbc(
        f"jdbc:postgresql://{db.host}:{db.port}/{db.dbname}",
        table,
        mode="append",
        properties={"user": db.username, "password": db.password, "driver": "org.postgresql.Driver"},
    )
    spark.stop()


if __name__ == "__main__":
    main(*sys.argv[1:3])
