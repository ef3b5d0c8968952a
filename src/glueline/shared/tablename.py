"""The target table's name: schema-qualified, validated before it reaches any SQL. A name only: the SQL
built on it is the job's (``glueline.job.schema``), so the operator's side names a table without a
database driver."""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


@dataclass(frozen=True)
class TableName:
    schema: str
    table: str

    @classmethod
    def parse(cls, qualified: str) -> TableName:
        schema, _, table = qualified.rpartition(".")
        name = cls(schema or "public", table)
        for part in (name.schema, name.table):
            if not _IDENTIFIER.match(part):
                raise ValueError(
                    f"invalid table name {qualified!r}: use lower-case letters, digits and _ (schema.table)"
                )
        return name

    def __str__(self) -> str:
        return f"{self.schema}.{self.table}"
