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
Clients reach the stack through the standard AWS configuration: ``aws_env()`` gives the variables, and
``<state_dir>/aws-config`` holds the same as a profile for the AWS CLI.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import psycopg

from glueline.job import schema
from glueline.local.inner_loop import DEBUG_PORT, SPARK_HISTORY_PORT, SPARK_UI_PORT, InnerLoop
from glueline.local.stack.postgres import PostgresServer, service_user_can_reach
from glueline.polling import url_answers, wait_for
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection

# Where the database goes when the state directory is out of reach of PostgreSQL's system user.
OUTSIDE_POSTGRES_ROOT = Path("/var/lib/glueline")

EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
# Variables that would send an embedded-stack client anywhere but the stack.
_CONFLICTING_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")


# Set for the emulator when ``Settings.emulator_durable`` (see glueline.local.stack.emulator).
DURABLE_VARIABLE = "GLUELINE_EMULATOR_DURABLE"
REQUEST_LOG_VARIABLE = "GLUELINE_EMULATOR_REQUEST_LOG"  # the requests it answers, a JSON line each


class StackError(RuntimeError):
    pass


@dataclass
class StackInfo:
    emulator_url: str
    glue_url: str
    region: str
    pids: dict[str, int]
    postgres_dir: str | None
    postgres_port: int | None
    started_at: float

    def aws_env(self) -> dict[str, str]:
        return stack_aws_env(self.emulator_url, self.glue_url, self.region)

    def db(self, bin_dir: Path | None = None) -> DbConnection | None:
        if self.postgres_dir is None:
            return None
        return PostgresServer(Path(self.postgres_dir), self.postgres_port, bin_dir).connection

    def inner_loop(
        self, settings: Settings, debug_port: int | None = None, history_port: int | None = None
    ) -> InnerLoop:
        """The runner is a process here: everything on 127.0.0.1, the ports as asked (else the usual ones)."""
        debug_address = f"127.0.0.1:{debug_port or DEBUG_PORT}"
        return InnerLoop(
            debug_listen=debug_address,
            debug_attach=debug_address,
            debug_root=str(Path(settings.state_dir).absolute() / "glue-runner" / "debug"),
            launch_config="glueline: attach to the Glue run",
            spark_ui_url=f"http://127.0.0.1:{SPARK_UI_PORT}",
            spark_ui_moves=True,
            spark_history_port=history_port or SPARK_HISTORY_PORT,
        )


def stack_aws_env(emulator_url: str, glue_url: str, region: str) -> dict[str, str]:
    """The standard AWS variables that point a client at a local stack: the emulator, Glue at the runner."""
    return {
        "AWS_ENDPOINT_URL": emulator_url,
        "AWS_ENDPOINT_URL_GLUE": glue_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **EMULATOR_CREDENTIALS,
    }


# MiniStack drops an asynchronous invocation that the function's reserved concurrency throttles, where
# AWS retries it for up to six hours: on the stacks glueline starts the Lambda is deployed without
# reserved concurrency (deploy to AWS keeps the setting, GLUELINE_LAMBDA_RESERVED_CONCURRENCY).
LOCAL_STACK_SETTINGS = {"lambda_reserved_concurrency": 0}


def apply_aws_env(info: StackInfo, environ=os.environ) -> None:
    """Point this process's AWS clients at the stack (and nowhere else)."""
    for name in _CONFLICTING_AWS_VARIABLES:
        environ.pop(name, None)
    environ.update(info.aws_env())


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedStack:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.state_dir = Path(settings.state_dir).absolute()
        self.state_file = self.state_dir / "stack.json"
        self.log_dir = self.state_dir / "logs"

    # -- discovery ----------------------------------------------------------------------------------

    def running(self) -> StackInfo | None:
        """The stack recorded in the state directory, if all its processes still answer."""
        if not self.state_file.exists():
            return None
        info = StackInfo(**json.loads(self.state_file.read_text()))
        if all(_alive(pid) for pid in info.pids.values()) and url_answers(info.emulator_url + "/_ministack/health"):
            return info
        return None

    # -- lifecycle ----------------------------------------------------------------------------------

    def start(self, with_postgres: bool = True) -> StackInfo:
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
            emulator_url = f"http://127.0.0.1:{emulator_port}"
            pids["emulator"] = self._start_emulator(emulator_port)
            glue_port = self._port("glue_runner", self.settings.glue_runner_port)
            glue_url = f"http://127.0.0.1:{glue_port}"
            info = StackInfo(emulator_url, glue_url, region, pids, postgres_dir, postgres_port, time.time())
            pids["glue_runner"] = self._start_glue_runner(info)
        except BaseException:
            self._stop_processes(pids, postgres_dir, postgres_port)
            raise
        self.state_file.write_text(json.dumps(asdict(info), indent=2))
        write_aws_profile(self.state_dir, info.emulator_url, info.glue_url, info.region)
        return info

    def stop(self) -> bool:
        """Stop whatever the state directory records; True when something was running."""
        if not self.state_file.exists():
            return False
        info = StackInfo(**json.loads(self.state_file.read_text()))
        self._stop_processes(info.pids, info.postgres_dir, info.postgres_port)
        self.state_file.unlink(missing_ok=True)
        return True

    def clean(self) -> list[Path]:
        """Stop the stack and delete its state (the database too, wherever it is); what was deleted."""
        self.stop()
        deleted = []
        location = self.state_dir / "postgres.location"
        if location.exists():
            outside = Path(location.read_text().strip())
            shutil.rmtree(outside.parent, ignore_errors=True)
            deleted.append(outside)
        if self.state_dir.exists():
            shutil.rmtree(self.state_dir)
            deleted.append(self.state_dir)
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

    def _start_glue_runner(self, info: StackInfo) -> int:
        runner_env = {**info.aws_env(), "PYSPARK_PYTHON": sys.executable}
        pid = self._spawn(
            "glue-runner",
            [
                sys.executable,
                "-m",
                "glueline.local.runner",
                "--port",
                str(_port_of(info.glue_url)),
                "--state-dir",
                str(self.state_dir / "glue-runner"),
                "--standby",  # a warm job process waits for the next run (see glueline.local.runner.standby)
            ],
            runner_env,
            drop=_CONFLICTING_AWS_VARIABLES,
        )
        wait_healthy("the Glue runner", info.glue_url + "/", partial(log_tail, self.log_dir / "glue-runner.log"))
        return pid

    def _start_emulator(self, port: int) -> int:
        """MiniStack (and the Glue service's events, see glueline.local.stack.emulator), its state kept
        under ``<state_dir>/emulator`` across restarts (S3 objects are written through to disk; the other
        services are saved on a clean shutdown)."""
        state = self.state_dir / "emulator"
        state.mkdir(parents=True, exist_ok=True)
        state.chmod(0o700)  # it holds the secrets Secrets Manager keeps (the database password)
        pid = self._spawn(
            "emulator",
            [sys.executable, "-m", "glueline.local.stack.emulator"],
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

    def restart_emulator(self, kill: bool = False) -> StackInfo:
        """Stop the emulator — cleanly (it saves its state), or with ``kill`` a SIGKILL: a crash — and
        start it again on the same port."""
        return self._restart("emulator", kill, lambda info: self._start_emulator(_port_of(info.emulator_url)))

    def restart_glue_runner(self, kill: bool = False) -> StackInfo:
        """The same for the Glue runner (its runs' processes outlive a crash of it; it ends them when it
        starts, and their runs fail, as a run whose host died)."""
        return self._restart("glue_runner", kill, lambda info: self._start_glue_runner(info))

    def _restart(self, name: str, kill: bool, start) -> StackInfo:
        info = self.running()
        if info is None:
            raise StackError(f"no running stack to restart the {name} of")
        if kill:
            _kill_group(info.pids[name])
        else:
            terminate_group(info.pids[name])
        info.pids[name] = start(info)
        self.state_file.write_text(json.dumps(asdict(info), indent=2))
        return info

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


@contextmanager
def termination_raises(exception: type[BaseException] = SystemExit) -> Iterator[None]:
    """Within it, SIGTERM (a ``kill``, a CI job's timeout) raises ``exception`` (its argument 128 + the
    signal, an exit status) like Ctrl-C raises KeyboardInterrupt, so the ``finally`` that stops a stack
    started for a command runs either way. A pytest session passes KeyboardInterrupt: pytest ends the
    session on it and tears its fixtures down, where a SystemExit would only fail the test running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def exit_now(signum, frame):
        raise exception(128 + signum)

    previous = signal.signal(signal.SIGTERM, exit_now)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def remembered_port(memory: Path, name: str, configured: int, probe: bool = True, usual: int = 0) -> int:
    """The configured port, else the one recorded in ``memory`` last time (the saved state refers to it;
    with ``probe``, only if still free), else the ``usual`` one if free, else a free one, recorded."""
    if configured:
        return configured
    ports = json.loads(memory.read_text()) if memory.exists() else {}
    if not ports.get(name) or (probe and not _port_is_free(ports[name])):
        ports[name] = usual if usual and _port_is_free(usual) else free_port()
        memory.parent.mkdir(parents=True, exist_ok=True)
        memory.write_text(json.dumps(ports))
    return ports[name]


def write_aws_profile(state_dir: Path, emulator_url: str, glue_url: str, region: str) -> None:
    """A profile for the AWS CLI: AWS_CONFIG_FILE=<state_dir>/aws-config AWS_PROFILE=glueline."""
    (state_dir / "aws-config").write_text(
        "[profile glueline]\n"
        f"region = {region}\n"
        f"endpoint_url = {emulator_url}\n"
        "services = glueline-local\n"
        "aws_access_key_id = test\n"
        "aws_secret_access_key = test\n\n"
        "[services glueline-local]\n"
        f"glue =\n  endpoint_url = {glue_url}\n"
    )


def _port_is_free(port: int) -> bool:
    """Could a server listen on it? Servers bind with SO_REUSEADDR, so connections of the last run still
    in TIME_WAIT do not make the port taken (the database's port is part of its name, see Target)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is not alive: reap it if it is ours.
    try:
        waited, _ = os.waitpid(pid, os.WNOHANG)
        return waited == 0
    except ChildProcessError:
        return True


SERVICE_START_SECONDS = 60  # a process of the stack (emulator, Glue runner) answers its health check by then


def wait_healthy(service: str, url: str, read_log: Callable[[], str], timeout: float = SERVICE_START_SECONDS) -> None:
    """Wait until ``url`` answers; else a StackError with the service's last log lines (``read_log``: from a
    file here, or from inside a container)."""
    try:
        wait_for(lambda: url_answers(url), timeout, f"{service} to answer at {url}")
    except TimeoutError as err:
        raise StackError(f"{err}; last log lines:\n{read_log()}") from None


def log_tail(log: Path) -> str:
    """A log file's last lines (for wait_healthy)."""
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


def _port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def _kill_group(pid: int) -> None:
    """SIGKILL a process group and wait until its leader is gone (a crash: nothing saved, no goodbye)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    wait_for(lambda: not _alive(pid), 10, f"process {pid} to die", interval=0.05)


def terminate_group(pid: int, grace: float = 15.0) -> None:
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.time() + grace
    while time.time() < deadline and _alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
