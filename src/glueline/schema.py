"""The PostgreSQL side, defined once: the target table, the per-file staging table and the upsert.

A file is loaded in three steps: its rows are COPYed into an UNLOGGED staging table of its own (from
every Spark partition, in parallel), then one statement moves them into the target — last occurrence
of a TransactionID in the file wins, an existing TransactionID is overwritten (newest load wins) — and
the staging table is dropped, in the same transaction. A failure before the commit leaves no rows of
the file in the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from glueline.contract import FIELDS

# (column, type, constraint) — the eleven data columns, then lineage.
DATA_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("transactionid", "bigint", "PRIMARY KEY"),
    ("accountnumber", "text", ""),
    ("customerid", "text", "NOT NULL"),
    ("transactiondate", "date", "NOT NULL"),
    ("transactiontype", "text", ""),
    ("transactionamount", "numeric(18,2)", "NOT NULL"),
    ("currency", "char(3)", "NOT NULL"),
    ("accountbalance", "numeric(18,2)", "NOT NULL"),
    ("branchcode", "integer", "NOT NULL"),
    ("merchantcode", "integer", ""),
    ("description", "text", ""),
)
LINEAGE_COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("source_file", "text", "NOT NULL"),  # s3://bucket/source/<name> the row was loaded from
    ("file_id", "text", "NOT NULL"),  # the audit item's FileID
    ("dq_flags", "jsonb", ""),  # what cleaning changed, e.g. {"customerid_filled": true, ...}
    ("loaded_at", "timestamptz", "NOT NULL DEFAULT now()"),
)
assert tuple(c for c, _, _ in DATA_COLUMNS) == FIELDS

# Columns the job sends for each row, in COPY order (source_file and file_id are the same for the whole
# file: the upsert adds them). file_position orders the rows as in the file.
STAGED_COLUMNS: tuple[str, ...] = FIELDS + ("dq_flags", "file_position")
_STAGED_TYPES = {c: t for c, t, _ in DATA_COLUMNS + LINEAGE_COLUMNS} | {"file_position": "bigint"}

# Keys of dq_flags: the cleaning rules that changed a value, with the original where one existed.
FLAG_CUSTOMER_ID_FILLED = "customerid_filled"
FLAG_DATE_ORIGINAL = "transactiondate_original"

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TableName:
    """A schema-qualified table name taken from settings, validated before it reaches any SQL."""

    schema: str
    table: str

    @classmethod
    def parse(cls, qualified: str) -> TableName:
        schema, _, table = qualified.rpartition(".")
        name = cls(schema or "public", table)
        for part in (name.schema, name.table):
            if not _IDENTIFIER.match(part):
                raise ValueError(
                    f"invalid table name {qualified!r}: use lower-case letters, digits and _ (schema.table)"
                )
        return name

    def identifier(self, table: str | None = None) -> sql.Identifier:
        return sql.Identifier(self.schema, table or self.table)

    def staging(self, fid: str) -> sql.Identifier:
        """The staging table of one file: named after the file, so a retry finds and replaces it."""
        return self.identifier(f"_stage_{self.table[:30]}_{fid[:16]}")

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"


def create_target(table: TableName) -> sql.Composed:
    columns = [
        sql.SQL("{} {} {}").format(sql.Identifier(c), sql.SQL(t), sql.SQL(k))
        for c, t, k in DATA_COLUMNS + LINEAGE_COLUMNS
    ]
    return sql.SQL("CREATE SCHEMA IF NOT EXISTS {schema}; CREATE TABLE IF NOT EXISTS {t} ({cols})").format(
        schema=sql.Identifier(table.schema), t=table.identifier(), cols=sql.SQL(", ").join(columns)
    )


def create_staging(table: TableName, fid: str) -> sql.Composed:
    columns = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_STAGED_TYPES[c])) for c in STAGED_COLUMNS]
    return sql.SQL("DROP TABLE IF EXISTS {s}; CREATE UNLOGGED TABLE {s} ({cols})").format(
        s=table.staging(fid), cols=sql.SQL(", ").join(columns)
    )


def drop_staging(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {s}").format(s=table.staging(fid))


def copy_into_staging(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("COPY {s} ({cols}) FROM STDIN (FORMAT csv)").format(
        s=table.staging(fid), cols=sql.SQL(", ").join(map(sql.Identifier, STAGED_COLUMNS))
    )


def _moved_columns() -> tuple[sql.Composable, tuple[str, ...]]:
    moved = FIELDS + ("dq_flags",)
    return sql.SQL(", ").join(map(sql.Identifier, moved)), moved


def insert_staging(table: TableName, fid: str, source_file: str) -> sql.Composed:
    """The fast path: insert the staged rows as they are. It fails with a UniqueViolation when the
    file repeats a TransactionID or holds one the target already has; then ``upsert_staging`` runs."""
    cols, _ = _moved_columns()
    return sql.SQL(
        "INSERT INTO {t} ({cols}, source_file, file_id, loaded_at) SELECT {cols}, {source}, {fid}, now() FROM {s}"
    ).format(
        t=table.identifier(), cols=cols, source=sql.Literal(source_file), fid=sql.Literal(fid), s=table.staging(fid)
    )


def count_flags(table: TableName, fid: str) -> sql.Composed:
    """(CustomerIDs filled, dates replaced) among the staged rows."""
    return sql.SQL(
        "SELECT count(*) FILTER (WHERE dq_flags ? {filled}), count(*) FILTER (WHERE dq_flags ? {replaced}) FROM {s}"
    ).format(
        s=table.staging(fid), filled=sql.Literal(FLAG_CUSTOMER_ID_FILLED), replaced=sql.Literal(FLAG_DATE_ORIGINAL)
    )


def upsert_staging(table: TableName, fid: str, source_file: str) -> sql.Composed:
    """The general path: the last occurrence of each TransactionID in file order, inserted or
    overwriting the target's row (newest load wins). Returns one row: (rows upserted, CustomerIDs
    filled, dates replaced) among the upserted rows."""
    cols, moved = _moved_columns()
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
        for c in moved[1:] + ("source_file", "file_id", "loaded_at")
    )
    return sql.SQL(
        """
        WITH upserted AS (
            INSERT INTO {t} AS t ({cols}, source_file, file_id, loaded_at)
            SELECT {cols}, {source}, {fid}, now() FROM (
                SELECT DISTINCT ON (transactionid) {cols} FROM {s} ORDER BY transactionid, file_position DESC
            ) AS latest
            ON CONFLICT (transactionid) DO UPDATE SET {updates}
            RETURNING t.dq_flags
        )
        SELECT count(*),
               count(*) FILTER (WHERE dq_flags ? {filled}),
               count(*) FILTER (WHERE dq_flags ? {replaced})
        FROM upserted
        """
    ).format(
        t=table.identifier(),
        cols=cols,
        s=table.staging(fid),
        source=sql.Literal(source_file),
        fid=sql.Literal(fid),
        updates=updates,
        filled=sql.Literal(FLAG_CUSTOMER_ID_FILLED),
        replaced=sql.Literal(FLAG_DATE_ORIGINAL),
    )
