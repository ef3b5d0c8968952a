"""glueline's pytest plugin as a user's project meets it: registered by installing glueline, its option and
fixtures there, the guide's example the file our suite runs, and a stack this machine cannot start
skipped with the reason (the stack itself: every integration test uses the plugin's fixtures)."""

from __future__ import annotations

import re
import signal
import sys
from importlib.metadata import entry_points
from pathlib import Path

import glueline.testing.pipeline
from glueline.polling import wait_for

ROOT = Path(__file__).resolve().parents[3]


def test_installing_glueline_registers_the_plugin():
    plugins = {e.name: e.value for e in entry_points(group="pytest11")}
    assert plugins.get("glueline") == "glueline.testing.plugin"


def test_the_guides_example_is_the_test_the_suite_runs():
    guide = (ROOT / "docs/developing.md").read_text()
    section = guide[guide.index("## Test your changes with pytest") :]
    example = re.search(r"```python\n(.*?)```", section, re.S)
    assert example is not None
    assert example.group(1) == (ROOT / "tests/integration/test_users_example.py").read_text()


def test_a_users_project_gets_the_option_and_fixtures(pytester):
    result = pytester.runpytest_subprocess("--help")
    result.stdout.fnmatch_lines(["*--glueline-stack={embedded,compose}*"])
    result = pytester.runpytest_subprocess("--fixtures")
    for fixture in (
        "glueline -- *",
        "glueline_stack [[]session scope] -- *",
        "glueline_environment [[]session scope] -- *",
    ):
        result.stdout.fnmatch_lines([fixture])


def test_a_stack_this_machine_cannot_run_is_skipped_with_the_reason(pytester, monkeypatch):
    monkeypatch.setattr(glueline.testing.pipeline.shutil, "which", lambda name: None)  # no java here
    pytester.makepyfile("def test_mine(glueline):\n    raise AssertionError('ran without a stack')\n")
    result = pytester.runpytest_inprocess("-rs")
    result.assert_outcomes(skipped=1)
    result.stdout.fnmatch_lines(["*the embedded stack needs Java 17 to run Spark*"])


def test_a_terminated_session_still_stops_its_stack(pytester):
    """`kill` (a CI job's time limit) ends the session as Ctrl-C does: the stack's teardown runs."""
    stopped = pytester.path / "stopped"
    pytester.makeconftest(
        f"""
import contextlib
import glueline.testing.pipeline

@contextlib.contextmanager
def running_pipeline(stack, environment=None):
    try:
        yield "a stack"
    finally:
        open({str(stopped)!r}, "w").close()

glueline.testing.pipeline.running_pipeline = running_pipeline
"""
    )
    started = pytester.path / "started"
    pytester.makepyfile(
        f"import time\n\ndef test_mine(glueline_stack):\n    open({str(started)!r}, 'w').close()\n    time.sleep(60)\n"
    )
    session = pytester.popen([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"])
    try:
        wait_for(started.exists, 30, "the test to start")
        session.send_signal(signal.SIGTERM)
        session.wait(timeout=30)
    finally:
        session.kill()
    assert stopped.exists()
