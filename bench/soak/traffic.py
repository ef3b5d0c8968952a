"""The soak's traffic: a seeded plan of uploads, written to disk before the soak starts, and the ground
truth of what the pipeline must make of each — its final status, its counts, the rows the table holds.

The truth is computed here from the rows as generated, by a model of the data contract written apart
from the job's Spark code (``expected_row``): a row's canonical content, or None when the contract
rejects it. Where several files carry the same TransactionID the content is either the same (copies) or
the later upload's (an overwrite in flight, or a correction: a file of another name with the same
TransactionIDs and other amounts, uploaded once the first has loaded), so the table's truth is the files'
rows applied in upload order, later winning, as the pipeline's "newest upload wins" rule does.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

from glueline.local.samples import HEADER, generate_rows
from glueline.shared.audit import Status
from glueline.shared.contract import MISSING_CUSTOMER_ID
from glueline.shared.counts import Counts

RUN_DATE = "<the run's date>"  # what an invalid TransactionDate becomes: the loading run's date
_WHITESPACE = " \t\r\n"
_DIGITS = re.compile(r"[0-9]+")
_SIGNED = re.compile(r"[+-]?[0-9]+")
_MONEY = re.compile(r"[+-]?[0-9]+(\.[0-9]{1,2})?")
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Names that S3 keys, events and URLs must carry unchanged.
SPECIAL_NAMES = [
    "branch {i} – Zürich+Genève (copy) & co=1.csv",
    "reports/2026/{i} spaces  and 'quotes'.csv",
    "ünïcödé/日本語 {i}.csv",
    "{i}+plus%percent,comma;semicolon.csv",
]


def money(value: Decimal) -> str:
    return format(value.quantize(Decimal("0.01")) + 0, "f")  # + 0: no negative zero, as PostgreSQL


def canonical(values: tuple) -> bytes:
    """A row's content (its eleven columns, canonical) as a short digest."""
    return hashlib.blake2b(repr(values).encode(), digest_size=10).digest()


def expected_row(row: dict[str, str]) -> tuple | None:
    """What the contract makes of a CSV row: its canonical columns, or None when it rejects the row."""
    f = {name: (value or "").strip(_WHITESPACE) or None for name, value in row.items()}
    tid, amount, balance = f["TransactionID"], f["TransactionAmount"], f["AccountBalance"]
    branch, merchant, currency = f["BranchCode"], f["MerchantCode"], (f["Currency"] or "").upper()
    if tid is None or not _DIGITS.fullmatch(tid) or int(tid) == 0:
        return None
    if not (amount and _MONEY.fullmatch(amount) and balance and _MONEY.fullmatch(balance)):
        return None
    if not (branch and _SIGNED.fullmatch(branch)) or (merchant is not None and not _SIGNED.fullmatch(merchant)):
        return None
    if len(currency) != 3 or not currency.isalpha() or not currency.isascii():
        return None
    when = f["TransactionDate"]
    try:
        day = date.fromisoformat(when).isoformat() if when and _ISO_DATE.fullmatch(when) else RUN_DATE
    except ValueError:
        day = RUN_DATE
    return (
        int(tid),
        f["AccountNumber"],
        f["CustomerID"] or MISSING_CUSTOMER_ID,
        day,
        (f["TransactionType"] or "").lower() or None,
        money(Decimal(amount)),
        currency,
        money(Decimal(balance)),
        int(branch),
        int(merchant) if merchant is not None else None,
        f["Description"],
    )


def loaded_row(values: tuple, replaced_date: bool) -> tuple:
    """The same canonical form of a row as the table holds it."""
    (tid, account, customer, day, kind, amount, currency, balance, branch, merchant, description) = values
    return (
        tid,
        account,
        customer,
        RUN_DATE if replaced_date else day.isoformat(),
        kind,
        money(amount),
        currency.strip(),
        money(balance),
        branch,
        merchant,
        description,
    )


@dataclass
class Content:
    """One file's bytes and what a correct load of them gives."""

    path: Path
    counts: Counts | None = None  # None: refused as a whole
    rows: dict[int, bytes] = field(default_factory=dict, repr=False)  # TransactionID → canonical digest


@dataclass
class PlannedUpload:
    index: int
    at: float  # seconds after the traffic starts
    key: str
    kind: str
    content: Content
    expect: frozenset[str]  # the statuses it may end in
    contested: bool = False  # its rows come in another file too: loaded or duplicate may go either way
    repeats: PlannedUpload | None = None  # the upload whose content or rows this one repeats
    # filled in when it is uploaded
    identity: str | None = None  # its content's (glueline.shared.audit.content_identity): in its FileID
    uploaded_at: float | None = None

    @property
    def loads(self) -> bool:
        return self.content.counts is not None


KINDS = {  # kind → weight among the uploads that are not bursts' copies
    "good": 60,
    "special_name": 8,
    "header_refused": 4,
    "not_csv": 2,
    "header_only": 2,
    "duplicate_same_key": 6,
    "duplicate_other_name": 6,
    "same_rows_other_name": 4,
    "refused_reupload": 3,
    "overwrite_in_flight": 5,
    "correction": 4,
}


class TrafficPlan:
    """``files_per_minute`` on average over ``duration`` seconds, a burst of 5–12 files every few
    minutes; sizes from 1 row to ``max_rows`` (most small, a few large, log-uniform within each class)."""

    def __init__(self, work: Path, seed: int, duration: float, files_per_minute: float, max_rows: int):
        self.work = work
        work.mkdir(parents=True, exist_ok=True)
        self.rng = random.Random(seed)
        self.duration = duration
        self.files_per_minute = files_per_minute
        self.max_rows = max_rows
        self.uploads: list[PlannedUpload] = []
        self._next_id = 1_000_000
        self._seeds = 0

    # -- the plan -----------------------------------------------------------------------------------

    def build(self) -> list[PlannedUpload]:
        times = self._arrivals()
        for at in times:
            kind = self._kind()
            self._plan(kind, at)
        largest = max((u for u in self.uploads if u.kind == "good"), key=lambda u: u.content.counts.rows_read)
        if largest.content.counts.rows_read < self.max_rows // 2:  # every soak has one large file
            self._plan("good", self.duration * self.rng.uniform(0.1, 0.6), rows=self.max_rows)
        self.uploads.sort(key=lambda u: u.at)
        for index, planned in enumerate(self.uploads):
            planned.index = index
        return self.uploads

    def _arrivals(self) -> list[float]:
        rng, times, t = self.rng, [], 0.0
        mean_gap = 60.0 / self.files_per_minute
        next_burst = rng.uniform(20, 120)
        while t < self.duration:
            t += rng.expovariate(1 / mean_gap)
            if t >= next_burst and next_burst < self.duration:
                times += [next_burst + rng.uniform(0, 5) for _ in range(rng.randint(5, 12))]
                next_burst += rng.uniform(120, 300)
            if t < self.duration:
                times.append(t)
        return sorted(times)

    def _kind(self) -> str:
        kinds = list(KINDS)
        kind = self.rng.choices(kinds, weights=[KINDS[k] for k in kinds])[0]
        earlier = [u for u in self.uploads if u.kind in ("good", "special_name")]
        refused = [u for u in self.uploads if u.kind == "header_refused"]
        if kind in ("duplicate_same_key", "duplicate_other_name", "same_rows_other_name") and not earlier:
            return "good"
        if kind == "refused_reupload" and not refused:
            return "header_refused"
        return kind

    def _size(self) -> int:
        rng, roll = self.rng, self.rng.random()
        low, high = (1, 2_000) if roll < 0.7 else (2_000, 30_000) if roll < 0.95 else (30_000, self.max_rows)
        high = max(low, min(high, self.max_rows))
        return int(round(low * (high / low) ** rng.random()))

    def _plan(self, kind: str, at: float, rows: int | None = None) -> None:
        n = len(self.uploads)
        name = f"source/soak/{n:05d}-{kind}.csv"
        completes = frozenset({Status.COMPLETED})
        refused = frozenset({Status.REJECTED})
        if kind in ("good", "special_name"):
            if kind == "special_name":
                name = "source/soak/" + self.rng.choice(SPECIAL_NAMES).format(i=n)
            content = self._generated(n, rows or self._size())
            self._add(at, name, kind, content, completes)
        elif kind == "header_only":
            path = self._path(n)
            path.write_text(",".join(HEADER) + "\n")
            self._add(at, name, kind, Content(path, Counts()), completes)
        elif kind == "header_refused":
            self._add(at, name, kind, self._refused_header(n), refused)
        elif kind == "not_csv":
            path = self._path(n)
            path.write_bytes(gzip.compress(b"TransactionID,AccountNumber\n1,2\n", mtime=0))
            self._add(at, name, kind, Content(path), refused)
        elif kind in ("duplicate_same_key", "duplicate_other_name", "same_rows_other_name"):
            original = self.rng.choice([u for u in self.uploads if u.kind in ("good", "special_name")])
            key = original.key if kind == "duplicate_same_key" else name
            content = original.content
            if kind == "same_rows_other_name":  # the same rows, other bytes: CRLF line ends
                content = self._with_crlf(original.content, self._path(n))
            later = max(at, original.at + self.rng.uniform(1.5, 120))
            copy = self._add(later, key, kind, content, completes, repeats=original)
            if kind == "duplicate_same_key":  # the same item: contested as its original is
                copy.contested = original.contested
            else:  # never undone by a later copy of the other kind
                copy.contested = original.contested = True
        elif kind == "refused_reupload":
            original = self.rng.choice([u for u in self.uploads if u.kind == "header_refused"])
            later = max(at, original.at + self.rng.uniform(1.5, 60))
            self._add(later, original.key, kind, original.content, refused, repeats=original)
        elif kind == "overwrite_in_flight":
            first = self._generated(n, min(rows or self._size(), 20_000))
            replaced = self._add(at, name, "overwritten", first, completes | refused)
            second = self._amounts_changed(first, self._path(n, "v2"))
            later = self._add(at + self.rng.uniform(1.5, 6), name, kind, second, completes, repeats=replaced)
            replaced.contested = later.contested = True
        elif kind == "correction":  # its rows' amounts corrected by a file of another name, after its load
            first = self._generated(n, min(rows or self._size(), 20_000))
            corrected = self._add(at, name.replace("correction", "corrected"), "corrected", first, completes)
            fixed = self._amounts_changed(first, self._path(n, "fix"))
            later = self._add(at + self.rng.uniform(30, 120), name, kind, fixed, completes, repeats=corrected)
            corrected.contested = later.contested = True  # a retry of the first after the fix: its rows duplicates
        else:
            raise ValueError(kind)

    def _add(self, at, key, kind, content, expect, repeats=None) -> PlannedUpload:
        planned = PlannedUpload(len(self.uploads), at, key, kind, content, expect, repeats=repeats)
        self.uploads.append(planned)
        return planned

    # -- contents -----------------------------------------------------------------------------------

    def _path(self, n: int, suffix: str = "") -> Path:
        return self.work / f"{n:05d}{suffix}.csv"

    def _generated(self, n: int, rows: int) -> Content:
        first_id, self._next_id = self._next_id, self._next_id + rows + 10
        self._seeds += 1
        dirty = self.rng.choice([0.0, 0.01, 0.02, 0.05])
        generator = generate_rows(rows, seed=self._seeds, dirty=dirty, first_id=first_id)
        return self._write(self._path(n), _drain(generator))

    def _write(self, path: Path, source: Iterator[dict], line_end: str = "\n") -> Content:
        rows: dict[int, bytes] = {}
        flags: dict[int, tuple[bool, bool]] = {}  # of the last occurrence: CustomerID filled, date replaced
        read = rejected = duplicate = 0
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, HEADER, lineterminator=line_end)
            writer.writeheader()
            for row in source:
                writer.writerow(row)
                read += 1
                values = expected_row(row)
                if values is None:
                    rejected += 1
                    continue
                duplicate += values[0] in rows
                rows[values[0]] = canonical(values)
                flags[values[0]] = (values[2] == MISSING_CUSTOMER_ID, values[3] == RUN_DATE)
        counts = Counts(
            rows_read=read,
            rows_loaded=len(rows),
            rows_rejected=rejected,
            rows_duplicate=duplicate,
            customer_id_filled=sum(filled for filled, _ in flags.values()),
            dates_replaced=sum(replaced for _, replaced in flags.values()),
        )
        return Content(path, counts, rows)

    def _refused_header(self, n: int) -> Content:
        path = self._path(n)
        header = [c for c in HEADER if c != "CustomerID"]
        rows = _drain(generate_rows(5, seed=10_000 + n, dirty=0, first_id=self._next_id))
        self._next_id += 10
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.DictWriter(out, header, extrasaction="ignore", lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        return Content(path)

    def _with_crlf(self, original: Content, path: Path) -> Content:
        rows = _read(original.path)
        return self._write(path, iter(rows), line_end="\r\n")

    def _amounts_changed(self, original: Content, path: Path) -> Content:
        rows = _read(original.path)
        for row in rows:
            if expected_row(row) is not None:
                row["TransactionAmount"] = f"{self.rng.uniform(-1000, 1000):.2f}"
        return self._write(path, iter(rows))


def _drain(generator) -> list[dict[str, str]]:
    return list(generator)


def _read(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as source:
        return list(csv.DictReader(source))


def truth_rows(uploads: list[PlannedUpload]) -> tuple[dict[int, bytes], dict[int, int]]:
    """The rows the table must hold at the end (TransactionID → digest), and which upload each is from."""
    rows: dict[int, bytes] = {}
    origin: dict[int, int] = {}
    for planned in sorted(uploads, key=lambda u: u.at):
        if planned.loads and Status.COMPLETED in planned.expect:
            rows.update(planned.content.rows)
            origin.update(dict.fromkeys(planned.content.rows, planned.index))
    return rows, origin
