"""A batch's staging and rejects tables on PostgreSQL: a run that dies mid-load leaves them, and a later
batch of other files (another name) must not leave them for good."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql

from glueline.job import schema
from glueline.shared.tablename import TableName

pytestmark = pytest.mark.embedded_only  # the job's SQL against PostgreSQL: the same on both stacks

TABLE = TableName.parse("batch_tables_test.transactions")


def job_tables(conn) -> list[str]:
    names, prefixes = schema.job_tables(TABLE)
    found = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [TABLE.schema]).fetchall()
    return sorted(t for (t,) in found if t.startswith(tuple(prefixes)))


def test_a_dead_batchs_tables_go_once_a_later_batch_takes_its_files(glueline_stack):
    with psycopg.connect(**glueline_stack.db.connect_kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(TABLE.schema)))
        conn.execute(schema.create_target(TABLE))
        try:
            dead = schema.batch_name(["f1", "f2"])
            conn.execute(schema.create_batch_tables(TABLE, dead, ["f1", "f2"]))  # its run dies here
            assert len(job_tables(conn)) == 6  # two parents, two partitions each

            live = schema.batch_name(["f2", "f3"])
            conn.execute(schema.create_batch_tables(TABLE, live, ["f2", "f3"]))
            assert len(job_tables(conn)) == 4 + 6  # f1 is still in the dead batch: its tables stay
            conn.execute(schema.create_batch_tables(TABLE, schema.batch_name(["f1"]), ["f1"]))
            left = job_tables(conn)
            assert not any(dead[:16] in t for t in left), left  # emptied: gone
            assert sum(live[:16] in t for t in left) == 2  # the live batch keeps its tables

            conn.execute(schema.drop_batch_tables(TABLE, live))
            conn.execute(schema.drop_batch_tables(TABLE, schema.batch_name(["f1"])))
            assert job_tables(conn) == []
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(TABLE.schema)))


def test_a_task_that_stored_its_rows_twice_loads_and_rejects_each_row_once(glueline_stack):
    """Spark retries a failed task (four attempts on Glue and in the local runner): a task whose Python
    worker died after its COPYs committed stores its rows again. The merge loads each row once, and the
    rejected rows are exported and counted once each."""
    fid = "f1"
    staged = (
        '7,ACC,N/A,2026-12-07,deposit,1.00,USD,2.00,3,,one,"{""customerid_filled"":true}",1,0\n'
        "8,ACC,9,2026-12-07,deposit,2.00,USD,3.00,3,,two,,2,0\n"
    )
    rejected = "0,0,0,0,bad_currency,9,ACC,9,2026-12-07,deposit,1.00,EURO,2.00,3,,x,\n"
    with psycopg.connect(**glueline_stack.db.connect_kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(TABLE.schema)))
        conn.execute(schema.create_target(TABLE))
        try:
            batch = schema.batch_name([fid])
            conn.execute(schema.create_batch_tables(TABLE, batch, [fid]))
            for _attempt in range(2):  # the first attempt's commit stands, the retry's too
                with conn.cursor().copy(schema.copy_into_staging(TABLE, batch)) as copy:
                    copy.write(staged)
                with conn.cursor().copy(schema.copy_into_rejects(TABLE, batch)) as copy:
                    copy.write(rejected)

            assert conn.execute(schema.count_reject_reasons(TABLE, fid)).fetchall() == [("bad_currency", 1)]
            with conn.cursor() as cur, cur.copy(schema.export_rejects(TABLE, fid, [(0, 0, 0)])) as copy:
                exported = b"".join(bytes(data) for data in copy).decode()
            assert exported == "2,1,bad_currency,9,ACC,9,2026-12-07,deposit,1.00,EURO,2.00,3,,x,\n"
            with pytest.raises(psycopg.errors.UniqueViolation):  # the fast path refuses the second copy…
                conn.execute(schema.insert_staging(TABLE, fid, "s3://b/source/f1.csv", "2026-12-07T00:00:00Z"))
            upserted = conn.execute(schema.upsert_staging(TABLE, fid, "s3://b/source/f1.csv", "2026-12-07T00:00:00Z"))
            assert upserted.fetchone() == (2, 1, 0)  # …and the upsert takes each row once
            target = sql.SQL("SELECT transactionid FROM {} ORDER BY 1").format(schema.identifier(TABLE))
            assert conn.execute(target).fetchall() == [(7,), (8,)]
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(TABLE.schema)))
