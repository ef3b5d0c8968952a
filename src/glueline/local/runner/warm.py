"""The warm standby: one job process started ahead of the next run of the job the runner expects next
(the job last created, updated or run), handed that run if it holds exactly the run's code. The process
itself is ``glueline.local.runner.standby``; this is its keeper on the runner's side."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from glueline.local.processes import terminate
from glueline.local.runner import launch as launches
from glueline.local.runner.config import RunnerConfig
from glueline.local.runner.launch import Launch

log = logging.getLogger("glueline.local.runner")
STANDBY_SCRIPT = Path(__file__).with_name("standby.py")


@dataclass
class Standby:
    """A job process warming, or warm, for the next run of ``job_name`` with exactly this code."""

    job_name: str
    fingerprint: str
    process: subprocess.Popen
    directory: Path  # its copies of the script and extra files, on its path until it exits
    ready: threading.Event = field(default_factory=threading.Event)

    def discard(self) -> None:
        terminate(self.process)
        shutil.rmtree(self.directory, ignore_errors=True)

    def send(self, message: dict, last: bool = False) -> None:
        """One line of the protocol (glueline.local.runner.standby) on its stdin; closed after the last."""
        assert self.process.stdin is not None  # started with stdin=PIPE
        self.process.stdin.write((json.dumps(message) + "\n").encode())
        self.process.stdin.flush()
        if last:
            self.process.stdin.close()

    def await_ready(self) -> None:
        assert self.process.stdout is not None  # started with stdout=PIPE
        if self.process.stdout.readline().strip() == b"ready":
            self.ready.set()


class StandbyKeeper:
    """Keeps at most one standby; ``job_of`` answers a job's current definition (None once deleted)."""

    def __init__(self, config: RunnerConfig, job_of: Callable[[str], dict | None], lock: threading.RLock):
        self.config = config
        self._job_of = job_of
        self._lock = lock
        self._standby: Standby | None = None
        self._asked = 0  # requests in the order they came
        # The latest request for a script that offers a warm-up wins, a slower, earlier one gives up; a
        # request for one that offers none (deploy's login job) never counts, so it displaces nothing.
        self._requests = 0
        self._closed = False

    def state(self) -> dict | None:
        """What ``GET /`` reports: ``{"job", "state": "warming" | "ready", "pid"}``, or None."""
        with self._lock:
            standby = self._standby
        if standby is None or standby.process.poll() is not None:
            return None
        return {
            "job": standby.job_name,
            "state": "ready" if standby.ready.is_set() else "warming",
            "pid": standby.process.pid,
        }

    def warm(self, job_name: str) -> None:
        """Start a standby for ``job_name``'s next run (replacing one kept for other code), in the background."""
        if self.config.standby and not self._closed:
            with self._lock:
                self._asked += 1
                request = self._asked
            threading.Thread(target=self._spawn, args=(job_name, request), name="standby", daemon=True).start()

    def _spawn(self, job_name: str, request: int) -> None:
        job = self._job_of(job_name)
        if (
            job is None
            or self._closed
            or launches.needs_own_process({**job["DefaultArguments"], **job["NonOverridableArguments"]})
        ):
            return
        directory = Path(tempfile.mkdtemp(prefix="standby-", dir=self.config.state_dir))
        try:
            launch = launches.prepare(self.config, job, {}, directory, "jr_standby")
        except Exception:
            log.exception("no standby for %s: its script could not be fetched", job_name)
            shutil.rmtree(directory, ignore_errors=True)
            return
        if not launches.offers_warm_up(Path(launch.script)):
            # Nothing to warm (a one-off job: deploy's login job): the standby kept, or being started, for
            # the job that does offer it stays.
            shutil.rmtree(directory, ignore_errors=True)
            return
        with self._lock:
            self._requests = max(self._requests, request)
            current = self._standby
            superseded = request != self._requests or self._closed
            if superseded or (current and current.fingerprint == launch.fingerprint and current.process.poll() is None):
                shutil.rmtree(directory, ignore_errors=True)
                return  # a later request is being served, or one is warming or warm for this code already
            self._standby = None
        if current is not None:
            current.discard()
        with open(self.config.state_dir / "standby.log", "ab") as log_file:
            process = subprocess.Popen(
                [sys.executable, "-I", str(STANDBY_SCRIPT)],
                cwd=directory,
                env=launch.env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log_file,
                start_new_session=True,
            )
        standby = Standby(job_name, launch.fingerprint, process, directory)
        standby.send({"script": launch.script, "py_files": launch.py_files})
        threading.Thread(target=standby.await_ready, name="standby-ready", daemon=True).start()
        with self._lock:
            if not self._closed and self._standby is None and request == self._requests:
                self._standby = standby
                return
        standby.discard()  # the runner closed, or a later request came

    def take(self, job_name: str, launch: Launch, run_dir: Path, stdout: Path, stderr: Path) -> Standby | None:
        """Hand the run to the standby if it was started for this job with exactly this code (warm, or
        still warming: then it cuts its warm-up short once Spark is up); one for another job stays for that
        job's next run (a one-off job's run, deploy's login job, starts cold); one for this job's older
        code is of no use and goes. Called with the lock held."""
        if launch.debug or launch.spark_ui:
            return None  # see launch.needs_own_process; the standby stays for the next run
        standby = self._standby
        if standby is None or (standby.job_name != job_name and standby.process.poll() is None):
            return None
        self._standby = None
        same_code = standby.fingerprint == launch.fingerprint
        if standby.process.poll() is not None or not same_code:
            standby.discard()  # it died while waiting, or it holds other code: start cold
            return None
        order = {"script": launch.script, "argv": launch.argv, "cwd": str(run_dir), "env": launch.env}
        try:
            logs = {"stdout": str(stdout), "stderr": str(stderr)}
            standby.send({**order, **logs}, last=True)
        except BrokenPipeError:
            standby.discard()
            return None
        return standby

    def close(self) -> None:
        self._closed = True
        with self._lock:
            standby, self._standby = self._standby, None
        if standby is not None:
            standby.discard()
