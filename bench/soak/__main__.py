"""``make soak``: the pipeline under steady traffic with faults arriving at random, then a verdict.

    python -m bench.soak [--duration 20m] [--stack embedded|compose] [--seed N] [--short]

1. Plans the traffic (bench/soak/traffic.py) and writes its files, then starts a stack of its own
   (bench/soak/stack.py) and deploys the pipeline.
2. For ``--duration``: uploads the files at their planned moments while the injector (faults.py) makes
   the seeded faults, one at a time, every kind at least ``--min-each`` times (the traffic goes on until
   the last fault is made), and a watch samples each part's memory.
3. Drains as an operator would: runs the daily sweep while work is left, retries files given up (their
   attempts ran out during an outage) through the console's action, until nothing waits; then a quiet
   period, and the verdict (verdict.py) against the ground truth.
4. Writes the figures (figures.py) to ``bench/results/soak-<stack>-<date>.json`` (``--short``: into the
   work directory only) and exits 1 unless the verdict is "nothing lost, nothing doubled".

Everything it starts it stops, also on Ctrl-C or SIGTERM (the stack, the tmpfs, its work directory).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import platform
import re
import secrets
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import psutil

from glueline.local.runner.cloud import GLUE_SERVICE_ACCESS_KEY_ID
from glueline.ops.uploads import put_identified
from glueline.polling import within
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.audit import Status
from glueline.shared.gluerun import ACTIVE_RUN_STATES

from . import figures
from .faults import FAULT_KINDS, NOT_MADE, SOAK_BOUNDS, FaultInjector, FaultSchedule, longest_bound
from .stack import SOAK_ACCESS_KEY_ID, SoakStack, soak_stack
from .traffic import PlannedUpload, TrafficPlan
from .verdict import judge, observe

MEMORY_INTERVAL = {"embedded": 2.0, "compose": 10.0}  # seconds; docker stats takes seconds itself

RESULTS = Path(__file__).resolve().parents[1] / "results"
SWEEP_EVERY_SECONDS = 20
# Every wait of the soak's own is bounded: an upload (retried while the emulator restarts), the drain
# (beyond --drain: its last pass's calls), reading the end state for the verdict.
UPLOAD_SECONDS = 300
DRAIN_GRACE_SECONDS = 120
OBSERVE_SECONDS = 600


def duration(text: str) -> float:
    """``90``, ``90s``, ``20m``, ``1h``: seconds."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([smh]?)", text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"a duration such as 90s, 20m or 1h, not {text!r}")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[match[2]]


def arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=duration, default=duration(os.environ.get("DURATION") or "20m"))
    parser.add_argument("--stack", choices=("embedded", "compose"), default="embedded")
    parser.add_argument(
        "--seed",
        type=int,
        default=int(os.environ.get("SEED") or secrets.randbelow(2**31)),
        help="the traffic's and the faults' seed: random unless SEED or --seed says (printed: a run replays with it)",
    )
    parser.add_argument("--files-per-minute", type=float, default=6.0)
    parser.add_argument("--max-rows", type=int, default=200_000)
    parser.add_argument("--min-each", type=int, default=3, help="faults of each kind, at least")
    parser.add_argument("--drain", type=duration, default=duration("25m"), help="longest wait for quiet")
    parser.add_argument("--short", action="store_true", help="CI: short holds, results kept in the work dir")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (files, logs)")
    return parser.parse_args(argv)


def log(message: str) -> None:
    print(f"{datetime.now(timezone.utc):%H:%M:%S} {message}", flush=True)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    work = Path(tempfile.mkdtemp(prefix="glueline-soak-"))
    try:
        plan = TrafficPlan(work / "files", args.seed, args.duration, args.files_per_minute, args.max_rows)
        uploads = plan.build()
        rows = sum(u.content.counts.rows_read for u in uploads if u.loads)
        log(f"traffic: {len(uploads)} uploads, {rows:,} rows, over {args.duration:.0f}s ({dict(_kinds(uploads))})")
        log(f"seed {args.seed} (replay: SEED={args.seed})")
        bounds = SOAK_BOUNDS[args.short]  # a third of the lasting faults are held longer than these
        settings = Settings(
            db_lost_within_seconds=bounds.lost_within_seconds, db_ddl_timeout_seconds=bounds.ddl_statement_seconds
        )
        with soak_stack(work, args.stack, settings) as stack:
            log(f"{args.stack} stack up: bucket {stack.bucket}")
            result = soak(stack, uploads, args)
        out = (work if args.short else RESULTS) / f"soak-{args.stack}-{datetime.now(timezone.utc):%Y-%m-%d}.json"
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        log(f"figures: {out}")
        _summary(result)
        return 0 if result["verdict"]["passed"] else 1
    finally:
        if args.keep:
            log(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def soak(stack: SoakStack, uploads: list[PlannedUpload], args) -> dict:
    kinds = FAULT_KINDS[stack.kind]
    not_made = dict(NOT_MADE.get(stack.kind, {}))
    if "disk_full" in kinds and not stack.disk_full_possible:
        kinds = tuple(k for k in kinds if k != "disk_full")
        not_made["disk_full"] = "this process may not mount a filesystem of the database's own (root, CAP_SYS_ADMIN)"
    schedule = FaultSchedule.seeded(args.seed, kinds, args.min_each, args.duration, args.short)
    injector = FaultInjector(stack, schedule, args.seed, log)
    memory = figures.MemoryWatch(lambda: _memory(stack), interval=MEMORY_INTERVAL[stack.kind])
    traffic = Traffic(stack, uploads)
    started = time.time()
    threads = [
        threading.Thread(target=traffic.run, name="traffic", daemon=True),
        threading.Thread(target=injector.run, args=(min(30.0, args.duration / 10),), name="faults", daemon=True),
        threading.Thread(target=memory.run, name="memory", daemon=True),
    ]
    for thread in threads:
        thread.start()
    try:
        threads[0].join()
        threads[1].join()
    finally:  # interrupted too: the fault in force is undone (its block exits), the threads end
        traffic.stop.set()
        injector.stop.set()
        threads[1].join()
    traffic_ended = time.time()
    log(f"traffic done: {traffic.sent} uploads in {traffic_ended - started:.0f}s; {len(injector.faults)} faults")
    try:  # its calls to a hung emulator or database are bounded too
        drained = within(args.drain + DRAIN_GRACE_SECONDS, lambda: drain(stack, args.drain, args.short), "the drain")
    except TimeoutError as err:
        log(f"drain: {err}")
        drained = {"sweeps": None, "retried_given_up": [], "quiet_seconds": None, "error": str(err)}
    memory.stop.set()
    ended = time.time()
    world = within(OBSERVE_SECONDS, lambda: observe(stack), "the end state (S3, the audit table, the database)")
    verdict = judge(world, uploads, [f.as_dict() for f in injector.faults], started, ended)
    return _figures(stack, uploads, injector, memory, verdict, drained, started, traffic_ended, ended, args, not_made)


class Traffic:
    """Uploads each planned file at its moment; an upload refused (the emulator down) is tried again."""

    def __init__(self, stack: SoakStack, uploads: list[PlannedUpload]):
        self.stack = stack
        self.uploads = uploads
        self.stop = threading.Event()
        self.sent = 0

    def run(self) -> None:
        s3 = self.stack.client("s3")
        start = time.time()
        for planned in self.uploads:
            if self.stop.wait(max(0.0, start + planned.at - time.time())):
                return
            if not self._upload(s3, planned):
                return

    def _upload(self, s3, planned: PlannedUpload) -> bool:
        """Put one planned file, again and again while the emulator is down, for UPLOAD_SECONDS at most (the
        verdict names one never sent); False when the soak is stopping."""
        body = planned.content.path.read_bytes()

        def put() -> str:  # as `glueline upload` puts a file: its identity is the one the Lambda admits it as
            return put_identified(s3, self.stack.bucket, planned.key, io.BytesIO(body), len(body))

        deadline = time.monotonic() + UPLOAD_SECONDS
        while time.monotonic() < deadline:
            try:
                planned.identity = within(deadline - time.monotonic(), put, f"the upload of {planned.key}")
                planned.uploaded_at = time.time()
                self.sent += 1
                return True
            except Exception as err:
                log(f"upload of {planned.key} failed ({type(err).__name__}: {err}); trying again")
                if self.stop.wait(5):
                    return False
        log(f"upload of {planned.key} given up after {UPLOAD_SECONDS} s")
        return True


def drain(stack: SoakStack, timeout: float, short: bool) -> dict:
    """Sweep and retry until no file waits and no run is active, then a quiet period."""
    operator = stack.operator()
    glue, job = stack.client("glue"), stack.settings.glue_job
    deadline = time.time() + timeout
    retried: list[str] = []
    sweeps = 0
    quiet = 10 if short else 30
    while time.time() < deadline:
        records = stack.audit.all()
        given_up = [r for r in records if r.status == Status.REJECTED and r.gave_up]
        for record in given_up:
            log(f"drain: retrying {record.file_name}, given up: {record.error_message}")
            operator.retry(record.file_id)
            retried.append(record.file_name)
        waiting = [r for r in records if r.status not in Status.FINAL]
        listing = stack.client("s3").list_objects_v2(Bucket=stack.bucket, Prefix=layout.SOURCE)
        left = sum(1 for o in listing.get("Contents", []) if layout.is_source_key(o["Key"]))
        active = any(r["JobRunState"] in ACTIVE_RUN_STATES for r in glue.get_job_runs(JobName=job)["JobRuns"])
        if not (waiting or given_up or left or active):
            time.sleep(quiet)
            if [(r.file_id, r.status) for r in stack.audit.all()] == [(r.file_id, r.status) for r in records]:
                break
            continue
        if not active:
            operator.sweep()
            sweeps += 1
        log(f"drain: {len(waiting)} waiting, {left} in source/, run active: {active}")
        time.sleep(SWEEP_EVERY_SECONDS)
    else:
        log(f"drain: still not quiet after {timeout:.0f}s")
    return {"sweeps": sweeps, "retried_given_up": retried, "quiet_seconds": quiet}


def _memory(stack: SoakStack) -> dict[str, int]:
    return stack.running.memory() | {"soak": psutil.Process().memory_info().rss}


def _kinds(uploads: list[PlannedUpload]) -> Counter:
    return Counter(u.kind for u in uploads)


def _figures(stack, uploads, injector, memory, verdict, drained, started, traffic_ended, ended, args, not_made):
    records = stack.audit.all()
    faults = [f.as_dict() for f in injector.faults]
    outlasted = longest_bound(injector.schedule.bounds)
    runs = figures.glue_runs(stack.client("glue"), stack.settings.glue_job)
    completed = [r for r in records if r.status == Status.COMPLETED]
    loaded_rows = sum(r.counts.rows_loaded for r in completed if r.counts)
    last = max(
        (figures.epoch(r.processing_end_timestamp) for r in completed if r.processing_end_timestamp), default=ended
    )
    minutes = max(1e-9, (last - started) / 60)
    sent = [u for u in uploads if u.identity]
    sweeps = drained["sweeps"]
    lambda_ms = figures.lambda_durations(stack.client("logs"), stack.settings.lambda_function)
    if stack.request_log is None:  # the upstream emulator images keep none
        cost = {"note": "priced by the embedded soak: the compose stack's emulator keeps no request log"}
    else:
        cost = figures.cost_model(
            runs,
            len(records),
            len(sent) + sweeps,
            lambda_ms,
            figures.pipeline_requests(stack.request_log, {SOAK_ACCESS_KEY_ID, GLUE_SERVICE_ACCESS_KEY_ID}),
            figures.mean_item_kb(records),
            stack.settings,
        )
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30),
            "python": platform.python_version(),
            "system": platform.platform(),
        },
        "stack": args.stack,
        "config": {k: getattr(args, k) for k in ("duration", "seed", "files_per_minute", "max_rows", "min_each")},
        "verdict": {
            "passed": verdict.passed,
            "says": "nothing lost, nothing doubled" if verdict.passed else "DIFFERENCES FOUND",
            "problems": verdict.problems,
            "checked": verdict.checked,
        },
        "traffic": {
            "uploads": len(sent),
            "by_kind": dict(_kinds(sent)),
            "rows_uploaded": sum(u.content.counts.rows_read for u in sent if u.loads),
            "seconds": round(traffic_ended - started),
        },
        "throughput": {
            "files_per_minute": round(len(completed) / minutes, 2),
            "rows_loaded_per_minute": round(loaded_rows / minutes),
            "minutes_to_last_completion": round(minutes, 1),
            "drain_seconds": round(ended - traffic_ended),
        },
        "faults": {
            "by_kind": dict(Counter(f["kind"] for f in faults if not f["error"])),
            "errors": [f for f in faults if f["error"]],
            "held_past_the_bounds": sum(1 for f in faults if f["made"] and (f["held_seconds"] or 0) > outlasted),
            "while_no_run_was_active": sum(1 for f in faults if f["detail"].startswith("no run active")),
            "not_made": not_made,
            "recovery_seconds": figures.recovery(faults, records),
            "each": faults,
        },
        "files": {
            "by_status": dict(Counter(r.status for r in records)),
            "attempts": dict(sorted(Counter(r.attempts for r in records).items())),
            "attempts_total": sum(r.attempts for r in records),
            "redeliveries": sum(r.redeliveries or 0 for r in records),
            "given_up_then_retried": drained["retried_given_up"],
            "glue_runs": len(runs),
            "glue_runs_per_file": round(len(runs) / max(1, len(records)), 3),
            "glue_run_states": dict(Counter(r["JobRunState"] for r in runs)),
        },
        "peak_memory_mb": memory.as_dict(),
        "aws_cost_model": cost,
        "drain": drained,
    }


def _summary(result: dict) -> None:
    verdict = result["verdict"]
    print(f"\nverdict: {verdict['says']}  ({verdict['checked']})")
    for problem in verdict["problems"]:
        print(f"  - {problem}")
    print(f"faults: {result['faults']['by_kind']}  recovery p50/p95: {result['faults']['recovery_seconds']['all']}")
    print(
        f"faults held past the job's database bounds: {result['faults']['held_past_the_bounds']}; "
        f"made while no run was active: {result['faults']['while_no_run_was_active']}; seed {result['config']['seed']}"
    )
    if result["faults"]["errors"]:
        print(f"faults with errors: {result['faults']['errors']}")
    print(f"throughput: {result['throughput']}")
    print(f"files: {result['files']}")
    print(f"peak memory (MB): {result['peak_memory_mb']}")
    print(f"AWS cost per 1,000 files (USD): {result['aws_cost_model'].get('per_1000_files_usd', '-')}")


if __name__ == "__main__":
    sys.exit(main())
