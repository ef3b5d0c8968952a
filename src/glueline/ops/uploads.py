"""``glueline run``: upload files to source/, let the S3 events drive the pipeline, wait, report.

The command does not process anything itself: the upload raises S3 "Object Created" events, EventBridge
invokes ETL_Lambda_Function, which starts ETL_Job_to_RDS, exactly as on AWS. This module only watches
the audit items of the files it uploaded until each reaches an outcome.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import threading
from dataclasses import dataclass
from io import BufferedIOBase
from pathlib import Path

import psycopg
from psycopg import sql
from rich.console import Console
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from glueline.job.schema import identifier, statement_timeout
from glueline.polling import wait_for
from glueline.shared import layout
from glueline.shared.audit import AuditRecord, AuditTable, Status, content_identity, file_id, utc_now
from glueline.shared.dbsecret import DbConnection
from glueline.shared.tablename import TableName

# Outcomes a run waits for: the two final places, and FAILED (the file stays in source/ for a retry).
OUTCOMES = Status.FINAL | {Status.FAILED}


class InputError(ValueError):
    pass


@dataclass(frozen=True)
class Upload:
    path: Path
    key: str
    file_id: str
    target: str
    sent_at: str  # audit items last written before this belong to an earlier upload of the same content


def collect_files(paths: list[Path]) -> list[Path]:
    """CSV files named directly, and the ``*.csv`` files of named directories, in name order."""
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(".csv"))
        elif path.is_file():
            files.append(path)
        else:
            raise InputError(f"no such file or directory: {path}")
    if not files:
        raise InputError("no CSV files to upload in " + ", ".join(map(str, paths)))
    names = [f.name for f in files]
    clashes = sorted({n for n in names if names.count(n) > 1})
    if clashes:
        raise InputError("two files would get the same S3 key: " + ", ".join(clashes))
    return files


SINGLE_PUT_MAX_BYTES = 5 * 1024**3  # one PutObject takes at most 5 GB


def put_identified(s3, bucket: str, key: str, body: BufferedIOBase, size: int) -> str:
    """PutObject asking S3 to keep the body's SHA-256; the content identity of the FileID the Lambda will
    admit it as (``content_identity``). Computed here, not read back: by the time a HEAD could ask, the
    Lambda may already have moved the object (a redelivery takes no Glue run), and not every emulator
    answers a PutObject with its checksum."""
    checksum = base64.b64encode(hashlib.file_digest(body, "sha256").digest()).decode()
    body.seek(0)
    etag = s3.put_object(Bucket=bucket, Key=key, Body=body, ChecksumAlgorithm="SHA256")["ETag"]
    return content_identity({"ETag": etag, "ChecksumSHA256": checksum, "ChecksumType": "FULL_OBJECT"}, size)


def upload(s3, bucket: str, files: list[Path], target: str, folder: str = "") -> list[Upload]:
    """Put each file under source/``folder``; ``target`` (see DbConnection.target) is part of its FileID."""
    uploads = []
    for path in files:
        key = layout.SOURCE + folder + path.name
        sent_at = utc_now()
        size = path.stat().st_size
        if size <= SINGLE_PUT_MAX_BYTES:
            with open(path, "rb") as body:
                identity = put_identified(s3, bucket, key, body, size)
        else:
            s3.upload_file(str(path), bucket, key)
            identity = content_identity(s3.head_object(Bucket=bucket, Key=key, ChecksumMode="ENABLED"), size)
        uploads.append(Upload(path, key, file_id(bucket, key, identity, target), target, sent_at))
    return uploads


def wait_for_outcomes(
    audit: AuditTable, uploads: list[Upload], timeout: float, console: Console, poll: float = 0.5
) -> list[AuditRecord | None]:
    """Poll the audit items until every file has an outcome or ``timeout`` seconds pass.

    Only an outcome written after the upload counts: identical content uploaded again has the same
    FileID, and its item still shows the previous outcome until the Lambda reopens it.
    """
    records: dict[str, AuditRecord | None] = {u.file_id: None for u in uploads}

    def settled(record: AuditRecord | None, upload_: Upload) -> bool:
        return record is not None and record.status in OUTCOMES and (record.updated_at or "") >= upload_.sent_at

    columns = [
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TimeElapsedColumn(),
    ]
    with Progress(*columns, console=console, transient=True, disable=not console.is_terminal) as progress:
        task = progress.add_task("waiting for the pipeline", total=len(uploads))

        def all_settled() -> bool:
            for upload_ in uploads:
                if not settled(records[upload_.file_id], upload_):
                    records[upload_.file_id] = audit.get(upload_.file_id)
            done = [u for u in uploads if settled(records[u.file_id], u)]
            busy = [r.file_name for r in records.values() if r is not None and r.status == Status.PROCESSING]
            description = "processing " + ", ".join(busy[:3]) if busy else "waiting for the pipeline"
            progress.update(task, completed=len(done), description=description)
            return len(done) == len(uploads)

        try:
            wait_for(all_settled, timeout, "the pipeline's outcomes", interval=poll)
        except TimeoutError:
            waiting = [u for u in uploads if not settled(records[u.file_id], u)]
            console.print(
                f"timed out after {timeout:.0f} s waiting for the outcome of {len(waiting)} file(s) "
                f"(--timeout): {', '.join(_still_waiting(u, records[u.file_id]) for u in waiting[:5])}"
                + (", …" if len(waiting) > 5 else "")
            )
    # An unsettled item still showing an earlier upload's outcome says nothing about this one.
    return [
        r if settled(r, u) or (r is not None and r.status not in OUTCOMES) else None
        for u, r in ((u, records[u.file_id]) for u in uploads)
    ]


def _still_waiting(upload_: Upload, record: AuditRecord | None) -> str:
    if record is None or record.status in OUTCOMES:
        return f"{upload_.path.name} (not recorded yet)"
    run = f" in Glue run {record.glue_job_id}" if record.glue_job_id else ""
    return f"{upload_.path.name} ({record.status}{run})"


def placeholder(upload_: Upload) -> AuditRecord:
    """The report line of an upload the pipeline recorded no outcome for (within the wait)."""
    return AuditRecord(
        file_id=upload_.file_id,
        file_name=upload_.path.name,
        bucket="",
        source_key=upload_.key,
        etag="",
        size=upload_.path.stat().st_size,
        upload_timestamp="",
        target=upload_.target,
        status="NOT_SEEN",
        error_message=(
            "no outcome recorded for this upload within the wait: was the S3 event delivered? "
            "`glueline trigger --schedule` sweeps source/"
        ),
    )


COUNT_ROWS_SECONDS = 30  # the report's row count waits no longer (a hung database answers never)


def count_rows(db: DbConnection | None, table: TableName) -> int | None:
    """The target table's rows for the report; None when it cannot say within COUNT_ROWS_SECONDS."""
    if db is None:
        return None
    counted: list[int] = []

    def count() -> None:
        with contextlib.suppress(psycopg.Error), psycopg.connect(**db.connect_kwargs()) as conn:
            conn.execute(statement_timeout(COUNT_ROWS_SECONDS))
            row = conn.execute(sql.SQL("SELECT count(*) FROM {}").format(identifier(table))).fetchone()
            counted.append(row[0] if row else 0)

    # A stopped server still acknowledges at the TCP level: only giving up on the thread bounds that.
    worker = threading.Thread(target=count, name="count-rows", daemon=True)
    worker.start()
    worker.join(COUNT_ROWS_SECONDS)
    return counted[0] if counted else None
