"""The six counts of a processed file, defined once: what the job records in the audit item, what the
report totals, and what the sample generator predicts for the files it writes.

They reconcile: every record read is loaded, rejected, or a duplicate of a later record of the same file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields


@dataclass(frozen=True)
class Counts:
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    rows_duplicate: int = 0
    customer_id_filled: int = 0  # blank CustomerID → N/A, among the loaded rows
    dates_replaced: int = 0  # invalid TransactionDate → the run's date, among the loaded rows

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected + self.rows_duplicate

    def __add__(self, other: Counts) -> Counts:
        return Counts(**{name: getattr(self, name) + getattr(other, name) for name in COUNT_NAMES})

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


COUNT_NAMES: tuple[str, ...] = tuple(f.name for f in fields(Counts))
