"""One run of ETL_Job_to_RDS: take every file that needs a run, load them in batches, settle each file.

    work → claim a batch → check each claimed version again → one load pass for the batch → per file:
    complete (COMPLETED, in processed/) or fail (FAILED for the next trigger, or given up: REJECTED)

A file whose header breaks the contract, or that left source/ since it was announced, is rejected before
the load. When the load pass fails as a whole for a batch of several files, each of them is loaded
again alone, so one bad file cannot fail the others. The run repeats until no work is left — files
announced while it is busy are taken too — and reports the files that failed: a run with a failed file
fails, so the failure shows in the Glue console as well.

A run keeps to its Glue Timeout: it claims no new batch once less of its Timeout is left than a batch
may need (``--BATCH_SECONDS``, deploy's ``glue_batch_seconds``), hands the work left to the next run
(``Lifecycle.start_run``: Glue queues it until this one ends) and ends as it is — instead of being killed
mid-batch, which would cost each file of that batch an attempt and leave it to the daily sweep. It always
takes its first batch, so a run started late still makes progress. A file's merge is bounded by the time
left as well (``BatchLoader``).

Files uploaded together are loaded together: before it claims a batch, the run waits while objects
just put under source/ have no audit item yet — their events are still on the way (see
``Lifecycle.arriving``) — so one pass takes fifty files, which costs far less than fifty passes.

The decisions about a file are the lifecycle's (``glueline.shared.lifecycle``); the loading is a
``Loader``'s (``glueline.job.load.BatchLoader`` with Spark and PostgreSQL; fakes in the unit tests).
"""

from __future__ import annotations

import math
import re
import time
import traceback
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from glueline.shared.audit import AuditRecord
from glueline.shared.contract import HeaderMatch
from glueline.shared.integrity import SourceGone
from glueline.shared.lifecycle import Lifecycle, Outcome, RecordedLoad, TargetUnavailable

BATCH_FILES = 200  # files claimed at once: one Spark pass over all of them
GATHER_SECONDS = 0.25  # while files are still being announced, the run waits this long again…
GATHER_MAX_SECONDS = 15.0  # …but no longer than this in all before it claims
_S3_THREADS = 8  # per-file S3 and audit calls of a batch run side by side
SETTLE_SECONDS = 30  # kept at the end of a run's Timeout: its files' outcomes recorded, its files moved


def time_left(glue, job_name: str, run_id: str, clock: Callable[[], float] = time.monotonic) -> Callable[[], float]:
    """Seconds of the run's Timeout left, from now on: its Timeout (the run's, else its job's) counted from
    this call, made as the script starts. Glue's clock started a little earlier (the driver's start), so
    this overstates what is left by that much; ``--BATCH_SECONDS`` covers it."""
    minutes = glue.get_job_run(JobName=job_name, RunId=run_id)["JobRun"]["Timeout"]
    deadline = clock() + 60 * minutes
    return lambda: deadline - clock()


@dataclass(frozen=True)
class ClaimedFile:
    """A file this run holds, whose claimed version passed the header check."""

    record: AuditRecord
    header: HeaderMatch
    warnings: list[str]


class Loader(Protocol):
    def load(self, files: list[ClaimedFile]) -> dict[str, Outcome | Exception]:
        """Per FileID the outcome, or the error that kept the file out of the target. Raises when the
        pass failed as a whole (then no file of the batch has a row in the target)."""

    def discard(self, snapshot: str) -> None:
        """Delete the copy of a loaded file its outcome names (``Outcome.snapshot``): settled now."""


class JobRun:
    def __init__(
        self,
        lifecycle: Lifecycle,
        run_id: str,
        open_loader: Callable[[], Loader],
        announced: Sequence[str] = (),
        log=print,
        sleep=time.sleep,
        recorded_load: Callable[[str], RecordedLoad | None] = lambda fid: None,
        time_left: Callable[[], float] = lambda: math.inf,
        batch_seconds: float = 0.0,
    ):
        self.lifecycle = lifecycle
        self.run_id = run_id
        self.announced = list(announced)  # FileIDs its trigger admitted: maybe not in the index yet
        self.open_loader = open_loader  # called once, for the first claimed file: an idle run stays quick
        # What the load ledger holds for a file (glueline.job.load.recorded_load; none kept in unit tests).
        self.recorded_load = recorded_load
        self.time_left = time_left  # of the run's Timeout (``time_left``)
        self.batch_seconds = batch_seconds  # no new batch is claimed with less time left than this
        self.log = log
        self.sleep = sleep
        self.failures: list[str] = []
        self._batches = 0
        self._loader: Loader | None = None
        self._taken: set[str] = set()
        self._taken_versions: set[tuple[str, str]] = set()  # their (source key, ETag): see arriving

    def run(self) -> list[str]:
        """Process work until none is left; the failures, one line per file."""
        with ThreadPoolExecutor(_S3_THREADS) as pool:
            while True:
                phases = _Phases()
                claimed = self._claim_batch(pool)
                if not claimed:
                    return self.failures
                phases.end("claim")
                checked = [c for c in pool.map(self._check, claimed) if c is not None]
                phases.end("check")
                if checked:
                    self._batches += 1
                    results = self._load(checked)
                    phases.end("load")
                    list(pool.map(self._settle, checked, [results[c.record.file_id] for c in checked]))
                    phases.end("settle")
                self.log(f"batch of {len(claimed)} file(s): {phases}")

    def _claim_batch(self, pool: ThreadPoolExecutor) -> list[AuditRecord]:
        candidates = self._work()
        deadline = time.monotonic() + GATHER_MAX_SECONDS
        while candidates and len(candidates) < BATCH_FILES and time.monotonic() < deadline:
            known = self._taken_versions | {(c.source_key, c.etag) for c in candidates}
            if not self.lifecycle.arriving(candidates[0].bucket, known):
                break
            self.sleep(GATHER_SECONDS)
            candidates = self._work()
        if candidates and self._batches and self.time_left() < self.batch_seconds:
            self._hand_over(candidates)
            return []
        # None where the item changed since it was read: another run took it, or a Lambda noted a run.
        claimed = [r for r in pool.map(lambda seen: self.lifecycle.claim(seen, self.run_id), candidates) if r]
        self._taken.update(r.file_id for r in claimed)
        self._taken_versions.update((r.source_key, r.etag) for r in claimed)
        return claimed

    def _hand_over(self, work: list[AuditRecord]) -> None:
        """Too little of the Timeout is left for another batch: the next run takes the ``work``."""
        next_run = self.lifecycle.start_run({r.file_id for r in work})
        self.log(
            f"{self.time_left():.0f} s of the run's Timeout left, less than a batch may take "
            f"({self.batch_seconds:.0f} s, --BATCH_SECONDS): no more batches; {len(work)} file(s) left to "
            + (f"run {next_run}" if next_run else "the next trigger (Glue's queue is full)")
        )

    def _work(self) -> list[AuditRecord]:
        # The announced items this run already took need no more reads (the gathering polls this). Files
        # announced to it while it waited in Glue's queue join its --FILE_IDS (read at every pass: one
        # announced before the run started is read at its first).
        announced = [*self.announced, *self.lifecycle.announced_to(self.run_id)]
        work = self.lifecycle.work(announced=[fid for fid in announced if fid not in self._taken])
        return [seen for seen in work if seen.file_id not in self._taken][:BATCH_FILES]

    def _check(self, record: AuditRecord) -> ClaimedFile | None:
        """The claimed version, checked again; None when it was rejected for it."""
        if record.attempts > self.lifecycle.max_attempts:
            self._settle_beyond_attempts(record)
            return None
        try:
            report = self.lifecycle.inspect(record)
        except SourceGone as gone:
            if not self._settled_if_moved(record):
                self.lifecycle.reject(record, str(gone), holder=self.run_id, move=False)
                self.log(f"{record.file_name}: REJECTED ({gone})")
            return None
        except Exception as err:  # S3 unreachable: an attempt that failed
            self._fail(record, err)
            return None
        if report.problem is not None:
            self.lifecycle.reject(record, report.problem, holder=self.run_id)
            self.log(f"{record.file_name}: REJECTED ({report.problem})")
            return None
        assert report.header is not None  # a report without a problem found the contract's header
        return ClaimedFile(record, report.header, report.warnings)

    def _settle_beyond_attempts(self, record: AuditRecord) -> None:
        """A claim taken over from a run that died (killed, lost, timed out) on the file's last attempt:
        no attempt is left, so the file is not loaded again — a file that kills its driver (a poison file,
        an executor out of memory) would otherwise be retried for ever, each time paying for a run (found
        by the soak, bench/soak). Completed if that attempt had moved it (its rows were committed first),
        else given up: uploading it again, or the console's retry, gives it its attempts back (its rows,
        if the dead attempt committed them, are loaded again unchanged: loads are idempotent)."""
        if self._settled_if_moved(record):
            return
        attempts = self.lifecycle.max_attempts
        reason = (
            f"gave up after {attempts} attempt(s); last error: the run of attempt {attempts} ended without settling it"
        )
        self.lifecycle.reject(record, reason, holder=self.run_id, gave_up=True)
        self.log(f"{record.file_name}: REJECTED ({reason})")

    def _settled_if_moved(self, record: AuditRecord) -> bool:
        """When an earlier attempt had loaded the file and moved it to processed/ before it stopped (its
        rows are committed before the move): COMPLETED with the counts that load recorded, or, while the
        database cannot say, FAILED with the attempt given back (the next run completes it). False when
        it was not moved."""
        final_key = self.lifecycle.moved_by_an_earlier_attempt(record)
        if final_key is None:
            return False
        try:
            recorded = self.recorded_load(record.file_id)
        except TargetUnavailable as err:
            self._fail(record, err)
            return True
        self.lifecycle.complete_after_crash(record, self.run_id, final_key, recorded)
        self.log(f"{record.file_name}: COMPLETED (an earlier attempt loaded it and moved it to {final_key})")
        return True

    def _load(self, files: list[ClaimedFile]) -> dict[str, Outcome | Exception]:
        try:
            if self._loader is None:
                self._loader = self.open_loader()
            return self._loader.load(files)
        except Exception as err:
            if len(files) == 1 or self._loader is None or isinstance(err, TargetUnavailable):
                traceback.print_exc()
                return {f.record.file_id: err for f in files}
            self.log(f"the load of {len(files)} files failed as a whole ({describe(err)}); loading each alone")
            results: dict[str, Outcome | Exception] = {}
            for f in files:
                results.update(self._load([f]))
            return results

    def _settle(self, claimed: ClaimedFile, result: Outcome | Exception) -> None:
        record = claimed.record
        if isinstance(result, Exception):
            self._fail(record, result)
            return
        try:
            result.warnings = claimed.warnings
            self.lifecycle.complete(record, self.run_id, result)
        except Exception as err:  # the rows are committed; a retry's upsert changes nothing
            self._fail(record, err)
            return
        finally:
            if result.snapshot and self._loader is not None:
                self._loader.discard(result.snapshot)
        c = result.counts
        self.log(
            f"{record.file_name}: COMPLETED read={c.rows_read} loaded={c.rows_loaded} rejected={c.rows_rejected} "
            f"duplicates={c.rows_duplicate} customerid_filled={c.customer_id_filled} dates_replaced={c.dates_replaced}"
        )

    def _fail(self, record: AuditRecord, err: Exception) -> None:
        message = describe(err)
        status = self.lifecycle.fail(record, self.run_id, message, counts=not isinstance(err, TargetUnavailable))
        self.failures.append(f"{record.file_name}: {message}")
        self.log(f"{record.file_name}: {status} (attempt {record.attempts}: {message})")


class _Phases(dict):
    """Seconds per phase of a batch, for the job's log."""

    def __init__(self):
        super().__init__()
        self._since = time.perf_counter()

    def end(self, phase: str) -> None:
        now = time.perf_counter()
        self[phase], self._since = now - self._since, now

    def __str__(self) -> str:
        return ", ".join(f"{phase} {seconds:.2f} s" for phase, seconds in self.items())


_PYTHON_ERROR = re.compile(r"^(?!org\.|java\.|py4j\.|scala\.)([\w.]*(?:Error|Exception)): (.*)$", re.MULTILINE)


_ROW_DATA_LINES = ("DETAIL:", "CONTEXT:")


def describe(err: Exception) -> str:
    """The error as an operator needs it: for a Python error inside a Spark task, that error — not the
    Java stack trace Spark wraps it in."""
    text = str(err)
    if "Traceback (most recent call last)" in text:
        tail = text.split("Traceback (most recent call last)", 1)[1]
        match = _PYTHON_ERROR.search(tail)
        if match:
            return f"{match.group(1)}: {match.group(2).strip()} (in a Spark task)"
    # PostgreSQL's DETAIL and CONTEXT lines quote row values (a key, a failing row): customer data
    # that must not reach audit items and reports; the primary message names the problem.
    text = "\n".join(line for line in text.splitlines() if not line.startswith(_ROW_DATA_LINES))
    return f"{type(err).__name__}: {text}".strip()[:2000]
