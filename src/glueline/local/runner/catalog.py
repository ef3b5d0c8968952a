"""The runner's catalog: job definitions, connections, their tags and the jobs' bookmark entries —
what Glue keeps about jobs apart from their runs. No process is started here; saving is the caller's
(``save``, called after every change, with the lock held)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Callable
from typing import Any

from glueline.local.runner.exceptions import (
    AlreadyExistsException,
    BookmarkNotFound,
    ConnectionNotFound,
    InvalidInputException,
    JobNotFound,
)
from glueline.local.runner.models import Connection, Job, JobRun


class Catalog:
    def __init__(self, lock: threading.RLock, save: Callable[[], None]):
        self._lock = lock
        self._save = save
        self.jobs: dict[str, Job] = {}
        self.connections: dict[str, Connection] = {}
        self.tags: dict[tuple[str, str], dict[str, str]] = {}  # per (kind, name): Glue keeps them apart
        self.bookmarks: dict[str, list[dict]] = {}  # per job: an entry per successful bookmarked run

    # -- the state file's part ------------------------------------------------------------------------

    def saved(self) -> dict[str, Any]:
        return {
            "jobs": {name: job.saved() for name, job in self.jobs.items()},
            "connections": {name: connection.saved() for name, connection in self.connections.items()},
            "tags": [[kind, name, tags] for (kind, name), tags in self.tags.items()],
            "bookmarks": self.bookmarks,
        }

    def restore(self, saved: dict[str, Any]) -> None:
        self.jobs = {name: Job.from_saved(job) for name, job in saved["jobs"].items()}
        self.connections = {name: Connection.from_saved(c) for name, c in saved["connections"].items()}
        self.tags = {(kind, name): tags for kind, name, tags in saved["tags"]}
        self.bookmarks = saved["bookmarks"]

    # -- jobs -----------------------------------------------------------------------------------------

    def create_job(self, request: dict) -> None:
        name = request["Name"]
        with self._lock:
            if name in self.jobs:
                raise AlreadyExistsException(f"Job with name {name} already exists")
            self.jobs[name] = Job.from_request(request)
            self.tags[("job", name)] = dict(request.get("Tags", {}))
            self._save()

    def update_job(self, name: str, update: dict) -> None:
        """Like Glue, an update replaces the whole definition (fields left out fall back to defaults);
        tags are not part of it and stay."""
        with self._lock:
            created = self.job(name).created_on
            self.jobs[name] = Job.from_request({**update, "Name": name}, created_on=created)
            self._save()

    def job(self, name: str) -> Job:
        with self._lock:
            if name not in self.jobs:
                raise JobNotFound()
            return self.jobs[name]

    def job_definition(self, name: str) -> dict | None:
        """The job as a run snapshots it (a copy), or None if there is none of that name."""
        with self._lock:
            job = self.jobs.get(name)
            return job.as_dict() if job else None

    def get_jobs(self) -> list[dict]:
        with self._lock:
            return [self.jobs[n].as_dict() for n in sorted(self.jobs)]

    def list_jobs(self, tags: dict[str, str]) -> list[str]:
        """Job names, only those carrying every given tag."""
        with self._lock:
            return [
                name
                for name in sorted(self.jobs)
                if all(self.tags.get(("job", name), {}).get(k) == v for k, v in tags.items())
            ]

    def batch_get_jobs(self, names: list[str]) -> dict:
        with self._lock:
            return {
                "Jobs": [self.jobs[n].as_dict() for n in names if n in self.jobs],
                "JobsNotFound": [n for n in names if n not in self.jobs],
            }

    def delete_job(self, name: str) -> None:
        """The job, its tags and its bookmark go (its runs are the caller's); no error if there is none."""
        with self._lock:
            self.jobs.pop(name, None)
            self.tags.pop(("job", name), None)
            self.bookmarks.pop(name, None)
            self._save()

    # -- connections ----------------------------------------------------------------------------------

    def create_connection(self, request: dict) -> None:
        definition = request["ConnectionInput"]
        name = definition["Name"]
        with self._lock:
            if name in self.connections:
                raise AlreadyExistsException(f"Connection already exists: {name}")
            self.connections[name] = Connection.from_input(definition)
            self.tags[("connection", name)] = dict(request.get("Tags", {}))
            self._save()

    def update_connection(self, name: str, definition: dict) -> None:
        with self._lock:
            created = self.connection(name).creation_time
            self.connections[name] = Connection.from_input(definition, creation_time=created)
            self._save()

    def connection(self, name: str) -> Connection:
        with self._lock:
            if name not in self.connections:
                raise ConnectionNotFound(name)
            return self.connections[name]

    def get_connections(self, hide_password: bool = False) -> list[dict]:
        with self._lock:
            return [self.connections[n].as_dict(hide_password) for n in sorted(self.connections)]

    def delete_connection(self, name: str) -> None:
        with self._lock:
            self.connection(name)
            del self.connections[name]
            self.tags.pop(("connection", name), None)
            self._save()

    # -- tags -----------------------------------------------------------------------------------------

    def get_tags(self, arn: str) -> dict[str, str]:
        with self._lock:
            return dict(self.tags.get(self._resource_of(arn), {}))

    def tag(self, arn: str, add: dict[str, str], remove: list[str]) -> None:
        with self._lock:
            tags = self.tags.setdefault(self._resource_of(arn), {})
            tags.update(add)
            for key in remove:
                tags.pop(key, None)
            self._save()

    def _resource_of(self, arn: str) -> tuple[str, str]:
        """The job or connection an ARN (arn:<partition>:glue:<region>:<account>:job/<name>) names; it must exist."""
        kind, _, name = arn.rpartition(":")[2].partition("/")
        if kind == "job":
            self.job(name)
        elif kind == "connection":
            self.connection(name)
        else:
            raise InvalidInputException(f"only jobs and connections have tags here, not {arn}")
        return kind, name

    # -- bookmarks ------------------------------------------------------------------------------------

    def get_bookmark(self, name: str, run_id: str | None) -> dict:
        with self._lock:
            entries = self.bookmarks.get(name, [])
            chosen = [e for e in entries if e.get("RunId") == run_id] if run_id else entries[-1:]
            if not chosen:
                raise BookmarkNotFound(name)
            return copy.deepcopy(chosen[-1])

    def reset_bookmark(self, name: str, run_id: str | None) -> dict:
        """Back to no state (or to the state after ``run_id``): the next bookmarked run starts there."""
        with self._lock:
            self.job(name)
            entries = self.bookmarks.setdefault(name, [])
            base = next((e for e in entries if e.get("RunId") == run_id), None) if run_id else None
            if run_id and base is None:
                raise BookmarkNotFound(name, run_id)
            kept = ("Run", "Attempt", "RunId", "PreviousRunId", "JobBookmark")
            state = {k: base[k] for k in kept if k in base} if base else {"Run": 0, "Attempt": 0, "JobBookmark": "{}"}
            entry = {"JobName": name, "Version": (entries[-1]["Version"] if entries else 0) + 1, **state}
            entries.append(entry)
            self._save()
            return copy.deepcopy(entry)

    def record_bookmark(self, run: JobRun) -> None:
        """A successful run of a job with bookmarks enabled is a new bookmark entry. Local Spark keeps
        no per-source state, so JobBookmark is an empty state; versions, runs and IDs follow Glue."""
        job = run.job_snapshot
        arguments = {**job["DefaultArguments"], **run.arguments, **job.get("NonOverridableArguments", {})}
        if arguments.get("--job-bookmark-option") != "job-bookmark-enable":
            return
        with self._lock:
            entries = self.bookmarks.setdefault(run.job_name, [])
            last: dict[str, Any] = entries[-1] if entries else {"Version": 0, "Run": 0, "RunId": None}
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
