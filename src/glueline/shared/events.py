"""The events that invoke ETL_Lambda_Function, defined once: what they look like and what they announce.

* S3 "Object Created", delivered by EventBridge (the bucket's EventBridge notifications), or as a classic
  S3 notification (``Records``, keys URL-encoded) where a user wires one up.
* The daily schedule (EventBridge ``Scheduled Event``): a sweep of ``source/``, the safety net for events
  that were lost. ``glueline trigger --schedule`` and the tests send the same event EventBridge sends.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any
from urllib.parse import unquote_plus

from glueline.shared.audit import to_timestamp

SCHEDULED_EVENT = "Scheduled Event"
OBJECT_CREATED = "Object Created"


@dataclass(frozen=True)
class ObjectRef:
    """An object an event announces; what the event did not say is looked up later."""

    bucket: str
    key: str
    etag: str | None = None
    size: int | None = None
    uploaded: str | None = None


def scheduled_event(account: str, region: str, rule: str, *, partition: str = "aws") -> dict[str, Any]:
    """The event an EventBridge schedule rule sends (its rule's ARN in the account's partition)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": SCHEDULED_EVENT,
        "source": "aws.events",
        "account": account,
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:{partition}:events:{region}:{account}:rule/{rule}"],
        "detail": {},
    }


def object_created_event(bucket: str, key: str, *, partition: str = "aws") -> dict[str, Any]:
    """An S3 "Object Created" event as EventBridge delivers it, without the optional object details
    (as a re-sent or hand-made event may lack them)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": OBJECT_CREATED,
        "source": "aws.s3",
        "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "resources": [f"arn:{partition}:s3:::{bucket}"],
        "detail": {"bucket": {"name": bucket}, "object": {"key": key}},
    }


def parse_event(event: dict[str, Any]) -> tuple[list[ObjectRef], bool]:
    """The objects an event announces, and whether it asks for a sweep of ``source/``."""
    if event.get("detail-type") == SCHEDULED_EVENT:
        return [], True
    if event.get("source") == "aws.s3" and "detail" in event:
        detail = event["detail"]
        obj = detail.get("object", {})
        return [
            ObjectRef(
                bucket=detail["bucket"]["name"],
                key=obj["key"],
                etag=obj.get("etag"),
                size=obj.get("size"),
                uploaded=_event_time(event.get("time")),
            )
        ], False
    refs = []
    for record in event.get("Records", []):  # a classic S3 notification: keys are URL-encoded
        if "s3" in record and str(record.get("eventName", "")).startswith("ObjectCreated"):
            s3 = record["s3"]
            refs.append(
                ObjectRef(
                    bucket=s3["bucket"]["name"],
                    key=unquote_plus(s3["object"]["key"]),
                    etag=s3["object"].get("eTag"),
                    size=s3["object"].get("size"),
                    uploaded=_event_time(record.get("eventTime")),
                )
            )
    if not refs:
        raise ValueError("not an S3 Object Created event nor a scheduled event")
    return refs, False


def _event_time(value: str | None) -> str | None:
    if not value:
        return None
    return to_timestamp(datetime.fromisoformat(value.replace("Z", "+00:00")))
