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
POSITION = "file_position"  # orders records as in the file; see read_csv
RAW = "_raw"  # the fields exactly as read, kept for the rejected-rows file
NEWLINES = "_newlines"  # line breaks inside the record's quoted fields (to compute line numbers)
REASON = "reject_reason"
CUSTOMER_FILLED = "_customerid_filled"
DATE_ORIGINAL = "_transactiondate_original"

# Spark SQL settings the rules rely on, wherever they run (the job sets them on its session): UTC for
# "the run's date", strict date parsing, non-ANSI casts (a bad value is caught by the contract's checks,
# not by an exception mid-load), and a shuffle width that suits files, not clusters.
SPARK_SQL_SETTINGS = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.legacy.timeParserPolicy": "CORRECTED",
    "spark.sql.ansi.enabled": "false",
    "spark.sql.shuffle.partitions": "8",
}


def use_sql_settings(spark: SparkSession) -> None:
    """Apply SPARK_SQL_SETTINGS to a running session (the job's, the runner's standby)."""
    for key, value in SPARK_SQL_SETTINGS.items():
        spark.conf.set(key, value)


_WHITESPACE = "' \\t\\r\\n'"  # a Spark SQL string literal: space, tab, CR, LF
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_REPLACEMENT_CHAR = "\ufffd"  # what Spark's UTF-8 decoder puts where bytes were not valid UTF-8

MONEY = T.DecimalType(18, 2)


# ---------------------------------------------------------------------------------------------------
# Extract
# ---------------------------------------------------------------------------------------------------


def read_csv(spark: SparkSession, path: str, header: HeaderMatch, multiline: bool = True) -> DataFrame:
    """Read one file as text columns named after the contract, whatever the header's order or case.

    RFC 4180: quoted fields may hold commas and ``""``; with ``multiline`` also line breaks (Spark then
    reads the file as one task). Without line breaks in quotes, say ``multiline=False``: the file is
    split and read in parallel. Either way ``file_position`` orders the records as in the file, and a
    record with the wrong number of fields keeps its raw text in ``_corrupt_record``.
    """
    names = [db or f"_ignored_{i}" for i, db in enumerate(header.positions)]
    schema = T.StructType([T.StructField(n, T.StringType()) for n in names] + [T.StructField(CORRUPT, T.StringType())])
    raw = (
        spark.read.schema(schema)
        .option("header", True)
        .option("enforceSchema", True)
        .option("multiLine", multiline)
        .option("quote", '"')
        .option("escape", '"')
        .option("mode", "PERMISSIVE")
        .option("columnNameOfCorruptRecord", CORRUPT)
        .option("encoding", "UTF-8")
        .csv(path)
    )
    # (partition << 33) + index within the partition: increasing in file order.
    return raw.select(*FIELDS, CORRUPT, F.monotonically_increasing_id().alias(POSITION))


# ---------------------------------------------------------------------------------------------------
# Cleaning rules
# ---------------------------------------------------------------------------------------------------


def keep_raw(df: DataFrame) -> DataFrame:
    """Remember the fields as read (for rejected rows) and the record's embedded line breaks."""

    def breaks(column: str) -> Column:  # counted only where there is one: replace() copies the string
        count = F.expr(f"length(`{column}`) - length(replace(`{column}`, '\\n', ''))")
        return F.when(F.instr(F.col(column), "\n") > 0, count).otherwise(F.lit(0))

    embedded = F.when(F.col(CORRUPT).isNotNull(), breaks(CORRUPT)).otherwise(
        reduce(lambda a, b: a + b, [breaks(c) for c in FIELDS])
    )
    return df.withColumn(RAW, F.struct(*FIELDS)).withColumn(NEWLINES, embedded.cast("int"))


def trim_fields(df: DataFrame) -> DataFrame:
    """Trim every text field (spaces, tabs, CR, LF); a blank field becomes NULL.

    TRIM(BOTH … FROM …), not a regular expression: a regex trim costs ~30 s per million rows here.
    """
    return df.withColumns({c: _unless(F.expr(f"trim(BOTH {_WHITESPACE} FROM `{c}`)"), "") for c in FIELDS})


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


# Value checks without regular expressions or string copies (a Java regex per field per row costs
# seconds per million rows). Spark's casts are lenient — "12.5" casts to int 12, "1e3" and "٣" (an
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


def add_lineage(df: DataFrame, source_file: str, file_id: str) -> DataFrame:
    """Where each row came from and what cleaning changed in it (``dq_flags``, NULL when nothing)."""
    changed = F.col(CUSTOMER_FILLED) | F.col(DATE_ORIGINAL).isNotNull()
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
            "dq_flags": F.when(changed, flags),  # JSON is built only for the rows it describes
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
