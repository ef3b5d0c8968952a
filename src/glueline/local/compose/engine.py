"""The Docker engine and Compose, as the compose stack calls them: every call bounded, so an engine that
hangs does not hang the command with it."""

from __future__ import annotations

import shutil

from glueline.local.processes import bounded_run
from glueline.local.running import StackError

ENGINE_CALL_SECONDS = 30  # docker info, ps, inspect…
COMPOSE_CALL_SECONDS = 300  # up, down, kill, start… (a stop waits 30 s for a container at most)
BUILD_SECONDS = 1800  # building the Glue image: installing wheels into it, from the host's wheelhouse


def engine_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return bounded_run(["docker", "info"], ENGINE_CALL_SECONDS, capture_output=True).returncode == 0
    except StackError:
        return False  # an engine that does not answer within the bound does not answer


def compose_command() -> list[str]:
    """Compose v2 (``docker compose``), else v1.29 (``docker-compose``)."""
    v2 = ["docker", "compose", "version"]
    if shutil.which("docker") and bounded_run(v2, ENGINE_CALL_SECONDS, capture_output=True).returncode == 0:
        return ["docker", "compose"]
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    raise StackError("no Docker Compose: install the compose plugin (docker compose) or docker-compose")
