"""`glueline console` as an operator uses it, in a real browser: Debian's Chromium, headless, driven by
Playwright, against the console a user starts beside the running stack after the sample files ran."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from glueline.console.server import launch, stop
from glueline.local.embedded.stack import EmbeddedStack
from glueline.settings import Settings
from glueline.shared.audit import AuditRecord, Status
from glueline.shared.counts import COUNT_NAMES

from .harness import GLUELINE, SAMPLES, user_shell

EXPECTED = json.loads((SAMPLES / "expected-counts.json").read_text())
SAMPLE_FILES = sorted(SAMPLES.glob("*.csv"))
CHROMIUM = os.environ.get("GLUELINE_CHROMIUM", "/usr/bin/chromium")
# As the probe of these machines starts it: no sandbox as root, nothing reached beyond the page.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
HOSTILE = '<img src=x onerror="alert(1)">.csv'
SCREENSHOT = (
    Path(os.environ.get("GLUELINE_CONSOLE_SCREENSHOT", "")) if os.environ.get("GLUELINE_CONSOLE_SCREENSHOT") else None
)

# On both stacks: the console reads the compose stack through the same environment resolution as the embedded one.


@pytest.fixture
def console_url(glueline_stack, tmp_path):
    """The console beside the running stack, on a free port; stopped after the test."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["GLUELINE_STATE_DIR"] = str(glueline_stack.state_dir)
    process, url = launch(env, tmp_path / "console.log")
    try:
        yield url
    finally:
        stop(process)


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail(f"Chromium is needed for the console's browser tests: apt-get install chromium ({CHROMIUM})")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def follow(page, selector: str) -> None:
    """Click what leads to another page and wait until that page has loaded: what is counted or read
    next is on it (``count()`` does not wait; a half-parsed page once counted 0 rows on a loaded CI)."""
    with page.expect_navigation():
        page.click(selector)


def test_the_console_shows_the_samples_files_counts_and_rejected_rows(glueline, tmp_path, console_url, browser):
    p = glueline
    hostile = p.upload_bytes(tmp_path, HOSTILE, b"not,a,header\n1,2,3\n")
    records = p.wait(p.upload(*SAMPLE_FILES) + [hostile])
    assert sorted(r.status for r in records) == [Status.COMPLETED] * 3 + [Status.REJECTED]

    page = browser.new_page(accept_downloads=True)
    alerts: list[str] = []
    page.on("dialog", lambda dialog: (alerts.append(dialog.message), dialog.dismiss()))
    page.goto(console_url)
    for name in COUNT_NAMES:  # today's totals: the samples, all uploaded now
        shown = page.locator(f"#today [data-count={name}]").inner_text()
        assert shown == f"{sum(e[name] for e in EXPECTED.values()):,}", name
    assert (
        page.locator("#target [data-count=table_rows]").inner_text()
        == f"{sum(e['rows_loaded'] for e in EXPECTED.values()):,}"
    )
    assert page.locator("#by-status [data-status=COMPLETED]").inner_text() == "3"
    assert page.locator("#attention").get_by_text(HOSTILE, exact=True).count() == 1  # REJECTED comes first
    if SCREENSHOT:
        page.screenshot(path=str(SCREENSHOT), full_page=True)

    follow(page, "header nav >> text=Files")
    assert page.locator("#files tbody tr").count() == 4
    page.fill("input[name=name]", "2024-07-13")
    follow(page, "form.filters button[type=submit]")
    assert page.locator("#files tbody tr").count() == 1

    follow(page, "#files .file-link")
    assert page.locator("#file-name").inner_text() == "transactions_2024-07-13.csv"
    expected = EXPECTED["transactions_2024-07-13.csv"]
    for name in COUNT_NAMES:
        assert page.locator(f"#counts [data-count={name}]").inner_text() == f"{expected[name]:,}", name
    steps = page.locator("#timeline li").all_inner_texts()
    loaded = next(r for r in records if r.file_name == "transactions_2024-07-13.csv")
    assert [step.split(" ", 2)[2] for step in steps] == [  # after the date and time
        "uploaded",
        "admitted by the Lambda",
        f"claimed by Glue run {loaded.glue_job_id} (attempt 1)",
        f"COMPLETED: moved to {loaded.final_key}",
    ]

    with page.expect_download() as download:
        page.click("#rejected-rows")
    rejected = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert len(rejected) == expected["rows_rejected"]
    reasons = Counter(code for row in rejected for code in row["reject_reason"].split(";"))
    shown = {
        element.get_attribute("data-reason"): element.inner_text()
        for element in page.locator("#reject-reasons dd").all()
    }
    assert shown == {code: f"{rows:,}" for code, rows in reasons.items()}

    follow(page, "#run-link")  # the run that loaded it: its output, from CloudWatch Logs
    assert page.locator("#run-id").inner_text() == loaded.glue_job_id
    output = page.locator("#output").inner_text()
    assert f"transactions_2024-07-13.csv: COMPLETED read={expected['rows_read']}" in output
    assert "transactions_2024-07-13.csv" in page.locator("#run-files").inner_text()

    follow(page, "header nav >> text=Data quality")
    runs = len(p.glue_runs())
    plotted = {
        key: page.locator(f"#plot-{key} circle.point").count()
        for key in ("rows-per-day", "reject-rate", "na-rate", "date-rate", "file-size", "run-seconds")
    }
    assert plotted == {
        "rows-per-day": 1,
        "reject-rate": 3,
        "na-rate": 3,
        "date-rate": 3,
        "file-size": 3,
        "run-seconds": runs,
    }
    assert page.locator("#plot-reject-rate svg").bounding_box()["height"] > 100  # drawn, not only in the markup
    codes = {code for r in records for code in r.reject_reasons}
    assert codes and {code: page.locator(f"#plot-reject-rate-{code} circle.point").count() for code in codes} == {
        code: 3 for code in codes
    }
    if SCREENSHOT:
        page.screenshot(path=str(SCREENSHOT.with_name("console-quality.png")), full_page=True)

    page.goto(console_url + "files?status=REJECTED")
    follow(page, "#files .file-link")
    assert page.locator("#file-name").inner_text() == HOSTILE  # shown as text
    assert page.locator("img[onerror]").count() == 0 and alerts == []


@pytest.mark.embedded_only  # the console's actions: the same code and clients as its pages, shown on compose
def test_retry_in_the_console_runs_a_failed_file_again_and_brings_a_given_up_one_back(glueline, console_url, browser):
    """A file FAILED (its load refused by the database). Retry… → confirmed: the sweep starts a Glue run,
    which fails it again, until its last attempt gives it up. The cause fixed, Retry… on the file given
    up uploads it again: PENDING with its attempts back, and the run that starts completes it."""
    p = glueline
    sample = SAMPLE_FILES[2]
    page = browser.new_page()

    def retry(fid: str) -> str:
        page.goto(f"{console_url}files/{fid}")
        follow(page, "#retry")
        assert page.locator("h1").inner_text() == f"Retry {sample.name}?"
        follow(page, "#confirm")
        return page.locator(".flash").inner_text()

    def settled(fid: str, done) -> AuditRecord:
        deadline = time.monotonic() + 240
        while not done(record := p.audit.get(fid)) and time.monotonic() < deadline:
            time.sleep(1)
        return record

    p.execute("ALTER TABLE transactions ADD CONSTRAINT console_retry CHECK (transactionamount < 0)")
    try:
        (failed,) = p.wait(p.upload(sample))
        assert failed.status == Status.FAILED and failed.attempts == 1
        for attempt in (2, 3):  # the default MAX_ATTEMPTS: the third failure gives the file up
            assert "sweep started" in retry(failed.file_id)
            record = settled(
                failed.file_id, lambda r, n=attempt: r.attempts == n and r.status in (Status.FAILED, Status.REJECTED)
            )
            assert record.attempts == attempt, record
    finally:
        p.execute("ALTER TABLE transactions DROP CONSTRAINT IF EXISTS console_retry")
    assert record.status == Status.REJECTED and record.gave_up and record.final_key.startswith("rejected/")

    assert "uploaded again" in retry(failed.file_id)
    record = settled(failed.file_id, lambda r: r.status == Status.COMPLETED)
    assert record.status == Status.COMPLETED and record.attempts == 1  # its attempts back
    assert {k: v for k, v in record.counts.as_dict().items()} == EXPECTED[sample.name]
    assert p.keys("processed/") == [record.final_key]  # one place: processed/, its copy in rejected/ gone
    assert [key for key in p.keys("rejected/") if not key.startswith("rejected/rows/")] == []
    page.reload()
    assert page.locator("#counts [data-count=rows_loaded]").inner_text() == str(EXPECTED[sample.name]["rows_loaded"])
    steps = [step.split(" ", 2)[2] for step in page.locator("#timeline li").all_inner_texts()]
    assert [step.split(":")[0] for step in steps] == [
        "uploaded",
        "admitted by the Lambda",
        f"claimed by Glue run {steps[2].split()[4]} (attempt 1)",
        "FAILED",
        "retried",
        "FAILED",
        "retried",
        "gave up",
        "uploaded again after it was given up",
        f"claimed by Glue run {record.glue_job_id} (attempt 1)",
        "COMPLETED",
        "uploaded again 1 time(s), the last one then",  # the upload that reopened it
    ], steps
    assert "console_retry" in steps[3] and steps[4].endswith("(attempt 2)") and steps[6].endswith("(attempt 3)")
    assert p.audit.tallies_disagree() == {}  # FAILED, REJECTED, reopened, COMPLETED: the day's tally followed


@pytest.mark.embedded_only  # about the embedded stack the console starts
def test_make_run_then_make_console_shows_the_samples(tmp_path):
    """From nothing running: `glueline run` (make run) starts a stack, loads the samples and stops it;
    `glueline console` (make console) then starts that stack again, shows what the run recorded, and
    stops it when it is stopped."""
    state, env = user_shell("console")
    try:
        run = subprocess.run([GLUELINE, "run", "--json"], capture_output=True, text=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr
        process, url = launch(env, tmp_path / "console.log")
        try:
            with urllib.request.urlopen(url + "files", timeout=60) as response:
                files = response.read().decode()
            with urllib.request.urlopen(url, timeout=60) as response:
                overview = response.read().decode()
        finally:
            stop(process)  # SIGTERM, as a CI timeout or `kill` sends it
        assert sorted(re.findall(r'class="file-link"[^>]*>([^<]+)<', files)) == [f.name for f in SAMPLE_FILES]
        loaded = sum(e["rows_loaded"] for e in EXPECTED.values())
        assert f'data-count="table_rows">{loaded}<' in overview
        assert EmbeddedStack(Settings(state_dir=state)).running() is None  # the stack it started is stopped
    finally:
        subprocess.run([GLUELINE, "clean"], capture_output=True, env=env, timeout=120)
        shutil.rmtree(state, ignore_errors=True)
