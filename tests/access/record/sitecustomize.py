"""Test-only: record the AWS calls of the pipeline's own processes on the embedded stack.

With this directory on PYTHONPATH and GLUELINE_AWS_CALL_LOG set (the integration tests do both before
they start the stack; the stack's processes inherit them), every Python process started afterwards
imports this module. A Lambda invocation (AWS_LAMBDA_FUNCTION_NAME is set) and the Glue side (a job
run, its Spark Python workers, the runner fetching the job's files) append one JSON line per boto3 call:
role, service, operation, the parameters that name resources, HTTP status. Other processes (the
emulator itself, PostgreSQL's tools) record nothing. Nothing of glueline knows about it.
"""

import json
import os
import sys

_LOG = os.environ.get("GLUELINE_AWS_CALL_LOG")
_NAMING = (
    "Bucket",
    "Key",
    "Prefix",
    "CopySource",
    "TableName",
    "IndexName",
    "JobName",
    "SecretId",
    "logGroupName",
    "logStreamName",
)


def _role(client) -> str | None:
    """Whose call this is, decided at the call: a Lambda invocation, or the Glue side (the job's driver,
    its Spark Python workers, the runner fetching the job's script and shipping its logs — on AWS all
    with the job's role). The runner's state-change events are the Glue service's own (signed with its
    key, see glueline.local.runner.cloud), not the job's: not recorded."""
    if os.environ.get("AWS_LAMBDA_FUNCTION_NAME"):
        return "lambda"
    if "--JOB_RUN_ID" in sys.argv or "pyspark" in sys.modules or "glueline.local.runner" in sys.modules:
        credentials = getattr(client._request_signer, "_credentials", None)
        if "glueline.local.runner.cloud" in sys.modules and credentials is not None:
            if credentials.access_key == sys.modules["glueline.local.runner.cloud"].GLUE_SERVICE_ACCESS_KEY_ID:
                return None
        return "glue"
    return None


def _naming(params: dict) -> dict:
    """The parameters that name resources; of a transaction's writes, the kind and table of each."""
    named = {k: params[k] for k in _NAMING if k in params}
    if "TransactItems" in params:
        named["TransactItems"] = [
            {kind: {"TableName": write["TableName"]}}
            for member in params["TransactItems"]
            for kind, write in member.items()
        ]
    return named


def _record() -> None:
    from botocore.client import BaseClient
    from botocore.exceptions import ClientError

    original = BaseClient._make_api_call

    def _make_api_call(self, operation_name, api_params):
        role = _role(self)
        if role is None:
            return original(self, operation_name, api_params)
        status = 200
        try:
            return original(self, operation_name, api_params)
        except ClientError as err:
            status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
            raise
        finally:
            line = {
                "role": role,
                "service": self.meta.service_model.service_name,
                "operation": operation_name,
                "params": _naming(api_params),
                "status": status,
                "pid": os.getpid(),
            }
            with open(_LOG, "a", encoding="utf-8") as log:
                log.write(json.dumps(line, default=str) + "\n")

    BaseClient._make_api_call = _make_api_call


if _LOG:
    _record()
