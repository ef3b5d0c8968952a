"""What happens to a file, decided in one place. The Lambda and the Glue job both call this module; the
audit table (``glueline.shared.audit``) only stores what it decides, and the S3 layout
(``glueline.shared.layout``) only says where files go.

    PENDING ──claim──▶ PROCESSING ──complete──▶ COMPLETED  file in processed/
       │                  ▲   │ └──reject────▶ REJECTED   file in rejected/ (refused, gone, out of attempts)
       │          retry   │   └──fail───────▶ FAILED     file stays in source/ for the next attempt
       │   (attempts left)└────────────────── FAILED
       └─admit: header refused by the Lambda─▶ REJECTED

* **admit** (Lambda): a new file version is checked (``integrity``) and recorded with a conditional put,
  so the schedule and an S3 event racing for the same file create one item. A file whose header breaks
  the contract is rejected right there, without paying for a Glue run; any other becomes PENDING.
* **redeliver** (Lambda): content with a final outcome for this target, uploaded again, goes straight to
  the first copy's final place and is counted; nothing is loaded twice. Except a file *given up* (its
  attempts ran out, not its content refused): uploaded again, it is PENDING with its attempts back.
* **work**: what a Glue run must take now: PENDING files, FAILED ones with attempts left (the retry), and
  PROCESSING ones whose holder died (its Glue run ended, or a Lambda claim older than any Lambda lives).
* **claim** (job): PROCESSING, one more attempt; conditional on the item being as it was read, so two
  runs never take the same file.
  A dead claim taken over after the file's last attempt is not loaded again: completed if that
  attempt had moved it, else given up (``JobRun._settle_beyond_attempts``).
* **complete** (job): rejected rows uploaded, the file moved to processed/, COMPLETED with its counts.
* **fail** (job): FAILED with the error, the file stays in source/; on the last attempt the file is
  given up instead: moved to rejected/, REJECTED with "gave up after N attempt(s); last error: …".
* **reject**: REJECTED with the reason, the file moved to rejected/ when it is still there.

Nothing moves backwards except FAILED → PROCESSING (a retry) and PROCESSING → PROCESSING (a dead claim
taken over). COMPLETED and REJECTED are final. Every item belongs to one *target* (the database and
table its rows go to, part of its FileID): the same file loaded into another database is another item.

Standard library and boto3 only: ships in the Lambda zip and the Glue job's helper code.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from glueline.shared import layout
from glueline.shared.audit import (
    AuditRecord,
    AuditTable,
    Status,
    age_seconds,
    attribute,
    content_identity,
    count_attributes,
    event,
    file_id,
    quoted_etag,
    to_timestamp,
    utc_now,
)
from glueline.shared.counts import Counts
from glueline.shared.events import ObjectRef
from glueline.shared.gluerun import ACTIVE_RUN_STATES
from glueline.shared.integrity import IntegrityReport, SourceGone, head_version, sample_object

# A Lambda holds a claim only while it rejects a file; no Lambda invocation lives longer than 15 minutes.
LAMBDA_CLAIM_TTL_SECONDS = 900
# An object put under source/ this recently that no item knows yet is still being announced.
ARRIVAL_SECONDS = 10.0
# A trigger names at most this many of the FileIDs it admitted in the run's --FILE_IDS argument (the
# run reads those item by item, not through the eventually consistent index); "-" names none.
ANNOUNCED_MAX = 50
NO_FILE_IDS = "-"
# A run's own argument naming the target of the trigger that started it. A run takes the job's arguments
# (its --TARGET among them) when it is started, so one queued before a deploy that changed the target
# refuses to load; a trigger joins only a queued run started for its own target. (The job ignores it.)
FILES_TARGET = "--FILES_TARGET"
# Runs read (newest first) to find one waiting in Glue's queue: runs queue in order, so a waiting run is
# among the newest.
QUEUED_RUNS_READ = 25
# Statuses whose items may need a Glue run.
_WORK_STATUSES = (Status.PENDING, Status.FAILED, Status.PROCESSING)
# A step's error message in the History is cut here (the latest error is kept whole in ErrorMessage).
STEP_ERROR_CHARS = 300
# What ``admit`` answers besides a status: not a source/ key; moved or deleted since it was announced;
# recorded by a concurrent writer first; identical content with a final outcome, uploaded again.
IGNORED, GONE, CLAIMED, REDELIVERED = "IGNORED", "GONE", "CLAIMED", "REDELIVERED"


class RunChecker:
    """Is a Glue run still active? (Its claims are then not dead.) Answers are cached per checker."""

    def __init__(self, glue, job_name: str):
        self.glue = glue
        self.job_name = job_name
        self._active: dict[str, bool] = {}

    def __call__(self, run_id: str) -> bool:
        if run_id not in self._active:
            try:
                state = self.glue.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"]["JobRunState"]
            except self.glue.exceptions.EntityNotFoundException:
                state = "UNKNOWN"  # e.g. a local runner restarted since
            self._active[run_id] = state in ACTIVE_RUN_STATES
        return self._active[run_id]


class TargetUnavailable(Exception):
    """The target database could not be reached: not the file's fault, so the attempt does not count
    (a burst of files during an outage must not run out of attempts and end REJECTED)."""


@dataclass
class Outcome:
    """What the job reports for a file it loaded."""

    counts: Counts
    rejected_rows_file: str | None = None  # a local CSV file of the rows that could not be loaded
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    reasons: dict[str, int] = field(default_factory=dict)  # rejected rows per reason code (contract.RowReason)
    # The loaded version's bytes as the run read them (s3://… or a local path), kept until the move has
    # them: the source may be replaced between the load and the move (``layout.move_object``).
    snapshot: str | None = None


@dataclass(frozen=True)
class RecordedLoad:
    """What a committed load of a file recorded beside its rows (the job's load ledger): its counts, the
    rejected rows per reason code, and the run that loaded it (which named its rejected-rows file)."""

    run_id: str
    counts: Counts
    reasons: dict[str, int]


class Lifecycle:
    def __init__(self, audit: AuditTable, s3, glue, job_name: str, max_attempts: int, target: str):
        self.audit = audit
        self.s3 = s3
        self.glue = glue
        self.job_name = job_name
        self.max_attempts = max_attempts
        self.target = target

    # -- what needs a run ---------------------------------------------------------------------------

    def needs_run(self, record: AuditRecord, run_is_active: Callable[[str], bool]) -> bool:
        if record.target != self.target:
            return False  # another database's file: its own deployment takes it
        if record.status == Status.PENDING:
            return True
        if record.status == Status.FAILED:
            return record.attempts < self.max_attempts
        if record.status == Status.PROCESSING:
            if record.glue_job_id:
                return not run_is_active(record.glue_job_id)
            return age_seconds(record.processing_start_timestamp) > LAMBDA_CLAIM_TTL_SECONDS
        return False

    def work(self, announced: Iterable[str] = ()) -> list[AuditRecord]:
        """Every item a Glue run should take now, oldest upload first. The status index is eventually
        consistent: an item written a moment ago may be missing from it, so the ``announced`` FileIDs
        (those a trigger just admitted) are read item by item as well."""
        checker = RunChecker(self.glue, self.job_name)
        records = {r.file_id: r for status in _WORK_STATUSES for r in self.audit.with_status(status)}
        for fid in set(announced) - set(records):
            if (record := self.audit.get(fid)) is not None:
                records[fid] = record
        return sorted(
            (r for r in records.values() if self.needs_run(r, checker)),
            key=lambda r: (r.upload_timestamp, r.file_name),
        )

    def arriving(self, bucket: str, known: set[tuple[str, str]]) -> int:
        """How many objects put under source/ in the last ARRIVAL_SECONDS are not among the ``known``
        versions (source key, ETag) of this target's files: their S3 events are still on the way to the
        Lambda. (A listing shows no checksums, so versions are compared, not FileIDs.)"""
        now = datetime.now(timezone.utc)
        count = 0
        for page in self.s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=layout.SOURCE):
            for obj in page.get("Contents", []):
                recent = (now - obj["LastModified"]).total_seconds() <= ARRIVAL_SECONDS
                if recent and layout.is_source_key(obj["Key"]):
                    count += (obj["Key"], quoted_etag(obj["ETag"])) not in known
        return count

    def unclaimed(self, fids: Iterable[str]) -> set[str]:
        """Those of ``fids`` that still need a run (read consistently, item by item)."""
        checker = RunChecker(self.glue, self.job_name)
        return {fid for fid in fids if (r := self.audit.get(fid)) and self.needs_run(r, checker)}

    # -- the Lambda's side --------------------------------------------------------------------------

    def admit(self, ref: ObjectRef) -> tuple[str | None, str]:
        """Record one announced object; returns (FileID, its status after this call, or what happened).
        The announced version is read by its key (``head_version``): its FileID needs its checksum,
        which no event carries (``content_identity``)."""
        if not layout.is_source_key(ref.key):
            return None, IGNORED
        head = head_version(self.s3, ref.bucket, ref.key, quoted_etag(ref.etag) if ref.etag else None)
        if head is not None:
            etag, size = quoted_etag(head["ETag"]), head["ContentLength"]
            uploaded = ref.uploaded or to_timestamp(head["LastModified"])
            fid = file_id(ref.bucket, ref.key, content_identity(head, size), self.target)
            self.audit.remember_version(ref.bucket, ref.key, etag, self.target, fid)
        elif ref.etag is None or ref.size is None or ref.uploaded is None:
            return None, GONE
        else:  # gone already: the file it was admitted as (a late or repeated event), else recorded below
            etag, size, uploaded = quoted_etag(ref.etag), ref.size, ref.uploaded
            fid = self.audit.version_file(ref.bucket, ref.key, etag, self.target) or file_id(
                ref.bucket, ref.key, content_identity({"ETag": etag}, size), self.target
            )
        existing = self.audit.get(fid)
        if existing is not None:
            if existing.status in Status.FINAL and self._in_source(ref.bucket, ref.key, etag):
                if existing.status == Status.REJECTED and existing.gave_up:
                    return fid, self._reopen(existing, etag)
                return fid, self._redeliver(existing, etag)
            return fid, existing.status
        report: IntegrityReport | None
        try:
            report = sample_object(self.s3, ref.bucket, ref.key, etag, size)
            problem = report.problem
        except SourceGone as gone:
            report = None
            problem = f"{gone}: replaced or deleted before it was admitted"
        record = AuditRecord(
            file_id=fid,
            file_name=layout.file_name(ref.key),
            bucket=ref.bucket,
            source_key=ref.key,
            etag=etag,
            size=size,
            upload_timestamp=uploaded,
            target=self.target,
            integrity=report.as_item() if report else {},
            warnings=report.warnings if report else [],
            history=[event("admitted")],
        )
        if problem is None:
            return fid, (Status.PENDING if self.audit.create(record) else CLAIMED)
        # Refused as a whole, or gone (an announced version that was overwritten or deleted before any
        # trigger saw it is recorded too, so the operator finds what became of the upload): this
        # invocation holds the file (a Lambda claim) while it rejects it.
        record.status, record.processing_start_timestamp = Status.PROCESSING, utc_now()
        if not self.audit.create(record):
            return fid, CLAIMED
        if report is None:
            self.reject(record, problem, holder=None, move=False)
            return fid, GONE
        self.reject(record, problem, holder=None)
        return fid, Status.REJECTED

    def run_arguments(self, fids: Iterable[str]) -> dict[str, str]:
        """The arguments of a run started for these files: their FileIDs, and the target they are for."""
        return {"--FILE_IDS": ",".join(sorted(fids)[:ANNOUNCED_MAX]) or NO_FILE_IDS, FILES_TARGET: self.target}

    @staticmethod
    def announced(argument: str) -> list[str]:
        return [fid for fid in argument.split(",") if fid and fid != NO_FILE_IDS]

    def join_queued_run(self, fids: set[str]) -> str | None:
        """A run of the job queued by Glue for a slot (WAITING) that will take ``fids``, if there is one:
        they are announced to it (``AuditTable.announce_to``: read by key, as --FILE_IDS are), and it
        takes them if it was still WAITING after that, so has not yet read what was announced to it.
        None when no run for this target waits, or the one found started meanwhile (it may have read its
        files already)."""
        runs = self.glue.get_job_runs(JobName=self.job_name, MaxResults=QUEUED_RUNS_READ)["JobRuns"]
        waiting = next(
            (
                run["Id"]
                for run in runs
                if run["JobRunState"] == "WAITING" and run.get("Arguments", {}).get(FILES_TARGET) == self.target
            ),
            None,
        )
        if waiting is None:
            return None
        self.audit.announce_to(waiting, fids)
        state = self.glue.get_job_run(JobName=self.job_name, RunId=waiting)["JobRun"]["JobRunState"]
        return waiting if state == "WAITING" else None

    def start_run(self, work: set[str]) -> str | None:
        """The Glue run that takes the ``work`` files: a queued one they join, else one started now
        (queued by Glue if the job's runs are all busy); None if Glue refused to start or queue one (its
        queue is full: the next trigger, an upload or the sweep, starts one). The Lambda's trigger calls
        it, and a run that stops claiming before its Timeout (``glueline.job.run``) for the work it leaves."""
        run_id = self.join_queued_run(work)
        if run_id is None:
            try:
                run_id = self.glue.start_job_run(
                    JobName=self.job_name, Arguments=self.run_arguments(work), JobRunQueuingEnabled=True
                )["JobRunId"]
            except self.glue.exceptions.ConcurrentRunsExceededException:
                return None
        self.note_run(work, run_id)
        return run_id

    def announced_to(self, run_id: str) -> list[str]:
        """The files announced to run ``run_id`` while it waited in Glue's queue (``join_queued_run``)."""
        return self.audit.announced_to(run_id)

    def note_run(self, fids: Iterable[str], run_id: str) -> None:
        """Record the Glue run started for files that are still pending."""
        for fid in fids:
            self.audit.update(fid, {"GlueJobID": run_id}, expect={"Status": Status.PENDING})

    def _redeliver(self, existing: AuditRecord, etag: str) -> str:
        """The same content again (``etag``: this upload's, which may not be the first one's)."""
        prefix = layout.PROCESSED if existing.status == Status.COMPLETED else layout.REJECTED
        layout.move_object(self.s3, existing.bucket, existing.source_key, etag, existing.size, prefix, existing.file_id)
        self.audit.update(
            existing.file_id,
            {"LastRedeliveryTimestamp": utc_now()},
            expect={"Status": existing.status},
            increment=("Redeliveries",),
        )
        return REDELIVERED

    def _reopen(self, existing: AuditRecord, etag: str) -> str:
        """A file given up (its attempts ran out — an outage, a bug since fixed — not its content
        refused), uploaded again: the operator's retry. It is PENDING with its attempts back, and the
        copy the give-up left in rejected/ goes: the new upload (``etag``) is the file now."""
        reopened = self.audit.update(
            existing.file_id,
            {
                "Status": Status.PENDING,
                attribute("attempts"): 0,
                attribute("etag"): etag,
                "LastRedeliveryTimestamp": utc_now(),
            },
            expect={"Status": Status.REJECTED, "UpdatedAt": existing.updated_at},
            increment=("Redeliveries",),
            remove=("GaveUp", "FinalKey", "GlueJobID", "ProcessingStartTimestamp", "ProcessingEndTimestamp"),
            step=event("reopened"),
            uploaded=existing.upload_timestamp,
        )
        if reopened is None:
            return CLAIMED  # a concurrent trigger reopened it first
        if existing.final_key:
            try:
                copy = layout.copy_of(self.s3, existing.bucket, existing.final_key)
                if layout.made_for(copy, existing.file_id, existing.etag):
                    self.s3.delete_object(Bucket=existing.bucket, Key=existing.final_key, IfMatch=copy["ETag"])
            except self.s3.exceptions.ClientError:
                pass  # gone meanwhile, or another file's now
        return Status.PENDING

    def _in_source(self, bucket: str, key: str, etag: str) -> bool:
        """Is this exact version in source/ now? Asked after reading a final status, which is written
        only once the file has left source/, so a hit is a new upload of the same content (or an event
        racing that upload's own processing, which a conditional write then settles)."""
        try:
            self.s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)
        except self.s3.exceptions.ClientError:
            return False
        return True

    # -- the job's side -----------------------------------------------------------------------------

    def claim(self, seen: AuditRecord, run_id: str) -> AuditRecord | None:
        """Take an item that needs a run (as ``seen``) for this run: PROCESSING, one more attempt.
        None when the item changed since it was read (another run took it, or a Lambda noted a run)."""
        return self.audit.update(
            seen.file_id,
            {"Status": Status.PROCESSING, "GlueJobID": run_id, "ProcessingStartTimestamp": utc_now()},
            expect={"Status": seen.status, "UpdatedAt": seen.updated_at},
            increment=("Attempts",),
            remove=("ErrorMessage", "ProcessingEndTimestamp"),
            step=event("claimed", GlueJobID=run_id, Attempt=seen.attempts + 1, From=seen.status),
            uploaded=seen.upload_timestamp,
        )

    def inspect(self, record: AuditRecord) -> IntegrityReport:
        """Check the claimed version again, as the Lambda did (raises SourceGone when it left source/).
        The same content uploaded again under its key meanwhile (another ETag: other parts, SSE-KMS) is
        the same file, so the claim follows that upload (``_follow_upload``) rather than losing it."""
        try:
            return sample_object(self.s3, record.bucket, record.source_key, record.etag, record.size)
        except SourceGone:
            if not self._follow_upload(record):
                raise
        return sample_object(self.s3, record.bucket, record.source_key, record.etag, record.size)

    def _follow_upload(self, record: AuditRecord) -> bool:
        """Does the object now under the claimed file's key have its FileID (the same content, uploaded
        again)? Then the item's and ``record``'s ETag become that upload's — the version the run loads
        and moves — while ``record``'s run holds the claim."""
        head = head_version(self.s3, record.bucket, record.source_key)
        if head is None:
            return False
        identity = content_identity(head, head["ContentLength"])
        if file_id(record.bucket, record.source_key, identity, record.target) != record.file_id:
            return False
        etag = quoted_etag(head["ETag"])
        expect = {"Status": Status.PROCESSING, "GlueJobID": record.glue_job_id}
        if self.audit.update(record.file_id, {attribute("etag"): etag}, expect=expect) is None:
            return False
        record.etag = etag
        self.audit.remember_version(record.bucket, record.source_key, etag, record.target, record.file_id)
        return True

    def moved_by_an_earlier_attempt(self, record: AuditRecord) -> str | None:
        """Where an earlier attempt moved exactly this version after committing its rows, when it stopped
        (a crash, a timeout) before recording COMPLETED; None if it is not in processed/."""
        dest = layout.destination_key(layout.PROCESSED, record.source_key)
        for key in (dest, layout.disambiguated_key(dest, record.file_id)):
            if layout.made_for(layout.copy_of(self.s3, record.bucket, key), record.file_id, record.etag):
                return key
        return None

    def complete_after_crash(
        self, record: AuditRecord, run_id: str, final_key: str, recorded: RecordedLoad | None
    ) -> None:
        """COMPLETED for a file an earlier attempt loaded and moved (the commit comes before the move)
        before it could record so: its counts as the load ledger has them (``recorded``; None for a load
        from before the ledger), and its rejected rows where that run put them (uploaded before the move)."""
        changes: dict[str, Any] = {
            "Status": Status.COMPLETED,
            "ProcessingEndTimestamp": utc_now(),
            "FinalKey": final_key,
        }
        if recorded is None:
            changes[attribute("warnings")] = [
                "loaded and moved by an earlier attempt that stopped before recording its counts"
            ]
        else:
            changes.update(count_attributes(recorded.counts))
            if recorded.reasons:
                changes[attribute("reject_reasons")] = recorded.reasons
            rows_key = layout.rejected_rows_key(record.source_key, recorded.run_id)
            if recorded.counts.rows_rejected and layout.copy_of(self.s3, record.bucket, rows_key) is not None:
                changes["RejectedRowsKey"] = rows_key
            changes[attribute("warnings")] = [
                f"loaded and moved by {recorded.run_id}, which stopped before recording it: counts from the load ledger"
            ]
        self._finish(record, run_id, changes, event(Status.COMPLETED, Key=final_key))

    def complete(self, record: AuditRecord, run_id: str, outcome: Outcome) -> str:
        """Its rows are committed: upload the rejected rows, move the file to processed/, COMPLETED."""
        started = time.perf_counter()
        rejected_rows_key = None
        if outcome.rejected_rows_file:
            rejected_rows_key = layout.rejected_rows_key(record.source_key, run_id)
            self.s3.upload_file(outcome.rejected_rows_file, record.bucket, rejected_rows_key)
        final_key = layout.move_object(
            self.s3,
            record.bucket,
            record.source_key,
            record.etag,
            record.size,
            layout.PROCESSED,
            record.file_id,
            snapshot=outcome.snapshot,
        )
        timings = {**outcome.timings, "move": time.perf_counter() - started}
        changes: dict[str, Any] = {
            **count_attributes(outcome.counts),
            "Status": Status.COMPLETED,
            "ProcessingEndTimestamp": utc_now(),
            "FinalKey": final_key,
        }
        if rejected_rows_key:
            changes["RejectedRowsKey"] = rejected_rows_key
        if outcome.reasons:
            changes[attribute("reject_reasons")] = outcome.reasons
        if outcome.warnings:
            changes[attribute("warnings")] = outcome.warnings
        changes[attribute("timings")] = timings
        self._finish(record, run_id, changes, event(Status.COMPLETED, Key=final_key))
        return final_key

    def fail(self, record: AuditRecord, run_id: str, message: str, counts: bool = True) -> str:
        """A failed attempt: FAILED (the file stays for the next trigger), or given up on the last one.
        An attempt that does not ``count`` (the target was unreachable) is given back: never given up."""
        changes: dict[str, Any] = {"Status": Status.FAILED, "ErrorMessage": message[:2000]}
        if not counts:
            changes[attribute("attempts")] = record.attempts - 1
        elif record.attempts >= self.max_attempts:
            reason = f"gave up after {record.attempts} attempt(s); last error: {message}"
            self.reject(record, reason, holder=run_id, gave_up=True)
            return Status.REJECTED
        step = event(Status.FAILED, Error=message[:STEP_ERROR_CHARS], Counted=None if counts else False)
        self._finish(record, run_id, {**changes, "ProcessingEndTimestamp": utc_now()}, step)
        return Status.FAILED

    def reject(
        self, record: AuditRecord, reason: str, holder: str | None, move: bool = True, gave_up: bool = False
    ) -> None:
        """REJECTED, and the file in rejected/ (``move``: it is still in source/ to be moved). ``holder``
        is the Glue run holding the claim, None for a Lambda's claim. ``gave_up``: its attempts ran out
        (uploading it again retries it; a file refused for its content stays refused)."""
        changes: dict[str, Any] = {"Status": Status.REJECTED, "ProcessingEndTimestamp": utc_now()}
        if gave_up:
            changes["GaveUp"] = True
        if move:
            try:
                changes["FinalKey"] = layout.move_object(
                    self.s3, record.bucket, record.source_key, record.etag, record.size, layout.REJECTED, record.file_id
                )
            except self.s3.exceptions.ClientError as err:  # the object itself is unreachable: say so
                reason += f" (the file could not be moved to rejected/: {err})"
        changes["ErrorMessage"] = reason[:2000]
        step = event(
            Status.REJECTED, Error=reason[:STEP_ERROR_CHARS], GaveUp=gave_up or None, Key=changes.get("FinalKey")
        )
        self._finish(record, holder, changes, step)

    def _finish(self, record: AuditRecord, holder: str | None, changes: dict[str, Any], step: dict[str, Any]) -> None:
        """Settle a file that ``holder`` (a Glue run; None: a Lambda) claimed, and record the step."""
        expect = {"Status": Status.PROCESSING, "GlueJobID": holder}
        self.audit.update(record.file_id, changes, expect=expect, step=step, uploaded=record.upload_timestamp)
