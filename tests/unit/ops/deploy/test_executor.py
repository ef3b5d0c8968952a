"""The one executor: values stored by one call and referenced by later ones, errors that mean "not
yet" or "already done", and a display that never shows a secret."""

from __future__ import annotations

import botocore.exceptions
import pytest

from glueline.ops.deploy.aws import RDS_INSTANCE_STATE, DeployError
from glueline.ops.deploy.executor import Executor, describe
from glueline.ops.deploy.models import APICall, Ref, Wait


class RecordingClient:
    """A boto3-shaped client that records calls and fails the first ``failures`` with ``code``."""

    exceptions = botocore.exceptions

    def __init__(self, code: str = "", failures: int = 0):
        self.calls: list[tuple[str, dict]] = []
        self.code, self.failures = code, failures

    def __getattr__(self, method: str):
        def call(**params):
            self.calls.append((method, params))
            if self.failures:
                self.failures -= 1
                raise botocore.exceptions.ClientError({"Error": {"Code": self.code}}, method)
            return {"GroupId": "sg-123"}

        return call


def test_a_stored_value_reaches_the_calls_that_reference_it():
    ec2 = RecordingClient()
    Executor(lambda service: ec2).execute(
        [
            APICall("ec2", "create_security_group", {"GroupName": "g"}, store=("g", "GroupId")),
            APICall("ec2", "authorize", {"GroupId": Ref("g"), "Pairs": [{"GroupId": Ref("g")}]}),
        ]
    )
    assert ec2.calls[1] == ("authorize", {"GroupId": "sg-123", "Pairs": [{"GroupId": "sg-123"}]})


def test_not_yet_is_retried_already_done_is_ignored_anything_else_raises():
    slept: list[float] = []
    lam = RecordingClient("InvalidParameterValueException", failures=2)
    Executor(lambda s: lam, slept.append).execute(
        [APICall("lambda", "create_function", {}, retry_while="InvalidParameterValueException")]
    )
    assert (len(lam.calls), slept) == (3, [15, 15])
    granted = RecordingClient("ResourceConflictException", failures=1)
    Executor(lambda s: granted).execute([APICall("lambda", "add_permission", {}, ignore="ResourceConflictException")])
    refused = RecordingClient("AccessDenied", failures=1)
    grant = APICall("lambda", "add_permission", {}, ignore="ResourceConflictException")
    with pytest.raises(botocore.exceptions.ClientError):
        Executor(lambda s: refused).execute([grant])


def test_the_display_shows_sizes_for_secrets_and_code_and_names_references():
    secret = APICall("secretsmanager", "create_secret", {"Name": "db", "SecretString": "postgresql://u:pw@h/d"})
    function = APICall("lambda", "create_function", {"Code": {"ZipFile": b"PK\x03\x04"}})
    ingress = APICall("ec2", "authorize_security_group_ingress", {"GroupId": Ref("glueline-glue")})
    assert describe(secret) == "secretsmanager.create_secret(Name='db', SecretString=<21 characters>)"
    assert describe(function) == "lambda.create_function(Code={'ZipFile': <4 bytes>})"
    assert describe(ingress) == "ec2.authorize_security_group_ingress(GroupId=<glueline-glue>)"


def slow_instance(*states: str):
    """A real boto3 RDS client (its real waiter) answered by botocore's Stubber: the instance passes
    through ``states``, one per describe."""
    import boto3
    from botocore.stub import Stubber

    rds = boto3.client("rds", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(rds)
    for state in states:
        stubber.add_response("describe_db_instances", {"DBInstances": [{"DBInstanceStatus": state}]})
    stubber.activate()
    return rds


def available(attempts: int = 10) -> Wait:
    params = {"DBInstanceIdentifier": "glueline-db"}
    return Wait("rds", "db_instance_available", "the RDS instance", 30, attempts, params, RDS_INSTANCE_STATE)


def test_a_wait_tells_each_state_change_once_and_sleeps_between_attempts():
    rds = slow_instance("creating", "creating", "backing-up", "configuring-enhanced-monitoring", "available")
    heard, slept = [], []
    Executor(lambda service: rds, slept.append, heard.append).execute([available()])
    assert heard == [
        "waiting for the RDS instance: creating",
        "waiting for the RDS instance: backing-up",
        "waiting for the RDS instance: configuring-enhanced-monitoring",
    ]
    assert slept == [30, 30, 30, 30]


def test_a_wait_ends_at_a_state_it_will_not_leave_or_after_its_bound():
    with pytest.raises(DeployError, match="the RDS instance: .*terminal failure"):
        Executor(lambda service: slow_instance("creating", "failed"), lambda s: None).execute([available()])
    with pytest.raises(DeployError, match="timed out after 90 s waiting for the RDS instance"):
        Executor(lambda service: slow_instance(*["creating"] * 3), lambda s: None).execute([available(3)])
