"""``make bench-console``: how fast the console's pages answer with a large audit table.

An embedded stack (its emulator; no database: the target's row count then reads "cannot be reached") is
started in bench/.state-console, its audit table filled with ``--items`` items (default 100,000: uploads
spread over 90 days, 90 % COMPLETED with counts, the rest FAILED, REJECTED, PENDING), and ``glueline
console`` started against it as a user starts it. Each page is then asked ``--repeats`` times over HTTP;
the medians and 95th percentiles are printed and written to bench/results/console-<date>.json, with the
budget the issue sets (300 ms for the overview and the files page). Everything started is stopped at the
end, also when it fails.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import statistics
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path

from glueline.console.server import launch, stop
from glueline.local.aws_config import environment_restored
from glueline.local.embedded.stack import EmbeddedStack
from glueline.ops.target import resolve_target
from glueline.settings import Settings
from glueline.shared.audit import DAYS_ID, AuditRecord, DailyTally, Status, table_spec, to_timestamp
from glueline.shared.counts import Counts

ROOT = Path(__file__).resolve().parent
BUDGET_MS = 300


def pages(count: int) -> dict[str, tuple[str, str]]:
    """name: (path, a pattern the page must show) for a table of ``count`` items (``items``)."""
    return {
        "overview": ("/", r'data-status="COMPLETED" href="[^"]+">[1-9]'),
        "files": ("/files", f"{count:,} file\\(s\\), page 1"),
        "files?status=FAILED": ("/files?status=FAILED", f"{count * 4 // 100:,} file\\(s\\)"),
        "files?name=…": ("/files?name=day_0042", "50 file\\(s\\) shown, page 1"),
        "quality (7 days)": ("/quality?days=7", 'class="point"'),
    }


def items(count: int, now: datetime) -> list[dict]:
    """The files' items, then each upload day's tally of them and the list of those days (as the
    pipeline's writes keep them)."""
    statuses = [Status.COMPLETED] * 90 + [Status.FAILED] * 4 + [Status.REJECTED] * 4 + [Status.PENDING] * 2
    result = []
    tallies: dict[str, DailyTally] = {}
    for i in range(count):
        status = statuses[i % len(statuses)]
        uploaded = now - timedelta(seconds=i * 90 * 86400 / count)
        record = AuditRecord(
            f"{i:032x}", f"day_{i % 90:04d}_{i}.csv", "bench", f"source/day_{i}.csv", '"e"', 20_000 + i % 5000,
            to_timestamp(uploaded), "127.0.0.1:5432/bench/public.transactions", status,
            attempts=1, glue_job_id=f"jr_{i // 10:x}",
            counts=Counts(250, 236, 5, 9, 12, 7) if status == Status.COMPLETED else None,
            error_message="database refused" if status == Status.FAILED else None,
        )  # fmt: skip
        result.append(record.to_item())
        tally = tallies.setdefault(record.upload_timestamp[:10], DailyTally(record.upload_timestamp[:10]))
        tally.files[status] = tally.files.get(status, 0) + 1
        tally.counts += record.counts or Counts()
    return result + [tally.as_item() for tally in tallies.values()] + [{"FileID": DAYS_ID, "Days": set(tallies)}]


def fill(ddb, table: str, count: int) -> float:
    from boto3.dynamodb.types import TypeSerializer

    serializer = TypeSerializer()
    rows = items(count, datetime.now(timezone.utc))
    batches = [rows[i : i + 25] for i in range(0, len(rows), 25)]

    def write(batch: list[dict]) -> None:
        requests = [{"PutRequest": {"Item": {k: serializer.serialize(v) for k, v in item.items()}}} for item in batch]
        while requests:
            answer = ddb.batch_write_item(RequestItems={table: requests})
            requests = answer.get("UnprocessedItems", {}).get(table, [])

    started = time.monotonic()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(write, batches))
    return time.monotonic() - started


def timed(url: str, repeats: int, shows: str) -> dict:
    """``shows``: a pattern the page must hold (a page answering fast because it found nothing is no
    result)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as response:
            page = response.read().decode()
            assert response.status == 200
        times.append((time.perf_counter() - started) * 1000)
        assert re.search(shows, page), f"{url} does not show {shows!r}: {re.sub(r'<[^>]+>', ' ', page)[:3000]}"
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[math.ceil(0.95 * len(times)) - 1], 1),
    }  # nearest rank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()

    state_dir = ROOT / ".state-console"
    settings = Settings(state_dir=state_dir)
    stack = EmbeddedStack(settings)
    console = None
    try:
        stack.clean()  # an empty audit table: what an earlier run filled goes
        running = stack.start(with_postgres=False)
        with environment_restored(), resolve_target(settings, stack=running) as target:
            ddb = target.client("dynamodb")
            ddb.create_table(**table_spec(settings.audit_table))
            print(f"filling {settings.audit_table} with {args.items:,} items …", flush=True)
            fill_seconds = fill(ddb, settings.audit_table, args.items)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"GLUELINE_STATE_DIR": str(state_dir)}
        console, base = launch(env, state_dir / "console.log")
        timed(base, 2, "")  # warm: the first request imports the templates
        results = {
            name: timed(base.rstrip("/") + path, args.repeats, shows)
            for name, (path, shows) in pages(args.items).items()
        }
    finally:
        if console is not None:
            stop(console)
        stack.stop()
    report = {
        "date": datetime.now(timezone.utc).date().isoformat(),
        "machine": f"{os.cpu_count()} CPU ({platform.machine()}), Python {platform.python_version()}",
        "emulator": "MiniStack (the embedded stack's)",
        "items": args.items,
        "fill_seconds": round(fill_seconds, 1),
        "repeats": args.repeats,
        "budget_ms": BUDGET_MS,
        "pages": results,
        "within_budget": all(results[name]["median_ms"] <= BUDGET_MS for name in ("overview", "files")),
    }
    out = ROOT / "results" / f"console-{report['date']}.json"
    out.write_text(json.dumps(report, indent=2) + "\n")
    for name, figures in results.items():
        print(f"{name:24} median {figures['median_ms']:8.1f} ms   p95 {figures['p95_ms']:8.1f} ms")
    print(f"written to {out}")


if __name__ == "__main__":
    main()
