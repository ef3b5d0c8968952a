"""The soak's figures: throughput, faults and recovery, attempts and Glue runs per file, peak memory,
and what the run would cost on AWS, modelled from what it counted.

The cost model (us-east-1 list prices, December 2026; ``PRICES``):
* Glue: each run's duration, at least Glue's 1-minute minimum, times its DPUs (G.1X: 1 DPU a worker).
* Lambda: invocations (the uploads' S3 events and the sweeps) times the mean duration the emulator
  reported for the invocations whose REPORT lines it kept, including the time an invocation waits for the
  single Glue slot, times the function's memory.
* DynamoDB on demand: the pipeline's own requests as the embedded emulator logged them (every request
  of the Lambda and the job passes there; the soak's own and the Glue service's are told apart by their
  access key id), a write unit per KB of the mean item per item written (two for a transaction's), a
  read unit per 4 KB per item read (strongly consistent), a query counted as one page of its items.
* S3: the pipeline's own requests, counted the same way (Spark's reads of the files included: the local
  runner's Spark reads them through the emulator too). The bank's own uploads are not the pipeline's
  cost.
* Secrets Manager: each GetSecretValue. CloudWatch Logs ingestion is left out.
"""

from __future__ import annotations

import json
import math
import statistics
import threading
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from glueline.ops.deploy.desired import LAMBDA_MEMORY_MB
from glueline.shared.audit import AuditRecord, Status, from_timestamp

PRICES = {
    "glue_dpu_hour": 0.44,
    "glue_minimum_seconds": 60,
    "lambda_gb_second": 0.0000166667,
    "lambda_request": 0.20 / 1e6,
    "dynamodb_write_unit": 0.625 / 1e6,
    "dynamodb_read_unit": 0.125 / 1e6,
    "s3_put_copy_list": 0.005 / 1000,
    "s3_get_head": 0.0004 / 1000,
    "secrets_call": 0.05 / 10_000,
}
DPU_PER_WORKER = {"G.1X": 1, "G.2X": 2, "G.4X": 4, "G.8X": 8, "G.025X": 0.25}
_WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
_READS = {"GetItem"}
_S3_CHEAP = {"GetObject", "HeadObject", "HeadBucket"}
_S3_FREE = {"DeleteObject", "DeleteObjects"}


class MemoryWatch:
    """Peak resident memory of each part of the stack, sampled every ``interval`` seconds by
    ``sample()`` (part → bytes now)."""

    def __init__(self, sample: Callable[[], dict[str, int]], interval: float = 2.0):
        self.sample = sample
        self.interval = interval
        self.peaks: Counter[str] = Counter()
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.interval):
            try:
                for part, rss in self.sample().items():
                    self.peaks[part] = max(self.peaks[part], rss)
            except Exception:  # a part restarting right now: the next sample sees it
                continue

    def as_dict(self) -> dict[str, int]:
        return {part: round(rss / 2**20) for part, rss in sorted(self.peaks.items())}


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 1)


def recovery(faults: list[dict], records: list[AuditRecord]) -> dict:
    """Per fault, the seconds from its start to the first file COMPLETED after it ended."""
    completions = sorted(
        epoch(r.processing_end_timestamp)
        for r in records
        if r.status == Status.COMPLETED and r.processing_end_timestamp
    )
    seconds: dict[str, list[float]] = {}
    for fault in faults:
        after = next((t for t in completions if t >= fault["ended"]), None)
        fault["recovered_seconds"] = round(after - fault["started"], 1) if after is not None else None
        if after is not None:
            seconds.setdefault(fault["kind"], []).append(after - fault["started"])
    every = [s for kind in seconds.values() for s in kind]
    return {
        "all": {"p50": percentile(every, 0.5), "p95": percentile(every, 0.95), "n": len(every)},
        "by_kind": {
            kind: {"p50": percentile(values, 0.5), "p95": percentile(values, 0.95), "n": len(values)}
            for kind, values in sorted(seconds.items())
        },
    }


def epoch(timestamp: str) -> float:
    return from_timestamp(timestamp).timestamp()


def glue_runs(glue, job: str) -> list[dict]:
    runs = []
    for page in glue.get_paginator("get_job_runs").paginate(JobName=job):
        runs += page["JobRuns"]
    return runs


def run_seconds(run: dict) -> float:
    if run.get("ExecutionTime"):
        return float(run["ExecutionTime"])
    started, ended = run.get("StartedOn"), run.get("CompletedOn")
    return (ended - started).total_seconds() if started and ended else 0.0


def lambda_durations(logs, function: str) -> list[float]:
    """Milliseconds of each invocation whose REPORT line the emulator kept."""
    group = f"/aws/lambda/{function}"
    durations = []
    try:
        for page in logs.get_paginator("filter_log_events").paginate(logGroupName=group, filterPattern="REPORT"):
            for event in page["events"]:
                part = event["message"].split("Duration: ", 1)
                if len(part) == 2:
                    durations.append(float(part[1].split(" ", 1)[0]))
    except logs.exceptions.ResourceNotFoundException:
        pass
    return durations


def pipeline_requests(request_log: Path, others: set[str]) -> Counter[tuple[str, str]]:
    """(service, operation) → the pipeline's requests, from the emulator's request log: every request
    but those signed by ``others`` (the soak's own clients, the Glue service's). A transaction counts
    once per item, as "TransactWriteItems"."""
    calls: Counter[tuple[str, str]] = Counter()
    if not request_log.exists():
        return calls
    for line in request_log.read_text().splitlines():
        call = json.loads(line)
        if call["key"] not in others:
            calls[(call["service"], call["operation"])] += call.get("items", 1)
    return calls


def cost_model(
    runs: list[dict], files: int, invocations: int, lambda_ms: list[float], calls: Counter, item_kb: float, settings
) -> dict:
    dpus = settings.glue_workers * DPU_PER_WORKER.get(settings.glue_worker_type, 1)
    dpu_seconds = sum(max(PRICES["glue_minimum_seconds"], run_seconds(r)) * dpus for r in runs)
    mean_ms = statistics.fmean(lambda_ms) if lambda_ms else 0.0
    gb_seconds = invocations * mean_ms / 1000 * LAMBDA_MEMORY_MB / 1024
    ddb = {op: n for (service, op), n in calls.items() if service == "dynamodb"}
    write_units = math.ceil(item_kb) * (
        sum(n for op, n in ddb.items() if op in _WRITES) + 2 * ddb.get("TransactWriteItems", 0)
    )
    read_units = math.ceil(item_kb / 4) * (
        sum(n for op, n in ddb.items() if op in _READS) + ddb.get("BatchGetItem", 0) + ddb.get("Query", 0)
    )
    s3 = {op: n for (service, op), n in calls.items() if service == "s3"}
    s3_cheap = sum(n for op, n in s3.items() if op in _S3_CHEAP)
    s3_tier1 = sum(n for op, n in s3.items() if op not in _S3_CHEAP | _S3_FREE)
    secrets = sum(n for (service, _), n in calls.items() if service == "secretsmanager")
    dollars = {
        "glue": dpu_seconds / 3600 * PRICES["glue_dpu_hour"],
        "lambda": gb_seconds * PRICES["lambda_gb_second"] + invocations * PRICES["lambda_request"],
        "dynamodb": write_units * PRICES["dynamodb_write_unit"] + read_units * PRICES["dynamodb_read_unit"],
        "s3": s3_tier1 * PRICES["s3_put_copy_list"] + s3_cheap * PRICES["s3_get_head"],
        "secrets_manager": secrets * PRICES["secrets_call"],
    }
    per_thousand = {k: round(v * 1000 / max(1, files), 4) for k, v in dollars.items()}
    per_thousand["total"] = round(sum(per_thousand.values()), 4)
    return {
        "per_1000_files_usd": per_thousand,
        "measured": {
            "files": files,
            "glue_runs": len(runs),
            "glue_dpu_seconds_billed": round(dpu_seconds),
            "lambda_invocations": invocations,
            "lambda_mean_ms": round(mean_ms),
            "lambda_reports_kept": len(lambda_ms),
            "lambda_gb_seconds": round(gb_seconds, 1),
            "dynamodb_write_units": write_units,
            "dynamodb_read_units": read_units,
            "mean_item_kb": round(item_kb, 2),
            "s3_put_copy_list": s3_tier1,
            "s3_get_head": s3_cheap,
            "secrets_calls": secrets,
        },
        "prices": PRICES,
    }


def mean_item_kb(records: list[AuditRecord]) -> float:
    sizes = [len(json.dumps(r.to_item(), default=str)) for r in records]
    return statistics.fmean(sizes) / 1024 if sizes else 1.0
