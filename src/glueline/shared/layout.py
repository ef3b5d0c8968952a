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
from typing import TypeGuard

from glueline.shared.awserrors import VERSION_GONE, error_code

SOURCE = "source/"
PROCESSED = "processed/"
REJECTED = "rejected/"
REJECTED_ROWS = "rejected/rows/"
SCRIPTS = "scripts/"
TEMP = "temp/"
SPARK_EVENTS = "spark-events/"  # Spark's event logs of runs with the Spark UI on (Settings.spark_ui)

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


# The FileID a copy was made for, in the copy's user metadata: a copy's ETag is not its source's (S3
# gives a multipart upload's object "<md5 of the part md5s>-<parts>", a copy of it the MD5 of its bytes;
# SSE-KMS objects have neither), so the ETag cannot say "this is the copy an earlier attempt made".
FILE_ID_METADATA = "glueline-file-id"


def copy_of(s3, bucket: str, key: str) -> dict | None:
    """``key``'s HeadObject answer, or None when there is no such key."""
    try:
        return s3.head_object(Bucket=bucket, Key=key)
    except s3.exceptions.ClientError as err:
        if error_code(err) not in ("404", "NoSuchKey", "NotFound"):
            raise
        return None


def made_for(head: dict | None, fid: str, etag: str) -> TypeGuard[dict]:
    """Is this object the copy of file ``fid``? Its metadata says so; a copy made before glueline
    recorded it there is recognized by its ETag, when that is the source's (a single-part upload)."""
    if head is None:
        return False
    return head.get("Metadata", {}).get(FILE_ID_METADATA) == fid or head["ETag"] == etag


def move_object(
    s3, bucket: str, source_key: str, etag: str, size: int, prefix: str, fid: str, snapshot: str | None = None
) -> str:
    """Move exactly the version ``etag`` of ``source_key`` under ``prefix`` (copy, then delete) and return
    its final key. The copy carries ``fid`` in its metadata.

    A version replaced or deleted before it is copied is not lost when its bytes are in a ``snapshot``
    (the run's own copy of the version it loaded: ``s3://bucket/key`` or a local file): the copy is made
    from that, and the new upload stays in source/ as a file of its own.

    Safe to repeat after a crash between copy and delete: the copy an earlier attempt made is found by
    its metadata and not made again, whatever its ETag. The copy and the delete are conditional on the
    version, so a file replaced under the same key meanwhile is neither copied in its place nor deleted:
    it stays in source/ for its own FileID. Different content under the same name goes to a
    disambiguated key. Reading the destination needs ``s3:GetObject`` on it and, for S3 to answer 404
    rather than 403 when it is absent, ``s3:ListBucket`` on the bucket: both roles have them
    (``glueline.ops.deploy.desired``).
    """
    dest = destination_key(prefix, source_key)
    existing = copy_of(s3, bucket, dest)
    if existing is not None and not made_for(existing, fid, etag):
        dest = disambiguated_key(dest, fid)
        existing = copy_of(s3, bucket, dest)
    if not made_for(existing, fid, etag):
        try:
            # The source's metadata, content type and the FileID, from exactly this version.
            source_head = s3.head_object(Bucket=bucket, Key=source_key, IfMatch=etag)
            copied = {
                "Metadata": {**source_head.get("Metadata", {}), FILE_ID_METADATA: fid},
                "ContentType": source_head.get("ContentType", "binary/octet-stream"),
                "CopySourceIfMatch": etag,
            }
            _copy(s3, {"Bucket": bucket, "Key": source_key}, size, bucket, dest, copied, free=existing is None)
        except s3.exceptions.ClientError as err:
            if snapshot is None or error_code(err) not in VERSION_GONE:
                raise
            copied = {"Metadata": {FILE_ID_METADATA: fid}, "ContentType": "text/csv"}
            if snapshot.startswith("s3://"):
                held_bucket, held_key = snapshot.removeprefix("s3://").split("/", 1)
                _copy(s3, {"Bucket": held_bucket, "Key": held_key}, size, bucket, dest, copied, free=existing is None)
            else:
                s3.upload_file(snapshot, bucket, dest, ExtraArgs=copied)
            return dest  # what is under source_key now is another file's
    try:
        s3.delete_object(Bucket=bucket, Key=source_key, IfMatch=etag)
    except s3.exceptions.ClientError as err:
        if error_code(err) not in ("404", "NoSuchKey", "412", "PreconditionFailed"):
            raise  # gone already, or replaced by a new version that is processed under its own FileID
    return dest


def _copy(s3, source: dict, size: int, bucket: str, dest: str, copied: dict, free: bool) -> None:
    """A server-side copy of ``source`` to ``dest`` with the ``copied`` arguments (metadata replaced)."""
    if size > SINGLE_COPY_MAX_BYTES:
        s3.copy(source, bucket, dest, ExtraArgs=copied)
    else:
        # Another writer taking a free name meanwhile makes the copy fail.
        condition = {"IfNoneMatch": "*"} if free else {}
        s3.copy_object(Bucket=bucket, Key=dest, CopySource=source, MetadataDirective="REPLACE", **copied, **condition)
