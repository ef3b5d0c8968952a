"""A Glue run's orchestration: batches, per-file outcomes, isolation of failures — with a scripted loader
and moto's S3 and DynamoDB."""

from __future__ import annotations

import math

from glueline.job.load import merge_bound
from glueline.job.run import SETTLE_SECONDS, JobRun, describe, time_left
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, Status, file_id
from glueline.shared.counts import Counts
from glueline.shared.events import ObjectRef
from glueline.shared.lifecycle import FILES_TARGET, RecordedLoad, TargetUnavailable

from ..conftest import BUCKET, GOOD_CSV, TARGET, FakeGlue
from .harness import ScriptedLoader


def upload(aws, *names: str) -> list[str]:
    lifecycle = aws.lifecycle()
    fids = []
    for name in names:
        etag = aws.put(f"source/{name}", GOOD_CSV.replace(b"x\n", name.encode() + b"\n"))
        fids.append(lifecycle.admit(ObjectRef(BUCKET, f"source/{name}", etag, len(GOOD_CSV) + len(name) - 1, "t"))[0])
    return fids


def run(aws, loader, max_attempts=3) -> tuple[list[str], list[str]]:
    """(the run's failures, what it logged)."""
    messages: list[str] = []
    job = JobRun(
        aws.lifecycle(max_attempts=max_attempts), "jr_1", lambda: loader, log=messages.append, sleep=lambda s: None
    )
    return job.run(), messages


def test_all_work_is_loaded_in_one_pass(aws):
    fids = upload(aws, "a.csv", "b.csv", "c.csv")
    loader = ScriptedLoader()
    failures, _ = run(aws, loader)
    assert failures == [] and loader.batches == [["a.csv", "b.csv", "c.csv"]]
    for fid in fids:
        record = aws.audit.get(fid)
        assert (record.status, record.counts, record.glue_job_id) == (
            Status.COMPLETED,
            Counts(1, 1, 0, 0, 0, 0),
            "jr_1",
        )
    assert aws.keys() == ["processed/a.csv", "processed/b.csv", "processed/c.csv"]


def test_an_idle_run_starts_no_loader(aws):
    def no_loader():
        raise AssertionError("nothing to load, yet the loader (Spark) was started")

    assert JobRun(aws.lifecycle(), "jr_1", no_loader, log=lambda m: None).run() == []


def test_one_file_failing_its_load_fails_alone(aws):
    a, b = upload(aws, "a.csv", "b.csv")
    failures, _ = run(aws, ScriptedLoader({"b.csv": "CheckViolation: no_1"}))
    assert failures == ["b.csv: RuntimeError: CheckViolation: no_1"]
    assert aws.audit.get(a).status == Status.COMPLETED
    failed = aws.audit.get(b)
    assert (failed.status, failed.error_message) == (Status.FAILED, "RuntimeError: CheckViolation: no_1")
    assert aws.keys() == ["processed/a.csv", "source/b.csv"]


def test_a_pass_failing_as_a_whole_is_retried_file_by_file(aws):
    a, b, c = upload(aws, "a.csv", "b.csv", "c.csv")
    loader = ScriptedLoader({"batch": "Py4JJavaError: task failed", "b.csv": "UnicodeError: bad bytes"})
    failures, messages = run(aws, loader)
    assert loader.batches == [["a.csv", "b.csv", "c.csv"], ["a.csv"], ["b.csv"], ["c.csv"]]
    assert [aws.audit.get(f).status for f in (a, b, c)] == [Status.COMPLETED, Status.FAILED, Status.COMPLETED]
    assert [aws.audit.get(f).attempts for f in (a, b, c)] == [1, 1, 1]  # one claim, one attempt
    assert failures == ["b.csv: RuntimeError: UnicodeError: bad bytes"]
    assert any("failed as a whole" in m for m in messages)


def test_the_last_failed_attempt_gives_the_file_up(aws):
    (fid,) = upload(aws, "a.csv")
    run(aws, ScriptedLoader({"a.csv": "OperationalError: down"}), max_attempts=1)
    record = aws.audit.get(fid)
    assert record.status == Status.REJECTED and record.final_key == "rejected/a.csv"
    assert record.error_message == "gave up after 1 attempt(s); last error: RuntimeError: OperationalError: down"


def test_files_that_fail_the_check_at_claim_time_are_rejected_before_the_load(aws):
    good, replaced = upload(aws, "good.csv", "replaced.csv")
    aws.put("source/replaced.csv", b"new content\n")  # replaced after it was announced: its own FileID
    bad_etag = aws.put("source/bad.csv", b"TransactionID,Amount\n1,2\n")  # admitted under an older contract
    bad = file_id(BUCKET, "source/bad.csv", bad_etag, TARGET)
    aws.audit.create(AuditRecord(bad, "bad.csv", BUCKET, "source/bad.csv", bad_etag, 24, "t", target=TARGET))
    loader = ScriptedLoader()
    run(aws, loader)
    assert loader.batches == [["good.csv"]]
    gone, refused = aws.audit.get(replaced), aws.audit.get(bad)
    assert gone.status == Status.REJECTED and "no longer there" in gone.error_message and gone.final_key is None
    assert refused.status == Status.REJECTED and "missing required column(s)" in refused.error_message
    assert aws.keys() == ["processed/good.csv", "rejected/bad.csv", "source/replaced.csv"]


def test_a_loaded_files_copy_is_kept_until_its_move(aws, tmp_path):
    """The run's copy of a loaded file outlives the load: the move needs it when the source was replaced
    meanwhile (glueline.shared.layout.move_object). It goes once the file is settled."""
    upload(aws, "a.csv")
    snapshot = str(tmp_path / "a.csv")

    class Keeping(ScriptedLoader):
        discarded: list[tuple[str, list[str]]] = []

        def load(self, files):
            results = super().load(files)
            for outcome in results.values():
                outcome.snapshot = snapshot
            return results

        def discard(self, path):
            self.discarded.append((path, aws.keys()))

    loader = Keeping()
    run(aws, loader)
    assert loader.discarded == [(snapshot, ["processed/a.csv"])]  # after the move


def test_files_announced_during_the_run_are_taken_too(aws):
    upload(aws, "a.csv")
    loader = ScriptedLoader(during=lambda: upload(aws, "b.csv"))
    run(aws, loader)
    assert loader.batches == [["a.csv"], ["b.csv"]]
    assert {r.status for r in aws.audit.all()} == {Status.COMPLETED}


def test_a_python_error_in_a_spark_task_is_described_without_the_java_trace():
    wrapped = RuntimeError(
        "An error occurred while calling o123.collect.\n: org.apache.spark.SparkException: Job aborted\n"
        'Traceback (most recent call last):\n  File "x.py", line 1\npsycopg.OperationalError: connection lost\n'
        "\tat org.apache.spark.api.python.BasePythonRunner"
    )
    assert describe(wrapped) == "psycopg.OperationalError: connection lost (in a Spark task)"
    assert describe(ValueError("plain")) == "ValueError: plain"


def test_files_still_being_announced_are_waited_for_and_loaded_in_the_same_pass(aws):
    upload(aws, "a.csv")
    for name in ("b.csv", "c.csv"):  # uploaded, their events not yet handled by the Lambda
        aws.put(f"source/{name}", GOOD_CSV.replace(b"x\n", name.encode() + b"\n"))
    naps = []

    def events_arrive(seconds):
        naps.append(seconds)
        upload(aws, "b.csv", "c.csv")  # the Lambda admits them (the same bytes: the same FileIDs)

    loader = ScriptedLoader()
    JobRun(aws.lifecycle(), "jr_1", lambda: loader, log=lambda m: None, sleep=events_arrive).run()
    assert loader.batches == [["a.csv", "b.csv", "c.csv"]] and len(naps) == 1


def test_a_lone_file_is_claimed_without_waiting(aws):
    upload(aws, "a.csv")
    loader = ScriptedLoader()
    naps = []
    JobRun(aws.lifecycle(), "jr_1", lambda: loader, log=lambda m: None, sleep=naps.append).run()
    assert loader.batches == [["a.csv"]] and naps == []


def test_a_run_takes_the_files_its_trigger_named_while_the_status_index_lags(aws, monkeypatch):
    aws.lag_index(monkeypatch)
    (fid,) = upload(aws, "a.csv")
    loader = ScriptedLoader()
    assert JobRun(aws.lifecycle(), "jr_1", lambda: loader, log=lambda m: None).run() == []
    assert loader.batches == []  # without the names the run finds nothing to do
    assert JobRun(aws.lifecycle(), "jr_2", lambda: loader, [fid], log=lambda m: None).run() == []
    assert loader.batches == [["a.csv"]] and aws.audit.get(fid).status == Status.COMPLETED


def test_errors_keep_row_data_out_of_the_audit_item():
    class UniqueViolation(Exception):
        pass

    err = UniqueViolation(
        'duplicate key value violates unique constraint "transactions_pkey"\n'
        "DETAIL:  Key (transaction_id)=(TX-4711) already exists.\n"
        'CONTEXT:  COPY transactions, line 2: "TX-4711,ACC-99,Jane Doe"'
    )
    assert describe(err) == 'UniqueViolation: duplicate key value violates unique constraint "transactions_pkey"'


def test_an_unreachable_database_costs_no_attempt(aws):
    """During an outage a burst of files must not run out of attempts and end REJECTED."""

    class Outage(ScriptedLoader):
        def load(self, files):
            self.batches.append([f.record.file_name for f in files])
            raise TargetUnavailable("the database db.example:5432/bank/public.transactions is unreachable")

    fids = upload(aws, "a.csv", "b.csv")
    for run_id in ("jr_1", "jr_2", "jr_3"):  # more failed runs than attempts allowed
        outage = Outage()
        JobRun(aws.lifecycle(max_attempts=1), run_id, lambda outage=outage: outage, log=lambda m: None).run()
        assert outage.batches == [["a.csv", "b.csv"]]  # no pointless file-by-file retry
        assert [(aws.audit.get(f).status, aws.audit.get(f).attempts) for f in fids] == [(Status.FAILED, 0)] * 2
    failures, _ = run(aws, ScriptedLoader(), max_attempts=1)
    assert failures == [] and [aws.audit.get(f).status for f in fids] == [Status.COMPLETED] * 2


def test_a_file_moved_by_an_attempt_that_crashed_before_recording_it_is_completed(aws):
    """The rows are committed before the move: a file found in processed/ was loaded."""
    (fid,) = upload(aws, "a.csv")
    crashed = aws.lifecycle().claim(aws.audit.get(fid), "jr_dead")
    layout.move_object(
        aws.s3, BUCKET, crashed.source_key, crashed.etag, crashed.size, layout.PROCESSED, fid
    )  # then it died
    loader = ScriptedLoader()
    assert JobRun(aws.lifecycle(glue=None), "jr_2", lambda: loader, log=lambda m: None).run() == []
    record = aws.audit.get(fid)
    assert (record.status, record.final_key, loader.batches) == (Status.COMPLETED, "processed/a.csv", [])
    assert record.warnings == ["loaded and moved by an earlier attempt that stopped before recording its counts"]


def test_a_moved_file_is_completed_with_the_counts_its_load_recorded_and_its_rejected_rows(aws):
    """The load ledger is written in the transaction of the file's rows: a run that died after the move
    leaves the counts, the reasons and (uploaded before the move) the rejected rows (the soak found a
    COMPLETED item without counts)."""
    (fid,) = upload(aws, "a.csv")
    crashed = aws.lifecycle().claim(aws.audit.get(fid), "jr_dead")
    rows_key = layout.rejected_rows_key(crashed.source_key, "jr_dead")
    aws.put(rows_key, b"line,reason\n3,bad_currency\n")
    layout.move_object(aws.s3, BUCKET, crashed.source_key, crashed.etag, crashed.size, layout.PROCESSED, fid)
    counts = Counts(5, 3, 1, 1, 1, 0)
    ledger = {fid: RecordedLoad("jr_dead", counts, {"bad_currency": 1})}
    JobRun(aws.lifecycle(), "jr_2", ScriptedLoader, log=lambda m: None, recorded_load=ledger.get).run()
    record = aws.audit.get(fid)
    assert (record.status, record.final_key, record.counts) == (Status.COMPLETED, "processed/a.csv", counts)
    assert (record.reject_reasons, record.rejected_rows_key) == ({"bad_currency": 1}, rows_key)
    assert record.counts.reconciles and aws.audit.tallies_disagree() == {}


def test_a_moved_file_waits_while_the_database_cannot_say_what_its_load_recorded(aws):
    (fid,) = upload(aws, "a.csv")
    crashed = aws.lifecycle().claim(aws.audit.get(fid), "jr_dead")
    layout.move_object(aws.s3, BUCKET, crashed.source_key, crashed.etag, crashed.size, layout.PROCESSED, fid)

    def unreachable(fid):
        raise TargetUnavailable("the load ledger of db.example:5432/bank/public.transactions is unreachable")

    JobRun(aws.lifecycle(), "jr_2", ScriptedLoader, log=lambda m: None, recorded_load=unreachable).run()
    record = aws.audit.get(fid)
    assert (record.status, record.attempts) == (Status.FAILED, 1)  # the dead attempt counts, this one not
    ledger = {fid: RecordedLoad("jr_dead", Counts(1, 1, 0, 0, 0, 0), {})}
    JobRun(aws.lifecycle(), "jr_3", ScriptedLoader, log=lambda m: None, recorded_load=ledger.get).run()
    assert (aws.audit.get(fid).status, aws.audit.get(fid).counts) == (Status.COMPLETED, Counts(1, 1, 0, 0, 0, 0))


def test_a_run_that_died_on_the_last_attempt_is_not_followed_by_another_load(aws):
    """Its claim taken over, the file is given up, not loaded a fourth time: a file that kills its driver
    would otherwise be retried for ever, a paid run each time (the soak found attempts beyond the limit)."""
    (fid,) = upload(aws, "a.csv")
    lifecycle = aws.lifecycle(max_attempts=3)
    for dead in ("jr_dead1", "jr_dead2", "jr_dead3"):  # each run died holding the claim
        assert lifecycle.claim(aws.audit.get(fid), dead) is not None
    loader = ScriptedLoader()
    failures, _ = run(aws, loader, max_attempts=3)
    record = aws.audit.get(fid)
    assert (record.status, record.gave_up, record.final_key, loader.batches) == (
        Status.REJECTED,
        True,
        "rejected/a.csv",
        [],
    )
    assert (
        record.error_message == "gave up after 3 attempt(s); last error: the run of attempt 3 ended without settling it"
    )
    assert aws.audit.tallies_disagree() == {}


def test_a_run_that_died_on_the_last_attempt_after_moving_the_file_completes_it(aws):
    (fid,) = upload(aws, "a.csv")
    lifecycle = aws.lifecycle(max_attempts=1)
    crashed = lifecycle.claim(aws.audit.get(fid), "jr_dead")
    layout.move_object(aws.s3, BUCKET, crashed.source_key, crashed.etag, crashed.size, layout.PROCESSED, fid)
    loader = ScriptedLoader()
    run(aws, loader, max_attempts=1)
    record = aws.audit.get(fid)
    assert (record.status, record.final_key, loader.batches) == (Status.COMPLETED, "processed/a.csv", [])


def test_a_run_near_its_timeout_claims_no_new_batch_and_hands_the_work_to_the_next_run(aws):
    """Less of the Timeout left than a batch may take: the files announced meanwhile go to a run started
    for them (Glue queues it until this one ends), unclaimed and with no attempt spent; this run ends well."""
    (a,) = upload(aws, "a.csv")
    left = [3600.0]
    later: list[str] = []

    def b_arrives_as_time_runs_out():
        later.extend(upload(aws, "b.csv"))
        left[0] = 599.0

    glue = FakeGlue()
    loader = ScriptedLoader(during=b_arrives_as_time_runs_out)
    messages: list[str] = []
    job = JobRun(
        aws.lifecycle(glue=glue),
        "jr_0",
        lambda: loader,
        log=messages.append,
        time_left=lambda: left[0],
        batch_seconds=600,
    )
    assert job.run() == []
    assert loader.batches == [["a.csv"]]
    (b,) = later
    assert glue.arguments == [{"--FILE_IDS": b, FILES_TARGET: TARGET}] and glue.queuing == [True]
    handed = aws.audit.get(b)
    assert (handed.status, handed.glue_job_id, handed.attempts) == (Status.PENDING, "jr_1", 0)
    assert aws.audit.get(a).status == Status.COMPLETED
    assert "599 s of the run's Timeout left" in messages[-1] and messages[-1].endswith("1 file(s) left to run jr_1")


def test_a_run_takes_its_first_batch_however_little_time_is_left_and_starts_none_without_work(aws):
    upload(aws, "a.csv")
    glue = FakeGlue()
    loader = ScriptedLoader()
    job = JobRun(
        aws.lifecycle(glue=glue), "jr_0", lambda: loader, log=lambda m: None, time_left=lambda: 5.0, batch_seconds=600
    )
    assert job.run() == [] and loader.batches == [["a.csv"]]
    assert glue.calls == 0  # nothing was left: no next run


def test_the_time_left_is_the_runs_timeout_counted_from_the_scripts_start():
    class Glue:
        def get_job_run(self, JobName, RunId):
            assert (JobName, RunId) == ("ETL_Job_to_RDS", "jr_7")
            return {"JobRun": {"Id": RunId, "JobRunState": "RUNNING", "Timeout": 60}}

    now = [1000.0]
    left = time_left(Glue(), "ETL_Job_to_RDS", "jr_7", clock=lambda: now[0])
    assert left() == 3600.0
    now[0] += 3500.5
    assert left() == 99.5


def test_a_merge_is_bounded_by_the_time_left_less_what_settling_needs():
    assert merge_bound(math.inf) == 0.0  # the run's Timeout unknown: the merge unbounded (no statement_timeout)
    assert merge_bound(SETTLE_SECONDS + 100) == 100.0
    assert merge_bound(SETTLE_SECONDS - 5) == 1.0  # too late already: the merge fails at once, the file FAILED
