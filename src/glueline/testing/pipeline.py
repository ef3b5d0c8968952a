"""A deployed pipeline on a local stack, as a test drives it: upload, wait, look (see glueline.testing)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import botocore.config
import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from rich.console import Console

from glueline.job import schema
from glueline.local.aws_config import environment_restored
from glueline.local.faults import StackFaults
from glueline.local.running import RunningStack
from glueline.local.stacks import KINDS, local_stack
from glueline.ops.deploy.deployer import Deployer, deployer_for
from glueline.ops.deploy.models import Change
from glueline.ops.target import Target, resolve_target
from glueline.ops.uploads import Upload, upload, wait_for_outcomes
from glueline.polling import wait_for
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, AuditTable
from glueline.shared.dbsecret import DbConnection
from glueline.shared.gluerun import ACTIVE_RUN_STATES, stream_events


class StackUnavailable(RuntimeError):
    """This machine cannot run the stack asked for (no Java, no PostgreSQL binaries, no Docker engine)."""


@dataclass
class Pipeline:
    """The pipeline deployed on a running stack, reached with the standard AWS configuration (the
    stack's endpoints are in this process's environment while it runs) and PostgreSQL."""

    target: Target  # the stack as every command resolves it (glueline.ops.target)
    deployer: Deployer

    @property
    def stack(self) -> RunningStack:
        assert self.target.stack is not None
        return self.target.stack

    @property
    def settings(self) -> Settings:
        """As deployed now (``deployed_with`` changes them for a while)."""
        return self.deployer.settings

    @property
    def bucket(self) -> str:
        return self.target.bucket

    @property
    def state_dir(self) -> Path:
        return Path(self.settings.state_dir)

    @property
    def db(self) -> DbConnection:
        """The database as this process reaches it."""
        here = self.target.database.here
        assert here is not None
        return here

    def client(self, service: str) -> Any:
        return self.target.client(service)

    # -- files in, outcomes out ----------------------------------------------------------------------

    def upload(self, *paths: Path) -> list[Upload]:
        """Put files under source/ as a bank would; each S3 event starts the pipeline."""
        return upload(self.client("s3"), self.bucket, list(paths), self.rows_target)

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
    def rows_target(self) -> str:
        """Where the pipeline loads: the stack's database's table, by the name the pipeline uses."""
        return self.deployer.rows_target

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
        lam = self.target.client("lambda", botocore.config.Config(read_timeout=read_timeout))
        event = self.target.schedule_event()
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
            for event in stream_events(logs, group, stream["logStreamName"])[0]
            if event["timestamp"] / 1000 >= since
        ]

    def log_texts(self) -> dict[str, str]:
        """Every log of the stack: its services' and every Glue run's output."""
        return self.stack.log_texts()

    # -- the stack -----------------------------------------------------------------------------------

    def deploy(self) -> list[Change]:
        """Deploy (again) as ``glueline deploy`` does against this stack: a changed job script or library
        is what the next run uses."""
        return self.deployer.deploy()

    @contextmanager
    def deployed_with(self, **changes: Any) -> Iterator[Settings]:
        """The pipeline deployed with some settings changed (a shorter Timeout, other bounds on the
        database) within the block (``settings`` says so meanwhile: blocks nest), and as before after it."""
        with self.deployer.deployed_with(**changes) as settings:
            yield settings

    @cached_property
    def faults(self) -> StackFaults:
        """Break the stack's parts on purpose: kill or hang the database, restart the emulator, …"""
        return self.stack.faults

    def restart_emulator(self) -> None:
        """Stop the emulator cleanly (it saves its state) and start it again."""
        self.faults.restart_emulator()

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
        """Back to an empty pipeline: stop the Glue runs an earlier test left (a run queued behind a busy
        one would start, find nothing to do and end, one after another) and wait for their end, then
        delete every object under source/, processed/ and rejected/, every audit item (the days' tallies
        too), the table's rows and the load ledger's."""
        glue, job = self.client("glue"), self.settings.glue_job
        active = [r["Id"] for r in self.glue_runs() if r["JobRunState"] in ACTIVE_RUN_STATES]
        for first in range(0, len(active), 25):  # BatchStopJobRun takes 25 at most
            glue.batch_stop_job_run(JobName=job, JobRunIds=active[first : first + 25])
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
    if stack not in KINDS:
        raise ValueError(f"stack: one of {', '.join(KINDS)}, not {stack!r}")
    with ExitStack() as cleanup:
        state_dir = Path(tempfile.mkdtemp(prefix=f"glueline-test-{stack}-"))
        cleanup.callback(shutil.rmtree, state_dir, ignore_errors=True)
        # The PostgreSQL user must pass through it to its data directory: enter, not list (bandit's B103
        # flags any bit for others; this one is the least that lets the server's user through).
        os.chmod(state_dir, 0o711)  # nosec B103
        settings = Settings(state_dir=state_dir)
        local = local_stack(settings, stack)
        why = local.unavailable()
        if why:
            raise StackUnavailable(why)
        cleanup.enter_context(environment_restored())
        os.environ.update(environment or {})
        cleanup.callback(local.clean)  # its processes or containers, its state, its volumes
        running = local.start(log=lambda message: None)
        target = cleanup.enter_context(resolve_target(settings, stack=running))
        deployer = deployer_for(target)
        deployer.deploy()
        yield Pipeline(target, deployer)
