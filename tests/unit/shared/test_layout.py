import pytest

from glueline.shared import layout

from ..conftest import BUCKET


def test_keys():
    assert layout.is_source_key("source/x.csv")
    assert not layout.is_source_key("source/")
    assert not layout.is_source_key("processed/x.csv")
    assert layout.file_name("source/2024/x.csv") == "2024/x.csv"
    assert layout.destination_key(layout.PROCESSED, "source/x.csv") == "processed/x.csv"
    assert layout.disambiguated_key("processed/x.csv", "0123456789") == "processed/x.01234567.csv"
    assert layout.rejected_rows_key("source/x.csv", "jr_1") == "rejected/rows/x.csv/jr_1.csv"


def test_a_move_never_overwrites_other_content(aws):
    def move(fid: str) -> str:
        head = aws.s3.head_object(Bucket=BUCKET, Key="source/daily.csv")
        return layout.move_object(
            aws.s3, BUCKET, "source/daily.csv", head["ETag"], head["ContentLength"], layout.PROCESSED, fid
        )

    aws.put("source/daily.csv", b"monday")
    assert move("aaaaaaaa11") == "processed/daily.csv"
    aws.put("source/daily.csv", b"tuesday")
    assert move("bbbbbbbb22") == "processed/daily.bbbbbbbb.csv"
    aws.put("source/daily.csv", b"monday")  # the same content again goes where it went before
    assert move("aaaaaaaa11") == "processed/daily.csv"
    assert aws.keys() == ["processed/daily.bbbbbbbb.csv", "processed/daily.csv"]


def test_an_object_too_large_for_one_copy_is_moved_in_parts_of_its_version(aws, monkeypatch):
    monkeypatch.setattr(layout, "SINGLE_COPY_MAX_BYTES", 16)  # S3's limit is 5 GB
    body = b"x" * (9 << 20)  # more than one part of the managed copy
    etag = aws.put("source/big.csv", body)
    assert layout.move_object(aws.s3, BUCKET, "source/big.csv", etag, len(body), layout.PROCESSED, "f1") == (
        "processed/big.csv"
    )
    assert aws.keys() == ["processed/big.csv"]
    assert aws.s3.get_object(Bucket=BUCKET, Key="processed/big.csv")["Body"].read() == body
    old = aws.put("source/big.csv", body)
    aws.put("source/big.csv", body + b"y")  # replaced before the move of the old version
    with pytest.raises(aws.s3.exceptions.ClientError):
        layout.move_object(aws.s3, BUCKET, "source/big.csv", old, len(body), layout.REJECTED, "f2")
    assert aws.keys() == ["processed/big.csv", "source/big.csv"]
