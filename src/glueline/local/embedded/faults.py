"""The embedded stack's faults: its processes killed, stopped, restarted; its database's filesystem filled
(where it has one of its own: ``glueline.local.faults.small_filesystem``)."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg

from glueline.local.embedded.postgres import PostgresServer
from glueline.local.faults import PRIVILEGED, TASK_COPY, FaultUnavailable, StackFaults
from glueline.shared.dbsecret import DbConnection

Restart = Callable[[bool], None]  # stop a service (SIGKILL with True: a crash) and start it again


class EmbeddedFaults(StackFaults):
    """``postgres``: the stack's server (None: started without one); ``runs``: the Glue runner's runs;
    ``restart_emulator``, ``restart_glue_runner``: the stack's own (``RunningEmbedded``)."""

    def __init__(
        self,
        db: DbConnection | None,
        postgres: PostgresServer | None,
        runs: Path,
        restart_emulator: Restart,
        restart_glue_runner: Restart,
    ):
        super().__init__(db)
        self.postgres = postgres
        self.runs = runs
        self._restart_emulator = restart_emulator
        self._restart_glue_runner = restart_glue_runner

    def _postgres(self) -> PostgresServer:
        if self.postgres is None:
            raise FaultUnavailable("the embedded stack was started without its database")
        return self.postgres

    def stop_database(self, crash: bool = False) -> None:
        self._postgres().stop(mode="immediate" if crash else "fast")

    def start_database(self) -> None:
        self._postgres().start()

    def kill_database(self) -> None:
        processes = self._postgres_processes()
        for process in processes:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=10)
        self.start_database()

    def _postgres_processes(self) -> list[psutil.Process]:
        pid = self._postgres().postmaster_pid()
        if pid is None:
            raise FaultUnavailable("the embedded database is not running")
        postmaster = psutil.Process(pid)
        return [postmaster, *postmaster.children(recursive=True)]

    @contextmanager
    def database_hung(self) -> Iterator[None]:
        """SIGSTOP of every server process."""
        processes = self._postgres_processes()
        try:
            _signal_each(processes, signal.SIGSTOP)
            yield
        finally:  # every process continued, also when one had gone (the soak found one gone mid-hang)
            _signal_each(processes, signal.SIGCONT)

    def _database_network(self) -> tuple[list[str], int]:
        """This machine's: the server listens on 127.0.0.1."""
        return PRIVILEGED, self._postgres().port

    @contextmanager
    def disk_full(self) -> Iterator[None]:
        """Then, as an operator would, the server started again if it stopped (PostgreSQL shuts down when
        it cannot write its log). Only where the database has a filesystem of its own: filling this
        machine's disk would break more than the database."""
        root = self._postgres().root
        if not os.path.ismount(root):
            raise FaultUnavailable(
                f"{root} is not a filesystem of its own (see glueline.local.faults.small_filesystem)"
            )
        ballast = root / "ballast"
        with open(ballast, "wb") as out:
            free = shutil.disk_usage(root).free
            try:
                os.posix_fallocate(out.fileno(), 0, free)
            except OSError:  # as much as there is
                chunk = b"\0" * (1 << 20)
                try:
                    while True:
                        out.write(chunk)
                except OSError:
                    pass
        try:
            yield
        finally:
            ballast.unlink(missing_ok=True)
            if not self._postgres().is_running():
                self.start_database()

    def kill_task_worker(self) -> int | None:
        """The worker is found by its socket: the local end of the connection whose backend runs it."""
        with psycopg.connect(**self.db.connect_kwargs(), autocommit=True) as conn:
            ports = {
                port
                for (port,) in conn.execute(
                    "SELECT client_port FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
                    "AND query LIKE %s",
                    [TASK_COPY],
                )
            }
        server = self._postgres().port
        ends = {(port, server) for port in ports}  # (the worker's port, the server's) of each such connection
        for connection in psutil.net_connections(kind="tcp"):
            if connection.pid and connection.raddr and (connection.laddr.port, connection.raddr.port) in ends:
                with contextlib.suppress(psutil.NoSuchProcess):
                    psutil.Process(connection.pid).send_signal(signal.SIGKILL)
                    return connection.pid
        return None

    def restart_emulator(self, kill: bool = False) -> None:
        self._restart_emulator(kill)

    def restart_glue_runner(self, kill: bool = False) -> None:
        self._restart_glue_runner(kill)

    def kill_glue_run(self, job_name: str, run_id: str) -> bool:
        run_dir = self.runs / job_name / run_id
        try:
            pid = int((run_dir / "pid").read_text())
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            return False
        return True


def _signal_each(processes: list[psutil.Process], signum: int) -> None:
    """Signal every process of the list; one that has exited meanwhile needs none."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)
