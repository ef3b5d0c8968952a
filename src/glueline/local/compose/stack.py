"""The compose stack: the pipeline's AWS side and database in containers (``docker-compose.yml``).

    aws        the emulator, LocalStack 4.14.0 or MiniStack (``GLUELINE_EMULATOR``)  127.0.0.1:<emulator_port>
    glue       glueline's Glue runner on the AWS Glue 5 image                        127.0.0.1:<glue_runner_port>
    postgres   PostgreSQL, the RDS stand-in                                          127.0.0.1:<postgres_port>

Inside the project's network the pipeline reaches them by name: the Lambda calls Glue at
``http://glue:4567``, the job connects to ``postgres:5432``. That is what deploy writes into the function's
environment and the secret (``function_glue_endpoint``, ``deployed_db``); this machine reaches the same
through the published ports (``aws_env()``, ``db_here``).

The compose project is named after the state directory, so its volumes (the database, the emulator's
state) are found again by the next ``up``; ``down`` keeps them, ``clean`` deletes them. The database
password is generated once into ``<state_dir>/compose/postgres-password`` (0600) and handed to the
container as a Compose secret, never as an environment variable or a default in the file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import psycopg

from glueline.artifacts import PACKAGE_DIR
from glueline.job import schema
from glueline.local.aws_config import write_aws_profile
from glueline.local.compose import images
from glueline.local.compose.engine import (
    BUILD_SECONDS,
    COMPOSE_CALL_SECONDS,
    ENGINE_CALL_SECONDS,
    compose_command,
    engine_answers,
)
from glueline.local.compose.faults import ComposeFaults
from glueline.local.inner_loop import DEBUG_PORT, EVERY_INTERFACE, SPARK_HISTORY_PORT, SPARK_UI_PORT, InnerLoop
from glueline.local.ports import remembered_port
from glueline.local.processes import bounded_run, wait_healthy
from glueline.local.running import RecordedEndpoints, StackError
from glueline.polling import wait_for
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection

SERVICES = ("aws", "postgres", "glue")
EMULATORS = ("localstack", "ministack")
FUNCTION_GLUE_ENDPOINT = "http://glue:4567"  # the runner, as the Lambda and the job see it
RUNNER_STATE = "/home/hadoop/glue-runner"  # the runner's state directory in its container (a volume)
DB_NAME = DB_USER = "glueline"


def project_dir() -> Path:
    """The source checkout holding docker-compose.yml (the compose stack runs from a checkout)."""
    root = PACKAGE_DIR.parents[1]
    if not (root / "docker-compose.yml").exists():
        raise StackError(f"the compose stack runs from a source checkout: no docker-compose.yml in {root}")
    return root


@dataclass
class ComposeRecord:
    """What ``<state_dir>/compose.json`` records of a started project."""

    project: str
    emulator: str
    emulator_url: str
    glue_url: str
    postgres_port: int
    region: str
    password_file: str
    debug_port: int = 0  # the Glue runner's inner-loop ports, published on 127.0.0.1 (glueline.local.inner_loop)
    spark_ui_port: int = 0
    spark_history_port: int = 0


@dataclass
class RunningCompose(RecordedEndpoints):
    """The compose stack that runs (a ``RunningStack``)."""

    stack: ComposeStack
    record: ComposeRecord
    kind = "compose"
    function_glue_endpoint = FUNCTION_GLUE_ENDPOINT

    def describe(self, started: bool = False) -> str:
        return f"compose stack {self.record.project} ({self.record.emulator}){', started' if started else ''}"

    @property
    def emulator_name(self) -> str:
        return f"{self.record.emulator}, compose project {self.record.project}"

    @property
    def deployed_db(self) -> DbConnection:
        """The database as the pipeline (the Glue job in the network) reaches it: the secret's value."""
        password = Path(self.record.password_file).read_text().strip()
        return DbConnection(host="postgres", port=5432, dbname=DB_NAME, username=DB_USER, password=password)

    @property
    def db_here(self) -> DbConnection:
        """The same database through its published port on this machine."""
        return dataclasses.replace(self.deployed_db, host="127.0.0.1", port=self.record.postgres_port)

    database_files = None  # in a Docker volume

    logs_where = "`glueline logs` (make logs)"

    def follow_logs(self, follow: bool) -> int:
        args = ["logs", "--tail", "100"] + (["--follow"] if follow else [])
        args += [] if sys.stdout.isatty() else ["--no-color"]
        # Following is the user's own wait: it lasts until they interrupt it.
        bound = None if follow else COMPOSE_CALL_SECONDS
        try:
            return self.stack.compose(*args, capture=False, check=False, timeout=bound).returncode
        except KeyboardInterrupt:
            return 0

    def log_texts(self) -> dict[str, str]:
        runs = f"cat {RUNNER_STATE}/runs/*/*/*.log {RUNNER_STATE}/*.log 2>/dev/null"
        return {
            "compose logs": self.stack.compose("logs", "--no-color").stdout,
            "glue run logs": self.stack.compose("exec", "-T", "glue", "sh", "-c", runs, check=False).stdout,
        }

    def inner_loop(self, debug_port: int | None = None, history_port: int | None = None) -> InnerLoop:
        """The runner is in the glue container: its drivers listen on every interface there, at the usual
        ports, which are published on this machine's 127.0.0.1 at the ports the stack started with."""
        record = self.record
        for asked, published, setting in (
            (debug_port, record.debug_port, "GLUELINE_DEBUG_PORT"),
            (history_port, record.spark_history_port, "GLUELINE_SPARK_HISTORY_PORT"),
        ):
            if asked and asked != published:
                raise StackError(
                    f"the compose stack publishes this port at 127.0.0.1:{published}, not {asked} "
                    f"({setting} chooses it when the stack starts)"
                )
        return InnerLoop(
            debug_listen=f"{EVERY_INTERFACE}:{DEBUG_PORT}",
            debug_attach=f"127.0.0.1:{record.debug_port}",
            debug_root=f"{RUNNER_STATE}/debug",
            launch_config="glueline: attach to the Glue run (compose)",
            spark_ui_url=f"http://127.0.0.1:{record.spark_ui_port}",
            spark_ui_moves=False,
            spark_history_port=record.spark_history_port,
        )

    @contextmanager
    def history_server(self, port: int | None = None) -> Iterator[str]:
        """Spark's history server in the glue container (glueline.local.runner.history), on the port
        compose publishes on this machine's 127.0.0.1."""
        published = self.inner_loop(history_port=port).spark_history_port
        command = ["glue", "python3.11", "-m", "glueline.local.runner.history"]
        self.stack.compose("exec", "-d", *command, "serve", "--state-dir", RUNNER_STATE)
        try:
            url = f"http://127.0.0.1:{published}"
            log = f"{RUNNER_STATE}/logs/spark-history.log"
            wait_healthy(
                "Spark's history server in the glue container",
                url + "/api/v1/applications",
                lambda: self.stack.compose("exec", "-T", "glue", "tail", "-20", log, check=False).stdout,
            )
            yield url
        finally:
            self.stack.compose("exec", "-T", *command, "stop", "--state-dir", RUNNER_STATE, check=False)

    @property
    def faults(self) -> ComposeFaults:
        return ComposeFaults(self.db_here, self.stack)

    def memory(self) -> dict[str, int]:
        """Each service's container, as ``docker stats`` reports its memory."""
        ids = self.stack.compose("ps", "--quiet").stdout.split()
        stats = bounded_run(
            ["docker", "stats", "--no-stream", "--format", "{{.Name}}\t{{.MemUsage}}", *ids],
            COMPOSE_CALL_SECONDS,
            capture_output=True,
            text=True,
        ).stdout
        usage = {}
        for line in stats.splitlines():
            name, _, used = line.partition("\t")
            service = name.removeprefix(self.record.project).strip("_-").rsplit("_", 1)[0].rsplit("-", 1)[0]
            usage[service] = _bytes(used.split("/")[0].strip())
        return usage

    def stop(self) -> None:
        self.stack.stop()


def glue_image(base: str) -> str:
    """The Glue runner's image, one per base image (every project on that base shares it)."""
    return "glueline/glue-runner:" + re.sub(r"[^A-Za-z0-9_.-]+", "-", base).strip("-.")[:120]


class ComposeStack:
    """The compose project of a state directory (a ``LocalStack``)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.state_dir = Path(settings.state_dir).absolute()
        self.state_file = self.state_dir / "compose.json"
        self.project_dir = project_dir()
        digest = hashlib.sha256(str(self.state_dir).encode()).hexdigest()[:8]
        self.project = f"glueline-{digest}"

    @staticmethod
    def made_in(state_dir: Path) -> bool:
        """Has a compose stack ever been started in this state directory?"""
        return (state_dir / "compose.json").exists() or (state_dir / "compose").exists()

    def unavailable(self) -> str | None:
        return None if engine_answers() else "the compose stack needs a Docker engine (docker info fails)"

    # -- configuration: explicit settings, else what `make images-offline` recorded, else upstream -----

    def _setting(self, name: str):
        if name in self.settings.model_fields_set:
            return getattr(self.settings, name)
        return images.recorded().get(name, getattr(self.settings, name))

    @property
    def emulator(self) -> str:
        return self._setting("emulator")

    def _variables(self, ports: dict[str, int]) -> dict[str, str]:
        emulator_image = self._setting(f"{self.emulator}_image")
        return {
            "COMPOSE_PROJECT_NAME": self.project,
            "GLUELINE_NETWORK": self.project,
            "GLUELINE_REGION": self.settings.region,
            "GLUELINE_EMULATOR_IMAGE": emulator_image,
            "GLUELINE_POSTGRES_IMAGE": self._setting("postgres_image"),
            "GLUELINE_GLUE_BASE_IMAGE": self._setting("glue_base_image"),
            "GLUELINE_GLUE_IMAGE": glue_image(self._setting("glue_base_image")),
            "GLUELINE_EMULATOR_PORT": str(ports["emulator"]),
            "GLUELINE_GLUE_RUNNER_PORT": str(ports["glue_runner"]),
            "GLUELINE_POSTGRES_PORT": str(ports["postgres"]),
            "GLUELINE_DEBUG_PORT": str(ports["debug"]),
            "GLUELINE_SPARK_UI_PORT": str(ports["spark_ui"]),
            "GLUELINE_SPARK_HISTORY_PORT": str(ports["spark_history"]),
            "GLUELINE_POSTGRES_PASSWORD_FILE": str(self._password_file()),
        }

    def compose(
        self,
        *args: str,
        variables: dict[str, str] | None = None,
        capture: bool = True,
        check: bool = True,
        timeout: float | None = COMPOSE_CALL_SECONDS,
    ) -> subprocess.CompletedProcess:
        """Run Docker Compose on this stack's files and project (for at most ``timeout`` seconds)."""
        if variables is None:
            variables = self._variables(self._ports(probe=False))
        files = ["-f", str(self.project_dir / "docker-compose.yml")]
        files += ["-f", str(self.project_dir / "compose" / f"{self.emulator}.yml")]
        program = compose_command()
        title = " ".join([*program, *args])  # what the user would type, for messages
        result = bounded_run(
            [*program, *files, "--project-name", self.project, *args],
            timeout,
            title,
            cwd=self.project_dir,
            env={**os.environ, **variables},
            capture_output=capture,
            text=True,
        )
        if check and result.returncode != 0:
            detail = ((result.stderr or "") + (result.stdout or ""))[-3000:] if capture else ""
            raise StackError(f"{title} failed:\n{detail}")
        return result

    # -- lifecycle --------------------------------------------------------------------------------------

    def start(
        self, *, with_postgres: bool = True, log: Callable[[str], None] = print, timeout: float = 600
    ) -> RunningCompose:
        """Build the Glue image, start the project, wait until every service is healthy. The database's
        container runs whatever ``with_postgres`` says (it is part of the project)."""
        if self.emulator not in EMULATORS:
            raise StackError(f"GLUELINE_EMULATOR must be one of {', '.join(EMULATORS)}, not {self.emulator!r}")
        if not engine_answers():
            raise StackError("no Docker engine answers (docker info): start it, or use the embedded stack")
        self.state_dir.mkdir(parents=True, exist_ok=True)
        ports = self._ports()
        variables = self._variables(ports)
        self._check_recorded_images(variables)
        images.glue_wheels(self.project_dir, log)
        log(f"building the Glue image on {variables['GLUELINE_GLUE_BASE_IMAGE']}")
        self.compose("build", "glue", variables=variables, timeout=BUILD_SECONDS)
        log(f"starting compose project {self.project} ({self.emulator})")
        self.compose("up", "--detach", "--no-build", variables=variables)
        self.wait_healthy(timeout)
        record = ComposeRecord(
            project=self.project,
            emulator=self.emulator,
            emulator_url=f"http://127.0.0.1:{ports['emulator']}",
            glue_url=f"http://127.0.0.1:{ports['glue_runner']}",
            postgres_port=ports["postgres"],
            region=self.settings.region,
            password_file=str(self._password_file()),
            debug_port=ports["debug"],
            spark_ui_port=ports["spark_ui"],
            spark_history_port=ports["spark_history"],
        )
        running = RunningCompose(self, record)
        # As on the embedded stack, the database comes with the pipeline's table, ready to look at.
        with psycopg.connect(**running.db_here.connect_kwargs(), autocommit=True) as conn:
            conn.execute(schema.create_target(self.settings.table))
        self.state_file.write_text(json.dumps(asdict(record), indent=2))
        write_aws_profile(self.state_dir, record.emulator_url, record.glue_url, record.region)
        return running

    def _check_recorded_images(self, variables: dict[str, str]) -> None:
        """A stand-in recorded by ``make images-offline`` that this engine no longer has (pruned, another
        engine) would be pulled from a registry that does not have it: say what to do instead."""
        stand_ins = set(images.recorded().values())
        gone = [v for v in variables.values() if v in stand_ins and not images.image_exists(v)]
        if gone:
            raise StackError(
                f"the offline images {', '.join(gone)} are gone from this Docker engine: make images-offline"
            )

    def running(self) -> RunningCompose | None:
        """The stack the state directory records, if every service is up and healthy."""
        if not self.state_file.exists() or not engine_answers():
            return None
        record = ComposeRecord(**json.loads(self.state_file.read_text()))
        return RunningCompose(self, record) if all(state == "healthy" for state in self.health().values()) else None

    def health(self) -> dict[str, str]:
        """Each service's health: healthy, starting, unhealthy, or missing (no running container). Two
        calls to the engine whatever the number of services (Compose itself starts slowly)."""
        states = dict.fromkeys(SERVICES, "missing")
        running = bounded_run(
            ["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={self.project}"],
            ENGINE_CALL_SECONDS,
            capture_output=True,
            text=True,
        ).stdout.split()
        if not running:
            return states
        template = (
            '{{index .Config.Labels "com.docker.compose.service"}} {{.State.Status}} '
            "{{if .State.Health}}{{.State.Health.Status}}{{else}}none{{end}}"
        )
        inspect = ["docker", "inspect", "--format", template, *running]
        for line in bounded_run(inspect, ENGINE_CALL_SECONDS, capture_output=True, text=True).stdout.splitlines():
            service, status, health = line.split()
            if service in states and status == "running":
                states[service] = health
        return states

    def wait_healthy(self, timeout: float = 600, services: tuple[str, ...] = SERVICES) -> None:
        last: dict[str, str] = {}

        def healthy() -> bool:
            last.update(self.health())
            return all(last[s] == "healthy" for s in services)

        try:
            wait_for(healthy, timeout, f"the compose services {', '.join(services)} to be healthy", interval=1)
        except TimeoutError as err:
            sick = [s for s in services if last.get(s) != "healthy"]
            logs = self.compose("logs", "--tail", "40", *sick, check=False).stdout
            raise StackError(f"{err}: {', '.join(f'{s} {last.get(s)}' for s in sick)}\n{logs}") from None

    def stop(self) -> bool:
        """``compose down``: containers and network go, volumes (database, emulator state) stay."""
        if not self.state_file.exists():
            return False
        self.compose("down", "--timeout", "30")
        self.state_file.unlink(missing_ok=True)
        return True

    def clean(self) -> list[str]:
        """``compose down --volumes`` and the state directory's compose files; what was deleted."""
        if not (self.state_file.exists() or self._password_file().exists()):
            return []
        if engine_answers():
            self.compose("down", "--volumes", "--timeout", "30")
        self.state_file.unlink(missing_ok=True)
        shutil.rmtree(self.state_dir / "compose", ignore_errors=True)
        return [f"compose project {self.project} and its volumes"]

    def restart_service(self, service: str, *, kill: bool = False) -> None:
        """Stop a service (SIGKILL with ``kill``: a crash) and start it again, then wait for its health."""
        if kill:
            self.compose("kill", service)
        else:
            self.compose("stop", service)
        self.compose("start", service)
        self.wait_healthy(120, (service,))

    # -- state ------------------------------------------------------------------------------------------

    def _password_file(self) -> Path:
        path = self.state_dir / "compose" / "postgres-password"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.chmod(0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(descriptor, "w") as file:
                file.write(secrets.token_urlsafe(24))
        return path

    def _ports(self, probe: bool = True) -> dict[str, int]:
        """The published ports: configured, else those this state directory used last (checked to be free
        when starting; the running stack holds them otherwise), else free ones."""
        s = self.settings
        return {
            name: remembered_port(self.state_dir / "compose-ports.json", name, configured, probe=probe, usual=usual)
            for name, configured, usual in (
                ("emulator", s.emulator_port, 0),
                ("glue_runner", s.glue_runner_port, 0),
                ("postgres", s.postgres_port, 0),
                ("debug", s.debug_port, DEBUG_PORT),
                ("spark_ui", s.spark_ui_port, SPARK_UI_PORT),
                ("spark_history", s.spark_history_port, SPARK_HISTORY_PORT),
            )
        }


def _bytes(text: str) -> int:
    """``123.4MiB`` → bytes."""
    units = {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "kB": 1e3, "MB": 1e6, "GB": 1e9}
    number = re.match(r"[0-9.]+", text)
    unit = text[number.end() :] if number else "B"
    return int(float(number[0]) * units.get(unit, 1)) if number else 0
