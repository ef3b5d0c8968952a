"""ETL_DB_Login — the one-off Glue job that makes the ETL's own database login (``glueline.job.login``).

Deploy starts it when the login is new or its password or rights changed: deploy never connects to the
database itself (a private RDS is reachable from inside its network only), and this job runs there,
with a role of its own, the only one of the pipeline that may read the master's secret. It needs no
Spark.

Arguments: --DB_SECRET_ID (the ETL's secret: where the database is, the login's name and password, and
``master_secret``, the secret of the master's username and password; its AWSPENDING value where deploy
wrote one, which deploy makes current once this job succeeded), --TARGET_TABLE (schema.table),
--DB_LOST_WITHIN_SECONDS and --DB_DDL_TIMEOUT_SECONDS (how long it waits on the database).
"""

from __future__ import annotations

import sys
from dataclasses import replace

import psycopg

from glueline.job.login import ensure_login
from glueline.shared.dbsecret import PENDING, DbConnection, master_of
from glueline.shared.tablename import TableName
from glueline.shared.timeouts import JOB_BOUND_ARGUMENTS, DbBounds, aws_client

try:  # the one allowed seam, as in ETL_Job_to_RDS
    from awsglue.utils import getResolvedOptions
except ImportError:
    from glueline.job.args import resolve_options as getResolvedOptions

ARGUMENTS = ["JOB_NAME", "DB_SECRET_ID", "TARGET_TABLE", *JOB_BOUND_ARGUMENTS]


def main(argv: list[str]) -> None:
    args = getResolvedOptions(argv, ARGUMENTS)
    secrets = aws_client("secretsmanager")
    try:  # the value deploy has written and not yet made current: the ETL keeps the one in use meanwhile
        login = DbConnection.from_secrets_manager(secrets, args["DB_SECRET_ID"], PENDING)
    except secrets.exceptions.ResourceNotFoundException:
        login = DbConnection.from_secrets_manager(secrets, args["DB_SECRET_ID"])
    if not login.master_secret:
        raise SystemExit(f"the secret {args['DB_SECRET_ID']} names no master: its login is the user's own")
    bounds = DbBounds.from_job_arguments(args)
    master = replace(master_of(login, secrets), bounds=bounds)
    with psycopg.connect(**master.connect_kwargs(), autocommit=True) as conn:
        table = TableName.parse(args["TARGET_TABLE"])
        ensure_login(conn, login.username, login.password, table, bounds.ddl_statement_seconds)
    print(f"the login {login.username} is ready on {login.target(args['TARGET_TABLE'])}")


if __name__ == "__main__":
    main(sys.argv)
