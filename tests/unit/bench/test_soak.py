"""The soak's own parts that need no stack: its ground truth, its plan, its fault schedule."""

from __future__ import annotations

import csv
from contextlib import contextmanager
from types import SimpleNamespace

from bench.soak.faults import EMBEDDED_KINDS, LASTING_KINDS, SOAK_BOUNDS, FaultInjector, FaultSchedule
from bench.soak.traffic import RUN_DATE, TrafficPlan, expected_row, loaded_row, truth_rows
from glueline.local.faults import FaultUnavailable
from glueline.local.samples import write_file
from glueline.shared.audit import Status


def test_the_truths_contract_model_agrees_with_the_generators_counts(tmp_path):
    """Two models of the contract written apart (the generator's tally, the soak's row model) agree."""
    plan = TrafficPlan(tmp_path, seed=1, duration=60, files_per_minute=1, max_rows=10)
    for seed, rows, dirty in [(3, 5_000, 0.05), (4, 20_000, 0.02)]:
        counts = write_file(tmp_path / "x.csv", rows, seed=seed, dirty=dirty, first_id=5)
        with open(tmp_path / "x.csv", newline="") as source:
            content = plan._write(tmp_path / "y.csv", csv.DictReader(source))
        assert content.counts == counts
        assert len(content.rows) == counts.rows_loaded


def test_a_rows_canonical_form_is_the_same_from_the_file_and_from_the_table():
    from datetime import date
    from decimal import Decimal

    row = {
        "TransactionID": " 42 ",
        "AccountNumber": "AB12",
        "CustomerID": "  ",
        "TransactionDate": "2024-02-30",
        "TransactionType": " DEPOSIT ",
        "TransactionAmount": "-0.00",
        "Currency": "eur",
        "AccountBalance": "10.5",
        "BranchCode": "7",
        "MerchantCode": "",
        "Description": 'a, "b"\nc',
    }
    expected = expected_row(row)
    assert expected[2:5] == ("N/A", RUN_DATE, "deposit")
    table = (
        42,
        "AB12",
        "N/A",
        date(2026, 12, 2),
        "deposit",
        Decimal("0.00"),
        "EUR",
        Decimal("10.50"),
        7,
        None,
        'a, "b"\nc',
    )
    assert loaded_row(table, replaced_date=True) == expected
    for bad in ({"TransactionAmount": "12.345"}, {"Currency": "EURO"}, {"TransactionID": "12x4"}, {"BranchCode": "B1"}):
        assert expected_row({**row, **bad}) is None


def test_the_plan_is_seeded_and_its_truth_takes_the_later_upload(tmp_path):
    first = TrafficPlan(tmp_path / "a", seed=7, duration=300, files_per_minute=6, max_rows=1_000).build()
    again = TrafficPlan(tmp_path / "b", seed=7, duration=300, files_per_minute=6, max_rows=1_000).build()
    assert [(u.at, u.key, u.content.path.read_bytes()) for u in first] == [
        (u.at, u.key, u.content.path.read_bytes()) for u in again
    ]
    kinds = {u.kind for u in first}
    assert {"good", "header_refused", "overwritten", "overwrite_in_flight"} <= kinds
    rows, origin = truth_rows(first)
    for newer in (u for u in first if u.kind == "overwrite_in_flight"):
        older = newer.repeats
        assert older.kind == "overwritten" and older.at < newer.at and older.key == newer.key
        assert set(older.content.rows) == set(newer.content.rows)  # the same IDs, other amounts: the newer wins
        assert all(rows[t] == newer.content.rows[t] and origin[t] == newer.index for t in newer.content.rows)
    refused = [u for u in first if u.expect == frozenset({Status.REJECTED})]
    assert refused and all(not u.loads for u in refused)


def test_every_fault_kind_is_scheduled_at_least_min_each_times():
    schedule = FaultSchedule.seeded(1, EMBEDDED_KINDS, 3, duration=1200, short=False)
    assert sorted(schedule.order) == sorted(EMBEDDED_KINDS * 3)
    assert schedule.order != sorted(schedule.order)  # shuffled: no kind always follows the same one


def test_a_third_of_the_lasting_faults_are_held_past_the_jobs_database_bounds_and_a_seed_replays_them():
    for short in (True, False):
        schedule = FaultSchedule.seeded(5, EMBEDDED_KINDS, 3, duration=180 if short else 1200, short=short)
        bound = max(SOAK_BOUNDS[short].lost_within_seconds, SOAK_BOUNDS[short].ddl_statement_seconds)
        lasting = [hold for kind, hold in zip(schedule.order, schedule.holds, strict=True) if kind in LASTING_KINDS]
        past = [hold for hold in lasting if hold > bound]
        assert len(past) == round(len(lasting) / 3) and all(hold < bound for hold in lasting if hold not in past)
        assert all(h == 0 for k, h in zip(schedule.order, schedule.holds, strict=True) if k not in LASTING_KINDS)
        again = FaultSchedule.seeded(5, EMBEDDED_KINDS, 3, duration=180 if short else 1200, short=short)
        assert (again.order, again.holds) == (schedule.order, schedule.holds)


class _OneRunActive:
    def get_job_runs(self, JobName):
        return {"JobRuns": [{"Id": "jr_1", "JobRunState": "RUNNING"}]}


def _injector(faults) -> FaultInjector:
    glue = SimpleNamespace(glue_job="j")
    stack = SimpleNamespace(faults=faults, client=lambda service: _OneRunActive(), settings=glue)
    schedule = FaultSchedule.seeded(1, ("postgres_hang",), 1, duration=60, short=True)
    return FaultInjector(stack, schedule, 1, log=lambda message: None)


def test_a_lasting_fault_is_made_while_a_run_is_active_and_made_means_made():
    class Faults:
        def __init__(self, undo_fails: bool, unavailable: bool = False):
            self.undo_fails, self.unavailable = undo_fails, unavailable

        @contextmanager
        def database_hung(self):
            if self.unavailable:
                raise FaultUnavailable("no database")
            yield
            if self.undo_fails:
                raise FaultUnavailable("the database is not running")

    held = _injector(Faults(undo_fails=False)).make("postgres_hang", 0.1)
    assert (held.made, held.error, held.held_seconds) == (True, None, 0.1)
    assert held.detail.startswith("while run jr_1 was active")
    undone_badly = _injector(Faults(undo_fails=True)).make("postgres_hang", 0.1)
    assert undone_badly.made and undone_badly.error == "made, then: the database is not running"
    never = _injector(Faults(undo_fails=False, unavailable=True)).make("postgres_hang", 0.1)
    assert (never.made, never.error) == (False, "not made: no database")


def test_rows_that_also_came_under_another_name_stay_contested(tmp_path):
    """Found by the compose soak: a file copied under another name and later uploaded again under its own
    key lost its mark, so its rows, rightly counted as duplicates of the newer copy, failed the verdict."""
    plan = TrafficPlan(tmp_path, seed=3, duration=60, files_per_minute=1, max_rows=10)
    plan._plan("good", 0.0, rows=5)
    original = plan.uploads[0]
    plan._plan("duplicate_other_name", 10.0)
    plan._plan("duplicate_same_key", 20.0)
    assert [u.contested for u in plan.uploads] == [True, True, True]
    assert plan.uploads[2].key == original.key and plan.uploads[1].key != original.key


def test_a_correction_comes_after_its_original_has_loaded_and_its_rows_win(tmp_path):
    plan = TrafficPlan(tmp_path, seed=3, duration=600, files_per_minute=1, max_rows=50)
    plan._plan("correction", 10.0, rows=20)
    original, correction = plan.uploads
    assert (original.kind, correction.kind) == ("corrected", "correction") and original.key != correction.key
    assert correction.at - original.at >= 30  # loaded by then: the newer upload wins over rows in the table
    assert set(original.content.rows) == set(correction.content.rows)
    assert original.content.rows != correction.content.rows  # other amounts
    rows, origin = truth_rows(plan.uploads)
    assert rows == correction.content.rows and set(origin.values()) == {correction.index}
    assert original.contested and correction.contested
