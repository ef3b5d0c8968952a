"""The history checker's model (bench/soak/history.py): the lifecycle's legal paths pass, and each kind
of illegal step is named at the step where it happens."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bench.soak.history import RunLife, first_illegal_step
from glueline.shared.audit import to_timestamp
from glueline.shared.lifecycle import LAMBDA_CLAIM_TTL_SECONDS

T0 = datetime(2026, 12, 7, 9, 0, tzinfo=timezone.utc)
RUNS = {"jr_1": RunLife(T0, T0 + timedelta(seconds=100)), "jr_2": RunLife(T0 + timedelta(seconds=150), None)}


def step(name: str, seconds: float, **details) -> dict:
    return {"Event": name, "At": to_timestamp(T0 + timedelta(seconds=seconds)), **details}


def claimed(seconds: float, run: str, attempt: int, came_from: str) -> dict:
    return step("claimed", seconds, GlueJobID=run, Attempt=attempt, From=came_from)


LEGAL = {
    "loaded at once": ([step("admitted", 0), claimed(5, "jr_1", 1, "PENDING"), step("COMPLETED", 9)], "COMPLETED"),
    "refused by the Lambda": ([step("admitted", 0), step("REJECTED", 0.1)], "REJECTED"),
    "failed, retried by the next run": (
        [step("admitted", 0), claimed(5, "jr_1", 1, "PENDING"), step("FAILED", 9), claimed(160, "jr_2", 2, "FAILED")],
        "PROCESSING",
    ),
    "the database unreachable: its attempt given back": (
        [
            step("admitted", 0),
            claimed(5, "jr_1", 1, "PENDING"),
            step("FAILED", 9, Counted=False),
            claimed(160, "jr_2", 1, "FAILED"),
        ],
        "PROCESSING",
    ),
    "a dead claim taken over": (
        [step("admitted", 0), claimed(5, "jr_1", 1, "PENDING"), claimed(160, "jr_2", 2, "PROCESSING")],
        "PROCESSING",
    ),
    "given up, uploaded again, loaded": (
        [
            step("admitted", 0),
            claimed(5, "jr_1", 1, "PENDING"),
            step("REJECTED", 9, GaveUp=True),
            step("reopened", 120),
            claimed(160, "jr_2", 1, "PENDING"),
            step("COMPLETED", 170),
        ],
        "COMPLETED",
    ),
    "a Lambda's claim left by a Lambda that died": ([step("admitted", 0)], "PROCESSING"),
}


@pytest.mark.parametrize("case", LEGAL)
def test_the_lifecycles_paths_are_legal(case):
    history, status = LEGAL[case]
    assert first_illegal_step(history, status, RUNS) is None


ILLEGAL = {
    "a claim of a final file": (
        [
            step("admitted", 0),
            claimed(5, "jr_1", 1, "PENDING"),
            step("COMPLETED", 9),
            claimed(160, "jr_2", 2, "COMPLETED"),
        ],
        "PROCESSING",
        "step 4 (claimed at 2026-12-07T09:02:40.000Z): a claim of a file COMPLETED (final)",
    ),
    "two live claims": (
        [step("admitted", 0), claimed(5, "jr_1", 1, "PENDING"), claimed(50, "jr_1", 2, "PROCESSING")],
        "PROCESSING",
        "step 3 (claimed at 2026-12-07T09:00:50.000Z): took over the claim of jr_1 while it was running",
    ),
    "an attempt skipped": (
        [step("admitted", 0), claimed(5, "jr_1", 2, "PENDING")],
        "PROCESSING",
        "step 2 (claimed at 2026-12-07T09:00:05.000Z): attempt 2 after 0 attempt(s)",
    ),
    "a claim from the wrong state": (
        [step("admitted", 0), claimed(5, "jr_1", 1, "FAILED")],
        "PROCESSING",
        "step 2 (claimed at 2026-12-07T09:00:05.000Z): claimed from FAILED, but the file was PENDING",
    ),
    "a claim by a run that had ended": (
        [step("admitted", 0), claimed(120, "jr_1", 1, "PENDING")],
        "PROCESSING",
        "step 2 (claimed at 2026-12-07T09:02:00.000Z): claimed by jr_1, which was not running then",
    ),
    "settled without a claim": (
        [step("admitted", 0), step("FAILED", 3)],
        "FAILED",
        "step 2 (FAILED at 2026-12-07T09:00:03.000Z): FAILED of a file PENDING",
    ),
    "a refused file reopened": (
        [step("admitted", 0), step("REJECTED", 1), step("reopened", 60)],
        "PENDING",
        "step 3 (reopened at 2026-12-07T09:01:00.000Z): reopened a file REJECTED refused for its content",
    ),
    "time running backwards": (
        [step("admitted", 10), claimed(5, "jr_1", 1, "PENDING")],
        "PROCESSING",
        "step 2 (claimed at 2026-12-07T09:00:05.000Z): earlier than the step before it",
    ),
    "an item that says another status": (
        [step("admitted", 0), claimed(5, "jr_1", 1, "PENDING"), step("COMPLETED", 9)],
        "FAILED",
        "the history ends COMPLETED, the item says FAILED",
    ),
    "a Lambda's live claim taken over": (
        [step("admitted", 0), claimed(LAMBDA_CLAIM_TTL_SECONDS / 2, "jr_2", 1, "PROCESSING")],
        "PROCESSING",
        "step 2 (claimed at 2026-12-07T09:07:30.000Z): took over a Lambda's claim 450 s old",
    ),
}


@pytest.mark.parametrize("case", ILLEGAL)
def test_each_illegal_step_is_named_where_it_happens(case):
    history, status, expected = ILLEGAL[case]
    assert (first_illegal_step(history, status, RUNS) or "").startswith(expected)
