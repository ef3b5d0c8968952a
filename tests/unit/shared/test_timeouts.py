"""The bounds every connection carries, as the libraries that apply them read them."""

from __future__ import annotations

import psycopg
import pytest

from glueline.job.schema import session_settings, statement_timeout
from glueline.shared import timeouts
from glueline.shared.dbsecret import DbConnection


def test_every_database_connection_asks_libpq_for_the_bounds():
    kwargs = DbConnection.from_url("postgresql://etl:pw@db.example:5432/bank").connect_kwargs()
    # libpq parses them (an unknown or misspelt keyword is an error here, not a silently unbounded wait).
    parsed = psycopg.conninfo.conninfo_to_dict(psycopg.conninfo.make_conninfo("", **kwargs))
    assert {k: int(v) for k, v in parsed.items() if k in timeouts.db_connection_options()} == {
        "connect_timeout": 10,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 60_000,
    }


def test_a_lost_database_is_noticed_within_the_bound_the_tests_derive_theirs_from():
    probes = timeouts.DB_KEEPALIVE_IDLE_SECONDS + timeouts.DB_KEEPALIVE_COUNT * timeouts.DB_KEEPALIVE_INTERVAL_SECONDS
    assert timeouts.DB_LOST_WITHIN_SECONDS >= max(probes, timeouts.DB_USER_TIMEOUT_SECONDS)


def test_the_servers_end_gets_the_same_bounds_and_never_fails_on_an_unknown_setting():
    settings = timeouts.db_server_settings()
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
