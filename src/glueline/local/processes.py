"""The local stacks' processes: starting nothing, ending and waiting for everything. A stack's service
(the emulator, the Glue runner), a Glue run (its driver and Spark's JVM), a helper server: each runs in a
process group of its own, ended as a whole; a service is up when its health URL answers; a command that
holds a stack up ends it on Ctrl-C and on SIGTERM alike.

Standard library only (and glueline.polling): the Glue runner's container imports it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from glueline.local.running import StackError
from glueline.polling import url_answers, wait_for

STOP_GRACE_SECONDS = 10  # between SIGTERM and SIGKILL, as Glue gives a stopped or timed-out run
SERVICE_START_SECONDS = 60  # a process of a stack (emulator, Glue runner) answers its health check by then
STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def bounded_run(command: list[str], timeout: float | None, what: str = "", **kwargs) -> subprocess.CompletedProcess:
    """``subprocess.run`` that raises StackError naming ``what`` (default: the command) when it takes
    over ``timeout`` seconds (the command is killed then)."""
    try:
        return subprocess.run(command, timeout=timeout, **kwargs)
    except subprocess.TimeoutExpired:
        raise StackError(f"timed out after {timeout:.0f} s waiting for `{what or ' '.join(command)}`") from None


def alive(pid: int) -> bool:
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


def terminate(process: subprocess.Popen) -> None:
    """SIGTERM a child's whole process group, SIGKILL if it lingers (as Glue ends a run's)."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def terminate_group(pid: int, grace: float = 15.0) -> None:
    """The same for a process group this process did not start (a stack's service, found by its pid)."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and alive(pid):
        time.sleep(0.1)
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def kill_group(pid: int) -> None:
    """SIGKILL a process group and wait until its leader is gone (a crash: nothing saved, no goodbye)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        return
    wait_for(lambda: not alive(pid), 10, f"process {pid} to die", interval=0.05)


def end_orphan(run_dir: Path) -> None:
    """A run's process group that outlived its runner (killed, crashed): ended, if it still runs there
    (its working directory is the run's, so a reused process ID is left alone)."""
    try:
        pid = int((run_dir / "pid").read_text())
        if Path(f"/proc/{pid}/cwd").resolve() != run_dir.resolve():
            return
        os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def wait_healthy(service: str, url: str, read_log: Callable[[], str], timeout: float = SERVICE_START_SECONDS) -> None:
    """Wait until ``url`` answers; else a StackError with the service's last log lines (``read_log``:
    from a file here, or from inside a container)."""
    try:
        wait_for(lambda: url_answers(url), timeout, f"{service} to answer at {url}")
    except TimeoutError as err:
        raise StackError(f"{err}; last log lines:\n{read_log()}") from None


def log_tail(log: Path) -> str:
    """A log file's last lines (for wait_healthy)."""
    return log.read_text(errors="replace")[-2000:] if log.exists() else ""


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


def block_stop_signals() -> None:
    """Hold Ctrl-C and SIGTERM for until_stopped: neither interrupts a start or a cleanup, and threads
    started after this inherit the mask, so the signal reaches the waiting thread alone."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)


def until_stopped() -> None:
    """Wait for Ctrl-C or SIGTERM (blocked first, if not already)."""
    block_stop_signals()
    signal.sigwait(STOP_SIGNALS)
