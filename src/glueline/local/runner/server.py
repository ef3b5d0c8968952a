"""The local Glue runner's HTTP front: the AWS Glue JSON 1.1 protocol, so an unmodified boto3 ``glue``
client works against it (``AWS_ENDPOINT_URL_GLUE=http://127.0.0.1:PORT`` or a profile's ``services``).

Every call is ``POST /`` with ``X-Amz-Target: AWSGlue.<Operation>``; requests are validated against
botocore's own Glue service model, errors come back as ``{"__type": ..., "message": ...}`` (HTTP 400),
timestamps as epoch seconds. The SigV4 signature is not checked: this is a local development service
bound to 127.0.0.1.
"""

from __future__ import annotations

import json
import logging
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import botocore.session
from botocore.validate import ParamValidator

from glueline.local.runner.jobs import GlueError, JobStore

log = logging.getLogger("glueline.local.runner")

_MODEL = botocore.session.get_session().get_service_model("glue")
_VALIDATOR = ParamValidator()


def _page(items: list[dict], request: dict, key: str) -> dict:
    start = int(request.get("NextToken") or 0)
    size = int(request.get("MaxResults") or 100)
    page = {key: items[start : start + size]}
    if start + size < len(items):
        page["NextToken"] = str(start + size)
    return page


def _batch_stop(store: JobStore, r: dict) -> dict:
    stopped, errors = store.stop_runs(r["JobName"], r["JobRunIds"])
    return {"SuccessfulSubmissions": stopped, "Errors": errors}


OPERATIONS = {
    "CreateJob": lambda store, r: store.create_job(r),
    "UpdateJob": lambda store, r: store.update_job(r["JobName"], r["JobUpdate"]),
    "GetJob": lambda store, r: {"Job": store.get_job(r["JobName"])},
    "GetJobs": lambda store, r: _page(store.get_jobs(), r, "Jobs"),
    "DeleteJob": lambda store, r: store.delete_job(r["JobName"]),
    "StartJobRun": lambda store, r: {
        "JobRunId": store.start_run(r["JobName"], r.get("Arguments", {}), r.get("Timeout"))
    },
    "GetJobRun": lambda store, r: {"JobRun": store.get_run(r["JobName"], r["RunId"])},
    "GetJobRuns": lambda store, r: _page(store.get_runs(r["JobName"]), r, "JobRuns"),
    "BatchStopJobRun": _batch_stop,
    "CreateConnection": lambda store, r: store.create_connection(r),
    "UpdateConnection": lambda store, r: store.update_connection(r["Name"], r["ConnectionInput"]),
    "GetConnection": lambda store, r: {"Connection": store.get_connection(r["Name"])},
    "GetConnections": lambda store, r: _page(store.get_connections(), r, "ConnectionList"),
    "DeleteConnection": lambda store, r: store.delete_connection(r["ConnectionName"]),
    "GetTags": lambda store, r: {"Tags": store.get_tags(r["ResourceArn"])},
    "TagResource": lambda store, r: store.tag(r["ResourceArn"], r["TagsToAdd"], []),
    "UntagResource": lambda store, r: store.tag(r["ResourceArn"], {}, r["TagsToRemove"]),
}


def handle(store: JobStore, target: str, body: bytes) -> tuple[int, dict]:
    """Answer one Glue API call: (HTTP status, JSON body)."""
    operation = target.rpartition(".")[2]
    try:
        if operation not in OPERATIONS:
            raise GlueError(
                "InvalidInputException",
                f"{operation or 'this operation'} is not supported by glueline's local Glue runner "
                f"(supported: {', '.join(OPERATIONS)})",
            )
        try:
            request = json.loads(body or b"{}")
        except json.JSONDecodeError as err:
            raise GlueError("InvalidInputException", f"request body is not JSON: {err}") from err
        report = _VALIDATOR.validate(request, _MODEL.operation_model(operation).input_shape)
        if report.has_errors():
            raise GlueError("InvalidInputException", report.generate_report())
        return 200, OPERATIONS[operation](store, request)
    except GlueError as err:
        return 400, {"__type": err.error_type, "message": err.message}
    except Exception as err:  # a bug here must not look like a client error
        log.exception("internal error in %s", operation)
        return 500, {"__type": "InternalServiceException", "message": f"{type(err).__name__}: {err}"}


def make_server(store: JobStore, host: str, port: int) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            status, payload = handle(store, self.headers.get("X-Amz-Target", ""), body)
            self._send(status, payload)

        def do_GET(self):  # health, and whether a warm job process waits (see JobStore.standby_state)
            self._send(200, {"status": "running", "service": "glueline-glue-runner", "standby": store.standby_state()})

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
