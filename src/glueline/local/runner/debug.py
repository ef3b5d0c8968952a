"""A Glue run whose driver waits for a debugger (``glueline run --debug``).

The job's argument ``--glueline-debug HOST:PORT`` (deploy sets it from ``GLUELINE_GLUE_DEBUG``; AWS Glue
would pass it to the script, which ignores it) makes the runner start the run's driver under debugpy,
listening on that address and waiting for a client before the script's first line. The run's code is laid
out at a fixed place, so an editor maps the repository's files onto it once (``.vscode/launch.json``):

    <runner state>/debug/script/ETL_Job_to_RDS.py  the deployed script  ← services/glue/
    <runner state>/debug/lib/glueline/…            the deployed library  ← src/glueline/

(the library is unzipped there: a debugger sets no breakpoint inside a zip). One run at a time is
debugged — the job's MaxConcurrentRuns is 1 — and never on the warm standby, which started without
debugpy. Breakpoints hit in the driver; Spark's Python workers (the COPY of a partition) run without it.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

from glueline.artifacts import DEBUG_ARGUMENT


def debug_address(arguments: dict[str, str]) -> str | None:
    return arguments.get(DEBUG_ARGUMENT) or None


def lay_out(state_dir: Path, script: str, py_files: list[str]) -> tuple[str, list[str]]:
    """Copy the run's script to ``debug/script/`` and unzip its extra files into ``debug/lib/`` (the
    previous debugged run's copies go); the script's path and the run's library path there."""
    root = state_dir / "debug"
    shutil.rmtree(root, ignore_errors=True)
    (root / "script").mkdir(parents=True)
    (root / "lib").mkdir()
    laid_script = shutil.copy(script, root / "script")
    for path in py_files:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                archive.extractall(root / "lib")
        else:
            shutil.copy(path, root / "lib")
    return str(laid_script), [str(root / "lib")]


def debugpy_command(address: str) -> list[str]:
    """The driver's command before its script: debugpy listening on ``address``, waiting for a client."""
    return [sys.executable, "-m", "debugpy", "--listen", address, "--wait-for-client"]
