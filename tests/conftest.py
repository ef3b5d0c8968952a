"""The stack the integration suite runs on is the one glueline's pytest plugin starts (glueline.testing):
embedded (processes) by default, ``--glueline-stack compose`` (or GLUELINE_TEST_STACK=compose) for
docker-compose.yml. A test runs on both unless marked ``embedded_only`` (it reaches into the embedded
stack's processes, or its subject is the same code on both stacks — the Lambda's and the job's rules,
the job's SQL, the runner's Timeout — and so runs once, there) or ``compose_only`` (it is about the
compose stack itself). What runs on both is what the containers change: their network and DNS, the
emulator's container and its restarts, the function's environment, a database killed or cut off with its
container."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]  # tests/unit/testing runs a user's project

ONLY = {"embedded": "embedded_only", "compose": "compose_only"}


def pytest_collection_modifyitems(config, items):
    # The plugin's option; absent where glueline is not installed (the Lambda's unit tests run on its
    # runtime from the deployed zip alone: tests/integration/test_lambda_runtime.py).
    stack = config.getoption("--glueline-stack", default="embedded")
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
        for other, marker in ONLY.items():
            if other != stack and item.get_closest_marker(marker):
                item.add_marker(pytest.mark.skip(reason=f"runs on the {other} stack only (this run: {stack})"))
