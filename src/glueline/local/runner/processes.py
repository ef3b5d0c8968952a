"""Ending a run's processes: its whole process group (Spark's JVM included), as Glue ends a run's."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

STOP_GRACE_SECONDS = 10  # between SIGTERM and SIGKILL, as Glue gives a stopped or timed-out run


def terminate(process: subprocess.Popen) -> None:
    """SIGTERM the run's whole process group, SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


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
