"""The tutorial baseline, for comparison only: the same Spark read and cleaning rules as glueline's job,
then ``DataFrame.write.jdbc`` with default options (append, per-row INSERT batches of 1000, one commit per
partition — not idempotent, a failure leaves partial rows).

Run by ``bench/run.py`` as a fresh process, like a Glue run:
    BENCH_DB_URL=postgresql://… python bench/baseline_jdbc.py FILE.csv TABLE
"""

from __future__ import annotations

import glob
import os
import sys
from datetime import datetime, timezone
from pathlib import Path

from glueline.contract import FIELDS
from glueline.dbsecret import DbConnection
from glueline.integrity import check_prefix
from glueline.transform import REASON, clean, read_csv

JARS = ["/usr/share/java/postgresql.jar", *glob.glob(os.path.expanduser("~/.m2/repository/org/postgresql/*/*/*.jar"))]


def main(path: str, table: str) -> None:
    jar = next((j for j in JARS if Path(j).exists()), None)
    if jar is None:
        raise SystemExit("the baseline needs the PostgreSQL JDBC driver jar (apt-get install libpostgresql-jdbc-java)")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

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
    cleaned = clean(read_csv(spark, path, header), datetime.now(timezone.utc).date(), path, "baseline")
    rows = cleaned.filter(cleaned[REASON].isNull()).select(*FIELDS, "source_file", "file_id")
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
