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
