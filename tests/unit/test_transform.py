"""The cleaning rules, each on a tiny DataFrame, and the CSV reader on tricky files."""

import json
from datetime import date

import pytest

from glueline.contract import COLUMNS, FIELDS, match_header
from glueline.transform import (
    CORRUPT,
    POSITION,
    RAW,
    REASON,
    cast_types,
    clean,
    fill_customer_id,
    keep_raw,
    normalize_codes,
    parse_transaction_date,
    read_csv,
    rejection_reasons,
    trim_fields,
)

RUN_DATE = date(2026, 11, 26)
GOOD = {
    "transactionid": "1",
    "accountnumber": "ACC",
    "customerid": "42",
    "transactiondate": "2024-07-13",
    "transactiontype": "deposit",
    "transactionamount": "1.50",
    "currency": "USD",
    "accountbalance": "10.00",
    "branchcode": "3",
    "merchantcode": "4",
    "description": "ok",
}


def frame(spark, *overrides, corrupt=None):
    rows = [tuple({**GOOD, **o}[c] for c in FIELDS) + (corrupt, i + 1) for i, o in enumerate(overrides)]
    schema = ", ".join(f"{c} string" for c in FIELDS) + f", {CORRUPT} string, {POSITION} long"
    return spark.createDataFrame(rows, schema)


def test_trim_fields_strips_whitespace_and_blanks_become_null(spark):
    df = trim_fields(frame(spark, {"description": "  two words \t", "merchantcode": "   ", "accountnumber": "\r"}))
    row = df.first()
    assert (row.description, row.merchantcode, row.accountnumber) == ("two words", None, None)


def test_fill_customer_id(spark):
    df = fill_customer_id(trim_fields(frame(spark, {"customerid": " "}, {"customerid": None}, {})))
    assert [(r.customerid, r._customerid_filled) for r in df.collect()] == [
        ("N/A", True),
        ("N/A", True),
        ("42", False),
    ]


def test_normalize_codes(spark):
    row = normalize_codes(trim_fields(frame(spark, {"transactiontype": " Withdrawal ", "currency": " eur"}))).first()
    assert (row.transactiontype, row.currency) == ("withdrawal", "EUR")


@pytest.mark.parametrize(
    "text, expected, original",
    [
        ("2024-02-29", date(2024, 2, 29), None),
        ("2024-02-30", RUN_DATE, "2024-02-30"),
        ("13/07/2024", RUN_DATE, "13/07/2024"),
        ("2024-7-5", RUN_DATE, "2024-7-5"),
        ("", RUN_DATE, ""),
        (None, RUN_DATE, ""),
    ],
)
def test_invalid_dates_become_the_run_date_and_keep_their_text(spark, text, expected, original):
    df = parse_transaction_date(trim_fields(keep_raw(frame(spark, {"transactiondate": text}))), RUN_DATE)
    row = df.first()
    assert (row.transactiondate, row._transactiondate_original) == (expected, original)


@pytest.mark.parametrize(
    "override, reason",
    [
        ({"transactionid": ""}, "missing_transaction_id"),
        ({"transactionid": "12x"}, "bad_transaction_id"),
        ({"transactionid": "0"}, "bad_transaction_id"),
        ({"transactionid": "-5"}, "bad_transaction_id"),
        ({"transactionid": "99999999999999999999"}, "bad_transaction_id"),
        ({"transactionamount": "1.234"}, "bad_transaction_amount"),
        ({"transactionamount": "ten"}, "bad_transaction_amount"),
        ({"accountbalance": "1,000.00"}, "bad_account_balance"),
        ({"branchcode": "B1"}, "bad_branch_code"),
        ({"branchcode": "3000000000"}, "bad_branch_code"),
        ({"merchantcode": "4.5"}, "bad_merchant_code"),
        ({"currency": "EURO"}, "bad_currency"),
        ({"currency": "U$D"}, "bad_currency"),
        ({"description": "caf\ufffd"}, "invalid_utf8"),
        ({"currency": "EURO", "branchcode": "x"}, "bad_branch_code;bad_currency"),
        ({"merchantcode": ""}, None),
        ({"transactionamount": "-0.5", "accountbalance": "+12"}, None),
    ],
)
def test_rejection_reasons(spark, override, reason):
    df = rejection_reasons(normalize_codes(trim_fields(keep_raw(frame(spark, override)))))
    assert df.first()[REASON] == reason


def test_a_corrupt_record_is_rejected_for_its_field_count_only(spark):
    df = rejection_reasons(trim_fields(keep_raw(frame(spark, {"currency": "EURO"}, corrupt="1,2,3"))))
    assert df.first()[REASON] == "wrong_field_count"


def test_casts_are_exact_for_valid_rows(spark):
    row = cast_types(trim_fields(frame(spark, {"transactionamount": "-12.5", "merchantcode": ""}))).first()
    assert str(row.transactionamount) == "-12.50"
    assert (row.transactionid, row.branchcode, row.merchantcode) == (1, 3, None)


def test_lineage_flags(spark):
    steps = clean(frame(spark, {"customerid": "", "transactiondate": "2024-02-30"}, {}), RUN_DATE, "s3://b/k", "f1")
    flagged, plain = steps.orderBy(POSITION).collect()
    assert json.loads(flagged.dq_flags) == {"customerid_filled": True, "transactiondate_original": "2024-02-30"}
    assert plain.dq_flags is None
    assert (flagged.source_file, flagged.file_id) == ("s3://b/k", "f1")
    assert flagged[RAW].customerid == ""  # the text as read stays available for rejected rows


def test_read_csv_rfc4180_reordered_header_and_bad_rows(spark, tmp_path):
    header = list(reversed(COLUMNS))
    path = tmp_path / "f.csv"
    body = (
        ",".join(header)
        + "\r\n"
        + '"Agent, ""fast""\r\nlane",7,3,1.00,USD,2.00,deposit,2024-07-13,42,ACC,1\r\n'
        + "short,row\r\n"
        + "x,4,3,1.00,USD,2.00,deposit,2024-07-13,42,ACC,2\r\n"
    )
    path.write_bytes(body.encode())
    raw = read_csv(spark, str(path), match_header(header))
    rows = raw.orderBy(POSITION).collect()
    assert [r[POSITION] for r in rows] == [0, 1, 2]
    assert rows[0].description == 'Agent, "fast"\nlane'  # univocity normalizes CRLF inside quotes to LF
    assert rows[0].transactionid == "1" and rows[0][CORRUPT] is None
    assert rows[1][CORRUPT] == "short,row"
    assert rows[2].transactionid == "2" and rows[2].branchcode == "3"


def test_a_file_without_quoted_line_breaks_is_read_split_in_file_order(spark, tmp_path):
    path = tmp_path / "f.csv"
    lines = [",".join(COLUMNS)] + [f"{i},ACC,1,2024-07-13,deposit,1.00,USD,2.00,3,4,row {i}" for i in range(1, 20001)]
    path.write_text("\r\n".join(lines) + "\r\n")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "200000")  # force several splits
    try:
        raw = read_csv(spark, str(path), match_header(list(COLUMNS)), multiline=False)
        assert raw.rdd.getNumPartitions() > 1
        ids = [int(r.transactionid) for r in raw.orderBy(POSITION).select("transactionid").collect()]
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert ids == list(range(1, 20001))
