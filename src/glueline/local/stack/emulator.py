"""MiniStack as the embedded stack runs it: ``python -m glueline.local.stack.emulator`` is
``python -m ministack`` with one thing added that AWS has and an emulator without Glue cannot: the Glue
service's own events.

On AWS, EventBridge refuses a PutEvents entry with an ``aws.*`` source (only AWS services emit those),
and MiniStack refuses it too. glueline's Glue runner plays the Glue service, so it must be able to put
``Glue Job State Change`` events (source ``aws.glue``) on the default bus. This lets exactly that
through: a PutEvents signed with the runner's access key id (``GLUE_SERVICE_ACCESS_KEY_ID``) whose every
entry is a Glue Job State Change from ``aws.glue``. Any other ``aws.*`` entry is refused as before.
(Upstream MiniStack images, as the compose stack runs them, refuse the runner's events; see README.)
"""

from __future__ import annotations

import json

from ministack.app import main
from ministack.services import eventbridge

from glueline.local.runner.cloud import GLUE_SERVICE_ACCESS_KEY_ID, STATE_CHANGE

_handle_request = eventbridge.handle_request


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
    glue_events = all((e.get("Source"), e.get("DetailType")) == ("aws.glue", STATE_CHANGE) for e in entries)
    return request if entries and glue_events else None


async def handle_request(method, path, headers, body, query_params):
    request = _from_the_glue_service(headers, body)
    if request is None:
        return await _handle_request(method, path, headers, body, query_params)
    eventbridge._ensure_default_bus()
    return eventbridge._put_events(request, allow_aws_source=True)


eventbridge.handle_request = handle_request

if __name__ == "__main__":
    main()
