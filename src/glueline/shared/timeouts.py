"""Every wait in the pipeline is bounded: the bounds of the waits on the database and on AWS, decided
here once for the Lambda, the Glue job (driver and executors) and the operator's tools.

A database can vanish without closing its sockets — a killed container whose network goes with it, a
cut network, an RDS failover, a NAT gateway or firewall dropping a flow it thinks idle — and then no
error ever arrives: a COPY waits for acknowledgements and a query for its answer until the kernel gives
up, after about 15 minutes of retransmissions for data in flight and never for an idle wait. So every
PostgreSQL connection asks the kernel to give up sooner, within ``DbBounds.lost_within_seconds`` (60 s
unless the deployment says otherwise):

* ``tcp_user_timeout``: data sent and not acknowledged for that long ends the connection
  (on Linux this also ends a connection whose peer's window stays shut that long: a database that
  stopped reading);
* TCP keepalives: a connection with nothing in flight (waiting for a query's answer) is probed after
  half of it in silence and ended when DB_KEEPALIVE_COUNT probes, spread over the other half, go
  unanswered. The probes also keep NAT gateways (AWS's forget an idle flow after 350 s) from
  dropping the job's driver connection while Spark works;
* ``connect_timeout``: a database that does not complete a connection within DB_CONNECT_SECONDS.

The server's end of each of the job's connections gets the same bounds (PostgreSQL's own per-session
settings, ``DbBounds.server_settings``): without them a backend whose job vanished — cut off, or killed by its
Timeout — keeps waiting for the rest of its COPY, holding its tables' locks, for the two hours of the
server's default keepalive, and the next attempt's DDL waits behind it; with
``client_connection_check_interval`` a long merge notices its client is gone and stops.

A database that is connected but hung (its kernel still answers, so the probes are acknowledged: a
stopped process, a deadlocked server) is seen by none of these: the Glue job's own ``Timeout`` (deploy
sets it, ``glue_timeout_minutes``) ends such a run as TIMEOUT, and the next trigger takes its files over.
Statements that should never take long — the job's DDL on its target and its own staging tables — carry a
server-side ``statement_timeout`` of ``DbBounds.ddl_statement_seconds``, so a lock held by someone else's long
query fails the run with that reason instead of queueing behind it. Every statement of the job waits for a
lock that long at most (``lock_timeout``, a session setting: a row another session holds, the target locked
by an operator), then its file fails without counting an attempt. The load itself (COPY, merge) is bounded
by the job's Timeout: a file's merge by what is left of it (``glueline.job.run.time_left``).

AWS calls (S3, DynamoDB, Secrets Manager, Glue, EventBridge, Lambda) go through ``aws_client``: a
connection must be made within AWS_CONNECT_SECONDS and every read answer within AWS_READ_SECONDS
(botocore's defaults are 60 s each); failed calls are retried in botocore's *standard* mode (exponential
backoff with jitter, throttling and transient errors) up to AWS_MAX_ATTEMPTS attempts in all.

Standard library and boto3 only: ships in the Lambda zip and the Glue job's library.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import boto3
from botocore.config import Config

DB_CONNECT_SECONDS = 10
DB_KEEPALIVE_COUNT = 3


@dataclass(frozen=True)
class DbBounds:
    """How long the job waits on its database, set per deployment: the job's arguments
    ``--DB_LOST_WITHIN_SECONDS`` and ``--DB_DDL_TIMEOUT_SECONDS`` (deploy: ``db_lost_within_seconds``,
    ``db_ddl_timeout_seconds``). A network with long legitimate stalls wants more; a test of the faults
    wants seconds. Frozen and small: Spark ships it to the executors inside their connection."""

    lost_within_seconds: int = 60  # a database gone without a word: every connection to it has failed by then
    ddl_statement_seconds: int = 60  # the job's DDL, and any wait for another session's lock, gives up then

    @property
    def user_timeout_seconds(self) -> int:
        """Data sent and not acknowledged this long ends the connection."""
        return self.lost_within_seconds

    @property
    def keepalive_idle_seconds(self) -> int:
        """A silent connection is probed after this, then DB_KEEPALIVE_COUNT times keepalive_interval apart."""
        return self.lost_within_seconds // 2

    @property
    def keepalive_interval_seconds(self) -> int:
        return max(1, self.lost_within_seconds // (2 * DB_KEEPALIVE_COUNT))

    def connection_options(self) -> dict[str, int]:
        """libpq's connection parameters for these bounds (``psycopg.connect(**…)``)."""
        return {
            "connect_timeout": DB_CONNECT_SECONDS,
            "keepalives": 1,
            "keepalives_idle": self.keepalive_idle_seconds,
            "keepalives_interval": self.keepalive_interval_seconds,
            "keepalives_count": DB_KEEPALIVE_COUNT,
            "tcp_user_timeout": self.user_timeout_seconds * 1000,
        }

    def server_settings(self) -> dict[str, str]:
        """PostgreSQL settings for the server's end of a job's connection: the same bounds, both ways."""
        return {
            "tcp_keepalives_idle": str(self.keepalive_idle_seconds),
            "tcp_keepalives_interval": str(self.keepalive_interval_seconds),
            "tcp_keepalives_count": str(DB_KEEPALIVE_COUNT),
            "tcp_user_timeout": str(self.user_timeout_seconds * 1000),
            "client_connection_check_interval": str(self.keepalive_interval_seconds * 1000),
            "lock_timeout": str(self.ddl_statement_seconds * 1000),
        }

    def job_arguments(self) -> dict[str, str]:
        """The Glue job's arguments that carry them (deploy pins them: NonOverridableArguments)."""
        return {
            "--DB_LOST_WITHIN_SECONDS": str(self.lost_within_seconds),
            "--DB_DDL_TIMEOUT_SECONDS": str(self.ddl_statement_seconds),
        }

    @classmethod
    def from_job_arguments(cls, args: Mapping[str, str]) -> DbBounds:
        """Read back from getResolvedOptions' answer (names without their dashes)."""
        return cls(int(args["DB_LOST_WITHIN_SECONDS"]), int(args["DB_DDL_TIMEOUT_SECONDS"]))


JOB_BOUND_ARGUMENTS = [name.removeprefix("--") for name in DbBounds().job_arguments()]

AWS_CONNECT_SECONDS = 5
AWS_READ_SECONDS = 30
AWS_MAX_ATTEMPTS = 5
AWS_CONFIG = Config(
    connect_timeout=AWS_CONNECT_SECONDS,
    read_timeout=AWS_READ_SECONDS,
    retries={"mode": "standard", "total_max_attempts": AWS_MAX_ATTEMPTS},  # the first call included
)


def aws_client(service: str, session=None, config: Config | None = None, **kwargs):
    """A boto3 client with the bounds above (``config`` overrides some of them, e.g. a longer read for a
    synchronous Lambda invocation), from ``session`` or boto3's default one."""
    return (session or boto3).client(service, config=AWS_CONFIG.merge(config) if config else AWS_CONFIG, **kwargs)
