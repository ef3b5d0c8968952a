"""What AWS's error answers mean to the pipeline, spelt once. Standard library only: shipped in the
Lambda zip and the Glue job's library with the rest of ``glueline.shared``."""

from __future__ import annotations

# What S3 answers a request on a version that is no longer there: HeadObject (a bare status code, HEAD
# answers carry no body), GetObject or CopyObject on a deleted key, or conditional on a replaced one.
VERSION_GONE = frozenset({"404", "NoSuchKey", "NotFound", "412", "PreconditionFailed"})


def error_code(err) -> str:
    """The error code of a botocore ClientError ("" when it names none)."""
    return str(err.response.get("Error", {}).get("Code", ""))
