"""The soak's own parts that need no stack: its ground truth, its plan, its fault schedule."""

from __future__ import annotations

import csv

from bench.soak.faults import EMBEDDED_KINDS, FaultSchedule
from bench.soak.traffic import RUN_DATE, TrafficPlan, expected_row, loaded_row, truth_rows
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
