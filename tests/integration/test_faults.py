"""Faults on the real stack: the database or the job dying mid-load, duplicate announcements, a burst of
uploads, an emulator restart, a file that never loads. No row is lost or duplicated."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from glueline.job.load import connect, recorded_load
from glueline.local.samples import write_file
from glueline.polling import wait_for
from glueline.shared import layout
from glueline.shared.audit import Status, utc_now
from glueline.shared.contract import COLUMNS
from glueline.shared.events import object_created_event, scheduled_event
from glueline.shared.gluerun import ACTIVE_RUN_STATES
from glueline.shared.timeouts import DB_CONNECT_SECONDS, DbBounds

from .harness import SAMPLES, database_cut_off

# The bounds on the database these tests deploy the job with (a deployment setting; 60 s each as
# shipped), so the faults that wait them out take seconds: still more than the longest stall of a
# healthy database under load on a slow machine.
BOUNDS = DbBounds(lost_within_seconds=20, ddl_statement_seconds=15)
# How long the stack takes at most, on a machine twice as slow as usual, from an upload to the job
# loading it (the Lambda, the Glue run, Spark starting, the file read and cleaned).
LOADING_STARTS_WITHIN = 300
# How long, once the job has the error of a fault, until the file's audit item says so (Spark ends the
# stage, the job settles its files), on a machine twice as slow as usual.
SETTLED_WITHIN = 60
# A database gone without a reset: the job's connections fail within their bound, its cleanup makes one
# more connection attempt (its connect timeout), then it settles the file.
LOST_DATABASE_FAILS_WITHIN = BOUNDS.lost_within_seconds + DB_CONNECT_SECONDS + SETTLED_WITHIN
# The grace a timed-out Glue run's process gets before it is killed (the runner's, as Glue's).
STOP_GRACE = 10


@pytest.fixture(scope="module", autouse=True)
def bounded(glueline_stack):
    with glueline_stack.deployed_with(
        db_lost_within_seconds=BOUNDS.lost_within_seconds, db_ddl_timeout_seconds=BOUNDS.ddl_statement_seconds
    ):
        yield


def copy_running(p) -> bool:
    rows = p.query("SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY %%_stage_%%' AND state = 'active'")
    return rows[0][0] > 0


def group_alive(pgid: int) -> bool:
    for process in psutil.process_iter():
        try:
            if os.getpgid(process.pid) == pgid and process.status() != psutil.STATUS_ZOMBIE:
                return True
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return False


@pytest.fixture
def big_file(tmp_path):
    path = tmp_path / "big.csv"
    counts = write_file(path, 400_000, seed=99, dirty=0.02, first_id=10_000_000)
    return path, counts


def retry_by_schedule(p, upload):
    """Run the daily sweep and wait for the outcome it causes."""
    retry = dataclasses.replace(upload, sent_at=utc_now())
    summary = p.invoke_schedule()
    assert summary["work"] >= 1 and summary["glue_job_run_id"], summary
    (record,) = p.wait([retry])
    return record


def assert_failed_mid_load_then_loaded(p, upload, failed, counts):
    """A load that failed mid-COPY: its attempt counted, no row in the target, the file in source/; the
    next run loads it completely."""
    assert failed.status == Status.FAILED and failed.attempts == 1, (failed.status, failed.error_message)
    assert "OperationalError" in failed.error_message or "connection" in failed.error_message.lower()
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 0
    assert p.keys("source/") == [upload.key]

    loaded = retry_by_schedule(p, upload)
    assert loaded.status == Status.COMPLETED and loaded.attempts == 2, loaded.error_message
    assert loaded.counts == counts
    assert p.query("SELECT count(*), count(DISTINCT transactionid) FROM transactions")[0] == (
        counts.rows_loaded,
        counts.rows_loaded,
    )


def test_the_jobs_connections_are_bounded_at_both_ends(glueline_stack):
    """What the job asks for, the server applies: its end of a job's connection has the same bounds
    (a misspelt setting would be skipped silently, the server's end left to its two-hour default)."""
    with connect(dataclasses.replace(glueline_stack.db, bounds=BOUNDS)) as conn:
        names = list(BOUNDS.server_settings())
        settings = dict(conn.execute("SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [names]))
        assert settings == BOUNDS.server_settings()
        assert conn.execute("SHOW statement_timeout").fetchone()[0] == "0"  # the load: bounded by the Timeout
        assert conn.execute("SHOW lock_timeout").fetchone()[0] == f"{BOUNDS.ddl_statement_seconds}s"
        # The client's end, as the kernel holds it for the socket libpq opened.
        with socket.socket(fileno=os.dup(conn.pgconn.socket)) as sock:
            assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE) == 1
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE) == BOUNDS.keepalive_idle_seconds
            assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == BOUNDS.user_timeout_seconds * 1000


def test_postgres_killed_mid_load(glueline, big_file):
    """Killed, its sockets closed by its kernel (embedded) or gone with its container's network (compose:
    the reset may never arrive, so this is bounded by the job's connection settings too)."""
    p = glueline
    path, counts = big_file
    (upload,) = p.upload(path)
    wait_for(lambda: copy_running(p), LOADING_STARTS_WITHIN, "the COPY into staging", interval=0.02)
    p.faults.stop_database(crash=True)  # in the middle of the COPY
    try:
        (failed,) = p.wait([upload], timeout=LOST_DATABASE_FAILS_WITHIN)
    finally:
        p.faults.start_database()
    assert_failed_mid_load_then_loaded(p, upload, failed, counts)


@pytest.mark.embedded_only  # a Spark task's worker is a process of the embedded stack's Glue run
def test_a_task_whose_worker_is_killed_mid_copy_runs_again_and_loads_each_row_once(glueline, big_file):
    """On a Glue cluster Spark runs a failed task again (four attempts in all), and so does the local
    runner: a task's Python worker killed in the middle of its COPY into staging is run again in the same
    Glue run, which loads the file on its first attempt, each row once, each rejected row once."""
    p = glueline
    path, counts = big_file
    (upload,) = p.upload(path)
    wait_for(p.faults.kill_task_worker, LOADING_STARTS_WITHIN, "a task's COPY", interval=0.02)
    (record,) = p.wait([upload], timeout=LOADING_STARTS_WITHIN)
    assert (record.status, record.attempts, record.counts) == (Status.COMPLETED, 1, counts), record.error_message
    assert p.query("SELECT count(*), count(DISTINCT transactionid) FROM transactions")[0] == (
        counts.rows_loaded,
        counts.rows_loaded,
    )
    rejected = p.client("s3").get_object(Bucket=p.bucket, Key=record.rejected_rows_key)["Body"].read().decode()
    numbers = [line.split(",", 1)[0] for line in rejected.splitlines()[1:]]
    assert len(numbers) == len(set(numbers)) == counts.rows_rejected


@pytest.mark.embedded_only  # on compose, the killed database's container takes its network: the same silence
def test_network_to_the_database_cut_mid_load(glueline, big_file):
    """No reset, no close: only silence. Without bounds of its own the COPY would wait for the kernel's
    retransmissions to give up (about 15 minutes) and the run with it; the job's connections give up
    within their bound (BOUNDS here). The server's ends are bounded too, so no backend of the lost attempt
    is left holding its tables' locks when the next run loads the file."""
    p = glueline
    path, counts = big_file
    (upload,) = p.upload(path)
    wait_for(lambda: copy_running(p), LOADING_STARTS_WITHIN, "the COPY into staging", interval=0.02)
    with database_cut_off(p):
        (failed,) = p.wait([upload], timeout=LOST_DATABASE_FAILS_WITHIN)
    assert_failed_mid_load_then_loaded(p, upload, failed, counts)


# The Glue Timeout the hung-database test deploys: room for the job to reach its merge (about 40 s
# here) on a machine twice as slow as usual, and little more, since the test waits it out.
HUNG_RUN_TIMEOUT_MINUTES = 2
HUNG_RUN_BATCH_SECONDS = 30  # less than that Timeout (deploy refuses more); its one batch is taken anyway


def merge_waits_for_a_lock(p, upload) -> bool:
    """True once the job's merge waits for a lock; an error if the file's run ended before it did (its
    Timeout too short for this machine), rather than a wait for something that will not happen."""
    rows = p.query(
        # The plain INSERT, or the upsert (WITH … INSERT INTO …) when the file's TransactionIDs are loaded already.
        "SELECT count(*) FROM pg_stat_activity WHERE query LIKE '%%INSERT INTO%%' AND wait_event_type = 'Lock'"
    )
    if rows[0][0] > 0:
        return True
    record = p.audit.get(upload.file_id)
    if record and record.glue_job_id:
        run = p.client("glue").get_job_run(JobName=p.settings.glue_job, RunId=record.glue_job_id)["JobRun"]
        assert run["JobRunState"] in ACTIVE_RUN_STATES, f"run {run['Id']} ended {run['JobRunState']} before its merge"
    return False


@pytest.mark.embedded_only  # the runner's Timeout: the same code on both stacks
def test_a_hung_database_is_bounded_by_the_glue_jobs_timeout(glueline, tmp_path):
    """A database that is connected but answers nothing (stopped: its kernel still acknowledges, so
    keepalives see nothing) while the job waits for its merge: the Glue job's Timeout ends the run as
    TIMEOUT, no row of the file is in the target, its attempt counts, and the next trigger loads it."""
    p = glueline
    path = tmp_path / "hung.csv"
    counts = write_file(path, 2_000, seed=7, dirty=0.02, first_id=60_000_000)
    timeout_minutes = HUNG_RUN_TIMEOUT_MINUTES
    with p.deployed_with(glue_timeout_minutes=timeout_minutes, glue_batch_seconds=HUNG_RUN_BATCH_SECONDS):
        # Someone else's lock holds the merge at a known point; then the database stops answering.
        with p.open_transaction("LOCK TABLE transactions IN SHARE MODE"):
            (upload,) = p.upload(path)
            wait_for(lambda: merge_waits_for_a_lock(p, upload), LOADING_STARTS_WITHIN, "the job's merge to wait")
            run_id = p.audit.get(upload.file_id).glue_job_id
            with p.faults.database_hung():
                run = p.finished_run(run_id, timeout=timeout_minutes * 60 + STOP_GRACE + SETTLED_WITHIN)
    assert run["JobRunState"] == "TIMEOUT", run
    assert timeout_minutes * 60 <= run["ExecutionTime"] <= timeout_minutes * 60 + STOP_GRACE + SETTLED_WITHIN
    stuck = p.audit.get(upload.file_id)
    assert (stuck.status, stuck.glue_job_id, stuck.attempts) == (Status.PROCESSING, run_id, 1)  # a dead claim
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 0
    assert p.keys("source/") == [upload.key]

    loaded = retry_by_schedule(p, upload)  # the sweep takes the dead claim over: a second attempt
    assert (loaded.status, loaded.attempts, loaded.counts) == (Status.COMPLETED, 2, counts), loaded.error_message
    assert p.query("SELECT count(*) FROM transactions")[0][0] == counts.rows_loaded


@pytest.mark.embedded_only  # the job's SQL against PostgreSQL: the same on both stacks
def test_a_reader_of_the_target_holds_up_no_load(glueline):
    """A long query on the table (a report, a dashboard) holds a lock that the load never needs to wait
    for: the job takes no exclusive lock on a table that has every column already."""
    p = glueline
    with p.open_transaction("SELECT count(*) FROM transactions"):
        (upload,) = p.upload(SAMPLES / "transactions_2024-07-14.csv")
        (record,) = p.wait([upload], timeout=LOADING_STARTS_WITHIN)
    assert record.status == Status.COMPLETED, record.error_message


def ddl_waits_for_a_lock(p) -> bool:
    """The job's statement that creates its target and adds missing columns (schema.create_target; its
    ALTER lies beyond the 1 kB of a query pg_stat_activity shows) waits for a lock."""
    rows = p.query(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE query LIKE 'DO $glueline$ BEGIN IF NOT EXISTS (SELECT FROM pg_namespace%%' AND wait_event_type = 'Lock'"
    )
    return rows[0][0] > 0


@pytest.mark.embedded_only  # the job's SQL against PostgreSQL: the same on both stacks
def test_ddl_behind_a_reader_gives_up_after_its_statement_timeout(glueline):
    """A table from an earlier release needs a column, and a long query holds the table: the job's ALTER
    waits at most its statement timeout (the deployed one: BOUNDS here), then the run fails the file
    without counting the attempt (the database's state, not the file's fault); once the reader is done,
    the next run loads it."""
    p = glueline
    p.execute("ALTER TABLE transactions DROP COLUMN source_uploaded_at")
    try:
        with p.open_transaction("SELECT count(*) FROM transactions"):
            (upload,) = p.upload(SAMPLES / "transactions_2024-07-14.csv")
            wait_for(lambda: ddl_waits_for_a_lock(p), LOADING_STARTS_WITHIN, "the job's ALTER to wait", interval=0.1)
            waiting_since = time.monotonic()
            (failed,) = p.wait([upload], timeout=BOUNDS.ddl_statement_seconds + SETTLED_WITHIN)
            waited = time.monotonic() - waiting_since
    finally:
        p.execute("ALTER TABLE transactions ADD COLUMN IF NOT EXISTS source_uploaded_at timestamptz")
    assert (failed.status, failed.attempts) == (Status.FAILED, 0), failed.error_message
    assert "statement timeout" in failed.error_message and "could not prepare the load" in failed.error_message
    # The job's own bound, from its deployment, not the 60 s it ships with.
    assert BOUNDS.ddl_statement_seconds - 1 <= waited < DbBounds().ddl_statement_seconds, waited
    assert p.keys("source/") == [upload.key]
    loaded = retry_by_schedule(p, upload)
    assert loaded.status == Status.COMPLETED and loaded.counts.rows_loaded == 9


@pytest.mark.embedded_only  # the job's SQL against PostgreSQL: the same on both stacks
def test_rows_another_session_holds_fail_the_file_after_the_lock_timeout_at_no_attempt(glueline, tmp_path):
    """Another session holds rows the load must update (an operator's correction left in an open
    transaction): the merge waits at most its lock_timeout (the deployed DDL bound: BOUNDS here), then the
    file FAILED without counting an attempt (the database's state, not the file's fault), none of its rows
    in the target; once the rows are free, the next run loads it."""
    p = glueline
    first, again = tmp_path / "first.csv", tmp_path / "again.csv"
    write_file(first, 20, seed=3, dirty=0, first_id=70_000_000, duplicates=False, line_breaks=False)
    write_file(again, 25, seed=4, dirty=0, first_id=70_000_000, duplicates=False, line_breaks=False)
    (loaded,) = p.wait(p.upload(first), timeout=LOADING_STARTS_WITHIN)
    assert loaded.status == Status.COMPLETED, loaded.error_message
    with p.open_transaction("SELECT * FROM transactions FOR UPDATE"):
        (upload,) = p.upload(again)
        wait_for(lambda: merge_waits_for_a_lock(p, upload), LOADING_STARTS_WITHIN, "the job's merge to wait")
        waiting_since = time.monotonic()
        (failed,) = p.wait([upload], timeout=BOUNDS.ddl_statement_seconds + SETTLED_WITHIN)
        waited = time.monotonic() - waiting_since
    assert (failed.status, failed.attempts) == (Status.FAILED, 0), failed.error_message
    assert "lock_timeout" in failed.error_message and "canceling statement due to lock timeout" in failed.error_message
    assert BOUNDS.ddl_statement_seconds - 1 <= waited < DbBounds().ddl_statement_seconds, waited
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 20  # none of its rows
    assert p.keys("source/") == [upload.key]
    retried = retry_by_schedule(p, upload)
    assert (retried.status, retried.attempts, retried.counts.rows_read) == (Status.COMPLETED, 1, 25)
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 25


@pytest.mark.embedded_only
def test_glue_job_killed_mid_run(glueline, big_file):
    p = glueline
    path, counts = big_file
    (upload,) = p.upload(path)
    processing = wait_for(
        lambda: (r := p.audit.get(upload.file_id)) and r.status == Status.PROCESSING and copy_running(p) and r,
        LOADING_STARTS_WITHIN,
        "the job to be loading",
        interval=0.02,
    )
    run_id = processing.glue_job_id
    run_dir = p.state_dir / "glue-runner" / "runs" / p.settings.glue_job / run_id
    group = int((run_dir / "pid").read_text())
    os.killpg(group, signal.SIGKILL)  # the whole job: Python driver, Spark JVM, Python workers

    run = p.finished_run(run_id)
    assert run["JobRunState"] == "FAILED"
    wait_for(lambda: not group_alive(group), 30, "the killed job's processes to be gone")
    stuck = p.audit.get(upload.file_id)
    assert stuck.status == Status.PROCESSING and stuck.glue_job_id == run_id  # a dead claim
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 0  # killed before its commit

    loaded = retry_by_schedule(p, upload)  # the sweep sees the claim is dead and takes it over
    assert loaded.status == Status.COMPLETED and loaded.attempts == 2 and loaded.glue_job_id != run_id
    assert p.query("SELECT count(*), count(DISTINCT transactionid) FROM transactions")[0] == (
        counts.rows_loaded,
        counts.rows_loaded,
    )


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_duplicate_announcements_and_a_burst_of_twenty(glueline, tmp_path):
    p = glueline
    expected = {}
    for i in range(20):
        path = tmp_path / f"burst_{i:02d}.csv"
        expected[path.name] = write_file(path, 60, seed=i, dirty=0.1, first_id=20_000_000 + i * 1000)
    paths = sorted(tmp_path.glob("burst_*.csv"))
    lam = p.client("lambda")
    started = time.time()

    def announce_again(upload):  # a re-sent S3 event and an early schedule, racing the real event
        schedule = scheduled_event(p.target.account, p.target.region, p.settings.schedule_rule)
        for payload in (object_created_event(p.bucket, upload.key), schedule):
            lam.invoke(FunctionName=p.settings.lambda_function, InvocationType="Event", Payload=json.dumps(payload))

    with ThreadPoolExecutor(max_workers=20) as pool:
        uploads = list(pool.map(lambda path: p.upload(path)[0], paths))
        list(pool.map(announce_again, uploads[:3]))
    records = p.wait(uploads, timeout=400)

    for upload, record in zip(uploads, records, strict=True):
        counts = expected[upload.path.name]
        assert record.status == Status.COMPLETED, (record.file_name, record.error_message)
        assert record.attempts == 1, record.file_name  # processed exactly once
        assert record.counts == counts
    assert len(p.audit.all()) == 20
    total = sum(m.rows_loaded for m in expected.values())
    assert p.query("SELECT count(*), count(DISTINCT file_id) FROM transactions")[0] == (total, 20)
    # A run queued behind the busy one (job run queuing) may still wait or start: it ends with nothing to do.
    wait_for(lambda: all(r["JobRunState"] not in ACTIVE_RUN_STATES for r in p.glue_runs()), 120, "runs to end")
    runs = [r for r in p.glue_runs() if r["StartedOn"].timestamp() >= started]
    assert {r["JobRunState"] for r in runs} == {"SUCCEEDED"}  # none failed for concurrency
    sweep = p.invoke_schedule()
    assert sweep["work"] == 0 and p.keys("source/") == []
    assert p.audit.tallies_disagree() == {}  # twenty concurrent writers on one day's tally: none lost


@pytest.mark.embedded_only  # the Lambda's hand-off to Glue: the same code and emulator (MiniStack) on both stacks
def test_a_burst_of_fifty_files_holds_no_lambda_waiting_for_glue(glueline, tmp_path):
    """Fifty files at once while the job's one run slot is taken: each invocation admits its file and
    hands it to Glue at once — the run it needs waits in Glue's queue, not the Lambda (on AWS a waiting
    invocation holds a slot of the function's reserved concurrency, and the burst is throttled behind
    it) — and the files join a queued run rather than queueing one each."""
    p = glueline
    started = time.time()
    runs_before = {run["Id"] for run in p.glue_runs()}
    paths = []
    for i in range(50):
        path = tmp_path / f"burst_{i:02}.csv"
        write_file(path, 20, seed=500 + i, dirty=0.0, first_id=50_000_000 + i * 1000)
        paths.append(path)
    records = p.wait(p.upload(*paths), timeout=600)
    assert {r.status for r in records} == {Status.COMPLETED}
    logged = [
        m.split("glueline intake: ", 1)[1] for m in p.lambda_log_messages(since=started) if "glueline intake: " in m
    ]
    # The stack is shared: an invocation of an earlier test's file may log in this window too.
    burst = {path.name for path in paths}
    results = [r for r in map(json.loads, logged) if {key.removeprefix("source/") for key in r["files"]} <= burst]
    # MiniStack keeps the log lines of most invocations of such a burst, not always all (their REPORT
    # lines, yes): each one kept is checked, and most must be.
    reported = {key.removeprefix("source/") for r in results for key in r["files"]}
    assert len(reported) >= 40, len(reported)
    worked, handing_over = (sorted(r[key] for r in results) for key in ("seconds", "glue_seconds"))
    # Handing the files to Glue took up to a minute when the Lambda waited for the slot; it now costs a
    # few calls. (An invocation's whole time, ``worked``, is the machine's here: fifty cold workers on
    # two cores take 5-15 s each; on AWS each has its own.)
    assert handing_over[-1] < 5.0, (worked[-5:], handing_over[-5:])
    runs = [run for run in p.glue_runs() if run["Id"] not in runs_before]
    assert len(runs) <= 10, f"{len(runs)} Glue runs for 50 files"
    print(
        f"50 files: {len(runs)} Glue runs; slowest invocation {worked[-1]} s, of it handing over {handing_over[-1]} s"
    )


def test_a_database_outage_during_a_burst_costs_no_file_an_attempt(glueline, tmp_path):
    """Twenty files arrive while the database is down: each run that takes them fails to reach it, which
    is not the files' fault. Once it is back, the sweep loads every one; none is REJECTED."""
    p = glueline
    paths, expected = [], {}
    for i in range(20):
        path = tmp_path / f"outage_{i:02}.csv"
        expected[path.name] = write_file(path, 200, seed=300 + i, dirty=0.0, first_id=40_000_000 + i * 1000)
        paths.append(path)
    p.faults.stop_database()
    try:
        uploads = p.upload(*paths)
        failed = p.wait(uploads, timeout=240)
        assert {r.status for r in failed} == {Status.FAILED}
        assert {r.attempts for r in failed} == {0}  # given back: the outage is not the files' fault
        assert all("unreachable" in r.error_message for r in failed), failed[0].error_message
        retries = [dataclasses.replace(u, sent_at=utc_now()) for u in uploads]
        p.invoke_schedule()  # the database is still down: the sweep's run fails the same way
        assert {r.status for r in p.wait(retries, timeout=240)} == {Status.FAILED}
    finally:
        p.faults.start_database()
    retries = [dataclasses.replace(u, sent_at=utc_now()) for u in uploads]
    p.invoke_schedule()
    loaded = p.wait(retries, timeout=240)
    assert {r.status for r in loaded} == {Status.COMPLETED}
    assert {r.file_name: r.counts for r in loaded} == expected
    assert p.query("SELECT count(*) FROM transactions")[0][0] == sum(c.rows_loaded for c in expected.values())
    assert p.audit.tallies_disagree() == {}


def test_emulator_restarted_between_upload_and_processing(glueline):
    """The upload's event is lost (S3 rule off, then the emulator restarts); the daily sweep finds the
    file in the restored state and processes it."""
    p = glueline
    events = p.client("events")
    events.disable_rule(Name=p.settings.s3_rule)
    try:
        (upload,) = p.upload(SAMPLES / "transactions_2024-07-14.csv")
        p.restart_emulator()
        assert p.keys("source/") == ["source/transactions_2024-07-14.csv"]  # the object survived
        assert p.audit.get(upload.file_id) is None  # and was never announced
        summary = p.invoke_schedule()
        assert summary["files"]["source/transactions_2024-07-14.csv"] == Status.PENDING
        (record,) = p.wait([upload])
    finally:
        events.enable_rule(Name=p.settings.s3_rule)
    assert record.status == Status.COMPLETED and record.counts.rows_loaded == 9
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 9
    assert p.audit.tallies_disagree() == {}  # kept across the restart with the files


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_a_file_that_keeps_failing_is_given_up_after_max_attempts(glueline):
    p = glueline
    p.execute("ALTER TABLE transactions ADD CONSTRAINT no_329322 CHECK (transactionid <> 329322)")
    try:
        (upload,) = p.upload(SAMPLES / "transactions_2024-07-14.csv")
        (record,) = p.wait([upload])
        assert (record.status, record.attempts) == (Status.FAILED, 1)
        record = retry_by_schedule(p, upload)
        assert (record.status, record.attempts) == (Status.FAILED, 2)
        record = retry_by_schedule(p, upload)
    finally:
        p.execute("ALTER TABLE transactions DROP CONSTRAINT IF EXISTS no_329322")
    assert (record.status, record.attempts) == (Status.REJECTED, p.settings.max_attempts)
    assert record.error_message.startswith("gave up after 3 attempt(s); last error:")
    assert "no_329322" in record.error_message
    assert record.final_key == "rejected/transactions_2024-07-14.csv"
    assert p.keys("source/") == [] and p.query("SELECT count(*) FROM transactions")[0][0] == 0
    summary = p.invoke_schedule()
    assert summary["work"] == 0 and summary["glue_job_run_id"] is None  # REJECTED is final
    assert p.audit.tallies_disagree() == {}


def rows(first_id: int, count: int, amount: str = "1.00") -> bytes:
    return b"".join(
        b"%d,ACC1,7,2024-07-13,deposit,%s,USD,2.00,3,4,row\n" % (i, amount.encode())
        for i in range(first_id, first_id + count)
    )


def test_a_file_overwritten_after_its_load_and_before_its_move_keeps_its_loaded_bytes(glueline, tmp_path):
    """A file's rows are committed, then new content is uploaded under its key before the run moves it:
    the loaded version still ends in processed/ (from the run's own copy of it), COMPLETED, and the new
    upload is a file of its own. The window is held open: the run loads a second file with it, whose
    merge waits for a row this test keeps locked, and files are settled once the batch is merged."""
    p = glueline
    header = (",".join(COLUMNS) + "\n").encode()
    (held,) = p.wait([p.upload_bytes(tmp_path, "held.csv", header + rows(90_000_000, 1))])
    assert held.status == Status.COMPLETED, held.error_message
    loaded = header + rows(91_000_000, 50)
    with p.open_transaction("SELECT 1 FROM transactions WHERE transactionid = 90000000 FOR UPDATE"):
        first = p.upload_bytes(tmp_path, "first.csv", loaded)  # merged first (uploaded first, or by name)
        waiting = p.upload_bytes(tmp_path, "waiting.csv", header + rows(90_000_000, 1, amount="2.00"))
        wait_for(lambda: recorded_load(p.db, p.settings.table, first.file_id), LOADING_STARTS_WITHIN, "first's load")
        newer = p.upload_bytes(tmp_path, "first.csv", header + rows(92_000_000, 50))  # before its move
    first_record, newer_record, waiting_record = p.wait([first, newer, waiting])
    # One batch, so first.csv was settled once waiting.csv's merge could go on: after the new upload.
    assert first_record.glue_job_id == waiting_record.glue_job_id and waiting_record.timings["batch_files"] == 2
    assert first_record.status == Status.COMPLETED, (first_record.status, first_record.error_message)
    assert first_record.final_key == "processed/first.csv" and first_record.counts.rows_loaded == 50
    body = p.client("s3").get_object(Bucket=p.bucket, Key="processed/first.csv")["Body"].read()
    assert body == loaded  # the bytes its rows came from
    assert newer_record.status == Status.COMPLETED and newer_record.file_id != first_record.file_id
    assert newer_record.final_key == layout.disambiguated_key("processed/first.csv", newer_record.file_id)
    assert waiting_record.status == Status.COMPLETED and p.keys("source/") == []
    assert p.query("SELECT count(*) FROM transactions WHERE transactionid >= 91000000")[0][0] == 100


def test_a_move_takes_only_its_version_and_leaves_a_replacement_in_place(glueline_stack):
    """A file replaced under the same key between its claim and its move: the move must neither copy
    the new content in the old one's place nor delete it (the emulator's S3 enforces the version
    conditions as S3 does; moto does not). Keys outside source/ so that no Lambda is triggered."""
    s3, bucket, key = glueline_stack.client("s3"), glueline_stack.bucket, "moves-test/daily.csv"
    try:
        monday = s3.put_object(Bucket=bucket, Key=key, Body=b"monday")["ETag"]
        s3.put_object(Bucket=bucket, Key=key, Body=b"tuesday")
        # The move reads the claimed version's metadata first: a HEAD's 412 has no body, so no code name.
        with pytest.raises(s3.exceptions.ClientError, match=r"PreconditionFailed|\(412\)"):
            layout.move_object(s3, bucket, key, monday, 6, "moves-done/", "aaaaaaaa11")
        assert glueline_stack.keys("moves-done/") == []
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"tuesday"
    finally:
        for leftover in glueline_stack.keys("moves-test/") + glueline_stack.keys("moves-done/"):
            s3.delete_object(Bucket=bucket, Key=leftover)


@pytest.mark.embedded_only
def test_the_emulator_state_holding_secrets_is_private(glueline_stack):
    emulator_state = glueline_stack.state_dir / "emulator"
    assert emulator_state.stat().st_mode & 0o077 == 0, oct(emulator_state.stat().st_mode)
