"""A deployed pipeline on a local stack, as a test drives it: upload, wait, look (see glueline.testing)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import botocore.config
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from rich.console import Console

from glueline.job import schema
from glueline.local.compose import ComposeInfo, ComposeStack, engine_answers
from glueline.local.faults import StackFaults
from glueline.local.stack import LOCAL_STACK_SETTINGS, EmbeddedStack, StackInfo, apply_aws_env
from glueline.local.stack.postgres import PostgresError, find_bin_dir
from glueline.ops.deploy.models import Change
from glueline.ops.deploy.planner import Bootstrap
from glueline.ops.uploads import Upload, upload, wait_for_outcomes
from glueline.polling import wait_for
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, AuditTable
from glueline.shared.dbsecret import DbConnection
from glueline.shared.events import scheduled_event
from glueline.shared.gluerun import ACTIVE_RUN_STATES

STACKS = ("embedded", "compose")


class StackUnavailable(RuntimeError):
    """This machine cannot run the stack asked for (no Java, no PostgreSQL binaries, no Docker engine)."""


@dataclass
class Pipeline:
    """The pipeline deployed on a running stack, reached with the standard AWS configuration (the
    stack's endpoints are in this process's environment while it runs) and PostgreSQL."""

    settings: Settings
    stack: EmbeddedStack | ComposeStack
    info: StackInfo | ComposeInfo
    db: DbConnection  # as this process reaches the database
    deployed_db: DbConnection  # as the pipeline reaches it (the secret's value)
    bucket: str
    state_dir: Path
    _faults: StackFaults | None = None

    @property
    def composed(self) -> bool:
        return isinstance(self.stack, ComposeStack)

    def client(self, service: str) -> Any:
        return boto3.client(service)

    # -- files in, outcomes out ----------------------------------------------------------------------

    def upload(self, *paths: Path) -> list[Upload]:
        """Put files under source/ as a bank would; each S3 event starts the pipeline."""
        return upload(self.client("s3"), self.bucket, list(paths), self.target)

    def upload_bytes(self, directory: Path, name: str, data: bytes) -> Upload:
        """Write ``data`` to ``directory/name`` and upload it (a test's file made on the spot)."""
        path = directory / name
        path.write_bytes(data)
        return self.upload(path)[0]

    def wait(self, uploads: list[Upload], timeout: float = 240) -> list[AuditRecord]:
        """The audit items of ``uploads`` once each has an outcome of this upload (COMPLETED or REJECTED,
        or FAILED: then the file waits in source/ for a retry), in upload order; AssertionError after
        ``timeout`` seconds, naming what is still waiting."""
        records = wait_for_outcomes(self.audit, uploads, timeout, Console(quiet=True))
        missing = [u.key for u, r in zip(uploads, records, strict=True) if r is None]
        assert not missing, f"no outcome within {timeout}s for {missing}"
        return [r for r in records if r is not None]

    def record(self, file: Upload | str) -> AuditRecord | None:
        """A file's audit item (by its upload or FileID), or None."""
        return self.audit.get(file if isinstance(file, str) else file.file_id)

    @property
    def audit(self) -> AuditTable:
        return AuditTable(self.client("dynamodb"), self.settings.audit_table)

    def keys(self, prefix: str) -> list[str]:
        """The object keys under ``prefix`` (``source/``, ``processed/``, ``rejected/``)."""
        listing = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"] != prefix)

    # -- the target table ----------------------------------------------------------------------------

    @property
    def target(self) -> str:
        """Where the pipeline loads: the stack's database's table, by the name the pipeline uses."""
        return self.deployed_db.target(str(self.settings.table))

    def rows(self) -> list[dict[str, Any]]:
        """Every row of the target table as a dict by column name, in TransactionID order."""
        with psycopg.connect(**self.db.connect_kwargs(), row_factory=dict_row) as conn:
            table = schema.identifier(self.settings.table)
            statement = sql.SQL("SELECT * FROM {} ORDER BY transactionid").format(table)
            return conn.execute(statement).fetchall()

    def query(self, statement: str, *params: Any) -> list[tuple]:
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            return conn.execute(statement, params).fetchall()

    def execute(self, statement: str) -> None:
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            conn.execute(statement)

    # -- Glue and the Lambda -------------------------------------------------------------------------

    def glue_runs(self) -> list[dict]:
        return self.client("glue").get_job_runs(JobName=self.settings.glue_job)["JobRuns"]

    def finished_run(self, run_id: str, timeout: float = 120) -> dict:
        """The Glue run once it has ended."""
        return finished_run(self.client("glue"), self.settings.glue_job, run_id, timeout)

    def invoke_schedule(self) -> dict:
        """Invoke the Lambda with the daily schedule's event, as EventBridge does at 08:00."""
        # A synchronous invocation answers when the function ends, which may be its timeout (it waits for
        # the single Glue slot): read for longer, as `glueline trigger` does.
        read_timeout = self.settings.lambda_timeout_seconds + 30
        lam = boto3.client("lambda", config=botocore.config.Config(read_timeout=read_timeout))
        event = scheduled_event("000000000000", self.info.region, self.settings.schedule_rule)
        response = lam.invoke(FunctionName=self.settings.lambda_function, Payload=json.dumps(event).encode())
        assert "FunctionError" not in response, response["Payload"].read()
        return json.loads(response["Payload"].read())

    def lambda_log_messages(self, since: float = 0) -> list[str]:
        """Every message the Lambda logged at or after ``since`` (epoch seconds), across all its log
        streams (a page holds at most 50 streams)."""
        logs = self.client("logs")
        group = f"/aws/lambda/{self.settings.lambda_function}"
        return [
            event["message"]
            for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group)
            for stream in page["logStreams"]
            for event in logs.get_log_events(
                logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True
            )["events"]
            if event["timestamp"] / 1000 >= since
        ]

    def log_texts(self) -> dict[str, str]:
        """Every log of the stack: its services' and every Glue run's output."""
        if isinstance(self.stack, ComposeStack):
            runs = "cat /home/hadoop/glue-runner/runs/*/*/*.log /home/hadoop/glue-runner/*.log 2>/dev/null"
            return {
                "compose logs": self.stack.compose("logs", "--no-color").stdout,
                "glue run logs": self.stack.compose("exec", "-T", "glue", "sh", "-c", runs, check=False).stdout,
            }
        paths = [
            *(self.state_dir / "logs").glob("*.log"),  # emulator, Glue runner
            *(
                Path(self.info.postgres_dir).glob("*.log")
                if isinstance(self.info, StackInfo) and self.info.postgres_dir
                else []
            ),
            *(self.state_dir / "glue-runner").rglob("*.log"),  # every job run's output
        ]
        return {str(path): path.read_text(errors="replace") for path in paths}

    # -- the stack -----------------------------------------------------------------------------------

    def bootstrap(self, settings: Settings | None = None) -> list[Change]:
        """Deploy (again) as ``glueline bootstrap`` does against this stack: a changed job script or
        library is what the next run uses."""
        return _bootstrap(settings or self.settings, self.deployed_db, self.info).run()

    @contextmanager
    def deployed_with(self, **changes: Any) -> Iterator[Settings]:
        """The pipeline deployed with some settings changed (a shorter Timeout, other bounds on the
        database) within the block (``settings`` says so meanwhile: blocks nest), and as before after it."""
        before = self.settings
        self.settings = before.model_copy(update=changes)
        try:
            self.bootstrap()
            yield self.settings
        finally:
            self.settings = before
            self.bootstrap()

    @property
    def faults(self) -> StackFaults:
        """Break the stack's parts on purpose: kill or hang the database, restart the emulator, …"""
        if self._faults is None:
            self._faults = StackFaults(self.stack, self.info, self.db)
        return self._faults

    def restart_emulator(self) -> None:
        """Stop the emulator cleanly (it saves its state) and start it again."""
        self.faults.restart_emulator()
        self.info = self.faults.info

    @contextmanager
    def open_transaction(self, statement: str) -> Iterator[psycopg.Connection]:
        """Another session of the database that ran ``statement`` in a transaction it keeps open (with the
        locks it took) until the block ends: a reader or a lock the pipeline meets."""
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            conn.execute(statement)
            try:
                yield conn
            finally:
                conn.rollback()

    def reset(self) -> None:
        """Back to an empty pipeline: wait for Glue runs to end, then delete every object under source/,
        processed/ and rejected/, every audit item (the days' tallies too), the table's rows and the load
        ledger's."""
        idle = lambda: not any(r["JobRunState"] in ACTIVE_RUN_STATES for r in self.glue_runs())  # noqa: E731
        wait_for(idle, 300, "the Glue runs of an earlier test to end", interval=0.5)
        s3 = self.client("s3")
        for prefix in (layout.SOURCE, layout.PROCESSED, layout.REJECTED):
            for key in self.keys(prefix):
                s3.delete_object(Bucket=self.bucket, Key=key)
        ddb = self.client("dynamodb")
        audit = self.settings.audit_table
        for page in ddb.get_paginator("scan").paginate(TableName=audit, ProjectionExpression="FileID"):
            for item in page.get("Items", []):
                ddb.delete_item(TableName=audit, Key={"FileID": item["FileID"]})
        table = self.settings.table
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(schema.identifier(table)))
            made = conn.execute("SELECT to_regclass(%s) IS NOT NULL", [schema.ledger(table).as_string(conn)]).fetchone()
            if made and made[0]:  # by the first load
                conn.execute(sql.SQL("TRUNCATE {}").format(schema.ledger(table)))


def finished_run(glue: Any, job: str, run_id: str, timeout: float = 120, interval: float = 0.5) -> dict:
    """A run of ``job``, once it has ended, from whichever Glue endpoint ``glue`` speaks to."""

    def ended() -> dict | None:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        return run if run["JobRunState"] not in ACTIVE_RUN_STATES else None

    return wait_for(ended, timeout, f"Glue run {run_id} to end", interval=interval)


@contextmanager
def running_pipeline(stack: str = "embedded", *, environment: Mapping[str, str] | None = None) -> Iterator[Pipeline]:
    """Start a stack of its own (own state directory, own free ports; a compose project of its own), deploy
    the pipeline and yield its handle; afterwards stop it and delete all it made. While it
    runs, this process's environment points boto3 at it; ``environment`` is added too, and the stack's
    processes inherit it. Raises StackUnavailable when this machine cannot run ``stack``."""
    if stack not in STACKS:
        raise ValueError(f"stack: one of {', '.join(STACKS)}, not {stack!r}")
    _check_can_run(stack)
    saved_environment = dict(os.environ)
    state_dir = Path(tempfile.mkdtemp(prefix=f"glueline-test-{stack}-"))
    os.chmod(state_dir, 0o755)  # the PostgreSQL user must be able to enter it
    settings = Settings(state_dir=state_dir).model_copy(update=LOCAL_STACK_SETTINGS)
    os.environ.update(environment or {})
    try:
        if stack == "compose":
            composed = ComposeStack(settings)
            try:
                info = composed.start(log=lambda message: None)
                yield _deployed(settings, composed, info, info.db_here, info.deployed_db, state_dir)
            finally:
                composed.clean()  # its containers, network and volumes
        else:
            embedded = EmbeddedStack(settings)
            started = embedded.start()
            try:
                db = started.db()
                yield _deployed(settings, embedded, started, db, db, state_dir)
            finally:
                embedded.stop()
    finally:
        os.environ.clear()
        os.environ.update(saved_environment)
        shutil.rmtree(state_dir, ignore_errors=True)


def _check_can_run(stack: str) -> None:
    if stack == "compose":
        if not engine_answers():
            raise StackUnavailable("the compose stack needs a Docker engine (docker info fails)")
        return
    if shutil.which("java") is None:
        raise StackUnavailable("the embedded stack needs Java 17 to run Spark")
    try:
        find_bin_dir()
    except PostgresError as error:
        raise StackUnavailable(str(error)) from error


def _bootstrap(settings: Settings, deployed_db: DbConnection, info: StackInfo | ComposeInfo) -> Bootstrap:
    """``glueline bootstrap`` against the stack (on compose, the Lambda reaches Glue by the runner's name)."""
    function_glue_endpoint = info.function_glue_endpoint if isinstance(info, ComposeInfo) else None
    return Bootstrap(settings, deployed_db, log=lambda change: None, function_glue_endpoint=function_glue_endpoint)


def _deployed(settings, stack, info, db, deployed_db, state_dir) -> Pipeline:
    apply_aws_env(info)
    boot = _bootstrap(settings, deployed_db, info)
    boot.run()
    return Pipeline(settings, stack, info, db, deployed_db, boot.bucket, state_dir)
