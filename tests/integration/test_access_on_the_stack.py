"""The AWS calls the real Lambda and Glue job make on the embedded stack — recorded in their own
processes (tests/access/record/sitecustomize.py) — evaluated against the role policies deploy
makes, as IAM would (tests/access/iam.py): the emulator enforces no IAM, this test does."""

from __future__ import annotations

import json

import pytest

from glueline.shared.audit import Status

from ..access.iam import denied, ensure_simulator, iam_requests
from .harness import HEADER, aws_call_log, row

pytestmark = pytest.mark.embedded_only  # the calls are recorded in the embedded stack's processes


@pytest.fixture(scope="module", autouse=True)
def simulator():
    ensure_simulator()


def test_every_call_of_the_lambda_and_the_job_on_the_stack_is_allowed(glueline, tmp_path):
    p = glueline
    log = aws_call_log()
    start = log.stat().st_size if log.exists() else 0
    good, bad = tmp_path / "access_good.csv", tmp_path / "access_bad.csv"
    good.write_text(HEADER + "\n" + row(960001) + "\n" + row(960002, CustomerID="") + ",extra\n")
    bad.write_text("TransactionID,Amount\n1,2\n")
    first = p.wait(p.upload(good, bad))
    assert [r.status for r in first] == [Status.COMPLETED, Status.REJECTED]
    (again,) = p.wait(p.upload(good))  # a redelivery
    assert again.redeliveries == 1
    assert p.invoke_schedule()["sweep"]  # the daily sweep

    calls = [json.loads(line) for line in log.read_bytes()[start:].decode().splitlines()]
    roles = {"lambda": p.settings.lambda_role, "glue": p.settings.glue_role}
    assert {c["role"] for c in calls} == set(roles), "both the Lambda and the job were recorded"
    requests, unknown = [], set()
    for call in calls:
        translated = iam_requests(
            roles[call["role"]],
            p.target.region,
            p.target.account,
            call["service"],
            call["operation"],
            call["params"],
            call["status"],
        )
        if translated is None:
            unknown.add(f"{call['role']}: {call['service']}.{call['operation']}")
        else:
            requests += translated
    assert unknown == set()
    policies = {role: wanted.policy for role, wanted in p.deployer.desired().roles.items()}
    refused = denied(policies, p.target.account, requests)
    assert refused == [], "IAM would refuse:\n" + "\n".join(refused)
