"""What several integration tests share: sample data, test files made on the spot, a user's shell for
the CLI, waits, and the suite's own stack needs (the AWS-call recorder, the network cut that CI must do).
The stack itself comes from glueline's pytest plugin (glueline.testing): ``glueline`` (reset for the
test) and ``glueline_stack`` (as it is)."""

from __future__ import annotations

import csv
import io
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from glueline.local.faults import FaultUnavailable
from glueline.ops.packaging import bundled
from glueline.shared.contract import COLUMNS
from glueline.testing import Pipeline
from glueline.testing.pipeline import finished_run

from ..access.iam import CALL_LOG_VARIABLE

SAMPLES = bundled("samples")
GLUELINE = str(Path(sys.executable).with_name("glueline"))  # the CLI as a user runs it
HEADER = ",".join(COLUMNS)


def row(tid, **fields) -> str:
    """One CSV record of the contract's columns: a good row unless ``fields`` say otherwise."""
    values = {
        "TransactionID": str(tid),
        "AccountNumber": "ACC0001",
        "CustomerID": "4242",
        "TransactionDate": "2024-07-13",
        "TransactionType": "deposit",
        "TransactionAmount": "10.00",
        "Currency": "USD",
        "AccountBalance": "100.00",
        "BranchCode": "7",
        "MerchantCode": "12",
        "Description": "ok",
    }
    values.update(fields)
    out = io.StringIO()
    csv.writer(out, lineterminator="").writerow([values[c] for c in COLUMNS])
    return out.getvalue()


def user_shell(kind: str) -> tuple[Path, dict[str, str]]:
    """A state directory of its own (PostgreSQL's user may enter it) and the environment a user's shell
    would give the CLI: no AWS configuration, so the embedded stack of that directory."""
    state = Path(tempfile.mkdtemp(prefix=f"glueline-{kind}-"))
    os.chmod(state, 0o755)
    return state, _shell_environment(state)


def cli_environment(pipeline: Pipeline) -> dict[str, str]:
    """A user's shell beside the running stack: no AWS configuration, the stack's state directory."""
    return _shell_environment(pipeline.state_dir)


def _shell_environment(state: Path) -> dict[str, str]:
    """This environment without AWS configuration, the CLI pointed at the state directory ``state``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("AWS_")}, "GLUELINE_STATE_DIR": str(state)}


def cli(pipeline: Pipeline, *args: str) -> subprocess.CompletedProcess:
    """The CLI, as a user runs it against the running embedded stack."""
    return subprocess.run([GLUELINE, *args], capture_output=True, text=True, env=cli_environment(pipeline), timeout=600)


def finished(client, run_id, job="probe", timeout=120) -> dict:
    """A Glue run (of any Glue endpoint ``client`` speaks to) once it has ended."""
    return finished_run(client, job, run_id, timeout, interval=0.1)


def aws_call_log() -> Path:
    """The AWS calls the Lambda and the Glue job made on the stack, one JSON line each (recorded by
    tests/access/record/sitecustomize.py, which the stack's processes load)."""
    return Path(os.environ[CALL_LOG_VARIABLE])


@contextmanager
def database_cut_off(pipeline: Pipeline) -> Iterator[None]:
    """See StackFaults.database_cut_off; CI must be able to cut (.ci/run installs nftables)."""
    try:
        with pipeline.faults.database_cut_off():
            yield
    except FaultUnavailable as why:
        if os.environ.get("CI"):
            pytest.fail(f"CI must cut networks: {why}")
        pytest.skip(str(why))
