"""The integrity check of a file: a bounded prefix of the object, never the whole file.

It decides the file-level questions (is this a CSV with our header at all?) before any Glue run is paid
for, and takes a sample of row quality for the audit item. The Lambda checks a file when it is announced;
the Glue job checks the version it claimed again, with the same function, before it reads it.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from glueline.shared.awserrors import VERSION_GONE, error_code
from glueline.shared.contract import COLUMNS, HeaderMatch, match_header

SAMPLE_BYTES = 64 * 1024


class SourceGone(Exception):
    """The announced version of a file is no longer where it was announced (deleted, or replaced by new
    content, which has its own FileID)."""


def head_version(s3, bucket: str, key: str, etag: str | None = None) -> dict | None:
    """The object under ``key`` (exactly version ``etag`` when given) as HeadObject answers with its
    checksums (``audit.content_identity``); None when it is not there. Read by its key, never found
    through a listing, which may not show an object written a moment ago."""
    pinned = {"IfMatch": etag} if etag else {}
    try:
        return s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED", **pinned)
    except s3.exceptions.ClientError as err:
        if error_code(err) in VERSION_GONE:
            return None
        raise


def sample_object(s3, bucket: str, key: str, etag: str, size: int) -> IntegrityReport:
    """Read at most SAMPLE_BYTES of exactly this version of the object and check them."""
    try:
        if size == 0:  # nothing to read (and a ranged GET of an empty object is an error): is it there?
            s3.head_object(Bucket=bucket, Key=key, IfMatch=etag)
            return check_prefix(b"", complete=True)
        head = s3.get_object(Bucket=bucket, Key=key, IfMatch=etag, Range=f"bytes=0-{SAMPLE_BYTES - 1}")["Body"].read()
    except s3.exceptions.ClientError as err:
        if error_code(err) in VERSION_GONE:
            raise SourceGone(
                f"{key} (ETag {etag}) is no longer there: deleted, or replaced by new content that is "
                "processed under its own FileID"
            ) from err
        raise
    return check_prefix(head, complete=len(head) >= size)


_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

# Signatures of data that is not CSV text even when it is named .csv.
_MAGIC = {
    b"\x1f\x8b": "gzip-compressed data",
    b"PK\x03\x04": "a ZIP archive",
    b"BZh": "bzip2-compressed data",
    b"\x28\xb5\x2f\xfd": "zstd-compressed data",
    b"%PDF": "a PDF document",
}


def is_valid_date(text: str | None) -> bool:
    """``yyyy-MM-dd`` and a real calendar date (2024-02-30 is not)."""
    if text is None or not _ISO_DATE.match(text.strip()):
        return False
    try:
        date.fromisoformat(text.strip())
    except ValueError:
        return False
    return True


@dataclass
class IntegrityReport:
    problem: str | None = None  # why the whole file is refused; None when it may be processed
    warnings: list[str] = field(default_factory=list)
    header: HeaderMatch | None = None
    sample_rows: int = 0
    sample_blank_customer_ids: int = 0
    sample_bad_dates: int = 0
    sampled_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.problem is None

    def as_item(self) -> dict:
        """The audit item's ``Integrity`` map."""
        item: dict[str, Any] = {
            "HeaderOK": self.header is not None and self.header.ok,
            "SampledBytes": self.sampled_bytes,
            "SampleRows": self.sample_rows,
            "SampleBlankCustomerIDs": self.sample_blank_customer_ids,
            "SampleBadTransactionDates": self.sample_bad_dates,
        }
        if self.problem:
            item["Problem"] = self.problem
        return item


def not_text_reason(data: bytes) -> str | None:
    for magic, what in _MAGIC.items():
        if data.startswith(magic):
            return f"not a text CSV file: the content is {what}"
    if b"\x00" in data[:SAMPLE_BYTES]:
        return "not a text CSV file: the content contains NUL bytes (binary data)"
    return None


def header_problem(header_line: bytes) -> tuple[str | None, HeaderMatch | None]:
    """Judge a raw header line: decodable, non-empty, with all contract columns."""
    try:
        text = header_line.decode("utf-8")
    except UnicodeDecodeError:
        return "not a text CSV file: the header is not valid UTF-8", None
    if not text.strip().strip("\ufeff").strip():
        return "no header: the first line is empty", None
    names = next(csv.reader([text.rstrip("\r\n")]))
    header = match_header(names)
    return header.problem, header


def check_prefix(data: bytes, complete: bool) -> IntegrityReport:
    """Check the first bytes of a file. ``complete`` says whether ``data`` is the whole object."""
    report = IntegrityReport(sampled_bytes=len(data))
    if not data:
        report.problem = "empty file (0 bytes)"
        return report
    report.problem = not_text_reason(data)
    if report.problem:
        return report
    header_end = data.find(b"\n")
    if header_end < 0 and not complete:
        report.problem = f"no header line within the first {SAMPLE_BYTES // 1024} KiB"
        return report
    header_line = data if header_end < 0 else data[:header_end]
    report.problem, report.header = header_problem(header_line)
    if report.header is not None:
        report.warnings = report.header.warnings
    if report.problem or report.header is None:
        return report
    _sample_rows(report, report.header, data[header_end + 1 :] if header_end >= 0 else b"", complete)
    return report


def _sample_rows(report: IntegrityReport, header: HeaderMatch, body: bytes, complete: bool) -> None:
    text = body.decode("utf-8", errors="replace")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    if not complete and rows:
        rows.pop()  # the prefix may end inside a record
    positions = header.positions
    customer = positions.index(COLUMNS["CustomerID"])
    when = positions.index(COLUMNS["TransactionDate"])
    for row in rows:
        if not row:
            continue
        report.sample_rows += 1
        if customer >= len(row) or not row[customer].strip():
            report.sample_blank_customer_ids += 1
        if when >= len(row) or not is_valid_date(row[when]):
            report.sample_bad_dates += 1
