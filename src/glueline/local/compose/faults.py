"""The compose stack's faults: its containers killed, stopped, restarted, paused, disconnected."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from glueline.local.compose.engine import ENGINE_CALL_SECONDS
from glueline.local.faults import PRIVILEGED, FaultUnavailable, StackFaults
from glueline.local.processes import bounded_run
from glueline.shared.dbsecret import DbConnection

# Where the Glue runner keeps its runs in its container (see docker-compose.yml).
RUNS_DIR = "/home/hadoop/glue-runner/runs"
# The names of the networks a container is on, as ``docker inspect --format`` prints them.
_NETWORK_NAMES = "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}"


class Project(Protocol):
    """What the faults do to a compose project (``ComposeStack``)."""

    def compose(self, *args: str, check: bool = True) -> subprocess.CompletedProcess: ...

    def wait_healthy(self, timeout: float, services: tuple[str, ...]) -> None: ...

    def restart_service(self, service: str, *, kill: bool = False) -> None: ...


class ComposeFaults(StackFaults):
    def __init__(self, db: DbConnection, project: Project):
        super().__init__(db)
        self.compose = project

    def stop_database(self, crash: bool = False) -> None:
        self.compose.compose("kill" if crash else "stop", "postgres")

    def start_database(self) -> None:
        self.compose.compose("start", "postgres")
        self.compose.wait_healthy(120, ("postgres",))

    def kill_database(self) -> None:
        self.compose.restart_service("postgres", kill=True)

    @contextmanager
    def database_hung(self) -> Iterator[None]:
        """``docker pause``: the cgroup freezer stops the container's every process."""
        self.compose.compose("pause", "postgres")
        try:
            yield
        finally:
            self.compose.compose("unpause", "postgres")

    def _database_network(self) -> tuple[list[str], int]:
        """The postgres container's namespace, entered from here with nsenter."""
        return [*PRIVILEGED, "nsenter", "--target", self._pid("postgres"), "--net"], 5432

    def _container(self, service: str) -> str:
        return self.compose.compose("ps", "--quiet", service).stdout.strip()

    def _pid(self, service: str) -> str:
        inspect = ["docker", "inspect", "--format", "{{.State.Pid}}", self._container(service)]
        return bounded_run(inspect, ENGINE_CALL_SECONDS, capture_output=True, text=True).stdout.strip()

    @contextmanager
    def disk_full(self) -> Iterator[None]:
        raise FaultUnavailable("the compose database's disk is the Docker engine's: not filled here")
        yield

    def restart_emulator(self, kill: bool = False) -> None:
        self.compose.restart_service("aws", kill=kill)

    def restart_glue_runner(self, kill: bool = False) -> None:
        self.compose.restart_service("glue", kill=kill)

    def kill_glue_run(self, job_name: str, run_id: str) -> bool:
        script = f'kill -9 -"$(cat {RUNS_DIR}/{job_name}/{run_id}/pid)"'  # dash: no "--"
        return self.compose.compose("exec", "-T", "glue", "sh", "-c", script, check=False).returncode == 0

    def restart_container(self, service: str, kill: bool = False) -> None:
        if kill:
            self.compose.restart_service(service, kill=True)
        else:
            self.compose.compose("restart", service)
            self.compose.wait_healthy(120, (service,))

    @contextmanager
    def glue_disconnected(self) -> Iterator[None]:
        container = self._container("glue")
        inspect = ["docker", "inspect", "--format", _NETWORK_NAMES, container]
        networks = bounded_run(inspect, ENGINE_CALL_SECONDS, capture_output=True, text=True, check=True).stdout.split()
        for network in networks:
            disconnect = ["docker", "network", "disconnect", "--force", network, container]
            bounded_run(disconnect, ENGINE_CALL_SECONDS, check=True)
        try:
            yield
        finally:
            for network in networks:
                connect = ["docker", "network", "connect", "--alias", "glue", network, container]
                bounded_run(connect, ENGINE_CALL_SECONDS, check=True)
