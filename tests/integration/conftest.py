"""The integration tests run on the stack glueline's own pytest plugin gives users (glueline.testing):
``glueline`` and ``glueline_stack``, embedded by default, ``--glueline-stack compose`` for the compose
stack. The suite adds one thing to the stack's environment: its processes record every AWS call the
Lambda and the Glue job make (tests/access/record), for the access test on the stack."""

from __future__ import annotations

import os

import pytest

from ..access.iam import CALL_LOG_VARIABLE, RECORDER_DIR


@pytest.fixture(scope="session")
def glueline_environment(tmp_path_factory) -> dict[str, str]:
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(RECORDER_DIR), os.environ.get("PYTHONPATH")])),
        CALL_LOG_VARIABLE: str(tmp_path_factory.mktemp("aws-calls") / "aws-calls.jsonl"),
    }
