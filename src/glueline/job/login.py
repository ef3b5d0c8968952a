"""The job's own database login: what it may do, made by the database's master and checked as the login.

The ETL never logs in as the master. Its login may connect, use and create in its target's schema (the
batch's staging and rejects tables are created per run) and owns its target table, the load ledger and
any batch table left behind (adding a column to the target is its owner's right); it is no superuser and
may not create roles or databases, replicate or bypass row security. So a run, or code a run was
tricked into loading, cannot drop another schema's tables, read what it was not granted, or make itself
a new role.

``ensure_login`` is run by the login job (``services/glue/ETL_DB_Login.py``) with the master's connection, from
inside the database's network: deploy itself never connects to a private RDS. It is idempotent and sets
the password of the job's secret, sent hashed (SCRAM, computed here), so the cleartext never reaches the
server or its statement log. ``findings`` is what ``plan`` says of a login the user brings (``--db-url``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from glueline.job import schema
from glueline.shared.tablename import TableName

# Default roles that reach outside the database (server files, programs) or everything in it, and RDS's
# own superuser stand-in: a login of the ETL is a member of none.
_POWERFUL_ROLES = (
    "rds_superuser",
    "pg_write_server_files",
    "pg_read_server_files",
    "pg_execute_server_program",
    "pg_read_all_data",
    "pg_write_all_data",
)
# Role attributes a login of the ETL never has, as CREATE ROLE spells them.
_ATTRIBUTES = {
    "rolsuper": "SUPERUSER",
    "rolcreaterole": "CREATEROLE",
    "rolcreatedb": "CREATEDB",
    "rolreplication": "REPLICATION",
    "rolbypassrls": "BYPASSRLS",
}


def owned_tables(table: TableName) -> sql.Composed:
    """The job's tables in ``table``'s schema (``schema.job_tables``), each with its owner."""
    names, prefixes = schema.job_tables(table)
    return sql.SQL(
        "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename), tableowner FROM pg_tables "
        "WHERE schemaname = {schema} AND (tablename = ANY({names}) OR starts_with(tablename, {first}) "
        "OR starts_with(tablename, {second}))"
    ).format(
        schema=sql.Literal(table.schema),
        names=sql.Literal(names),
        first=sql.Literal(prefixes[0]),
        second=sql.Literal(prefixes[1]),
    )


class LoginRefused(RuntimeError):
    """The login holds what its master cannot take away (only a superuser may): made by hand, or
    another's. The login job fails saying what to do."""


def ensure_login(master: psycopg.Connection, login: str, password: str, table: TableName, timeout_seconds: int) -> None:
    """As the master: ``login`` exists with ``password`` and exactly the job's rights on ``table``'s
    schema, in one transaction that waits ``timeout_seconds`` at most for a lock, twice that for a
    statement (handing a table over locks it exclusively: behind a reader's long query it must give up,
    not hold up every later reader)."""
    role = sql.Identifier(login)
    hashed = sql.Literal(master.pgconn.encrypt_password(password.encode(), login.encode(), b"scram-sha-256").decode())
    with master.transaction():
        master.execute(
            "SELECT set_config('lock_timeout', %s, true), set_config('statement_timeout', %s, true)",
            (f"{timeout_seconds}s", f"{2 * timeout_seconds}s"),  # a lock waited for is the one to give up
        )
        held = master.execute(
            "SELECT rolsuper, rolreplication, rolbypassrls FROM pg_roles WHERE rolname = %s", (login,)
        ).fetchone()
        if held is None:
            attributes = " ".join(f"NO{a}" for a in _ATTRIBUTES.values())
            master.execute(sql.SQL(f"CREATE ROLE {{}} LOGIN NOINHERIT {attributes} PASSWORD {{}}").format(role, hashed))
        else:
            # A master that is no superuser (RDS's) may not so much as name SUPERUSER, REPLICATION or
            # BYPASSRLS in ALTER ROLE, even to deny them: a login that has one is refused instead.
            untakeable = [
                name for has, name in zip(held, ("SUPERUSER", "REPLICATION", "BYPASSRLS"), strict=True) if has
            ]
            if untakeable:
                raise LoginRefused(
                    f"the login {login} exists with {', '.join(untakeable)}, which only a superuser may take "
                    f"away: ALTER ROLE {login} NO{' NO'.join(untakeable)} as one, or name another login "
                    "(GLUELINE_DB_LOGIN)"
                )
            master.execute(
                sql.SQL("ALTER ROLE {} LOGIN NOINHERIT NOCREATEDB NOCREATEROLE PASSWORD {}").format(role, hashed)
            )
        for (granted,) in _granted_to(master, login):
            master.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(granted), role))
        still = [granted for (granted,) in _granted_to(master, login)]
        if still:  # granted by another role than the master, which only that role (or a superuser) revokes
            raise LoginRefused(f"the login {login} is still a member of {', '.join(still)}: revoke it as its grantor")
        master.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_database(master), role))
        target_schema = sql.Identifier(table.schema)
        master.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(target_schema))
        master.execute(sql.SQL("GRANT USAGE, CREATE ON SCHEMA {} TO {}").format(target_schema, role))
        # Handing a table over needs the right to act as its new owner: a master that is no superuser
        # (RDS's) holds it as the login's creator (ADMIN OPTION) and grants it to itself.
        superuser = master.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()
        if not (superuser and superuser[0]):
            master.execute(sql.SQL("GRANT {} TO CURRENT_USER").format(role))
        for name, owner in master.execute(owned_tables(table)).fetchall():
            if owner != login:
                master.execute(sql.SQL("ALTER TABLE {} OWNER TO {}").format(sql.SQL(name), role))


def _granted_to(conn: psycopg.Connection, login: str) -> list[tuple[str]]:
    """The roles ``login`` is a member of, directly."""
    return conn.execute(
        "SELECT g.rolname FROM pg_auth_members m JOIN pg_roles g ON g.oid = m.roleid "
        "JOIN pg_roles u ON u.oid = m.member WHERE u.rolname = %s ORDER BY 1",
        (login,),
    ).fetchall()


@dataclass
class Findings:
    """What a login lacks for the job, and what it holds beyond it (each as a grant or attribute)."""

    missing: list[str] = field(default_factory=list)
    excessive: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        said = [f"missing {', '.join(self.missing)}"] if self.missing else []
        said += [f"excessive {', '.join(self.excessive)}"] if self.excessive else []
        return "; ".join(said) or "as the job needs"


def findings(login: psycopg.Connection, table: TableName) -> Findings:
    """The connected login's rights against what the job needs on ``table``."""
    found = Findings()
    row = login.execute(
        sql.SQL("SELECT {} FROM pg_roles WHERE rolname = current_user").format(
            sql.SQL(", ").join(map(sql.Identifier, _ATTRIBUTES))
        )
    ).fetchone()
    found.excessive += [name for held, name in zip(row or (), _ATTRIBUTES.values(), strict=False) if held]
    if "SUPERUSER" not in found.excessive:  # a superuser holds every role's rights: said once
        found.excessive += [f"member of {role}" for role in _member_of(login)]
    if not _has(login, "EXISTS (SELECT FROM pg_namespace WHERE nspname = %s)", table.schema):
        if not _has(login, "has_database_privilege(current_database(), 'CREATE')"):
            found.missing.append(f"CREATE on database (to create schema {table.schema})")
        return found
    for privilege in ("USAGE", "CREATE"):
        if not _has(login, "has_schema_privilege(%s, %s)", table.schema, privilege):
            found.missing.append(f"{privilege} on schema {table.schema}")
    for name, owner in login.execute(owned_tables(table)).fetchall():
        if not _has(login, "pg_has_role(current_user, %s, 'USAGE')", owner):
            found.missing.append(f"ownership of {name} (owned by {owner})")
    return found


def _member_of(conn: psycopg.Connection) -> list[str]:
    """The powerful roles the connected login is a member of, directly or not."""
    rows = conn.execute(
        "SELECT rolname FROM pg_roles WHERE rolname = ANY(%s) AND pg_has_role(current_user, oid, 'MEMBER') ORDER BY 1",
        (list(_POWERFUL_ROLES),),
    )
    return [name for (name,) in rows.fetchall()]


def _database(conn: psycopg.Connection) -> sql.Identifier:
    return sql.Identifier(conn.info.dbname)


def _has(conn: psycopg.Connection, check: str, *params: str) -> bool:
    return bool(conn.execute(f"SELECT {check}", params).fetchone()[0])  # type: ignore[index]
