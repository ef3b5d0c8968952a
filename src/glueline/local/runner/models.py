"""What the runner keeps, as classes that answer as the Glue API does (``as_dict``) and are saved in the
state file as they were asked for (``saved``; ``from_saved`` reads them back): what an answer derives —
a job's capacity, a connection's status — is derived again, never stored."""

from __future__ import annotations

import copy
import secrets
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any

from glueline.local.runner.exceptions import InvalidInputException
from glueline.local.runner.validation import DEFAULT_GLUE_VERSION, check_worker_pair, default_timeout
from glueline.shared.gluerun import ACTIVE_RUN_STATES as ACTIVE_STATES
from glueline.shared.gluerun import LOG_GROUP

# A run counts against MaxConcurrentRuns from STARTING until it ends; WAITING runs queue for a slot.
RUNNING_STATES = ACTIVE_STATES - {"WAITING"}
WORKERS = ("WorkerType", "NumberOfWorkers")
# Data processing units per worker (the Glue developer guide's worker types; Standard: the legacy 1 DPU).
DPU_PER_WORKER = {"Standard": 1.0, "G.025X": 0.25, "G.1X": 1.0, "G.2X": 2.0, "G.4X": 4.0, "G.8X": 8.0, "Z.2X": 2.0}
# A Spark job sized by nothing gets 10 DPUs, a Python shell job 0.0625 (the API reference's MaxCapacity).
DEFAULT_DPUS = {"pythonshell": 0.0625}
DEFAULT_SPARK_DPUS = 10.0
# What a run carries from StartJobRun, else from its job, and answers in GetJobRun.
RUN_SETTINGS = ("SecurityConfiguration", "NotificationProperty", "ExecutionClass")


def shown_capacity(sizing: dict[str, Any], command: str) -> dict[str, Any]:
    """A job's or run's capacity as Glue answers it: WorkerType and NumberOfWorkers where it is sized by
    workers, and always MaxCapacity (its DPUs) and the deprecated AllocatedCapacity (whole DPUs)."""
    if all(k in sizing for k in WORKERS):
        workers = {k: sizing[k] for k in WORKERS}
        dpus = sizing["NumberOfWorkers"] * DPU_PER_WORKER.get(sizing["WorkerType"], 1.0)
    else:
        workers = {}
        given = sizing.get("MaxCapacity", sizing.get("AllocatedCapacity"))
        dpus = float(given) if given is not None else DEFAULT_DPUS.get(command, DEFAULT_SPARK_DPUS)
    return {**workers, "MaxCapacity": dpus, "AllocatedCapacity": int(dpus)}


def run_capacity(job: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """What a run is sized by: its own MaxCapacity (or AllocatedCapacity), else its WorkerType and
    NumberOfWorkers combined with the job's where it gives one of them (the pair checked after
    combining), else the job's sizing."""
    command = job["Command"].get("Name", "glueetl")
    if "MaxCapacity" in request or "AllocatedCapacity" in request:
        return shown_capacity({k: request[k] for k in ("MaxCapacity", "AllocatedCapacity") if k in request}, command)
    if any(k in request for k in WORKERS):
        combined = {k: request.get(k, job.get(k)) for k in WORKERS}
        sizing = {k: v for k, v in combined.items() if v is not None}
        check_worker_pair(sizing)
        return shown_capacity(sizing, command)
    return shown_capacity(job, command)


def new_run_id() -> str:
    return "jr_" + secrets.token_hex(32)


@dataclass
class Job:
    """A job definition as Glue stores it: the service model's defaults where a field was left out."""

    definition: dict[str, Any]
    created_on: float
    last_modified_on: float

    @classmethod
    def from_request(cls, definition: dict[str, Any], created_on: float | None = None) -> Job:
        """From CreateJob's request (or UpdateJob's JobUpdate, which replaces the whole definition)."""
        command = definition.get("Command", {})
        if not str(command.get("ScriptLocation", "")).startswith("s3://"):
            raise InvalidInputException("Command.ScriptLocation must be an s3:// URI")
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
        now = time.time()
        stored = {k: v for k, v in copy.deepcopy(definition).items() if k != "Tags"}
        return cls({**defaults, **stored}, created_on or now, now)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> Job:
        definition = {k: v for k, v in saved.items() if k not in ("CreatedOn", "LastModifiedOn")}
        return cls(definition, saved["CreatedOn"], saved["LastModifiedOn"])

    def saved(self) -> dict[str, Any]:
        return {**copy.deepcopy(self.definition), "CreatedOn": self.created_on, "LastModifiedOn": self.last_modified_on}

    @property
    def max_concurrent_runs(self) -> int:
        return self.definition["ExecutionProperty"].get("MaxConcurrentRuns", 1)

    def as_dict(self) -> dict[str, Any]:
        return {**self.saved(), **shown_capacity(self.definition, self.definition["Command"].get("Name", "glueetl"))}


@dataclass
class Connection:
    """A connection (the job's NETWORK one): kept and answered as Glue keeps it; a local run needs no
    network, so a connection is READY once created (Glue's status of a usable connection)."""

    definition: dict[str, Any]
    creation_time: float
    last_updated_time: float

    @classmethod
    def from_input(cls, definition: dict[str, Any], creation_time: float | None = None) -> Connection:
        now = time.time()
        return cls(copy.deepcopy(definition), creation_time or now, now)

    @classmethod
    def from_saved(cls, saved: dict[str, Any]) -> Connection:
        definition = {k: v for k, v in saved.items() if k not in ("CreationTime", "LastUpdatedTime")}
        return cls(definition, saved["CreationTime"], saved["LastUpdatedTime"])

    def saved(self) -> dict[str, Any]:
        return {
            **copy.deepcopy(self.definition),
            "CreationTime": self.creation_time,
            "LastUpdatedTime": self.last_updated_time,
        }

    def as_dict(self, hide_password: bool = False) -> dict[str, Any]:
        """``hide_password``: GetConnection's HidePassword, the metadata without the password."""
        answer = {**self.saved(), "Status": "READY"}
        if hide_password:
            answer.get("ConnectionProperties", {}).pop("PASSWORD", None)
        return answer


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
    capacity: dict = field(default_factory=dict)  # as shown_capacity answers it
    settings: dict = field(default_factory=dict)  # RUN_SETTINGS it was started with (or its job's)
    state: str = "STARTING"
    last_modified_on: float = 0.0
    completed_on: float | None = None
    error_message: str | None = None
    stop_requested: bool = False
    job_snapshot: dict = field(default_factory=dict)  # the job's definition when the run started (as_dict)
    process: subprocess.Popen | None = field(default=None, repr=False)

    @property
    def active(self) -> bool:
        return self.state in ACTIVE_STATES

    def set_state(self, state: str, error: str | None = None) -> None:
        self.state = state
        self.last_modified_on = time.time()
        if error:
            self.error_message = error
        if state not in ACTIVE_STATES:
            self.completed_on = self.last_modified_on

    def next_attempt(self) -> JobRun:
        """The retry of a failed run (MaxRetries): a new run with the same arguments and snapshot."""
        return JobRun(
            id=new_run_id(),
            job_name=self.job_name,
            arguments=self.arguments,
            timeout_minutes=self.timeout_minutes,
            started_on=time.time(),
            attempt=self.attempt + 1,
            previous_run_id=self.id,
            queuing=self.queuing,
            capacity=self.capacity,
            settings=self.settings,
            job_snapshot=self.job_snapshot,
        )

    def as_dict(self) -> dict[str, Any]:
        end = self.completed_on or time.time()
        run = {
            "Id": self.id,
            "Attempt": self.attempt,
            "JobName": self.job_name,
            "JobRunQueuingEnabled": self.queuing,
            "StartedOn": self.started_on,
            "LastModifiedOn": self.last_modified_on or self.started_on,
            "JobRunState": self.state,
            "PredecessorRuns": [],
            "Timeout": self.timeout_minutes,
            "ExecutionTime": int(end - self.started_on),
            "LogGroupName": LOG_GROUP,
            "GlueVersion": self.job_snapshot["GlueVersion"],
            **self.capacity,
            **copy.deepcopy(self.settings),
        }
        if self.arguments:  # a run started without arguments has none (the job's defaults are the job's)
            run["Arguments"] = self.arguments
        if self.settings.get("ExecutionClass") == "FLEX" and self.completed_on is not None:
            # Glue: executors' run time × their DPUs. Locally every DPU ran the whole run.
            run["DPUSeconds"] = float(run["ExecutionTime"]) * self.capacity.get("MaxCapacity", 0.0)
        if self.previous_run_id:
            run["PreviousRunId"] = self.previous_run_id
        if self.completed_on is not None:
            run["CompletedOn"] = self.completed_on
        if self.error_message:
            run["ErrorMessage"] = self.error_message
        return run

    def saved(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "process"}
