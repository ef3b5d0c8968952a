from glueline import layout


def test_file_id_is_stable_and_ignores_etag_quoting():
    a = layout.file_id("b", "source/x.csv", '"abc"')
    assert a == layout.file_id("b", "source/x.csv", "abc")
    assert a != layout.file_id("b", "source/x.csv", "abd")
    assert a != layout.file_id("b", "source/y.csv", "abc")
    assert len(a) == 32


def test_keys():
    assert layout.is_source_key("source/x.csv")
    assert not layout.is_source_key("source/")
    assert not layout.is_source_key("processed/x.csv")
    assert layout.file_name("source/2024/x.csv") == "2024/x.csv"
    assert layout.destination_key(layout.PROCESSED, "source/x.csv") == "processed/x.csv"
    assert layout.disambiguated_key("processed/x.csv", "0123456789") == "processed/x.01234567.csv"
    assert layout.rejected_rows_key("source/x.csv", "jr_1") == "rejected/rows/x.csv/jr_1.csv"
