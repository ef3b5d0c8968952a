"""Upload → S3 event → EventBridge → Lambda → Glue runner → Spark → PostgreSQL, for real."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import psycopg
import pytest

from glueline.job.load import recorded_load
from glueline.ops.uploads import Upload
from glueline.shared.audit import Status, content_identity, file_id, utc_now
from glueline.shared.contract import COLUMNS
from glueline.shared.counts import COUNT_NAMES, Counts
from glueline.shared.lifecycle import RecordedLoad

from .harness import SAMPLES, cli

EXPECTED = json.loads((SAMPLES / "expected-counts.json").read_text())
SAMPLE_FILES = sorted(SAMPLES.glob("*.csv"))


def test_sample_files_load_end_to_end(glueline):
    p = glueline
    uploads = p.upload(*SAMPLE_FILES)
    records = p.wait(uploads)

    for path, record in zip(SAMPLE_FILES, records, strict=True):
        assert record.status == Status.COMPLETED, record.error_message
        assert record.counts == Counts(**EXPECTED[path.name]), path.name
        assert record.final_key == f"processed/{path.name}"
        assert record.glue_job_id.startswith("jr_")
        assert record.processing_start_timestamp <= record.processing_end_timestamp
        assert record.integrity["HeaderOK"] is True
    assert p.keys("source/") == []
    assert p.keys("processed/") == [f"processed/{f.name}" for f in SAMPLE_FILES]

    total = sum(e["rows_loaded"] for e in EXPECTED.values())
    assert p.query("SELECT count(*) FROM transactions")[0][0] == total
    per_file = dict(p.query("SELECT file_id, count(*) FROM transactions GROUP BY file_id"))
    assert per_file == {r.file_id: r.counts.rows_loaded for r in records}
    # The load ledger, written with each file's rows: what a run completing a crashed attempt reads.
    for record in records:
        ledger = recorded_load(p.db, p.settings.table, record.file_id)
        assert ledger == RecordedLoad(record.glue_job_id, record.counts, record.reject_reasons or {})
    assert recorded_load(p.db, p.settings.table, "no-such-file") is None

    today = datetime.now(timezone.utc).date()
    rows = {
        r[0]: r
        for r in p.query(
            "SELECT transactionid, customerid, transactiondate, transactiontype, currency, transactionamount, "
            "merchantcode, description, dq_flags FROM transactions WHERE transactionid = ANY(%s)",
            [329322, 400001, 400002, 400003, 856293, 271574, 400007, 200904],
        )
    }
    assert rows[329322][1] == "N/A" and rows[329322][8] == {"customerid_filled": True}
    assert rows[400001][1] == "N/A" and rows[400001][2] == today
    assert rows[400001][8] == {"customerid_filled": True, "transactiondate_original": "2024-02-30"}
    assert rows[400002][2] == today and rows[400002][8] == {"transactiondate_original": "13/07/2024"}
    assert rows[400003][7] == "Multi-line\ndescription" and rows[400003][8] == {"transactiondate_original": ""}
    assert rows[856293][7] == 'Agent drive, "fast" lane'
    assert rows[271574][3:5] == ("withdrawal", "TND")
    assert rows[400007][5] == Decimal("25.00") and rows[400007][7] == "Second version wins"
    assert rows[200904][6] is None

    rejected = next(r for r in records if r.file_name == "transactions_2024-07-14.csv").rejected_rows_key
    body = p.client("s3").get_object(Bucket=p.bucket, Key=rejected)["Body"].read().decode()
    lines = list(csv.DictReader(io.StringIO(body)))
    assert [(r["line_number"], r["reject_reason"], r["TransactionID"]) for r in lines] == [
        ("11", "bad_transaction_amount", "400004"),
        ("12", "wrong_field_count", "400005"),
        ("13", "bad_currency", "400006"),
    ]
    assert lines[1]["raw_record"].startswith("5123,400005,")
    assert lines[0]["TransactionAmount"] == "1.234"


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_running_the_same_files_again_adds_no_rows(glueline):
    """Identical content uploaded again has the same FileID and a final outcome: it goes straight to
    processed/ as a redelivery; no run, no row changes."""
    p = glueline
    first = p.wait(p.upload(*SAMPLE_FILES))
    before = p.query("SELECT transactionid, transactionamount, customerid, loaded_at FROM transactions ORDER BY 1")
    runs = len(p.glue_runs())
    second = p.wait(p.upload(*SAMPLE_FILES))
    assert [r.status for r in second] == [Status.COMPLETED] * len(SAMPLE_FILES)
    assert [r.file_id for r in second] == [r.file_id for r in first]  # same content, same FileID
    assert [r.redeliveries for r in second] == [1] * len(SAMPLE_FILES)
    assert [r.counts for r in second] == [r.counts for r in first]
    assert (
        p.query("SELECT transactionid, transactionamount, customerid, loaded_at FROM transactions ORDER BY 1") == before
    )
    assert p.keys("source/") == [] and len(p.glue_runs()) == runs
    assert p.keys("processed/") == [f"processed/{f.name}" for f in SAMPLE_FILES]


MIB = 1024 * 1024


def multipart_put(s3, bucket: str, key: str, body: bytes, part_size: int) -> None:
    """Upload in parts with a full-object CRC64NVME checksum, as the AWS CLI and SDKs do by default."""
    full_object = {"ChecksumAlgorithm": "CRC64NVME", "ChecksumType": "FULL_OBJECT"}
    upload = s3.create_multipart_upload(Bucket=bucket, Key=key, **full_object)["UploadId"]
    parts = []
    for number, start in enumerate(range(0, len(body), part_size), start=1):
        chunk = body[start : start + part_size]
        answer = s3.upload_part(Bucket=bucket, Key=key, UploadId=upload, PartNumber=number, Body=chunk)
        parts.append({"PartNumber": number, "ETag": answer["ETag"]})
    s3.complete_multipart_upload(
        Bucket=bucket, Key=key, UploadId=upload, MultipartUpload={"Parts": parts}, ChecksumType="FULL_OBJECT"
    )


@pytest.mark.embedded_only  # the compose stack's upstream MiniStack gives multipart uploads no full-object checksum
def test_the_same_bytes_uploaded_with_other_parts_are_one_file(glueline, tmp_path):
    """Another part size gives the same bytes another ETag, not another full-object checksum (what the
    FileID rests on): uploaded again, an 11 MiB file is a redelivery — one item, one copy in processed/,
    no second run."""
    p = glueline
    s3 = p.client("s3")
    row = ",ACC1,7,2024-07-13,deposit,1.00,USD,2.00,3,4," + "x" * 200 + "\n"
    body = (",".join(COLUMNS) + "\n").encode() + b"".join(b"%d%s" % (i, row.encode()) for i in range(1, 44_000))
    assert 10 * MIB < len(body) < 11 * MIB
    key = "source/big.csv"
    multipart_put(s3, p.bucket, key, body, 5 * MIB)
    head = s3.head_object(Bucket=p.bucket, Key=key, ChecksumMode="ENABLED")
    assert head["ETag"].endswith('-3"') and head["ChecksumType"] == "FULL_OBJECT"
    fid = file_id(p.bucket, key, content_identity(head, len(body)), p.rows_target)
    (first,) = p.wait([Upload(tmp_path / "big.csv", key, fid, p.rows_target, utc_now())])
    assert first.status == Status.COMPLETED, first.error_message
    runs = len(p.glue_runs())
    sent_at = utc_now()
    multipart_put(s3, p.bucket, key, body, 6 * MIB)
    (second,) = p.wait([Upload(tmp_path / "big.csv", key, fid, p.rows_target, sent_at)])
    assert (second.status, second.redeliveries, second.counts) == (Status.COMPLETED, 1, first.counts)
    assert [r.file_id for r in p.audit.all() if r.source_key == key] == [fid]
    assert p.keys("source/") == [] and p.keys("processed/") == ["processed/big.csv"] and len(p.glue_runs()) == runs


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_reprocessing_the_same_rows_never_changes_the_row_count(glueline, tmp_path):
    """The same content under another name is another file: loaded again, every row an update."""
    p = glueline
    (first,) = p.wait(p.upload(SAMPLE_FILES[1]))
    before = p.query("SELECT count(*), sum(transactionamount) FROM transactions")
    copy = tmp_path / "transactions_2024-07-13-resent.csv"
    copy.write_bytes(SAMPLE_FILES[1].read_bytes())
    (second,) = p.wait(p.upload(copy))
    assert second.status == Status.COMPLETED and second.file_id != first.file_id
    assert second.counts == first.counts
    assert p.query("SELECT count(*), sum(transactionamount) FROM transactions") == before
    assert (
        p.query("SELECT count(*) FROM transactions WHERE file_id = %s", second.file_id)[0][0]
        == first.counts.rows_loaded
    )


def test_status_filters_and_a_runs_logs_from_the_cli(glueline):
    """status --status/--since/--file select audit items; logs --run prints the Glue run's output from
    CloudWatch Logs (the emulator's, where the runner writes as Glue does)."""
    p = glueline
    records = p.wait(p.upload(*SAMPLE_FILES))
    assert {r.status for r in records} == {Status.COMPLETED}

    def names(*args: str) -> list[str]:
        result = cli(p, "status", "--json", *args)
        assert result.returncode == 0, result.stderr
        return sorted(f["file_name"] for f in json.loads(result.stdout)["files"])

    every = sorted(path.name for path in SAMPLE_FILES)
    one = SAMPLE_FILES[1].name
    assert names() == every and names("--status", "completed") == every and names("--status", "FAILED") == []
    assert names("--file", one[-12:]) == [one] and names("--status", "COMPLETED", "--file", one) == [one]
    first = datetime.fromisoformat(min(r.upload_timestamp for r in records))
    last = datetime.fromisoformat(max(r.upload_timestamp for r in records))
    assert names("--since", first.date().isoformat()) == every and names("--since", first.isoformat()) == every
    after_last = (last + timedelta(seconds=1)).astimezone(timezone(timedelta(hours=2))).isoformat()  # +02:00
    assert names("--since", after_last) == [] and names("--since", after_last, "--status", "COMPLETED") == []
    wrong = cli(p, "status", "--status", "DONE")
    assert wrong.returncode == 2 and "PENDING" in wrong.stderr
    assert cli(p, "status", "--since", "yesterday").returncode == 2

    record = next(r for r in records if r.file_name == one)
    logs = cli(p, "logs", "--run", record.glue_job_id)
    assert logs.returncode == 0, logs.stderr
    c = record.counts
    assert f"{one}: COMPLETED read={c.rows_read} loaded={c.rows_loaded}" in logs.stdout
    assert f"run {record.glue_job_id}: SUCCEEDED" in logs.stderr
    followed = cli(p, "logs", "--run", record.glue_job_id, "--follow")  # a finished run: returns at once
    assert followed.returncode == 0 and followed.stdout == logs.stdout
    unknown = cli(p, "logs", "--run", "jr_" + "0" * 64)
    assert unknown.returncode == 2 and "no run jr_000" in unknown.stderr


@pytest.mark.embedded_only  # the CLI's report: the same code on both stacks (compose: test_compose runs the CLI)
def test_glueline_run_cli_reports_json(glueline, tmp_path):
    p = glueline
    result = cli(p, "run", str(SAMPLES), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True and report["totals"]["completed"] == len(SAMPLE_FILES)
    assert report["target"] == p.rows_target and report["target_table"] == "public.transactions"
    assert report["table_rows"] == sum(e["rows_loaded"] for e in EXPECTED.values())
    for entry in report["files"]:
        assert {k: entry[k] for k in COUNT_NAMES} == EXPECTED[entry["file_name"]]
        assert entry["status"] == "COMPLETED" and entry["final_key"] == f"processed/{entry['file_name']}"
        assert entry["target"] == p.rows_target
    assert p.db.password not in result.stdout + result.stderr


@pytest.mark.embedded_only  # the other database is given by a URL both the CLI and the job reach
def test_the_report_names_the_database_that_holds_the_rows(glueline):
    """Files already loaded into one database are loaded into another one the project is pointed at,
    and the report says which database holds the rows; loading the same content into the same database
    again adds nothing."""
    p = glueline
    with psycopg.connect(**p.db.connect_kwargs(), autocommit=True) as conn:
        conn.execute("DROP DATABASE IF EXISTS fresh_db")
        conn.execute("CREATE DATABASE fresh_db")
    fresh = dataclasses.replace(p.db, dbname="fresh_db")
    fresh_target = fresh.target("public.transactions")
    total = sum(e["rows_loaded"] for e in EXPECTED.values())
    try:
        first = cli(p, "run", "--json")  # the samples, into the embedded database
        assert first.returncode == 0, first.stderr
        assert json.loads(first.stdout)["target"] == p.rows_target

        elsewhere = cli(p, "run", "--db-url", fresh.url(with_password=True), "--json")
        assert elsewhere.returncode == 0, elsewhere.stderr
        report = json.loads(elsewhere.stdout)
        assert report["target"] == fresh_target and report["table_rows"] == total
        assert {f["target"] for f in report["files"]} == {fresh_target}
        assert [f["redeliveries"] for f in report["files"]] == [0, 0, 0]  # loaded, not redelivered
        assert report["totals"]["rows_loaded"] == total
        with psycopg.connect(**fresh.connect_kwargs()) as conn:
            rows = conn.execute("SELECT count(*), count(DISTINCT file_id) FROM transactions").fetchone()
        assert rows == (total, len(SAMPLE_FILES))
        assert p.query("SELECT count(*) FROM transactions")[0][0] == total  # the first database is untouched

        runs = len(p.glue_runs())
        again = json.loads(cli(p, "run", "--db-url", fresh.url(with_password=True), "--json").stdout)
        assert [f["redeliveries"] for f in again["files"]] == [1, 1, 1] and again["table_rows"] == total
        assert len(p.glue_runs()) == runs  # a true redelivery: no Glue run, no row

        status = json.loads(cli(p, "status", "--json").stdout)
        assert {f["target"] for f in status["files"]} == {p.rows_target, fresh_target}
        assert fresh.password not in elsewhere.stdout + elsewhere.stderr
    finally:
        p.deploy()  # the stack's database again
        with psycopg.connect(**p.db.connect_kwargs(), autocommit=True) as conn:
            conn.execute("DROP DATABASE IF EXISTS fresh_db")


@pytest.mark.embedded_only  # the Lambda's rules; on its runtime's Python: test_lambda_runtime
def test_a_file_without_a_required_column_is_rejected_by_the_lambda(glueline, tmp_path):
    p = glueline
    header = [c for c in COLUMNS if c != "Currency"]
    upload = p.upload_bytes(tmp_path, "no_currency.csv", (",".join(header) + "\n1,2,3\n").encode())
    (record,) = p.wait([upload], timeout=60)
    assert record.status == Status.REJECTED
    assert "Currency" in record.error_message
    assert record.final_key == "rejected/no_currency.csv" and record.glue_job_id is None
    assert p.keys("source/") == [] and p.keys("rejected/") == ["rejected/no_currency.csv"]


@pytest.mark.embedded_only  # the Lambda's and the job's rules: the same code on both stacks
def test_a_failed_load_leaves_no_rows_keeps_the_file_and_is_retried(glueline):
    """The merge fails inside its transaction (a CHECK constraint one row violates): nothing of that
    file is loaded, the other file of the batch is, and the next trigger loads it after the fix."""
    p = glueline
    p.execute("ALTER TABLE transactions ADD CONSTRAINT no_329322 CHECK (transactionid <> 329322)")
    try:
        bad, good = SAMPLES / "transactions_2024-07-14.csv", SAMPLES / "transactions_2024-07-12.csv"
        uploads = p.upload(bad, good)
        failed, completed = p.wait(uploads)
        assert failed.status == Status.FAILED and "no_329322" in failed.error_message
        assert completed.status == Status.COMPLETED
        assert p.query("SELECT count(*) FROM transactions WHERE file_id = %s", failed.file_id)[0][0] == 0
        assert p.keys("source/") == ["source/transactions_2024-07-14.csv"]
        run = p.finished_run(failed.glue_job_id)
        assert run["JobRunState"] == "FAILED" and "no_329322" in run["ErrorMessage"]
        assert p.query("SELECT count(*) FROM pg_tables WHERE tablename LIKE '\\_stage\\_%%'")[0][0] == 0
    finally:
        p.execute("ALTER TABLE transactions DROP CONSTRAINT IF EXISTS no_329322")

    retry = dataclasses.replace(uploads[0], sent_at=utc_now())  # wait for an outcome newer than FAILED
    summary = p.invoke_schedule()  # the daily sweep retries what is still in source/
    assert summary["files"]["source/transactions_2024-07-14.csv"] == Status.FAILED and summary["work"] == 1
    (retried,) = p.wait([retry])
    assert retried.status == Status.COMPLETED and retried.attempts == 2
    assert p.query("SELECT count(*) FROM transactions WHERE file_id = %s", retried.file_id)[0][0] == 9


def test_the_scheduled_rule_fires_the_same_lambda(glueline, tmp_path):
    """With S3 events switched off, a file dropped into source/ is found by the schedule's sweep."""
    p = glueline
    events = p.client("events")
    with p.deployed_with(schedule_expression="rate(1 minute)"):  # after it: the daily cron, S3 rule enabled
        events.disable_rule(Name=p.settings.s3_rule)
        started = time.time()
        (upload,) = p.upload(SAMPLES / "transactions_2024-07-14.csv")
        (record,) = p.wait([upload], timeout=200)
    assert record.status == Status.COMPLETED and record.counts.rows_loaded == 9
    messages = p.lambda_log_messages(since=started - 1)
    sweeps = [m for m in messages if '"sweep": true' in m and "source/transactions_2024-07-14.csv" in m]
    assert sweeps, "no scheduled invocation of the Lambda admitted the file"
    assert events.describe_rule(Name=p.settings.s3_rule)["State"] == "ENABLED"
    assert events.describe_rule(Name=p.settings.schedule_rule)["ScheduleExpression"] == "cron(0 8 * * ? *)"


def test_no_secret_in_environment_arguments_audit_reports_or_logs(glueline, tmp_path):
    """Greps for the database password everywhere an operator or an attacker would look, after files
    that load, reject rows, fail and are refused have gone through the pipeline."""
    p = glueline
    refused = tmp_path / "refused.csv"
    refused.write_text("TransactionID,Amount\n1,2\n")
    p.execute("ALTER TABLE transactions ADD CONSTRAINT no_329322 CHECK (transactionid <> 329322)")
    try:
        outcomes = p.wait(p.upload(*SAMPLE_FILES, refused))
    finally:
        p.execute("ALTER TABLE transactions DROP CONSTRAINT IF EXISTS no_329322")
    assert {r.status for r in outcomes} == {Status.COMPLETED, Status.FAILED, Status.REJECTED}
    password = p.db.password
    assert len(password) >= 16
    places: dict[str, str] = {}
    function = p.client("lambda").get_function(FunctionName=p.settings.lambda_function)["Configuration"]
    places["lambda environment"] = json.dumps(function.get("Environment"))
    places["glue job"] = json.dumps(p.client("glue").get_job(JobName=p.settings.glue_job)["Job"], default=str)
    places["glue runs"] = json.dumps(p.glue_runs(), default=str)
    places["audit items"] = json.dumps([r.as_dict() for r in p.audit.all()])
    for args in (["status"], ["status", "--json"]):
        result = cli(p, *args)
        places[f"glueline {' '.join(args)}"] = result.stdout + result.stderr
    places["lambda logs"] = "\n".join(p.lambda_log_messages())
    places["rejected rows"] = "\n".join(
        p.client("s3").get_object(Bucket=p.bucket, Key=key)["Body"].read().decode() for key in p.keys("rejected/rows/")
    )
    logs = p.log_texts()
    assert len([text for text in logs.values() if text]) >= 2, {where: len(text) for where, text in logs.items()}
    places.update(logs)
    assert "glueline intake" in places["lambda logs"] and places["glue runs"] != "[]"
    leaks = [where for where, text in places.items() if password in text]
    assert leaks == []
