"""What ETL_Lambda_Function does with an event: admit the files it announces, then make sure a Glue run
will take everything that needs one.

An S3 "Object Created" event names its file; the daily schedule sweeps every object under ``source/``
(the safety net for events that were lost). Each file is admitted through the lifecycle
(``glueline.shared.lifecycle``): recorded PENDING, rejected for its header, or redelivered.

Then the trigger makes sure the work gets a Glue run: an S3 event for the files it announced, the
schedule for all work (new files, failed ones with attempts left, dead claims); a run takes all work
there is, whatever started it. The run is told the FileIDs this trigger admitted (``--FILE_IDS``) and
reads them item by item, as the trigger itself does: a new item may not be in the eventually consistent
status index yet.

The invocation never waits for Glue: it would hold a slot of the function's reserved concurrency
meanwhile, and a burst would be throttled into Lambda's retry queue behind it. Runs are started with
Glue's job run queuing (``JobRunQueuingEnabled``): a run beyond the job's MaxConcurrentRuns waits in
Glue's queue (WAITING) instead of being refused. So that a burst of files does not queue a run per file,
a trigger whose files find a run already waiting announces them to that run
(``Lifecycle.join_queued_run``), which takes them when it starts; one Glue run is started per busy
period, not per file. Where Glue refuses even a queued run (its queue is full), the files stay PENDING for
the next trigger (an upload, or the daily sweep). Nothing waits and nothing is dropped.

Standard library and boto3 only: this package ships in the Lambda zip.
"""

from __future__ import annotations

import time
from typing import Any

from glueline.shared import layout
from glueline.shared.audit import to_timestamp
from glueline.shared.events import ObjectRef, parse_event
from glueline.shared.lifecycle import Lifecycle


class AdmitError(Exception):
    """Some announced objects could not be admitted; the others were, and got their run."""

    def __init__(self, result: dict[str, Any], errors: dict[str, str]):
        self.result, self.errors = result, errors
        lines = "; ".join(f"{key}: {error}" for key, error in errors.items())
        super().__init__(f"{len(errors)} object(s) could not be admitted ({lines}); done with the others: {result}")


class Intake:
    def __init__(self, lifecycle: Lifecycle, bucket: str):
        self.lifecycle = lifecycle
        self.bucket = bucket

    def handle(self, event: dict[str, Any]) -> dict[str, Any]:
        """Process one event. The result says how long the invocation worked on it (``seconds``: from
        here, so without a cold start) and, of that, how long it took to hand its files to Glue."""
        started = time.monotonic()
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
        handing_over = time.monotonic()
        run_id = self.lifecycle.start_run(work) if work else None
        done = time.monotonic()
        result = {
            "files": {key: status for key, (_, status) in outcomes.items()},
            "sweep": sweep,
            "work": len(work),
            "glue_job_run_id": run_id,
            "seconds": round(done - started, 3),
            "glue_seconds": round(done - handing_over, 3),
        }
        if errors:  # the invocation fails, so the error shows (and EventBridge retries it), after the run
            raise AdmitError(result, errors)
        return result

    def source_objects(self):
        s3 = self.lifecycle.s3
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=layout.SOURCE):
            for obj in page.get("Contents", []):
                yield ObjectRef(self.bucket, obj["Key"], obj["ETag"], obj["Size"], to_timestamp(obj["LastModified"]))
