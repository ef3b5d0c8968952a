"""The data contract of an input file: its columns, how a header is matched, and the reasons a row or a
file is turned away.

Pure standard library: this module ships inside the Lambda zip and the Glue job's ``--extra-py-files``
(Python 3.10 on Glue 4.0, 3.11 on Glue 5.x).
"""

from __future__ import annotations

from dataclasses import dataclass

# The eleven input columns, in the order the sample files use.
# Keys are the canonical CSV header names, values the database column names.
COLUMNS: dict[str, str] = {
    "TransactionID": "transactionid",
    "AccountNumber": "accountnumber",
    "CustomerID": "customerid",
    "TransactionDate": "transactiondate",
    "TransactionType": "transactiontype",
    "TransactionAmount": "transactionamount",
    "Currency": "currency",
    "AccountBalance": "accountbalance",
    "BranchCode": "branchcode",
    "MerchantCode": "merchantcode",
    "Description": "description",
}
FIELDS: tuple[str, ...] = tuple(COLUMNS.values())

# What a blank CustomerID becomes (the rule of the AWS walkthrough glueline grew from; see README).
MISSING_CUSTOMER_ID = "N/A"
DATE_FORMAT = "yyyy-MM-dd"

UTF8_BOM = "\ufeff"


class RowReason:
    """Reason codes recorded for each rejected row (``;``-joined when several apply)."""

    WRONG_FIELD_COUNT = "wrong_field_count"
    INVALID_UTF8 = "invalid_utf8"
    MISSING_TRANSACTION_ID = "missing_transaction_id"
    BAD_TRANSACTION_ID = "bad_transaction_id"
    BAD_TRANSACTION_AMOUNT = "bad_transaction_amount"
    BAD_ACCOUNT_BALANCE = "bad_account_balance"
    BAD_BRANCH_CODE = "bad_branch_code"
    BAD_MERCHANT_CODE = "bad_merchant_code"
    BAD_CURRENCY = "bad_currency"


def normalize_header_name(name: str) -> str:
    """Header names match case-insensitively, ignoring surrounding whitespace and a UTF-8 BOM."""
    return name.strip().lstrip(UTF8_BOM).strip().casefold()


_BY_NORMALIZED = {normalize_header_name(name): db for name, db in COLUMNS.items()}


@dataclass(frozen=True)
class HeaderMatch:
    """How the columns of one file's header map onto the contract."""

    # Database column name for each position in the file; None for a column the contract ignores.
    positions: tuple[str | None, ...]
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    duplicated: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.duplicated

    @property
    def problem(self) -> str | None:
        """A sentence an operator understands, or None when the header is usable."""
        parts = []
        if self.missing:
            parts.append("missing required column(s): " + ", ".join(self.missing))
        if self.duplicated:
            parts.append("column(s) given more than once: " + ", ".join(self.duplicated))
        return "; ".join(parts) or None

    @property
    def warnings(self) -> list[str]:
        return ["extra column(s) ignored: " + ", ".join(self.extra)] if self.extra else []


def match_header(names: list[str]) -> HeaderMatch:
    """Match a file's header (any order, any case) against the contract's eleven columns."""
    positions: list[str | None] = []
    seen: set[str] = set()
    extra: list[str] = []
    duplicated: list[str] = []
    for raw in names:
        db = _BY_NORMALIZED.get(normalize_header_name(raw))
        if db is None:
            extra.append(raw.strip().lstrip(UTF8_BOM).strip())
            positions.append(None)
        elif db in seen:
            duplicated.append(_header_name(db))
            positions.append(None)
        else:
            seen.add(db)
            positions.append(db)
    missing = tuple(name for name, db in COLUMNS.items() if db not in seen)
    return HeaderMatch(tuple(positions), missing, tuple(extra), tuple(duplicated))


def _header_name(db: str) -> str:
    return next(name for name, column in COLUMNS.items() if column == db)
