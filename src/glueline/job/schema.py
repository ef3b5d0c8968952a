"""The PostgreSQL side, defined once: the target table, a file's staging and rejects tables, the moves
between them.

A file is loaded in three steps: its good rows are COPYed into an UNLOGGED staging table of its own and
its rejected rows into a rejects table of its own (from every Spark partition, in parallel); then, in
one transaction, the rejected rows are exported with their line numbers, one statement moves the staged
rows into the target — last occurrence of a TransactionID in the file wins, an existing TransactionID is
overwritten (newest load wins) — and both tables are dropped. A failure before the commit leaves no
rows of the file in the target.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from psycopg import sql

from glueline.shared.contract import FIELDS

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

    def rejects(self, fid: str) -> sql.Identifier:
        """The rejected rows of one file, numbered by the part of the file they were read from."""
        return self.identifier(f"_reject_{self.table[:30]}_{fid[:16]}")

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


# A rejected row as the loader stores it: where it was read (the split's byte offset, its index and line
# offset within what that split read), why it was refused, its eleven fields as read, and the raw record
# when it had the wrong number of fields.
REJECT_LOCATION: tuple[str, ...] = ("split", "idx", "line")
REJECT_COLUMNS: tuple[str, ...] = ("reason", *(f"raw_{c}" for c in FIELDS), "raw_record")


def create_file_tables(table: TableName, fid: str) -> sql.Composed:
    """A file's empty staging and rejects tables (replacing any left by an earlier attempt)."""
    staged = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_STAGED_TYPES[c])) for c in STAGED_COLUMNS]
    rejects = [sql.SQL("{} bigint").format(sql.Identifier(c)) for c in REJECT_LOCATION] + [
        sql.SQL("{} text").format(sql.Identifier(c)) for c in REJECT_COLUMNS
    ]
    return sql.SQL(
        "{drop}; CREATE UNLOGGED TABLE {s} ({staged}); CREATE UNLOGGED TABLE {r} ({rejects})"
    ).format(
        drop=drop_file_tables(table, fid),
        s=table.staging(fid),
        r=table.rejects(fid),
        staged=sql.SQL(", ").join(staged),
        rejects=sql.SQL(", ").join(rejects),
    )


def drop_file_tables(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {s}, {r}").format(s=table.staging(fid), r=table.rejects(fid))


def copy_into_staging(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("COPY {s} ({cols}) FROM STDIN (FORMAT csv)").format(
        s=table.staging(fid), cols=sql.SQL(", ").join(map(sql.Identifier, STAGED_COLUMNS))
    )


def copy_into_rejects(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("COPY {r} FROM STDIN (FORMAT csv)").format(r=table.rejects(fid))


def export_rejects(table: TableName, fid: str, offsets: list[tuple[int, int, int]]) -> sql.Composed:
    """The rejected rows as CSV, in file order: line number (the header is line 1), record number, then
    REJECT_COLUMNS. ``offsets``: for each split, (byte offset, records and lines read before it)."""
    values = sql.SQL(", ").join(sql.SQL("({}, {}, {})").format(*map(sql.Literal, o)) for o in offsets)
    columns = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in REJECT_COLUMNS)
    return sql.SQL(
        "COPY (SELECT 2 + o.lines_before + r.line, 1 + o.records_before + r.idx, {columns} "
        "FROM {r} AS r JOIN (VALUES {values}) AS o (split, records_before, lines_before) USING (split) "
        "ORDER BY r.split, r.idx) TO STDOUT (FORMAT csv)"
    ).format(columns=columns, r=table.rejects(fid), values=values)


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
