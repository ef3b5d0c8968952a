"""The audit record and its lifecycle: one DynamoDB item per file version in ``S3_Audit_1``, defined once.

Every status change is a conditional write, so two writers (the schedule and an S3 event, two Lambda
invocations, a Lambda and a Glue run, two Glue runs) can never both win a file:

    PENDING ──claim──▶ PROCESSING ──▶ COMPLETED  (file in processed/)
       │                  ▲   │ └───▶ REJECTED   (file in rejected/: refused, or out of attempts)
       │          retry   │   └─────▶ FAILED     (file stays in source/ for the next attempt)
       │   (attempts left)└────────────  FAILED
       └─header refused by the Lambda─▶ REJECTED

Nothing moves backwards except FAILED → PROCESSING (a retry) and PROCESSING → PROCESSING (a claim whose
holder died — its Glue run ended or the Lambda timed out — is taken over). COMPLETED and REJECTED are
final: the same content uploaded again is moved straight to the same final place and counted as a
redelivery.

Standard library and boto3 only: ships in the Lambda zip and the Glue job's helper code.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer


class Status:
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"

    FINAL = frozenset({COMPLETED, REJECTED})
    # Items that may need a Glue run: new, failed with attempts left, or held by a dead claim.
    WORK = (PENDING, FAILED, PROCESSING)


# Glue run states in which a run may still write its claims.
ACTIVE_RUN_STATES = frozenset({"STARTING", "RUNNING", "STOPPING", "WAITING"})
# A Lambda holds a claim while it rejects a file; no Lambda lives longer than 15 minutes.
LAMBDA_CLAIM_TTL_SECONDS = 900


STATUS_INDEX = "Status-UploadTimestamp-index"


def table_spec(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments: FileID partition key, on-demand, and an index to find files by status."""
    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": "FileID", "AttributeType": "S"},
            {"AttributeName": "Status", "AttributeType": "S"},
            {"AttributeName": "UploadTimestamp", "AttributeType": "S"},
        ],
        "KeySchema": [{"AttributeName": "FileID", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [
            {
                "IndexName": STATUS_INDEX,
                "KeySchema": [
                    {"AttributeName": "Status", "KeyType": "HASH"},
                    {"AttributeName": "UploadTimestamp", "KeyType": "RANGE"},
                ],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    }


def utc_now() -> str:
    return to_timestamp(datetime.now(timezone.utc))


def to_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2024-07-13T08:00:00.000Z`` (sorts as text)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _age_seconds(timestamp: str | None) -> float:
    if not timestamp:
        return float("inf")
    moment = datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    return (datetime.now(timezone.utc) - moment).total_seconds()


class RunChecker:
    """Is a Glue run still alive? (Its claims are then not stale.) Answers are cached per checker."""

    def __init__(self, glue, job_name: str):
        self.glue = glue
        self.job_name = job_name
        self._active: dict[str, bool] = {}

    def __call__(self, run_id: str) -> bool:
        if run_id not in self._active:
            try:
                state = self.glue.get_job_run(JobName=self.job_name, RunId=run_id)["JobRun"]["JobRunState"]
            except self.glue.exceptions.EntityNotFoundException:
                state = "UNKNOWN"  # e.g. a local runner restarted since
            self._active[run_id] = state in ACTIVE_RUN_STATES
        return self._active[run_id]


def needs_run(record: AuditRecord, max_attempts: int, run_is_active) -> bool:
    """Should a Glue run take this item? New files, failed ones with attempts left, dead claims."""
    if record.status == Status.PENDING:
        return True
    if record.status == Status.FAILED:
        return record.attempts < max_attempts
    if record.status == Status.PROCESSING:
        if record.glue_job_id:
            return not run_is_active(record.glue_job_id)
        return _age_seconds(record.processing_start_timestamp) > LAMBDA_CLAIM_TTL_SECONDS
    return False


@dataclass
class AuditRecord:
    """One file version's audit item. Attribute names in DynamoDB are the design's PascalCase names."""

    file_id: str
    file_name: str
    bucket: str
    source_key: str
    etag: str
    size: int
    upload_timestamp: str
    status: str = Status.PENDING
    glue_job_id: str | None = None
    processing_start_timestamp: str | None = None
    processing_end_timestamp: str | None = None
    attempts: int = 0
    integrity: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    rows_read: int | None = None
    rows_loaded: int | None = None
    rows_rejected: int | None = None
    rows_duplicate: int | None = None
    customer_id_filled: int | None = None
    dates_replaced: int | None = None
    final_key: str | None = None
    rejected_rows_key: str | None = None
    error_message: str | None = None
    redeliveries: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    last_redelivery_timestamp: str | None = None
    updated_at: str | None = None

    def to_item(self) -> dict[str, Any]:
        item = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if value is None or value == [] or value == {}:
                continue
            item[_ATTRIBUTE[f.name]] = value
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AuditRecord:
        values = {}
        for f in dataclasses.fields(cls):
            if _ATTRIBUTE[f.name] in item:
                values[f.name] = _plain(item[_ATTRIBUTE[f.name]])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# DynamoDB attribute name for each field: the original design's names, then ours in the same style.
_ATTRIBUTE = {
    "file_id": "FileID",
    "file_name": "FileName",
    "bucket": "Bucket",
    "source_key": "SourceKey",
    "etag": "ETag",
    "size": "Size",
    "upload_timestamp": "UploadTimestamp",
    "status": "Status",
    "glue_job_id": "GlueJobID",
    "processing_start_timestamp": "ProcessingStartTimestamp",
    "processing_end_timestamp": "ProcessingEndTimestamp",
    "attempts": "Attempts",
    "integrity": "Integrity",
    "warnings": "Warnings",
    "rows_read": "RowsRead",
    "rows_loaded": "RowsLoaded",
    "rows_rejected": "RowsRejected",
    "rows_duplicate": "RowsDuplicate",
    "customer_id_filled": "CustomerIDFilled",
    "dates_replaced": "DatesReplaced",
    "final_key": "FinalKey",
    "rejected_rows_key": "RejectedRowsKey",
    "error_message": "ErrorMessage",
    "redeliveries": "Redeliveries",
    "timings": "Timings",
    "last_redelivery_timestamp": "LastRedeliveryTimestamp",
    "updated_at": "UpdatedAt",
}

COUNT_FIELDS = (
    "rows_read",
    "rows_loaded",
    "rows_rejected",
    "rows_duplicate",
    "customer_id_filled",
    "dates_replaced",
)


def _plain(value: Any) -> Any:
    """DynamoDB numbers arrive as Decimal: counts become ints, timings floats."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _decimals(value: Any) -> Any:
    """DynamoDB takes no floats: seconds are stored as Decimals, to the millisecond."""
    if isinstance(value, float):
        return Decimal(str(round(value, 3)))
    if isinstance(value, dict):
        return {k: _decimals(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decimals(v) for v in value]
    return value


def _wire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _serializer.serialize(_decimals(v)) for k, v in item.items()}


def _unwire(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _deserializer.deserialize(v) for k, v in item.items()}


class AuditTable:
    """Conditional reads and writes of audit items; every transition is guarded by the current status."""

    def __init__(self, client, table_name: str):
        self.client = client
        self.table_name = table_name

    def get(self, fid: str) -> AuditRecord | None:
        response = self.client.get_item(TableName=self.table_name, Key={"FileID": {"S": fid}}, ConsistentRead=True)
        return AuditRecord.from_item(_unwire(response["Item"])) if "Item" in response else None

    def create(self, record: AuditRecord, status: str) -> bool:
        """Record a new file version (PENDING, or PROCESSING when the Lambda rejects it itself);
        False when another writer recorded it first."""
        record.status = status
        record.updated_at = utc_now()
        try:
            self.client.put_item(
                TableName=self.table_name,
                Item=_wire(record.to_item()),
                ConditionExpression="attribute_not_exists(FileID)",
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def note_job_run(self, fid: str, run_id: str) -> bool:
        """Record the Glue run started for a still-pending file."""
        return self._update(
            fid, {"GlueJobID": run_id}, condition="#Status = :pending", values={":pending": Status.PENDING}
        )

    def claim(self, seen: AuditRecord, run_id: str) -> AuditRecord | None:
        """Take an item that needs a run (as ``seen``: PENDING, FAILED, or a dead PROCESSING claim) for
        this run: PROCESSING, one more attempt. None when the item changed since it was read."""
        changes = {"Status": Status.PROCESSING, "GlueJobID": run_id, "ProcessingStartTimestamp": utc_now()}
        ok = self._update(
            seen.file_id,
            changes,
            condition="#Status = :seen AND UpdatedAt = :seen_at",
            values={":seen": seen.status, ":seen_at": seen.updated_at, ":one": 1},
            extra_set="Attempts = if_not_exists(Attempts, :zero) + :one",
            extra_values={":zero": 0},
            remove=("ErrorMessage", "ProcessingEndTimestamp"),
        )
        return self.get(seen.file_id) if ok else None

    def complete(self, fid: str, run_id: str, outcome: dict[str, Any]) -> bool:
        """PROCESSING → COMPLETED with the run's counts, final key and warnings."""
        changes = {_ATTRIBUTE[k]: v for k, v in outcome.items() if v is not None and v != []}
        changes.update({"Status": Status.COMPLETED, "ProcessingEndTimestamp": utc_now()})
        return self._finish(fid, run_id, changes)

    def fail(self, fid: str, run_id: str, message: str) -> bool:
        """PROCESSING → FAILED: the file stays in source/ for the next attempt."""
        changes = {"Status": Status.FAILED, "ErrorMessage": message[:2000], "ProcessingEndTimestamp": utc_now()}
        return self._finish(fid, run_id, changes)

    def reject(self, fid: str, reason: str, final_key: str | None, holder: str | None) -> bool:
        """PROCESSING → REJECTED once the file has left source/. ``holder`` is the Glue run holding the
        claim, None for a Lambda's claim."""
        changes = {"Status": Status.REJECTED, "ErrorMessage": reason[:2000], "ProcessingEndTimestamp": utc_now()}
        if final_key:
            changes["FinalKey"] = final_key
        if holder is None:
            return self._update(
                fid,
                changes,
                condition="#Status = :processing AND attribute_not_exists(GlueJobID)",
                values={":processing": Status.PROCESSING},
            )
        return self._finish(fid, run_id=holder, changes=changes)

    def redelivered(self, fid: str, status: str) -> bool:
        """Count one more delivery of content whose outcome (``status``) is final."""
        return self._update(
            fid,
            {"LastRedeliveryTimestamp": utc_now()},
            condition="#Status = :status",
            values={":status": status, ":one": 1},
            extra_set="Redeliveries = if_not_exists(Redeliveries, :zero) + :one",
            extra_values={":zero": 0},
        )

    def work(self, max_attempts: int, run_is_active) -> list[AuditRecord]:
        """Every item a Glue run should take now, oldest upload first."""
        records = [r for status in Status.WORK for r in self.with_status(status)]
        return sorted(
            (r for r in records if needs_run(r, max_attempts, run_is_active)),
            key=lambda r: (r.upload_timestamp, r.file_name),
        )

    def with_status(self, status: str) -> list[AuditRecord]:
        """Items in one status, oldest upload first (the index keeps this cheap)."""
        records: list[AuditRecord] = []
        kwargs: dict[str, Any] = {
            "TableName": self.table_name,
            "IndexName": STATUS_INDEX,
            "KeyConditionExpression": "#Status = :status",
            "ExpressionAttributeNames": {"#Status": "Status"},
            "ExpressionAttributeValues": {":status": {"S": status}},
        }
        while True:
            page = self.client.query(**kwargs)
            records += [AuditRecord.from_item(_unwire(i)) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return records
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def all(self) -> list[AuditRecord]:
        records: list[AuditRecord] = []
        for page in self.client.get_paginator("scan").paginate(TableName=self.table_name):
            records += [AuditRecord.from_item(_unwire(i)) for i in page.get("Items", [])]
        return sorted(records, key=lambda r: (r.upload_timestamp, r.file_name))

    def _finish(self, fid: str, run_id: str, changes: dict[str, Any]) -> bool:
        return self._update(
            fid,
            changes,
            condition="#Status = :processing AND GlueJobID = :run",
            values={":processing": Status.PROCESSING, ":run": run_id},
        )

    def _update(
        self,
        fid: str,
        changes: dict[str, Any],
        *,
        condition: str,
        values: dict[str, Any],
        extra_set: str | None = None,
        extra_values: dict[str, Any] | None = None,
        remove: tuple[str, ...] = (),
    ) -> bool:
        changes = {**changes, "UpdatedAt": utc_now()}
        names = {"#Status": "Status"}
        sets = []
        all_values = dict(values)
        for i, (attribute, value) in enumerate(changes.items()):
            names[f"#a{i}"] = attribute
            all_values[f":v{i}"] = value
            sets.append(f"#a{i} = :v{i}")
        if extra_set:
            sets.append(extra_set)
            all_values.update(extra_values or {})
        expression = "SET " + ", ".join(sets)
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        try:
            self.client.update_item(
                TableName=self.table_name,
                Key={"FileID": {"S": fid}},
                UpdateExpression=expression,
                ConditionExpression=f"attribute_exists(FileID) AND {condition}",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=_wire(all_values),
            )
        except self.client.exceptions.ConditionalCheckFailedException:
            return False
        return True
