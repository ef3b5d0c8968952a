"""ETL_Job_to_RDS — the Glue Spark job: load every file that needs a run into PostgreSQL (RDS).

Wiring only, as thin as the Lambda's handler: what a run does is ``glueline.job.run`` (deciding through
``glueline.shared.lifecycle``), how files are read, cleaned and loaded is ``glueline.job.read``,
``transform`` and ``load``.

The same script runs on AWS Glue and on glueline's local Glue runner. The one seam: ``awsglue`` is used
when it can be imported (GlueContext, Job bookmarks; Spark reads ``s3://`` through Glue's own S3
filesystem); otherwise a plain SparkSession runs the job and reads a downloaded copy of each file
(PyPI's pyspark has no S3 filesystem).

Arguments: --AUDIT_TABLE, --DB_SECRET_ID (a Secrets Manager secret *name*; the password never travels
as an argument), --TARGET_TABLE (schema.table), --TARGET (the database and table this job was deployed
for: host:port/dbname/schema.table), --MAX_ATTEMPTS, --BATCH_SECONDS (no new batch is claimed with less of the
run's Timeout left: ``glueline.job.run``), --DB_LOST_WITHIN_SECONDS and --DB_DDL_TIMEOUT_SECONDS (how long it
waits on the database: ``glueline.shared.timeouts.DbBounds``).

``warm_up(spark)`` is a hook for a runner that starts Spark before the run arrives (``glueline.job.warmup``).
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import replace
from datetime import datetime, timezone

from glueline.job.load import BatchLoader, recorded_load
from glueline.job.read import LocalCopies, S3Snapshots
from glueline.job.run import JobRun, time_left
from glueline.job.spark import use_sql_settings
from glueline.job.warmup import warm_up  # noqa: F401  (the runner's hook)
from glueline.shared.audit import AuditTable
from glueline.shared.dbsecret import DbConnection, SecretReference
from glueline.shared.lifecycle import Lifecycle
from glueline.shared.tablename import TableName
from glueline.shared.timeouts import JOB_BOUND_ARGUMENTS, DbBounds, aws_client

try:  # the one allowed seam: on Glue (or the aws-glue-libs image) use Glue's own context
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
except ImportError:
    GlueContext = None
    from glueline.job.args import resolve_options as getResolvedOptions

ARGUMENTS = [
    "JOB_NAME",
    "JOB_RUN_ID",
    "AUDIT_TABLE",
    "DB_SECRET_ID",
    "TARGET_TABLE",
    "TARGET",
    "MAX_ATTEMPTS",
    "BATCH_SECONDS",
    *JOB_BOUND_ARGUMENTS,
    "FILE_IDS",
]


def start_spark(args: dict):
    """The session, and the Glue Job to commit at the end (None off Glue)."""
    if GlueContext is not None:
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        job = Job(glue_context)
        job.init(args["JOB_NAME"], args)
        spark = glue_context.spark_session
    else:
        from pyspark.sql import SparkSession

        spark, job = SparkSession.builder.appName(args["JOB_NAME"]).getOrCreate(), None
    use_sql_settings(spark)
    spark.sparkContext.setLogLevel("WARN")
    return spark, job


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGUMENTS)
    glue = aws_client("glue")
    left = time_left(glue, args["JOB_NAME"], args["JOB_RUN_ID"])  # first: the run's clock is running
    bounds = DbBounds.from_job_arguments(args)
    db = replace(DbConnection.from_secrets_manager(aws_client("secretsmanager"), args["DB_SECRET_ID"]), bounds=bounds)
    table = TableName.parse(args["TARGET_TABLE"])
    if db.target(str(table)) != args["TARGET"]:
        raise SystemExit(
            f"the secret {args['DB_SECRET_ID']} points at {db.target(str(table))}, but this job was deployed for "
            f"{args['TARGET']}: deploy again (glueline deploy) so the Lambda and the job agree"
        )
    s3 = aws_client("s3")
    lifecycle = Lifecycle(
        AuditTable(aws_client("dynamodb"), args["AUDIT_TABLE"]),
        s3,
        glue,
        args["JOB_NAME"],
        int(args["MAX_ATTEMPTS"]),
        args["TARGET"],
    )
    started: dict = {}
    with tempfile.TemporaryDirectory(prefix="glueline-") as workdir:

        def open_loader() -> BatchLoader:  # Spark starts with the first claimed file
            clock = time.perf_counter()
            spark, started["job"] = start_spark(args)
            source = S3Snapshots(s3) if GlueContext is not None else LocalCopies(s3, workdir)
            run_date = datetime.now(timezone.utc).date()
            return BatchLoader(
                spark,
                db,
                table,
                run_date,
                source,
                workdir,
                args["JOB_RUN_ID"],
                spark_start=time.perf_counter() - clock,
                tasks_connect_with=SecretReference(args["DB_SECRET_ID"], bounds),
                time_left=left,
            )

        announced = Lifecycle.announced(args["FILE_IDS"])
        failures = JobRun(
            lifecycle,
            args["JOB_RUN_ID"],
            open_loader,
            announced,
            recorded_load=lambda fid: recorded_load(db, table, fid),  # no Spark needed to ask
            time_left=left,
            batch_seconds=int(args["BATCH_SECONDS"]),
        ).run()
    if started.get("job") is not None:
        started["job"].commit()
    if failures:  # an exception is what marks a run FAILED, on Glue and locally
        raise RuntimeError(f"{len(failures)} file(s) failed: " + " | ".join(failures))


if __name__ == "__main__":
    main(sys.argv)
