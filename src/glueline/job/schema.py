"""The PostgreSQL side, defined once: the target table, a batch's staging and rejects tables, the moves
between them.

A batch of files is loaded in three steps: every Spark partition COPYs its good rows into the batch's
staging table and its rejected rows into the batch's rejects table (in parallel, one COPY each); both
tables are partitioned by file (``FILE_COLUMN``), so each file's rows land in UNLOGGED tables of its
own. Then, per file, in one transaction: the rejected rows are exported with their line numbers, one
statement moves the staged rows into the target — last occurrence of a TransactionID in the file wins,
an existing TransactionID is overwritten (newest load wins) —, the file's counts go to the load ledger
(``_loads_<table>``: a run that dies after the commit leaves them for the run that completes the file)
and the file's tables are dropped. A failure before a file's commit leaves no rows of that file in the
target.
"""

from __future__ import annotations

import hashlib
import json

from psycopg import sql

from glueline.shared.contract import FIELDS
from glueline.shared.counts import COUNT_NAMES, Counts
from glueline.shared.tablename import TableName

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
    # When that file was uploaded: a row is only ever replaced by one from a file uploaded as late or
    # later, so a retried older file cannot undo a newer file's update.
    ("source_uploaded_at", "timestamptz", ""),
    ("dq_flags", "jsonb", ""),  # what cleaning changed, e.g. {"customerid_filled": true, ...}
    ("loaded_at", "timestamptz", "NOT NULL DEFAULT now()"),
)
assert tuple(c for c, _, _ in DATA_COLUMNS) == FIELDS

FILE_COLUMN = "_file"  # a file's index in its batch: the batch's tables are partitioned by it
# Columns the job sends for each row, in COPY order (source_file and file_id are the same for the whole
# file: the upsert adds them). file_position orders the rows as in the file.
STAGED_COLUMNS: tuple[str, ...] = FIELDS + ("dq_flags", "file_position", FILE_COLUMN)
_STAGED_TYPES = {c: t for c, t, _ in DATA_COLUMNS + LINEAGE_COLUMNS} | {
    "file_position": "bigint",
    FILE_COLUMN: "integer",
}

# Keys of dq_flags: the cleaning rules that changed a value, with the original where one existed.
FLAG_CUSTOMER_ID_FILLED = "customerid_filled"
FLAG_DATE_ORIGINAL = "transactiondate_original"


def identifier(table: TableName) -> sql.Identifier:
    """The target table itself."""
    return sql.Identifier(table.schema, table.table)


def staging(table: TableName, name: str) -> sql.Identifier:
    """The staging table of one file, or (``b…``) of a batch: named after it, so a retry finds and
    replaces it."""
    return sql.Identifier(table.schema, f"{_stage_prefix(table)}{name[:16]}")


def rejects(table: TableName, name: str) -> sql.Identifier:
    """The rejected rows of one file, or (``b…``) of a batch."""
    return sql.Identifier(table.schema, f"{_reject_prefix(table)}{name[:16]}")


def ledger(table: TableName) -> sql.Identifier:
    """What each load committed: a file's counts, written in the transaction of its rows."""
    return sql.Identifier(table.schema, _ledger_name(table))


def job_tables(table: TableName) -> tuple[list[str], list[str]]:
    """Every table of the job's in ``table``'s schema: the names (the target, its ledger) and the name
    prefixes (a batch's or file's staging and rejects tables)."""
    return [table.table, _ledger_name(table)], [_stage_prefix(table), _reject_prefix(table)]


def _stage_prefix(table: TableName) -> str:
    return f"_stage_{table.table[:30]}_"


def _reject_prefix(table: TableName) -> str:
    return f"_reject_{table.table[:30]}_"


def _ledger_name(table: TableName) -> str:
    return f"_loads_{table.table[:50]}"


def create_target(table: TableName) -> sql.Composed:
    columns = [
        sql.SQL("{} {} {}").format(sql.Identifier(c), sql.SQL(t), sql.SQL(k))
        for c, t, k in DATA_COLUMNS + LINEAGE_COLUMNS
    ]
    # A table from an earlier release gets the columns added since (those that may be added in place).
    # Only a missing column is added: ALTER TABLE takes an exclusive lock, even with IF NOT EXISTS, and
    # waiting for it behind a reader's long query would hold up every later reader of the table.
    added = [
        sql.SQL(
            "DO $glueline$ BEGIN IF NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = {name}::regclass "
            "AND attname = {column} AND NOT attisdropped) THEN ALTER TABLE {t} ADD COLUMN {c} {type}; "
            "END IF; END $glueline$"
        ).format(
            name=sql.Literal(f'"{table.schema}"."{table.table}"'),
            column=sql.Literal(c),
            t=identifier(table),
            c=sql.Identifier(c),
            type=sql.SQL(t),
        )
        for c, t, k in LINEAGE_COLUMNS
        if "NOT NULL" not in k
    ]
    # The schema only where it is missing: CREATE SCHEMA IF NOT EXISTS asks for CREATE on the database
    # even when the schema exists, which the job's login has not (glueline.job.login).
    create = sql.SQL(
        "DO $glueline$ BEGIN IF NOT EXISTS (SELECT FROM pg_namespace WHERE nspname = {name}) THEN "
        "CREATE SCHEMA {schema}; END IF; END $glueline$; CREATE TABLE IF NOT EXISTS {t} ({cols})"
    ).format(
        name=sql.Literal(table.schema),
        schema=sql.Identifier(table.schema),
        t=identifier(table),
        cols=sql.SQL(", ").join(columns),
    )
    counts = sql.SQL(", ").join(sql.SQL("{} bigint NOT NULL").format(sql.Identifier(n)) for n in COUNT_NAMES)
    create_ledger = sql.SQL(
        "CREATE TABLE IF NOT EXISTS {t} (file_id text PRIMARY KEY, run_id text NOT NULL, "
        "loaded_at timestamptz NOT NULL DEFAULT now(), {counts}, reject_reasons jsonb NOT NULL)"
    ).format(t=ledger(table), counts=counts)
    return sql.SQL("; ").join([create, create_ledger, *added])


def record_load(table: TableName, fid: str, run_id: str, counts: Counts, reasons: dict[str, int]) -> sql.Composed:
    """In the file's transaction: what this load committed (a later load of the same file replaces it)."""
    names = [sql.Identifier(n) for n in COUNT_NAMES]
    return sql.SQL(
        "INSERT INTO {t} (file_id, run_id, {names}, reject_reasons) VALUES ({fid}, {run}, {values}, {reasons}) "
        "ON CONFLICT (file_id) DO UPDATE SET run_id = EXCLUDED.run_id, loaded_at = now(), {updates}, "
        "reject_reasons = EXCLUDED.reject_reasons"
    ).format(
        t=ledger(table),
        names=sql.SQL(", ").join(names),
        fid=sql.Literal(fid),
        run=sql.Literal(run_id),
        values=sql.SQL(", ").join(sql.Literal(getattr(counts, n)) for n in COUNT_NAMES),
        reasons=sql.Literal(json.dumps(reasons, sort_keys=True)),
        updates=sql.SQL(", ").join(sql.SQL("{n} = EXCLUDED.{n}").format(n=n) for n in names),
    )


def recorded_load(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("SELECT run_id, {names}, reject_reasons FROM {t} WHERE file_id = {fid}").format(
        names=sql.SQL(", ").join(sql.Identifier(n) for n in COUNT_NAMES), t=ledger(table), fid=sql.Literal(fid)
    )


def statement_timeout(seconds: float, local: bool = False) -> sql.Composed:
    """Cancel this session's statements (``local``: this transaction's) that run longer; 0: never."""
    return sql.SQL("SET {scope} statement_timeout = {ms}").format(
        scope=sql.SQL("LOCAL" if local else "SESSION"), ms=sql.Literal(int(seconds * 1000))
    )


def session_settings(settings: dict[str, str]) -> sql.Composed:
    """Set these for the session, each where the server knows it (PostgreSQL before 14 has no
    client_connection_check_interval): one round trip, and never an error for a missing one."""
    values = sql.SQL(", ").join(sql.SQL("({}, {})").format(sql.Literal(k), sql.Literal(v)) for k, v in settings.items())
    return sql.SQL(
        "SELECT set_config(s.name, s.value, false) FROM (VALUES {}) AS s (name, value) JOIN pg_settings USING (name)"
    ).format(values)


# A rejected row as the loader stores it: where it was read (its file's index in the batch, the split's
# byte offset, its index and line offset within what that split read), why it was refused, its eleven
# fields as read, and the raw record when it had the wrong number of fields.
REJECT_LOCATION: tuple[str, ...] = (FILE_COLUMN, "split", "idx", "line")
REJECT_COLUMNS: tuple[str, ...] = ("reason", *(f"raw_{c}" for c in FIELDS), "raw_record")


def batch_name(fids: list[str]) -> str:
    """The name of a batch's tables: from its files, so the same batch retried reuses it."""
    return "b" + hashlib.sha256(" ".join(fids).encode()).hexdigest()[:15]


def create_batch_tables(table: TableName, batch: str, fids: list[str]) -> sql.Composed:
    """A batch's empty staging and rejects tables, each partitioned by file: the i-th file's rows go to
    partitions named after that file (any left by an earlier attempt are replaced)."""
    staged = [sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL(_STAGED_TYPES[c])) for c in STAGED_COLUMNS]
    location = [
        sql.SQL("{} {}").format(sql.Identifier(c), sql.SQL("integer" if c == FILE_COLUMN else "bigint"))
        for c in REJECT_LOCATION
    ]
    rejected = location + [sql.SQL("{} text").format(sql.Identifier(c)) for c in REJECT_COLUMNS]
    statements = [
        *(drop_file_tables(table, fid) for fid in fids),
        drop_batch_tables(table, batch),
        drop_emptied_batch_tables(table),
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY LIST ({})").format(
            staging(table, batch), sql.SQL(", ").join(staged), sql.Identifier(FILE_COLUMN)
        ),
        sql.SQL("CREATE TABLE {} ({}) PARTITION BY LIST ({})").format(
            rejects(table, batch), sql.SQL(", ").join(rejected), sql.Identifier(FILE_COLUMN)
        ),
    ]
    for index, fid in enumerate(fids):
        for partition, parent in (
            (staging(table, fid), staging(table, batch)),
            (rejects(table, fid), rejects(table, batch)),
        ):
            statements.append(
                sql.SQL("CREATE UNLOGGED TABLE {} PARTITION OF {} FOR VALUES IN ({})").format(
                    partition, parent, sql.Literal(index)
                )
            )
    return sql.SQL("; ").join(statements)


def drop_emptied_batch_tables(table: TableName) -> sql.Composed:
    """The tables of batches whose run died before dropping them, once no file of theirs is left in them
    (a file's partitions go when it is merged, or when a later batch takes it: a batch of other files
    has another name, so nothing else would drop them). A live batch always has its files' partitions:
    they are made in the statement that makes it."""
    return sql.SQL(
        "DO $glueline$ DECLARE t text; BEGIN FOR t IN SELECT c.relname FROM pg_class c "
        "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = {schema} AND c.relkind = 'p' "
        "AND (starts_with(c.relname, {stage}) OR starts_with(c.relname, {reject})) "
        "AND NOT EXISTS (SELECT FROM pg_inherits i WHERE i.inhparent = c.oid) "
        "LOOP EXECUTE format('DROP TABLE IF EXISTS %I.%I', {schema}, t); END LOOP; END $glueline$"
    ).format(
        schema=sql.Literal(table.schema),
        stage=sql.Literal(_stage_prefix(table)),
        reject=sql.Literal(_reject_prefix(table)),
    )


def empty_file_tables(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("TRUNCATE {s}, {r}").format(s=staging(table, fid), r=rejects(table, fid))


def drop_file_tables(table: TableName, fid: str) -> sql.Composed:
    return sql.SQL("DROP TABLE IF EXISTS {s}, {r}").format(s=staging(table, fid), r=rejects(table, fid))


def drop_batch_tables(table: TableName, batch: str) -> sql.Composed:
    """The batch's tables, and with them the partitions of files not merged."""
    return sql.SQL("DROP TABLE IF EXISTS {s}, {r}").format(s=staging(table, batch), r=rejects(table, batch))


def copy_into_staging(table: TableName, batch: str) -> sql.Composed:
    return sql.SQL("COPY {s} ({cols}) FROM STDIN (FORMAT csv)").format(
        s=staging(table, batch), cols=sql.SQL(", ").join(map(sql.Identifier, STAGED_COLUMNS))
    )


def copy_into_rejects(table: TableName, batch: str) -> sql.Composed:
    return sql.SQL("COPY {r} FROM STDIN (FORMAT csv)").format(r=rejects(table, batch))


def export_rejects(table: TableName, fid: str, offsets: list[tuple[int, int, int]]) -> sql.Composed:
    """The rejected rows as CSV, in file order: line number (the header is line 1), record number, then
    REJECT_COLUMNS. ``offsets``: for each split, (byte offset, records and lines read before it)."""
    values = sql.SQL(", ").join(sql.SQL("({}, {}, {})").format(*map(sql.Literal, o)) for o in offsets)
    columns = sql.SQL(", ").join(sql.SQL("r.{}").format(sql.Identifier(c)) for c in REJECT_COLUMNS)
    return sql.SQL(
        "COPY (SELECT 2 + o.lines_before + r.line, 1 + o.records_before + r.idx, {columns} "
        "FROM {r} AS r JOIN (VALUES {values}) AS o (split, records_before, lines_before) USING (split) "
        "ORDER BY r.split, r.idx) TO STDOUT (FORMAT csv)"
    ).format(columns=columns, r=_each_rejected_row_once(table, fid), values=values)


def _each_rejected_row_once(table: TableName, fid: str) -> sql.Composed:
    """A file's rejected rows, each once. A Spark task that committed its rows and then failed (its
    Python worker killed before Spark heard of its success) is run again, on a Glue cluster and by the
    local runner alike (four attempts per task), and its second attempt stores the same rows again: a row
    is (split, index within what that split read). Its staged rows need no such care: the merge's
    fast INSERT then meets the duplicate TransactionIDs and the upsert takes each once."""
    return sql.SQL("(SELECT DISTINCT ON (split, idx) * FROM {r} ORDER BY split, idx)").format(r=rejects(table, fid))


def count_reject_reasons(table: TableName, fid: str) -> sql.Composed:
    """(reason code, rejected rows) for one file: a row refused for several reasons counts under each."""
    return sql.SQL(
        "SELECT code, count(*) FROM {r} AS r, unnest(string_to_array(r.reason, ';')) AS code "
        "GROUP BY code ORDER BY code"
    ).format(r=_each_rejected_row_once(table, fid))


def _moved_columns() -> tuple[sql.Composable, tuple[str, ...]]:
    moved = FIELDS + ("dq_flags",)
    return sql.SQL(", ").join(map(sql.Identifier, moved)), moved


def insert_staging(table: TableName, fid: str, source_file: str, uploaded: str) -> sql.Composed:
    """The fast path: insert the staged rows as they are. It fails with a UniqueViolation when the
    file repeats a TransactionID or holds one the target already has; then ``upsert_staging`` runs."""
    cols, _ = _moved_columns()
    return sql.SQL(
        "INSERT INTO {t} ({cols}, source_file, file_id, source_uploaded_at, loaded_at) "
        "SELECT {cols}, {source}, {fid}, {uploaded}::timestamptz, now() FROM {s}"
    ).format(
        t=identifier(table),
        cols=cols,
        source=sql.Literal(source_file),
        fid=sql.Literal(fid),
        uploaded=sql.Literal(uploaded),
        s=staging(table, fid),
    )


def upsert_staging(table: TableName, fid: str, source_file: str, uploaded: str) -> sql.Composed:
    """The general path: the last occurrence of each TransactionID in file order, inserted or
    overwriting the target's row — unless that row came from a file uploaded later (a retried older
    file does not undo a newer one; its row then counts as a duplicate). Returns one row: (rows
    upserted, CustomerIDs filled, dates replaced) among the upserted rows."""
    cols, moved = _moved_columns()
    updates = sql.SQL(", ").join(
        sql.SQL("{c} = EXCLUDED.{c}").format(c=sql.Identifier(c))
        for c in moved[1:] + ("source_file", "file_id", "source_uploaded_at", "loaded_at")
    )
    return sql.SQL(
        """
        WITH upserted AS (
            INSERT INTO {t} AS t ({cols}, source_file, file_id, source_uploaded_at, loaded_at)
            SELECT {cols}, {source}, {fid}, {uploaded}::timestamptz, now() FROM (
                SELECT DISTINCT ON (transactionid) {cols} FROM {s} ORDER BY transactionid, file_position DESC
            ) AS latest
            ON CONFLICT (transactionid) DO UPDATE SET {updates}
            WHERE t.source_uploaded_at IS NULL OR t.source_uploaded_at <= EXCLUDED.source_uploaded_at
            RETURNING t.dq_flags
        )
        SELECT count(*),
               count(*) FILTER (WHERE dq_flags ? {filled}),
               count(*) FILTER (WHERE dq_flags ? {replaced})
        FROM upserted
        """
    ).format(
        t=identifier(table),
        cols=cols,
        s=staging(table, fid),
        source=sql.Literal(source_file),
        fid=sql.Literal(fid),
        uploaded=sql.Literal(uploaded),
        updates=updates,
        filled=sql.Literal(FLAG_CUSTOMER_ID_FILLED),
        replaced=sql.Literal(FLAG_DATE_ORIGINAL),
    )
