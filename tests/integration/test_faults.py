"""Faults on the real stack: the database or the job dying mid-load, duplicate announcements, a burst of
uploads, an emulator restart, a file that never loads. No row is lost or duplicated."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest

from glueline.local.samples import write_file
from glueline.polling import wait_for
from glueline.shared import layout
from glueline.shared.audit import Status, utc_now
from glueline.shared.events import object_created_event, scheduled_event

from .conftest import SAMPLES


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


def test_postgres_killed_mid_load(clean_pipeline, big_file):
    p = clean_pipeline
    path, counts = big_file
    (upload,) = p.upload(path)
    wait_for(lambda: copy_running(p), 120, "the COPY into staging", interval=0.02)
    p.stop_database(crash=True)  # in the middle of the COPY
    try:
        (failed,) = p.wait([upload], timeout=180)
    finally:
        p.start_database()
    assert failed.status == Status.FAILED and failed.attempts == 1
    assert "OperationalError" in failed.error_message or "connection" in failed.error_message.lower()
    assert p.query("SELECT count(*) FROM transactions")[0][0] == 0
    assert p.keys("source/") == ["source/big.csv"]

    loaded = retry_by_schedule(p, upload)
    assert loaded.status == Status.COMPLETED and loaded.attempts == 2
    assert loaded.counts == counts
    assert p.query("SELECT count(*), count(DISTINCT transactionid) FROM transactions")[0] == (
        counts.rows_loaded,
        counts.rows_loaded,
    )


@pytest.mark.embedded
def test_glue_job_killed_mid_run(clean_pipeline, big_file):
    p = clean_pipeline
    path, counts = big_file
    (upload,) = p.upload(path)
    processing = wait_for(
        lambda: (r := p.audit.get(upload.file_id)) and r.status == Status.PROCESSING and copy_running(p) and r,
        120,
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


def test_duplicate_announcements_and_a_burst_of_twenty(clean_pipeline, tmp_path):
    p = clean_pipeline
    expected = {}
    for i in range(20):
        path = tmp_path / f"burst_{i:02d}.csv"
        expected[path.name] = write_file(path, 60, seed=i, dirty=0.1, first_id=20_000_000 + i * 1000)
    paths = sorted(tmp_path.glob("burst_*.csv"))
    lam = p.client("lambda")
    started = time.time()

    def announce_again(upload):  # a re-sent S3 event and an early schedule, racing the real event
        schedule = scheduled_event("000000000000", p.info.region, p.settings.schedule_rule)
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
    wait_for(lambda: all(r["JobRunState"] != "RUNNING" for r in p.glue_runs()), 120, "runs to end")
    runs = [r for r in p.glue_runs() if r["StartedOn"].timestamp() >= started]
    assert {r["JobRunState"] for r in runs} == {"SUCCEEDED"}  # none failed for concurrency
    sweep = p.invoke_schedule()
    assert sweep["work"] == 0 and p.keys("source/") == []


def test_a_database_outage_during_a_burst_costs_no_file_an_attempt(clean_pipeline, tmp_path):
    """Twenty files arrive while the database is down: each run that takes them fails to reach it, which
    is not the files' fault. Once it is back, the sweep loads every one; none is REJECTED."""
    p = clean_pipeline
    paths, expected = [], {}
    for i in range(20):
        path = tmp_path / f"outage_{i:02}.csv"
        expected[path.name] = write_file(path, 200, seed=300 + i, dirty=0.0, first_id=40_000_000 + i * 1000)
        paths.append(path)
    p.stop_database()
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
        p.start_database()
    retries = [dataclasses.replace(u, sent_at=utc_now()) for u in uploads]
    p.invoke_schedule()
    loaded = p.wait(retries, timeout=240)
    assert {r.status for r in loaded} == {Status.COMPLETED}
    assert {r.file_name: r.counts for r in loaded} == expected
    assert p.query("SELECT count(*) FROM transactions")[0][0] == sum(c.rows_loaded for c in expected.values())


def test_emulator_restarted_between_upload_and_processing(clean_pipeline):
    """The upload's event is lost (S3 rule off, then the emulator restarts); the daily sweep finds the
    file in the restored state and processes it."""
    p = clean_pipeline
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


def test_a_file_that_keeps_failing_is_given_up_after_max_attempts(clean_pipeline):
    p = clean_pipeline
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


def test_a_move_takes_only_its_version_and_leaves_a_replacement_in_place(pipeline):
    """A file replaced under the same key between its claim and its move: the move must neither copy
    the new content in the old one's place nor delete it (the emulator's S3 enforces the version
    conditions as S3 does; moto does not). Keys outside source/ so that no Lambda is triggered."""
    s3, bucket, key = pipeline.client("s3"), pipeline.bucket, "moves-test/daily.csv"
    try:
        monday = s3.put_object(Bucket=bucket, Key=key, Body=b"monday")["ETag"]
        s3.put_object(Bucket=bucket, Key=key, Body=b"tuesday")
        with pytest.raises(s3.exceptions.ClientError, match="PreconditionFailed"):
            layout.move_object(s3, bucket, key, monday, 6, "moves-done/", "aaaaaaaa11")
        assert pipeline.keys("moves-done/") == []
        assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == b"tuesday"
    finally:
        for leftover in pipeline.keys("moves-test/") + pipeline.keys("moves-done/"):
            s3.delete_object(Bucket=bucket, Key=leftover)


@pytest.mark.embedded
def test_the_emulator_state_holding_secrets_is_private(pipeline):
    emulator_state = pipeline.state_dir / "emulator"
    assert emulator_state.stat().st_mode & 0o077 == 0, oct(emulator_state.stat().st_mode)
