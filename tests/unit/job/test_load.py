"""The loader's Spark and Arrow side (PostgreSQL's side runs in tests/integration): what travels to
COPY, and how a partition's batches are cut by file and split."""

from __future__ import annotations

from datetime import date

import pyarrow as pa

from glueline.job.load import COPY_LINE, FLAGS, REJECT_LINE, _runs, _values, columns_for_loading
from glueline.job.read import FILE, SPLIT, InputFile, read_split
from glueline.job.transform import clean
from glueline.shared.contract import COLUMNS, match_header


def test_good_rows_travel_as_copy_lines_and_rejected_rows_as_their_raw_fields(spark, tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(
        ",".join(COLUMNS)
        + "\n"
        + '1, ACC ,,2024-02-30, Deposit ,1.5,usd,2,3,,"Agent, ""fast"""\n'
        + "2,ACC,9,2024-07-13,deposit,1.234,USD,2.00,3,4,x\n"
    )
    source = InputFile(0, "f", str(path), match_header(COLUMNS))
    rows = columns_for_loading(clean(read_split(spark, [source]), date(2026, 11, 26))).collect()
    header, good, bad = rows
    assert good[COPY_LINE] == (
        '1,ACC,N/A,2026-11-26,deposit,1.50,USD,2.00,3,,"Agent, ""fast""",'
        '"{""customerid_filled"":true,""transactiondate_original"":""2024-02-30""}",1,0\n'
    )  # … dq_flags, file_position, the file's index in its batch
    assert good[REJECT_LINE] is None and good[FLAGS] == 3
    assert bad[COPY_LINE] is None and bad[FLAGS] == 0
    assert bad[REJECT_LINE] == "bad_transaction_amount,2,ACC,9,2024-07-13,deposit,1.234,USD,2.00,3,4,x,"
    assert header[REJECT_LINE].startswith("missing_transaction_id") or header[REJECT_LINE].startswith("bad_")


def test_a_partition_is_cut_where_its_file_or_split_changes():
    batch = pa.RecordBatch.from_pydict(
        {FILE: pa.array([0, 0, 1, 1, 1], pa.int32()), SPLIT: pa.array([0, 0, 0, 0, 9], pa.int64()), "v": range(5)}
    )
    assert [(key, run.column("v").to_pylist()) for key, run in _runs(batch)] == [
        ((0, 0), [0, 1]),
        ((1, 0), [2, 3]),
        ((1, 9), [4]),
    ]


def test_copy_bytes_are_the_strings_end_to_end_without_nulls():
    lines = pa.array(["a,1\n", None, "b,2\n", "c,3\n"]).slice(1).drop_null()
    assert bytes(_values(lines)) == b"b,2\nc,3\n"
