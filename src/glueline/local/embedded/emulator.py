"""MiniStack as the embedded stack runs it: ``python -m glueline.local.embedded.emulator`` is
``python -m ministack`` with one thing added that AWS has and an emulator without Glue cannot: the Glue
service's own events.

On AWS, EventBridge refuses a PutEvents entry with an ``aws.*`` source (only AWS services emit those),
and MiniStack refuses it too. glueline's Glue runner plays the Glue service, so it must be able to put
``Glue Job State Change`` and ``Glue Job Run Status`` events (source ``aws.glue``) on the default bus.
This lets exactly those through: a PutEvents signed with the runner's access key id
(``GLUE_SERVICE_ACCESS_KEY_ID``) whose every entry is one of them from ``aws.glue``. Any other ``aws.*``
entry is refused as before.
(Upstream MiniStack images, as the compose stack runs them, refuse the runner's events; see docs/compose.md.)

It also gives a multipart upload the checksum AWS gives it. On AWS a multipart upload that names
CRC64NVME (which has no other kind), names no algorithm (S3 then computes CRC64NVME) or asks for
``ChecksumType`` FULL_OBJECT gets a checksum of the whole object — what the pipeline's FileID rests on
(``glueline.shared.audit.content_identity``); MiniStack makes each one a composite of its parts'
checksums ("<checksum>-<parts>", COMPOSITE), or none. Composite uploads (CRC32, CRC32C, SHA1 or SHA256
without FULL_OBJECT) stay as MiniStack makes them, as on AWS. (A full-object checksum the client sends
with the completion is not checked against the parts.)

With ``GLUELINE_EMULATOR_DURABLE=1`` it also keeps what it acknowledged across a crash, as AWS does.
MiniStack saves its services' state on a clean shutdown only (S3 objects excepted: they are written
through), so a ``kill -9`` would take the audit table back to its last clean stop. Durable, a request that
changes a service's state is answered only once that service's state is on disk: a group commit (one
save serves every request that arrived while the last one was written). The snapshot is taken on the
event loop, between requests, so it is consistent; each save copies the whole service, so this is for
the soak's fault runs (``bench/soak``), not for a table of 100,000 items. CloudWatch Logs is left out:
nothing depends on a log line surviving a crash, and the runs' output would make every save large. S3
objects are written through by MiniStack itself; a bucket's own settings (its EventBridge notification:
without it no upload raises an event) are saved like the other services' state.

With ``GLUELINE_EMULATOR_REQUEST_LOG=<file>`` it appends a line per request (access key id, service,
operation, status): what the soak prices (bench/soak/figures.py). Every process's calls pass here,
the Lambda's in-process ones too, so nothing of the pipeline is missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import xml.etree.ElementTree as ET

from ministack import app as ministack_app
from ministack.app import main
from ministack.core import persistence
from ministack.services import eventbridge
from ministack.services import s3 as ministack_s3

from glueline.local.embedded.stack import DURABLE_VARIABLE, REQUEST_LOG_VARIABLE
from glueline.local.runner.cloud import GLUE_SERVICE_ACCESS_KEY_ID, RUN_STATUS, STATE_CHANGE

_handle_request = eventbridge.handle_request
GLUE_EVENTS = (STATE_CHANGE, RUN_STATUS)  # what the Glue service emits about job runs


def _from_the_glue_service(headers: dict, body: bytes) -> dict | None:
    """The PutEvents request, if it is the Glue runner's state-change events."""
    signed_by_runner = f"Credential={GLUE_SERVICE_ACCESS_KEY_ID}/" in headers.get("authorization", "")
    if not signed_by_runner or not headers.get("x-amz-target", "").endswith(".PutEvents"):
        return None
    try:
        request = json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    entries = request.get("Entries") or []
    glue_events = all(e.get("Source") == "aws.glue" and e.get("DetailType") in GLUE_EVENTS for e in entries)
    return request if entries and glue_events else None


async def handle_request(method, path, headers, body, query_params):
    request = _from_the_glue_service(headers, body)
    if request is None:
        return await _handle_request(method, path, headers, body, query_params)
    eventbridge._ensure_default_bus()
    return eventbridge._put_events(request, allow_aws_source=True)


eventbridge.handle_request = handle_request

_create_multipart_upload = ministack_s3._create_multipart_upload
_complete_multipart_upload = ministack_s3._complete_multipart_upload
FULL_OBJECT_ALGORITHMS = (None, "CRC64NVME")  # full-object whatever the type asked for (None: S3's default)


def create_multipart_upload(bucket_name: str, key: str, headers: dict):
    """MiniStack's, noting on the upload which full-object checksum AWS would give it, if any."""
    response = _create_multipart_upload(bucket_name, key, headers)
    if response[0] == 200:
        # MiniStack's own answer, made a line above in this process: not input from outside (bandit's B314).
        upload_id = ET.fromstring(response[2]).findtext(f"{{{ministack_s3.S3_NS}}}UploadId")  # nosec B314
        upload = ministack_s3._multipart_uploads[upload_id]
        algorithm = upload.get("checksum_algorithm")
        if algorithm in FULL_OBJECT_ALGORITHMS or headers.get("x-amz-checksum-type", "").upper() == "FULL_OBJECT":
            upload["full_object_checksum"] = algorithm or "CRC64NVME"
    return response


def complete_multipart_upload(bucket_name: str, key: str, body: bytes, query_params: dict, headers: dict | None = None):
    """MiniStack's, then the object's checksum replaced by the full-object one noted at its creation."""
    upload = ministack_s3._multipart_uploads.get(ministack_s3._qp(query_params, "uploadId")) or {}
    algorithm = upload.get("full_object_checksum")
    if algorithm is None:
        return _complete_multipart_upload(bucket_name, key, body, query_params, headers)
    # The client's full-object checksum is not the composite MiniStack would compare it with.
    headers = {k: v for k, v in (headers or {}).items() if not k.lower().startswith("x-amz-checksum-")}
    response = _complete_multipart_upload(bucket_name, key, body, query_params, headers)
    if response[0] == 200:
        obj = ministack_s3._ensure_bucket(bucket_name)["objects"][key]
        body = ministack_s3._read_body(bucket_name, key, obj)  # written through to disk, maybe
        obj["checksums"] = {algorithm: ministack_s3._compute_s3_checksum(algorithm, body)}
        obj["checksum_type"] = "FULL_OBJECT"
        if ministack_s3.S3_PERSIST:
            ministack_s3._persist_object(bucket_name, key, obj)
    return response


ministack_s3._create_multipart_upload = create_multipart_upload
ministack_s3._complete_multipart_upload = complete_multipart_upload

# Requests that change no state worth keeping, by their X-Amz-Target operation (JSON protocols), path
# (a Lambda invocation) or HTTP method.
_READ_OPERATIONS = ("Get", "Describe", "List", "Query", "Scan", "BatchGet", "PutEvents")
_NOT_KEPT = {"logs"}  # see the module's docstring


def changes_state(method: str, path: str, headers: dict) -> bool:
    if method in ("GET", "HEAD", "OPTIONS") or path.endswith("/invocations"):
        return False
    operation = headers.get("x-amz-target", "").rpartition(".")[2]
    return not operation.startswith(_READ_OPERATIONS)


class GroupCommit:
    """Saves the services that requests changed; ``saved`` returns once a save that began after the
    request was handled has finished."""

    def __init__(self):
        self._dirty: set[str] = set()
        self._waiting: list[asyncio.Future] = []
        self._writer: asyncio.Task | None = None

    async def saved(self, state_keys: set[str]) -> None:
        done = asyncio.get_running_loop().create_future()
        self._dirty |= state_keys
        self._waiting.append(done)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write())
        await done

    async def _write(self) -> None:
        getters = ministack_app._build_persistence_save_dict()
        while self._waiting:
            keys, waiting = self._dirty, self._waiting
            self._dirty, self._waiting = set(), []
            try:
                states = {key: getters[key]() for key in keys if key in getters}  # on the loop: consistent
                await asyncio.to_thread(_save, states)
            except Exception as err:  # each waiting request answers 500, which clients retry
                for future in waiting:
                    future.set_exception(err)
                continue
            for future in waiting:
                future.set_result(None)


def _save(states: dict) -> None:
    for key, state in states.items():
        persistence.save_state(key, state)


_dispatch = ministack_app._dispatch_service_request
_commit = GroupCommit()


def _on_object(path: str) -> bool:
    """An S3 request (path style) on an object, not on its bucket."""
    return "/" in path.strip("/")


def operation(service: str, method: str, path: str, headers: dict, query_params: dict) -> str:
    """The API operation a request is, near enough to price it (S3's REST requests by their shape)."""
    target = headers.get("x-amz-target", "")
    if target:
        return target.rpartition(".")[2]
    if service == "s3":
        on_object = _on_object(path)
        if method == "PUT" and on_object:
            return "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
        if method == "GET":
            return "GetObject" if on_object else "ListObjects"
        return {"HEAD": "HeadObject" if on_object else "HeadBucket", "DELETE": "DeleteObject"}.get(method, method)
    if path.endswith("/invocations"):
        return "Invoke"
    return method


def _log_request(log: str, method, path, headers, body, query_params, status) -> None:
    """One JSON line per request: whose (its access key id), which service and operation, the status;
    a transaction's items too (DynamoDB bills each)."""
    service = ministack_app.detect_service(method, path, headers, query_params)
    key = headers.get("authorization", "").partition("Credential=")[2].partition("/")[0]
    line = {"key": key, "service": service, "operation": operation(service, method, path, headers, query_params)}
    if line["operation"] == "TransactWriteItems":
        line["items"] = len(json.loads(body).get("TransactItems", []))
    with open(log, "a", encoding="utf-8") as out:
        out.write(json.dumps({**line, "status": status}) + "\n")


async def dispatch_durably(method, path, headers, body, query_params, request_id):
    response = await _dispatch(method, path, headers, body, query_params, request_id)
    if _REQUEST_LOG:
        _log_request(_REQUEST_LOG, method, path, headers, body, query_params, response[0])
    if _DURABLE and changes_state(method, path, headers):
        params = ministack_app._routing_params(method, path, headers, body, query_params)
        service = ministack_app.detect_service(method, path, headers, params)
        config = ministack_app.SERVICE_REGISTRY.get(service)
        object_write = service == "s3" and _on_object(path)  # S3 writes its objects through itself
        if config is not None and service not in _NOT_KEPT and not object_write:
            try:
                await _commit.saved({config.get("state_key", config["module"])})
            except Exception:  # applied in memory, not kept: as AWS's 500, the outcome is unknown
                return 500, {"Content-Type": "application/json"}, b'{"message": "state not saved"}'
    return response


_DURABLE = os.environ.get(DURABLE_VARIABLE) == "1"
_REQUEST_LOG = os.environ.get(REQUEST_LOG_VARIABLE)
if _DURABLE or _REQUEST_LOG:
    ministack_app._dispatch_service_request = dispatch_durably

if __name__ == "__main__":
    main()
