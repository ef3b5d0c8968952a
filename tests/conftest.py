"""The stack the integration suite runs on: ``--stack embedded`` (processes; the default) or ``--stack
compose`` (docker-compose.yml), also selectable with GLUELINE_TEST_STACK. A test runs on both unless
marked: ``embedded`` when it reaches into the embedded stack's processes, or when its subject is the same
code on both stacks (the Lambda's and the job's rules, the job's SQL, the runner's Timeout) and so runs
once, there; ``compose`` when it is about the compose stack itself. What runs on both is what the
containers change: their network and DNS, the emulator's container and its restarts, the function's
environment, a database killed or cut off with its container."""

from __future__ import annotations

import os

import pytest

STACKS = ("embedded", "compose")


def pytest_addoption(parser):
    parser.addoption(
        "--stack",
        choices=STACKS,
        default=os.environ.get("GLUELINE_TEST_STACK", "embedded"),
        help="the stack the integration tests run on (default: GLUELINE_TEST_STACK, else embedded)",
    )


def pytest_collection_modifyitems(config, items):
    stack = config.getoption("--stack")
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
        for other in STACKS:
            if other != stack and item.get_closest_marker(other):
                item.add_marker(pytest.mark.skip(reason=f"runs on the {other} stack only (this run: --stack {stack})"))
