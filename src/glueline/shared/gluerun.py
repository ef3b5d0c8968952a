"""A Glue job run as its clients see it: its states, and its log output, read where AWS Glue writes it:
CloudWatch Logs, stdout in ``/aws-glue/jobs/output`` and stderr in ``/aws-glue/jobs/error``, each in a
stream named by the JobRunId.

The local Glue runner writes there too (``glueline.local.runner.cloud``), so ``glueline logs --run`` reads
a run the same way on the embedded stack, the compose stack and AWS. Following a run polls
``GetLogEvents`` with each stream's forward token until the run reaches a final state; the state is read
before the streams, so the last poll drains what the run wrote before it ended (the runner, like Glue,
ships a run's output before it sets the final state).
"""

from __future__ import annotations

import time
from collections.abc import Callable

# Glue run states in which a run may still write its claims (WAITING: queued, not yet started).
ACTIVE_RUN_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
FINAL_RUN_STATES = frozenset({"SUCCEEDED", "FAILED", "TIMEOUT", "STOPPED", "ERROR", "EXPIRED"})

LOG_GROUP = "/aws-glue/jobs"  # a run's LogGroupName; output and error streams live in the groups below
OUTPUT_GROUP = f"{LOG_GROUP}/output"
ERROR_GROUP = f"{LOG_GROUP}/error"


class RunNotFoundError(LookupError):
    pass


def run_state(glue, job_name: str, run_id: str) -> str:
    try:
        return glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]["JobRunState"]
    except glue.exceptions.EntityNotFoundException:
        raise RunNotFoundError(f"no run {run_id} of job {job_name}") from None


def stream_events(logs, group: str, stream: str, token: str | None = None) -> tuple[list[dict], str | None]:
    """One log stream's events after ``token`` (None: from its head) to its end, and the token to read on
    from later: GetLogEvents answers a page at a time, and the token it was given once there is no more."""
    events: list[dict] = []
    while True:
        kwargs = {"logGroupName": group, "logStreamName": stream, "startFromHead": True}
        if token:
            kwargs["nextToken"] = token
        page = logs.get_log_events(**kwargs)
        events += page.get("events", [])
        following = page.get("nextForwardToken")
        if not page.get("events") or not following or following == token:
            return events, following or token
        token = following


class RunLogReader:
    """Reads one run's two streams from where it last stopped."""

    def __init__(self, logs, run_id: str):
        self.logs = logs
        self.run_id = run_id
        self._tokens: dict[str, str | None] = {OUTPUT_GROUP: None, ERROR_GROUP: None}

    def new_lines(self, group: str) -> list[str]:
        """Lines written to ``group``'s stream since the last call (none while the stream does not exist)."""
        try:
            events, self._tokens[group] = stream_events(self.logs, group, self.run_id, self._tokens[group])
        except self.logs.exceptions.ResourceNotFoundException:
            return []
        return [event["message"] for event in events]


def show_run_logs(
    logs,
    glue,
    job_name: str,
    run_id: str,
    follow: bool,
    write: Callable[[str, str], None],
    sleep: Callable[[float], None] = time.sleep,
    poll_seconds: float = 2.0,
) -> str:
    """Write the run's lines as ``write(group, line)``; with ``follow``, until the run ends. Its state."""
    reader = RunLogReader(logs, run_id)
    while True:
        state = run_state(glue, job_name, run_id)
        for group in (OUTPUT_GROUP, ERROR_GROUP):
            for line in reader.new_lines(group):
                write(group, line)
        if not follow or state in FINAL_RUN_STATES:
            return state
        sleep(poll_seconds)
