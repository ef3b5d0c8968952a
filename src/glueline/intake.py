"""What ETL_Lambda_Function does with an event: admit new files, then make sure a Glue run will take
everything that needs one.

* An S3 "Object Created" event (via EventBridge, or a classic S3 notification) names the files.
* The scheduled event (daily at 08:00) sweeps every object under ``source/``: the safety net for events
  that were lost.

Admitting a file: derive its FileID from (bucket, key, ETag). Unknown: read a bounded prefix, check it
(``integrity``) and record it with a conditional put, so the schedule and an S3 event racing for the
same file create one item; a file whose header breaks the contract is moved to ``rejected/`` right here
(REJECTED) without paying for a Glue run, any other becomes PENDING. Known with a final outcome
(COMPLETED, REJECTED) yet in ``source/`` again: the same content was uploaded again; it is moved to the
same final place and counted as a redelivery (its rows are already loaded). Otherwise: left alone.

Then every trigger makes sure the work gets a Glue run: PENDING files, FAILED ones with attempts left
(the retry), and PROCESSING ones whose claim died with its Glue run (see ``audit.needs_run``). Glue
allows MaxConcurrentRuns (1); when it answers ConcurrentRunsExceeded, the active run takes all work
before it ends, so this invocation only waits until its files are claimed — retrying StartJobRun in case
the active run ended first — and gives up shortly before its own timeout, leaving them for the next
trigger. Nothing waits forever and nothing is dropped.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import unquote_plus

from glueline import layout
from glueline.audit import AuditRecord, AuditTable, RunChecker, Status, needs_run, to_timestamp, utc_now
from glueline.integrity import SAMPLE_BYTES, check_prefix

RETRY_INTERVAL_SECONDS = 2.0
SAFETY_MARGIN_MS = 15_000


@dataclass(frozen=True)
class ObjectRef:
    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    uploaded: str | None = None


def parse_event(event: dict[str, Any]) -> tuple[list[ObjectRef], bool]:
    """The objects an event announces, and whether it asks for a sweep of ``source/``."""
    if event.get("detail-type") == "Scheduled Event" or event.get("glueline") == "sweep":
        return [], True
    if event.get("source") == "aws.s3" and "detail" in event:
        detail = event["detail"]
        obj = detail.get("object", {})
        return [
            ObjectRef(
                bucket=detail["bucket"]["name"],
                key=obj["key"],
                etag=obj.get("etag"),
                size=obj.get("size"),
                uploaded=_event_time(event.get("time")),
            )
        ], False
    refs = []
    for record in event.get("Records", []):  # a classic S3 notification: keys are URL-encoded
        if "s3" in record and str(record.get("eventName", "")).startswith("ObjectCreated"):
            s3 = record["s3"]
            refs.append(
                ObjectRef(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(s3["object"]["key"]),
                    etag=s3["object"].get("eTag"),
                    size=s3["object"].get("size"),
                    uploaded=_event_time(record.get("eventTime")),
                )
            )
    if not refs:
        raise ValueError("not an S3 Object Created event nor a scheduled event")
    return refs, False


def _event_time(value: str | None) -> str | None:
    if not value:
        return None
    return to_timestamp(datetime.fromisoformat(value.replace("Z", "+00:00")))


class Intake:
    def __init__(self, s3, audit: AuditTable, glue, job_name: str, bucket: str, max_attempts: int, sleep=time.sleep):
        self.s3 = s3
        self.audit = audit
        self.glue = glue
        self.job_name = job_name
        self.bucket = bucket
        self.max_attempts = max_attempts
        self.sleep = sleep

    def handle(self, event: dict[str, Any], remaining_ms) -> dict[str, Any]:
        """Process one event; ``remaining_ms()`` is the Lambda context's time left."""
        refs, sweep = parse_event(event)
        if sweep:
            refs = list(self.source_objects())
        outcomes = {ref.key: self.admit(ref) for ref in refs}
        work = {r.file_id for r in self.audit.work(self.max_attempts, RunChecker(self.glue, self.job_name))}
        # An S3 event waits for its own files; the sweep answers for all work.
        watch = work if sweep else work & {fid for fid, _ in outcomes.values()}
        run_id = self.start_job(watch, remaining_ms) if work else None
        return {
            "files": {key: status for key, (_, status) in outcomes.items()},
            "sweep": sweep,
            "work": len(work),
            "glue_job_run_id": run_id,
        }

    def source_objects(self):
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=layout.SOURCE):
            for obj in page.get("Contents", []):
                yield ObjectRef(self.bucket, obj["Key"], obj["ETag"], obj["Size"], to_timestamp(obj["LastModified"]))

    def admit(self, ref: ObjectRef) -> tuple[str | None, str]:
        """Record one announced object; returns (FileID, its status after this call)."""
        if not layout.is_source_key(ref.key):
            return None, "IGNORED"
        if ref.etag is None or ref.size is None or ref.uploaded is None:
            try:
                head = self.s3.head_object(Bucket=ref.bucket, Key=ref.key)
            except self.s3.exceptions.ClientError:
                return None, "GONE"  # moved or deleted since it was announced
            uploaded = to_timestamp(head["LastModified"])
            ref = replace(ref, etag=head["ETag"], size=head["ContentLength"], uploaded=uploaded)
        ref = replace(ref, etag=layout.quoted_etag(ref.etag))
        fid = layout.file_id(ref.bucket, ref.key, ref.etag)
        existing = self.audit.get(fid)
        if existing is not None:
            if existing.status in Status.FINAL and self._in_source(ref):
                return fid, self.redeliver(ref, existing)
            return fid, existing.status

        head = b""
        if ref.size:
            head = self.s3.get_object(
                Bucket=ref.bucket, Key=ref.key, IfMatch=ref.etag, Range=f"bytes=0-{SAMPLE_BYTES - 1}"
            )["Body"].read()
        report = check_prefix(head, complete=len(head) >= ref.size)
        record = AuditRecord(
            file_id=fid,
            file_name=layout.file_name(ref.key),
            bucket=ref.bucket,
            source_key=ref.key,
            etag=ref.etag,
            size=ref.size,
            upload_timestamp=ref.uploaded,
            integrity=report.as_item(),
            warnings=report.warnings,
        )
        if report.ok:
            return fid, (Status.PENDING if self.audit.create(record, Status.PENDING) else "CLAIMED")
        # Refused as a whole: this invocation processes the rejection itself.
        record.processing_start_timestamp = utc_now()
        if not self.audit.create(record, Status.PROCESSING):
            return fid, "CLAIMED"
        final_key = layout.move_object(self.s3, ref.bucket, ref.key, layout.REJECTED, fid)
        self.audit.reject(fid, report.problem, final_key, holder=None)
        return fid, Status.REJECTED

    def redeliver(self, ref: ObjectRef, existing: AuditRecord) -> str:
        """Content with a final outcome arrived again: put it where the first copy went."""
        prefix = layout.PROCESSED if existing.status == Status.COMPLETED else layout.REJECTED
        layout.move_object(self.s3, ref.bucket, ref.key, prefix, existing.file_id)
        self.audit.redelivered(existing.file_id, existing.status)
        return "REDELIVERED"

    def _in_source(self, ref: ObjectRef) -> bool:
        """Is this exact version in source/ now? Asked after reading a final status, which is written
        only once the file has left source/, so a hit is a new upload of the same content (or an event
        racing that upload's own processing, which a conditional write then settles)."""
        try:
            self.s3.head_object(Bucket=ref.bucket, Key=ref.key, IfMatch=ref.etag)
        except self.s3.exceptions.ClientError:
            return False
        return True

    def start_job(self, watch: set[str], remaining_ms) -> str | None:
        """Start a Glue run, or make sure the active run takes the ``watch``ed files."""
        while True:
            try:
                run_id = self.glue.start_job_run(JobName=self.job_name)["JobRunId"]
            except self.glue.exceptions.ConcurrentRunsExceededException:
                pass
            else:
                for fid in watch:
                    self.audit.note_job_run(fid, run_id)
                return run_id
            checker = RunChecker(self.glue, self.job_name)
            watch = {fid for fid in watch if (r := self.audit.get(fid)) and needs_run(r, self.max_attempts, checker)}
            if not watch:
                return None  # the active run took them
            if remaining_ms() < SAFETY_MARGIN_MS:
                return None  # the next trigger (event or schedule) starts a run for them
            self.sleep(RETRY_INTERVAL_SECONDS)
