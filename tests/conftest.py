"""The stack the integration suite runs on: ``--stack embedded`` (processes; the default) or ``--stack
compose`` (docker-compose.yml), also selectable with GLUELINE_TEST_STACK. The same tests run on both;
a test marked ``embedded`` reaches into the embedded stack's processes, or tests what is the same on
both (the job's SQL against PostgreSQL) and so runs once, there; one marked ``compose`` runs only on the
compose stack."""

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
