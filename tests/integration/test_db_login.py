"""The job's own database login (glueline.job.login) on a real PostgreSQL: what the login job makes with
the master's connection lets the job load, and nothing else; what ``plan`` says of a login a user brings.
The stack's own deploy makes the login through the login job: test_deploy_and_stack holds that."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import psycopg
import pytest
from psycopg import errors

from glueline.job import schema
from glueline.job.login import Findings, LoginRefused, ensure_login, findings
from glueline.local.embedded.postgres import PostgresServer
from glueline.local.ports import free_port
from glueline.shared.dbsecret import DbConnection
from glueline.shared.tablename import TableName

pytestmark = pytest.mark.embedded_only  # PostgreSQL alone, started here: the same on both stacks

TABLE = TableName.parse("public.transactions")
LOGIN = "glueline_etl"
TIMEOUT = 15


@pytest.fixture(scope="module")
def master() -> Iterator[DbConnection]:
    root = Path(tempfile.mkdtemp(prefix="glueline-login-"))
    root.chmod(0o755)  # the server runs as the postgres user
    server = PostgresServer(root, free_port())
    try:
        yield server.start()
    finally:
        server.stop()


def connect(db: DbConnection, **as_user: str) -> psycopg.Connection:
    return psycopg.connect(**{**db.connect_kwargs(), **as_user}, autocommit=True)


@pytest.fixture
def database(master) -> Iterator[DbConnection]:
    """The master's database with the target as an earlier release left it (made by the master) and a
    schema of the bank's the job has no business in; emptied of roles and schemas after."""
    with connect(master) as conn:
        conn.execute(schema.create_target(TABLE))
        conn.execute("CREATE SCHEMA bank_private; CREATE TABLE bank_private.accounts (id int)")
        conn.execute("GRANT USAGE ON SCHEMA bank_private TO PUBLIC")  # a table in it is another matter
    yield master
    with connect(master) as conn:
        conn.execute("ALTER DATABASE glueline OWNER TO CURRENT_USER")
        conn.execute(
            "DROP SCHEMA bank_private CASCADE; DROP TABLE IF EXISTS public.transactions, public._loads_transactions"
        )
        for role in (LOGIN, "rds_master", "someone"):
            conn.execute(f"DROP OWNED BY {role} CASCADE" if _exists(conn, role) else "SELECT 1")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def _exists(conn: psycopg.Connection, role: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)).fetchone() is not None


def as_login(db: DbConnection, password: str) -> psycopg.Connection:
    return connect(db, user=LOGIN, password=password)


def test_the_jobs_login_loads_into_its_table_and_can_do_nothing_else(database):
    with connect(database) as conn:
        ensure_login(conn, LOGIN, "first password", TABLE, TIMEOUT)
    with as_login(database, "first password") as job:
        # What a run does: its DDL, a batch's tables, rows into the target and the ledger.
        job.execute(schema.create_target(TABLE))
        job.execute(schema.create_batch_tables(TABLE, "b1", ["f1"]))
        job.execute(
            "INSERT INTO public.transactions (transactionid, customerid, transactiondate, transactionamount, "
            "currency, accountbalance, branchcode, source_file, file_id) "
            "VALUES (1, 'C1', '2024-07-14', 1, 'USD', 1, 1, 's3://b/source/f.csv', 'f1')"
        )
        job.execute(schema.drop_batch_tables(TABLE, "b1"))
        job.execute("ALTER TABLE public.transactions DROP COLUMN dq_flags")  # its own table: a column added back
        job.execute(schema.create_target(TABLE))
        assert findings(job, TABLE).missing == [] and findings(job, TABLE).excessive == []
        for forbidden in (
            "DROP TABLE bank_private.accounts",
            "SELECT * FROM bank_private.accounts",
            "CREATE ROLE someone",
            "CREATE SCHEMA elsewhere",
            "CREATE DATABASE another",
        ):
            with pytest.raises(errors.InsufficientPrivilege):
                job.execute(forbidden)
    with connect(database) as conn:
        assert conn.execute("SELECT count(*) FROM bank_private.accounts").fetchone() == (0,)  # still there
        owners = dict(
            conn.execute("SELECT tablename, tableowner FROM pg_tables WHERE schemaname = 'public'").fetchall()
        )
        assert owners == {"transactions": LOGIN, "_loads_transactions": LOGIN}
        attributes = "rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls"
        role = conn.execute(f"SELECT {attributes} FROM pg_roles WHERE rolname = %s", (LOGIN,)).fetchone()
        assert role == (False, False, False, False, False)


def test_made_again_it_takes_the_secrets_new_password_and_the_old_one_no_longer_logs_in(database):
    with connect(database) as conn:
        ensure_login(conn, LOGIN, "first password", TABLE, TIMEOUT)
        ensure_login(conn, LOGIN, "second password", TABLE, TIMEOUT)
    with as_login(database, "second password") as job:
        assert job.execute("SELECT current_user").fetchone() == (LOGIN,)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        as_login(database, "first password").close()


def test_a_master_that_is_no_superuser_makes_it_as_on_rds(database):
    """RDS's master is no superuser: it creates roles (CREATEROLE), owns its database (so the public
    schema) and what it made, and hands the target over to the login by first granting itself the login
    (as its creator may)."""
    with connect(database) as conn:
        conn.execute("CREATE ROLE rds_master LOGIN CREATEROLE CREATEDB PASSWORD 'master password'")
        conn.execute("ALTER DATABASE glueline OWNER TO rds_master")  # RDS makes the master its database's owner
        conn.execute("ALTER TABLE public.transactions OWNER TO rds_master")
        conn.execute("ALTER TABLE public._loads_transactions OWNER TO rds_master")
    with connect(database, user="rds_master", password="master password") as rds:
        ensure_login(rds, LOGIN, "a password", TABLE, TIMEOUT)
        rds.execute("GRANT pg_read_all_data TO glueline_etl")  # something a later hand gave it
        ensure_login(rds, LOGIN, "another password", TABLE, TIMEOUT)  # made again: ALTER, not CREATE
    with as_login(database, "another password") as job:
        assert findings(job, TABLE) == Findings()  # the membership taken away again
    with connect(database) as conn:  # a superuser gives it what only a superuser takes away
        conn.execute("ALTER ROLE glueline_etl BYPASSRLS")
    with connect(database, user="rds_master", password="master password") as rds:
        with pytest.raises(LoginRefused, match="exists with BYPASSRLS, which only a superuser may take away"):
            ensure_login(rds, LOGIN, "a third password", TABLE, TIMEOUT)
    with as_login(database, "another password") as job:  # nothing changed
        assert findings(job, TABLE).excessive == ["BYPASSRLS"]


def test_handing_over_a_table_behind_a_long_reader_gives_up_after_the_timeout(database):
    """ALTER TABLE … OWNER locks the table exclusively: the login job waits its timeout, then fails,
    rather than holding up every later reader of the table behind it."""
    with connect(database) as reader, connect(database) as conn:
        reader.execute("BEGIN; SELECT count(*) FROM public.transactions")
        with pytest.raises(errors.LockNotAvailable):
            ensure_login(conn, LOGIN, "a password", TABLE, 1)
        reader.execute("ROLLBACK")
        assert not _exists(conn, LOGIN)  # one transaction: nothing made


def test_plan_says_what_a_users_own_login_lacks_or_holds_beyond_the_job(database):
    with connect(database) as conn:
        superuser = findings(conn, TABLE)
        conn.execute("CREATE ROLE someone LOGIN CREATEROLE PASSWORD 'pw'")
    assert superuser.excessive == ["SUPERUSER", "CREATEROLE", "CREATEDB", "REPLICATION", "BYPASSRLS"]
    assert superuser.missing == []
    with connect(database, user="someone", password="pw") as conn:
        said = findings(conn, TABLE)
    assert said.excessive == ["CREATEROLE"]
    assert said.missing == [
        "CREATE on schema public",
        "ownership of public.transactions (owned by glueline)",
        "ownership of public._loads_transactions (owned by glueline)",
    ]
    assert str(said).startswith("missing CREATE on schema public, ownership of public.transactions")
    with connect(replace(database, username="someone", password="pw")) as conn:
        assert "excessive CREATEROLE" in str(findings(conn, TABLE))
