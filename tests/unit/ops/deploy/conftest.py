"""An AWS account in moto, in this process: the account states deploy's and destroy's plans are
tested against, through the same target resolution and Deployer the commands use."""

from __future__ import annotations

import os
from types import SimpleNamespace

import boto3
import pytest
from moto import mock_aws

from glueline.ops.deploy.deployer import Deployer, deployer_for
from glueline.ops.target import Target, resolve_target
from glueline.settings import Settings

REGION = "eu-west-1"
DB_URL = "postgresql://etl:secret@db.example:5432/bank"


def target_of(session, settings: Settings) -> Target:
    """The target of ``settings`` in the moto account (a session given: nothing to start or stop)."""
    with resolve_target(settings, session=session) as target:
        return target


def deployer_in(session, adopt: bool = False, **settings) -> Deployer:
    """The Deployer of these settings (the database of DB_URL unless they say otherwise) in the moto account."""
    target = target_of(session, Settings(_env_file=None, **{"db_url": DB_URL, **settings}))
    return deployer_for(target, adopt=adopt, sleep=lambda seconds: None)


@pytest.fixture
def session(monkeypatch):
    for name in [n for n in os.environ if n.startswith(("AWS_", "GLUELINE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        session = boto3.Session(region_name=REGION)
        session.events.register("before-call.lambda.GetAccountSettings", _account_settings)
        yield session


def _account_settings(**kwargs):
    """moto does not answer Lambda's GetAccountSettings: an account of AWS's default limit, 1000."""
    limit = {"ConcurrentExecutions": 1000, "UnreservedConcurrentExecutions": 1000}
    return SimpleNamespace(status_code=200, headers={}), {"AccountLimit": limit}
