"""The cleaning rules, each on a tiny DataFrame."""

import json
from datetime import date

import pytest

from glueline.job.read import POSITION
from glueline.job.transform import (
    CORRUPT,
    RAW,
    REASON,
    cast_types,
    clean,
    fill_customer_id,
    keep_raw,
    normalize_codes,
    parse_transaction_date,
    rejection_reasons,
    trim_fields,
)
from glueline.shared.contract import FIELDS

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


def test_what_cleaning_changed_is_flagged(spark):
    rows = clean(frame(spark, {"customerid": "", "transactiondate": "2024-02-30"}, {}), RUN_DATE)
    flagged, plain = rows.orderBy(POSITION).collect()
    assert json.loads(flagged.dq_flags) == {"customerid_filled": True, "transactiondate_original": "2024-02-30"}
    assert plain.dq_flags is None
    assert flagged[RAW].customerid == ""  # the text as read stays available for rejected rows
