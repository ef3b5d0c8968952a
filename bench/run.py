"""``make bench``: glueline's job through the real embedded pipeline, against two reference loads of the
same 1M-row file on the same database, measured in the same run; and many small files against one file
of the same rows.

Per size (1k, 10k, 100k, 1M rows; 10M with --with-10m), medians of --repeats runs, each file uploaded
under a new key into an empty target table:
  * end-to-end: upload start → the audit item says COMPLETED (S3 event, Lambda, Glue runner, Spark, load)
  * the Glue run's wall time (process start → exit) and the job's own phases, as the job records them in
    the audit item: spark_start, fetch (the local copy of the file), stage (read + clean + COPY into
    staging: one pipelined pass), copy (time inside COPY, summed over partitions), merge (rejected rows
    exported, INSERT or upsert, commit), move (file to processed/)
  * rows/s of the job and of its load (copy + merge), peak RSS of the job's process tree, and the CPU
    seconds the PostgreSQL server spent (postmaster + backends, exited ones included)

References on the 1M file, same database, each into its own empty table with the same primary key:
  a. tutorial baseline: bench/baseline_jdbc.py (the tutorial's split CSV read, the same Spark cleaning,
     then write.jdbc defaults), a fresh process like a Glue run
  b. database floor: COPY of the raw file into an all-text UNLOGGED table + one INSERT … SELECT … ON
     CONFLICT applying the same rules in SQL (PostgreSQL 15 has no "try cast": value checks are regular
     expressions there)

Ratios for 1M: speedup_vs_baseline = baseline wall / job wall; db_cpu_ratio_vs_baseline = job PG CPU /
baseline PG CPU; ratio_vs_floor = job wall / floor wall.

Many files (``many_files_vs_one_file``): 50 files of 10k rows uploaded at once, against one file of 500k
rows, each measured from the first claim to the last COMPLETED in the audit items.

The benchmark starts its own embedded stack (state in bench/.state) and stops it, and everything it
started, when it ends, also when it fails; it then checks that no process of it is left.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from glueline.local.embedded.stack import EmbeddedStack
from glueline.local.processes import termination_raises
from glueline.local.samples import write_file
from glueline.ops.deploy.deployer import deployer_for
from glueline.ops.target import resolve_target
from glueline.ops.uploads import upload
from glueline.polling import wait_for
from glueline.settings import Settings
from glueline.shared.audit import AuditTable, Status, age_seconds
from glueline.shared.gluerun import ACTIVE_RUN_STATES

BENCH_DIR = Path(__file__).resolve().parent
SIZES = {"1k": 1_000, "10k": 10_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}
console = Console(width=None if Console().is_terminal else 200)


# -- measuring --------------------------------------------------------------------------------------


class PostgresCpu:
    """CPU seconds used by a PostgreSQL server: the postmaster, its live backends, and (via the
    postmaster's children times) every backend that exited."""

    def __init__(self, data_dir: Path):
        self.postmaster = psutil.Process(int((data_dir / "postmaster.pid").read_text().split()[0]))

    def total(self) -> float:
        times = self.postmaster.cpu_times()
        total = times.user + times.system + times.children_user + times.children_system
        for child in self.postmaster.children():
            try:
                t = child.cpu_times()
                total += t.user + t.system
            except psutil.NoSuchProcess:
                pass
        return total


class PeakRss:
    """Peak resident memory of a process tree (every descendant of ``root``), sampled every 50 ms."""

    def __init__(self, root: int):
        self.root = psutil.Process(root)
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    def _sample(self):
        while not self._stop.wait(0.05):
            rss = 0
            for process in self.root.children(recursive=True):
                try:
                    rss += process.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
            self.peak = max(self.peak, rss)


def median(values):
    return statistics.median(values) if values else None


# -- the database side ------------------------------------------------------------------------------

# The fastest form found: OFFSET 0 keeps PostgreSQL from inlining the subqueries, so each trimmed value
# and each date check is computed once per row (inlined, the date check ran three times: about 30 s →
# 20 s on 1M rows here); a checked date is cast, not parsed with to_date.
FLOOR_SQL = r"""
INSERT INTO {target} (transactionid, accountnumber, customerid, transactiondate, transactiontype,
                      transactionamount, currency, accountbalance, branchcode, merchantcode, description,
                      source_file, file_id, dq_flags)
SELECT * FROM (
  SELECT tid::bigint AS transactionid,
         nullif(acc, '') AS accountnumber,
         coalesce(nullif(cust, ''), 'N/A') AS customerid,
         CASE WHEN valid_date THEN d::date ELSE current_date END AS transactiondate,
         lower(nullif(typ, '')) AS transactiontype,
         amt::numeric(18,2) AS transactionamount,
         upper(cur) AS currency,
         bal::numeric(18,2) AS accountbalance,
         br::int AS branchcode,
         nullif(mer, '')::int AS merchantcode,
         nullif(descr, '') AS description,
         'floor' AS source_file, 'floor' AS file_id,
         CASE WHEN cust = '' OR NOT valid_date THEN jsonb_strip_nulls(jsonb_build_object(
             'customerid_filled', CASE WHEN cust = '' THEN true END,
             'transactiondate_original', CASE WHEN NOT valid_date THEN d END)) END AS dq_flags
  FROM (
    SELECT *, (d ~ '^[0-9]{{4}}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$'
               AND substr(d, 9, 2)::int <= extract(day from (make_date(substr(d, 1, 4)::int,
                   substr(d, 6, 2)::int, 1) + interval '1 month - 1 day'))) AS valid_date
    FROM (
      SELECT btrim(transactionid, E' \t\r\n') AS tid, btrim(accountnumber, E' \t\r\n') AS acc,
             btrim(customerid, E' \t\r\n') AS cust, coalesce(btrim(transactiondate, E' \t\r\n'), '') AS d,
             btrim(transactiontype, E' \t\r\n') AS typ, btrim(transactionamount, E' \t\r\n') AS amt,
             upper(btrim(currency, E' \t\r\n')) AS cur, btrim(accountbalance, E' \t\r\n') AS bal,
             btrim(branchcode, E' \t\r\n') AS br, coalesce(btrim(merchantcode, E' \t\r\n'), '') AS mer,
             coalesce(btrim(description, E' \t\r\n'), '') AS descr
      FROM {raw} OFFSET 0
    ) trimmed
    WHERE tid ~ '^[0-9]{{1,18}}$' AND amt ~ '^[+-]?[0-9]{{1,16}}(\.[0-9]{{1,2}})?$'
      AND bal ~ '^[+-]?[0-9]{{1,16}}(\.[0-9]{{1,2}})?$' AND br ~ '^[+-]?[0-9]{{1,9}}$'
      AND (mer = '' OR mer ~ '^[+-]?[0-9]{{1,9}}$') AND cur ~ '^[A-Z]{{3}}$'
    OFFSET 0
  ) checked
  WHERE tid::bigint > 0
) cleaned
ON CONFLICT (transactionid) DO UPDATE SET
  accountnumber = EXCLUDED.accountnumber, customerid = EXCLUDED.customerid,
  transactiondate = EXCLUDED.transactiondate, transactiontype = EXCLUDED.transactiontype,
  transactionamount = EXCLUDED.transactionamount, currency = EXCLUDED.currency,
  accountbalance = EXCLUDED.accountbalance, branchcode = EXCLUDED.branchcode,
  merchantcode = EXCLUDED.merchantcode, description = EXCLUDED.description, dq_flags = EXCLUDED.dq_flags
"""


def empty_table(db, name: str) -> sql.Identifier:
    """A fresh table shaped like the target (same columns, primary key, defaults)."""
    table = sql.Identifier("public", name)
    with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {t}").format(t=table))
        conn.execute(sql.SQL("CREATE TABLE {t} (LIKE public.transactions INCLUDING ALL)").format(t=table))
        conn.execute("CHECKPOINT")
    return table


def run_floor(db, path: Path, pg: PostgresCpu) -> dict:
    target = empty_table(db, "bench_floor")
    raw = sql.Identifier("public", "bench_floor_raw")
    cpu, start = pg.total(), time.perf_counter()
    with psycopg.connect(**db.connect_kwargs()) as conn:
        conn.execute(sql.SQL("DROP TABLE IF EXISTS {r}").format(r=raw))
        columns = sql.SQL(", ").join(
            sql.SQL("{} text").format(sql.Identifier(c))
            for c in (
                "transactionid",
                "accountnumber",
                "customerid",
                "transactiondate",
                "transactiontype",
                "transactionamount",
                "currency",
                "accountbalance",
                "branchcode",
                "merchantcode",
                "description",
            )
        )
        conn.execute(sql.SQL("CREATE UNLOGGED TABLE {r} ({c})").format(r=raw, c=columns))
        with conn.cursor().copy(sql.SQL("COPY {r} FROM STDIN (FORMAT csv, HEADER true)").format(r=raw)) as copy:
            with open(path, "rb") as source:
                while chunk := source.read(1 << 20):
                    copy.write(chunk)
        loaded = conn.execute(sql.SQL(FLOOR_SQL).format(target=target, raw=raw)).rowcount
        conn.execute(sql.SQL("DROP TABLE {r}").format(r=raw))
    return {"wall_s": time.perf_counter() - start, "db_cpu_s": pg.total() - cpu, "rows_loaded": loaded}


def run_baseline(db, path: Path, pg: PostgresCpu) -> dict:
    empty_table(db, "bench_baseline")
    env = {**os.environ, "BENCH_DB_URL": db.url(with_password=True), "PYSPARK_PYTHON": sys.executable}
    cpu, start = pg.total(), time.perf_counter()
    with PeakRss(os.getpid()) as rss:
        result = subprocess.run(
            [sys.executable, str(BENCH_DIR / "baseline_jdbc.py"), str(path), "public.bench_baseline"],
            env=env,
            capture_output=True,
            text=True,
        )
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit("baseline failed:\n" + result.stderr[-3000:])
    with psycopg.connect(**db.connect_kwargs()) as conn:
        loaded = conn.execute("SELECT count(*) FROM public.bench_baseline").fetchone()[0]
    return {"wall_s": wall, "db_cpu_s": pg.total() - cpu, "rows_loaded": loaded, "peak_rss_mb": rss.peak / 2**20}


def standby_ready(p: dict) -> None:
    """Like a developer's next upload, not one 50 ms after the last run: wait until the runner reports
    its standby warm (its own API)."""

    def ready() -> bool:
        with urllib.request.urlopen(p["runner_url"] + "/") as response:
            standby = json.loads(response.read())["standby"]
        return bool(standby and standby["state"] == "ready")

    wait_for(ready, 300, "the Glue runner's warm standby", interval=0.2)


def fresh_target(p: dict) -> None:
    with psycopg.connect(**p["db"].connect_kwargs(), autocommit=True) as conn:
        conn.execute("TRUNCATE public.transactions")
        conn.execute("CHECKPOINT")
    standby_ready(p)


def settled(audit: AuditTable, fids: list[str]) -> list | None:
    records = [audit.get(fid) for fid in fids]
    done = all(r is not None and r.status in (Status.COMPLETED, Status.FAILED, Status.REJECTED) for r in records)
    return records if done else None


def run_glueline(p: dict, path: Path, key_suffix: str) -> dict:
    pg, s3, audit, glue, runner_pid = p["pg"], p["s3"], p["audit"], p["glue"], p["runner_pid"]
    fresh_target(p)
    named = path.with_name(f"{path.stem}-{key_suffix}.csv")  # a new key, so a new file to the pipeline
    os.link(path, named)
    try:
        cpu = pg.total()
        with PeakRss(runner_pid) as rss:
            start = time.perf_counter()
            (sent,) = upload(s3, p["bucket"], [named], p["target"])
            (record,) = wait_for(lambda: settled(audit, [sent.file_id]), 7200, named.name, interval=0.05)
            end_to_end = time.perf_counter() - start
        db_cpu = pg.total() - cpu
    finally:
        named.unlink()
    if record.status != Status.COMPLETED:
        raise SystemExit(f"{named.name}: {record.status}: {record.error_message}")
    run = wait_run(glue, p["job"], record.glue_job_id)
    job_wall = run["CompletedOn"].timestamp() - run["StartedOn"].timestamp()
    t, c = record.timings, record.counts
    return {
        "rows_read": c.rows_read,
        "rows_loaded": c.rows_loaded,
        "rows_rejected": c.rows_rejected,
        "end_to_end_s": end_to_end,
        "job_wall_s": job_wall,
        "claim_to_completed_s": processing_seconds([record]),
        **{f"{phase}_s": t.get(phase) for phase in ("spark_start", "fetch", "stage", "copy", "merge", "move")},
        "read_clean_s": t["stage"] - t["copy"],
        "job_rows_per_s": c.rows_read / job_wall,
        "load_rows_per_s": c.rows_loaded / (t["copy"] + t["merge"]),
        "peak_rss_mb": rss.peak / 2**20,
        "db_cpu_s": db_cpu,
    }


def run_many(p: dict, paths: list[Path], key_suffix: str) -> dict:
    """All ``paths`` uploaded at once: first claim to last COMPLETED."""
    fresh_target(p)
    named = [path.with_name(f"{path.stem}-{key_suffix}.csv") for path in paths]
    for path, name in zip(paths, named, strict=True):
        os.link(path, name)
    try:
        with ThreadPoolExecutor(16) as pool:
            sent = list(pool.map(lambda path: upload(p["s3"], p["bucket"], [path], p["target"])[0], named))
        records = wait_for(lambda: settled(p["audit"], [s.file_id for s in sent]), 7200, "many files", interval=0.1)
    finally:
        for name in named:
            name.unlink()
    failed = [r for r in records if r.status != Status.COMPLETED]
    if failed:
        raise SystemExit(f"{failed[0].file_name}: {failed[0].status}: {failed[0].error_message}")
    return {
        "files": len(records),
        "rows_loaded": sum(r.counts.rows_loaded for r in records),
        "claim_to_completed_s": processing_seconds(records),
        "glue_runs": len({r.glue_job_id for r in records}),
    }


def processing_seconds(records: list) -> float:
    """From the first claim to the last COMPLETED, by the audit items' timestamps."""
    first = max(age_seconds(r.processing_start_timestamp) for r in records)
    last = min(age_seconds(r.processing_end_timestamp) for r in records)
    return first - last


def wait_run(glue, job: str, run_id: str) -> dict:
    def ended():
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        return run if run["JobRunState"] not in ACTIVE_RUN_STATES else None

    return wait_for(ended, 600, f"Glue run {run_id}")


# -- reporting --------------------------------------------------------------------------------------


def summarize(samples: list[dict]) -> dict:
    return {key: median([s[key] for s in samples if s.get(key) is not None]) for key in samples[0]}


TARGETS = {  # (compare, bound): what the issue asks of the 1M, many-files and 10M measurements
    "speedup_vs_baseline": (">=", 1.5),
    "db_cpu_ratio_vs_baseline": ("<=", 0.4),
    "ratio_vs_floor": ("<=", 1.0),
    "many_files_vs_one_file": ("<=", 1.5),
    "peak_rss_ratio": ("<=", 1.3),
    "job_wall_ratio": ("<=", 10.0),
}


def verdict(name: str, value: float) -> str:
    compare, bound = TARGETS[name]
    met = value >= bound if compare == ">=" else value <= bound
    return f"[bold]{value:.2f}×[/] (target {compare} {bound}: {'[green]met[/]' if met else '[red]missed[/]'})"


def render(results: dict) -> None:
    table = Table(title="glueline job through the embedded pipeline (medians)", title_justify="left")
    columns = [
        ("size", "size"),
        ("rows", "rows_read"),
        ("e2e s", "end_to_end_s"),
        ("job s", "job_wall_s"),
        ("spark start", "spark_start_s"),
        ("fetch", "fetch_s"),
        ("read+clean", "read_clean_s"),
        ("COPY", "copy_s"),
        ("merge+commit", "merge_s"),
        ("move", "move_s"),
        ("job rows/s", "job_rows_per_s"),
        ("load rows/s", "load_rows_per_s"),
        ("peak RSS MB", "peak_rss_mb"),
        ("PG CPU s", "db_cpu_s"),
    ]
    for header, _ in columns:
        table.add_column(header, justify="right")
    for size, result in results["sizes"].items():
        row = result["glueline"]
        table.add_row(size, *(_fmt(row.get(key)) for _, key in columns[1:]))
    console.print(table)
    for size, result in results["sizes"].items():
        if "baseline" not in result:
            continue
        refs = Table(title=f"{size}: the same file, same database, same run (medians)", title_justify="left")
        for header in ("load", "wall s", "rows loaded", "PG CPU s"):
            refs.add_column(header, justify="right" if header != "load" else "left")
        for name, label in (
            ("glueline", "glueline job"),
            ("baseline", "tutorial: split read + Spark cleaning + write.jdbc"),
            ("floor", "floor: COPY raw + SQL upsert"),
        ):
            r = result[name]
            refs.add_row(label, _fmt(r.get("job_wall_s", r.get("wall_s"))), _fmt(r["rows_loaded"]), _fmt(r["db_cpu_s"]))
        console.print(refs)
        console.print(f"speed-up vs baseline {verdict('speedup_vs_baseline', result['speedup_vs_baseline'])}")
        console.print(
            f"PostgreSQL CPU vs baseline {verdict('db_cpu_ratio_vs_baseline', result['db_cpu_ratio_vs_baseline'])}"
        )
        console.print(f"time vs floor {verdict('ratio_vs_floor', result['ratio_vs_floor'])}")
    if many := results.get("many_files"):
        console.print(
            f"{many['many']['files']} files of {many['rows_per_file']:,} rows uploaded at once: "
            f"{many['many']['claim_to_completed_s']:.2f} s first claim → last COMPLETED "
            f"({many['many']['glue_runs']} Glue run(s)); one file of {many['one']['rows_loaded']:,} rows: "
            f"{many['one']['claim_to_completed_s']:.2f} s (medians)"
        )
        console.print(f"many files vs one file {verdict('many_files_vs_one_file', results['many_files_vs_one_file'])}")
    if scale := results.get("scale_10m_vs_1m"):
        console.print(f"10M vs 1M: peak RSS {verdict('peak_rss_ratio', scale['peak_rss_ratio'])}")
        console.print(f"10M vs 1M: job time {verdict('job_wall_ratio', scale['job_wall_ratio'])}")


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"
    return f"{value:,}"


# -- main -------------------------------------------------------------------------------------------


def bench_file(data_dir: Path, name: str, rows: int, seed: int = 42, first_id: int = 1_000_000) -> Path:
    """A seeded file with no TransactionID twice (the JDBC baseline appends into a primary key) and no
    line breaks inside quotes (the common case)."""
    path = data_dir / f"{name}.csv"
    if not path.exists():
        console.print(f"generating {path.name} …")
        write_file(path, rows, seed=seed, dirty=0.02, first_id=first_id, duplicates=False, line_breaks=False)
    return path


def left_behind(state_dir: Path) -> list[str]:
    """Processes of the benchmark's stack still running (working in, or naming, its state directory)."""
    left = []
    for process in psutil.process_iter(["pid", "cmdline", "cwd"]):
        try:
            text = " ".join(process.info["cmdline"] or []) + " " + (process.info["cwd"] or "")
        except psutil.Error:
            continue
        if str(state_dir) in text and process.pid != os.getpid():
            left.append(f"{process.pid} {text[:150]}")
    return left


def measure(p: dict, options, sizes: list[str], references: set[str], data_dir: Path, results: dict) -> None:
    for size in sizes:
        path = bench_file(data_dir, f"transactions_{size}", SIZES[size])
        samples = []
        for repeat in range(options.repeats):
            console.print(f"{size}: glueline run {repeat + 1}/{options.repeats}")
            samples.append(run_glueline(p, path, f"{int(time.time())}-{repeat}"))
        result = {"glueline": summarize(samples), "glueline_samples": samples}
        if size in references:
            baseline, floor = [], []
            for repeat in range(options.repeats):
                console.print(f"{size}: references {repeat + 1}/{options.repeats}")
                baseline.append(run_baseline(p["db"], path, p["pg"]))
                floor.append(run_floor(p["db"], path, p["pg"]))
            result["baseline"], result["floor"] = summarize(baseline), summarize(floor)
            result["baseline_samples"], result["floor_samples"] = baseline, floor
            ours = result["glueline"]
            result["speedup_vs_baseline"] = result["baseline"]["wall_s"] / ours["job_wall_s"]
            result["db_cpu_ratio_vs_baseline"] = ours["db_cpu_s"] / result["baseline"]["db_cpu_s"]
            result["ratio_vs_floor"] = ours["job_wall_s"] / result["floor"]["wall_s"]
        results["sizes"][size] = result
    if {"1m", "10m"} <= results["sizes"].keys():
        one, ten = results["sizes"]["1m"]["glueline"], results["sizes"]["10m"]["glueline"]
        results["scale_10m_vs_1m"] = {
            "peak_rss_ratio": ten["peak_rss_mb"] / one["peak_rss_mb"],
            "job_wall_ratio": ten["job_wall_s"] / one["job_wall_s"],
        }
    if options.many_files:
        files, rows = options.many_files, 500_000 // options.many_files
        small = [
            bench_file(data_dir, f"many_{i:02d}", rows, seed=100 + i, first_id=50_000_000 + i * rows)
            for i in range(files)
        ]
        one = bench_file(data_dir, "one_500k", files * rows, seed=99, first_id=90_000_000)
        many_samples, one_samples = [], []
        for repeat in range(options.repeats):
            console.print(
                f"many files: {files} × {rows:,} rows, and one file of {files * rows:,}: {repeat + 1}/{options.repeats}"
            )
            many_samples.append(run_many(p, small, f"{int(time.time())}-{repeat}"))
            one_samples.append(run_many(p, [one], f"{int(time.time())}-{repeat}"))
        many, single = summarize(many_samples), summarize(one_samples)
        results["many_files"] = {
            "rows_per_file": rows,
            "many": many,
            "one": single,
            "many_samples": many_samples,
            "one_samples": one_samples,
        }
        results["many_files_vs_one_file"] = many["claim_to_completed_s"] / single["claim_to_completed_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1k,10k,100k,1m", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--with-10m", action="store_true", help="add the 10M-row file (about 1 GB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--references", default="1m", help="sizes that also get the two reference loads")
    parser.add_argument("--many-files", type=int, default=50, help="files of the many-files case (0: skip it)")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    options = parser.parse_args()
    sizes = [s.strip() for s in options.sizes.split(",") if s.strip()] + (["10m"] if options.with_10m else [])
    references = {s.strip() for s in options.references.split(",")}

    data_dir = BENCH_DIR / "data"
    state_dir = BENCH_DIR / ".state"
    data_dir.mkdir(parents=True, exist_ok=True)
    settings = Settings(state_dir=state_dir)
    stack = EmbeddedStack(settings)
    stack.stop()  # whatever an interrupted benchmark left
    results: dict = {
        "command": "make bench" + (" ARGS='" + " ".join(sys.argv[1:]) + "'" if sys.argv[1:] else ""),
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "cpus": os.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "python": platform.python_version(),
            "platform": platform.platform(),
        },
        "repeats": options.repeats,
        "sizes": {},
    }
    with termination_raises():
        measure_all(stack, settings, options, sizes, references, data_dir, results)
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2))
    render(results)
    console.print(f"results: {options.out}")
    left = wait_or_none(lambda: not left_behind(state_dir), 30)
    if not left:
        raise SystemExit("processes of the benchmark are still running:\n" + "\n".join(left_behind(state_dir)))
    console.print("stopped: no process of the benchmark is left")


def measure_all(stack, settings, options, sizes, references, data_dir, results) -> None:
    """Start the benchmark's own stack, measure, and stop the stack whatever happens."""
    try:
        running = stack.start()
        with resolve_target(settings, stack=running) as target:
            deployer = deployer_for(target)
            deployer.deploy()
            db = target.database.here
            assert db is not None and running.record.postgres_dir is not None
            p = {
                "db": db,
                "pg": PostgresCpu(Path(running.record.postgres_dir) / "data"),
                "s3": target.client("s3"),
                "audit": AuditTable(target.client("dynamodb"), settings.audit_table),
                "glue": target.client("glue"),
                "job": settings.glue_job,
                "bucket": target.bucket,
                "target": deployer.rows_target,
                "runner_pid": running.record.pids["glue_runner"],
                "runner_url": running.glue_url,
            }
            measure(p, options, sizes, references, data_dir, results)
    finally:
        stack.stop()


def wait_or_none(condition, timeout: float):
    try:
        return wait_for(condition, timeout, "the benchmark's processes to end", interval=0.5)
    except TimeoutError:
        return None


if __name__ == "__main__":
    main()
