"""How AWS clients reach a local stack: the standard AWS configuration, never a setting of ours. This
process's clients get the variables (``apply_aws_env``); a user's AWS CLI gets the same as a profile in
``<state_dir>/aws-config``."""

from __future__ import annotations

import os
from collections.abc import Iterator, MutableMapping
from contextlib import contextmanager
from pathlib import Path

EMULATOR_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
# Variables that would send a local stack's client anywhere but the stack.
CONFLICTING_AWS_VARIABLES = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
AWS_CONFIG_FILE = "aws-config"  # under the state directory
AWS_PROFILE = "glueline"


def stack_aws_env(emulator_url: str, glue_url: str, region: str) -> dict[str, str]:
    """The standard AWS variables that point a client at a local stack: the emulator, Glue at the runner."""
    return {
        "AWS_ENDPOINT_URL": emulator_url,
        "AWS_ENDPOINT_URL_GLUE": glue_url,
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        **EMULATOR_CREDENTIALS,
    }


def apply_aws_env(aws_env: dict[str, str], environ: MutableMapping[str, str] = os.environ) -> None:
    """Point this process's AWS clients at a stack (``RunningStack.aws_env()``) and nowhere else."""
    for name in CONFLICTING_AWS_VARIABLES:
        environ.pop(name, None)
    environ.update(aws_env)


@contextmanager
def environment_restored() -> Iterator[None]:
    """This process's environment, after the block, as it was before it (a stack's variables gone)."""
    saved = dict(os.environ)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def write_aws_profile(state_dir: Path, emulator_url: str, glue_url: str, region: str) -> Path:
    """A profile for the AWS CLI: AWS_CONFIG_FILE=<state_dir>/aws-config AWS_PROFILE=glueline."""
    path = state_dir / AWS_CONFIG_FILE
    path.write_text(
        f"[profile {AWS_PROFILE}]\n"
        f"region = {region}\n"
        f"endpoint_url = {emulator_url}\n"
        "services = glueline-local\n"
        "aws_access_key_id = test\n"
        "aws_secret_access_key = test\n\n"
        "[services glueline-local]\n"
        f"glue =\n  endpoint_url = {glue_url}\n"
    )
    return path
