"""Ways to break a running local stack, as an outage would: the fault tests (tests/integration) and the
soak (bench/soak) use them, on the embedded stack (processes) and on the compose stack (containers).

Each fault is a method, or a context manager for one that lasts (the database hung, its network cut):
the fault is made on entry and undone on exit, also when the block fails. A fault this machine cannot
make (no nftables, no privilege to mount) raises FaultUnavailable saying why.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import psycopg
from psycopg import sql

from glueline.local.compose import ComposeInfo, ComposeStack
from glueline.local.stack import EmbeddedStack, StackInfo
from glueline.local.stack.postgres import PostgresServer
from glueline.shared.dbsecret import DbConnection

# Where the compose stack's Glue runner keeps its runs (see docker-compose.yml).
COMPOSE_RUNS_DIR = "/home/hadoop/glue-runner/runs"
# The names of the networks a container is on, as ``docker inspect --format`` prints them.
_NETWORK_NAMES = "{{range $name, $_ := .NetworkSettings.Networks}}{{$name}} {{end}}"


class FaultUnavailable(RuntimeError):
    """This fault cannot be made on this machine; the message says why."""


class StackFaults:
    def __init__(self, stack: EmbeddedStack | ComposeStack, info: StackInfo | ComposeInfo, db: DbConnection):
        self.stack = stack
        self.info = info  # replaced when a restart moves a process
        self.db = db  # as this process reaches the database (an administrator's connection)

    @property
    def composed(self) -> bool:
        return isinstance(self.stack, ComposeStack)

    # -- the database -------------------------------------------------------------------------------

    def _postgres(self) -> PostgresServer:
        return PostgresServer(Path(self.info.postgres_dir), self.info.postgres_port)

    def stop_database(self, crash: bool = False) -> None:
        """A clean shutdown, or with ``crash`` one without a checkpoint (immediate / SIGKILL)."""
        if self.composed:
            self.stack.compose("kill" if crash else "stop", "postgres")
        else:
            self._postgres().stop(mode="immediate" if crash else "fast")

    def start_database(self) -> None:
        if self.composed:
            self.stack.compose("start", "postgres")
            self.stack.wait_healthy(120, ("postgres",))
        else:
            self._postgres().start()

    def kill_database(self) -> None:
        """kill -9 of every server process at once (the host lost), then the server started again: it
        recovers from its write-ahead log."""
        if self.composed:
            self.stack.restart_service("postgres", kill=True)
            return
        processes = self._postgres_processes()
        for process in processes:
            process.send_signal(signal.SIGKILL)
        psutil.wait_procs(processes, timeout=10)
        self.start_database()

    def postmaster(self) -> psutil.Process:
        """The embedded database's server process (its backends are its children)."""
        pid_file = self._postgres().data_dir / "postmaster.pid"
        return psutil.Process(int(pid_file.read_text().split()[0]))

    def _postgres_processes(self) -> list[psutil.Process]:
        postmaster = self.postmaster()
        return [postmaster, *postmaster.children(recursive=True)]

    @contextmanager
    def database_hung(self) -> Iterator[None]:
        """The database stopped in its tracks: its connections stay open and its kernel acknowledges
        what they are sent, but it answers nothing. SIGSTOP on the embedded stack; on the compose stack
        ``docker pause`` (the cgroup freezer: the same, for the container's every process)."""
        if self.composed:
            self.stack.compose("pause", "postgres")
            try:
                yield
            finally:
                self.stack.compose("unpause", "postgres")
            return
        processes = self._postgres_processes()
        try:
            _signal_each(processes, signal.SIGSTOP)
            yield
        finally:  # every process continued, also when one had gone (the soak found one gone mid-hang)
            _signal_each(processes, signal.SIGCONT)

    @contextmanager
    def database_cut_off(self) -> Iterator[None]:
        """The network to the database cut: every packet to or from its port dropped, so that neither
        end hears a reset or a close (a killed host, a pulled cable, a firewall), until the block ends.
        nftables rules in the database's network namespace: this machine's for the embedded stack (its
        server listens on 127.0.0.1), the postgres container's on the compose stack."""
        privileged = [] if os.geteuid() == 0 else ["sudo", "--non-interactive"]
        can = (
            shutil.which("nft")
            and subprocess.run([*privileged, "nft", "--version"], capture_output=True).returncode == 0
        )
        if not can:
            raise FaultUnavailable("cutting the database's network needs root (or sudo) and nftables (nft)")
        if self.composed:
            container = self.stack.compose("ps", "--quiet", "postgres").stdout.strip()
            pid = subprocess.run(
                ["docker", "inspect", "--format", "{{.State.Pid}}", container], capture_output=True, text=True
            ).stdout.strip()
            namespace, port = [*privileged, "nsenter", "--target", pid, "--net"], 5432
        else:
            namespace, port = privileged, self.info.postgres_port
        table = f"glueline_cut_{port}"
        drop = f"tcp dport {port} drop; tcp sport {port} drop;"
        rules = f"""table inet {table} {{
            chain input {{ type filter hook input priority -300; policy accept; {drop} }}
            chain output {{ type filter hook output priority -300; policy accept; {drop} }}
        }}"""
        subprocess.run([*namespace, "nft", "-f", "-"], input=rules, text=True, check=True)
        try:
            yield
        finally:
            subprocess.run([*namespace, "nft", "delete", "table", "inet", table], check=True)

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
        """The filesystem the database writes to filled to the last byte, until the block ends; then, as
        an operator would, the server started again if it stopped (PostgreSQL shuts down when it cannot
        write its log). Embedded stack only, and only where the database has a filesystem of its own
        (see ``small_filesystem``): filling this machine's disk would break more than the database."""
        if self.composed:
            raise FaultUnavailable("the compose database's disk is the Docker engine's: not filled here")
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

    # -- the emulator and the Glue runner -----------------------------------------------------------

    def restart_emulator(self, kill: bool = False) -> None:
        """Stop the emulator (cleanly, or SIGKILL with ``kill``) and start it again."""
        if self.composed:
            self.stack.restart_service("aws", kill=kill)
        else:
            self.info = self.stack.restart_emulator(kill=kill)

    def restart_glue_runner(self, kill: bool = False) -> None:
        if self.composed:
            self.stack.restart_service("glue", kill=kill)
        else:
            self.info = self.stack.restart_glue_runner(kill=kill)

    def kill_glue_run(self, job_name: str, run_id: str) -> bool:
        """SIGKILL a Glue run's process group (its driver, Spark's JVM): the run's host lost. False when
        the run has no process (not started yet, or ended)."""
        if self.composed:
            script = f'kill -9 -"$(cat {COMPOSE_RUNS_DIR}/{job_name}/{run_id}/pid)"'  # dash: no "--"
            return self.stack.compose("exec", "-T", "glue", "sh", "-c", script, check=False).returncode == 0
        run_dir = Path(self.stack.state_dir, "glue-runner", "runs", job_name, run_id)
        try:
            pid = int((run_dir / "pid").read_text())
            os.killpg(pid, signal.SIGKILL)
        except (OSError, ValueError):
            return False
        return True

    # -- containers (the compose stack) ---------------------------------------------------------------

    def restart_container(self, service: str, kill: bool = False) -> None:
        """``docker kill`` (with ``kill``) or ``docker restart`` of one service's container."""
        if not self.composed:
            raise FaultUnavailable("containers are the compose stack's")
        if kill:
            self.stack.restart_service(service, kill=True)
        else:
            self.stack.compose("restart", service)
            self.stack.wait_healthy(120, (service,))

    @contextmanager
    def glue_disconnected(self) -> Iterator[None]:
        """The Glue container's network gone (``docker network disconnect``) until the block ends."""
        if not self.composed:
            raise FaultUnavailable("containers are the compose stack's")
        container = self.stack.compose("ps", "--quiet", "glue").stdout.strip()
        networks = subprocess.run(
            ["docker", "inspect", "--format", _NETWORK_NAMES, container],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.split()
        aliases = ["--alias", "glue"]
        for network in networks:
            subprocess.run(["docker", "network", "disconnect", "--force", network, container], check=True)
        try:
            yield
        finally:
            for network in networks:
                subprocess.run(["docker", "network", "connect", *aliases, network, container], check=True)


@contextmanager
def small_filesystem(path: Path, size_mb: int) -> Iterator[bool]:
    """A tmpfs of ``size_mb`` mounted at ``path`` for the block (so ``disk_full`` can fill it without
    touching the rest of the machine); yields False, mounting nothing, where this process may not
    mount (not root, or no CAP_SYS_ADMIN in a container)."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = (
        subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m,mode=0755", "tmpfs", str(path)], capture_output=True
        ).returncode
        == 0
    )
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "--lazy", str(path)], check=False)


def _signal_each(processes, signum: int) -> None:
    """Signal every process of the list; one that has exited meanwhile needs none."""
    for process in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            process.send_signal(signum)
