"""Job runs: started, queued, retried, stopped and timed out as Glue does with a ``glueetl`` job.

States follow Glue: [WAITING →] STARTING → RUNNING → SUCCEEDED | FAILED | TIMEOUT | STOPPED (via
STOPPING). A run over the job's MaxConcurrentRuns waits in the job's queue where job run queuing is on
(else ConcurrentRunsExceededException); a FAILED run is retried as a new run while attempts are left
(MaxRetries: Attempt 1, 2, … with PreviousRunId naming the one before); the run's end is announced
(``glueline.local.runner.cloud``). How a run's process is started and ended is the execution's (``execution``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from glueline.local.processes import STOP_GRACE_SECONDS, end_orphan, terminate
from glueline.local.runner import cloud
from glueline.local.runner.catalog import Catalog
from glueline.local.runner.exceptions import (
    ConcurrentRunsExceeded,
    GlueError,
    JobNotFound,
    JobRunNotFound,
    JobToRunNotFound,
)
from glueline.local.runner.execution import RunExecution, Started, error_from_logs
from glueline.local.runner.models import RUN_SETTINGS, RUNNING_STATES, JobRun, new_run_id, run_capacity
from glueline.local.runner.validation import check_flex


class Runs:
    def __init__(
        self,
        catalog: Catalog,
        execution: RunExecution,
        lock: threading.RLock,
        save: Callable[[], None],
        announce: Callable[[str, str, str, str | None], None] = cloud.announce,
        announce_delay: Callable[[str, str, str, int, float], None] = cloud.announce_delay,
        minute_seconds: float = 60.0,
    ):
        self.catalog = catalog
        self.execution = execution
        self._lock = lock
        self._save = save
        self._announce = announce  # a run's end, to EventBridge (cloud.announce)
        self._announce_delay = announce_delay  # a run past its NotifyDelayAfter (cloud.announce_delay)
        self._minute_seconds = minute_seconds  # one minute of Timeout or NotifyDelayAfter (tests shorten it)
        self.runs: dict[str, list[JobRun]] = {}
        self._threads: set[threading.Thread] = set()

    # -- the state file's part ------------------------------------------------------------------------

    def saved(self) -> dict[str, Any]:
        return {"runs": {name: [run.saved() for run in runs] for name, runs in self.runs.items()}}

    def restore(self, saved: dict[str, Any]) -> list[JobRun]:
        """The runs the last runner of this state directory kept; its active runs end here (FAILED, saying
        why): their process went with it. Returns those, to be announced once saved."""
        ended = []
        for name, runs in saved["runs"].items():
            self.runs[name] = [JobRun(**run) for run in runs]
            for run in self.runs[name]:
                if run.active:
                    end_orphan(self.execution.outputs(run).directory)
                    run.set_state(
                        "FAILED", f"The local Glue runner stopped while this run was {run.state}; the run was ended"
                    )
                    ended.append(run)
        return ended

    # -- starting -------------------------------------------------------------------------------------

    def start_run(self, name: str, request: dict) -> str:
        """A new run: started, WAITING in the queue (job run queuing), or ConcurrentRunsExceeded.
        ``JobRunId`` retries a previous run: the next attempt, with its arguments (overridden by these)."""
        with self._lock:
            try:
                stored = self.catalog.job(name)
            except JobNotFound:
                raise JobToRunNotFound() from None
            job = stored.as_dict()
            check_flex(job, request)
            arguments, attempt, previous = dict(request.get("Arguments", {})), 0, None
            if request.get("JobRunId"):
                earlier = self.run(name, request["JobRunId"])
                arguments, attempt, previous = {**earlier.arguments, **arguments}, earlier.attempt + 1, earlier.id
            # Glue: the job's NonOverridableArguments are "not overridden when providing job arguments in
            # a job run". The job's value is the one the run runs with, and so the one it shows.
            pinned = job["NonOverridableArguments"]
            arguments |= {key: pinned[key] for key in arguments.keys() & pinned.keys()}
            queuing = request.get("JobRunQueuingEnabled", job.get("JobRunQueuingEnabled", False))
            settings = {k: request.get(k, job.get(k)) for k in RUN_SETTINGS}
            run = JobRun(
                id=new_run_id(),
                job_name=name,
                arguments=arguments,
                timeout_minutes=request.get("Timeout") or job["Timeout"],
                started_on=time.time(),
                attempt=attempt,
                previous_run_id=previous,
                queuing=bool(queuing),
                capacity=run_capacity(stored.definition, request),
                settings={k: v for k, v in settings.items() if v is not None},
                job_snapshot=job,
            )
            self._submit(run)
        return run.id

    def _submit(self, run: JobRun, retry: bool = False) -> None:
        """Start the run if the job has a free slot; else queue it (WAITING) where queuing is on, or it
        is a retry (which Glue never drops)."""
        limit = run.job_snapshot["ExecutionProperty"].get("MaxConcurrentRuns", 1)
        running = self._running(run.job_name)
        if running >= limit and not (run.queuing or retry):
            raise ConcurrentRunsExceeded(run.job_name)
        run.last_modified_on = run.started_on
        self.runs.setdefault(run.job_name, []).append(run)
        self._watch_delay(run)
        if running >= limit:
            run.state = "WAITING"
            self._save()
            return
        self._launch(run)

    def _watch_delay(self, run: JobRun) -> None:
        """Glue's job delay notification: a run still STARTING, RUNNING or STOPPING NotifyDelayAfter minutes
        after it was started is announced (once)."""
        delay = run.settings.get("NotificationProperty", {}).get("NotifyDelayAfter")
        if not delay:
            return
        seconds = max(0.0, run.started_on + delay * self._minute_seconds - time.time())
        timer = threading.Timer(seconds, self._notify_if_delayed, args=(run, delay))
        timer.daemon = True
        timer.start()

    def _notify_if_delayed(self, run: JobRun, delay: int) -> None:
        with self._lock:
            state = run.state if run in self.runs.get(run.job_name, []) else None
        if state in RUNNING_STATES:  # STARTING, RUNNING, STOPPING: not WAITING
            self._announce_delay(run.job_name, run.id, state, delay, run.started_on)

    def _running(self, name: str) -> int:
        """How many of the job's runs hold a slot of its MaxConcurrentRuns."""
        return sum(r.state in RUNNING_STATES for r in self.runs.get(name, []))

    def _launch(self, run: JobRun) -> None:
        run.state = "STARTING"
        run.last_modified_on = time.time()
        self._save()
        self._background(self._execute, run)

    def _admit_waiting(self, name: str) -> None:
        """Start the oldest WAITING runs of the job while it has free slots."""
        with self._lock:
            job = self.catalog.jobs.get(name)
            if job is None:
                return
            waiting = sorted((r for r in self.runs.get(name, []) if r.state == "WAITING"), key=lambda r: r.started_on)
            for run in waiting:
                if self._running(name) >= job.max_concurrent_runs:
                    break
                self._launch(run)

    # -- executing ------------------------------------------------------------------------------------

    def _execute(self, run: JobRun) -> None:
        with self.execution.shipping_logs(run) as outputs:
            ending = self._run_process(run, outputs)
        with self._lock:
            if ending is None:
                pass  # ended before it started (stopped, or its code could not be fetched)
            elif ending[1]:
                run.set_state("TIMEOUT", f"Job run timed out after {run.timeout_minutes} minute(s)")
            elif run.stop_requested:
                run.set_state("STOPPED")
            elif ending[0] == 0:
                run.set_state("SUCCEEDED")
            else:
                run.set_state("FAILED", error_from_logs(outputs, ending[0]))
        self._finish(run)

    def _run_process(self, run: JobRun, outputs) -> tuple[int, bool] | None:
        """Fetch the run's code, start it, wait for it: (exit code, timed out), or None if it never started."""
        try:
            launch = self.execution.prepare(run, outputs)
        except Exception as err:  # the script or its libraries could not be fetched
            with self._lock:
                run.set_state("FAILED", f"{type(err).__name__}: {err}")
            return None
        with self._lock:
            if run.stop_requested:
                if run.active:
                    run.set_state("STOPPED")
                return None
            started: Started = self.execution.start(run, launch, outputs)
            run.process = started.process
            run.set_state("RUNNING")
            self._save()
        return self.execution.wait(run, started)

    def _finish(self, run: JobRun) -> None:
        """A run ended: its event, its bookmark, a retry if it failed and attempts are left, and the
        next WAITING run. A run of a job deleted meanwhile just ends."""
        with self._lock:
            current = run in self.runs.get(run.job_name, [])
            retry = None
            if current and run.state == "SUCCEEDED":
                self.catalog.record_bookmark(run)
            if current and run.state == "FAILED" and not run.stop_requested:
                if run.attempt < run.job_snapshot.get("MaxRetries", 0):
                    retry = run.next_attempt()
            self._save()
        if current:
            self.announce(run)
        if retry is not None:
            with self._lock:
                self._submit(retry, retry=True)
        self._admit_waiting(run.job_name)

    # -- reading and stopping -------------------------------------------------------------------------

    def run(self, name: str, run_id: str) -> JobRun:
        with self._lock:
            for run in self.runs.get(name, []):
                if run.id == run_id:
                    return run
        raise JobRunNotFound(name, run_id)

    def get_runs(self, name: str) -> list[dict]:
        with self._lock:
            self.catalog.job(name)
            return [r.as_dict() for r in sorted(self.runs.get(name, []), key=lambda r: -r.started_on)]

    def stop_runs(self, name: str, run_ids: list[str]) -> tuple[list[dict], list[dict]]:
        """Answers at once, as Glue does: a WAITING run is STOPPED, an active one STOPPING until its
        processes are gone (in the background)."""
        stopped, errors, ended = [], [], []
        with self._lock:
            for run_id in run_ids:
                try:
                    run = self.run(name, run_id)
                except GlueError as err:
                    errors.append(_stop_error(name, run_id, err.error_type, err.message))
                    continue
                if not run.active or run.state == "STOPPING":
                    errors.append(_stop_error(name, run_id, "InvalidInputException", f"Job run is {run.state}"))
                    continue
                run.stop_requested = True
                if run.state == "WAITING":
                    run.set_state("STOPPED")
                    ended.append(run)
                else:
                    run.set_state("STOPPING")
                    if run.process is not None:
                        self._background(terminate, run.process)
                stopped.append({"JobName": name, "JobRunId": run_id})
            self._save()
        for run in ended:
            self.announce(run)
        return stopped, errors

    def drop_job(self, name: str) -> None:
        """A deleted job's runs go; active ones are stopped (they end without an event)."""
        with self._lock:
            runs = self.runs.pop(name, [])
            for run in runs:
                run.stop_requested = True
            self._save()
        for run in runs:
            if run.process is not None:
                self._background(terminate, run.process)

    def close(self) -> None:
        """The runner is shutting down: active runs end STOPPED (saying why), once their processes are gone."""
        with self._lock:
            for run in (r for runs in self.runs.values() for r in runs if r.active):
                run.stop_requested = True
                run.error_message = "Stopped: the local Glue runner shut down"
                if run.state == "WAITING":
                    run.set_state("STOPPED")
                elif run.process is not None:
                    self._background(terminate, run.process)
            self._save()
        deadline = time.time() + STOP_GRACE_SECONDS + 5
        while time.time() < deadline:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                break
            threads[0].join(timeout=max(0.0, deadline - time.time()))
        self._save()

    def announce(self, run: JobRun) -> None:
        self._announce(run.job_name, run.id, run.state, run.error_message)

    def _background(self, target, *args) -> None:
        thread = threading.Thread(target=self._tracked, args=(target, *args), daemon=True)
        with self._lock:
            self._threads.add(thread)
        thread.start()

    def _tracked(self, target, *args) -> None:
        try:
            target(*args)
        finally:
            with self._lock:
                self._threads.discard(threading.current_thread())


def _stop_error(name: str, run_id: str, code: str, message: str) -> dict:
    return {"JobName": name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}
