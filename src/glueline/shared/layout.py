"""The S3 layout of the pipeline bucket, defined once.

    source/<name>                       files waiting to be processed (the only prefix that triggers the Lambda)
    processed/<name>                    files whose rows are in the database
    rejected/<name>                     files refused as a whole (the audit item says why)
    rejected/rows/<name>/<run-id>.csv   rows of a processed file that could not be loaded, with reasons
    scripts/                            the Glue job script and its helper code

A file keeps its name when it moves. If its destination already holds *different* content (a file
replaced under the same key and processed again), the FileID is added to the name so that nothing is
overwritten: ``processed/daily.csv`` then ``processed/daily.<fileid8>.csv``.
"""

from __future__ import annotations

import posixpath

SOURCE = "source/"
PROCESSED = "processed/"
REJECTED = "rejected/"
REJECTED_ROWS = "rejected/rows/"
SCRIPTS = "scripts/"
TEMP = "temp/"

ALL_PREFIXES = (SOURCE, PROCESSED, REJECTED, SCRIPTS, TEMP)


def is_source_key(key: str) -> bool:
    return key.startswith(SOURCE) and not key.endswith("/") and len(key) > len(SOURCE)


def file_name(source_key: str) -> str:
    """The file's name: its key below ``source/`` (sub-folders kept)."""
    return source_key[len(SOURCE) :] if source_key.startswith(SOURCE) else source_key


def destination_key(prefix: str, source_key: str) -> str:
    return prefix + file_name(source_key)


def disambiguated_key(key: str, fid: str) -> str:
    stem, ext = posixpath.splitext(key)
    return f"{stem}.{fid[:8]}{ext}"


def rejected_rows_key(source_key: str, run_id: str) -> str:
    return f"{REJECTED_ROWS}{file_name(source_key)}/{run_id}.csv"


# One CopyObject copies at most 5 GB; a larger object is copied in parts (UploadPartCopy), each part
# pinned to the same version.
SINGLE_COPY_MAX_BYTES = 5 * 1024**3


def move_object(s3, bucket: str, source_key: str, etag: str, size: int, prefix: str, fid: str) -> str:
    """Move exactly the version ``etag`` of ``source_key`` under ``prefix`` (copy, then delete) and return
    its final key.

    Safe to repeat after a crash between copy and delete: a destination holding the same content is
    simply overwritten with it again. The copy and the delete are conditional on the version, so a file
    replaced under the same key meanwhile is neither copied in its place nor deleted: it stays in source/
    for its own FileID. Reading the destination needs ``s3:GetObject`` on it and, for S3 to answer 404
    rather than 403 when it is absent, ``s3:ListBucket`` on the bucket: both roles have them
    (``glueline.ops.deploy.desired``).
    """
    dest = destination_key(prefix, source_key)
    try:
        existing = s3.head_object(Bucket=bucket, Key=dest)
    except s3.exceptions.ClientError as err:
        if _error_code(err) not in ("404", "NoSuchKey", "NotFound"):
            raise
        condition = {"IfNoneMatch": "*"}  # another writer taking the name meanwhile makes the copy fail
    else:
        condition = {}
        if existing["ETag"] != etag:
            dest = disambiguated_key(dest, fid)
    source = {"Bucket": bucket, "Key": source_key}
    if size > SINGLE_COPY_MAX_BYTES:
        s3.copy(source, bucket, dest, ExtraArgs={"CopySourceIfMatch": etag})
    else:
        s3.copy_object(Bucket=bucket, Key=dest, CopySource=source, CopySourceIfMatch=etag, **condition)
    try:
        s3.delete_object(Bucket=bucket, Key=source_key, IfMatch=etag)
    except s3.exceptions.ClientError as err:
        if _error_code(err) not in ("404", "NoSuchKey", "412", "PreconditionFailed"):
            raise  # gone already, or replaced by a new version that is processed under its own FileID
    return dest


def _error_code(err) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))
