"""Cleaning transaction records with Spark: small pure functions on DataFrames.

Each rule takes a DataFrame and returns a new one, so each can be tested alone; ``clean`` composes them
in order. Values are checked on their trimmed text before any cast, so a cast can never turn garbage
into NULL or round an amount silently: a row that does not fit the contract gets a ``reject_reason``
instead and is written to the rejected-rows file, never altered. No regular expressions and no Python
UDFs: only Spark SQL expressions, which Spark compiles.
"""

from __future__ import annotations

from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glueline.job.schema import FLAG_CUSTOMER_ID_FILLED, FLAG_DATE_ORIGINAL
from glueline.shared.contract import FIELDS, MISSING_CUSTOMER_ID, RowReason

CORRUPT = "_corrupt_record"  # the raw text of a record with the wrong number of fields (see glueline.job.read)
RAW = "_raw"  # the fields exactly as read, kept for the rejected-rows file
REASON = "reject_reason"
CUSTOMER_FILLED = "_customerid_filled"
DATE_ORIGINAL = "_transactiondate_original"
WHITESPACE = "' \\t\\r\\n'"  # a Spark SQL string literal: space, tab, CR, LF

_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_REPLACEMENT_CHAR = "\ufffd"  # what Spark's UTF-8 decoder puts where bytes were not valid UTF-8

MONEY = T.DecimalType(18, 2)


# ---------------------------------------------------------------------------------------------------
# Cleaning rules
# ---------------------------------------------------------------------------------------------------


def keep_raw(df: DataFrame) -> DataFrame:
    """Remember the fields as read, for the rejected-rows file."""
    return df.withColumn(RAW, F.struct(*FIELDS))


def trim_fields(df: DataFrame) -> DataFrame:
    """Trim every text field (spaces, tabs, CR, LF); a blank field becomes NULL."""
    return df.withColumns({c: _unless(F.expr(f"trim(BOTH {WHITESPACE} FROM `{c}`)"), "") for c in FIELDS})


def fill_customer_id(df: DataFrame) -> DataFrame:
    """Blank or missing CustomerID → ``N/A`` (the walkthrough's rule), flagged for lineage."""
    return df.withColumn(CUSTOMER_FILLED, F.col("customerid").isNull()).withColumn(
        "customerid", F.coalesce(F.col("customerid"), F.lit(MISSING_CUSTOMER_ID))
    )


def normalize_codes(df: DataFrame) -> DataFrame:
    """TransactionType lower-case, Currency upper-case (both already trimmed)."""
    return df.withColumns({"transactiontype": F.lower("transactiontype"), "currency": F.upper("currency")})


def parse_transaction_date(df: DataFrame, run_date: date) -> DataFrame:
    """A missing, malformed or impossible TransactionDate (2024-02-30) → the run's date (UTC).

    ``to_date`` with the CORRECTED parser is strict: exactly ``yyyy-MM-dd`` and a real calendar date.
    The original text, as read, is kept for lineage (``""`` when the field was empty).
    """
    parsed = F.to_date(F.col("transactiondate"), "yyyy-MM-dd")
    original = F.coalesce(F.col(f"{RAW}.transactiondate"), F.lit(""))
    return df.withColumn(DATE_ORIGINAL, F.when(parsed.isNull(), original)).withColumn(
        "transactiondate", F.coalesce(parsed, F.lit(run_date))
    )


def _unless(value: Column, blank: str) -> Column:
    """NULL where ``value`` equals ``blank`` (``F.nullif`` is Spark 3.5+; Glue 4.0 runs Spark 3.3)."""
    return F.when(value != F.lit(blank), value)


# Value checks without regular expressions or string copies, which would cost far more per row than
# these byte-level checks. Spark's casts are lenient — "12.5" casts to int 12, "1e3" and "٣" (an
# Arabic-Indic digit) to a decimal — so each cast comes with the cheap checks that make it strict.
def _ascii(column: Column) -> Column:
    return F.length(column) == F.octet_length(column)


def _integer(column: str, data_type: str, signed: bool = True) -> Column:
    """Digits with an optional sign (none if not ``signed``), fitting ``data_type``."""
    value = F.col(column)
    check = value.cast(data_type).isNotNull() & (F.instr(value, ".") == 0)
    return check if signed else check & (F.instr(value, "+") == 0) & (F.instr(value, "-") == 0)


def _money(column: str) -> Column:
    """A plain decimal with at most 2 fraction digits (never rounded) that fits numeric(18,2)."""
    value = F.col(column)
    point = F.instr(value, ".")
    return (
        value.cast(MONEY).isNotNull()
        & _ascii(value)
        & (F.instr(value, "e") == 0)
        & (F.instr(value, "E") == 0)
        & ((point == 0) | (F.length(value) - point).between(1, 2))
    )


def _currency(column: str) -> Column:
    """Three letters A–Z (upper-cased already)."""
    value = F.col(column)
    return (F.octet_length(value) == 3) & (F.translate(value, _LETTERS, "") == F.lit(""))


def _fails(check: Column) -> Column:
    return ~F.coalesce(check, F.lit(False))


def rejection_reasons(df: DataFrame) -> DataFrame:
    """Why a row cannot be loaded, as ``;``-joined reason codes (NULL for a good row)."""
    tid, merchant = F.col("transactionid"), F.col("merchantcode")
    checks = [
        (tid.isNull(), RowReason.MISSING_TRANSACTION_ID),
        (
            tid.isNotNull() & _fails(_integer("transactionid", "bigint", signed=False) & (tid.cast("bigint") > 0)),
            RowReason.BAD_TRANSACTION_ID,
        ),
        (_fails(_money("transactionamount")), RowReason.BAD_TRANSACTION_AMOUNT),
        (_fails(_money("accountbalance")), RowReason.BAD_ACCOUNT_BALANCE),
        (_fails(_integer("branchcode", "int")), RowReason.BAD_BRANCH_CODE),
        (merchant.isNotNull() & _fails(_integer("merchantcode", "int")), RowReason.BAD_MERCHANT_CODE),
        (_fails(_currency("currency")), RowReason.BAD_CURRENCY),
    ]
    any_failed = reduce(lambda a, b: a | b, [condition for condition, _ in checks])
    field_checks = F.concat_ws(";", *[F.when(condition, F.lit(code)) for condition, code in checks])
    not_utf8 = reduce(
        lambda a, b: a | b, [F.coalesce(F.instr(F.col(c), _REPLACEMENT_CHAR) > 0, F.lit(False)) for c in FIELDS]
    )
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit(RowReason.WRONG_FIELD_COUNT))
        .when(not_utf8, F.lit(RowReason.INVALID_UTF8))
        .when(any_failed, field_checks)  # the string is built only for the rare bad row
    )
    return df.withColumn(REASON, reason)


def cast_types(df: DataFrame) -> DataFrame:
    """The target table's types (exact for every row that passed ``rejection_reasons``)."""
    return df.withColumns(
        {
            "transactionid": F.col("transactionid").cast("bigint"),
            "transactionamount": F.col("transactionamount").cast(MONEY),
            "accountbalance": F.col("accountbalance").cast(MONEY),
            "branchcode": F.col("branchcode").cast("int"),
            "merchantcode": F.col("merchantcode").cast("int"),
        }
    )


def flag_changes(df: DataFrame) -> DataFrame:
    """What cleaning changed in each row, as ``dq_flags`` JSON (NULL when nothing), kept for lineage."""
    changed = F.col(CUSTOMER_FILLED) | F.col(DATE_ORIGINAL).isNotNull()
    flags = F.to_json(
        F.struct(
            F.when(F.col(CUSTOMER_FILLED), F.lit(True)).alias(FLAG_CUSTOMER_ID_FILLED),
            F.col(DATE_ORIGINAL).alias(FLAG_DATE_ORIGINAL),
        )
    )
    return df.withColumn("dq_flags", F.when(changed, flags))  # JSON is built only for the rows it describes


def clean(raw: DataFrame, run_date: date) -> DataFrame:
    """All rules in order; the result holds every record, good ones with ``reject_reason`` NULL."""
    steps = [
        keep_raw,
        trim_fields,
        fill_customer_id,
        normalize_codes,
        lambda df: parse_transaction_date(df, run_date),
        rejection_reasons,
        cast_types,
        flag_changes,
    ]
    return reduce(lambda df, step: step(df), steps, raw)
