"""Executing one run: fetch its code, start its process (or hand it to the warm standby), ship its
output while it runs, wait for it within its Timeout, end it, and read its error as Glue shows it.
What state the run is in is the caller's (``runs``); this module never decides it."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from glueline.local.processes import terminate
from glueline.local.runner import cloud, debug
from glueline.local.runner import launch as launches
from glueline.local.runner.config import RunnerConfig
from glueline.local.runner.launch import Launch
from glueline.local.runner.models import JobRun
from glueline.local.runner.warm import Standby, StandbyKeeper
from glueline.shared.gluerun import ERROR_GROUP, OUTPUT_GROUP

_EXCEPTION_LINE = re.compile(r"^([A-Za-z_][\w.]*(Error|Exception|Exit)\b.*)$")


@dataclass
class Outputs:
    """A run's directory and its output files: ``output.log`` (stdout) and ``error.log`` (stderr)."""

    directory: Path

    @property
    def stdout(self) -> Path:
        return self.directory / "output.log"

    @property
    def stderr(self) -> Path:
        return self.directory / "error.log"


@dataclass
class Started:
    process: subprocess.Popen
    standby: Standby | None  # the standby that took the run, discarded once it ends


class RunExecution:
    def __init__(self, config: RunnerConfig, standbys: StandbyKeeper):
        self.config = config
        self.standbys = standbys

    def outputs(self, run: JobRun) -> Outputs:
        return Outputs(self.config.state_dir / "runs" / run.job_name / run.id)

    @contextmanager
    def shipping_logs(self, run: JobRun) -> Iterator[Outputs]:
        """The run's output files, shipped to CloudWatch Logs while the block runs."""
        outputs = self.outputs(run)
        outputs.directory.mkdir(parents=True, exist_ok=True)
        shipper = cloud.LogShipper(run.id, {OUTPUT_GROUP: outputs.stdout, ERROR_GROUP: outputs.stderr})
        shipper.start()
        try:
            yield outputs
        finally:
            shipper.stop()

    def prepare(self, run: JobRun, outputs: Outputs) -> Launch:
        """Fetch the run's code into its directory (raises if it cannot be fetched)."""
        return launches.prepare(self.config, run.job_snapshot, run.arguments, outputs.directory, run.id)

    def start(self, run: JobRun, launch: Launch, outputs: Outputs) -> Started:
        """The run's process: the standby's, if it holds this code, else a new one. Called with the lock held."""
        standby = self.standbys.take(run.job_name, launch, outputs.directory, outputs.stdout, outputs.stderr)
        process = standby.process if standby else self._spawn(launch, outputs)
        (outputs.directory / "pid").write_text(str(process.pid))  # the run's process group, for operators
        return Started(process, standby)

    def wait(self, run: JobRun, started: Started) -> tuple[int, bool]:
        """Wait for the run's end within its Timeout (ended when it is over): (exit code, timed out)."""
        timed_out = False
        try:
            exit_code = started.process.wait(timeout=run.timeout_minutes * self.config.minute_seconds)
        except subprocess.TimeoutExpired:
            timed_out = True
            terminate(started.process)
            exit_code = started.process.wait()
        if started.standby is not None:
            started.standby.discard()
        self.standbys.warm(run.job_name)  # warms up now the run is over, not while it needed the CPU
        return exit_code, timed_out

    def _spawn(self, launch: Launch, outputs: Outputs) -> subprocess.Popen:
        launcher = self.config.launcher
        with open(outputs.stdout, "ab") as out, open(outputs.stderr, "ab") as err:
            if launch.debug:
                launcher = debug.debugpy_command(launch.debug)
                out.write(f"waiting for a debugger to attach at {launch.debug} ({launch.script})\n".encode())
                out.flush()
            return subprocess.Popen(
                [*launcher, launch.script, *launch.argv],
                cwd=outputs.directory,
                env=launch.env,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )


def error_from_logs(outputs: Outputs, exit_code: int) -> str:
    """The last exception line a failed script printed (stderr first), as Glue shows it in ErrorMessage."""
    for path in (outputs.stderr, outputs.stdout):
        if not path.exists():
            continue
        for line in reversed(path.read_bytes()[-64_000:].decode("utf-8", "replace").splitlines()):
            match = _EXCEPTION_LINE.match(line.strip())
            if match:
                return f"{match.group(1)[:1500]} (log: {path})"
    return f"Job script exited with code {exit_code} (log: {outputs.directory})"
