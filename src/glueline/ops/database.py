"""The database the pipeline loads into, decided once (``glueline.ops.target`` asks here), first of:

    given             --db-url / GLUELINE_DB_URL
    the local stack's  the embedded stack's on this machine; the compose stack's by name in its network
    deployed          the one the deployed secret names (a deploy stored it there)
    created by deploy --create-database: RDS PostgreSQL, its endpoint known once RDS has made it

and the TLS mode the job connects with, since it then connects from AWS with nobody watching: what a URL
says, else the strictest mode that works (``glueline.ops.tls``): an RDS database ``verify-full`` against
RDS's CA bundle, which deploy ships beside the job's code; another by what the server offers.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum
from functools import cached_property

import psycopg

from glueline.artifacts import RDS_CA_BUNDLE
from glueline.job import login
from glueline.ops import tls
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection
from glueline.shared.tablename import TableName

LOGIN_CHECK_SECONDS = 5  # how long plan waits for a given database before leaving its login unchecked


class Origin(StrEnum):
    GIVEN = "given"
    LOCAL_STACK = "the local stack's"
    DEPLOYED = "the deployed secret's"
    CREATED = "created by deploy"


class NoDatabase(RuntimeError):
    """None of the four: the message says how to name one."""


@dataclass
class Database:
    """The database and its TLS mode: decided on first use of ``connection`` (asking a server that leaves
    it to libpq's default what it offers), so a command that only names the database or counts its rows
    asks nothing."""

    origin: Origin
    given: DbConnection  # as given or found
    here: DbConnection | None  # as this machine reaches it; None: not known to (a private RDS)
    checked_against_rds_ca: bool = False  # known already: RDS's CA bundle, shipped beside the job's code

    def target(self, table: TableName) -> str:
        """Where the rows go, part of every FileID (``DbConnection.target``)."""
        return self.given.target(str(table))

    @cached_property
    def _tls(self) -> tuple[DbConnection, bool, str]:
        if self.checked_against_rds_ca:
            return replace(self.given, sslmode="verify-full", sslrootcert=""), True, ""
        return strictest_tls(self.given)

    @property
    def connection(self) -> DbConnection:
        """As the pipeline reaches it, its TLS mode decided (where RDS's CA bundle is aside: ``rds_ca``)."""
        return self._tls[0]

    @property
    def rds_ca(self) -> bool:
        """The job checks the server against RDS's CA bundle, shipped beside its code."""
        return self._tls[1]

    def login_review(self, table: TableName) -> str:
        """What the login of a given database lacks for the job, or holds beyond it (superuser,
        CREATEROLE…: ``glueline.job.login``), asked from here; "" for a login deploy makes itself."""
        if self.origin != Origin.GIVEN or self.here is None:
            return ""
        try:
            with psycopg.connect(**{**self.here.connect_kwargs(), "connect_timeout": LOGIN_CHECK_SECONDS}) as conn:
                return str(login.findings(conn, table))
        except psycopg.Error as err:
            return f"not checked (unreachable from here: {str(err).strip().splitlines()[0]})"

    @property
    def tls_offered(self) -> str:
        """What the server offered when asked (glueline.ops.tls); "": not asked."""
        return self._tls[2]


def known_database(settings: Settings, local: DbConnection | None, local_here: DbConnection | None) -> Database | None:
    """The database decided without asking the account: the given URL, else the local stack's (``local``
    as the pipeline reaches it, ``local_here`` from here)."""
    if settings.db_url:
        given = DbConnection.from_url(settings.db_url)
        return Database(Origin.GIVEN, given, here=given)
    if local is not None:
        return Database(Origin.LOCAL_STACK, local, here=local_here or local)
    return None


def deployed_database(settings: Settings, secrets, rds) -> Database:
    """The database the deployed secret names, else the one deploy creates (``create_database``); else
    NoDatabase. ``secrets``, ``rds``: the account's clients."""
    try:
        stored = DbConnection.from_secrets_manager(secrets, settings.db_secret_name)
    except secrets.exceptions.ResourceNotFoundException:
        if settings.create_database:
            return created_database(settings, rds)
        raise NoDatabase(
            f"no database: pass --db-url once (it is stored in the secret {settings.db_secret_name}, never "
            "printed), set GLUELINE_DB_URL, or let deploy create one (--create-database)"
        ) from None
    # RDS's CA bundle an earlier deploy shipped goes where the code is now.
    shipped = stored.sslrootcert.endswith("/" + RDS_CA_BUNDLE)
    return Database(Origin.DEPLOYED, stored, None, checked_against_rds_ca=shipped)


def created_database(settings: Settings, rds) -> Database:
    """The RDS instance deploy creates, as the job's login reaches it (the master's password is in the
    secret RDS manages); before RDS has made it, one that names it."""
    s = settings
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=s.db_instance)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        instance = {}
    endpoint = instance.get("Endpoint")  # none until the instance is first available
    connection = DbConnection(
        host=endpoint["Address"] if endpoint else f"{s.db_instance}.(created by deploy)",
        port=int(endpoint["Port"]) if endpoint else 5432,
        dbname=instance.get("DBName") or s.db_name,
        username=s.db_login,  # the job's own login (glueline.job.login), its password deploy's to choose
        sslmode="verify-full",
        master_secret=instance.get("MasterUserSecret", {}).get("SecretArn", ""),  # RDS's, once it made it
    )
    return Database(Origin.CREATED, connection, None, checked_against_rds_ca=True)


def strictest_tls(db: DbConnection) -> tuple[DbConnection, bool, str]:
    """A database left at libpq's default sslmode (``prefer``: encrypted if offered, the certificate not
    checked), with the strictest mode that works; whether that is RDS's CA (an RDS host); what the server
    offered ("" when not asked). An sslmode given in the URL is kept."""
    if db.sslmode != "prefer":
        return db, False, ""
    if db.host.endswith(".rds.amazonaws.com"):
        return replace(db, sslmode="verify-full"), True, ""
    offered = tls.probe(db.host, db.port)
    if offered == tls.VERIFIED:
        return replace(db, sslmode="verify-full", sslrootcert="system"), False, offered
    if offered == tls.UNVERIFIED:
        return replace(db, sslmode="require"), False, offered
    return db, False, offered
