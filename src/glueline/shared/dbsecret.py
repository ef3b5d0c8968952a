"""Database connection details as stored in Secrets Manager.

The secret has the shape of an RDS-managed secret (``engine``, ``host``, ``port``, ``username``,
``password``, ``dbname``), so a real RDS secret works unchanged. The Glue job receives only the
secret's *name*; the password never travels in job arguments, environment variables or logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from functools import lru_cache
from urllib.parse import quote, unquote, urlsplit

from glueline.shared.timeouts import DbBounds, aws_client


@dataclass(frozen=True)
class DbConnection:
    host: str
    port: int
    dbname: str
    username: str
    password: str = ""
    sslmode: str = "prefer"
    sslrootcert: str = ""  # the CA bundle for verify-full: a local path, or s3://… (fetched where it runs)
    # Where deploy made this login for the job (glueline.job.login): the secret of the database master's
    # username and password (RDS's own shape), which only the login job reads; "": the user's own login.
    master_secret: str = ""
    bounds: DbBounds = DbBounds()  # how long its connections wait on it (not stored in the secret: the job's)

    @classmethod
    def from_url(cls, url: str) -> DbConnection:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError("a database URL looks like postgresql://user:password@host:5432/dbname")
        query = dict(p.split("=", 1) for p in parts.query.split("&") if "=" in p)
        return cls(
            host=parts.hostname or "127.0.0.1",
            port=parts.port or 5432,
            dbname=unquote(parts.path.lstrip("/")) or "postgres",
            username=unquote(parts.username or "postgres"),
            password=unquote(parts.password or ""),
            sslmode=query.get("sslmode", "prefer"),
            sslrootcert=unquote(query.get("sslrootcert", "")),
        )

    @classmethod
    def from_secret(cls, secret_string: str) -> DbConnection:
        data = json.loads(secret_string)
        return cls(
            host=data["host"],
            port=int(data.get("port", 5432)),
            dbname=data.get("dbname", "postgres"),
            username=data["username"],
            password=data.get("password", ""),
            sslmode=data.get("sslmode", "prefer"),
            sslrootcert=data.get("sslrootcert", ""),
            # An earlier release stored RDS's secret of a database deploy created as password_secret (the
            # job logged in as the master): the next deploy makes the job's own login from it.
            master_secret=data.get("master_secret") or data.get("password_secret", ""),
        )

    @classmethod
    def from_secrets_manager(cls, client, secret_id: str, stage: str = "AWSCURRENT") -> DbConnection:
        """The secret's value of that version stage (Secrets Manager's ResourceNotFoundException: none)."""
        return cls.from_secret(client.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"])

    def secret_string(self) -> str:
        return json.dumps(
            {
                "engine": "postgres",
                "host": self.host,
                "port": self.port,
                "dbname": self.dbname,
                "username": self.username,
                "password": self.password,
                "sslmode": self.sslmode,
                **({"sslrootcert": self.sslrootcert} if self.sslrootcert else {}),
                **({"master_secret": self.master_secret} if self.master_secret else {}),
            },
            sort_keys=True,
        )

    def connect_kwargs(self) -> dict:
        """Arguments for ``psycopg.connect``."""
        return {
            "host": self.host,
            "port": self.port,
            "dbname": self.dbname,
            "user": self.username,
            "password": self.password,
            "sslmode": self.sslmode,
            **({"sslrootcert": _local_file(self.sslrootcert)} if self.sslrootcert else {}),
            **self.bounds.connection_options(),  # a vanished database is noticed (glueline.shared.timeouts)
            "application_name": "glueline",
        }

    def target(self, table: str) -> str:
        """Where rows go, named without secrets — ``host:port/dbname/schema.table`` — as the audit items,
        the reports and every FileID name it: the same file loaded into another database is another file."""
        return f"{self.host}:{self.port}/{self.dbname}/{table}"

    def url(self, *, with_password: bool) -> str:
        secret = f":{quote(self.password, safe='')}" if with_password and self.password else ""
        return f"postgresql://{quote(self.username, safe='')}{secret}@{self.host}:{self.port}/{self.dbname}"

    def __repr__(self) -> str:  # never print the password by accident
        return f"DbConnection({self.url(with_password=False)})"


@dataclass(frozen=True)
class SecretReference:
    """What Spark tasks carry instead of the connection: the secret's name. Each executor process reads
    the secret once (on AWS Glue with the job's role), so the password is never serialized into a task
    closure that Spark ships to its executors; and the job's bounds on the database."""

    secret_id: str
    bounds: DbBounds = DbBounds()

    def connect_kwargs(self) -> dict:
        return replace(_read_secret(self.secret_id), bounds=self.bounds).connect_kwargs()


@lru_cache(maxsize=8)
def _read_secret(secret_id: str) -> DbConnection:
    return DbConnection.from_secrets_manager(aws_client("secretsmanager"), secret_id)


@lru_cache(maxsize=8)
def _local_file(location: str) -> str:
    """A path libpq can read: ``s3://bucket/key`` is fetched once per process (the job's role may read
    ``scripts/``), anything else is a path already."""
    if not location.startswith("s3://"):
        return location
    import tempfile

    bucket, key = location.removeprefix("s3://").split("/", 1)
    handle, path = tempfile.mkstemp(prefix="glueline-ca-", suffix=".pem")
    with open(handle, "wb") as out:
        out.write(aws_client("s3").get_object(Bucket=bucket, Key=key)["Body"].read())
    return path


# A value of the job's secret not yet in use: written by deploy, read by the login job, which makes the
# login it names; deploy makes it the current value (what the ETL reads) once the login job succeeded.
PENDING = "AWSPENDING"


def master_of(login: DbConnection, client) -> DbConnection:
    """The database's master, reached as ``login`` reaches it: its username and password from the login's
    ``master_secret`` (``client``: Secrets Manager's)."""
    data = json.loads(client.get_secret_value(SecretId=login.master_secret)["SecretString"])
    return replace(login, username=data["username"], password=data.get("password", ""), master_secret="")
