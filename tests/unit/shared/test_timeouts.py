"""The bounds every connection carries, as the libraries that apply them read them."""

from __future__ import annotations

import pickle

import psycopg
import pytest

from glueline.job.args import resolve_options
from glueline.job.schema import session_settings, statement_timeout
from glueline.shared import dbsecret, timeouts
from glueline.shared.dbsecret import DbConnection, SecretReference
from glueline.shared.timeouts import DbBounds


def libpq_parsed(kwargs: dict) -> dict[str, int]:
    """What libpq reads of the bounds (an unknown or misspelt keyword is an error here, not a silently
    unbounded wait)."""
    parsed = psycopg.conninfo.conninfo_to_dict(psycopg.conninfo.make_conninfo("", **kwargs))
    return {k: int(v) for k, v in parsed.items() if k in DbBounds().connection_options()}


def test_every_database_connection_asks_libpq_for_the_bounds():
    kwargs = DbConnection.from_url("postgresql://etl:pw@db.example:5432/bank").connect_kwargs()
    assert libpq_parsed(kwargs) == {
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,
    }


@pytest.mark.parametrize("lost_within", [6, 15, 60, 61, 900])
def test_a_lost_database_is_noticed_within_its_bound(lost_within):
    bounds = DbBounds(lost_within_seconds=lost_within)
    probes = bounds.keepalive_idle_seconds + timeouts.DB_KEEPALIVE_COUNT * bounds.keepalive_interval_seconds
    assert probes <= lost_within and bounds.user_timeout_seconds == lost_within
    assert bounds.keepalive_idle_seconds >= 1 and bounds.keepalive_interval_seconds >= 1


def test_the_jobs_bounds_travel_as_its_arguments_and_reach_the_secrets_connection(monkeypatch):
    bounds = DbBounds(lost_within_seconds=12, ddl_statement_seconds=7)
    arguments = bounds.job_arguments()
    assert arguments == {"--DB_LOST_WITHIN_SECONDS": "12", "--DB_DDL_TIMEOUT_SECONDS": "7"}
    argv = ["script.py", *(part for item in arguments.items() for part in item)]
    assert DbBounds.from_job_arguments(resolve_options(argv, timeouts.JOB_BOUND_ARGUMENTS)) == bounds
    # What a Spark task connects with: the secret read where it runs, with the job's bounds.
    stored = DbConnection.from_url("postgresql://etl:pw@db.example:5432/bank")
    monkeypatch.setattr(dbsecret, "_read_secret", lambda secret_id: stored)
    task = pickle.loads(pickle.dumps(SecretReference("glueline/rds", bounds)))
    assert libpq_parsed(task.connect_kwargs())["tcp_user_timeout"] == 12_000
    assert "bounds" not in stored.secret_string()  # the job's, not the database's


def test_the_servers_end_gets_the_same_bounds_and_never_fails_on_an_unknown_setting():
    settings = DbBounds().server_settings()
    assert settings["tcp_user_timeout"] == "60000" and settings["tcp_keepalives_idle"] == "30"
    text = session_settings(settings).as_string(None)
    assert "JOIN pg_settings USING (name)" in text and "'client_connection_check_interval', '10000'" in text


@pytest.mark.parametrize(
    ("seconds", "local", "expected"),
    [(60, False, "SET SESSION statement_timeout = 60000"), (0, True, "SET LOCAL statement_timeout = 0")],
)
def test_statement_timeouts(seconds, local, expected):
    assert statement_timeout(seconds, local=local).as_string(None) == expected


def test_aws_clients_have_short_connect_and_read_timeouts_and_standard_retries():
    config = timeouts.aws_client("s3", region_name="us-east-1").meta.config
    assert (config.connect_timeout, config.read_timeout) == (5, 30)  # botocore's defaults: 60 and 60
    assert config.retries == {"mode": "standard", "total_max_attempts": 5}  # the first call and 4 retries


def test_a_caller_may_lengthen_one_bound_and_keeps_the_others():
    from botocore.config import Config

    config = timeouts.aws_client("lambda", config=Config(read_timeout=330), region_name="us-east-1").meta.config
    assert (config.connect_timeout, config.read_timeout, config.retries["mode"]) == (5, 330, "standard")
