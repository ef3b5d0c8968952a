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
        etag = aws.s3.head_object(Bucket=BUCKET, Key="source/daily.csv")["ETag"]
        return layout.move_object(aws.s3, BUCKET, "source/daily.csv", etag, layout.PROCESSED, fid)

    aws.put("source/daily.csv", b"monday")
    assert move("aaaaaaaa11") == "processed/daily.csv"
    aws.put("source/daily.csv", b"tuesday")
    assert move("bbbbbbbb22") == "processed/daily.bbbbbbbb.csv"
    aws.put("source/daily.csv", b"monday")  # the same content again goes where it went before
    assert move("aaaaaaaa11") == "processed/daily.csv"
    assert aws.keys() == ["processed/daily.bbbbbbbb.csv", "processed/daily.csv"]
