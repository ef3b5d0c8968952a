"""The soak's faults: a seeded schedule of kinds, each at least ``min_each`` times, made one at a time
at random moments while the traffic runs, with the stack's own fault operations (glueline.local.faults).

A fault that lasts (the database hung, its network cut, refusing, its disk full) is held for a random
while, long enough to outlast the job's bounded waits now and then. A Glue run's driver is killed in the
phase the kind names: "mid-load" once the database shows the job's COPY or merge, "mid-move" once the
job's statements are done (its rows committed) and it settles its files (S3 moves, audit items). What
was actually seen is recorded with each fault, so a kill that found no load says so.
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

from .stack import SoakStack

EMBEDDED_KINDS = (
    "emulator_kill",
    "postgres_kill",
    "postgres_hang",
    "network_cut",
    "driver_kill_load",
    "driver_kill_move",
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
    },
}


@dataclass
class Fault:
    kind: str
    started: float
    ended: float | None = None
    held_seconds: float | None = None
    detail: str = ""
    error: str | None = None  # the fault could not be made or undone

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class FaultSchedule:
    kinds: tuple[str, ...]
    min_each: int
    hold: tuple[float, float]  # seconds a lasting fault is held
    slot: float  # seconds between one fault's start and the next one's, on average (spread over the run)
    phase_wait: float  # how long a driver kill waits for its phase before it kills whatever runs
    order: list[str] = field(default_factory=list)

    @classmethod
    def seeded(cls, seed: int, kinds, min_each: int, duration: float, short: bool) -> FaultSchedule:
        rng = random.Random(seed)
        order = [kind for kind in kinds for _ in range(min_each)]
        rng.shuffle(order)
        hold = (3.0, 8.0) if short else (5.0, 75.0)
        # Each fault's share of the traffic's time: its hold, its restart, a driver kill's wait.
        slot = duration * 0.85 / max(1, len(order))
        hold = (min(hold[0], slot * 0.2), min(hold[1], slot * 0.5))
        return cls(tuple(kinds), min_each, hold, slot, max(60.0, slot * 0.6), order)


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
            fault = self.make(kind)
            self.faults.append(fault)
            self.log(f"fault {kind}: {fault.detail or ''}{' ERROR ' + fault.error if fault.error else ''}")

    def make(self, kind: str) -> Fault:
        fault = Fault(kind, time.time())
        hold = round(self.rng.uniform(*self.schedule.hold), 1)
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
            elif kind in ("postgres_hang", "network_cut", "db_refuses", "disk_full", "glue_disconnect"):
                lasting = {
                    "postgres_hang": faults.database_hung,
                    "network_cut": faults.database_cut_off,
                    "db_refuses": faults.database_refusing,
                    "disk_full": faults.disk_full,
                    "glue_disconnect": faults.glue_disconnected,
                }[kind]
                with lasting():
                    fault.held_seconds = hold
                    self.stop.wait(hold)  # an interrupted soak undoes the fault at once
            elif kind in ("driver_kill_load", "driver_kill_move"):
                fault.detail = self._kill_driver(load=kind == "driver_kill_load", wait=self.schedule.phase_wait)
                fault.started = time.time()  # the kill itself, not the wait for its phase
            else:
                raise ValueError(kind)
        except FaultUnavailable as why:
            fault.error = f"not made: {why}"
        except Exception as err:  # recorded: a fault that fails to be undone must show in the verdict
            fault.error = f"{type(err).__name__}: {err}"
        fault.ended = time.time()
        return fault

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
        glue = self.stack.client("glue")
        job = self.stack.settings.glue_job
        runs = [r for r in glue.get_job_runs(JobName=job)["JobRuns"] if r["JobRunState"] in ACTIVE_RUN_STATES]
        killed = [
            r["Id"] for r in runs if r["Id"] not in self._killed and self.stack.faults.kill_glue_run(job, r["Id"])
        ]
        self._killed.update(killed)
        return killed
