"""One real stack for the integration tests: the embedded one (MiniStack, the Glue runner, PostgreSQL as
processes) or, with ``--stack compose``, the compose stack (the same in containers; see tests/conftest.py).

Each test starts from an empty pipeline: no Glue run active, no objects under source/, processed/ or
rejected/, no audit items, an empty target table.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import boto3
import botocore.config
import psycopg
import pytest
from psycopg import sql
from rich.console import Console

from glueline.local.compose import ComposeInfo, ComposeStack, engine_answers
from glueline.local.faults import FaultUnavailable, StackFaults
from glueline.local.stack import LOCAL_STACK_SETTINGS, EmbeddedStack, StackInfo, apply_aws_env
from glueline.local.stack.postgres import PostgresError, find_bin_dir
from glueline.ops.deploy.models import Change
from glueline.ops.deploy.planner import Bootstrap
from glueline.ops.packaging import bundled
from glueline.ops.uploads import Upload, upload, wait_for_outcomes
from glueline.polling import wait_for
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, AuditTable
from glueline.shared.dbsecret import DbConnection
from glueline.shared.events import scheduled_event
from glueline.shared.lifecycle import ACTIVE_RUN_STATES

from ..access.iam import CALL_LOG_VARIABLE, RECORDER_DIR

SAMPLES = bundled("samples")


@dataclass
class Pipeline:
    settings: Settings
    stack: EmbeddedStack | ComposeStack
    info: StackInfo | ComposeInfo
    db: DbConnection  # as the tests reach the database
    deployed_db: DbConnection  # as the pipeline reaches it (the secret's value)
    bucket: str
    state_dir: Path
    _faults: StackFaults | None = None

    @property
    def composed(self) -> bool:
        return isinstance(self.stack, ComposeStack)

    @property
    def function_glue_endpoint(self) -> str | None:
        return self.info.function_glue_endpoint if self.composed else None

    def bootstrap(self, settings: Settings | None = None) -> list[Change]:
        """Deploy (again) as ``glueline bootstrap`` does against this stack."""
        boot = Bootstrap(
            settings or self.settings,
            self.deployed_db,
            log=lambda change: None,
            function_glue_endpoint=self.function_glue_endpoint,
        )
        return boot.run()

    @property
    def faults(self) -> StackFaults:
        if self._faults is None:
            self._faults = StackFaults(self.stack, self.info, self.db)
        return self._faults

    def stop_database(self, crash: bool = False) -> None:
        self.faults.stop_database(crash)

    def start_database(self) -> None:
        self.faults.start_database()

    @contextmanager
    def database_cut_off(self) -> Iterator[None]:
        """See StackFaults.database_cut_off; CI must be able to cut (.ci/run installs nftables)."""
        try:
            with self.faults.database_cut_off():
                yield
        except FaultUnavailable as why:
            if os.environ.get("CI"):
                pytest.fail(f"CI must cut networks: {why}")
            pytest.skip(str(why))

    def database_hung(self):
        return self.faults.database_hung()

    @contextmanager
    def open_transaction(self, statement: str) -> Iterator[psycopg.Connection]:
        """A session of someone else's that ran ``statement`` in a transaction it keeps open (and the
        locks it took) until the block ends."""
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            conn.execute(statement)
            try:
                yield conn
            finally:
                conn.rollback()

    def restart_emulator(self) -> None:
        """Stop the emulator cleanly (it saves its state) and start it again."""
        self.faults.restart_emulator()
        self.info = self.faults.info

    def log_texts(self) -> dict[str, str]:
        """Every log of the stack: its services' and every Glue run's output."""
        if self.composed:
            runs = "cat /home/hadoop/glue-runner/runs/*/*/*.log /home/hadoop/glue-runner/*.log 2>/dev/null"
            return {
                "compose logs": self.stack.compose("logs", "--no-color").stdout,
                "glue run logs": self.stack.compose("exec", "-T", "glue", "sh", "-c", runs, check=False).stdout,
            }
        paths = [
            *(self.state_dir / "logs").glob("*.log"),  # emulator, Glue runner
            *(Path(self.info.postgres_dir)).glob("*.log"),
            *(self.state_dir / "glue-runner").rglob("*.log"),  # every job run's output
        ]
        return {str(path): path.read_text(errors="replace") for path in paths}

    def client(self, service: str):
        return boto3.client(service)

    @property
    def audit(self) -> AuditTable:
        return AuditTable(self.client("dynamodb"), self.settings.audit_table)

    def tallies_disagree(self) -> dict[str, tuple]:
        return self.audit.tallies_disagree()

    @property
    def target(self) -> str:
        """Where the pipeline loads: the stack's database's table, by the name the pipeline uses."""
        return self.deployed_db.target(str(self.settings.table))

    def upload(self, *paths: Path) -> list[Upload]:
        return upload(self.client("s3"), self.bucket, list(paths), self.target)

    def upload_bytes(self, tmp_path: Path, name: str, data: bytes) -> Upload:
        path = tmp_path / name
        path.write_bytes(data)
        return self.upload(path)[0]

    def wait(self, uploads: list[Upload], timeout: float = 240) -> list[AuditRecord]:
        records = wait_for_outcomes(self.audit, uploads, timeout, Console(quiet=True))
        assert all(r is not None for r in records), f"no outcome within {timeout}s: {records}"
        return records

    def keys(self, prefix: str) -> list[str]:
        listing = self.client("s3").list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in listing.get("Contents", []) if o["Key"] != prefix)

    @property
    def aws_call_log(self) -> Path:
        """The AWS calls the Lambda and the Glue job made, one JSON line each."""
        return Path(os.environ[CALL_LOG_VARIABLE])

    def query(self, statement: str, *params):
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            return conn.execute(statement, params).fetchall()

    def execute(self, statement: str) -> None:
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            conn.execute(statement)

    def glue_runs(self) -> list[dict]:
        return self.client("glue").get_job_runs(JobName=self.settings.glue_job)["JobRuns"]

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

    def finished_run(self, run_id: str, timeout: float = 120) -> dict:
        glue = self.client("glue")

        def ended() -> dict | None:
            run = glue.get_job_run(JobName=self.settings.glue_job, RunId=run_id)["JobRun"]
            return run if run["JobRunState"] not in ACTIVE_RUN_STATES else None

        return wait_for(ended, timeout, f"Glue run {run_id} to end", interval=0.5)

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

    def reset(self) -> None:
        idle = lambda: not any(r["JobRunState"] in ACTIVE_RUN_STATES for r in self.glue_runs())  # noqa: E731
        wait_for(idle, 300, "the Glue runs of an earlier test to end", interval=0.5)
        s3 = self.client("s3")
        for prefix in (layout.SOURCE, layout.PROCESSED, layout.REJECTED):
            for key in self.keys(prefix):
                s3.delete_object(Bucket=self.bucket, Key=key)
        ddb = self.client("dynamodb")  # every item: the files', the days' tallies and the list of days
        table = self.settings.audit_table
        for page in ddb.get_paginator("scan").paginate(TableName=table, ProjectionExpression="FileID"):
            for item in page.get("Items", []):
                ddb.delete_item(TableName=table, Key={"FileID": item["FileID"]})
        with psycopg.connect(**self.db.connect_kwargs()) as conn:
            conn.execute(sql.SQL("TRUNCATE {}").format(self.settings.table.identifier()))


@pytest.fixture(scope="session")
def pipeline(request):
    if request.config.getoption("--stack") == "compose":
        yield from _compose_pipeline()
    else:
        yield from _embedded_pipeline()


def _embedded_pipeline():
    if shutil.which("java") is None:
        pytest.skip("Java 17 is needed to run Spark")
    try:
        find_bin_dir()
    except PostgresError as error:
        pytest.skip(str(error))
    state_dir = Path(tempfile.mkdtemp(prefix="glueline-it-"))
    os.chmod(state_dir, 0o755)  # the PostgreSQL user must be able to enter it
    saved_environment = dict(os.environ)
    # The stack's processes inherit both: the Lambda's and the job's AWS calls are recorded (see
    # tests/access/record/sitecustomize.py) for the access test on the stack.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(RECORDER_DIR), os.environ.get("PYTHONPATH")]))
    os.environ[CALL_LOG_VARIABLE] = str(state_dir / "aws-calls.jsonl")
    settings = Settings(state_dir=state_dir).model_copy(update=LOCAL_STACK_SETTINGS)
    stack = EmbeddedStack(settings)
    info = stack.start()
    try:
        apply_aws_env(info)
        db = info.db()
        boot = Bootstrap(settings, db, log=lambda change: None)
        boot.run()
        yield Pipeline(settings, stack, info, db, db, boot.bucket, state_dir)
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved_environment)
        shutil.rmtree(state_dir, ignore_errors=True)


def _compose_pipeline():
    """A compose project of its own (its own ports, volumes and network), deleted with its volumes after."""
    if not engine_answers():
        pytest.fail("--stack compose needs a Docker engine (docker info fails)")
    state_dir = Path(tempfile.mkdtemp(prefix="glueline-it-compose-"))
    saved_environment = dict(os.environ)
    settings = Settings(state_dir=state_dir).model_copy(update=LOCAL_STACK_SETTINGS)
    stack = ComposeStack(settings)
    try:
        info = stack.start(log=lambda message: None)
        apply_aws_env(info)
        boot = Bootstrap(
            settings, info.deployed_db, log=lambda change: None, function_glue_endpoint=info.function_glue_endpoint
        )
        boot.run()
        yield Pipeline(settings, stack, info, info.db_here, info.deployed_db, boot.bucket, state_dir)
    finally:
        stack.clean()
        os.environ.clear()
        os.environ.update(saved_environment)
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture
def clean_pipeline(pipeline):
    pipeline.reset()
    return pipeline
