"""Glue job arguments, read the way ``awsglue.utils.getResolvedOptions`` reads them.

Glue starts a job script as ``script.py --JOB_NAME n --JOB_RUN_ID jr_… --KEY value …``. Off Glue (the
local runner), the same arguments arrive the same way, and this parser gives the same answer, so the
job script has one code path for its arguments.
"""

from __future__ import annotations


def resolve_options(argv: list[str], names: list[str]) -> dict[str, str]:
    """Values of ``--NAME value`` (or ``--NAME=value``) for each wanted name; a missing one is an error."""
    found: dict[str, str] = {}
    i = 1
    while i < len(argv):
        token = argv[i]
        if token.startswith("--"):
            key, eq, value = token[2:].partition("=")
            if not eq and i + 1 < len(argv):
                value = argv[i + 1]
                i += 1
            found[key] = value
        i += 1
    missing = [n for n in names if n not in found]
    if missing:
        raise SystemExit("missing job argument(s): " + ", ".join("--" + n for n in missing))
    return {n: found[n] for n in names}
