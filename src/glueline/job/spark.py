"""The Spark SQL settings the job's rules rely on, wherever it runs (the job sets them on its session):
UTC for "the run's date", strict date parsing, non-ANSI casts (a bad value is caught by the contract's
checks, not by an exception mid-load), a shuffle width that suits files, not clusters, and the files of
a batch (at most glueline.job.run.BATCH_FILES) listed by the driver rather than by a Spark job."""

from __future__ import annotations

from pyspark.sql import SparkSession

SPARK_SQL_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.sources.parallelPartitionDiscovery.threshold": "1000",
}


def use_sql_settings(spark: SparkSession) -> None:
    for key, value in SPARK_SQL_SETTINGS.items():
        spark.conf.set(key, value)
