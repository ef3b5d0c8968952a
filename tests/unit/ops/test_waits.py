"""The operator's waits each end within their bound, with a message naming what was waited for."""

from __future__ import annotations

import sys
import threading
import time

import boto3
import pytest
from rich.console import Console

from glueline.local.processes import bounded_run
from glueline.local.running import StackError
from glueline.ops.deploy.aws import DeployError, wait_until
from glueline.ops.uploads import Upload, wait_for_outcomes
from glueline.polling import wait_for, within
from glueline.shared.audit import AuditRecord, Status


def test_a_deploy_waiter_that_runs_out_names_what_it_waited_for(aws):
    rds = boto3.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="db1", DBInstanceClass="db.t3.micro", Engine="postgres", AllocatedStorage=20
    )
    with pytest.raises(DeployError, match=r"^timed out after 2 s waiting for the RDS instance db1 to be deleted$"):
        wait_until(
            rds, "db_instance_deleted", "the RDS instance db1 to be deleted", 1, 2, {"DBInstanceIdentifier": "db1"}
        )
    # A state it will not leave fails at once, naming it too.
    with pytest.raises(DeployError, match=r"^the RDS instance db2 to be available: .*DBInstanceNotFound"):
        wait_until(
            rds, "db_instance_available", "the RDS instance db2 to be available", 1, 60, {"DBInstanceIdentifier": "db2"}
        )


def test_a_command_of_the_engine_that_hangs_is_given_up_with_its_name():
    with pytest.raises(StackError, match=r"timed out after 0 s waiting for `docker info`"):
        bounded_run([sys.executable, "-c", "import time; time.sleep(30)"], 0.3, "docker info")


def test_a_wait_ends_at_its_timeout_also_while_its_condition_hangs():
    """A check that never returns (a query to a stopped database, a call to a hung emulator) is given
    up at the wait's timeout: the wait does not wait for the check."""
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^timed out after 0 s waiting for the hung check \(its last check"):
        wait_for(lambda: release.wait(60), 0.5, "the hung check")
    assert time.monotonic() - started < 3
    release.set()


def test_a_wait_returns_what_its_condition_found_and_raises_what_it_raised():
    answers = iter([None, 0, "found"])
    assert wait_for(lambda: next(answers), 5, "the third answer", interval=0.01) == "found"

    def broken():
        raise LookupError("no such table")

    with pytest.raises(LookupError, match="no such table"):
        wait_for(broken, 5, "a broken check")


def test_a_bounded_call_answers_or_ends_at_its_timeout():
    assert within(5, lambda: 42, "the answer") == 42
    release = threading.Event()
    started = time.monotonic()
    with pytest.raises(TimeoutError, match=r"^timed out after 0 s waiting for the upload of source/a.csv$"):
        within(0.3, lambda: release.wait(60), "the upload of source/a.csv")
    assert time.monotonic() - started < 2
    release.set()


class StuckAudit:
    """One file processing in a run that never ends, one not announced yet."""

    def get(self, file_id: str) -> AuditRecord | None:
        if file_id == "a":
            return AuditRecord(
                "a", "a.csv", "b", "source/a.csv", '"e"', 1, "t", status=Status.PROCESSING, glue_job_id="jr_1"
            )
        return None


def test_the_clis_wait_for_outcomes_ends_at_its_timeout_and_says_where_each_file_stands(tmp_path):
    console = Console(width=300, record=True)
    uploads = [Upload(tmp_path / n, f"source/{n}", n[0], "t", "2026-12-01T00:00:00") for n in ("a.csv", "b.csv")]
    assert wait_for_outcomes(StuckAudit(), uploads, timeout=0.2, console=console, poll=0.05) == [
        StuckAudit().get("a"),
        None,
    ]
    assert console.export_text().strip() == (
        "timed out after 0 s waiting for the outcome of 2 file(s) (--timeout): "
        "a.csv (PROCESSING in Glue run jr_1), b.csv (not recorded yet)"
    )
