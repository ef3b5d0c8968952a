"""An AWS account in moto, in this process: the account states deploy's and destroy's plans are
tested against."""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws

REGION = "eu-west-1"


@pytest.fixture
def session(monkeypatch):
    for name in [n for n in os.environ if n.startswith(("AWS_", "GLUELINE_"))]:
        monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield boto3.Session(region_name=REGION)
