"""The compose stack as a user drives it: ``glueline up --stack compose`` (make up STACK=compose), a run,
``down``, and ``up`` again finding the data; ports on 127.0.0.1 only; the Docker socket only where the
emulator needs it."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from glueline.local.compose.stack import ComposeStack
from glueline.settings import Settings

from .harness import GLUELINE, user_shell

pytestmark = pytest.mark.compose_only
SAMPLE_ROWS = 436


def containers(project: str) -> list[dict]:
    ids = subprocess.run(
        ["docker", "ps", "--quiet", "--filter", f"label=com.docker.compose.project={project}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    if not ids:
        return []
    return json.loads(subprocess.run(["docker", "inspect", *ids], capture_output=True, text=True, check=True).stdout)


def test_up_run_down_up_keeps_the_data():
    state, env = user_shell("compose")

    def glueline(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        return subprocess.run([GLUELINE, *args], capture_output=True, text=True, env=env, timeout=timeout)

    stack = ComposeStack(Settings(state_dir=state))
    try:
        up = glueline("up", "-d", "--stack", "compose")
        assert up.returncode == 0, up.stdout + up.stderr
        assert f"compose project {stack.project}" in up.stdout and "postgresql://" in up.stdout
        assert "AWS_CONFIG_FILE=" in up.stdout and (state / "aws-config").exists()

        running = containers(stack.project)
        assert sorted(c["Config"]["Labels"]["com.docker.compose.service"] for c in running) == [
            "aws",
            "glue",
            "postgres",
        ]
        for container in running:
            for bindings in container["NetworkSettings"]["Ports"].values():
                assert all(b["HostIp"] == "127.0.0.1" for b in bindings or []), container["Name"]
            mounts = [m.get("Source", "") for m in container["Mounts"]]
            needs_socket = container["Config"]["Labels"]["com.docker.compose.service"] == "aws" and (
                stack.emulator == "localstack"
            )
            assert ("/var/run/docker.sock" in mounts) == needs_socket, (container["Name"], mounts)
            assert not any("PASSWORD=" in variable for variable in container["Config"]["Env"]), container["Name"]

        run = glueline("run", "--json")
        assert run.returncode == 0, run.stdout + run.stderr
        report = json.loads(run.stdout)
        assert report["totals"]["completed"] == 3 and report["table_rows"] == SAMPLE_ROWS
        assert report["target"] == "postgres:5432/glueline/public.transactions"

        down = glueline("down")
        assert down.returncode == 0 and "Stopped" in down.stdout
        assert containers(stack.project) == []

        again = glueline("up", "-d", "--stack", "compose")
        assert again.returncode == 0, again.stdout + again.stderr
        status = json.loads(glueline("status", "--json").stdout)
        assert status["table_rows"] == SAMPLE_ROWS  # the database's volume
        if stack.emulator == "ministack":  # LocalStack's free edition keeps no state across a restart
            assert {f["status"] for f in status["files"]} == {"COMPLETED"} and len(status["files"]) == 3
    finally:
        clean = glueline("clean")
        shutil.rmtree(state, ignore_errors=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert containers(stack.project) == []
    volumes = subprocess.run(
        ["docker", "volume", "ls", "--quiet", "--filter", f"label=com.docker.compose.project={stack.project}"],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert volumes == []
