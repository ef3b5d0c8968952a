"""The per-file report of ``glueline run`` and ``glueline status``: one shape for the table and the JSON.

JSON (``--json``)::

    {
      "ok": true,                      # every file COMPLETED
      "bucket": "glueline-000000000000-us-east-1",
      "target": "127.0.0.1:5432/glueline/public.transactions",   # the database the command reports on
      "target_table": "public.transactions",
      "table_rows": 436,               # rows in that table now (null if unreachable from here)
      "totals": {"files": 3, "completed": 3, "rows_read": 463, ...},
      "files": [ { "file_id", "file_name", "status", "target", "glue_job_id", "attempts", "redeliveries",
                   "rows_read", "rows_loaded", "rows_rejected", "rows_duplicate",
                   "customer_id_filled", "dates_replaced",
                   "processing_start", "processing_end", "final_key", "rejected_rows_key",
                   "reject_reasons",           # rejected rows per reason code, e.g. {"bad_currency": 2}
                   "error", "warnings" }, ... ]
    }

Each file names the target its rows were loaded into (part of its FileID): the same file loaded into
two databases is two entries, and a count of loaded rows is always a count in the named database.
"""

from __future__ import annotations

from typing import Any

from rich.console import Console, JustifyMethod
from rich.markup import escape
from rich.table import Table

from glueline.shared.audit import AuditRecord, Status
from glueline.shared.counts import COUNT_NAMES, Counts


def file_entry(record: AuditRecord) -> dict[str, Any]:
    counts = record.counts.as_dict() if record.counts else dict.fromkeys(COUNT_NAMES)
    return {
        "file_id": record.file_id,
        "file_name": record.file_name,
        "status": record.status,
        "target": record.target,
        "glue_job_id": record.glue_job_id,
        "attempts": record.attempts,
        "redeliveries": record.redeliveries or 0,
        **counts,
        "processing_start": record.processing_start_timestamp,
        "processing_end": record.processing_end_timestamp,
        "final_key": record.final_key,
        "rejected_rows_key": record.rejected_rows_key,
        "reject_reasons": record.reject_reasons,
        "error": record.error_message,
        "warnings": record.warnings,
    }


def build(
    records: list[AuditRecord], bucket: str, target: str | None, target_table: str, table_rows: int | None
) -> dict[str, Any]:
    files = [file_entry(r) for r in records]
    totals = sum((r.counts for r in records if r.counts), Counts())
    return {
        "ok": bool(files) and all(f["status"] == Status.COMPLETED for f in files),
        "bucket": bucket,
        "target": target,
        "target_table": target_table,
        "table_rows": table_rows,
        "totals": {
            "files": len(files),
            "completed": sum(f["status"] == Status.COMPLETED for f in files),
            **totals.as_dict(),
        },
        "files": files,
    }


_STATUS_STYLE = {
    Status.COMPLETED: "green",
    Status.REJECTED: "yellow",
    Status.FAILED: "red",
    Status.PROCESSING: "cyan",
    Status.PENDING: "cyan",
}


def _short_time(value: str | None) -> str:
    return value[11:19] if value else "-"


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def render(report: dict[str, Any], console: Console, title: str = "glueline") -> None:
    several_targets = len({f["target"] for f in report["files"]}) > 1
    table = Table(title=title, title_justify="left", show_lines=False)
    target_column: list[tuple[str, JustifyMethod]] = [("Target", "left")] if several_targets else []
    columns: list[tuple[str, JustifyMethod]] = [
        ("File", "left"),
        ("FileID", "left"),
        ("Status", "left"),
        *target_column,
        ("GlueJobID", "left"),
        ("Read", "right"),
        ("Loaded", "right"),
        ("Rejected", "right"),
        ("Dupl.", "right"),
        ("CustID→N/A", "right"),
        ("Date→run", "right"),
        ("Start", "left"),
        ("End", "left"),
        ("Final key", "left"),
    ]
    for header, justify in columns:
        table.add_column(header, justify=justify, overflow="fold")
    for f in report["files"]:
        style = _STATUS_STYLE.get(f["status"], "")
        table.add_row(
            escape(f["file_name"]),
            f["file_id"][:12],
            f"[{style}]{f['status']}[/]" if style else f["status"],
            *([escape(f["target"])] if several_targets else []),
            (f["glue_job_id"] or "-")[:15],
            *(_count(f[name]) for name in COUNT_NAMES),
            _short_time(f["processing_start"]),
            _short_time(f["processing_end"]),
            escape(f["final_key"] or "-"),
        )
    console.print(table)
    for f in report["files"]:
        name = escape(f["file_name"])  # file names and messages are data, not markup ("[" is common)
        if f["error"]:
            console.print(f"[bold]{name}[/]: {escape(f['error'])}")
        if f["rejected_rows_key"]:
            reasons = ", ".join(f"{code} {rows:,}" for code, rows in sorted(f["reject_reasons"].items()))
            console.print(
                f"[bold]{name}[/]: rejected rows ({escape(reasons)}) in "
                + escape(f"s3://{report['bucket']}/{f['rejected_rows_key']}")
            )
        for warning in f["warnings"] or []:
            console.print(f"[bold]{name}[/]: warning: {escape(warning)}")
    t = report["totals"]
    line = (
        f"{t['completed']}/{t['files']} file(s) completed; rows read {t['rows_read']:,}, loaded {t['rows_loaded']:,}, "
        f"rejected {t['rows_rejected']:,}, duplicates {t['rows_duplicate']:,}"
    )
    if report["table_rows"] is not None:
        line += f"; {escape(report['target'])} now holds {report['table_rows']:,} row(s)"
    else:
        line += f"; rows were loaded into {escape(report['target'])}"
    console.print(line)
