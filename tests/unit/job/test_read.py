"""Reading files with Spark: the split read, its exact detection of quoted line breaks, the multi-line
read, and files of a batch told apart by path and header layout."""

from __future__ import annotations

from glueline.job.read import (
    CORRUPT,
    FILE,
    NEWLINES,
    ODD_QUOTES,
    POSITION,
    SPLIT,
    InputFile,
    read_multiline,
    read_split,
)
from glueline.shared.contract import COLUMNS, match_header

HEADER = ",".join(COLUMNS)


def row(tid: int, description: str = "ok", **overrides) -> str:
    values = [str(tid), "ACC", "42", "2024-07-13", "deposit", "1.00", "USD", "2.00", "3", "4", description]
    for position, value in overrides.items():
        values[int(position[1:])] = value
    return ",".join(values)


def write(path, text: str, header: str = HEADER) -> InputFile:
    path.write_bytes((header + "\n" + text).encode())
    return InputFile(0, path.stem, str(path), match_header(next(iter([header.lstrip("\ufeff").split(",")]))))


def records(frame) -> list:
    return frame.orderBy(FILE, POSITION).collect()


def test_a_split_read_gives_one_record_per_line_in_file_order(spark, tmp_path):
    lines = [row(i, f'"quoted, ""{i}"""') for i in range(1, 20001)]
    f = write(tmp_path / "f.csv", "\r\n".join(lines) + "\r\n")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "200000")  # several splits
    try:
        frame = read_split(spark, [f])
        assert frame.rdd.getNumPartitions() > 1
        got = records(frame)
    finally:
        spark.conf.unset("spark.sql.files.maxPartitionBytes")
    assert got[0].transactionid == "TransactionID" and got[0][SPLIT] == 0  # the header line, skipped by the load
    assert [int(r.transactionid) for r in got[1:]] == list(range(1, 20001))
    assert got[5].description == 'quoted, "5"' and got[5][CORRUPT] is None
    assert len({r[SPLIT] for r in got}) > 1 and not any(r[ODD_QUOTES] for r in got)
    assert all(r[NEWLINES] == 0 for r in got)


def test_a_quoted_line_break_is_found_however_the_pieces_parse(spark, tmp_path):
    """Both halves of this record have eleven fields as lines: only the quote count gives it away."""
    broken = row(2, '"p,q', **{"c9": "4"}) + "\n" + 'r,s,t,u,v,w,x,y,z,a,b"'
    f = write(tmp_path / "f.csv", row(1) + "\n" + broken + "\n" + row(3) + "\n")
    split = records(read_split(spark, [f]))
    assert [r[CORRUPT] for r in split] == [None] * 5  # nothing looks malformed line by line
    assert [r[ODD_QUOTES] for r in split] == [False, False, True, True, False]
    multi = records(read_multiline(spark, [f]))
    assert [r.transactionid for r in multi] == ["1", "2", "3"]
    assert multi[1].description == "p,q\nr,s,t,u,v,w,x,y,z,a,b" and multi[1][NEWLINES] == 1


def test_files_of_a_batch_keep_their_own_layout_and_identity(spark, tmp_path):
    (tmp_path / "odd dir").mkdir()
    reordered = ",".join(reversed(COLUMNS))
    files = [
        write(tmp_path / "a.csv", row(1) + "\n" + row(2) + "\n"),
        write(tmp_path / "odd dir" / "b c+d%.csv", ",".join(reversed(row(3).split(","))) + "\n", reordered),
        write(tmp_path / "e.csv", row(4) + "\n\n   \n" + "short,row\n"),
    ]
    files = [InputFile(i, f.file_id, f.path, f.header) for i, f in enumerate(files)]
    got = [r for r in records(read_split(spark, files)) if r.transactionid != "TransactionID"]
    assert [(r[FILE], r.transactionid, r.branchcode) for r in got] == [
        (0, "1", "3"),
        (0, "2", "3"),
        (1, "3", "3"),
        (2, "4", "3"),
        (2, "short", None),  # blank and whitespace-only lines are not records
    ]
    assert got[-1][CORRUPT] == "short,row"
    multi = records(read_multiline(spark, files))
    assert [(r[FILE], r.transactionid) for r in multi] == [(0, "1"), (0, "2"), (1, "3"), (2, "4"), (2, "short")]


def test_a_byte_order_mark_and_invalid_utf8(spark, tmp_path):
    f = tmp_path / "f.csv"
    f.write_bytes(("\ufeff" + HEADER + "\n").encode() + row(1, "caf").encode() + b"\xff\n")
    source = InputFile(0, "f", str(f), match_header(COLUMNS))
    got = records(read_split(spark, [source]))
    assert got[1].description == "caf\ufffd"  # Spark's decoder marks the bytes; the rules reject the row


def test_a_local_copy_is_exactly_the_claimed_version(aws, tmp_path):
    import botocore.exceptions
    import pytest

    from glueline.job.read import LocalCopies
    from glueline.shared.audit import AuditRecord

    from ..conftest import BUCKET

    body = bytes(range(256)) * 100
    etag = aws.put("source/a.csv", body)
    record = AuditRecord("f" * 32, "a.csv", BUCKET, "source/a.csv", etag, len(body), "t")
    copies = LocalCopies(aws.s3, tmp_path)
    path = copies.path(record)
    assert open(path, "rb").read() == body
    copies.discard(path)
    aws.put("source/a.csv", body[::-1])  # replaced since it was claimed
    with pytest.raises(botocore.exceptions.ClientError, match="PreconditionFailed"):
        copies.path(record)


def test_glue_reads_a_snapshot_of_the_claimed_version_never_the_source_key(aws):
    """Replaced while a run reads it, a file must not give new bytes under its old FileID."""
    from glueline.job.read import S3Snapshots
    from glueline.shared.audit import AuditRecord

    from ..conftest import BUCKET

    body = b"TransactionID\n1\n"
    etag = aws.put("source/a.csv", body)
    record = AuditRecord("f" * 32, "a.csv", BUCKET, "source/a.csv", etag, len(body), "t")
    snapshots = S3Snapshots(aws.s3)
    copies: list[dict] = []
    aws.s3.meta.events.register("provide-client-params.s3.CopyObject", lambda params, **kw: copies.append(params))
    path = snapshots.path(record)
    # Pinned to the claimed version (moto does not enforce the condition; S3 and the emulators do).
    assert [c["CopySourceIfMatch"] for c in copies] == [etag]
    assert path == f"s3://{BUCKET}/temp/claimed/{'f' * 32}.csv"
    aws.put("source/a.csv", b"TransactionID\n2\n")  # replaced while Spark reads the snapshot
    assert aws.s3.get_object(Bucket=BUCKET, Key=path.split("/", 3)[3])["Body"].read() == body
    snapshots.discard(path)
    assert aws.keys("temp/") == []


def test_a_path_with_glob_characters_is_read_as_it_is(spark, tmp_path):
    """Spark reads `[12]` in a path as "1 or 2": the file named with the brackets must be read, not the
    files the pattern would match."""
    odd = write(tmp_path / "b[12]{x}*.csv", row(1) + "\n")
    write(tmp_path / "b1{x}*.csv", row(2) + "\n")
    write(tmp_path / "b2{x}*.csv", row(3) + "\n")
    for read in (read_split, read_multiline):
        got = [r for r in records(read(spark, [odd])) if r.transactionid != "TransactionID"]
        assert [(r.transactionid, r[FILE]) for r in got] == [("1", 0)], read.__name__
