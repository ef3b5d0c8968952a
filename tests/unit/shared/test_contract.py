from glueline.shared.contract import COLUMNS, FIELDS, match_header


def test_header_matches_in_any_order_and_case_ignoring_whitespace_and_bom():
    names = ["\ufeff description ", *reversed([c.upper() for c in list(COLUMNS)[:-1]])]
    header = match_header(names)
    assert header.ok and header.problem is None
    assert set(header.positions) == set(FIELDS)
    assert header.positions[0] == "description"


def test_missing_column_is_named():
    header = match_header([c for c in COLUMNS if c != "CustomerID"])
    assert not header.ok
    assert header.missing == ("CustomerID",)
    assert "CustomerID" in header.problem


def test_extra_columns_are_ignored_with_a_warning():
    header = match_header([*COLUMNS, "Channel"])
    assert header.ok
    assert header.positions[-1] is None
    assert header.warnings == ["extra column(s) ignored: Channel"]


def test_a_column_given_twice_is_a_problem():
    header = match_header([*COLUMNS, "customerid"])
    assert not header.ok
    assert "CustomerID" in header.problem
