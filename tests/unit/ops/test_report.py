from rich.console import Console

from glueline.ops import report
from glueline.shared.audit import AuditRecord, Status
from glueline.shared.counts import Counts

HERE = "127.0.0.1:5432/glueline/public.transactions"
THERE = "db.example:5432/fresh/public.transactions"


def record(name: str, status: str, target: str, counts: Counts | None) -> AuditRecord:
    r = AuditRecord(name, name, "bkt", f"source/{name}", '"e"', 1, "t", target=target, status=status)
    r.counts = counts
    return r


def test_totals_count_the_files_and_each_file_names_its_database():
    records = [
        record("a.csv", Status.COMPLETED, HERE, Counts(10, 8, 1, 1, 2, 3)),
        record("b.csv", Status.FAILED, HERE, None),
    ]
    result = report.build(records, "bkt", HERE, "public.transactions", 8)
    assert result["ok"] is False and result["target"] == HERE and result["table_rows"] == 8
    assert result["totals"] == {
        "files": 2,
        "completed": 1,
        "rows_read": 10,
        "rows_loaded": 8,
        "rows_rejected": 1,
        "rows_duplicate": 1,
        "customer_id_filled": 2,
        "dates_replaced": 3,
    }
    assert [f["target"] for f in result["files"]] == [HERE, HERE]
    assert result["files"][1]["rows_read"] is None  # not processed yet


def test_the_table_shows_a_target_column_only_when_files_went_to_several_databases():
    console = Console(width=300, record=True)
    one = [record("a.csv", Status.COMPLETED, HERE, Counts(1, 1, 0, 0, 0, 0))]
    report.render(report.build(one, "bkt", HERE, "public.transactions", 1), console)
    text = console.export_text()
    assert "Target" not in text and f"{HERE} now holds 1 row(s)" in text
    two = [*one, record("a.csv", Status.COMPLETED, THERE, Counts(1, 1, 0, 0, 0, 0))]
    report.render(report.build(two, "bkt", THERE, "public.transactions", None), console)
    text = console.export_text()
    assert "Target" in text and THERE in text and f"rows were loaded into {THERE}" in text


def test_names_and_messages_are_shown_as_they_are_not_as_markup():
    console = Console(width=300, record=True)
    odd = record("a[1]/[/]b[bold].csv", Status.REJECTED, HERE, None)
    odd.file_id, odd.error_message = "0123abcd" * 4, "header [x] refused [/]"
    odd.warnings = ["column [y]"]
    report.render(report.build([odd], "bkt", HERE, "public.transactions", 0), console)
    text = console.export_text()
    assert "a[1]/[/]b[bold].csv: header [x] refused [/]" in text and "a[1]/[/]b[bold].csv: warning: column [y]" in text
