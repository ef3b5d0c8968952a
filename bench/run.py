"""``make bench``: glueline's job through the real embedded pipeline, against two reference loads of the
same 1M-row file on the same database, measured in the same run.

Per size (1k, 10k, 100k, 1M rows; 10M with --with-10m), medians of --repeats runs, each file uploaded
under a new key into an empty target table:
  * end-to-end: upload start → the audit item says COMPLETED (S3 event, Lambda, Glue runner, Spark, load)
  * the Glue run's wall time (process start → exit) and the job's own phases, as the job records them in
    the audit item: spark_start, stage (read + clean + COPY into staging: one pipelined pass), copy (time
    inside COPY, summed over partitions), merge (upsert + commit), move (file to processed/)
  * rows/s of the job and of its load (copy + merge), peak RSS of the job's process tree, and the CPU
    seconds the PostgreSQL server spent (postmaster + backends, exited ones included)

References on the 1M file, same database, each into its own empty table with the same primary key:
  a. tutorial baseline: bench/baseline_jdbc.py (same Spark cleaning, then write.jdbc defaults), a fresh
     process like a Glue run
  b. database floor: COPY of the raw file into an all-text UNLOGGED table + one INSERT … SELECT … ON
     CONFLICT applying the same rules in SQL (PostgreSQL 15 has no "try cast": value checks are regular
     expressions there)

Ratios for 1M: speedup_vs_baseline = baseline wall / job wall; db_cpu_ratio_vs_baseline = job PG CPU /
baseline PG CPU; ratio_vs_floor = job wall / floor wall.
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
from datetime import datetime, timezone
from pathlib import Path

import psutil
import psycopg
from psycopg import sql
from rich.console import Console
from rich.table import Table

from glueline.audit import AuditTable, Status
from glueline.bootstrap import Bootstrap
from glueline.pipeline import upload
from glueline.runner.standby import READY_FILE
from glueline.samples import write_file
from glueline.settings import PROJECT_DIR, Settings
from glueline.stack import EmbeddedStack, apply_aws_env

BENCH_DIR = PROJECT_DIR / "bench"
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


def run_glueline(p: dict, path: Path, key_suffix: str) -> dict:
    db, pg, s3, audit, glue, runner_pid = p["db"], p["pg"], p["s3"], p["audit"], p["glue"], p["runner_pid"]
    with psycopg.connect(**db.connect_kwargs(), autocommit=True) as conn:
        conn.execute("TRUNCATE public.transactions")
        conn.execute("CHECKPOINT")
    # Like a developer's next upload, not one 50 ms after the last run: the runner's standby is warm.
    standby = p["state_dir"] / "glue-runner" / READY_FILE
    deadline = time.time() + 180
    while not standby.exists() and time.time() < deadline:
        time.sleep(0.2)
    named = path.with_name(f"{path.stem}-{key_suffix}.csv")  # a new key, so a new file to the pipeline
    os.link(path, named)
    try:
        cpu = pg.total()
        with PeakRss(runner_pid) as rss:
            start = time.perf_counter()
            (sent,) = upload(s3, p["bucket"], [named])
            while True:
                record = audit.get(sent.file_id)
                if record is not None and record.status in (Status.COMPLETED, Status.FAILED, Status.REJECTED):
                    break
                time.sleep(0.05)
            end_to_end = time.perf_counter() - start
        db_cpu = pg.total() - cpu
    finally:
        named.unlink()
    if record.status != Status.COMPLETED:
        raise SystemExit(f"{named.name}: {record.status}: {record.error_message}")
    run = wait_run(glue, p["job"], record.glue_job_id)
    job_wall = run["CompletedOn"].timestamp() - run["StartedOn"].timestamp()
    t = record.timings
    return {
        "rows_read": record.rows_read,
        "rows_loaded": record.rows_loaded,
        "rows_rejected": record.rows_rejected,
        "end_to_end_s": end_to_end,
        "job_wall_s": job_wall,
        **{f"{phase}_s": t.get(phase) for phase in ("spark_start", "stage", "copy", "merge", "move")},
        "read_clean_s": t["stage"] - t["copy"],
        "job_rows_per_s": record.rows_read / job_wall,
        "load_rows_per_s": record.rows_loaded / (t["copy"] + t["merge"]),
        "peak_rss_mb": rss.peak / 2**20,
        "db_cpu_s": db_cpu,
    }


def wait_run(glue, job: str, run_id: str) -> dict:
    while True:
        run = glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]
        if run["JobRunState"] not in ("STARTING", "RUNNING", "STOPPING"):
            return run
        time.sleep(0.1)


# -- reporting --------------------------------------------------------------------------------------


def summarize(samples: list[dict]) -> dict:
    return {key: median([s[key] for s in samples if s.get(key) is not None]) for key in samples[0]}


def render(results: dict) -> None:
    table = Table(title="glueline job through the embedded pipeline (medians)", title_justify="left")
    columns = [
        ("size", "size"),
        ("rows", "rows_read"),
        ("e2e s", "end_to_end_s"),
        ("job s", "job_wall_s"),
        ("spark start", "spark_start_s"),
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
            ("baseline", "tutorial: Spark + write.jdbc"),
            ("floor", "floor: COPY raw + SQL upsert"),
        ):
            r = result[name]
            refs.add_row(label, _fmt(r.get("job_wall_s", r.get("wall_s"))), _fmt(r["rows_loaded"]), _fmt(r["db_cpu_s"]))
        console.print(refs)
        console.print(
            f"speed-up vs baseline [bold]{result['speedup_vs_baseline']:.2f}×[/] (target ≥ 1.2), "
            f"PostgreSQL CPU vs baseline [bold]{result['db_cpu_ratio_vs_baseline']:.2f}×[/] (target ≤ 0.5), "
            f"time vs floor [bold]{result['ratio_vs_floor']:.2f}×[/] (target ≤ 2.5)"
        )
    if scale := results.get("scale_10m_vs_1m"):
        console.print(
            f"10M vs 1M: peak RSS [bold]{scale['peak_rss_ratio']:.2f}×[/] (target ≤ 1.5), "
            f"job time [bold]{scale['job_wall_ratio']:.2f}×[/] (target ≤ 12)"
        )


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.0f}" if value >= 1000 else f"{value:.2f}"
    return f"{value:,}"


# -- main -------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1k,10k,100k,1m", help="comma-separated: " + ", ".join(SIZES))
    parser.add_argument("--with-10m", action="store_true", help="add the 10M-row file (about 1 GB)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--references", default="1m", help="sizes that also get the two reference loads")
    parser.add_argument("--out", type=Path, default=BENCH_DIR / "results" / "latest.json")
    options = parser.parse_args()
    sizes = [s.strip() for s in options.sizes.split(",")] + (["10m"] if options.with_10m else [])
    references = {s.strip() for s in options.references.split(",")}

    data_dir = BENCH_DIR / "data"
    state_dir = BENCH_DIR / ".state"
    data_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(state_dir, 0o755)
    settings = Settings(state_dir=state_dir)
    stack = EmbeddedStack(settings)
    info = stack.running() or stack.start()
    apply_aws_env(info)
    db = info.db()
    boot = Bootstrap(settings, db, log=lambda change: None)
    boot.run()
    import boto3

    p = {
        "db": db,
        "pg": PostgresCpu(Path(info.postgres_dir) / "data"),
        "s3": boto3.client("s3"),
        "audit": AuditTable(boto3.client("dynamodb"), settings.audit_table),
        "glue": boto3.client("glue"),
        "job": settings.glue_job,
        "bucket": boot.bucket,
        "runner_pid": info.pids["glue_runner"],
        "state_dir": state_dir,
    }
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
    for size in sizes:
        rows = SIZES[size]
        path = data_dir / f"transactions_{size}.csv"
        if not path.exists():
            console.print(f"generating {path.name} …")
            # No TransactionID twice (the JDBC baseline appends into a primary key) and no line breaks
            # inside quotes (the common case; such files are read as one task, see ETL_Job_to_RDS).
            write_file(path, rows, seed=42, dirty=0.02, first_id=1_000_000, duplicates=False, line_breaks=False)
        samples = []
        for repeat in range(options.repeats):
            console.print(f"{size}: glueline run {repeat + 1}/{options.repeats}")
            samples.append(run_glueline(p, path, f"{int(time.time())}-{repeat}"))
        result = {"glueline": summarize(samples), "glueline_samples": samples}
        if size in references:
            baseline, floor = [], []
            for repeat in range(options.repeats):
                console.print(f"{size}: references {repeat + 1}/{options.repeats}")
                baseline.append(run_baseline(db, path, p["pg"]))
                floor.append(run_floor(db, path, p["pg"]))
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
    options.out.parent.mkdir(parents=True, exist_ok=True)
    options.out.write_text(json.dumps(results, indent=2))
    render(results)
    console.print(f"results: {options.out}")


if __name__ == "__main__":
    main()
