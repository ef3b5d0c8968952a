import gzip

import pytest

from glueline.shared.contract import COLUMNS
from glueline.shared.integrity import SAMPLE_BYTES, check_prefix, is_valid_date

HEADER = ",".join(COLUMNS).encode() + b"\n"
ROW = b"1,ACC,42,2024-07-13,deposit,1.00,USD,2.00,3,4,ok\n"


def test_valid_dates_are_iso_and_real():
    assert is_valid_date("2024-02-29")
    for text in ["2024-02-30", "2023-02-29", "13/07/2024", "2024-7-5", "", None, "2024-13-01"]:
        assert not is_valid_date(text)


def test_sample_counts_blank_customer_ids_and_bad_dates():
    body = ROW + b"2,ACC,  ,2024-07-13,deposit,1.00,USD,2.00,3,4,x\n" + b"3,ACC,7,2024-02-30,deposit,1,USD,2,3,,y\n"
    report = check_prefix(HEADER + body, complete=True)
    assert report.ok
    assert (report.sample_rows, report.sample_blank_customer_ids, report.sample_bad_dates) == (3, 1, 1)
    assert report.as_item()["HeaderOK"] is True


def test_a_truncated_prefix_ignores_its_last_partial_record():
    data = HEADER + ROW * 3 + b"4,ACC,,20"
    report = check_prefix(data, complete=False)
    assert report.sample_rows == 3 and report.sample_blank_customer_ids == 0


def test_file_level_problems():
    assert check_prefix(b"", complete=True).problem == "empty file (0 bytes)"
    assert "gzip" in check_prefix(gzip.compress(HEADER + ROW), complete=True).problem
    assert "NUL" in check_prefix(b"a,b\x00c\n", complete=True).problem
    assert "UTF-8" in check_prefix(b"Transaction\xffID,x\n", complete=True).problem
    assert "no header" in check_prefix(b"\n" + ROW, complete=True).problem
    missing = check_prefix(HEADER.replace(b"Currency,", b""), complete=True)
    assert not missing.ok and "Currency" in missing.problem
    assert "no header line" in check_prefix(b"x" * SAMPLE_BYTES, complete=False).problem


def test_header_only_file_is_fine():
    report = check_prefix(HEADER, complete=True)
    assert report.ok and report.sample_rows == 0


def test_the_sample_of_an_object_is_read_from_exactly_its_version(aws):
    from glueline.shared.integrity import SourceGone, sample_object

    from ..conftest import BUCKET

    etag = aws.put("source/a.csv", HEADER + ROW * 2)
    whole = sample_object(aws.s3, BUCKET, "source/a.csv", etag, len(HEADER + ROW * 2))
    assert whole.ok and whole.sample_rows == 2  # the whole file: its last record counts
    big = HEADER + ROW * (SAMPLE_BYTES // len(ROW) + 10)
    etag = aws.put("source/big.csv", big)
    part = sample_object(aws.s3, BUCKET, "source/big.csv", etag, len(big))
    assert part.sampled_bytes == SAMPLE_BYTES and part.sample_rows < SAMPLE_BYTES // len(ROW)
    empty = aws.put("source/empty.csv", b"")
    assert sample_object(aws.s3, BUCKET, "source/empty.csv", empty, 0).problem == "empty file (0 bytes)"
    for key, size in (("source/a.csv", 1), ("source/empty.csv", 0), ("source/nothing.csv", 5)):
        with pytest.raises(SourceGone):
            sample_object(aws.s3, BUCKET, key, '"not-this-version"', size)
