"""The local Glue runner's backend: the catalog, the runs, their execution and the warm standby, put
together and kept in ``state_dir/state.json`` (written on every change, so a restarted runner has its
jobs, connections, tags, bookmarks and finished runs; see ``runs`` for what becomes of active ones).

A run does what Glue does with a ``glueetl`` job: fetch the script from ``ScriptLocation`` (S3), fetch
``--extra-py-files`` and put them on the path, then start the script in a fresh process (``launch``,
``execution``); each run's output is under ``state_dir/runs/<job>/<run id>/`` (``output.log``: stdout,
``error.log``: stderr) and, with its final state, goes to CloudWatch Logs and EventBridge (``cloud``).
The launcher is a setting: the local Python (PySpark from PyPI) by default, ``spark-submit`` inside the
aws-glue-libs image.

With ``standby``, the runner keeps one job process warm for the job it expects next and hands that
job's next run to it (``warm``). ``GET /`` reports it: ``{"job": …, "state": "warming" | "ready",
"pid": …}``, or null.

Each method answers one Glue operation in the API's shape; ``server`` reads the requests.
"""

from __future__ import annotations

import json
import threading

from glueline.local.runner.catalog import Catalog
from glueline.local.runner.config import RunnerConfig
from glueline.local.runner.execution import RunExecution
from glueline.local.runner.runs import Runs
from glueline.local.runner.warm import StandbyKeeper


class GlueBackend:
    def __init__(self, config: RunnerConfig):
        self.config = config
        self._lock = threading.RLock()
        self._state_file = config.state_dir / "state.json"
        self.catalog = Catalog(self._lock, self._save)
        self.standbys = StandbyKeeper(config, self.catalog.job_definition, self._lock)
        execution = RunExecution(config, self.standbys)
        self.runs = Runs(self.catalog, execution, self._lock, self._save, minute_seconds=config.minute_seconds)
        self._load()

    # -- the state file -------------------------------------------------------------------------------

    def _load(self) -> None:
        if not self._state_file.exists():
            return
        saved = json.loads(self._state_file.read_text())
        self.catalog.restore(saved)
        ended = self.runs.restore(saved)
        self._save()
        for run in ended:
            self.runs.announce(run)

    def _save(self) -> None:
        with self._lock:
            partial = self._state_file.with_suffix(".partial")
            partial.write_text(json.dumps({**self.catalog.saved(), **self.runs.saved()}))
            partial.replace(self._state_file)

    # -- jobs -----------------------------------------------------------------------------------------

    def create_job(self, request: dict) -> dict:
        self.catalog.create_job(request)
        self.standbys.warm(request["Name"])
        return {"Name": request["Name"]}

    def update_job(self, name: str, update: dict) -> dict:
        self.catalog.update_job(name, update)
        self.standbys.warm(name)
        return {"JobName": name}

    def get_job(self, name: str) -> dict:
        return self.catalog.job(name).as_dict()

    def get_jobs(self) -> list[dict]:
        return self.catalog.get_jobs()

    def list_jobs(self, tags: dict[str, str]) -> list[str]:
        return self.catalog.list_jobs(tags)

    def batch_get_jobs(self, names: list[str]) -> dict:
        return self.catalog.batch_get_jobs(names)

    def delete_job(self, name: str) -> dict:
        """As Glue: the job, its runs (active ones are stopped) and its bookmark go; deleting a job that
        does not exist is no error."""
        self.catalog.delete_job(name)
        self.runs.drop_job(name)
        return {"JobName": name}

    # -- connections, tags, bookmarks -----------------------------------------------------------------

    def create_connection(self, request: dict) -> dict:
        self.catalog.create_connection(request)
        return {"CreateConnectionStatus": "READY"}

    def update_connection(self, name: str, definition: dict) -> dict:
        self.catalog.update_connection(name, definition)
        return {}

    def get_connection(self, name: str, hide_password: bool = False) -> dict:
        return self.catalog.connection(name).as_dict(hide_password)

    def get_connections(self, hide_password: bool = False) -> list[dict]:
        return self.catalog.get_connections(hide_password)

    def delete_connection(self, name: str) -> dict:
        self.catalog.delete_connection(name)
        return {}

    def get_tags(self, arn: str) -> dict[str, str]:
        return self.catalog.get_tags(arn)

    def tag(self, arn: str, add: dict[str, str], remove: list[str]) -> dict:
        self.catalog.tag(arn, add, remove)
        return {}

    def get_bookmark(self, name: str, run_id: str | None) -> dict:
        return self.catalog.get_bookmark(name, run_id)

    def reset_bookmark(self, name: str, run_id: str | None) -> dict:
        return self.catalog.reset_bookmark(name, run_id)

    # -- runs -----------------------------------------------------------------------------------------

    def start_run(self, name: str, request: dict) -> str:
        return self.runs.start_run(name, request)

    def get_run(self, name: str, run_id: str) -> dict:
        with self._lock:
            return self.runs.run(name, run_id).as_dict()

    def get_runs(self, name: str) -> list[dict]:
        return self.runs.get_runs(name)

    def stop_runs(self, name: str, run_ids: list[str]) -> tuple[list[dict], list[dict]]:
        return self.runs.stop_runs(name, run_ids)

    def standby_state(self) -> dict | None:
        return self.standbys.state()

    def close(self) -> None:
        """The runner is shutting down: the standby goes, active runs end STOPPED (saying why)."""
        self.standbys.close()
        self.runs.close()
