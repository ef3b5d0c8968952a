"""The soak's history checker: each file's History against the lifecycle's state machine, as Jepsen's
checkers do it — a history, a model, a verdict.

The history is the pipeline's own record, not the soak's guess: every step of a file's lifecycle is
appended to its audit item's ``History`` in the same conditional write that makes the transition
(``glueline.shared.audit.event``, ``AuditTable.update``), so no step can be missing or extra. The model
is the state machine of ``glueline.shared.lifecycle``:

    admitted   → PENDING, or held by the Lambda that admits it (a refused header, a version gone)
    claimed    → PROCESSING by a Glue run, one more attempt: from PENDING, FAILED, or PROCESSING when the
                 claim taken over is dead (its run had ended; a Lambda's claim older than any Lambda lives)
    COMPLETED  ← PROCESSING only (the job settles what it claimed)
    FAILED     ← PROCESSING only; ``Counted: false`` gives its attempt back (the database was unreachable)
    REJECTED   ← PROCESSING (a run's or a Lambda's claim) only
    reopened   → PENDING, attempts 0: only a file given up (REJECTED with ``GaveUp``), uploaded again

COMPLETED and REJECTED are final otherwise; a claim's Attempt is the attempts so far plus one, so attempts
never go back except as those two steps say; a claim's run was active when it claimed; time never runs
backwards; and the last step's state is the item's Status. ``first_illegal_step`` names the first step
of a file that breaks one of these.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from glueline.shared.audit import Status, from_timestamp
from glueline.shared.lifecycle import LAMBDA_CLAIM_TTL_SECONDS

# The runner's clock and the job's are this machine's; a run's end is recorded a moment after its last
# write, and a claim's step carries the moment its writer read the clock, before the write.
CLOCK_SLACK = timedelta(seconds=1)
LAMBDA = "a Lambda's claim"


@dataclass(frozen=True)
class RunLife:
    """When a Glue run started and ended (None: still active when the soak looked)."""

    started: datetime
    ended: datetime | None


@dataclass
class _State:
    status: str | None = None
    holder: str | None = None  # the Glue run holding a PROCESSING file, or LAMBDA
    claimed_at: datetime | None = None
    attempts: int = 0
    gave_up: bool = False


def first_illegal_step(history: list[dict[str, Any]], status: str, runs: Mapping[str, RunLife]) -> str | None:
    """The first step of ``history`` the model forbids, in words; None when the whole history is legal
    and ends in ``status``. ``runs``: the lives of the job's runs (a run not among them is not judged
    for its life)."""
    state = _State()
    last: datetime | None = None
    for number, step in enumerate(history, 1):
        name, at = step.get("Event"), from_timestamp(step["At"])
        where = f"step {number} ({name} at {step['At']})"
        if last is not None and at < last - CLOCK_SLACK:
            return f"{where}: earlier than the step before it"
        last = at
        wrong = _apply(state, name, step, at, runs) if number > 1 else _admit(state, name, at)
        if wrong:
            return f"{where}: {wrong}"
    if not history:
        return "no history: the item was written without its steps"
    lambda_held = state.status == Status.PENDING and state.holder == LAMBDA and status == Status.PROCESSING
    if state.status != status and not lambda_held:
        return f"the history ends {state.status}, the item says {status}"
    return None


def _admit(state: _State, name: str | None, at: datetime) -> str:
    if name != "admitted":
        return "a history begins with admitted"
    # PENDING, or held by the Lambda that admits it (then it is REJECTED next, or taken over once dead).
    state.status, state.holder, state.claimed_at = Status.PENDING, LAMBDA, at
    return ""


def _apply(state: _State, name: str | None, step: dict[str, Any], at: datetime, runs: Mapping[str, RunLife]) -> str:
    """Move ``state`` by one step; what is wrong with it ("" when nothing)."""
    if name == "claimed":
        run, attempt, came_from = step.get("GlueJobID"), step.get("Attempt"), step.get("From")
        if state.status in Status.FINAL:
            return f"a claim of a file {state.status} (final)"
        lambda_held = state.status == Status.PENDING and state.holder == LAMBDA and came_from == Status.PROCESSING
        if came_from != state.status and not lambda_held:
            return f"claimed from {came_from}, but the file was {state.status}"
        if attempt != state.attempts + 1:
            return f"attempt {attempt} after {state.attempts} attempt(s)"
        if came_from == Status.PROCESSING:
            dead = _claim_was_dead(state, at, runs)
            if dead:
                return dead
        life = runs.get(run) if run else None
        if life is not None and not _alive(life, at):
            return f"claimed by {run}, which was not running then"
        state.status, state.holder, state.claimed_at, state.attempts = Status.PROCESSING, run, at, attempt
        return ""
    if name in (Status.COMPLETED, Status.FAILED, Status.REJECTED):
        admitted_held = state.status == Status.PENDING and state.holder == LAMBDA and name == Status.REJECTED
        if state.status != Status.PROCESSING and not admitted_held:
            return f"{name} of a file {state.status}: only what a run or a Lambda holds is settled"
        if name == Status.FAILED and step.get("Counted") is False:
            state.attempts -= 1  # given back: the target was unreachable
        state.status, state.holder, state.gave_up = name, None, bool(step.get("GaveUp"))
        return ""
    if name == "reopened":
        if not (state.status == Status.REJECTED and state.gave_up):
            refused = " refused for its content" if state.status == Status.REJECTED else ""
            return f"reopened a file {state.status}{refused}"
        state.status, state.holder, state.attempts, state.gave_up = Status.PENDING, None, 0, False
        return ""
    return f"an unknown step {name!r}"


def _alive(life: RunLife, at: datetime) -> bool:
    return life.started - CLOCK_SLACK <= at and (life.ended is None or at <= life.ended + CLOCK_SLACK)


def _claim_was_dead(state: _State, at: datetime, runs: Mapping[str, RunLife]) -> str:
    """A claim taken over: why its holder was still alive then ("" when it was dead)."""
    if state.holder == LAMBDA or state.holder is None:
        held = at - state.claimed_at if state.claimed_at else timedelta(0)
        if state.claimed_at is not None and held < timedelta(seconds=LAMBDA_CLAIM_TTL_SECONDS):
            return f"took over a Lambda's claim {held.total_seconds():.0f} s old: two live claims"
        return ""
    life = runs.get(state.holder)
    if life is not None and (life.ended is None or at < life.ended - CLOCK_SLACK):
        return f"took over the claim of {state.holder} while it was running: two live claims"
    return ""
