"""Runs as Glue schedules them — queueing, retries, stops, timeouts, restarts — with an execution that
starts no process (the real one is driven through boto3 in tests/integration/test_glue_runner.py)."""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest

from glueline.local.runner import launch as launches
from glueline.local.runner.catalog import Catalog
from glueline.local.runner.config import RunnerConfig
from glueline.local.runner.exceptions import (
    ConcurrentRunsExceededException,
    EntityNotFoundException,
    InvalidInputException,
)
from glueline.local.runner.execution import Outputs, Started
from glueline.local.runner.runs import Runs
from glueline.polling import wait_for

JOB = {"Name": "etl", "Role": "r", "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"}}


class FakeProcess:
    pid = 4242


class FakeExecution:
    """Each run waits until the test ends it: ``end(run_id, exit_code)`` or ``time_out(run_id)``."""

    def __init__(self, root: Path):
        self.root = root
        self.started: list[str] = []
        self._endings: dict[str, tuple[int, bool]] = {}
        self._changed = threading.Condition()

    def outputs(self, run) -> Outputs:
        return Outputs(self.root / run.id)

    @contextmanager
    def shipping_logs(self, run):
        outputs = self.outputs(run)
        outputs.directory.mkdir(parents=True, exist_ok=True)
        yield outputs

    def prepare(self, run, outputs):
        if run.arguments.get("--unfetchable"):
            raise FileNotFoundError("s3://b/etl.py")
        return None

    def start(self, run, launch, outputs) -> Started:
        self.started.append(run.id)
        return Started(FakeProcess(), None)

    def wait(self, run, started) -> tuple[int, bool]:
        with self._changed:
            self._changed.wait_for(lambda: run.id in self._endings, timeout=10)
            exit_code, timed_out = self._endings.pop(run.id)
        if exit_code:
            outputs = self.outputs(run)
            outputs.stderr.write_text("Traceback (most recent call last):\nValueError: the data is bad\n")
        return exit_code, timed_out

    def end(self, run_id: str, exit_code: int = 0, timed_out: bool = False) -> None:
        with self._changed:
            self._endings[run_id] = (exit_code, timed_out)
            self._changed.notify_all()


MINUTE = 0.05  # seconds: a Timeout or NotifyDelayAfter minute here


@pytest.fixture
def scheduled(tmp_path):
    lock = threading.RLock()
    catalog = Catalog(lock, lambda: None)
    execution = FakeExecution(tmp_path)
    announced: list[tuple[str, str]] = []
    runs = Runs(
        catalog,
        execution,
        lock,
        lambda: None,
        announce=lambda job, run_id, state, error: announced.append((run_id, state)),
        announce_delay=lambda job, run_id, state, delay, started: announced.append((run_id, f"delayed {state}")),
        minute_seconds=MINUTE,
    )
    runs.announced = announced
    return catalog, execution, runs


def state(runs, run_id: str) -> str:
    return runs.run("etl", run_id).state


def ended(runs, run_id: str, expected: str) -> None:
    wait_for(lambda: state(runs, run_id) == expected, 10, f"{run_id} {expected}", interval=0.01)


def test_a_run_over_max_concurrent_runs_is_refused_or_queued_and_started_in_order(scheduled):
    catalog, execution, runs = scheduled
    catalog.create_job(JOB)
    first = runs.start_run("etl", {})
    wait_for(lambda: state(runs, first) == "RUNNING", 10, "the first run to run", interval=0.01)
    with pytest.raises(ConcurrentRunsExceededException, match="^Concurrent runs exceeded for etl$"):
        runs.start_run("etl", {})
    second = runs.start_run("etl", {"JobRunQueuingEnabled": True})
    third = runs.start_run("etl", {"JobRunQueuingEnabled": True})
    assert (state(runs, second), state(runs, third)) == ("WAITING", "WAITING")
    execution.end(first)
    ended(runs, first, "SUCCEEDED")
    wait_for(lambda: state(runs, second) == "RUNNING", 10, "the oldest waiting run to start", interval=0.01)
    assert state(runs, third) == "WAITING"
    execution.end(second)
    execution.end(third)
    ended(runs, third, "SUCCEEDED")
    assert execution.started == [first, second, third]
    assert runs.announced == [(first, "SUCCEEDED"), (second, "SUCCEEDED"), (third, "SUCCEEDED")]


def test_a_failed_run_is_retried_as_the_next_attempt_while_max_retries_allows(scheduled):
    catalog, execution, runs = scheduled
    catalog.create_job({**JOB, "MaxRetries": 1})
    first = runs.start_run("etl", {"Arguments": {"--day": "1"}})
    wait_for(lambda: execution.started, 10, "the run to start", interval=0.01)
    execution.end(first, exit_code=1)
    ended(runs, first, "FAILED")
    assert "ValueError: the data is bad" in runs.run("etl", first).error_message
    wait_for(lambda: len(execution.started) == 2, 10, "the retry to start", interval=0.01)
    retry = runs.run("etl", execution.started[1])
    assert (retry.attempt, retry.previous_run_id, retry.arguments) == (1, first, {"--day": "1"})
    execution.end(retry.id, exit_code=1)
    ended(runs, retry.id, "FAILED")
    assert len(runs.get_runs("etl")) == 2  # no third attempt


def test_a_timed_out_run_ends_timeout_and_a_stopped_one_stopped(scheduled):
    catalog, execution, runs = scheduled
    catalog.create_job({**JOB, "ExecutionProperty": {"MaxConcurrentRuns": 3}})
    slow = runs.start_run("etl", {"Timeout": 2})
    stopped = runs.start_run("etl", {})
    wait_for(lambda: len(execution.started) == 2, 10, "both runs to start", interval=0.01)
    execution.end(slow, exit_code=-15, timed_out=True)
    ended(runs, slow, "TIMEOUT")
    assert runs.run("etl", slow).error_message == "Job run timed out after 2 minute(s)"
    done, errors = runs.stop_runs("etl", [stopped, "jr_missing"])
    assert done == [{"JobName": "etl", "JobRunId": stopped}] and state(runs, stopped) == "STOPPING"
    assert errors[0]["ErrorDetail"]["ErrorCode"] == "EntityNotFoundException"
    execution.end(stopped, exit_code=-15)
    ended(runs, stopped, "STOPPED")


def test_a_flex_run_of_a_job_that_cannot_run_flex_is_refused(scheduled):
    catalog, execution, runs = scheduled
    catalog.create_job({**JOB, "GlueVersion": "2.0"})
    with pytest.raises(InvalidInputException, match="FLEX needs a glueetl job of Glue 3.0 or later"):
        runs.start_run("etl", {"ExecutionClass": "FLEX"})
    assert runs.get_runs("etl") == [] and execution.started == []


def test_a_run_of_a_job_that_does_not_exist_is_refused_in_glues_words(scheduled):
    catalog, execution, runs = scheduled
    with pytest.raises(EntityNotFoundException, match="^Failed to start job run due to missing metadata.$"):
        runs.start_run("etl", {})


def test_a_run_whose_code_cannot_be_fetched_fails_with_the_reason(scheduled):
    catalog, execution, runs = scheduled
    catalog.create_job(JOB)
    run_id = runs.start_run("etl", {"Arguments": {"--unfetchable": "yes"}})
    ended(runs, run_id, "FAILED")
    assert runs.run("etl", run_id).error_message == "FileNotFoundError: s3://b/etl.py"
    assert execution.started == []


def test_active_runs_of_a_runner_that_went_away_end_failed_saying_why(scheduled, tmp_path):
    catalog, execution, runs = scheduled
    catalog.create_job(JOB)
    run_id = runs.start_run("etl", {})
    wait_for(lambda: execution.started, 10, "the run to start", interval=0.01)
    saved = runs.saved()
    execution.end(run_id)
    restarted = Runs(catalog, FakeExecution(tmp_path), threading.RLock(), lambda: None, announce=lambda *a: None)
    (orphan,) = restarted.restore(saved)
    assert (orphan.id, orphan.state) == (run_id, "FAILED")
    assert orphan.error_message == "The local Glue runner stopped while this run was RUNNING; the run was ended"
    with pytest.raises(EntityNotFoundException, match="Job run jr_x of job etl not found"):
        restarted.run("etl", "jr_x")


def test_a_run_still_active_after_notify_delay_after_is_announced_once(scheduled):
    catalog, execution, runs = scheduled
    delayed = {"NotificationProperty": {"NotifyDelayAfter": 2}, "ExecutionProperty": {"MaxConcurrentRuns": 2}}
    catalog.create_job({**JOB, **delayed})
    slow = runs.start_run("etl", {})
    quick = runs.start_run("etl", {"NotificationProperty": {"NotifyDelayAfter": 4}})  # the run's own wins
    wait_for(lambda: len(execution.started) == 2, 10, "both runs to start", interval=0.01)
    execution.end(quick)
    ended(runs, quick, "SUCCEEDED")
    wait_for(lambda: (slow, "delayed RUNNING") in runs.announced, 10, "the delay notification", interval=0.01)
    execution.end(slow)
    ended(runs, slow, "SUCCEEDED")
    time.sleep(5 * MINUTE)  # past the quick run's delay too
    assert runs.announced.count((slow, "delayed RUNNING")) == 1
    assert (quick, "delayed RUNNING") not in runs.announced  # it had ended
    assert runs.run("etl", quick).as_dict()["NotificationProperty"] == {"NotifyDelayAfter": 4}


def test_a_run_cannot_override_the_jobs_non_overridable_arguments(scheduled, tmp_path, monkeypatch):
    """As Glue: a job's NonOverridableArguments are "not overridden when providing job arguments in a job
    run". The job's library is what the run records and fetches, whatever the run names; the run's other
    arguments stand."""
    catalog, execution, runs = scheduled
    pinned = {"--extra-py-files": "s3://b/lib.zip", "--extra-jars": "s3://b/lib.zip"}
    catalog.create_job({**JOB, "NonOverridableArguments": pinned})
    asked = {"--extra-py-files": "s3://b/processed/evil.zip", "--extra-jars": "s3://b/processed/evil.jar"}
    run_id = runs.start_run("etl", {"Arguments": {**asked, "--FILE_IDS": "f1"}})
    run = runs.run("etl", run_id)
    assert run.as_dict()["Arguments"] == {**pinned, "--FILE_IDS": "f1"}

    fetched: list[str] = []

    def download(uri: str, directory: Path) -> Path:
        fetched.append(uri)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / Path(uri).name).write_bytes(b"")
        return directory / Path(uri).name

    monkeypatch.setattr(launches, "_download", download)
    config = RunnerConfig(state_dir=tmp_path, launcher=["python"])
    launch = launches.prepare(config, run.job_snapshot, asked, tmp_path / "run", run_id)
    assert fetched == ["s3://b/etl.py", "s3://b/lib.zip"]
    assert launch.argv[launch.argv.index("--extra-jars") + 1] == "s3://b/lib.zip"
    execution.end(run_id)
    ended(runs, run_id, "SUCCEEDED")
