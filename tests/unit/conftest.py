"""Unit-test fixtures: a small local Spark session, in-memory S3 and DynamoDB (moto: the real boto3
clients against moto's models, so conditional writes and ETag preconditions behave as AWS documents
them), and a scripted stand-in for the Glue API."""

from __future__ import annotations

import os
import sys
import threading
from dataclasses import dataclass

import boto3
import pytest

from glueline.shared.audit import AuditTable, table_spec
from glueline.shared.lifecycle import Lifecycle

BUCKET = "glueline-unit"
AUDIT_TABLE = "S3_Audit_1"
JOB = "ETL_Job_to_RDS"
TARGET = "db.example:5432/bank/public.transactions"
HEADER = "TransactionID,AccountNumber,CustomerID,TransactionDate,TransactionType,TransactionAmount,Currency,AccountBalance,BranchCode,MerchantCode,Description"  # noqa: E501
GOOD_CSV = (HEADER + "\n1,ACC,,2024-02-30,deposit,1.00,USD,2.00,3,4,x\n").encode()


@pytest.fixture(scope="session")
def spark():
    """A small local Spark session with the SQL settings the cleaning rules rely on."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from glueline.job.spark import SPARK_SQL_SETTINGS

    builder = SparkSession.builder.master("local[2]").appName("glueline-unit").config("spark.ui.enabled", "false")
    for key, value in SPARK_SQL_SETTINGS.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


class ConcurrentRunsExceededException(Exception):
    pass


class EntityNotFoundException(Exception):
    pass


class FakeGlue:
    """StartJobRun, GetJobRun and GetJobRuns as a test scripts them: ``busy_for`` refusals first (Glue's
    queue full), then runs ``jr_1``, ``jr_2``…; ``states`` answers GetJobRun and, newest first as
    listed, GetJobRuns (``on_get_run(run_id)`` is called before each GetJobRun)."""

    class exceptions:
        ConcurrentRunsExceededException = ConcurrentRunsExceededException
        EntityNotFoundException = EntityNotFoundException

    def __init__(self, busy_for=0, states=None, on_get_run=None):
        self.calls = 0
        self.arguments: list[dict] = []  # of each StartJobRun
        self.run_arguments: dict[str, dict] = {}  # a run's Arguments, as GetJobRuns shows them
        self.queuing: list[bool] = []  # its JobRunQueuingEnabled
        self.busy_for = busy_for
        self.states = states or {}
        self.on_get_run = on_get_run

    def get_job_run(self, JobName, RunId):
        if self.on_get_run:
            self.on_get_run(RunId)
        if RunId not in self.states:
            raise EntityNotFoundException(RunId)
        return {"JobRun": {"JobRunState": self.states[RunId]}}

    def get_job_runs(self, JobName, MaxResults=100):
        return {
            "JobRuns": [
                {"Id": run_id, "JobRunState": state, "Arguments": self.run_arguments.get(run_id, {})}
                for run_id, state in self.states.items()
            ]
        }

    def start_job_run(self, JobName, Arguments=None, JobRunQueuingEnabled=None):
        self.calls += 1
        self.arguments.append(Arguments or {})
        self.queuing.append(bool(JobRunQueuingEnabled))
        if self.calls <= self.busy_for:
            raise ConcurrentRunsExceededException()
        self.run_arguments[f"jr_{self.calls}"] = Arguments or {}
        return {"JobRunId": f"jr_{self.calls}"}


@dataclass
class Aws:
    s3: object
    audit: AuditTable

    def put(self, key: str, body: bytes) -> str:
        """Upload an object; its ETag."""
        self.s3.put_object(Bucket=BUCKET, Key=key, Body=body)
        return self.s3.head_object(Bucket=BUCKET, Key=key)["ETag"]

    def keys(self, prefix: str = "") -> list[str]:
        listing = self.s3.list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []))

    def lag_index(self, monkeypatch) -> None:
        """Make the status index lag as DynamoDB's global secondary indexes may: every item written from
        now on is missing from it (reads of the item itself stay consistent)."""
        known = {r.file_id for r in self.audit.all()}
        with_status = self.audit.with_status
        monkeypatch.setattr(
            self.audit, "with_status", lambda status: [r for r in with_status(status) if r.file_id in known]
        )

    def lifecycle(self, glue=None, max_attempts: int = 3, target: str = TARGET) -> Lifecycle:
        return Lifecycle(self.audit, self.s3, glue or FakeGlue(), JOB, max_attempts, target)


@pytest.fixture(autouse=True)
def _serialize_moto_dynamodb_writes(monkeypatch) -> None:
    """DynamoDB orders concurrent writes itself; moto does not: its TransactWriteItems copies every
    table (to roll back) while the job's claim threads may be writing, which fails with "dictionary
    changed size during iteration". One lock around moto's writes, for every test that uses moto, gives
    the order DynamoDB gives."""
    from moto.dynamodb.models import DynamoDBBackend

    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        write = getattr(DynamoDBBackend, name)

        def locked(*args, _write=write, **kwargs):
            with lock:
                return _write(*args, **kwargs)

        monkeypatch.setattr(DynamoDBBackend, name, locked)


@pytest.fixture
def aws(monkeypatch):
    """An empty bucket and audit table in moto, nothing else reachable."""
    from moto import mock_aws

    for name in [n for n in os.environ if n.startswith("AWS_")]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        ddb = boto3.client("dynamodb")
        ddb.create_table(**table_spec(AUDIT_TABLE))
        yield Aws(s3, AuditTable(ddb, AUDIT_TABLE))
