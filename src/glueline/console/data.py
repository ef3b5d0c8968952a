"""What the console shows, read from where the pipeline writes it: the audit table (DynamoDB), the Glue
job's runs, the bucket's rejected rows and the target table. No page reads AWS itself: each asks this
module, which the unit tests drive against moto.

Reads are bounded by what a page shows: the overview reads a week of daily tallies (one request) and
the newest failures; the default (newest first) files page reads the day index only as far as the page
reaches, skipping whole days by their tallies; sorting by another column, or filtering the runs' files
by their GlueJobID, reads every matching item.
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

from glueline.console.plots import Plot, Point, plot
from glueline.shared.audit import AuditQuery, AuditRecord, AuditTable, DailyTally, Status, to_timestamp
from glueline.shared.counts import COUNT_NAMES, Counts
from glueline.shared.gluerun import ERROR_GROUP, FINAL_RUN_STATES, OUTPUT_GROUP, RunLogReader

SORTABLE = {
    "uploaded": lambda r: r.upload_timestamp,
    "name": lambda r: r.file_name,
    "status": lambda r: r.status,
    "read": lambda r: r.counts.rows_read if r.counts else -1,
    "rejected": lambda r: r.counts.rows_rejected if r.counts else -1,
    "attempts": lambda r: r.attempts,
}
PAGE_SIZE = 50
ATTENTION = (Status.FAILED, Status.REJECTED)
RUNS_SHOWN = 10
RECENT_DAYS = 7  # the overview's counts by status
ATTENTION_SHOWN = 20
LOG_LINES = 2000
HISTORY, MIN_HISTORY = 20, 5  # files a reject rate is compared with (reject_rate_outliers)
SECRET_WORDS = re.compile(r"secret|password|token|credential", re.IGNORECASE)


@dataclass(frozen=True)
class FileFilter:
    """The files page's query string, validated: what AuditQuery selects, then how the page sorts."""

    status: str | None = None
    since: str | None = None  # a date, YYYY-MM-DD (midnight UTC)
    until: str | None = None  # a date, included
    name: str | None = None
    sort: str = "uploaded"
    descending: bool = True
    page: int = 1

    @classmethod
    def from_args(cls, args: dict[str, str]) -> FileFilter:
        """Unknown or malformed values are dropped, never an error page: a filter is a convenience."""
        status = (args.get("status") or "").upper()
        sort = args.get("sort") or "uploaded"
        try:
            page = max(1, int(args.get("page") or 1))
        except ValueError:
            page = 1
        return cls(
            status=status if status in Status.ALL else None,
            since=_date(args.get("since")),
            until=_date(args.get("until")),
            name=(args.get("name") or "").strip() or None,
            sort=sort if sort in SORTABLE else "uploaded",
            descending=args.get("order", "desc") != "asc",
            page=page,
        )

    def query(self) -> AuditQuery:
        until = None
        if self.until:
            until = to_timestamp(datetime.fromisoformat(self.until).replace(tzinfo=timezone.utc) + timedelta(days=1))
        since = to_timestamp(datetime.fromisoformat(self.since).replace(tzinfo=timezone.utc)) if self.since else None
        return AuditQuery(status=self.status, since=since, until=until, name=self.name)

    def args(self, **changes: Any) -> dict[str, str]:
        """The query string of this filter with ``changes`` (for sort links and pages)."""
        values = {
            "status": self.status,
            "since": self.since,
            "until": self.until,
            "name": self.name,
            "sort": self.sort,
            "order": "desc" if self.descending else "asc",
            "page": self.page,
        } | changes
        return {key: str(value) for key, value in values.items() if value not in (None, "")}


def _date(value: str | None) -> str | None:
    try:
        return datetime.strptime(value or "", "%Y-%m-%d").date().isoformat()
    except ValueError:
        return None


@dataclass
class FilePage:
    records: list[AuditRecord]
    total: int | None  # None: not counted (read from the index only as far as the page)
    page: int
    has_next: bool


@dataclass
class TimelineEntry:
    when: str | None
    what: str


@dataclass
class Overview:
    by_status: dict[str, int]  # files uploaded on the last recent_days days (UTC, today included)
    recent_days: int
    attention: list[AuditRecord]
    today: Counts
    today_files: int
    runs: list[dict[str, Any]]
    table_rows: int | None
    target_table: str


class ActionRefused(ValueError):
    pass


@dataclass
class Quality:
    days: int
    files: int
    plots: list[Plot]
    outliers: list[AuditRecord]


@dataclass
class RunPage:
    summary: dict[str, Any]
    arguments: dict[str, str]
    files: list[AuditRecord]
    output: list[str]
    errors: list[str]
    active: bool


class ConsoleData:
    """``audit``: the audit table; ``glue``, ``s3``, ``logs``: boto3 clients; ``table_rows()``: rows in
    the target table now (None when the database cannot be reached from here)."""

    def __init__(
        self,
        audit: AuditTable,
        glue,
        s3,
        logs,
        job_name: str,
        target_table: str,
        table_rows: Callable[[], int | None],
        sweep: Callable[[], None],
    ):
        """``sweep()``: start the daily sweep now (the Lambda invoked with the scheduled event, without
        waiting for it)."""
        self.sweep = sweep
        self.audit = audit
        self.glue = glue
        self.s3 = s3
        self.logs = logs
        self.job_name = job_name
        self.target_table = target_table
        self.table_rows = table_rows

    def overview(self, now: datetime | None = None) -> Overview:
        """The counts by status over the last ``RECENT_DAYS`` upload days and today's totals come from
        those days' tallies (``DailyTally``: one request for all); the newest FAILED and REJECTED files
        from the status index, as far as shown. The page costs the same with 100k items as with 100."""
        now = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
        days = [(now.date() - timedelta(days=back)).isoformat() for back in range(RECENT_DAYS)]
        tallies = self.audit.daily(days)
        today = tallies.get(days[0]) or DailyTally(days[0])
        attention = [
            r
            for status in ATTENTION
            for r in self.audit.find(AuditQuery(status=status), newest_first=True, limit=ATTENTION_SHOWN)
        ]
        attention.sort(key=lambda r: r.upload_timestamp, reverse=True)
        return Overview(
            by_status={s: sum(t.files.get(s, 0) for t in tallies.values()) for s in sorted(Status.ALL)},
            recent_days=RECENT_DAYS,
            attention=attention[:ATTENTION_SHOWN],
            today=today.counts,
            today_files=sum(today.files.values()),
            runs=self.runs(RUNS_SHOWN),
            table_rows=self.table_rows(),
            target_table=self.target_table,
        )

    def files(self, wanted: FileFilter) -> FilePage:
        """Sorted by upload time (the default), a page is read a day at a time from the day index (see
        ``_days_in_order``); sorted otherwise, every selected item is read and sorted here."""
        if wanted.sort == "uploaded":
            return self._files_by_day(wanted)
        records = self.audit.find(wanted.query())
        records.sort(key=SORTABLE[wanted.sort], reverse=wanted.descending)
        pages = max(1, -(-len(records) // PAGE_SIZE))
        page = min(wanted.page, pages)
        return FilePage(records[(page - 1) * PAGE_SIZE : page * PAGE_SIZE], len(records), page, page < pages)

    def _files_by_day(self, wanted: FileFilter) -> FilePage:
        """The upload days with files, in the filter's range and the order asked; their tallies say how
        many files (of the status asked) each holds, so the days before the page are skipped unread and
        the total is known. The page's days are read from the day index, each only as far as the page
        reaches. A name filter cannot be counted: the days are then read in order until the page is full
        (``total`` None)."""
        query = wanted.query()
        days = [d for d in self.audit.upload_days() if (wanted.since or d) <= d <= (wanted.until or d)]
        if wanted.descending:
            days.reverse()
        sizes: dict[str, int] | None = None
        if not query.name:
            tallies = self.audit.daily(days)
            sizes = {
                day: (t.files.get(query.status, 0) if query.status else sum(t.files.values()))
                for day, t in tallies.items()
            }
        records: list[AuditRecord] = []
        skip = (wanted.page - 1) * PAGE_SIZE
        for day in days:
            if sizes is not None and sizes.get(day, 0) <= skip:
                skip -= sizes.get(day, 0)
                continue
            found = self.audit.find(replace(query, day=day), wanted.descending, skip + PAGE_SIZE + 1 - len(records))
            records += found[skip:]
            skip = max(0, skip - len(found))
            if len(records) > PAGE_SIZE:  # one more than a page: there is a next one
                break
        total = None if sizes is None else sum(sizes.values())
        return FilePage(records[:PAGE_SIZE], total, wanted.page, len(records) > PAGE_SIZE)

    def file(self, fid: str) -> AuditRecord | None:
        return self.audit.get(fid)

    def rejected_rows(self, record: AuditRecord) -> bytes | None:
        """The file's rejected rows (CSV, with the reason of each), as the job wrote them to S3."""
        if not record.rejected_rows_key:
            return None
        return self.s3.get_object(Bucket=record.bucket, Key=record.rejected_rows_key)["Body"].read()

    def run(self, run_id: str) -> RunPage | None:
        """One run: its state and times, its arguments (a value whose name speaks of a secret is hidden;
        deploy puts none there), the files it took last, and its log output (the last ``LOG_LINES``)."""
        try:
            run = self.glue.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"]
        except self.glue.exceptions.EntityNotFoundException:
            return None
        reader = RunLogReader(self.logs, run_id)
        output = {group: reader.new_lines(group)[-LOG_LINES:] for group in (OUTPUT_GROUP, ERROR_GROUP)}
        arguments = {
            key: "(hidden)" if SECRET_WORDS.search(key) else value
            for key, value in sorted((run.get("Arguments") or {}).items())
        }
        return RunPage(
            summary=_run_summary(run),
            arguments=arguments,
            files=self.audit.find(AuditQuery(glue_job_id=run_id)),
            output=output[OUTPUT_GROUP],
            errors=output[ERROR_GROUP],
            active=run.get("JobRunState") not in FINAL_RUN_STATES,
        )

    def retry(self, fid: str) -> str:
        """The operator's retry, as the lifecycle defines it (``glueline.shared.lifecycle``): a FAILED
        file is taken by the next Glue run, which the sweep starts now; a file given up (its attempts ran
        out) is uploaded again, from its copy in rejected/ to its source key, and the Lambda makes it
        PENDING with its attempts back. A file refused for its content is not retried: its fix is a new
        file. What was done, in words."""
        record = self.audit.get(fid)
        if record is None:
            raise ActionRefused("no such file")
        if record.status == Status.FAILED:
            self.sweep()
            return f"the sweep started: the next Glue run takes {record.file_name} (attempt {record.attempts + 1})"
        if record.status == Status.REJECTED and record.gave_up and record.final_key:
            self.s3.copy_object(
                Bucket=record.bucket,
                Key=record.source_key,
                CopySource={"Bucket": record.bucket, "Key": record.final_key},
                MetadataDirective="REPLACE",  # an upload of the file, not our copy of it
            )
            return f"{record.file_name} uploaded again to {record.source_key}: it becomes PENDING, its attempts back"
        why = " (refused for its content)" if record.status == Status.REJECTED else ""
        raise ActionRefused(
            f"{record.file_name} is {record.status}{why}: only FAILED files and files given up are retried"
        )

    def quality(self, days: int = 30, now: datetime | None = None) -> Quality:
        """The plots of the data-quality page, over the files COMPLETED in the last ``days`` days (the
        day index, a day at a time) and the job's latest runs. Rejected rows are plotted in all, then
        per reason code that any of these files has (a row refused for several reasons counts under
        each), every file a point (0 where it has none of that reason)."""
        now = now or datetime.now(timezone.utc)
        since = to_timestamp(now - timedelta(days=days))
        completed = AuditQuery(status=Status.COMPLETED, since=since)
        files = [
            r
            for day in self.audit.upload_days()
            if day >= since[:10]
            for r in self.audit.find(replace(completed, day=day))
            if r.counts
        ]
        marked = reject_rate_outliers(files)
        per_day: dict[str, int] = {}
        for r in files:
            per_day[r.upload_timestamp[:10]] = per_day.get(r.upload_timestamp[:10], 0) + (
                r.counts.rows_loaded if r.counts else 0
            )

        def rate(name: str) -> list[Point]:
            return [
                Point(
                    _moment(r.upload_timestamp),
                    _share(getattr(r.counts, name), r),
                    _label(r, getattr(r.counts, name)),
                    r.file_id in marked,
                )
                for r in files
            ]

        def reason_rate(code: str) -> list[Point]:
            return [
                Point(
                    _moment(r.upload_timestamp),
                    _share(r.reject_reasons.get(code, 0), r),
                    _label(r, r.reject_reasons.get(code, 0)),
                    r.file_id in marked,
                )
                for r in files
            ]

        percent = "{:.1%}".format
        runs = [run for run in self.runs() if run["started"] and run["seconds"] is not None]
        plots = [
            plot(
                "rows-per-day",
                "Rows loaded per day",
                "line",
                [Point(_moment(f"{day}T00:00:00.000Z"), n, f"{day}: {n:,} rows") for day, n in sorted(per_day.items())],
                "{:,.0f}".format,
            ),
            plot(
                "reject-rate", "Rejected rows per file (share of rows read)", "scatter", rate("rows_rejected"), percent
            ),
            *(
                plot(f"reject-rate-{code}", f"Rejected for {code} per file", "scatter", reason_rate(code), percent)
                for code in sorted({code for r in files for code in r.reject_reasons})
            ),
            plot("na-rate", "CustomerID → N/A per file", "scatter", rate("customer_id_filled"), percent),
            plot("date-rate", "TransactionDate → the run's date per file", "scatter", rate("dates_replaced"), percent),
            plot(
                "file-size",
                "File size (bytes)",
                "scatter",
                [Point(_moment(r.upload_timestamp), r.size, f"{r.file_name}: {r.size:,} bytes") for r in files],
                "{:,.0f}".format,
            ),
            plot(
                "run-seconds",
                "Glue run duration (seconds)",
                "scatter",
                [Point(run["started"], run["seconds"], f"{run['id'][:16]}: {run['seconds']:.0f} s") for run in runs],
                "{:,.0f}".format,
            ),
        ]
        outliers = [r for r in files if r.file_id in marked]
        return Quality(days=days, files=len(files), plots=plots, outliers=outliers)

    def runs(self, limit: int = 100) -> list[dict[str, Any]]:
        """The job's latest runs, newest first, as GetJobRuns answers them (without their arguments:
        a run's page shows those)."""
        runs: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"JobName": self.job_name, "MaxResults": min(limit, 200)}
        try:
            while len(runs) < limit:
                page = self.glue.get_job_runs(**kwargs)
                runs += page.get("JobRuns", [])
                if not page.get("NextToken"):
                    break
                kwargs["NextToken"] = page["NextToken"]
        except self.glue.exceptions.EntityNotFoundException:
            return []
        runs.sort(key=lambda run: run.get("StartedOn") or datetime.min.replace(tzinfo=timezone.utc), reverse=True)
        return [_run_summary(run) for run in runs[:limit]]


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    started, ended = run.get("StartedOn"), run.get("CompletedOn")
    return {
        "id": run["Id"],
        "state": run.get("JobRunState", ""),
        "started": started,
        "ended": ended,
        "seconds": run.get("ExecutionTime") or ((ended - started).total_seconds() if started and ended else None),
        "error": run.get("ErrorMessage"),
    }


def reject_rate_outliers(files: list[AuditRecord]) -> set[str]:
    """The FileIDs whose reject rate is far above the recent history: more than three standard
    deviations and two percentage points above the mean of the ``HISTORY`` files uploaded before it
    (at least ``MIN_HISTORY`` of them)."""
    marked: set[str] = set()
    ordered = sorted(files, key=lambda r: r.upload_timestamp)
    rates = [_share(r.counts.rows_rejected if r.counts else 0, r) for r in ordered]
    for i, r in enumerate(ordered):
        history = rates[max(0, i - HISTORY) : i]
        if len(history) < MIN_HISTORY:
            continue
        mean, spread = statistics.fmean(history), statistics.pstdev(history)
        if rates[i] > mean + 3 * spread and rates[i] - mean >= 0.02:
            marked.add(r.file_id)
    return marked


def _share(part: int, record: AuditRecord) -> float:
    return part / record.counts.rows_read if record.counts and record.counts.rows_read else 0.0


def _label(record: AuditRecord, rows: int) -> str:
    return f"{record.file_name}: {rows:,} of {record.counts.rows_read if record.counts else 0:,} rows"


def _moment(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp)


def timeline(record: AuditRecord) -> list[TimelineEntry]:
    """A file's lifecycle as its audit item's History records it (``glueline.shared.lifecycle``): uploaded,
    admitted, each claim (which run, which attempt) and what it ended in, a reopening; then its
    redeliveries, which are counted, not listed. An item written before History was kept shows its
    status now."""
    entries = [TimelineEntry(record.upload_timestamp, "uploaded")]
    entries += [TimelineEntry(step.get("At"), _step_text(step)) for step in record.history]
    if not record.history:
        entries.append(TimelineEntry(record.updated_at, f"{record.status} (no history recorded for this item)"))
    elif record.status == Status.PROCESSING:
        entries.append(TimelineEntry(None, "being processed"))
    if record.redeliveries:
        entries.append(
            TimelineEntry(
                record.last_redelivery_timestamp, f"uploaded again {record.redeliveries} time(s), the last one then"
            )
        )
    return entries


def _step_text(step: dict[str, Any]) -> str:
    name, error, key = step.get("Event", "?"), step.get("Error"), step.get("Key")
    if name == "admitted":
        return "admitted by the Lambda"
    if name == "claimed":
        how = {Status.FAILED: "retried: ", Status.PROCESSING: "a dead claim taken over: "}.get(step.get("From", ""), "")
        return f"{how}claimed by Glue run {step.get('GlueJobID')} (attempt {step.get('Attempt')})"
    if name == "reopened":
        return "uploaded again after it was given up: PENDING, its attempts back"
    if name == Status.COMPLETED:
        return f"COMPLETED: moved to {key}"
    if name == Status.FAILED:
        given_back = " (not counted: the target was unreachable)" if step.get("Counted") is False else ""
        return f"FAILED{given_back}: {error}"
    if name == Status.REJECTED:
        where = f"; moved to {key}" if key else ""
        return f"{'gave up' if step.get('GaveUp') else 'REJECTED'}: {error}{where}"
    return name


def counts_table(record: AuditRecord) -> list[tuple[str, int | None]]:
    values = record.counts.as_dict() if record.counts else dict.fromkeys(COUNT_NAMES)
    return [(name, values[name]) for name in COUNT_NAMES]
