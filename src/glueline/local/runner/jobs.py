"""Jobs and job runs of the local Glue runner, and how a run executes.

A run does what Glue does with a ``glueetl`` job: fetch the script from ``ScriptLocation`` (S3), fetch
``--extra-py-files`` and put them on the path, then start the script in a fresh process with
``--JOB_NAME``, ``--JOB_ID``, ``--JOB_RUN_ID`` and the job's DefaultArguments overlaid with the run's
Arguments (NonOverridableArguments last). States follow Glue:
[WAITING →] STARTING → RUNNING → SUCCEEDED | FAILED | TIMEOUT | STOPPED (via STOPPING). A run over the
job's MaxConcurrentRuns waits in the job's queue where job run queuing is on (else
ConcurrentRunsExceededException); a FAILED run is retried as a new run while attempts are left
(MaxRetries). Every state is kept in ``state_dir/state.json``; a run's stdout and stderr go to its files
and, with its final state, to CloudWatch Logs and EventBridge (``glueline.local.runner.cloud``).

The launcher is a setting: the local Python (PySpark from PyPI) by default, ``spark-submit`` inside the
aws-glue-libs image. Like Glue, the runner configures the Spark its scripts get: with the default
launcher, ``PYSPARK_SUBMIT_ARGS`` (local mode on every core, a 2 GB driver, no UI, bound to 127.0.0.1) unless the
environment sets it. A job with Glue's ``--enable-spark-ui true`` gets Spark's UI on port 4040 of the runner's
address (127.0.0.1; in the compose stack's container every interface, published on the host's 127.0.0.1) while a
run is active (the next free port when 4040 is taken) and its event log in ``state_dir/spark-events``, which
``glueline spark-history`` shows (``--spark-event-logs-path``, an S3 location on AWS, is not written here).

With ``standby``, the runner keeps one job process warm for the job it expects next — the job last
created, updated or run — and hands that job's next run to it (see ``glueline.local.runner.standby``).
``GET /`` reports the standby: ``{"job": …, "state": "warming" | "ready", "pid": …}``, or null.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import logging
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from glueline.local.inner_loop import SPARK_UI_PORT
from glueline.local.runner import cloud, debug
from glueline.local.runner.cloud import LOG_GROUP
from glueline.local.runner.model import DEFAULT_GLUE_VERSION, default_timeout
from glueline.shared.lifecycle import ACTIVE_RUN_STATES as ACTIVE_STATES
from glueline.shared.timeouts import aws_client

log = logging.getLogger("glueline.local.runner")
STANDBY_SCRIPT = Path(__file__).with_name("standby.py")
# Local mode binds the driver and block manager to the loopback interface only (by default Spark binds
# the machine's first non-loopback address, open to its network).
SPARK_SUBMIT_ARGS = (
    "--master local[*] --driver-memory 2g --conf spark.ui.enabled=false "
    "--conf spark.driver.bindAddress=127.0.0.1 --conf spark.driver.host=127.0.0.1 pyspark-shell"
)
SPARK_UI_ARGUMENT = "--enable-spark-ui"  # Glue's: "true" turns the UI and the event log on
# A run counts against MaxConcurrentRuns from STARTING until it ends; WAITING runs queue for a slot.
RUNNING_STATES = ACTIVE_STATES - {"WAITING"}
_STOP_GRACE_SECONDS = 10


class GlueError(Exception):
    """An error in the shape AWS Glue answers with (``__type`` + ``message``)."""

    def __init__(self, error_type: str, message: str):
        super().__init__(message)
        self.error_type = error_type
        self.message = message


@dataclass
class RunnerConfig:
    state_dir: Path
    launcher: list[str]
    self_url: str = ""  # this runner's URL, given to jobs as their Glue endpoint
    minute_seconds: float = 60.0  # the length of one Timeout minute (tests shorten it)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for job processes
    standby: bool = False  # keep a warm job process ready (PySpark scripts run with the default launcher)
    host: str = "127.0.0.1"  # the runner's address; Spark's UI binds there too (every interface in a container)


@dataclass
class Standby:
    """A job process warming, or warm, for the next run of ``job_name`` with exactly this code."""

    job_name: str
    fingerprint: str
    process: subprocess.Popen
    directory: Path  # its copies of the script and extra files, on its path until it exits
    ready: threading.Event = field(default_factory=threading.Event)

    def discard(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class JobRun:
    id: str
    job_name: str
    arguments: dict[str, str]
    timeout_minutes: int
    started_on: float
    attempt: int = 0
    previous_run_id: str | None = None
    queuing: bool = False
    capacity: dict = field(default_factory=dict)  # WorkerType / NumberOfWorkers / MaxCapacity in effect
    state: str = "STARTING"
    last_modified_on: float = 0.0
    completed_on: float | None = None
    error_message: str | None = None
    stop_requested: bool = False
    job_snapshot: dict = field(default_factory=dict)
    process: subprocess.Popen | None = field(default=None, repr=False)

    def describe(self) -> dict:
        end = self.completed_on or time.time()
        run = {
            "Id": self.id,
            "Attempt": self.attempt,
            "JobName": self.job_name,
            "JobRunQueuingEnabled": self.queuing,
            "StartedOn": self.started_on,
            "LastModifiedOn": self.last_modified_on or self.started_on,
            "JobRunState": self.state,
            "Arguments": self.arguments,
            "PredecessorRuns": [],
            "Timeout": self.timeout_minutes,
            "ExecutionTime": int(end - self.started_on),
            "LogGroupName": LOG_GROUP,
            "GlueVersion": self.job_snapshot["GlueVersion"],
            **self.capacity,
        }
        if "ExecutionClass" in self.job_snapshot:
            run["ExecutionClass"] = self.job_snapshot["ExecutionClass"]
        if self.previous_run_id:
            run["PreviousRunId"] = self.previous_run_id
        if self.completed_on is not None:
            run["CompletedOn"] = self.completed_on
        if self.error_message:
            run["ErrorMessage"] = self.error_message
        return run

    def saved(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "process"}


CAPACITY = ("WorkerType", "NumberOfWorkers", "MaxCapacity")


class JobStore:
    """Job definitions, connections, tags, runs and bookmark entries, kept in ``state_dir/state.json``
    (written on every change, so a restarted runner has them); each run's output under
    ``state_dir/runs/<job>/<run id>/`` (``output.log``: stdout, ``error.log``: stderr)."""

    def __init__(self, config: RunnerConfig):
        self.config = config
        self._jobs: dict[str, dict] = {}
        self._connections: dict[str, dict] = {}  # stored and answered; a local run needs no network
        self._tags: dict[tuple[str, str], dict[str, str]] = {}  # per (kind, name): Glue keeps them apart
        self._runs: dict[str, list[JobRun]] = {}
        self._bookmarks: dict[str, list[dict]] = {}  # per job: an entry per successful bookmarked run
        self._lock = threading.RLock()
        self._threads: set[threading.Thread] = set()
        self._standby: Standby | None = None
        self._warm_requests = 0  # the latest request wins: a slower, earlier one gives up
        self._closed = False
        self._state_file = config.state_dir / "state.json"
        self._load()

    # -- persistence ----------------------------------------------------------------------------------

    def _load(self) -> None:
        """What the last runner of this state directory kept; its active runs end here: their process
        went with it."""
        if not self._state_file.exists():
            return
        saved = json.loads(self._state_file.read_text())
        self._jobs = saved["jobs"]
        self._connections = saved["connections"]
        self._tags = {(kind, name): tags for kind, name, tags in saved["tags"]}
        self._bookmarks = saved["bookmarks"]
        ended = []
        for name, runs in saved["runs"].items():
            self._runs[name] = [JobRun(**run) for run in runs]
            for run in self._runs[name]:
                if run.state in ACTIVE_STATES:
                    _end_orphan(self.config.state_dir / "runs" / name / run.id)
                    message = f"The local Glue runner stopped while this run was {run.state}; the run was ended"
                    self._set_state(run, "FAILED", message)
                    ended.append(run)
        self._save()
        for run in ended:
            cloud.announce(run.job_name, run.id, run.state, run.error_message)

    def _save(self) -> None:
        with self._lock:
            state = {
                "jobs": self._jobs,
                "connections": self._connections,
                "tags": [[kind, name, tags] for (kind, name), tags in self._tags.items()],
                "runs": {name: [run.saved() for run in runs] for name, runs in self._runs.items()},
                "bookmarks": self._bookmarks,
            }
            partial = self._state_file.with_suffix(".partial")
            partial.write_text(json.dumps(state))
            partial.replace(self._state_file)

    # -- jobs ---------------------------------------------------------------------------------------

    def create_job(self, request: dict) -> dict:
        name = request["Name"]
        with self._lock:
            if name in self._jobs:
                raise GlueError("AlreadyExistsException", f"Job with name {name} already exists")
            now = time.time()
            definition = {k: v for k, v in request.items() if k != "Tags"}
            self._jobs[name] = self._with_defaults(definition) | {"CreatedOn": now, "LastModifiedOn": now}
            self._tags[("job", name)] = dict(request.get("Tags", {}))
            self._save()
        self._warm(name)
        return {"Name": name}

    def update_job(self, name: str, update: dict) -> dict:
        with self._lock:
            job = self._get(name)
            # Like Glue, an update replaces the whole definition (fields left out fall back to defaults);
            # tags are not part of it and stay.
            self._jobs[name] = self._with_defaults({**update, "Name": name}) | {
                "CreatedOn": job["CreatedOn"],
                "LastModifiedOn": time.time(),
            }
            self._save()
        self._warm(name)
        return {"JobName": name}

    def get_job(self, name: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._get(name))

    def get_jobs(self) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(self._jobs[n]) for n in sorted(self._jobs)]

    def list_jobs(self, tags: dict[str, str]) -> list[str]:
        """Job names, only those carrying every given tag."""
        with self._lock:
            return [
                name
                for name in sorted(self._jobs)
                if all(self._tags.get(("job", name), {}).get(k) == v for k, v in tags.items())
            ]

    def batch_get_jobs(self, names: list[str]) -> dict:
        with self._lock:
            return {
                "Jobs": [copy.deepcopy(self._jobs[n]) for n in names if n in self._jobs],
                "JobsNotFound": [n for n in names if n not in self._jobs],
            }

    def delete_job(self, name: str) -> dict:
        """As Glue: the job, its runs (active ones are stopped) and its bookmark go; deleting a job that
        does not exist is no error."""
        with self._lock:
            self._jobs.pop(name, None)
            self._tags.pop(("job", name), None)
            self._bookmarks.pop(name, None)
            runs = self._runs.pop(name, [])
            for run in runs:
                run.stop_requested = True
            self._save()
        for run in runs:
            if run.process is not None:
                self._background(terminate, run.process)
        return {"JobName": name}

    # -- connections (the job's NETWORK connection: kept as Glue keeps it) ---------------------------

    def create_connection(self, request: dict) -> dict:
        definition = request["ConnectionInput"]
        name = definition["Name"]
        with self._lock:
            if name in self._connections:
                raise GlueError("AlreadyExistsException", f"Connection already exists: {name}")
            now = time.time()
            self._connections[name] = {**copy.deepcopy(definition), "CreationTime": now, "LastUpdatedTime": now}
            self._tags[("connection", name)] = dict(request.get("Tags", {}))
            self._save()
        return {}

    def update_connection(self, name: str, definition: dict) -> dict:
        with self._lock:
            created = self._connection(name)["CreationTime"]
            self._connections[name] = {
                **copy.deepcopy(definition),
                "CreationTime": created,
                "LastUpdatedTime": time.time(),
            }
            self._save()
        return {}

    def get_connection(self, name: str) -> dict:
        with self._lock:
            return copy.deepcopy(self._connection(name))

    def get_connections(self) -> list[dict]:
        with self._lock:
            return [copy.deepcopy(self._connections[n]) for n in sorted(self._connections)]

    def delete_connection(self, name: str) -> dict:
        with self._lock:
            self._connection(name)
            del self._connections[name]
            self._tags.pop(("connection", name), None)
            self._save()
        return {}

    def _connection(self, name: str) -> dict:
        if name not in self._connections:
            raise GlueError("EntityNotFoundException", f"Connection not found: {name}")
        return self._connections[name]

    # -- tags ---------------------------------------------------------------------------------------

    def get_tags(self, arn: str) -> dict[str, str]:
        with self._lock:
            return dict(self._tags.get(self._resource_of(arn), {}))

    def tag(self, arn: str, add: dict[str, str], remove: list[str]) -> dict:
        with self._lock:
            tags = self._tags.setdefault(self._resource_of(arn), {})
            tags.update(add)
            for key in remove:
                tags.pop(key, None)
            self._save()
        return {}

    def _resource_of(self, arn: str) -> tuple[str, str]:
        """The job or connection an ARN (arn:aws:glue:<region>:<account>:job/<name>) names; it must exist."""
        kind, _, name = arn.rpartition(":")[2].partition("/")
        if kind == "job":
            self._get(name)
        elif kind == "connection":
            self._connection(name)
        else:
            raise GlueError("InvalidInputException", f"only jobs and connections have tags here, not {arn}")
        return kind, name

    def _get(self, name: str) -> dict:
        if name not in self._jobs:
            raise GlueError("EntityNotFoundException", f"Job {name} not found")
        return self._jobs[name]

    @staticmethod
    def _with_defaults(definition: dict) -> dict:
        """The definition as Glue stores it: the service model's defaults where a field is left out."""
        command = definition.get("Command", {})
        if not str(command.get("ScriptLocation", "")).startswith("s3://"):
            raise GlueError("InvalidInputException", "Command.ScriptLocation must be an s3:// URI")
        version = definition.get("GlueVersion", DEFAULT_GLUE_VERSION)
        defaults = {
            "MaxRetries": 0,
            "Timeout": default_timeout(version),
            "ExecutionProperty": {"MaxConcurrentRuns": 1},
            "DefaultArguments": {},
            "NonOverridableArguments": {},
            "GlueVersion": version,
            "JobRunQueuingEnabled": False,
        }
        return {**defaults, **copy.deepcopy(definition)}

    # -- runs ---------------------------------------------------------------------------------------

    def start_run(self, name: str, request: dict) -> str:
        """A new run: started, WAITING in the queue (job run queuing), or ConcurrentRunsExceeded.
        ``JobRunId`` retries a previous run: the next attempt, with its arguments (overridden by these)."""
        with self._lock:
            job = self._get(name)
            arguments, attempt, previous = dict(request.get("Arguments", {})), 0, None
            if request.get("JobRunId"):
                earlier = self._run(name, request["JobRunId"])
                arguments, attempt, previous = {**earlier.arguments, **arguments}, earlier.attempt + 1, earlier.id
            queuing = request.get("JobRunQueuingEnabled", job.get("JobRunQueuingEnabled", False))
            capacity = {k: request[k] for k in CAPACITY if k in request} or {k: job[k] for k in CAPACITY if k in job}
            run = JobRun(
                id="jr_" + secrets.token_hex(32),
                job_name=name,
                arguments=arguments,
                timeout_minutes=request.get("Timeout") or job["Timeout"],
                started_on=time.time(),
                attempt=attempt,
                previous_run_id=previous,
                queuing=bool(queuing),
                capacity=capacity,
                job_snapshot=copy.deepcopy(job),
            )
            self._submit(run)
        return run.id

    def _submit(self, run: JobRun, retry: bool = False) -> None:
        """Start the run if the job has a free slot; else queue it (WAITING) where queuing is on, or it
        is a retry (which Glue never drops)."""
        limit = run.job_snapshot["ExecutionProperty"].get("MaxConcurrentRuns", 1)
        running = self._running(run.job_name)
        if running >= limit and not (run.queuing or retry):
            raise GlueError(
                "ConcurrentRunsExceededException",
                f"Concurrent runs exceeded for {run.job_name}: {running} active, MaxConcurrentRuns {limit}",
            )
        run.last_modified_on = run.started_on
        self._runs.setdefault(run.job_name, []).append(run)
        if running >= limit:
            run.state = "WAITING"
            self._save()
            return
        self._launch(run)

    def _running(self, name: str) -> int:
        """How many of the job's runs hold a slot of its MaxConcurrentRuns."""
        return sum(r.state in RUNNING_STATES for r in self._runs.get(name, []))

    def _launch(self, run: JobRun) -> None:
        run.state = "STARTING"
        run.last_modified_on = time.time()
        self._save()
        self._background(self._execute, run)

    def _admit_waiting(self, name: str) -> None:
        """Start the oldest WAITING runs of the job while it has free slots."""
        with self._lock:
            runs = self._runs.get(name, [])
            job = self._jobs.get(name)
            if job is None:
                return
            limit = job["ExecutionProperty"].get("MaxConcurrentRuns", 1)
            for run in sorted((r for r in runs if r.state == "WAITING"), key=lambda r: r.started_on):
                if self._running(name) >= limit:
                    break
                self._launch(run)

    def get_run(self, name: str, run_id: str) -> dict:
        with self._lock:
            return self._run(name, run_id).describe()

    def get_runs(self, name: str) -> list[dict]:
        with self._lock:
            self._get(name)
            return [r.describe() for r in sorted(self._runs.get(name, []), key=lambda r: -r.started_on)]

    def stop_runs(self, name: str, run_ids: list[str]) -> tuple[list[dict], list[dict]]:
        """Answers at once, as Glue does: a WAITING run is STOPPED, an active one STOPPING until its
        processes are gone (in the background)."""
        stopped, errors, ended = [], [], []
        with self._lock:
            for run_id in run_ids:
                try:
                    run = self._run(name, run_id)
                except GlueError as err:
                    errors.append(_stop_error(name, run_id, err.error_type, err.message))
                    continue
                if run.state not in ACTIVE_STATES or run.state == "STOPPING":
                    errors.append(_stop_error(name, run_id, "InvalidInputException", f"Job run is {run.state}"))
                    continue
                run.stop_requested = True
                if run.state == "WAITING":
                    self._set_state(run, "STOPPED")
                    ended.append(run)
                else:
                    self._set_state(run, "STOPPING")
                    if run.process is not None:
                        self._background(terminate, run.process)
                stopped.append({"JobName": name, "JobRunId": run_id})
            self._save()
        for run in ended:
            cloud.announce(run.job_name, run.id, run.state, run.error_message)
        return stopped, errors

    def _run(self, name: str, run_id: str) -> JobRun:
        for run in self._runs.get(name, []):
            if run.id == run_id:
                return run
        raise GlueError("EntityNotFoundException", f"Job run {run_id} of job {name} not found")

    def _set_state(self, run: JobRun, state: str, error: str | None = None) -> None:
        run.state = state
        run.last_modified_on = time.time()
        if error:
            run.error_message = error
        if state not in ACTIVE_STATES:
            run.completed_on = run.last_modified_on

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

    # -- bookmarks ----------------------------------------------------------------------------------

    def get_bookmark(self, name: str, run_id: str | None) -> dict:
        with self._lock:
            entries = self._bookmarks.get(name, [])
            chosen = [e for e in entries if e.get("RunId") == run_id] if run_id else entries[-1:]
            if not chosen:
                raise GlueError("EntityNotFoundException", f"Continuation for job {name} not found")
            return copy.deepcopy(chosen[-1])

    def reset_bookmark(self, name: str, run_id: str | None) -> dict:
        """Back to no state (or to the state after ``run_id``): the next bookmarked run starts there."""
        with self._lock:
            self._get(name)
            entries = self._bookmarks.setdefault(name, [])
            base = next((e for e in entries if e.get("RunId") == run_id), None) if run_id else None
            if run_id and base is None:
                raise GlueError("EntityNotFoundException", f"Continuation for job {name} and run {run_id} not found")
            kept = ("Run", "Attempt", "RunId", "PreviousRunId", "JobBookmark")
            state = {k: base[k] for k in kept if k in base} if base else {"Run": 0, "Attempt": 0, "JobBookmark": "{}"}
            entry = {"JobName": name, "Version": (entries[-1]["Version"] if entries else 0) + 1, **state}
            entries.append(entry)
            self._save()
            return copy.deepcopy(entry)

    def _record_bookmark(self, run: JobRun) -> None:
        """A successful run of a job with bookmarks enabled is a new bookmark entry. Local Spark keeps
        no per-source state, so JobBookmark is an empty state; versions, runs and IDs follow Glue."""
        job = run.job_snapshot
        arguments = {**job["DefaultArguments"], **run.arguments, **job.get("NonOverridableArguments", {})}
        if arguments.get("--job-bookmark-option") != "job-bookmark-enable":
            return
        entries = self._bookmarks.setdefault(run.job_name, [])
        last = entries[-1] if entries else {"Version": 0, "Run": 0, "RunId": None}
        entry = {
            "JobName": run.job_name,
            "Version": last["Version"] + 1,
            "Run": last["Run"] + 1,
            "Attempt": run.attempt,
            "RunId": run.id,
            "JobBookmark": "{}",
        }
        if last.get("RunId"):
            entry["PreviousRunId"] = last["RunId"]
        entries.append(entry)

    # -- execution ----------------------------------------------------------------------------------

    def _execute(self, run: JobRun) -> None:
        run_dir = self.config.state_dir / "runs" / run.job_name / run.id
        run_dir.mkdir(parents=True, exist_ok=True)
        outputs = {cloud.OUTPUT_GROUP: run_dir / "output.log", cloud.ERROR_GROUP: run_dir / "error.log"}
        shipper = cloud.LogShipper(run.id, outputs).start()
        try:
            exit_code, timed_out = self._run_process(run, run_dir, outputs)
        finally:
            shipper.stop()
        with self._lock:
            if exit_code is None:
                pass  # ended before it started (stopped, or its code could not be fetched)
            elif timed_out:
                self._set_state(run, "TIMEOUT", f"Job run timed out after {run.timeout_minutes} minute(s)")
            elif run.stop_requested:
                self._set_state(run, "STOPPED")
            elif exit_code == 0:
                self._set_state(run, "SUCCEEDED")
            else:
                self._set_state(run, "FAILED", _error_from_logs(outputs.values(), exit_code))
        self._finish(run)

    def _run_process(self, run: JobRun, run_dir: Path, outputs: dict[str, Path]) -> tuple[int | None, bool]:
        """Fetch the run's code, start it (or hand it to the standby), wait for it: (exit code, timed out)."""
        try:
            launch = self._prepare(run.job_snapshot, run.arguments, run_dir, run.id)
        except Exception as err:  # the script or its libraries could not be fetched
            with self._lock:
                self._set_state(run, "FAILED", f"{type(err).__name__}: {err}")
            return None, False
        stdout, stderr = outputs[cloud.OUTPUT_GROUP], outputs[cloud.ERROR_GROUP]
        with self._lock:
            if run.stop_requested:
                if run.state in ACTIVE_STATES:
                    self._set_state(run, "STOPPED")
                return None, False
            standby = self._take_standby(run.job_name, launch, run_dir, stdout, stderr)
            run.process = standby.process if standby else self._start(launch, run_dir, stdout, stderr)
            (run_dir / "pid").write_text(str(run.process.pid))  # the run's process group, for operators
            self._set_state(run, "RUNNING")
            self._save()
        timed_out = False
        try:
            exit_code = run.process.wait(timeout=run.timeout_minutes * self.config.minute_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            terminate(run.process)
            exit_code = run.process.wait()
        if standby is not None:
            standby.discard()
        self._warm(run.job_name)  # warms up now the run is over, not while it needed the CPU
        return exit_code, timed_out

    def _finish(self, run: JobRun) -> None:
        """A run ended: its event, its bookmark, a retry if it failed and attempts are left, and the
        next WAITING run. A run of a job deleted meanwhile just ends."""
        with self._lock:
            current = run in self._runs.get(run.job_name, [])
            retry = None
            if current and run.state == "SUCCEEDED":
                self._record_bookmark(run)
            if current and run.state == "FAILED" and not run.stop_requested:
                if run.attempt < run.job_snapshot.get("MaxRetries", 0):
                    retry = dataclasses.replace(
                        run,
                        id="jr_" + secrets.token_hex(32),
                        attempt=run.attempt + 1,
                        previous_run_id=run.id,
                        started_on=time.time(),
                        state="STARTING",
                        completed_on=None,
                        error_message=None,
                        stop_requested=False,
                        process=None,
                    )
            self._save()
        if current:
            cloud.announce(run.job_name, run.id, run.state, run.error_message)
        if retry is not None:
            with self._lock:
                self._submit(retry, retry=True)
        self._admit_waiting(run.job_name)

    def _prepare(self, job: dict, run_arguments: dict[str, str], run_dir: Path, run_id: str) -> Launch:
        """Fetch the script and its --extra-py-files into ``run_dir``; how to start them."""
        arguments = {**job["DefaultArguments"], **run_arguments, **job["NonOverridableArguments"]}
        script = _download(job["Command"]["ScriptLocation"], run_dir)
        py_files = []
        for uri in filter(None, (u.strip() for u in arguments.get("--extra-py-files", "").split(","))):
            py_files.append(str(_download(uri, run_dir / "py")))
        argv = ["--JOB_ID", "j_" + job["Name"], "--JOB_RUN_ID", run_id, "--JOB_NAME", job["Name"]]
        for key, value in arguments.items():
            argv += [key, value]
        fingerprint = hashlib.sha256()
        for path in (script, *py_files):
            fingerprint.update(Path(path).read_bytes())
        spark_ui = arguments.get(SPARK_UI_ARGUMENT) == "true"
        address = debug.debug_address(arguments)
        script_path, library = str(script), py_files
        if address:
            if self.config.launcher != [sys.executable]:
                raise ValueError(
                    f"{debug.DEBUG_ARGUMENT}: a debugger attaches to a Python driver, not to {self.config.launcher}"
                )
            script_path, library = debug.lay_out(self.config.state_dir, script_path, py_files)
        env = self._environment(spark_ui)
        env["PYTHONPATH"] = os.pathsep.join(library + [p for p in [env.get("PYTHONPATH")] if p])
        return Launch(script_path, argv, py_files, env, fingerprint.hexdigest(), address, spark_ui)

    def _environment(self, spark_ui: bool = False) -> dict[str, str]:
        env = {**os.environ, **self.config.env}
        if self.config.self_url:
            env["AWS_ENDPOINT_URL_GLUE"] = self.config.self_url
        if self.config.launcher == default_launcher():
            env.setdefault("PYSPARK_SUBMIT_ARGS", SPARK_SUBMIT_ARGS)
            if spark_ui:
                events = self.spark_events_dir
                events.mkdir(parents=True, exist_ok=True)
                on = (
                    f"--conf spark.ui.enabled=true --conf spark.ui.port={SPARK_UI_PORT} "
                    f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir={events.absolute().as_uri()} "
                )
                env["PYSPARK_SUBMIT_ARGS"] = env["PYSPARK_SUBMIT_ARGS"].replace("--conf spark.ui.enabled=false ", on)
                if self.config.host != "0.0.0.0":  # in the runner's container, compose publishes the UI port
                    env["SPARK_LOCAL_IP"] = self.config.host  # the UI binds to it (else to every interface)
        return env

    @property
    def spark_events_dir(self) -> Path:
        """Where runs of a job with --enable-spark-ui keep their Spark event logs (glueline spark-history)."""
        return self.config.state_dir / "spark-events"

    def _start(self, launch: Launch, run_dir: Path, stdout: Path, stderr: Path) -> subprocess.Popen:
        launcher = self.config.launcher
        with open(stdout, "ab") as out, open(stderr, "ab") as err:
            if launch.debug:
                launcher = debug.debugpy_command(launch.debug)
                out.write(f"waiting for a debugger to attach at {launch.debug} ({launch.script})\n".encode())
                out.flush()
            return subprocess.Popen(
                [*launcher, launch.script, *launch.argv],
                cwd=run_dir,
                env=launch.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )

    # -- the standby process (see glueline.local.runner.standby) ------------------------------------

    def standby_state(self) -> dict | None:
        with self._lock:
            standby = self._standby
        if standby is None or standby.process.poll() is not None:
            return None
        state = "ready" if standby.ready.is_set() else "warming"
        return {"job": standby.job_name, "state": state, "pid": standby.process.pid}

    def _warm(self, job_name: str) -> None:
        """Start a standby for ``job_name``'s next run (replacing one kept for other code), in the background."""
        if self.config.standby and not self._closed:
            with self._lock:
                self._warm_requests += 1
                request = self._warm_requests
            threading.Thread(target=self._spawn_standby, args=(job_name, request), name="standby", daemon=True).start()

    def _spawn_standby(self, job_name: str, request: int) -> None:
        with self._lock:
            job = copy.deepcopy(self._jobs.get(job_name))
        if job is None or self._closed or _needs_own_process(job["DefaultArguments"]):
            return
        directory = Path(tempfile.mkdtemp(prefix="standby-", dir=self.config.state_dir))
        try:
            launch = self._prepare(job, {}, directory, "jr_standby")
        except Exception:
            log.exception("no standby for %s: its script could not be fetched", job_name)
            shutil.rmtree(directory, ignore_errors=True)
            return
        with self._lock:
            current = self._standby
            superseded = request != self._warm_requests or self._closed
            if superseded or (current and current.fingerprint == launch.fingerprint and current.process.poll() is None):
                shutil.rmtree(directory, ignore_errors=True)
                return  # a later request is being served, or one is warming or warm for this code already
            self._standby = None
        if current is not None:
            current.discard()
        with open(self.config.state_dir / "standby.log", "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-I", str(STANDBY_SCRIPT)],
                cwd=directory,
                env=launch.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
            )
        process.stdin.write((json.dumps({"script": launch.script, "py_files": launch.py_files}) + "\n").encode())
        process.stdin.flush()
        standby = Standby(job_name, launch.fingerprint, process, directory)
        threading.Thread(target=_await_ready, args=(standby,), name="standby-ready", daemon=True).start()
        with self._lock:
            if not self._closed and self._standby is None and request == self._warm_requests:
                self._standby = standby
                return
        standby.discard()  # the runner closed, or a later request came

    def _take_standby(self, job_name: str, launch: Launch, run_dir: Path, stdout: Path, stderr: Path) -> Standby | None:
        """Hand the run to the standby if it was started for this job with exactly this code (warm, or
        still warming: then it cuts its warm-up short once Spark is up); otherwise it is of no use and goes."""
        if launch.debug or launch.spark_ui:
            return None  # see _needs_own_process; the standby stays for the next run
        standby, self._standby = self._standby, None
        if standby is None:
            return None
        same_code = (standby.job_name, standby.fingerprint) == (job_name, launch.fingerprint)
        if standby.process.poll() is not None or not same_code:
            standby.discard()  # it died while waiting, or it holds other code: start cold
            return None
        order = {"script": launch.script, "argv": launch.argv, "cwd": str(run_dir), "env": launch.env}
        try:
            logs = {"stdout": str(stdout), "stderr": str(stderr)}
            standby.process.stdin.write((json.dumps({**order, **logs}) + "\n").encode())
            standby.process.stdin.close()
        except BrokenPipeError:
            standby.discard()
            return None
        return standby

    def close(self) -> None:
        """The runner is shutting down: active runs end STOPPED (saying why), the standby goes."""
        self._closed = True
        with self._lock:
            active = [r for runs in self._runs.values() for r in runs if r.state in ACTIVE_STATES]
            for run in active:
                run.stop_requested = True
                run.error_message = "Stopped: the local Glue runner shut down"
                if run.state == "WAITING":
                    self._set_state(run, "STOPPED")
                elif run.process is not None:
                    self._background(terminate, run.process)
            standby, self._standby = self._standby, None
            self._save()
        if standby is not None:
            standby.discard()
        deadline = time.time() + _STOP_GRACE_SECONDS + 5
        while time.time() < deadline:
            with self._lock:
                threads = list(self._threads)
            if not threads:
                break
            threads[0].join(timeout=max(0.0, deadline - time.time()))
        self._save()


@dataclass
class Launch:
    """How to start one run's script: its arguments, its --extra-py-files, its environment."""

    script: str
    argv: list[str]
    py_files: list[str]
    env: dict[str, str]
    fingerprint: str  # of the script and its extra files: which code a run executes
    debug: str | None = None  # the address its driver waits for a debugger on (glueline.local.runner.debug)
    spark_ui: bool = False  # Spark's UI on and its event log kept


def _needs_own_process(arguments: dict[str, str]) -> bool:
    """A run waiting for a debugger, or with Spark's UI, starts its own process (a standby has neither)."""
    return bool(debug.debug_address(arguments)) or arguments.get(SPARK_UI_ARGUMENT) == "true"


def _await_ready(standby: Standby) -> None:
    if standby.process.stdout.readline().strip() == b"ready":
        standby.ready.set()


def _stop_error(name: str, run_id: str, code: str, message: str) -> dict:
    return {"JobName": name, "JobRunId": run_id, "ErrorDetail": {"ErrorCode": code, "ErrorMessage": message}}


def _end_orphan(run_dir: Path) -> None:
    """A run's process group that outlived its runner (killed, crashed): ended, if it still runs there
    (its working directory is the run's, so a reused process ID is left alone)."""
    try:
        pid = int((run_dir / "pid").read_text())
        if Path(f"/proc/{pid}/cwd").resolve() != run_dir.resolve():
            return
        os.killpg(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


def terminate(process: subprocess.Popen) -> None:
    """SIGTERM the run's whole process group (Spark's JVM included), SIGKILL if it lingers."""
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=_STOP_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _download(uri: str, directory: Path) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3:// URI: {uri}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / Path(parts.path).name
    aws_client("s3").download_file(parts.netloc, parts.path.lstrip("/"), str(target))
    return target


_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit)\b.*)$")


def _error_from_logs(paths, exit_code: int) -> str:
    """The last exception line a failed script printed (stderr first), as Glue shows it in ErrorMessage."""
    paths = sorted(paths, key=lambda p: p.name != "error.log")
    for path in paths:
        if not path.exists():
            continue
        for line in reversed(path.read_bytes()[-64_000:].decode("utf-8", "replace").splitlines()):
            match = _EXCEPTION_LINE.match(line.strip())
            if match:
                return f"{match.group(1)[:1500]} (log: {path})"
    return f"Job script exited with code {exit_code} (log: {paths[0].parent})"


def default_launcher() -> list[str]:
    """``spark-submit`` where one is on PATH beside no PySpark (the aws-glue-libs image), else Python."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        submit = shutil.which("spark-submit")
        if submit:
            return [submit]
    return [sys.executable]
