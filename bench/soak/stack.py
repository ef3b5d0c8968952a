"""The stack a soak runs on, started for it and stopped after, whatever happens in between.

Embedded: MiniStack durable (a kill -9 loses nothing it acknowledged) and logging every request it
answers, whose counts price the run (see glueline.local.embedded.emulator); PostgreSQL on a filesystem of
its own (a tmpfs, so that "disk full" fills only the database's disk, where this process may mount).
Compose: the compose stack as ``make up STACK=compose`` starts it, in a project of its own, deleted with
its volumes after.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import boto3
import botocore.config
import psycopg
from psycopg import sql

from glueline.console.data import ConsoleData
from glueline.local.aws_config import environment_restored
from glueline.local.embedded.stack import REQUEST_LOG_VARIABLE
from glueline.local.faults import StackFaults, small_filesystem
from glueline.local.processes import termination_raises
from glueline.local.running import RunningStack
from glueline.local.stacks import local_stack
from glueline.ops.deploy.deployer import deployer_for
from glueline.ops.target import resolve_target
from glueline.ops.uploads import count_rows
from glueline.settings import Settings
from glueline.shared.audit import AuditTable
from glueline.shared.dbsecret import DbConnection
from glueline.shared.events import scheduled_event

# The database's own filesystem: room for a soak's rows, staging tables and write-ahead log.
DATABASE_FILESYSTEM_MB = 6_000
SOAK_ACCESS_KEY_ID = "SOAKBENCHCLIENT"
# Clients of the soak itself ride out an emulator restart (a few seconds) instead of failing.
PATIENT = botocore.config.Config(retries={"max_attempts": 20, "mode": "standard"}, read_timeout=360)


@dataclass
class SoakStack:
    settings: Settings
    running: RunningStack
    db: DbConnection  # as the soak reaches the database
    target: str  # the pipeline's target, as FileIDs name it
    account: str
    bucket: str
    state_dir: Path
    disk_full_possible: bool

    @property
    def kind(self) -> str:
        return self.running.kind

    @cached_property
    def faults(self) -> StackFaults:
        return self.running.faults

    def client(self, service: str):
        """The soak's own clients (the bank's uploads, the operator, the verdict) sign with their own
        access key id, so the emulator's request log tells their requests from the pipeline's."""
        return boto3.client(service, config=PATIENT, aws_access_key_id=SOAK_ACCESS_KEY_ID, aws_secret_access_key="test")

    @property
    def audit(self) -> AuditTable:
        return AuditTable(self.client("dynamodb"), self.settings.audit_table)

    def operator(self) -> ConsoleData:
        """The console's actions (retry a file, run the sweep), as an operator uses them."""
        lam = self.client("lambda")

        def sweep() -> None:
            event = scheduled_event(self.account, self.settings.region, self.settings.schedule_rule)
            lam.invoke(
                FunctionName=self.settings.lambda_function, InvocationType="Event", Payload=json.dumps(event).encode()
            )

        return ConsoleData(
            self.audit,
            self.client("glue"),
            self.client("s3"),
            self.client("logs"),
            self.settings.glue_job,
            str(self.settings.table),
            lambda: count_rows(self.db, self.settings.table),
            sweep,
        )

    def query(self, statement: str, *params):
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            return conn.execute(statement, params).fetchall()

    @property
    def request_log(self) -> Path | None:
        """Every request the emulator answered since the pipeline was deployed (the embedded stack's, which
        keeps one for the soak), or None."""
        log = self.state_dir / "requests.jsonl"
        return log if log.exists() else None


@contextmanager
def soak_stack(work: Path, kind: str, settings: Settings | None = None) -> Iterator[SoakStack]:
    """Start the stack, deploy the pipeline; stop and delete everything on the way out (also on SIGTERM
    and Ctrl-C)."""
    state_dir = work / "state"
    state_dir.mkdir(parents=True)
    os.chmod(work, 0o755)
    os.chmod(state_dir, 0o755)  # PostgreSQL's user must be able to enter it
    with termination_raises(), ExitStack() as cleanup:
        cleanup.enter_context(environment_restored())
        settings = (settings or Settings()).model_copy(update={"state_dir": state_dir})
        disk_full_possible = False
        if kind == "embedded":
            settings = settings.model_copy(update={"emulator_durable": True})
            disk_full_possible = cleanup.enter_context(small_filesystem(state_dir / "postgres", DATABASE_FILESYSTEM_MB))
            os.environ[REQUEST_LOG_VARIABLE] = str(state_dir / "requests.jsonl")
        stack = local_stack(settings, kind)
        why = stack.unavailable()
        if why:
            raise SystemExit(f"STACK={kind}: {why}")
        # Stopped on the way out. The compose project's volumes, outside the work directory, go too; the
        # embedded stack's state is the work directory's (kept with --keep, with its logs) and its database
        # may sit on a filesystem still mounted there.
        cleanup.callback(stack.clean if kind == "compose" else stack.stop)
        running = stack.start(log=lambda message: None)
        target = cleanup.enter_context(resolve_target(settings, stack=running))
        db = target.database.here
        assert db is not None
        if kind == "embedded":
            # As RDS does, a commit is answered once it is on disk: the embedded server's default
            # (synchronous_commit off, for speed) would let a kill -9 take back a load the pipeline saw committed.
            with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
                conn.execute(sql.SQL("ALTER DATABASE {} SET synchronous_commit = on").format(sql.Identifier(db.dbname)))
        deployer = deployer_for(target)
        deployer.deploy()
        if kind == "embedded":
            (state_dir / "requests.jsonl").write_text("")  # the pipeline's requests from here on, not deploy's
        yield SoakStack(
            target.settings,
            running,
            db,
            deployer.rows_target,
            target.account,
            target.bucket,
            state_dir,
            disk_full_possible,
        )
