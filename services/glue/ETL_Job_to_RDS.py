"""ETL_Job_to_RDS — the Glue Spark job: load every file that needs a run into PostgreSQL (RDS).

The same script runs on AWS Glue and on glueline's local Glue runner. The one seam: ``awsglue`` is used
when it can be imported (GlueContext, Job bookmarks, Glue's own S3 filesystem); otherwise a plain
SparkSession runs it and the file is read from a local copy (PyPI's pyspark has no S3 filesystem).

The run takes work from the audit table — PENDING files, FAILED ones with attempts left, PROCESSING ones
whose Glue run died — oldest upload first, until none is left (files announced while it is busy are
taken too). For each:

    claim (→ PROCESSING, one more attempt) → check the header → read + clean with Spark → COPY into a
    staging table → upsert into the target in one transaction → move the file to processed/ → COMPLETED

A file whose header breaks the contract, or that left source/ since it was announced, is REJECTED. Any
other error marks the file FAILED with the message and leaves it in source/ for the next trigger; none
of its rows is in the target. On its last attempt (--MAX_ATTEMPTS) it is moved to rejected/ instead
(REJECTED, with the last error). The run then fails, so the failure shows in the Glue console too.

Arguments: --SOURCE_BUCKET, --AUDIT_TABLE, --DB_SECRET_ID (a Secrets Manager secret *name*; the
password never travels as an argument), --TARGET_TABLE (schema.table), --MAX_ATTEMPTS.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
import time
import traceback
from datetime import datetime, timezone

import boto3

from glueline import layout
from glueline.audit import AuditRecord, AuditTable, RunChecker, Status
from glueline.csvscan import QuotedLineBreakScan
from glueline.dbsecret import DbConnection
from glueline.integrity import SAMPLE_BYTES, check_prefix
from glueline.load import load_file
from glueline.schema import TableName
from glueline.transform import clean, read_csv, use_sql_settings

try:  # the one allowed seam: on Glue (or the aws-glue-libs image) use Glue's own context
    from awsglue.context import GlueContext
    from awsglue.job import Job
    from awsglue.utils import getResolvedOptions
except ImportError:
    GlueContext = None
    from glueline.jobargs import resolve_options as getResolvedOptions

ARGUMENTS = [
    "JOB_NAME",
    "JOB_RUN_ID",
    "SOURCE_BUCKET",
    "AUDIT_TABLE",
    "DB_SECRET_ID",
    "TARGET_TABLE",
    "MAX_ATTEMPTS",
]


class SourceGone(Exception):
    """The announced version of the file is no longer in source/ (deleted, or replaced by new content,
    which has its own FileID)."""


def start_spark(args: dict):
    if GlueContext is not None:
        from pyspark.context import SparkContext

        glue_context = GlueContext(SparkContext.getOrCreate())
        spark = glue_context.spark_session
        job = Job(glue_context)
        job.init(args["JOB_NAME"], args)
    else:
        from glueline.localspark import session

        spark = session(args["JOB_NAME"])
        job = None
    use_sql_settings(spark)
    spark.sparkContext.setLogLevel("WARN")
    return spark, job


def input_path(s3, record: AuditRecord, workdir: str) -> tuple[str, bool]:
    """Where Spark reads the file, and whether it must read it as one multi-line task.

    On Glue: S3 itself, as one task (whether quoted fields hold line breaks is not known without a
    pass over the file). Elsewhere: a local copy of that exact version, scanned while it downloads, so
    a file without line breaks in quotes is split and read in parallel.
    """
    if GlueContext is not None:
        return f"s3://{record.bucket}/{record.source_key}", True
    local = os.path.join(workdir, record.file_id + ".csv")
    scan = QuotedLineBreakScan()
    body = s3.get_object(Bucket=record.bucket, Key=record.source_key, IfMatch=record.etag)["Body"]
    with open(local, "wb") as out:
        for chunk in iter(lambda: body.read(8 << 20), b""):
            scan.update(chunk)
            out.write(chunk)
    return local, scan.found


def read_head(s3, record: AuditRecord) -> bytes:
    try:
        return s3.get_object(
            Bucket=record.bucket,
            Key=record.source_key,
            IfMatch=record.etag,
            Range=f"bytes=0-{SAMPLE_BYTES - 1}",
        )["Body"].read()
    except s3.exceptions.ClientError as err:
        if err.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "PreconditionFailed", "412"):
            raise SourceGone(
                f"{record.source_key} (ETag {record.etag}) is no longer in source/: deleted, or replaced by "
                "new content that is processed under its own FileID"
            ) from err
        raise


def process_file(spark, s3, audit: AuditTable, record: AuditRecord, run_id: str, ctx: dict) -> str:
    """Process one claimed file; returns its final status."""
    started = time.perf_counter()
    try:
        head = read_head(s3, record)
    except SourceGone as gone:
        audit.reject(record.file_id, str(gone), None, holder=run_id)
        print(f"{record.file_name}: REJECTED ({gone})")
        return Status.REJECTED
    integrity = check_prefix(head, complete=len(head) < SAMPLE_BYTES)
    if not integrity.ok:
        final_key = layout.move_object(s3, record.bucket, record.source_key, layout.REJECTED, record.file_id)
        audit.reject(record.file_id, integrity.problem, final_key, holder=run_id)
        print(f"{record.file_name}: REJECTED ({integrity.problem})")
        return Status.REJECTED

    with tempfile.TemporaryDirectory(prefix="glueline-") as workdir:
        path, multiline = input_path(s3, record, workdir)
        raw = read_csv(spark, path, integrity.header, multiline)
        source_file = f"s3://{record.bucket}/{record.source_key}"
        cleaned = clean(raw, ctx["run_date"], source_file, record.file_id)
        rejected_path = os.path.join(workdir, "rejected.csv")
        with open(rejected_path, "w", newline="", encoding="utf-8") as rejected_out:
            result = load_file(cleaned, ctx["db"], ctx["table"], record.file_id, source_file, rejected_out)
        rejected_key = None
        if result.rows_rejected:
            rejected_key = layout.rejected_rows_key(record.source_key, run_id)
            s3.upload_file(rejected_path, record.bucket, rejected_key)

    moving = time.perf_counter()
    final_key = layout.move_object(s3, record.bucket, record.source_key, layout.PROCESSED, record.file_id)
    done = time.perf_counter()
    timings = {**ctx.pop("spark_start", {}), **result.timings, "move": done - moving, "file": done - started}
    outcome = dict(
        result.counts(),
        final_key=final_key,
        rejected_rows_key=rejected_key,
        warnings=integrity.warnings,
        timings=timings,
    )
    audit.complete(record.file_id, run_id, outcome)
    print(
        f"{record.file_name}: COMPLETED read={result.rows_read} loaded={result.rows_loaded} "
        f"rejected={result.rows_rejected} duplicates={result.rows_duplicate} "
        f"customerid_filled={result.customer_id_filled} dates_replaced={result.dates_replaced}"
    )
    return Status.COMPLETED


_PYTHON_ERROR = re.compile(r"^(?!org\.|java\.|py4j\.|scala\.)([\w.]*(?:Error|Exception)): (.*)$", re.MULTILINE)


def describe(err: Exception) -> str:
    """The error as an operator needs it: for a Python error inside a Spark task, that error — not the
    Java stack trace Spark wraps it in."""
    text = str(err)
    if "Traceback (most recent call last)" in text:
        tail = text.split("Traceback (most recent call last)", 1)[1]
        match = _PYTHON_ERROR.search(tail)
        if match:
            return f"{match.group(1)}: {match.group(2).strip()} (in a Spark task)"
    return f"{type(err).__name__}: {text}".strip()[:2000]


def give_up_or_fail(s3, audit: AuditTable, record: AuditRecord, run_id: str, message: str, max_attempts: int) -> str:
    """Record a failed attempt: FAILED (retried by the next trigger), or REJECTED on the last one."""
    if record.attempts < max_attempts:
        audit.fail(record.file_id, run_id, message)
        return Status.FAILED
    reason = f"gave up after {record.attempts} attempt(s); last error: {message}"
    try:
        final_key = layout.move_object(s3, record.bucket, record.source_key, layout.REJECTED, record.file_id)
    except Exception as err:  # the object itself is unreachable: record that too
        final_key = None
        reason += f" (the file could not be moved to rejected/: {type(err).__name__}: {err})"
    audit.reject(record.file_id, reason, final_key, holder=run_id)
    return Status.REJECTED


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGUMENTS)
    run_id = args["JOB_RUN_ID"]
    max_attempts = int(args["MAX_ATTEMPTS"])
    s3 = boto3.client("s3")
    glue = boto3.client("glue")
    audit = AuditTable(boto3.client("dynamodb"), args["AUDIT_TABLE"])
    spark = job = ctx = None  # started with the first claimed file: a run with nothing to do is quick
    taken: set[str] = set()
    failed: list[str] = []
    while True:
        work = audit.work(max_attempts, RunChecker(glue, args["JOB_NAME"]))
        claimed_any = False
        for seen in (r for r in work if r.file_id not in taken):
            record = audit.claim(seen, run_id)
            if record is None:
                continue  # changed since read: another run took it, or a Lambda noted a run
            taken.add(record.file_id)
            claimed_any = True
            try:
                if spark is None:
                    starting = time.perf_counter()
                    spark, job = start_spark(args)
                    ctx = {
                        "spark_start": {"spark_start": time.perf_counter() - starting},  # told to the first file
                        "run_date": datetime.now(timezone.utc).date(),
                        "db": DbConnection.from_secrets_manager(boto3.client("secretsmanager"), args["DB_SECRET_ID"]),
                        "table": TableName.parse(args["TARGET_TABLE"]),
                    }
                process_file(spark, s3, audit, record, run_id, ctx)
            except Exception as err:  # one bad file never stops the others
                traceback.print_exc()
                message = describe(err)
                outcome = give_up_or_fail(s3, audit, record, run_id, message, max_attempts)
                failed.append(f"{record.file_name}: {message}")
                print(f"{record.file_name}: {outcome} (attempt {record.attempts}: {message})")
        if not claimed_any:
            break
    if job is not None:
        job.commit()
    if spark is not None:
        spark.stop()
    if failed:  # an exception is what marks a run FAILED, on Glue and locally
        raise RuntimeError(f"{len(failed)} file(s) failed: " + " | ".join(failed))


if __name__ == "__main__":
    main(sys.argv)
