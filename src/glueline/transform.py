"""Reading and cleaning a transactions CSV with Spark: small pure functions on DataFrames.

Each rule takes a DataFrame and returns a new one, so each can be tested alone; ``clean`` composes them
in order. Values are checked on their trimmed text before any cast, so a cast can never turn garbage
into NULL or round an amount silently: a row that does not fit the contract gets a ``reject_reason``
instead and is written to the rejected-rows file, never altered.
"""

from __future__ import annotations

from datetime import date
from functools import reduce

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from glueline.contract import FIELDS, MISSING_CUSTOMER_ID, HeaderMatch, RowReason
from glueline.schema import FLAG_CUSTOMER_ID_FILLED, FLAG_DATE_ORIGINAL

CORRUPT = "_corrupt_record"  # the raw text of a record with the wrong number of fields
RECORD = "record_number"  # 1-based position of the record in its file (header excluded)
RAW = "_raw"  # the fields exactly as read, kept for the rejected-rows file
NEWLINES = "_newlines"  # line breaks inside the record's quoted fields (to compute line numbers)
REASON = "reject_reason"
CUSTOMER_FILLED = "_customerid_filled"
DATE_ORIGINAL = "_transactiondate_original"

_EDGE_WHITESPACE = r"^\s+|\s+$"
_ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"
_POSITIVE_INT = r"^[0-9]+$"
_INTEGER = r"^[+-]?[0-9]+$"
_DECIMAL_2 = r"^[+-]?[0-9]+(\.[0-9]{1,2})?$"
_CURRENCY = r"^[A-Z]{3}$"
_REPLACEMENT_CHAR = "\ufffd"  # what Spark's UTF-8 decoder puts where bytes were not valid UTF-8

MONEY = T.DecimalType(18, 2)


# ---------------------------------------------------------------------------------------------------
# Extract
# ---------------------------------------------------------------------------------------------------


def read_csv(spark: SparkSession, path: str, header: HeaderMatch) -> DataFrame:
    """Read one file as text columns named after the contract, whatever the header's order or case.

    RFC 4180: quoted fields may hold commas, ``""`` and line breaks (``multiLine``, which also keeps
    the file in one partition, in file order). A record with the wrong number of fields keeps its raw
    text in ``_corrupt_record``.
    """
    names = [db or f"_ignored_{i}" for i, db in enumerate(header.positions)]
    schema = T.StructType([T.StructField(n, T.StringType()) for n in names] + [T.StructField(CORRUPT, T.StringType())])
    raw = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("multiLine", True)
        .option("quote", '"')
        .option("escape", '"')
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("encoding", "UTF-8")
        .csv(path)
    )
    return raw.select(*FIELDS, CORRUPT, (F.monotonically_increasing_id() + 1).alias(RECORD))


# ---------------------------------------------------------------------------------------------------
# Cleaning rules
# ---------------------------------------------------------------------------------------------------


def keep_raw(df: DataFrame) -> DataFrame:
    """Remember the fields as read (for rejected rows) and the record's embedded line breaks."""

    def breaks(column: str) -> Column:
        text = F.col(column)
        return F.coalesce(F.length(text) - F.length(F.regexp_replace(text, "\n", "")), F.lit(0))

    embedded = F.when(F.col(CORRUPT).isNotNull(), breaks(CORRUPT)).otherwise(
        reduce(lambda a, b: a + b, [breaks(c) for c in FIELDS])
    )
    return df.withColumn(RAW, F.struct(*FIELDS)).withColumn(NEWLINES, embedded.cast("int"))


def trim_fields(df: DataFrame) -> DataFrame:
    """Trim every text field; a blank field becomes NULL."""
    return df.withColumns({c: _unless(F.regexp_replace(F.col(c), _EDGE_WHITESPACE, ""), "") for c in FIELDS})


def fill_customer_id(df: DataFrame) -> DataFrame:
    """Blank or missing CustomerID → ``N/A`` (the original design's rule), flagged for lineage."""
    return df.withColumn(CUSTOMER_FILLED, F.col("customerid").isNull()).withColumn(
        "customerid", F.coalesce(F.col("customerid"), F.lit(MISSING_CUSTOMER_ID))
    )


def normalize_codes(df: DataFrame) -> DataFrame:
    """TransactionType lower-case, Currency upper-case (both already trimmed)."""
    return df.withColumns({"transactiontype": F.lower("transactiontype"), "currency": F.upper("currency")})


def parse_transaction_date(df: DataFrame, run_date: date) -> DataFrame:
    """A missing, malformed or impossible TransactionDate (2024-02-30) → the run's date (UTC).

    The original text, as read, is kept for lineage (``""`` when the field was empty).
    """
    text = F.col("transactiondate")
    parsed = F.when(text.rlike(_ISO_DATE), F.to_date(text, "yyyy-MM-dd"))
    original = F.coalesce(F.col(f"{RAW}.transactiondate"), F.lit(""))
    return df.withColumn(DATE_ORIGINAL, F.when(parsed.isNull(), original)).withColumn(
        "transactiondate", F.coalesce(parsed, F.lit(run_date))
    )


def _unless(value: Column, blank: str) -> Column:
    """NULL where ``value`` equals ``blank`` (``F.nullif`` is Spark 3.5+; Glue 4.0 runs Spark 3.3)."""
    return F.when(value != F.lit(blank), value)


def _is_not(column: str, pattern: str, cast: T.DataType | str) -> Column:
    value = F.col(column)
    return ~F.coalesce(value.rlike(pattern) & value.cast(cast).isNotNull(), F.lit(False))


def rejection_reasons(df: DataFrame) -> DataFrame:
    """Why a row cannot be loaded, as ``;``-joined reason codes (NULL for a good row)."""
    merchant = F.col("merchantcode")
    checks = [
        (F.col("transactionid").isNull(), RowReason.MISSING_TRANSACTION_ID),
        (
            F.col("transactionid").isNotNull()
            & (_is_not("transactionid", _POSITIVE_INT, "bigint") | (F.col("transactionid").cast("bigint") <= 0)),
            RowReason.BAD_TRANSACTION_ID,
        ),
        (_is_not("transactionamount", _DECIMAL_2, MONEY), RowReason.BAD_TRANSACTION_AMOUNT),
        (_is_not("accountbalance", _DECIMAL_2, MONEY), RowReason.BAD_ACCOUNT_BALANCE),
        (_is_not("branchcode", _INTEGER, "int"), RowReason.BAD_BRANCH_CODE),
        (merchant.isNotNull() & _is_not("merchantcode", _INTEGER, "int"), RowReason.BAD_MERCHANT_CODE),
        (_is_not("currency", _CURRENCY, "string"), RowReason.BAD_CURRENCY),
    ]
    field_checks = F.concat_ws(";", *[F.when(condition, F.lit(code)) for condition, code in checks])
    raw_text = F.concat_ws("", *[F.col(f"{RAW}.{c}") for c in FIELDS], F.col(CORRUPT))
    reason = (
        F.when(F.col(CORRUPT).isNotNull(), F.lit(RowReason.WRONG_FIELD_COUNT))
        .when(raw_text.contains(_REPLACEMENT_CHAR), F.lit(RowReason.INVALID_UTF8))
        .otherwise(_unless(field_checks, ""))
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


def add_lineage(df: DataFrame, source_file: str, file_id: str) -> DataFrame:
    """Where each row came from and what cleaning changed in it (``dq_flags``, NULL when nothing)."""
    flags = F.to_json(
        F.struct(
            F.when(F.col(CUSTOMER_FILLED), F.lit(True)).alias(FLAG_CUSTOMER_ID_FILLED),
            F.col(DATE_ORIGINAL).alias(FLAG_DATE_ORIGINAL),
        )
    )
    return df.withColumns(
        {
            "source_file": F.lit(source_file),
            "file_id": F.lit(file_id),
            "dq_flags": _unless(flags, "{}"),
        }
    )


def clean(raw: DataFrame, run_date: date, source_file: str, file_id: str) -> DataFrame:
    """All rules in order; the result holds every record, good ones with ``reject_reason`` NULL."""
    steps = [
        keep_raw,
        trim_fields,
        fill_customer_id,
        normalize_codes,
        lambda df: parse_transaction_date(df, run_date),
        rejection_reasons,
        cast_types,
        lambda df: add_lineage(df, source_file, file_id),
    ]
    return reduce(lambda df, step: step(df), steps, raw)
