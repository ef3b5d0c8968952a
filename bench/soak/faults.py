"""The soak's faults: a seeded schedule of kinds, each at least ``min_each`` times, made one at a time
at random moments while the traffic runs, with the stack's own fault operations (glueline.local.faults).

A fault that lasts (the database hung, its network cut, refusing, its disk full) is made while a Glue
run is active (it waits for one, up to the phase wait, and says when none came) and held for a random
while: a third of them, drawn by the seed, for longer than the job's deployed database bounds
(``SOAK_BOUNDS``), so that the job's bounded waits end while the fault is in force, the rest for less.
A Glue run's driver is killed in the phase the kind names: "mid-load" once the database shows the job's
COPY or merge, "mid-move" once the job's statements are done (its rows committed) and it settles its
files (S3 moves, audit items). A Spark task's Python worker is killed in the middle of its COPY into
staging (Spark runs the task again, as on Glue). What was actually seen is recorded with each fault, so
a kill that found no load says so, and a fault that could not be made says "not made" (``made``).
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import psycopg
from psycopg import sql

from glueline.job import schema
from glueline.local.faults import FaultUnavailable
from glueline.shared.audit import Status
from glueline.shared.gluerun import ACTIVE_RUN_STATES
from glueline.shared.timeouts import DbBounds

from .stack import SoakStack

EMBEDDED_KINDS = (
    "emulator_kill",
    "postgres_kill",
    "postgres_hang",
    "network_cut",
    "driver_kill_load",
    "driver_kill_move",
    "task_worker_kill",  # a Spark task's Python worker killed mid-COPY: Spark runs the task again
    "runner_kill",
    "db_refuses",
    "disk_full",
)
COMPOSE_KINDS = (
    "emulator_restart",  # docker restart aws: the emulator container stopped and started (state saved)
    "postgres_kill",  # docker kill postgres, then started
    "postgres_restart",  # docker restart postgres
    "postgres_hang",  # docker pause postgres
    "network_cut",
    "driver_kill_load",
    "driver_kill_move",
    "runner_kill",  # docker kill glue, then started
    "runner_restart",  # docker restart glue
    "db_refuses",
    "glue_disconnect",  # docker network disconnect of the glue container
)
FAULT_KINDS = {"embedded": EMBEDDED_KINDS, "compose": COMPOSE_KINDS}
# Why a kind is not made on a stack, said in the results.
NOT_MADE = {
    "compose": {
        "emulator_kill": "a killed emulator container loses what MiniStack and LocalStack (free) keep in memory: "
        "AWS never loses an acknowledged write, so that would test the emulator, not the pipeline; the embedded "
        "soak kills its (durable) emulator instead",
        "disk_full": "the compose database's disk is the Docker engine's; the embedded soak fills its own",
        "task_worker_kill": "a Spark task's worker is a process inside the Glue container; the embedded soak "
        "kills one, with the same job code and the same task retries",
    },
}


LASTING_KINDS = {  # kind → the stack's fault (glueline.local.faults.StackFaults) that makes it, held by a block
    "postgres_hang": "database_hung",
    "network_cut": "database_cut_off",
    "db_refuses": "database_refusing",
    "disk_full": "disk_full",
    "glue_disconnect": "glue_disconnected",
}
# The job's bounds on its database in a soak (deployed: glueline.shared.timeouts.DbBounds), the short soak's
# and the long one's: short enough that a third of the lasting faults outlast them within a slot.
SOAK_BOUNDS = {True: DbBounds(lost_within_seconds=8, ddl_statement_seconds=6), False: DbBounds(20, 15)}
OUTLASTING_SHARE = 1 / 3  # of the lasting faults, held past the bounds


def longest_bound(bounds: DbBounds) -> int:
    """Seconds a lasting fault must be held to outlast every one of the job's bounds on its database."""
    return max(bounds.lost_within_seconds, bounds.ddl_statement_seconds)


@dataclass
class Fault:
    kind: str
    started: float
    ended: float | None = None
    held_seconds: float | None = None
    detail: str = ""
    error: str | None = None  # the fault could not be made ("not made: …"), or made and not undone
    made: bool = False  # it took effect (a lasting fault: its block was entered)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaultSchedule:
    kinds: tuple[str, ...]
    min_each: int
    slot: float  # seconds between one fault's start and the next one's, on average (spread over the run)
    phase_wait: float  # how long a driver kill waits for its phase before it kills whatever runs
    bounds: DbBounds  # the job's, deployed for the soak: a lasting fault held longer outlasts them
    order: list[str] = field(default_factory=list)
    holds: list[float] = field(default_factory=list)  # seconds each fault of the order is held (0: not lasting)

    @classmethod
    def seeded(cls, seed: int, kinds, min_each: int, duration: float, short: bool) -> FaultSchedule:
        rng = random.Random(seed)
        order = [kind for kind in kinds for _ in range(min_each)]
        rng.shuffle(order)
        bounds = SOAK_BOUNDS[short]
        longest = longest_bound(bounds)
        # Each fault's share of the traffic's time: its hold, its restart, a driver kill's wait.
        slot = duration * 0.85 / max(1, len(order))
        within = (min(3.0 if short else 5.0, slot * 0.2), min(longest - 1.0, slot * 0.5))
        past = (longest + 2.0, longest + (6.0 if short else 20.0))
        lasting = [i for i, kind in enumerate(order) if kind in LASTING_KINDS]
        outlasting = set(rng.sample(lasting, round(len(lasting) * OUTLASTING_SHARE)))
        holds = [
            round(rng.uniform(*(past if i in outlasting else within)), 1) if i in lasting else 0.0
            for i in range(len(order))
        ]
        return cls(tuple(kinds), min_each, slot, max(60.0, slot * 0.6), bounds, order, holds)


class FaultInjector:
    """Makes the schedule's faults on a thread until it is done or ``stop`` is set."""

    def __init__(self, stack: SoakStack, schedule: FaultSchedule, seed: int, log: Callable[[str], None]):
        self.stack = stack
        self.schedule = schedule
        self.rng = random.Random(seed + 1)
        self.log = log
        self.faults: list[Fault] = []
        self.stop = threading.Event()
        self._killed: set[str] = set()  # runs whose driver a fault killed

    def run(self, first_after: float) -> None:
        """Each fault starts at its slot's random moment (spread over the run), or when the last ends."""
        start = time.time() + first_after
        for index, kind in enumerate(self.schedule.order):
            at = start + (index + self.rng.uniform(0, 0.5)) * self.schedule.slot
            if self.stop.wait(max(0.0, at - time.time())):
                return
            fault = self.make(kind, self.schedule.holds[index])
            self.faults.append(fault)
            self.log(f"fault {kind}: {fault.detail or ''}{' ERROR ' + fault.error if fault.error else ''}")

    def make(self, kind: str, hold: float = 0.0) -> Fault:
        fault = Fault(kind, time.time())
        faults = self.stack.faults
        try:
            if kind == "emulator_kill":
                faults.restart_emulator(kill=True)
            elif kind == "emulator_restart":
                faults.restart_emulator()
            elif kind == "postgres_kill":
                faults.kill_database()
            elif kind == "postgres_restart":
                faults.restart_container("postgres")
            elif kind == "runner_kill":
                faults.restart_glue_runner(kill=True)
            elif kind == "runner_restart":
                faults.restart_container("glue")
            elif kind in LASTING_KINDS:
                fault.detail = self._while_a_run_is_active(self.schedule.phase_wait)
                fault.started = time.time()
                with getattr(faults, LASTING_KINDS[kind])():
                    fault.made, fault.held_seconds = True, hold
                    self.stop.wait(hold)  # an interrupted soak undoes the fault at once
                if hold > (longest := longest_bound(self.schedule.bounds)):
                    fault.detail += f"; held past the job's database bounds ({longest} s)"
            elif kind == "task_worker_kill":
                fault.detail = self._kill_task_worker(wait=self.schedule.phase_wait)
                fault.started = time.time()
            elif kind in ("driver_kill_load", "driver_kill_move"):
                fault.detail = self._kill_driver(load=kind == "driver_kill_load", wait=self.schedule.phase_wait)
                fault.started = time.time()  # the kill itself, not the wait for its phase
            else:
                raise ValueError(kind)
        except FaultUnavailable as why:
            fault.error = f"made, then: {why}" if fault.made else f"not made: {why}"
        except Exception as err:  # recorded: a fault that fails to be undone must show in the verdict
            fault.error = f"{'made, then ' if fault.made else ''}{type(err).__name__}: {err}"
        else:
            fault.made = fault.made or kind not in LASTING_KINDS
        fault.ended = time.time()
        return fault

    def _while_a_run_is_active(self, wait: float) -> str:
        """Wait (``wait`` at most) for a Glue run to be active, so the fault meets the job; what was seen."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                runs = self._active_runs()
            except Exception:  # the emulator restarting (another fault's aftermath): look again
                runs = []
            if runs:
                return f"while run {runs[0]} was active"
            time.sleep(0.2)
        return f"no run active within {wait:.0f} s"

    def _active_runs(self) -> list[str]:
        glue = self.stack.client("glue")
        runs = glue.get_job_runs(JobName=self.stack.settings.glue_job)["JobRuns"]
        return [r["Id"] for r in runs if r["JobRunState"] in ACTIVE_RUN_STATES]

    def _kill_task_worker(self, wait: float) -> str:
        """Kill the Python worker of a Spark task whose COPY into staging runs, once one does (within
        ``wait``): not made when none ran."""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and not self.stop.is_set():
            try:
                pid = self.stack.faults.kill_task_worker()
            except psycopg.Error:
                pid = None  # the database down (another fault's aftermath): look again
            if pid:
                return f"mid-COPY: killed the task's Python worker (pid {pid})"
            time.sleep(0.01)
        raise FaultUnavailable(f"no task's COPY seen in {wait:.0f} s")

    # -- a Glue run's driver ----------------------------------------------------------------------------

    def _kill_driver(self, load: bool, wait: float) -> str:
        """Kill the active run's driver once the database shows it loading (``load``: a COPY or the merge
        running) or moving (a file's rows committed, its audit item not yet COMPLETED: the job is
        settling it, the S3 move first). A run killed already is not killed again (its COPY shows active
        until PostgreSQL notices the client gone): the next such fault waits for another run."""
        deadline = time.monotonic() + wait
        with psycopg.connect(**self.stack.db.connect_kwargs(), autocommit=True) as conn:
            while time.monotonic() < deadline and not self.stop.is_set():
                try:
                    seen = self._loading(conn) if load else self._moving(conn)
                except psycopg.Error:
                    seen = None  # the database down (another fault's aftermath): look again
                killed = self._kill_active_runs() if seen else []
                if killed:
                    return f"{seen}: killed {', '.join(killed)}"
                time.sleep(0.01 if load else 0.05)
        killed = self._kill_active_runs()
        return f"no {'load' if load else 'move'} seen in {wait:.0f}s: " + (
            f"while running: killed {', '.join(killed)}" if killed else "nothing killed (no run had a process)"
        )

    @staticmethod
    def _loading(conn) -> str | None:
        rows = conn.execute(
            "SELECT query FROM pg_stat_activity WHERE state = 'active' AND pid <> pg_backend_pid() "
            "AND (query LIKE 'COPY %' OR query LIKE 'INSERT INTO %')"
        ).fetchall()
        kinds = sorted({"the COPY into staging" if q.startswith("COPY") else "the merge" for (q,) in rows})
        return f"mid-load ({' and '.join(kinds)} running)" if kinds else None

    def _moving(self, conn) -> str | None:
        table = schema.identifier(self.stack.settings.table)
        recent = conn.execute(
            sql.SQL("SELECT DISTINCT file_id FROM {} WHERE loaded_at > now() - interval '60 seconds'").format(table)
        ).fetchall()
        audit = self.stack.audit
        for (fid,) in recent:
            record = audit.get(fid)
            if record is not None and record.status == Status.PROCESSING:
                return f"mid-move ({record.file_name}: its rows committed, its item PROCESSING)"
        return None

    def _kill_active_runs(self) -> list[str]:
        """SIGKILL the drivers of the active runs not killed before; their ids."""
        job = self.stack.settings.glue_job
        killed = [
            run for run in self._active_runs() if run not in self._killed and self.stack.faults.kill_glue_run(job, run)
        ]
        self._killed.update(killed)
        return killed
