"""What ETL_Lambda_Function does with an event: admit the files it announces, then make sure a Glue run
will take everything that needs one.

An S3 "Object Created" event names its file; the daily schedule sweeps every object under ``source/``
(the safety net for events that were lost). Each file is admitted through the lifecycle
(``glueline.shared.lifecycle``): recorded PENDING, rejected for its header, or redelivered.

Then the trigger makes sure the work gets a Glue run: an S3 event for the files it announced, the
schedule for all work (new files, failed ones with attempts left, dead claims); a run takes all work
there is, whatever started it. The run is told the FileIDs this trigger admitted (``--FILE_IDS``) and
reads them item by item, as the trigger itself does: a new item may not be in the eventually consistent
status index yet. Glue allows MaxConcurrentRuns (1); when it answers ConcurrentRunsExceeded, the active run
takes all work before it ends, so this invocation only waits until its files are claimed — retrying
StartJobRun in case the active run ended first — and gives up shortly before its own timeout, leaving
them for the next trigger. Nothing waits forever and nothing is dropped.

Standard library and boto3 only: this package ships in the Lambda zip.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from glueline.shared import layout
from glueline.shared.audit import to_timestamp
from glueline.shared.events import ObjectRef, parse_event
from glueline.shared.lifecycle import Lifecycle

RETRY_INTERVAL_SECONDS = 2.0
SAFETY_MARGIN_MS = 15_000


class AdmitError(Exception):
    """Some announced objects could not be admitted; the others were, and got their run."""

    def __init__(self, result: dict[str, Any], errors: dict[str, str]):
        self.result, self.errors = result, errors
        lines = "; ".join(f"{key}: {error}" for key, error in errors.items())
        super().__init__(f"{len(errors)} object(s) could not be admitted ({lines}); done with the others: {result}")


class Intake:
    def __init__(self, lifecycle: Lifecycle, bucket: str, sleep=time.sleep):
        self.lifecycle = lifecycle
        self.bucket = bucket
        self.sleep = sleep

    def handle(self, event: dict[str, Any], remaining_ms: Callable[[], int]) -> dict[str, Any]:
        """Process one event; ``remaining_ms()`` is the Lambda context's time left."""
        refs, sweep = parse_event(event)
        if sweep:
            refs = list(self.source_objects())
        outcomes, errors = {}, {}
        for ref in refs:  # one object that cannot be admitted must not keep the others from their run
            try:
                outcomes[ref.key] = self.lifecycle.admit(ref)
            except Exception as err:
                errors[ref.key] = f"{type(err).__name__}: {err}"
        # The sweep answers for all work; an S3 event for its own files (the run it starts takes all work).
        admitted = [fid for fid, _ in outcomes.values() if fid is not None]
        if sweep:
            work = {r.file_id for r in self.lifecycle.work(announced=admitted)}
        else:
            work = self.lifecycle.unclaimed(admitted)
        run_id = self.start_job(work, remaining_ms) if work else None
        result = {
            "files": {key: status for key, (_, status) in outcomes.items()},
            "sweep": sweep,
            "work": len(work),
            "glue_job_run_id": run_id,
        }
        if errors:  # the invocation fails, so the error shows (and EventBridge retries it), after the run
            raise AdmitError(result, errors)
        return result

    def source_objects(self):
        s3 = self.lifecycle.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=layout.SOURCE):
            for obj in page.get("Contents", []):
                yield ObjectRef(self.bucket, obj["Key"], obj["ETag"], obj["Size"], to_timestamp(obj["LastModified"]))

    def start_job(self, watch: set[str], remaining_ms: Callable[[], int]) -> str | None:
        """Start a Glue run, or make sure the active run takes the ``watch``ed files."""
        glue = self.lifecycle.glue
        while True:
            try:
                run_id = glue.start_job_run(
                    JobName=self.lifecycle.job_name, Arguments={"--FILE_IDS": self.lifecycle.announce(watch)}
                )["JobRunId"]
            except glue.exceptions.ConcurrentRunsExceededException:
                pass
            else:
                self.lifecycle.note_run(watch, run_id)
                return run_id
            watch = self.lifecycle.unclaimed(watch)
            if not watch:
                return None  # the active run took them
            if remaining_ms() < SAFETY_MARGIN_MS:
                return None  # the next trigger (event or schedule) starts a run for them
            self.sleep(RETRY_INTERVAL_SECONDS)
