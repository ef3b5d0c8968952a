"""A seeded generator of bank transaction files in the shape of the data contract.

Dirty rows are injected at known positions, so every generated file comes with the counts a correct
run must report: blank CustomerIDs, bad dates, rows the contract rejects, and TransactionIDs repeated
later in the file (the last occurrence wins).
"""

from __future__ import annotations

import csv
import random
from collections import Counter
from pathlib import Path

from glueline.shared.contract import COLUMNS
from glueline.shared.counts import Counts

HEADER = list(COLUMNS)
CURRENCIES = ["USD", "EUR", "GBP", "JEP", "SCR", "GNF", "TND", "UYU", "INR", "JPY", "CHF", "ZAR"]
TYPES = ["deposit", "withdrawal", "transfer", "payment"]
WORDS = (
    "western agent drive remain the key such character value may myself transfer rent coffee grocery "
    "salary refund fuel pharmacy online store invoice utilities"
).split()
# Rows the contract rejects, one per reason (field overrides applied to an otherwise good row).
REJECTABLE = [
    {"TransactionID": ""},
    {"TransactionID": "12x4"},
    {"TransactionAmount": "12.345"},
    {"TransactionAmount": "ten"},
    {"AccountBalance": "1,000.00"},
    {"BranchCode": "B12"},
    {"MerchantCode": "4.5"},
    {"Currency": "EURO"},
]
BAD_DATES = ["2024-02-30", "13/07/2024", "", "2024-7-5", "yesterday", "2024-13-01"]


def _good_row(rng: random.Random, transaction_id: int) -> dict[str, str]:
    description = " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 4))).capitalize() + "."
    return {
        "TransactionID": str(transaction_id),
        "AccountNumber": "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
        + "".join(rng.choice("0123456789") for _ in range(14)),
        "CustomerID": str(rng.randint(1000, 9999)),
        "TransactionDate": f"2024-07-{rng.randint(1, 31):02d}",
        "TransactionType": rng.choice(TYPES),
        "TransactionAmount": f"{rng.uniform(-1000, 1000):.2f}",
        "Currency": rng.choice(CURRENCIES),
        "AccountBalance": f"{rng.uniform(0, 100000):.2f}",
        "BranchCode": str(rng.randint(1, 99)),
        "MerchantCode": str(rng.randint(1, 999)) if rng.random() < 0.8 else "",
        "Description": description,
    }


def generate_rows(
    rows: int,
    seed: int = 7,
    dirty: float = 0.02,
    first_id: int = 100_000,
    duplicates: bool = True,
    line_breaks: bool = True,
):
    """Yield ``rows`` records (dicts) and finally return their Counts (via StopIteration.value).

    Of the dirty rows, about 15% repeat an earlier TransactionID (unless ``duplicates`` is False), 15%
    are rejectable, 35% have a blank CustomerID and 35% a bad TransactionDate. About 2% of the clean
    rows carry harmless noise: padded upper-case types and a quoted description with commas, quotes
    and (if ``line_breaks``) a line break.
    """
    rng = random.Random(seed)
    tally: Counter[str] = Counter()
    recent: list[dict[str, str]] = []  # clean rows that a later duplicate may repeat
    next_id = first_id
    for _ in range(rows):
        roll = rng.random()
        if duplicates and roll < dirty * 0.15 and recent:  # a later version of an earlier clean row
            row = dict(recent.pop(rng.randrange(len(recent))))
            row["TransactionAmount"] = f"{rng.uniform(-1000, 1000):.2f}"
            tally["rows_duplicate"] += 1
            tally["rows_read"] += 1
            yield row
            continue
        row = _good_row(rng, next_id)
        next_id += 1
        if roll < dirty * 0.30:
            row.update(rng.choice(REJECTABLE))
            tally["rows_rejected"] += 1
        elif roll < dirty * 0.65:
            row["CustomerID"] = rng.choice(["", "   "])
            tally["customer_id_filled"] += 1
        elif roll < dirty:
            row["TransactionDate"] = rng.choice(BAD_DATES)
            tally["dates_replaced"] += 1
        else:
            if rng.random() < 0.02:  # harmless noise the cleaning must absorb
                row["TransactionType"] = f"  {row['TransactionType'].upper()} "
                second = "\na second line" if line_breaks else " a second clause"
                row["Description"] = f'{row["Description"][:-1]}, "quoted", and{second}.'
            recent.append(row)
            if len(recent) > 1000:
                recent.pop(0)
        tally["rows_read"] += 1
        yield row
    tally["rows_loaded"] = tally["rows_read"] - tally["rows_rejected"] - tally["rows_duplicate"]
    return Counts(**tally)


def write_file(
    path: Path,
    rows: int,
    seed: int = 7,
    dirty: float = 0.02,
    first_id: int = 100_000,
    crlf: bool = False,
    duplicates: bool = True,
    line_breaks: bool = True,
) -> Counts:
    """Write a CSV file and return the counts a correct run reports for it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.DictWriter(out, HEADER, lineterminator="\r\n" if crlf else "\n")
        writer.writeheader()
        generator = generate_rows(rows, seed, dirty, first_id, duplicates, line_breaks)
        while True:
            try:
                writer.writerow(next(generator))
            except StopIteration as done:
                return done.value
