import pytest

from glueline.csvscan import QuotedLineBreakScan


@pytest.mark.parametrize(
    "data, found",
    [
        (b'a,b\n1,"x, ""y"""\n2,z\n', False),
        (b'a,b\r\n1,"two\r\nlines"\r\n', True),
        (b'a,b\n1,"two\nlines"\n', True),
        (b"a,b\n1,2\n", False),
        (b'a,b\n1,""\n2,"""quoted"""\n', False),
    ],
)
def test_finds_line_breaks_inside_quotes(data, found):
    scan = QuotedLineBreakScan()
    scan.update(data)
    assert scan.found is found


def test_state_carries_across_chunks():
    data = b'h\n1,"a' + b"x" * 100 + b'\nb"\n'
    for cut in range(1, len(data)):
        scan = QuotedLineBreakScan()
        scan.update(data[:cut])
        scan.update(data[cut:])
        assert scan.found, cut
    scan = QuotedLineBreakScan()
    for byte in b'h\n1,"a""b"\n2,c\n':
        scan.update(bytes([byte]))
    assert not scan.found
