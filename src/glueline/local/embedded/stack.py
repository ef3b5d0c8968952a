"""The embedded local stack: an AWS emulator, the local Glue runner and PostgreSQL, as processes.

    MiniStack (S3, EventBridge, Lambda, DynamoDB, IAM, Secrets Manager)   127.0.0.1:<emulator_port>
    glueline Glue runner (the Glue API, jobs run with local PySpark)      127.0.0.1:<glue_runner_port>
    PostgreSQL (the RDS stand-in)                                          127.0.0.1:<postgres_port>

Processes run detached from the command that started them; ``<state_dir>/stack.json`` records them so
``glueline down`` (or the next ``glueline run``) can find them. Logs are under ``<state_dir>/logs``.
State survives ``down``/``up``: PostgreSQL's data directory and the emulator's saved state (bucket,
objects, audit table, functions, rules) are under ``<state_dir>``; ``glueline clean`` deletes them. When
the state directory is where PostgreSQL's system user cannot go (run as root from a private home
directory), the database lives in ``/var/lib/glueline/<id>/postgres`` instead, recorded in
``<state_dir>/postgres.location``; ``up``, ``down`` and ``clean`` find it there.
Clients reach the stack through the standard AWS configuration (``glueline.local.aws_config``).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import cached_property, partial
from pathlib import Path

import psutil
import psycopg

from glueline.job import schema
from glueline.local.aws_config import CONFLICTING_AWS_VARIABLES, stack_aws_env, write_aws_profile
from glueline.local.embedded.faults import EmbeddedFaults
from glueline.local.embedded.postgres import PostgresError, PostgresServer, find_bin_dir, service_user_can_reach
from glueline.local.inner_loop import DEBUG_PORT, SPARK_HISTORY_PORT, SPARK_UI_PORT, InnerLoop
from glueline.local.ports import port_of, remembered_port
from glueline.local.processes import alive, kill_group, log_tail, terminate_group, wait_healthy
from glueline.local.runner.history import history_server
from glueline.local.running import RecordedEndpoints, StackError
from glueline.polling import url_answers
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection

# Where the database goes when the state directory is out of reach of PostgreSQL's system user.
OUTSIDE_POSTGRES_ROOT = Path("/var/lib/glueline")

# Set for the emulator when ``Settings.emulator_durable`` (see glueline.local.embedded.emulator).
DURABLE_VARIABLE = "GLUELINE_EMULATOR_DURABLE"
REQUEST_LOG_VARIABLE = "GLUELINE_EMULATOR_REQUEST_LOG"  # the requests it answers, a JSON line each


@dataclass
class EmbeddedRecord:
    """What ``<state_dir>/stack.json`` records of a started stack."""

    emulator_url: str
    glue_url: str
    region: str
    pids: dict[str, int]
    postgres_dir: str | None
    postgres_port: int | None
    started_at: float


@dataclass
class RunningEmbedded(RecordedEndpoints):
    """The embedded stack that runs (a ``RunningStack``)."""

    stack: EmbeddedStack
    record: EmbeddedRecord
    kind = "embedded"

    @property
    def state_dir(self) -> Path:
        return self.stack.state_dir

    def describe(self, started: bool = False) -> str:
        state, postgres = self.stack.state_dir, self.record.postgres_dir
        where = f"embedded stack {'started ' if started else ''}in {state}"
        if postgres is None or Path(postgres).parent == state:
            return where
        return (
            f"{where}, its database in {postgres} (PostgreSQL's system user cannot enter "
            f"{state}; `glueline clean` deletes both)"
        )

    emulator_name = "MiniStack"

    @cached_property
    def postgres(self) -> PostgresServer | None:
        """Its server (once: finding its binaries and its system user asks the machine)."""
        record = self.record
        if record.postgres_dir is None or record.postgres_port is None:
            return None
        return PostgresServer(Path(record.postgres_dir), record.postgres_port, self.stack.settings.postgres_bin_dir)

    @property
    def deployed_db(self) -> DbConnection | None:
        """The database is on this machine's 127.0.0.1, for the pipeline's processes as for this one."""
        return self.postgres.connection if self.postgres else None

    @property
    def db_here(self) -> DbConnection | None:
        return self.deployed_db

    function_glue_endpoint = None  # the Lambda runs on this machine: Glue is where this process reaches it

    @property
    def database_files(self) -> str | None:
        return self.record.postgres_dir

    @property
    def logs_where(self) -> str:
        return str(self.stack.log_dir)

    def follow_logs(self, follow: bool) -> int:
        return self.stack.follow_logs(follow)

    def log_texts(self) -> dict[str, str]:
        paths = [
            *self.stack.log_dir.glob("*.log"),  # emulator, Glue runner
            *(Path(self.record.postgres_dir).glob("*.log") if self.record.postgres_dir else []),
            *(self.state_dir / "glue-runner").rglob("*.log"),  # every job run's output
        ]
        return {str(path): path.read_text(errors="replace") for path in paths}

    def inner_loop(self, debug_port: int | None = None, history_port: int | None = None) -> InnerLoop:
        """The runner is a process here: everything on 127.0.0.1, the ports as asked (else the usual ones)."""
        debug_address = f"127.0.0.1:{debug_port or DEBUG_PORT}"
        return InnerLoop(
            debug_listen=debug_address,
            debug_attach=debug_address,
            debug_root=str(self.state_dir / "glue-runner" / "debug"),
            launch_config="glueline: attach to the Glue run",
            spark_ui_url=f"http://127.0.0.1:{SPARK_UI_PORT}",
            spark_ui_moves=True,
            spark_history_port=history_port or SPARK_HISTORY_PORT,
        )

    @contextmanager
    def history_server(self, port: int | None = None) -> Iterator[str]:
        """Spark's history server here, bound to 127.0.0.1, over the runner's event logs."""
        events = self.state_dir / "glue-runner" / "spark-events"
        log = self.stack.log_dir / "spark-history.log"
        with history_server(events, self.inner_loop(history_port=port).spark_history_port, log) as url:
            yield url

    @property
    def faults(self) -> EmbeddedFaults:
        runs = self.state_dir / "glue-runner" / "runs"
        return EmbeddedFaults(self.db_here, self.postgres, runs, self.restart_emulator, self.restart_glue_runner)

    def memory(self) -> dict[str, int]:
        postmaster = self.postgres.postmaster_pid() if self.postgres else None
        return {
            "emulator": tree_rss([self.record.pids["emulator"]]),
            "glue_runner_and_runs": tree_rss([self.record.pids["glue_runner"]]),
            "postgres": tree_rss([postmaster] if postmaster else []),
        }

    def restart_emulator(self, kill: bool = False) -> None:
        """Stop the emulator — cleanly (it saves its state), or with ``kill`` a SIGKILL: a crash — and
        start it again on the same port."""
        self._restart("emulator", kill, lambda: self.stack.start_emulator(port_of(self.emulator_url)))

    def restart_glue_runner(self, kill: bool = False) -> None:
        """The same for the Glue runner (its runs' processes outlive a crash of it; it ends them when it
        starts, and their runs fail, as a run whose host died)."""
        self._restart("glue_runner", kill, lambda: self.stack.start_glue_runner(self.record))

    def _restart(self, name: str, kill: bool, start: Callable[[], int]) -> None:
        """As the state directory records the stack now (another handle may have restarted a part)."""
        current = self.stack.running()
        if current is None:
            raise StackError(f"no running stack to restart the {name} of")
        self.record = current.record
        (kill_group if kill else terminate_group)(self.record.pids[name])
        self.record.pids[name] = start()
        self.stack.save(self.record)

    def stop(self) -> None:
        self.stack.stop()


class EmbeddedStack:
    """The embedded stack of a state directory (a ``LocalStack``)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.state_dir = Path(settings.state_dir).absolute()
        self.state_file = self.state_dir / "stack.json"
        self.log_dir = self.state_dir / "logs"

    def unavailable(self) -> str | None:
        if shutil.which("java") is None:
            return "the embedded stack needs Java 17 to run Spark"
        try:
            find_bin_dir(self.settings.postgres_bin_dir)
        except PostgresError as error:
            return str(error)
        return None

    def follow_logs(self, follow: bool) -> int:
        """Its log files' last lines (and, with ``follow``, what comes), running or not."""
        files = sorted(self.log_dir.glob("*.log"))
        if not files:
            raise StackError(f"no logs in {self.log_dir}: is a stack running (`glueline up -d`)?")
        try:
            return subprocess.run(["tail", "-n", "100", *(["-F"] if follow else []), *map(str, files)]).returncode
        except KeyboardInterrupt:
            return 0

    def _recorded(self) -> EmbeddedRecord | None:
        if not self.state_file.exists():
            return None
        return EmbeddedRecord(**json.loads(self.state_file.read_text()))

    def save(self, record: EmbeddedRecord) -> None:
        self.state_file.write_text(json.dumps(asdict(record), indent=2))

    # -- discovery ----------------------------------------------------------------------------------

    def running(self) -> RunningEmbedded | None:
        """The stack recorded in the state directory, if all its processes still answer."""
        record = self._recorded()
        if record is None:
            return None
        if all(alive(pid) for pid in record.pids.values()) and url_answers(record.emulator_url + "/_ministack/health"):
            return RunningEmbedded(self, record)
        return None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, *, with_postgres: bool = True, log: Callable[[str], None] = print) -> RunningEmbedded:
        """Start the emulator, the Glue runner and (``with_postgres``) the database; ``log`` hears nothing
        here (the processes start in seconds)."""
        if self.running():
            raise StackError(f"a stack is already running (see {self.state_file}); `glueline down` stops it")
        self.stop()  # clear what a crashed stack left behind
        self.log_dir.mkdir(parents=True, exist_ok=True)
        region = self.settings.region
        pids: dict[str, int] = {}
        postgres_dir, postgres_port = None, None
        try:
            if with_postgres:
                postgres_port = self._port("postgres", self.settings.postgres_port)
                postgres_dir = str(self.postgres_dir())
                db = PostgresServer(Path(postgres_dir), postgres_port, self.settings.postgres_bin_dir).start()
                # The embedded database comes with the pipeline's table, ready to look at (the job
                # creates it too, when it starts: on AWS that is where it comes from).
                with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
                    conn.execute(schema.create_target(self.settings.table))
            emulator_port = self._port("emulator", self.settings.emulator_port)
            pids["emulator"] = self.start_emulator(emulator_port)
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            glue_url = f"http://127.0.0.1:{self._port('glue_runner', self.settings.glue_runner_port)}"
            record = EmbeddedRecord(emulator_url, glue_url, region, pids, postgres_dir, postgres_port, time.time())
            pids["glue_runner"] = self.start_glue_runner(record)
        except BaseException:
            self._stop_processes(pids, postgres_dir, postgres_port)
            raise
        self.save(record)
        write_aws_profile(self.state_dir, record.emulator_url, record.glue_url, record.region)
        return RunningEmbedded(self, record)

    def stop(self) -> bool:
        """Stop whatever the state directory records; True when something was running."""
        record = self._recorded()
        if record is None:
            return False
        self._stop_processes(record.pids, record.postgres_dir, record.postgres_port)
        self.state_file.unlink(missing_ok=True)
        return True

    def clean(self) -> list[str]:
        """Stop the stack and delete its state (the database too, wherever it is); what was deleted."""
        self.stop()
        deleted = []
        location = self.state_dir / "postgres.location"
        if location.exists():
            outside = Path(location.read_text().strip())
            shutil.rmtree(outside.parent, ignore_errors=True)
            deleted.append(str(outside))
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            deleted.append(str(self.state_dir))
        return deleted

    def postgres_dir(self) -> Path:
        """Where the embedded database lives: ``<state_dir>/postgres``, unless PostgreSQL's system user
        cannot reach it; then under OUTSIDE_POSTGRES_ROOT, recorded so later commands find it."""
        location = self.state_dir / "postgres.location"
        if location.exists():
            return Path(location.read_text().strip())
        inside = self.state_dir / "postgres"
        if service_user_can_reach(inside.parent):
            return inside
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:12]
        outside = OUTSIDE_POSTGRES_ROOT / f"{self.state_dir.parent.name}-{digest}" / "postgres"
        self.state_dir.mkdir(parents=True, exist_ok=True)
        location.write_text(f"{outside}\n")
        return outside

    def _stop_processes(self, pids: dict[str, int], postgres_dir: str | None, postgres_port: int | None) -> None:
        for pid in pids.values():
            terminate_group(pid)
        if postgres_dir and Path(postgres_dir, "data").exists():
            PostgresServer(Path(postgres_dir), postgres_port or 0, self.settings.postgres_bin_dir).stop()

    def _port(self, name: str, configured: int) -> int:
        return remembered_port(self.state_dir / "ports.json", name, configured)

    def start_glue_runner(self, record: EmbeddedRecord) -> int:
        aws_env = stack_aws_env(record.emulator_url, record.glue_url, record.region)
        runner_env = {**aws_env, "PYSPARK_PYTHON": sys.executable}
        pid = self._spawn(
            "glue-runner",
            [
                sys.executable,
                "-m",
                "glueline.local.runner",
                "--port",
                str(port_of(record.glue_url)),
                "--state-dir",
                str(self.state_dir / "glue-runner"),
                "--standby",  # a warm job process waits for the next run (see glueline.local.runner.standby)
            ],
            runner_env,
            drop=CONFLICTING_AWS_VARIABLES,
        )
        wait_healthy("the Glue runner", record.glue_url + "/", partial(log_tail, self.log_dir / "glue-runner.log"))
        return pid

    def start_emulator(self, port: int) -> int:
        """MiniStack (and the Glue service's events, see glueline.local.embedded.emulator), its state kept
        under ``<state_dir>/emulator`` across restarts (S3 objects are written through to disk; the other
        services are saved on a clean shutdown)."""
        state = self.state_dir / "emulator"
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o700)  # it holds the secrets Secrets Manager keeps (the database password)
        pid = self._spawn(
            "emulator",
            [sys.executable, "-m", "glueline.local.embedded.emulator"],
            {
                "GATEWAY_PORT": str(port),
                "BIND_HOST": "127.0.0.1",
                "MINISTACK_REGION": self.settings.region,
                "PERSIST_STATE": "1",
                "STATE_DIR": str(state),
                "S3_PERSIST": "1",
                "S3_DATA_DIR": str(state / "s3"),
                DURABLE_VARIABLE: "1" if self.settings.emulator_durable else "0",
            },
        )
        health = f"http://127.0.0.1:{port}/_ministack/health"
        wait_healthy("the AWS emulator", health, partial(log_tail, self.log_dir / "emulator.log"))
        return pid

    def _spawn(self, name: str, argv: list[str], env: dict[str, str], drop=()) -> int:
        environ = {k: v for k, v in os.environ.items() if k not in drop}
        with open(self.log_dir / f"{name}.log", "ab") as log:
            process = subprocess.Popen(
                argv,
                env={**environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                cwd=self.state_dir,
            )
        return process.pid


def tree_rss(pids: list[int]) -> int:
    """Resident memory of these processes and all their descendants, in bytes."""
    total = 0
    for pid in pids:
        try:
            root = psutil.Process(pid)
            for process in [root, *root.children(recursive=True)]:
                total += process.memory_info().rss
        except psutil.Error:
            continue
    return total
