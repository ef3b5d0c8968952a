"""The command line's own surface: --version, shell completion, --profile wherever AWS is reached."""

from __future__ import annotations

import importlib.metadata
import os
import subprocess
import sys
from pathlib import Path

import typer.main
from typer.testing import CliRunner

from glueline.ops import cli

GLUELINE = str(Path(sys.executable).with_name("glueline"))
# Commands that reach no AWS account: the local stack's own, the template writer, the file generator.
LOCAL_ONLY = {"up", "down", "clean", "images-offline", "package", "generate", "spark-history"}


def test_version_is_the_installed_distributions():
    result = CliRunner().invoke(cli.app, ["--version"])
    assert result.exit_code == 0 and result.stdout == f"glueline {importlib.metadata.version('glueline')}\n"


def test_every_command_that_reaches_aws_takes_a_profile():
    commands = typer.main.get_command(cli.app).commands
    assert LOCAL_ONLY < set(commands)
    without = [name for name, command in commands.items() if name not in LOCAL_ONLY]
    assert without, "no command reaches AWS?"
    missing = [n for n in without if "--profile" not in [o for p in commands[n].params for o in p.opts]]
    assert missing == []


def test_shell_completion_completes_commands_and_options():
    def complete(words: str) -> list[str]:
        env = {**os.environ, "_GLUELINE_COMPLETE": "complete_bash", "COMP_WORDS": words}
        env["COMP_CWORD"] = str(len(words.split()) - 1)
        result = subprocess.run([GLUELINE], capture_output=True, text=True, env=env, timeout=60)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()

    assert complete("glueline sta") == ["status"]
    assert "--run" in complete("glueline logs --r") and "--since" in complete("glueline status --s")
    # --show-completion prints the script of the shell it runs under (detected from its parent processes):
    # run from bash, as a user pastes it, and not exec'd by it (else bash is no longer its parent).
    command = f'"{GLUELINE}" --show-completion; exit $?'
    shown = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=60)
    assert "_GLUELINE_COMPLETE=complete_bash" in shown.stdout


def test_logs_reads_the_embedded_stacks_log_files_when_no_stack_runs(tmp_path):
    """After a crash or a `down`, where an operator looks: the log files outlive the stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"GLUELINE_STATE_DIR": str(tmp_path)}
    none = subprocess.run([GLUELINE, "logs", "--no-follow"], capture_output=True, text=True, env=env, timeout=60)
    assert none.returncode == 2 and "no logs in" in none.stderr and "Traceback" not in none.stderr
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "emulator.log").write_text("the emulator's last words\n")
    shown = subprocess.run([GLUELINE, "logs", "--no-follow"], capture_output=True, text=True, env=env, timeout=60)
    assert shown.returncode == 0 and "the emulator's last words" in shown.stdout
