"""What AWS Glue sends elsewhere about a run, sent by the runner to the AWS its configuration names (the
stack's emulator, through ``AWS_ENDPOINT_URL``):

* the run's output to CloudWatch Logs while it runs: stdout to ``/aws-glue/jobs/output``, stderr to
  ``/aws-glue/jobs/error``, each in a stream named by the JobRunId (what ``aws logs tail`` and Airflow's
  ``GlueJobOperator(verbose=True)`` read);
* a ``Glue Job State Change`` event (source ``aws.glue``) on the default EventBridge bus when a run ends
  SUCCEEDED, FAILED, TIMEOUT or STOPPED, shaped as AWS documents it.

Neither may change a run's outcome: when no such service answers (the runner started on its own, with
no emulator), the runner says so once in its log and keeps the run's output in its local files.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from botocore.config import Config

from glueline.shared.timeouts import aws_client

log = logging.getLogger("glueline.local.runner")

STATE_CHANGE = "Glue Job State Change"
RUN_STATUS = "Glue Job Run Status"  # a run still active after its NotificationProperty's NotifyDelayAfter
# The runner signs its events with this key: the embedded stack's emulator lets it, as the Glue service,
# put aws.glue events (see glueline.local.embedded.emulator). Not a secret: emulators check no signatures.
GLUE_SERVICE_ACCESS_KEY_ID = "AKIAGLUELINEGLUERUNR"
# Shorter than the pipeline's bounds (glueline.shared.timeouts): shipping a run's output must not hold it up.
_CLIENT_CONFIG = Config(retries={"total_max_attempts": 3, "mode": "standard"}, connect_timeout=3, read_timeout=10)
_BATCH_EVENTS, _BATCH_BYTES = 10_000, 1_000_000  # PutLogEvents: at most 10,000 events, 1 MiB (26 B each extra)
_warned: set[str] = set()


def _warn_once(what: str, error: Exception, instead: str) -> None:
    if what not in _warned:
        _warned.add(what)
        log.warning("%s is not available (%s); %s", what, repr(error), instead)


class LogShipper:
    """Follows a run's stdout and stderr files and puts their new lines into CloudWatch Logs every
    ``interval`` seconds, and the rest when stopped."""

    def __init__(self, run_id: str, files: dict[str, Path], interval: float = 1.0):
        self.run_id = run_id
        self.files = files  # log group → file
        self.interval = interval
        self._offsets = dict.fromkeys(files, 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._follow, name=f"logs-{run_id[:12]}", daemon=True)
        self._client: Any = None
        self._created: set[str] = set()
        self._broken = False

    def start(self) -> LogShipper:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _follow(self) -> None:
        while not self._stop.wait(self.interval):
            self._ship(final=False)
        self._ship(final=True)

    def _ship(self, final: bool) -> None:
        for group, path in self.files.items():
            if self._broken or not path.exists():
                continue
            with open(path, "rb") as file:
                file.seek(self._offsets[group])
                data = file.read()
            complete = data if final else data[: data.rfind(b"\n") + 1]
            if not complete:
                continue
            lines = [line for line in complete.decode("utf-8", "replace").splitlines() if line.strip()]
            try:
                self._put(group, lines)
            except Exception as error:  # the emulator went away: keep the files, stop trying
                self._broken = True
                _warn_once("CloudWatch Logs", error, "runs keep their output in their local files")
                return
            self._offsets[group] += len(complete)

    def _put(self, group: str, lines: list[str]) -> None:
        if self._client is None:
            self._client = aws_client("logs", config=_CLIENT_CONFIG)
        logs: Any = self._client
        if group not in self._created:
            for create, names in (
                (logs.create_log_group, {"logGroupName": group}),
                (logs.create_log_stream, {"logGroupName": group, "logStreamName": self.run_id}),
            ):
                try:
                    create(**names)
                except logs.exceptions.ResourceAlreadyExistsException:
                    pass
            self._created.add(group)
        now = int(time.time() * 1000)
        batch: list[dict[str, Any]] = []
        size = 0
        for line in lines:
            message = line[:200_000]
            event = {"timestamp": now, "message": message}
            cost = len(message.encode()) + 26
            if batch and (len(batch) == _BATCH_EVENTS or size + cost > _BATCH_BYTES):
                logs.put_log_events(logGroupName=group, logStreamName=self.run_id, logEvents=batch)
                batch, size = [], 0
            batch.append(event)
            size += cost
        if batch:
            logs.put_log_events(logGroupName=group, logStreamName=self.run_id, logEvents=batch)


_SEVERITY = {"SUCCEEDED": "INFO", "STOPPED": "INFO", "TIMEOUT": "WARN", "FAILED": "ERROR"}
_MESSAGE = {"SUCCEEDED": "Job run succeeded", "STOPPED": "Job run stopped", "TIMEOUT": "Job run timed out"}


def state_change_event(job_name: str, run_id: str, state: str, error_message: str | None) -> dict:
    """The PutEvents entry AWS Glue emits when a run reaches a final state."""
    detail = {
        "jobName": job_name,
        "severity": _SEVERITY[state],
        "state": state,
        "jobRunId": run_id,
        "message": error_message if state == "FAILED" and error_message else _MESSAGE.get(state, "Job run failed"),
    }
    return {"Source": "aws.glue", "DetailType": STATE_CHANGE, "Detail": json.dumps(detail), "Resources": []}


def run_status_event(job_name: str, run_id: str, state: str, delay_minutes: int, started_on: float) -> dict:
    """The PutEvents entry AWS Glue emits when a run is still STARTING, RUNNING or STOPPING after its
    NotifyDelayAfter minutes (the job delay notification): jobName, state and jobRunId, as rules match
    them, with the delay that was passed and when the run started."""
    detail = {
        "jobName": job_name,
        "severity": "INFO",
        "notificationCondition": {"NotificationDelay": delay_minutes},
        "state": state,
        "jobRunId": run_id,
        "message": f"Job run is still {state} after {delay_minutes} minute(s)",
        "startedOn": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(started_on)),
    }
    return {"Source": "aws.glue", "DetailType": RUN_STATUS, "Detail": json.dumps(detail), "Resources": []}


def announce(job_name: str, run_id: str, state: str, error_message: str | None) -> None:
    """A run's end, on EventBridge (Glue Job State Change)."""
    _put(state_change_event(job_name, run_id, state, error_message), "runs end without an event")


def announce_delay(job_name: str, run_id: str, state: str, delay_minutes: int, started_on: float) -> None:
    """A run past its NotifyDelayAfter, on EventBridge (Glue Job Run Status)."""
    _put(run_status_event(job_name, run_id, state, delay_minutes, started_on), "delayed runs send no notification")


def _put(entry: dict, otherwise: str) -> None:
    try:
        events = aws_client(
            "events",
            config=_CLIENT_CONFIG,
            aws_access_key_id=GLUE_SERVICE_ACCESS_KEY_ID,
            aws_secret_access_key="glue-service",
        )
        answer = events.put_events(Entries=[entry])
        if answer.get("FailedEntryCount"):
            failure = answer["Entries"][0]
            raise RuntimeError(f"{failure.get('ErrorCode')}: {failure.get('ErrorMessage')}")
    except Exception as error:
        _warn_once(f"Putting {entry['DetailType']} events on EventBridge", error, otherwise)
