"""glueline's pytest plugin (entry point ``pytest11``): the ``glueline`` and ``glueline_stack`` fixtures
(see glueline.testing). Importing it costs nothing: the stack's modules load when a test asks for one."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from glueline.testing.pipeline import Pipeline

STACK_OPTION = "--glueline-stack"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.getgroup("glueline").addoption(
        STACK_OPTION,
        choices=("embedded", "compose"),
        default=os.environ.get("GLUELINE_TEST_STACK", "embedded"),
        help="the local stack the glueline fixtures start: embedded (processes, the default) or compose "
        "(containers; a Docker engine). Default: GLUELINE_TEST_STACK, else embedded.",
    )


@pytest.fixture(scope="session")
def glueline_environment() -> dict[str, str]:
    """Environment variables the stack's processes (the Lambda, the Glue runs) inherit: override this
    fixture in your conftest.py to add some."""
    return {}


@pytest.fixture(scope="session")
def glueline_stack(request: pytest.FixtureRequest, glueline_environment: dict[str, str]) -> Iterator[Pipeline]:
    """The pipeline on a stack started once for the session (stopped and deleted after it, also when the
    session is interrupted or terminated)."""
    from glueline.local.processes import termination_raises
    from glueline.testing import pipeline

    try:
        stack = request.config.getoption(STACK_OPTION)
        # SIGTERM (a CI job's time limit) ends the session as Ctrl-C does, so the stack is torn down too.
        with (
            termination_raises(KeyboardInterrupt),
            pipeline.running_pipeline(stack, environment=glueline_environment) as running,
        ):
            yield running
    except pipeline.StackUnavailable as why:
        pytest.skip(str(why))


@pytest.fixture
def glueline(glueline_stack: Pipeline) -> Pipeline:
    """The session's pipeline, emptied for this test (no files, audit items or rows; no run active)."""
    glueline_stack.reset()
    return glueline_stack
