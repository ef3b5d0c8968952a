"""The audit record, defined once: one DynamoDB item per file version and target in ``S3_Audit_1``, and
its persistence — reads, and conditional writes guarded by the item's current status.

What the statuses mean and when a file moves between them is decided in ``glueline.shared.lifecycle``;
this module only stores it. Attribute names are the PascalCase names of the AWS walkthrough this project
grew from (FileID, FileName, UploadTimestamp, ProcessingStart/EndTimestamp, Status, GlueJobID), then
ours in the same style.

Standard library and boto3 only: ships in the Lambda zip and the Glue job's helper code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from glueline.shared.counts import COUNT_NAMES, Counts


class Status:
    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    REJECTED = "REJECTED"

    FINAL = frozenset({COMPLETED, REJECTED})
    ALL = frozenset({PENDING, PROCESSING, COMPLETED, FAILED, REJECTED})


STATUS_INDEX = "Status-UploadTimestamp-index"
# Files by upload day (UTC), newest or oldest first: small partitions, whatever their status.
DAY_INDEX = "UploadDay-UploadTimestamp-index"
# The FileID of the item whose ``Days`` (a string set) names every upload day that has files.
DAYS_ID = "#days"
# The FileID of the tally item of one upload day (``DailyTally``): not a file's (those are 32 hex digits).
DAILY_PREFIX = "#daily#"
# The FileID of the item naming the file (``File``: its FileID) that one uploaded version of an object
# (bucket, key, ETag) was admitted as, for one target: a version that is gone (moved, overwritten) has
# no checksum left to read, so a late or repeated event for it is matched to its file through this.
VERSION_PREFIX = "#version#"
# The FileID of the item naming the files announced to one Glue run after it was started (queued: see
# ``glueline.intake``), which the run reads by key.
RUN_PREFIX = "#run#"
# A transaction that met another on the same tally is tried again, this many times in all.
CONFLICT_TRIES = 8


@dataclass(frozen=True, kw_only=True)
class AuditQuery:
    """Which audit items to list; every condition given must hold."""

    status: str | None = None  # one of Status
    since: str | None = None  # uploaded at or after this timestamp of ours (``to_timestamp``)
    until: str | None = None  # uploaded before this one
    name: str | None = None  # part of the file name (case-sensitive)
    glue_job_id: str | None = None  # the Glue run that last took the file
    day: str | None = None  # uploaded on this day, YYYY-MM-DD UTC (a query of the day index)


def file_id(bucket: str, key: str, identity: str, target: str) -> str:
    """The audit item's key: one content (``content_identity``) of one object, loaded into one target
    (see ``DbConnection.target``). The same bytes under the same key give the same FileID however often
    they are announced or uploaded; new content under the same key, or another target database, gets a
    new one."""
    digest = hashlib.sha256(f"s3://{bucket}/{key}#{identity}>{target}".encode()).hexdigest()
    return digest[:32]


# Checksums S3 may hold for an object (one: the algorithm its upload chose; S3 computes CRC64NVME for an
# upload that chose none), cryptographic ones first.
CHECKSUM_ALGORITHMS = ("SHA512", "SHA256", "SHA1", "CRC64NVME", "CRC32C", "CRC32", "XXHASH128", "XXHASH64", "XXHASH3")


def content_identity(answer: dict[str, Any], size: int) -> str:
    """What a file's FileID says about its content, from a HeadObject answer (``ChecksumMode='ENABLED'``)
    or a PutObject answer: the same bytes give the same identity however they were uploaded, where S3
    can tell. An ETag cannot: a multipart upload's is "<md5 of the parts' md5s>-<parts>" (another part
    size, another ETag) and an SSE-KMS object's is no MD5 at all. In order:

    * a full-object checksum (``ChecksumType`` FULL_OBJECT, or a single-part object's), with the size;
    * else the ETag where it is the MD5 of the bytes: one part, not encrypted with KMS or a customer key;
    * else the ETag itself (a multipart upload with a composite checksum — "<checksum>-<parts>", which
      depends on the part size too — or an SSE-KMS object without a checksum): the same bytes uploaded
      so again are another file, loaded again (an upsert: no row doubled) and kept apart in processed/.
      Hashing the bytes instead would read the whole object in the Lambda, and still not match a
      checksummed upload of the same bytes.

    A CRC is no cryptographic hash: other bytes with the same CRC, size and key would pass for the same
    file, but only someone who may write to source/ could make them, and such a writer can upload
    anything anyway."""
    etag = quoted_etag(answer["ETag"])
    single_part = "-" not in etag
    kind = answer.get("ChecksumType")
    if kind == "FULL_OBJECT" or (kind is None and single_part):
        for algorithm in CHECKSUM_ALGORITHMS:
            value = answer.get(f"Checksum{algorithm}")
            if value and "-" not in value:
                return f"{algorithm}:{value}:{size}"
    plain = answer.get("ServerSideEncryption", "AES256") == "AES256" and "SSECustomerAlgorithm" not in answer
    if single_part and plain:
        md5 = etag.strip('"')
        return f"MD5:{md5}:{size}"
    return f"ETag:{etag}"


def _version_key(bucket: str, key: str, etag: str, target: str) -> str:
    """The key of the item naming the file one version (``etag``) was admitted as: a FileID of the ETag."""
    return VERSION_PREFIX + file_id(bucket, key, quoted_etag(etag), target)


def quoted_etag(etag: str) -> str:
    """S3 ETags are quoted in API answers but not in EventBridge events; keep one form."""
    return '"' + etag.strip('"') + '"'


def table_spec(table_name: str) -> dict[str, Any]:
    """``CreateTable`` arguments: FileID partition key, on-demand, an index to find files by status (the
    pipeline's work) and one by upload day (the console's pages)."""

    def index(name: str, partition: str) -> dict[str, Any]:
        keys = [
            {"AttributeName": partition, "KeyType": "HASH"},
            {"AttributeName": "UploadTimestamp", "KeyType": "RANGE"},
        ]
        return {"IndexName": name, "KeySchema": keys, "Projection": {"ProjectionType": "ALL"}}

    return {
        "TableName": table_name,
        "BillingMode": "PAY_PER_REQUEST",
        "AttributeDefinitions": [
            {"AttributeName": name, "AttributeType": "S"}
            for name in ("FileID", "Status", "UploadTimestamp", "UploadDay")
        ],
        "KeySchema": [{"AttributeName": "FileID", "KeyType": "HASH"}],
        "GlobalSecondaryIndexes": [index(STATUS_INDEX, "Status"), index(DAY_INDEX, "UploadDay")],
    }


def event(name: str, **details: Any) -> dict[str, Any]:
    """One step of a file's ``History``: what happened (admitted, claimed, a final or FAILED status,
    reopened), when, and its details (GlueJobID, Attempt, Error, Key…; None values left out)."""
    return {"Event": name, "At": utc_now(), **{k: v for k, v in details.items() if v is not None}}


def upload_day(timestamp: str) -> str:
    """The UTC day (YYYY-MM-DD) of a timestamp of ours: the day index's key and a tally's day."""
    return timestamp[:10]


def utc_now() -> str:
    return to_timestamp(datetime.now(timezone.utc))


def to_timestamp(moment: datetime) -> str:
    """ISO 8601 in UTC with milliseconds, e.g. ``2024-07-13T08:00:00.000Z`` (sorts as text)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def from_timestamp(timestamp: str) -> datetime:
    """The moment a timestamp of ours (``to_timestamp``) names."""
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)


def age_seconds(timestamp: str | None) -> float:
    """Seconds since a timestamp of ours; infinite when there is none."""
    if not timestamp:
        return float("inf")
    return (datetime.now(timezone.utc) - from_timestamp(timestamp)).total_seconds()


@dataclass
class AuditRecord:
    """One file version's audit item for one target."""

    file_id: str
    file_name: str
    bucket: str
    source_key: str
    etag: str
    size: int
    upload_timestamp: str
    target: str = ""  # where the rows go: host:port/dbname/schema.table (see DbConnection.target)
    status: str = Status.PENDING
    glue_job_id: str | None = None
    processing_start_timestamp: str | None = None
    processing_end_timestamp: str | None = None
    attempts: int = 0
    integrity: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    counts: Counts | None = None  # set when the job completed the file
    final_key: str | None = None
    rejected_rows_key: str | None = None
    reject_reasons: dict[str, int] = field(default_factory=dict)  # rejected rows per reason code
    error_message: str | None = None
    redeliveries: int | None = None
    timings: dict[str, float] = field(default_factory=dict)
    last_redelivery_timestamp: str | None = None
    gave_up: bool | None = None  # REJECTED because its attempts ran out, not for its content
    history: list[dict[str, Any]] = field(default_factory=list)  # its lifecycle's steps (``event``)
    updated_at: str | None = None

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "counts":
                item.update(count_attributes(value) if value is not None else {})
            elif value is not None and value != [] and value != {} and value != "":
                item[_ATTRIBUTE[f.name]] = value
        item["UploadDay"] = upload_day(self.upload_timestamp)  # the day index's key
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> AuditRecord:
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "counts":
                if all(_COUNT_ATTRIBUTE[n] in item for n in COUNT_NAMES):
                    values["counts"] = Counts(**{n: int(item[_COUNT_ATTRIBUTE[n]]) for n in COUNT_NAMES})
            elif _ATTRIBUTE[f.name] in item:
                values[f.name] = _plain(item[_ATTRIBUTE[f.name]])
        return cls(**values)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# DynamoDB attribute name for each field: the walkthrough's names, then ours in the same style.
_ATTRIBUTE = {
    "file_id": "FileID",
    "file_name": "FileName",
    "bucket": "Bucket",
    "source_key": "SourceKey",
    "etag": "ETag",
    "size": "Size",
    "upload_timestamp": "UploadTimestamp",
    "target": "Target",
    "status": "Status",
    "glue_job_id": "GlueJobID",
    "processing_start_timestamp": "ProcessingStartTimestamp",
    "processing_end_timestamp": "ProcessingEndTimestamp",
    "attempts": "Attempts",
    "integrity": "Integrity",
    "warnings": "Warnings",
    "final_key": "FinalKey",
    "rejected_rows_key": "RejectedRowsKey",
    "reject_reasons": "RejectReasons",
    "error_message": "ErrorMessage",
    "redeliveries": "Redeliveries",
    "timings": "Timings",
    "last_redelivery_timestamp": "LastRedeliveryTimestamp",
    "gave_up": "GaveUp",
    "history": "History",
    "updated_at": "UpdatedAt",
}
_COUNT_ATTRIBUTE = {
    "rows_read": "RowsRead",
    "rows_loaded": "RowsLoaded",
    "rows_rejected": "RowsRejected",
    "rows_duplicate": "RowsDuplicate",
    "customer_id_filled": "CustomerIDFilled",
    "dates_replaced": "DatesReplaced",
}


@dataclass
class DailyTally:
    """What one upload day's files add up to, kept in an item of the audit table by every write that
    changes a file's status — in the same transaction, so it never drifts from the files: how many of
    the day's files are in each status, and the six counts summed over those COMPLETED. The console's
    overview reads a week of these (7 items) instead of the week's files. Items written before tallies
    were kept are in none (docs/lifecycle.md, "Audit item")."""

    day: str  # YYYY-MM-DD (UTC) of the files' UploadTimestamp
    files: dict[str, int] = field(default_factory=dict)  # status → files of that day in it now
    counts: Counts = field(default_factory=Counts)

    @staticmethod
    def key(day: str) -> dict[str, Any]:
        return {"FileID": {"S": DAILY_PREFIX + day}}

    def as_item(self) -> dict[str, Any]:
        return {
            "FileID": DAILY_PREFIX + self.day,
            **{_files_attribute(status): n for status, n in self.files.items()},
            **count_attributes(self.counts),
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> DailyTally:
        files = {status: int(item.get(_files_attribute(status), 0)) for status in sorted(Status.ALL)}
        counts = Counts(**{n: int(item.get(_COUNT_ATTRIBUTE[n], 0)) for n in COUNT_NAMES})
        return cls(item["FileID"].removeprefix(DAILY_PREFIX), files, counts)


def _files_attribute(status: str) -> str:
    return f"Files{status.capitalize()}"


def _tally_change(uploaded: str, old: str | None, new: str, changes: dict[str, Any]) -> dict[str, Any]:
    """The Update of a day's tally for one file moving from ``old`` (None: a new file) to ``new``, with
    the counts ``changes`` sets (a file is COMPLETED once, with its counts)."""
    deltas = {_files_attribute(new): 1, **{a: changes[a] for a in _COUNT_ATTRIBUTE.values() if a in changes}}
    if old is not None:
        deltas[_files_attribute(old)] = -1
    names = {f"#t{i}": name for i, name in enumerate(deltas)}
    return {
        "Key": DailyTally.key(upload_day(uploaded)),
        "UpdateExpression": "ADD " + ", ".join(f"#t{i} :t{i}" for i in range(len(deltas))),
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {f":t{i}": {"N": str(v)} for i, v in enumerate(deltas.values())},
    }


def count_attributes(counts: Counts) -> dict[str, int]:
    return {_COUNT_ATTRIBUTE[name]: value for name, value in counts.as_dict().items()}


def attribute(name: str) -> str:
    """The DynamoDB attribute of an AuditRecord field."""
    return _ATTRIBUTE[name]


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
    """Reads and conditional writes of audit items. A write names the status it expects the item to
    have; when another writer changed the item first, the write does nothing and answers False. A write
    that changes a status updates the upload day's ``DailyTally`` in the same transaction."""

    def __init__(self, client, table_name: str, sleep: Callable[[float], None] = time.sleep):
        self.client = client
        self.table_name = table_name
        self.sleep = sleep

    def get(self, fid: str) -> AuditRecord | None:
        response = self.client.get_item(TableName=self.table_name, Key={"FileID": {"S": fid}}, ConsistentRead=True)
        return AuditRecord.from_item(_unwire(response["Item"])) if "Item" in response else None

    def create(self, record: AuditRecord) -> bool:
        """Store a new item as ``record`` says; False when the FileID exists already."""
        record.updated_at = utc_now()
        item = record.to_item()
        self._register_day(item["UploadDay"])
        put = {"Item": _wire(item), "ConditionExpression": "attribute_not_exists(FileID)"}
        return self._transact(put, _tally_change(record.upload_timestamp, None, record.status, item), "Put")

    def update(
        self,
        fid: str,
        changes: dict[str, Any],
        *,
        expect: dict[str, Any],
        increment: tuple[str, ...] = (),
        remove: tuple[str, ...] = (),
        step: dict[str, Any] | None = None,
        uploaded: str | None = None,
    ) -> AuditRecord | None:
        """Set ``changes`` (attribute → value), add 1 to each ``increment`` attribute, remove the
        ``remove`` attributes and append ``step`` (an ``event``) to its History, if every ``expect``
        attribute has the given value (``None``: is absent). The item as it is now, or None when it was
        not as expected (or does not exist). A new Status needs the expected one and the file's
        ``uploaded`` timestamp: its day's tally moves with it."""
        changes = {**changes, "UpdatedAt": utc_now()}
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        sets, conditions = [], ["attribute_exists(FileID)"]
        for i, (name, value) in enumerate(changes.items()):
            names[f"#s{i}"] = name
            values[f":s{i}"] = value
            sets.append(f"#s{i} = :s{i}")
        for i, name in enumerate(increment):
            names[f"#i{i}"] = name
            sets.append(f"#i{i} = if_not_exists(#i{i}, :zero) + :one")
            values.update({":zero": 0, ":one": 1})
        if step is not None:
            names["#h"] = attribute("history")
            values.update({":step": [step], ":none": []})
            sets.append("#h = list_append(if_not_exists(#h, :none), :step)")
        for i, (name, value) in enumerate(expect.items()):
            names[f"#e{i}"] = name
            if value is None:
                conditions.append(f"attribute_not_exists(#e{i})")
            else:
                values[f":e{i}"] = value
                conditions.append(f"#e{i} = :e{i}")
        expression = "SET " + ", ".join(sets)
        if remove:
            expression += " REMOVE " + ", ".join(remove)
        update = {
            "Key": {"FileID": {"S": fid}},
            "UpdateExpression": expression,
            "ConditionExpression": " AND ".join(conditions),
            "ExpressionAttributeNames": names,
            "ExpressionAttributeValues": _wire(values),
        }
        old, new = expect.get("Status"), changes.get("Status")
        if new is not None and new != old:
            if old is None or uploaded is None:
                raise TypeError("a status change needs the expected status and the file's upload timestamp")
            if not self._transact(update, _tally_change(uploaded, old, new, changes), "Update"):
                return None
            return self.get(fid)  # a transaction answers no item
        try:
            response = self.client.update_item(TableName=self.table_name, ReturnValues="ALL_NEW", **update)
        except self.client.exceptions.ConditionalCheckFailedException:
            return None
        return AuditRecord.from_item(_unwire(response["Attributes"]))

    def _transact(self, write: dict[str, Any], tally: dict[str, Any], kind: str) -> bool:
        """``write`` (a conditional Put or Update of a file's item) and its day's ``tally``, together or
        not at all; False when the item was not as expected. Meeting another transaction on the same
        tally (frequent in a burst: one day, many files) is tried again after a short, random wait."""
        items = [{kind: {"TableName": self.table_name, **write}}, {"Update": {"TableName": self.table_name, **tally}}]
        for attempt in range(CONFLICT_TRIES):
            try:
                self.client.transact_write_items(TransactItems=items)
                return True
            except self.client.exceptions.TransactionCanceledException as err:
                codes = [reason.get("Code") for reason in err.response.get("CancellationReasons", [])]
                if codes and codes[0] == "ConditionalCheckFailed":
                    return False
                if "TransactionConflict" not in codes or attempt == CONFLICT_TRIES - 1:
                    raise
            self.sleep(random.uniform(0, 0.05 * 2**attempt))
        raise AssertionError("unreachable")

    def announce_to(self, run_id: str, fids: Iterable[str]) -> None:
        """Add ``fids`` to the files announced to run ``run_id`` (its --FILE_IDS were set when it was
        started; these join later, while it waits in Glue's queue)."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"FileID": {"S": RUN_PREFIX + run_id}},
            UpdateExpression="ADD #files :fids",
            ExpressionAttributeNames={"#files": "FileIDs"},
            ExpressionAttributeValues={":fids": {"SS": sorted(fids)}},
        )

    def announced_to(self, run_id: str) -> list[str]:
        """The files announced to run ``run_id`` since it was started (``announce_to``)."""
        key = {"FileID": {"S": RUN_PREFIX + run_id}}
        item = self.client.get_item(TableName=self.table_name, Key=key, ConsistentRead=True).get("Item", {})
        return sorted(item.get("FileIDs", {}).get("SS", []))

    def remember_version(self, bucket: str, key: str, etag: str, target: str, fid: str) -> None:
        """Note that version ``etag`` of ``key`` is file ``fid`` (for ``version_file``)."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"FileID": {"S": _version_key(bucket, key, etag, target)}},
            UpdateExpression="SET #file = :fid",
            ExpressionAttributeNames={"#file": "File"},
            ExpressionAttributeValues={":fid": {"S": fid}},
        )

    def version_file(self, bucket: str, key: str, etag: str, target: str) -> str | None:
        """The FileID version ``etag`` of ``key`` was admitted as for ``target``; None if it never was."""
        key_ = {"FileID": {"S": _version_key(bucket, key, etag, target)}}
        item = self.client.get_item(TableName=self.table_name, Key=key_, ConsistentRead=True).get("Item")
        return item["File"]["S"] if item else None

    def _register_day(self, day: str) -> None:
        """Name ``day`` among the upload days with files, before its first file is written (a day named
        whose file then failed to be written is an empty day: harmless). Every time, not once per
        process: a warm Lambda outlives what it would remember (a table emptied and refilled)."""
        self.client.update_item(
            TableName=self.table_name,
            Key={"FileID": {"S": DAYS_ID}},
            UpdateExpression="ADD #days :day",
            ExpressionAttributeNames={"#days": "Days"},
            ExpressionAttributeValues={":day": {"SS": [day]}},
        )

    def upload_days(self) -> list[str]:
        """Every upload day that has files (YYYY-MM-DD, oldest first)."""
        item = self.client.get_item(TableName=self.table_name, Key={"FileID": {"S": DAYS_ID}}).get("Item", {})
        return sorted(item.get("Days", {}).get("SS", []))

    def daily(self, days: list[str]) -> dict[str, DailyTally]:
        """The tallies of these upload days (a day with no file has none), 100 a request."""
        tallies: dict[str, DailyTally] = {}
        for start in range(0, len(days), 100):
            keys = [DailyTally.key(day) for day in days[start : start + 100]]
            wanted: dict[str, Any] = {self.table_name: {"Keys": keys}}
            while wanted:
                answer = self.client.batch_get_item(RequestItems=wanted)
                for item in answer["Responses"].get(self.table_name, []):
                    tally = DailyTally.from_item(_unwire(item))
                    tallies[tally.day] = tally
                wanted = answer.get("UnprocessedKeys") or {}
        return tallies

    def with_status(self, status: str) -> list[AuditRecord]:
        """Items in one status, oldest upload first (the index keeps this cheap)."""
        return self.find(AuditQuery(status=status))

    def all(self) -> list[AuditRecord]:
        return self.find(AuditQuery())

    def tallies_disagree(self, records: list[AuditRecord] | None = None) -> dict[str, tuple]:
        """Each upload day whose tally (kept by the writes, in their transactions) differs from what its
        files (``records``, else all) add up to: day → (tally, the files' sum); empty when they agree.
        A check for tests and the soak: ask once the pipeline is quiet, or a file changing status
        between the two reads looks like a difference."""
        truth: dict[str, DailyTally] = {}
        for record in self.all() if records is None else records:
            day = upload_day(record.upload_timestamp)
            tally = truth.setdefault(day, DailyTally(day, dict.fromkeys(sorted(Status.ALL), 0)))
            tally.files[record.status] += 1
            if record.status == Status.COMPLETED and record.counts:
                tally.counts += record.counts
        kept = self.daily(sorted(set(truth) | set(self.upload_days())))
        return {
            day: (kept.get(day), truth.get(day))
            for day in sorted(set(truth) | set(kept))
            if kept.get(day) != truth.get(day)
        }

    def find(self, query: AuditQuery, newest_first: bool = False, limit: int | None = None) -> list[AuditRecord]:
        """The items ``query`` selects, oldest upload first (or newest). A day is a query of the day
        index, else a status one of the status index (either with the upload time in its key condition,
        read in the order asked and only as far as ``limit``), anything else a scan; the other conditions
        filter on the server. Indexes are eventually consistent on AWS: an item that changed status a
        moment ago may show under its former one."""
        operation, request = self._request(query)
        if operation == "query":
            request["ScanIndexForward"] = not newest_first
            if limit is not None and "FilterExpression" not in request:
                request["Limit"] = limit  # read no more than is asked (with a filter, 1 MB pages: fewer requests)
        records: list[AuditRecord] = []
        for page in self.client.get_paginator(operation).paginate(**request):
            records += [AuditRecord.from_item(_unwire(i)) for i in page.get("Items", [])]
            if operation == "query" and limit is not None and len(records) >= limit:
                break
        records.sort(key=lambda r: (r.upload_timestamp, r.file_name), reverse=newest_first)
        return records if limit is None else records[:limit]

    def _request(self, query: AuditQuery) -> tuple[str, dict[str, Any]]:
        """The Query (of the day index or the status index) or Scan that selects ``query``'s items."""
        names: dict[str, str] = {}
        values: dict[str, Any] = {}
        key: list[str] = []
        filters: list[str] = []
        if query.day:
            names["#Day"], values[":day"] = "UploadDay", {"S": query.day}
            key.append("#Day = :day")
        if query.status:
            names["#Status"], values[":status"] = "Status", {"S": query.status}
            (filters if query.day else key).append("#Status = :status")
        if query.since:
            names["#Upload"], values[":since"] = "UploadTimestamp", {"S": query.since}
            (key if key else filters).append("#Upload >= :since")
        if query.until:
            names["#Upload"], values[":until"] = "UploadTimestamp", {"S": query.until}
            filters.append("#Upload < :until")
        if query.name:
            names["#Name"], values[":name"] = "FileName", {"S": query.name}
            filters.append("contains(#Name, :name)")
        if query.glue_job_id:
            names["#Run"], values[":run"] = "GlueJobID", {"S": query.glue_job_id}
            filters.append("#Run = :run")
        if not key:  # a scan: files only, not the days' tallies (every file has a Status)
            names["#Status"] = "Status"
            filters.append("attribute_exists(#Status)")
        request: dict[str, Any] = {"TableName": self.table_name}
        if key:
            index = DAY_INDEX if query.day else STATUS_INDEX
            request |= {"IndexName": index, "KeyConditionExpression": " AND ".join(key)}
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeNames"] = names
        if values:
            request["ExpressionAttributeValues"] = values
        return ("query" if key else "scan"), request
