"""The data contract on the real stack: every bad input becomes a clear, recorded outcome, and one bad
file never stops the others of its batch."""

from __future__ import annotations

import csv
import gzip
import io
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from glueline.local.samples import write_file
from glueline.shared.audit import Status
from glueline.shared.contract import COLUMNS
from glueline.shared.counts import Counts

from .harness import HEADER, row


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_file_level_contract_in_one_batch(glueline, tmp_path):
    p = glueline
    good_body = (HEADER + "\n" + row(700001) + "\n").encode()
    reordered = list(reversed(COLUMNS)) + ["Channel"]
    reordered_header = "\ufeff" + ",".join(f"  {c.upper()} " for c in reordered)
    reordered_row = ",".join(reversed(row(700002).split(","))) + ",web"
    files = {
        "empty.csv": (b"", Status.REJECTED, "empty file"),
        "no_header.csv": (b"\n" + row(1).encode() + b"\n", Status.REJECTED, "no header"),
        "binary.csv": (bytes(range(256)) * 4, Status.REJECTED, "NUL bytes"),
        "compressed.csv": (gzip.compress(good_body), Status.REJECTED, "gzip"),
        "daily.csv.gz": (gzip.compress(good_body), Status.REJECTED, "gzip"),
        "latin1_header.csv": (
            HEADER.replace("Description", "Descripci\xf3n").encode("latin-1"),
            Status.REJECTED,
            "UTF-8",
        ),
        "missing_column.csv": (
            (HEADER.replace(",MerchantCode", "") + "\n1,2\n").encode(),
            Status.REJECTED,
            "missing required column(s): MerchantCode",
        ),
        "twice.csv": ((HEADER + ",customerid\n").encode(), Status.REJECTED, "more than once: CustomerID"),
        "header_only.csv": ((HEADER + "\r\n").encode(), Status.COMPLETED, None),
        "good.csv": (good_body, Status.COMPLETED, None),
        "reordered_extra.csv": ((reordered_header + "\r\n" + reordered_row + "\r\n").encode(), Status.COMPLETED, None),
    }
    paths = []
    for name, (body, _, _) in files.items():
        paths.append(tmp_path / name)
        paths[-1].write_bytes(body)
    records = {r.file_name: r for r in p.wait(p.upload(*paths))}

    for name, (_, status, reason) in files.items():
        record = records[name]
        assert record.status == status, (name, record.error_message)
        if status == Status.REJECTED:
            assert reason in record.error_message, (name, record.error_message)
            assert record.final_key == f"rejected/{name}" and record.glue_job_id is None
    assert records["header_only.csv"].counts == Counts()
    assert records["reordered_extra.csv"].warnings == ["extra column(s) ignored: CHANNEL"]
    assert p.keys("source/") == []
    assert sorted(p.keys("rejected/")) == sorted(f"rejected/{n}" for n, v in files.items() if v[1] == Status.REJECTED)
    assert p.query("SELECT transactionid, description FROM transactions ORDER BY 1") == [(700001, "ok"), (700002, "ok")]


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_row_level_contract(glueline, tmp_path):
    p = glueline
    lines = [
        HEADER,
        row(800001, Description='Commas, "quotes" and\r\na second line', TransactionType=" Withdrawal "),
        row(800002, CustomerID="   ", TransactionDate="2024-02-30", MerchantCode="", Description=" "),
        row(800003, TransactionDate="2024/07/13", Currency=" eur ", AccountNumber="  ACC9  "),
        row(800004, TransactionDate=""),
        row("", Description="no id"),
        row("80x005"),
        row(-800006),
        row(800007, TransactionAmount="12.345"),
        row(800008, TransactionAmount="1e3"),
        row(800009, AccountBalance="1,000.00"),
        row(800010, BranchCode="7.0"),
        row(800011, MerchantCode="M12"),
        row(800012, Currency="US"),
        "800013,ACC,1,2024-07-13,deposit,1.00,USD",
        row(800014, TransactionAmount="1.00"),
        row(800014, TransactionAmount="2.00"),
        row(800015, TransactionAmount="-0.50", AccountBalance="+5"),
        row(800016, BranchCode="x", Currency="US"),
    ]
    body = ("\r\n".join(lines) + "\r\n").encode()
    body = body.replace(b"no id", b"no \xff\xfe id")  # bytes that are not UTF-8, in the row with no id
    path = tmp_path / "rows.csv"
    path.write_bytes(body)
    (record,) = p.wait(p.upload(path))

    assert record.status == Status.COMPLETED, record.error_message
    assert record.counts == Counts(18, 6, 11, 1, customer_id_filled=1, dates_replaced=3)

    today = datetime.now(timezone.utc).date()
    got = {
        r[0]: r[1:]
        for r in p.query(
            "SELECT transactionid, customerid, transactiondate, transactiontype, currency, accountnumber, "
            "transactionamount, accountbalance, merchantcode, description, dq_flags FROM transactions"
        )
    }
    assert sorted(got) == [800001, 800002, 800003, 800004, 800014, 800015]
    assert got[800001][2] == "withdrawal" and got[800001][8] == 'Commas, "quotes" and\na second line'
    assert got[800002][0] == "N/A" and got[800002][1] == today and got[800002][7:9] == (None, None)
    assert got[800002][9] == {"customerid_filled": True, "transactiondate_original": "2024-02-30"}
    assert got[800003][1:5] == (today, "deposit", "EUR", "ACC9")
    assert got[800003][9] == {"transactiondate_original": "2024/07/13"}
    assert got[800004][9] == {"transactiondate_original": ""}
    assert got[800014][5] == Decimal("2.00")  # the last occurrence in the file wins
    assert got[800015][5:7] == (Decimal("-0.50"), Decimal("5.00"))

    rejected_csv = p.client("s3").get_object(Bucket=p.bucket, Key=record.rejected_rows_key)["Body"].read()
    rejected = list(csv.DictReader(io.StringIO(rejected_csv.decode())))
    assert [(r["line_number"], r["reject_reason"]) for r in rejected] == [
        ("7", "invalid_utf8"),
        ("8", "bad_transaction_id"),
        ("9", "bad_transaction_id"),
        ("10", "bad_transaction_amount"),
        ("11", "bad_transaction_amount"),
        ("12", "bad_account_balance"),
        ("13", "bad_branch_code"),
        ("14", "bad_merchant_code"),
        ("15", "bad_currency"),
        ("16", "wrong_field_count"),
        ("20", "bad_branch_code;bad_currency"),
    ]
    assert record.reject_reasons == {  # rows per reason code: a row refused for two counts under each
        "invalid_utf8": 1,
        "bad_transaction_id": 2,
        "bad_transaction_amount": 2,
        "bad_account_balance": 1,
        "bad_branch_code": 2,
        "bad_merchant_code": 1,
        "bad_currency": 2,
        "wrong_field_count": 1,
    }
    assert rejected[2]["TransactionID"] == "-800006" and rejected[3]["TransactionAmount"] == "12.345"
    assert rejected[9]["raw_record"] == "800013,ACC,1,2024-07-13,deposit,1.00,USD"
    assert record.rejected_rows_key == f"rejected/rows/rows.csv/{record.glue_job_id}.csv"


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_lf_and_crlf_files_load_alike(glueline, tmp_path):
    p = glueline
    lf = write_file(tmp_path / "lf.csv", 400, seed=21, dirty=0.2, first_id=500_000)
    crlf = write_file(tmp_path / "crlf.csv", 400, seed=21, dirty=0.2, first_id=600_000, crlf=True)
    assert lf == crlf
    for record in p.wait(p.upload(tmp_path / "lf.csv", tmp_path / "crlf.csv")):
        assert record.status == Status.COMPLETED and record.counts == lf
    pairs = p.query(
        "SELECT count(*) FROM transactions a JOIN transactions b ON b.transactionid = a.transactionid + 100000 "
        "WHERE a.transactionid < 600000 AND (a.description, a.transactionamount, a.customerid) "
        "IS NOT DISTINCT FROM (b.description, b.transactionamount, b.customerid)"
    )[0][0]
    assert pairs == lf.rows_loaded


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_the_newest_load_wins_across_files(glueline, tmp_path):
    p = glueline
    (tmp_path / "monday.csv").write_text(HEADER + "\n" + row(910001, TransactionAmount="1.00") + "\n")
    (tmp_path / "tuesday.csv").write_text(HEADER + "\n" + row(910001, TransactionAmount="2.00") + "\n")
    p.wait(p.upload(tmp_path / "monday.csv"))
    (tuesday,) = p.wait(p.upload(tmp_path / "tuesday.csv"))
    assert p.query("SELECT transactionamount, file_id FROM transactions") == [(Decimal("2.00"), tuesday.file_id)]


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_a_file_replaced_under_the_same_key_is_a_new_file(glueline, tmp_path):
    p = glueline
    path = tmp_path / "daily.csv"
    path.write_text(HEADER + "\n" + row(920001, TransactionAmount="1.00") + "\n" + row(920002) + "\n")
    (first,) = p.wait(p.upload(path))
    path.write_text(HEADER + "\n" + row(920001, TransactionAmount="9.99") + "\n")
    (second,) = p.wait(p.upload(path))
    assert second.file_id != first.file_id and second.status == Status.COMPLETED
    assert first.final_key == "processed/daily.csv"
    assert second.final_key == f"processed/daily.{second.file_id[:8]}.csv"  # nothing overwritten
    assert p.query("SELECT transactionid, transactionamount FROM transactions ORDER BY 1") == [
        (920001, Decimal("9.99")),
        (920002, Decimal("10.00")),
    ]
    assert p.keys("processed/") == sorted(["processed/daily.csv", second.final_key])


def test_keys_with_spaces_plus_non_ascii_and_glob_characters_flow_end_to_end(glueline, tmp_path):
    """S3 keys arrive URL-encoded in classic notifications but as they are in EventBridge events; Spark
    reads `[`, `*`, `{` in a path as a glob. Each of these files must still be found, loaded and moved."""
    p = glueline
    names = ["branch 7.csv", "a+b.csv", "köln-€.csv", "batch[1].csv", "all*.csv", "x{y}.csv", "t:08:00.csv"]
    paths = []
    for i, name in enumerate(names):
        path = tmp_path / name
        path.write_text(HEADER + "\n" + row(930001 + i) + "\n")
        paths.append(path)
    records = p.wait(p.upload(*paths))
    assert [(r.file_name, r.status, r.final_key) for r in records] == [
        (name, Status.COMPLETED, f"processed/{name}") for name in names
    ]
    assert p.query("SELECT count(*) FROM transactions") == [(len(names),)]
    assert p.keys("source/") == []


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_a_row_from_a_later_upload_is_not_undone_by_an_earlier_file(glueline, tmp_path):
    """A retried or late older file must not overwrite what a newer upload already set: the row keeps the
    newer values and the older file's row counts as a duplicate (read = loaded + rejected + duplicates)."""
    p = glueline
    (tmp_path / "newer.csv").write_text(HEADER + "\n" + row(950001, TransactionAmount="2.00") + "\n")
    (newer,) = p.wait(p.upload(tmp_path / "newer.csv"))
    # As if that row came from a file uploaded after the one below (S3 sets upload times, tests cannot).
    p.execute("UPDATE transactions SET source_uploaded_at = now() + interval '1 day' WHERE transactionid = 950001")
    (tmp_path / "older.csv").write_text(
        HEADER + "\n" + row(950001, TransactionAmount="1.00") + "\n" + row(950002) + "\n"
    )
    (older,) = p.wait(p.upload(tmp_path / "older.csv"))
    assert older.status == Status.COMPLETED
    assert (older.counts.rows_read, older.counts.rows_loaded, older.counts.rows_duplicate) == (2, 1, 1)
    assert p.query("SELECT transactionid, transactionamount, file_id FROM transactions ORDER BY 1") == [
        (950001, Decimal("2.00"), newer.file_id),
        (950002, Decimal("10.00"), older.file_id),
    ]
