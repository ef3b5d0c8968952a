"""Ways to break a running local stack, as an outage would: the fault tests (tests/integration) and the
soak (bench/soak) use them, through ``RunningStack.faults`` (``glueline.local.embedded.faults`` breaks
processes, ``glueline.local.compose.faults`` containers).

Each fault is a method, or a context manager for one that lasts (the database hung, its network cut):
the fault is made on entry and undone on exit, also when the block fails. A fault a stack or this
machine cannot make (no nftables, no privilege to mount, no containers) raises FaultUnavailable saying why.
"""

from __future__ import annotations

import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import psycopg
from psycopg import sql

from glueline.local.processes import bounded_run
from glueline.shared.dbsecret import DbConnection


class FaultUnavailable(RuntimeError):
    """This fault cannot be made on this stack or this machine; the message says why."""


PRIVILEGED = [] if os.geteuid() == 0 else ["sudo", "--non-interactive"]
# A Spark task's statements (glueline.job.schema.copy_into_staging, copy_into_rejects), as pg_stat_activity
# shows them; the driver's COPY of the rejected rows goes TO STDOUT.
TASK_COPY = "COPY % FROM STDIN%"
FAULT_COMMAND_SECONDS = 30  # nft, mount, umount: a fault that cannot be made or undone by then is an error


class StackFaults(ABC):
    """The faults of one running stack; ``db``: the database as this process reaches it (an
    administrator's connection)."""

    def __init__(self, db: DbConnection | None):
        self._db = db

    @property
    def db(self) -> DbConnection:
        if self._db is None:
            raise FaultUnavailable("the stack runs no database of its own")
        return self._db

    # -- the database -------------------------------------------------------------------------------

    @abstractmethod
    def stop_database(self, crash: bool = False) -> None:
        """A clean shutdown, or with ``crash`` one without a checkpoint (immediate / SIGKILL)."""

    @abstractmethod
    def start_database(self) -> None: ...

    @abstractmethod
    def kill_database(self) -> None:
        """kill -9 of the whole server at once (the host lost), then the server started again: it recovers
        from its write-ahead log."""

    @abstractmethod
    def database_hung(self) -> AbstractContextManager[None]:
        """The database stopped in its tracks: its connections stay open and its kernel acknowledges what
        they are sent, but it answers nothing."""

    @abstractmethod
    def _database_network(self) -> tuple[list[str], int]:
        """The command prefix that enters the database's network namespace, and its port there."""

    @contextmanager
    def database_cut_off(self) -> Iterator[None]:
        """The network to the database cut: every packet to or from its port dropped, so that neither
        end hears a reset or a close (a killed host, a pulled cable, a firewall), until the block ends.
        nftables rules in the database's network namespace."""
        version = [*PRIVILEGED, "nft", "--version"]
        can = shutil.which("nft") and bounded_run(version, FAULT_COMMAND_SECONDS, capture_output=True).returncode == 0
        if not can:
            raise FaultUnavailable("cutting the database's network needs root (or sudo) and nftables (nft)")
        namespace, port = self._database_network()
        table = f"glueline_cut_{port}"
        drop = f"tcp dport {port} drop; tcp sport {port} drop;"
        rules = f"""table inet {table} {{
            chain input {{ type filter hook input priority -300; policy accept; {drop} }}
            chain output {{ type filter hook output priority -300; policy accept; {drop} }}
        }}"""
        bounded_run([*namespace, "nft", "-f", "-"], FAULT_COMMAND_SECONDS, input=rules, text=True, check=True)
        try:
            yield
        finally:
            bounded_run([*namespace, "nft", "delete", "table", "inet", table], FAULT_COMMAND_SECONDS, check=True)

    @contextmanager
    def database_refusing(self) -> Iterator[None]:
        """The database refuses new connections ("database … is not currently accepting connections",
        as during maintenance); the connections already open go on."""
        self._allow_connections(False)
        try:
            yield
        finally:
            self._allow_connections(True)

    def _allow_connections(self, allow: bool) -> None:
        """From another database (template1): the pipeline's own is the one refusing."""
        statement = sql.SQL("ALTER DATABASE {} WITH ALLOW_CONNECTIONS {}").format(
            sql.Identifier(self.db.dbname), sql.SQL("true" if allow else "false")
        )
        with psycopg.connect(**{**self.db.connect_kwargs(), "dbname": "template1"}, autocommit=True) as admin:
            # Committed to disk before it answers: the embedded server commits asynchronously, and a
            # kill -9 right after would lose the change (the soak met a database left refusing).
            admin.execute("SET synchronous_commit TO on")
            admin.execute(statement)

    @contextmanager
    def disk_full(self) -> Iterator[None]:
        """The filesystem the database writes to filled to the last byte, until the block ends."""
        raise FaultUnavailable("this stack's database has no disk of its own to fill")
        yield

    def kill_task_worker(self) -> int | None:
        """SIGKILL the Python worker of a Spark task whose COPY into the batch's staging or rejects table
        runs (``TASK_COPY``), as a lost executor would end it; Spark runs the task again. Its pid, or None
        while no such COPY runs."""
        raise FaultUnavailable("a Spark task's worker is a process of the embedded stack's Glue runs")

    # -- the emulator and the Glue runner -----------------------------------------------------------

    @abstractmethod
    def restart_emulator(self, kill: bool = False) -> None:
        """Stop the emulator (cleanly, or SIGKILL with ``kill``) and start it again."""

    @abstractmethod
    def restart_glue_runner(self, kill: bool = False) -> None: ...

    @abstractmethod
    def kill_glue_run(self, job_name: str, run_id: str) -> bool:
        """SIGKILL a Glue run's process group (its driver, Spark's JVM): the run's host lost. False when
        the run has no process (not started yet, or ended)."""

    # -- containers ---------------------------------------------------------------------------------

    def restart_container(self, service: str, kill: bool = False) -> None:
        """``docker kill`` (with ``kill``) or ``docker restart`` of one service's container."""
        raise FaultUnavailable("containers are the compose stack's")

    @contextmanager
    def glue_disconnected(self) -> Iterator[None]:
        """The Glue container's network gone (``docker network disconnect``) until the block ends."""
        raise FaultUnavailable("containers are the compose stack's")
        yield


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[bool]:
    """A tmpfs of ``size_mb`` mounted at ``path`` for the block (so ``disk_full`` can fill it without
    touching the rest of the machine); yields False, mounting nothing, where this process may not
    mount (not root, or no CAP_SYS_ADMIN in a container)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        bounded_run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)],
            FAULT_COMMAND_SECONDS,
            capture_output=True,
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            bounded_run(["umount", "--lazy", str(path)], FAULT_COMMAND_SECONDS, check=False)
