"""The local Glue runner's HTTP front: the AWS Glue JSON 1.1 protocol, so an unmodified boto3 ``glue``
client works against it (``AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:PORT`` or a profile's ``services``).

As moto's ``responses.py``: read a request's parameters, ask the backend, answer. Every call is
``POST /`` with ``X-Amz-Target: AWSGlue.<Operation>``; requests are validated against botocore's own
Glue service model and Glue's rules (``validation``), errors come back as ``{"__type": ..., "Message":
...}`` (``exceptions``; HTTP 400: the model's error shapes name it ``Message``), timestamps as epoch
seconds. The SigV4 signature is not checked: this is a local development service bound to 127.0.0.1.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from glueline.local.runner.backend import GlueBackend
from glueline.local.runner.exceptions import GlueError, InvalidInputException
from glueline.local.runner.validation import validate_request

log = logging.getLogger("glueline.local.runner")


def _page(items: list, request: dict, key: str, default_size: int = 100) -> dict:
    """One page of ``items``; NextToken is opaque to clients, and one the runner did not issue is an
    InvalidInputException (not a 500, which clients would retry)."""
    token = request.get("NextToken")
    try:
        start = json.loads(base64.urlsafe_b64decode(token.encode()))["offset"] if token else 0
        if not isinstance(start, int) or start < 0:
            raise ValueError(start)
    except (ValueError, KeyError, TypeError, json.JSONDecodeError, binascii.Error) as err:
        raise InvalidInputException(f"Invalid NextToken: {token!r}") from err
    size = request.get("MaxResults") or default_size
    page: dict[str, Any] = {key: items[start : start + size]}
    if start + size < len(items):
        page["NextToken"] = base64.urlsafe_b64encode(json.dumps({"offset": start + size}).encode()).decode()
    return page


def _batch_stop(backend: GlueBackend, r: dict) -> dict:
    stopped, errors = backend.stop_runs(r["JobName"], r["JobRunIds"])
    return {"SuccessfulSubmissions": stopped, "Errors": errors}


OPERATIONS = {
    "CreateJob": lambda backend, r: backend.create_job(r),
    "UpdateJob": lambda backend, r: backend.update_job(r["JobName"], r["JobUpdate"]),
    "GetJob": lambda backend, r: {"Job": backend.get_job(r["JobName"])},
    "GetJobs": lambda backend, r: _page(backend.get_jobs(), r, "Jobs"),
    "ListJobs": lambda backend, r: _page(backend.list_jobs(r.get("Tags", {})), r, "JobNames"),
    "BatchGetJobs": lambda backend, r: backend.batch_get_jobs(r["JobNames"]),
    "DeleteJob": lambda backend, r: backend.delete_job(r["JobName"]),
    "StartJobRun": lambda backend, r: {"JobRunId": backend.start_run(r["JobName"], r)},
    "GetJobRun": lambda backend, r: {"JobRun": backend.get_run(r["JobName"], r["RunId"])},
    "GetJobRuns": lambda backend, r: _page(backend.get_runs(r["JobName"]), r, "JobRuns"),
    "BatchStopJobRun": _batch_stop,
    "GetJobBookmark": lambda backend, r: {"JobBookmarkEntry": backend.get_bookmark(r["JobName"], r.get("RunId"))},
    "ResetJobBookmark": lambda backend, r: {"JobBookmarkEntry": backend.reset_bookmark(r["JobName"], r.get("RunId"))},
    "CreateConnection": lambda backend, r: backend.create_connection(r),
    "UpdateConnection": lambda backend, r: backend.update_connection(r["Name"], r["ConnectionInput"]),
    "GetConnection": lambda backend, r: {"Connection": backend.get_connection(r["Name"], r.get("HidePassword", False))},
    "GetConnections": lambda backend, r: _page(
        backend.get_connections(r.get("HidePassword", False)), r, "ConnectionList"
    ),
    "DeleteConnection": lambda backend, r: backend.delete_connection(r["ConnectionName"]),
    "GetTags": lambda backend, r: {"Tags": backend.get_tags(r["ResourceArn"])},
    "TagResource": lambda backend, r: backend.tag(r["ResourceArn"], r["TagsToAdd"], []),
    "UntagResource": lambda backend, r: backend.tag(r["ResourceArn"], {}, r["TagsToRemove"]),
}


def handle(backend: GlueBackend, target: str, body: bytes) -> tuple[int, dict]:
    """Answer one Glue API call: (HTTP status, JSON body)."""
    operation = target.rpartition(".")[2]
    try:
        if operation not in OPERATIONS:
            raise InvalidInputException(
                f"{operation or 'this operation'} is not supported by glueline's local Glue runner "
                f"(supported: {', '.join(OPERATIONS)})",
            )
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError as err:
            raise InvalidInputException(f"request body is not JSON: {err}") from err
        validate_request(operation, request)
        return 200, OPERATIONS[operation](backend, request)
    except GlueError as err:
        return 400, {"__type": err.error_type, "Message": err.message}
    except Exception as err:  # a bug here must not look like a client error
        log.exception("internal error in %s", operation)
        return 500, {"__type": "InternalServiceException", "Message": f"{type(err).__name__}: {err}"}


def make_server(backend: GlueBackend, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = handle(backend, self.headers.get("X-Amz-Target", ""), body)
            self._send(status, payload)

        def do_GET(self):  # health, and whether a warm job process waits (see GlueBackend.standby_state)
            self._send(
                200, {"status": "running", "service": "glueline-glue-runner", "standby": backend.standby_state()}
            )

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload, default=str).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/x-amz-json-1.1")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("x-amzn-RequestId", "00000000-0000-0000-0000-000000000000")
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, fmt, *args):
            log.debug("%s " + fmt, self.address_string(), *args)

    server = ThreadingHTTPServer((host, port), Handler)
    server.daemon_threads = True
    return server
