"""The console's data layer and pages against moto (the real boto3 clients, moto's models): what each
page reads, filters, sorts and pages, the download of rejected rows, that a file's name or error is
shown as text, never as markup, and whom the console answers (its own names) and when it acts (not on
a real account it was not let act on)."""

from __future__ import annotations

import re
import urllib.request
from datetime import datetime, timedelta, timezone

import boto3
import pytest

from glueline.console.app import Environment, create_app
from glueline.console.data import PAGE_SIZE, ActionRefused, ConsoleData, FileFilter, timeline
from glueline.console.server import serving
from glueline.shared.audit import AuditRecord, Status, event, to_timestamp
from glueline.shared.counts import Counts
from glueline.shared.gluerun import OUTPUT_GROUP

from ..conftest import BUCKET, JOB, TARGET

NOW = datetime.now(timezone.utc)
HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>.csv'
MOTO = Environment("moto", "123456789012", "us-east-1", None)
ON_AWS = Environment("configured AWS environment (prod)", "210987654321", "eu-west-1", "prod")


def record(fid: str, name: str, uploaded: datetime, status: str = Status.COMPLETED, **fields) -> AuditRecord:
    return AuditRecord(
        fid, name, BUCKET, f"source/{name}", '"e"', 100, to_timestamp(uploaded), TARGET, status, **fields
    )


@pytest.fixture
def console(aws):
    glue = boto3.client("glue")
    glue.create_job(Name=JOB, Role="arn:aws:iam::123456789012:role/r", Command={"Name": "glueetl"})
    sweeps: list[str] = []
    logs = boto3.client("logs")
    data = ConsoleData(
        aws.audit, glue, aws.s3, logs, JOB, "public.transactions", lambda: 436, lambda: sweeps.append("x")
    )
    data.sweeps = sweeps
    return data, aws


def test_the_overview_counts_by_status_sums_today_and_puts_failures_first(console):
    data, aws = console
    yesterday = NOW - timedelta(days=1, hours=1)
    aws.audit.create(record("old", "old.csv", yesterday, counts=Counts(1000, 1000, 0, 0)))
    aws.audit.create(record("a", "a.csv", NOW, counts=Counts(200, 191, 5, 4, 4, 6)))
    aws.audit.create(record("b", "b.csv", NOW, counts=Counts(13, 9, 3, 1, 2, 3)))
    aws.audit.create(record("f", "f.csv", NOW, Status.FAILED, error_message="database refused", attempts=1))
    aws.audit.create(record("r", "r.csv", NOW, Status.REJECTED, error_message="no header"))
    data.glue.start_job_run(JobName=JOB)

    o = data.overview(now=NOW)
    assert o.by_status == {"COMPLETED": 3, "FAILED": 1, "PENDING": 0, "PROCESSING": 0, "REJECTED": 1}
    assert o.today == Counts(213, 200, 8, 5, 6, 9) and o.today_files == 4
    assert sorted(r.file_id for r in o.attention) == ["f", "r"]
    assert len(o.runs) == 1 and o.runs[0]["id"].startswith("jr_") and o.table_rows == 436


def test_files_are_filtered_sorted_and_paged(console, monkeypatch):
    data, aws = console
    uploaded = {f"f{i:03d}": NOW - timedelta(hours=i) for i in range(PAGE_SIZE + 20)}  # over three or four days
    for i, (fid, moment) in enumerate(uploaded.items()):
        aws.audit.create(record(fid, f"daily_{i:03d}.csv", moment, Status.FAILED if i % 10 == 0 else Status.COMPLETED))
    days_read: list[str] = []
    find = aws.audit.find
    monkeypatch.setattr(aws.audit, "find", lambda query, *a: days_read.append(query.day) or find(query, *a))

    first = data.files(FileFilter())  # newest first, a day at a time from the day index, counted by the tallies
    assert (first.total, first.has_next, len(first.records)) == (PAGE_SIZE + 20, True, PAGE_SIZE)
    assert [r.file_id for r in first.records] == [f"f{i:03d}" for i in range(PAGE_SIZE)]
    days = sorted({moment.date().isoformat() for moment in uploaded.values()}, reverse=True)
    assert days_read == [day for day in days if day >= uploaded[f"f{PAGE_SIZE:03d}"].date().isoformat()]
    days_read.clear()
    second = data.files(FileFilter(page=2))
    assert [r.file_id for r in second.records] == [f"f{i:03d}" for i in range(PAGE_SIZE, PAGE_SIZE + 20)]
    assert not second.has_next and days[0] not in days_read  # whole days before the page: skipped unread
    oldest = data.files(FileFilter(descending=False))
    assert oldest.records[0].file_id == f"f{PAGE_SIZE + 19:03d}" and oldest.total == PAGE_SIZE + 20
    failed = data.files(FileFilter(status=Status.FAILED))
    assert [r.file_id for r in failed.records] == [f"f{i:03d}" for i in range(0, PAGE_SIZE + 20, 10)]
    assert failed.total == 7 and not failed.has_next
    named = data.files(FileFilter(name="_0"))  # not countable: read until the page is full
    assert (named.total, named.has_next, len(named.records)) == (None, True, PAGE_SIZE)
    assert data.files(FileFilter(page=9)).records == []
    by_name = data.files(FileFilter(sort="name", descending=False))  # sorted here: every item read, counted
    assert (by_name.total, by_name.has_next, by_name.records[0].file_id) == (PAGE_SIZE + 20, True, "f000")
    failed = data.files(FileFilter.from_args({"status": "failed", "sort": "name", "order": "asc"}))
    assert [r.file_id for r in failed.records] == [f"f{i:03d}" for i in range(0, PAGE_SIZE + 20, 10)]
    assert [r.file_id for r in data.files(FileFilter(name="_007")).records] == ["f007"]
    today = NOW.date().isoformat()
    on_today = sum(1 for moment in uploaded.values() if moment.date() == NOW.date())
    assert data.files(FileFilter(since=today, until=today, sort="name")).total == on_today
    assert data.files(FileFilter(since=today, until=today)).total == on_today
    junk = FileFilter.from_args({"status": "DONE", "since": "yesterday", "page": "-3", "sort": "x; drop"})
    assert junk == FileFilter()


def test_a_file_page_shows_its_lifecycle_counts_and_its_rejected_rows(console):
    data, aws = console
    rows = b"TransactionID,reason\n7,TransactionAmount is not a number\n"
    aws.s3.put_object(Bucket=BUCKET, Key="rejected/rows/a.csv", Body=rows)
    aws.audit.create(
        record(
            "a",
            "a.csv",
            NOW,
            counts=Counts(200, 191, 5, 4, 4, 6),
            glue_job_id="jr_2",
            attempts=2,
            final_key="processed/a.csv",
            rejected_rows_key="rejected/rows/a.csv",
            reject_reasons={"bad_transaction_amount": 5},
            redeliveries=2,
            last_redelivery_timestamp=to_timestamp(NOW),
            history=[  # as the lifecycle writes it (tests/unit/shared/test_lifecycle.py)
                event("admitted"),
                event("claimed", GlueJobID="jr_1", Attempt=1, From=Status.PENDING),
                event(Status.FAILED, Error="OperationalError: connection refused"),
                event("claimed", GlueJobID="jr_2", Attempt=2, From=Status.FAILED),
                event(Status.COMPLETED, Key="processed/a.csv"),
            ],
        )
    )
    steps = [entry.what for entry in timeline(data.file("a"))]
    assert steps == [
        "uploaded",
        "admitted by the Lambda",
        "claimed by Glue run jr_1 (attempt 1)",
        "FAILED: OperationalError: connection refused",
        "retried: claimed by Glue run jr_2 (attempt 2)",
        "COMPLETED: moved to processed/a.csv",
        "uploaded again 2 time(s), the last one then",
    ]
    before_history = record("old", "old.csv", NOW, Status.FAILED, updated_at=to_timestamp(NOW))
    assert [entry.what for entry in timeline(before_history)] == [
        "uploaded",
        "FAILED (no history recorded for this item)",
    ]

    web = create_app(data, MOTO).test_client()
    page = web.get("/files/a").get_data(as_text=True)
    assert 'data-count="rows_rejected">5<' in page and "retried: claimed by Glue run jr_2 (attempt 2)" in page
    assert 'data-reason="bad_transaction_amount">5<' in page
    download = web.get("/files/a/rejected-rows.csv")
    assert download.status_code == 200 and download.data == rows
    assert download.headers["Content-Disposition"] == "attachment; filename=a-rejected-rows.csv"
    assert web.get("/files/nope").status_code == 404


def test_a_hostile_file_name_and_error_render_as_text(console):
    data, aws = console
    aws.audit.create(record("h", HOSTILE, NOW, Status.REJECTED, error_message="<b>bad</b> header"))
    web = create_app(data, MOTO).test_client()
    for path in ("/", "/files", "/files/h", f"/files?name={HOSTILE[:8]}"):
        response = web.get(path)
        page = response.get_data(as_text=True)
        assert response.status_code == 200, path
        assert "<script>" not in page and "<img" not in page and "<b>bad" not in page, path
        assert "default-src 'self'" in response.headers["Content-Security-Policy"]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;" in web.get("/files/h").get_data(as_text=True)


def test_a_runs_page_shows_its_arguments_but_no_secret_its_files_and_its_output(console):
    data, aws = console
    arguments = {"--FILE_IDS": "a", "--TARGET": TARGET, "--db_password": "hunter2-hunter2"}
    run_id = data.glue.start_job_run(JobName=JOB, Arguments=arguments)["JobRunId"]
    aws.audit.create(record("a", "a.csv", NOW, glue_job_id=run_id))
    aws.audit.create(record("b", "b.csv", NOW, glue_job_id="jr_other"))
    data.logs.create_log_group(logGroupName=OUTPUT_GROUP)
    data.logs.create_log_stream(logGroupName=OUTPUT_GROUP, logStreamName=run_id)
    lines = ["batch of 1 file(s): read 0.2s", "a.csv: COMPLETED read=3 loaded=3"]
    now = int(NOW.timestamp() * 1000)
    events = [{"timestamp": now + i, "message": line} for i, line in enumerate(lines)]
    data.logs.put_log_events(logGroupName=OUTPUT_GROUP, logStreamName=run_id, logEvents=events)

    run = data.run(run_id)
    assert run.arguments == {"--FILE_IDS": "a", "--TARGET": TARGET, "--db_password": "(hidden)"}
    assert [r.file_id for r in run.files] == ["a"] and run.output == lines and run.errors == []
    web = create_app(data, MOTO).test_client()
    page = web.get(f"/runs/{run_id}").get_data(as_text=True)
    assert "hunter2" not in page and "a.csv: COMPLETED read=3 loaded=3" in page
    assert ('http-equiv="refresh"' in page) == run.active  # a live run's page follows it
    assert run_id in web.get("/runs").get_data(as_text=True)
    assert web.get("/runs/jr_nope").status_code == 404


def test_retry_sweeps_for_a_failed_file_uploads_a_given_up_one_again_and_refuses_the_rest(console):
    data, aws = console
    aws.s3.put_object(Bucket=BUCKET, Key="rejected/g.csv", Body=b"TransactionID\n1\n")
    aws.audit.create(record("f", "f.csv", NOW, Status.FAILED, attempts=1))
    aws.audit.create(record("g", "g.csv", NOW, Status.REJECTED, attempts=3, gave_up=True, final_key="rejected/g.csv"))
    aws.audit.create(record("r", "r.csv", NOW, Status.REJECTED, final_key="rejected/r.csv"))
    aws.audit.create(record("c", "c.csv", NOW, Status.COMPLETED))

    assert "sweep started" in data.retry("f") and data.sweeps == ["x"]
    assert "uploaded again to source/g.csv" in data.retry("g")
    source = aws.s3.get_object(Bucket=BUCKET, Key="source/g.csv")
    assert source["Body"].read() == b"TransactionID\n1\n" and source["Metadata"] == {}
    for fid, why in (("r", "refused for its content"), ("c", "is COMPLETED"), ("nope", "no such file")):
        with pytest.raises(ActionRefused, match=why):
            data.retry(fid)
    assert data.sweeps == ["x"]


def test_actions_are_confirmed_and_refused_across_sites(console):
    data, aws = console
    aws.audit.create(record("f", "f.csv", NOW, Status.FAILED, attempts=1))
    web = create_app(data, MOTO).test_client()
    confirm = web.get("/files/f/retry").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', confirm).group(1)
    assert data.sweeps == []  # asking is not doing

    refused = [
        web.post("/files/f/retry", data={}),  # no token
        web.post("/files/f/retry", data={"csrf_token": "guess"}),
        web.post("/sweep", data={"csrf_token": token}, headers={"Sec-Fetch-Site": "cross-site"}),
        web.post("/sweep", data={"csrf_token": token}, headers={"Origin": "https://evil.example"}),
    ]
    assert [r.status_code for r in refused] == [403] * 4 and data.sweeps == []

    done = web.post("/files/f/retry", data={"csrf_token": token}, headers={"Origin": "http://localhost"})
    assert done.status_code == 303 and done.headers["Location"].endswith("/files/f") and data.sweeps == ["x"]
    assert "sweep started" in web.get("/files/f").get_data(as_text=True)  # said once, on the next page
    assert web.post("/sweep", data={"csrf_token": token}).status_code == 303 and data.sweeps == ["x", "x"]


def test_on_a_real_account_without_leave_to_act_every_page_reads_and_no_action_is_done(console):
    """Read-only is enforced, not only hidden: the actions' pages and forms answer 403, saying why."""
    data, aws = console
    aws.s3.put_object(Bucket=BUCKET, Key="rejected/g.csv", Body=b"TransactionID\n1\n")
    aws.audit.create(record("f", "f.csv", NOW, Status.FAILED, attempts=1))
    aws.audit.create(record("g", "g.csv", NOW, Status.REJECTED, attempts=3, gave_up=True, final_key="rejected/g.csv"))
    why = "read-only: AWS account 210987654321 is acted on only with --allow-actions"
    web = create_app(data, ON_AWS, read_only=why).test_client()
    for path in ("/", "/files", "/files/f", "/files/g", "/runs", "/quality"):
        page = web.get(path).get_data(as_text=True)
        assert 'data-where="account">210987654321<' in page and 'data-where="region">eu-west-1<' in page, path
        assert 'data-where="profile">prod<' in page and 'id="read-only"' in page, path
        assert 'id="retry"' not in page and "Run the sweep" not in page, path
    refused = [
        web.get("/sweep"),
        web.get("/files/f/retry"),
        web.post("/sweep", data={}),
        web.post("/files/f/retry", data={}),
        web.post("/files/g/retry", data={}),
    ]
    assert [r.status_code for r in refused] == [403] * 5
    assert all(why in r.get_data(as_text=True) for r in refused) and data.sweeps == []
    assert "Contents" not in aws.s3.list_objects_v2(Bucket=BUCKET, Prefix="source/")

    acting = create_app(data, ON_AWS).test_client()  # started with leave to act (and confirmed)
    page = acting.get("/files/f").get_data(as_text=True)
    assert 'id="retry"' in page and "Run the sweep" in page and 'id="read-only"' not in page
    assert 'data-where="account">210987654321<' in page and acting.get("/sweep").status_code == 200


def test_quality_plots_a_point_per_day_file_and_run_and_marks_a_reject_rate_far_above_its_history(console):
    data, aws = console
    days = {NOW.date()}  # the upload days of the files completed in the window
    for i in range(8):  # two days of files rejecting 1 % of their rows, then one rejecting 30 %
        uploaded = NOW - timedelta(days=1, hours=8 - i) if i < 4 else NOW - timedelta(hours=8 - i)
        days.add(uploaded.date())
        reasons = {"bad_currency": 1}
        aws.audit.create(
            record(f"f{i}", f"daily_{i}.csv", uploaded, counts=Counts(100, 98, 1, 1, 2, 3), reject_reasons=reasons)
        )
    odd_reasons = {"bad_currency": 20, "wrong_field_count": 10}
    aws.audit.create(record("odd", "odd.csv", NOW, counts=Counts(100, 70, 30, 0), reject_reasons=odd_reasons))
    aws.audit.create(record("old", "old.csv", NOW - timedelta(days=40), counts=Counts(100, 0, 100, 0)))
    aws.audit.create(record("p", "p.csv", NOW, Status.PENDING))
    data.glue.start_job_run(JobName=JOB)

    q = data.quality(days=30, now=NOW)
    points = {p.key: len(p.points) for p in q.plots}
    assert points == {
        "rows-per-day": len(days),  # 2 or 3, by the time of day: one bar per day that has files
        "reject-rate": 9,
        "reject-rate-bad_currency": 9,  # a plot per reason code seen, a point per file
        "reject-rate-wrong_field_count": 9,
        "na-rate": 9,
        "date-rate": 9,
        "file-size": 9,
        "run-seconds": len([r for r in data.runs() if r["started"] and r["seconds"] is not None]),
    }
    assert [r.file_id for r in q.outliers] == ["odd"] and q.files == 9
    rejects = next(p for p in q.plots if p.key == "reject-rate")
    assert [marked for _, _, _, marked in rejects.points].count(True) == 1
    by_field_count = next(p for p in q.plots if p.key == "reject-rate-wrong_field_count")
    assert [y for _, y, _, _ in by_field_count.points].count(by_field_count.box["bottom"]) == 8  # 0 but the odd one

    page = create_app(data, MOTO).test_client().get("/quality").get_data(as_text=True)
    assert page.count('class="point marked"') == 5  # the odd file, in each of the five per-file rate plots
    assert "Rejected for wrong_field_count per file" in page
    assert 'id="outliers"' in page and "odd.csv" in page


def test_a_page_asked_for_by_another_host_name_is_refused_and_does_nothing(console):
    """DNS rebinding: a hostile page's name bound to 127.0.0.1 reaches the console with its own name in
    ``Host``; refused, it reads no page, gets no token and starts no action."""
    data, aws = console
    aws.audit.create(record("f", "f.csv", NOW, Status.FAILED, attempts=1))
    web = create_app(data, MOTO).test_client()
    confirm = web.get("/files/f/retry").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', confirm).group(1)

    hostile = {"Host": "evil.example:8123"}
    for path in ("/", "/files/f", "/files/f/retry", "/sweep"):
        assert web.get(path, headers=hostile).status_code == 400, path
    posts = [web.post(path, data={"csrf_token": token}, headers=hostile) for path in ("/files/f/retry", "/sweep")]
    assert [r.status_code for r in posts] == [400, 400] and data.sweeps == []

    for name in ("127.0.0.1:8123", "localhost:8123", "LOCALHOST", "[::1]:8123"):
        assert web.get("/", headers={"Host": name}).status_code == 200, name
    done = web.post("/sweep", data={"csrf_token": token}, headers={"Host": "127.0.0.1:8123"})
    assert done.status_code == 303 and data.sweeps == ["x"]


def test_rejected_rows_of_a_file_named_beyond_latin_1_download_over_http(console):
    """Over the real server: a header werkzeug cannot write as Latin-1 once dropped the connection."""
    data, aws = console
    aws.s3.put_object(Bucket=BUCKET, Key="rejected/rows/u.csv", Body=b"TransactionID,reason\n")
    aws.audit.create(record("u", "transactions_ü€漢.csv", NOW, rejected_rows_key="rejected/rows/u.csv"))
    with serving(create_app(data, MOTO)) as url, urllib.request.urlopen(f"{url}files/u/rejected-rows.csv") as got:
        assert got.status == 200 and got.read() == b"TransactionID,reason\n"
        assert got.headers["Content-Disposition"] == (
            "attachment; filename=transactions_u_-rejected-rows.csv;"
            " filename*=UTF-8''transactions_%C3%BC_%E6%BC%A2-rejected-rows.csv"
        )
