"""Would IAM allow these AWS calls? Shared by the access tests (``tests/unit/ops/test_access.py`` records
in-process runs on moto; ``tests/integration/test_access_on_the_stack.py`` records the real Lambda and
Glue job on the embedded stack through ``record/sitecustomize.py``).

Each call (service, operation, parameters, HTTP status) becomes the IAM requests AWS authorizes for it —
action, resource ARN, condition keys such as ``s3:prefix`` — and a maintained IAM simulator
(``@cloud-copilot/iam-simulate``, run by Node from this directory) evaluates them against a role policy.

AWS rules modelled (from the S3 and DynamoDB authorization references):
* HeadObject and GetObject need ``s3:GetObject`` on the key; when the key is missing, S3 answers 404 only
  to a caller allowed ``s3:ListBucket`` on the bucket, else 403 — so a 404 the code relies on needs that
  ListBucket too. That check is not a ListObjects request: AWS documents no ``s3:prefix`` in its
  context, so a grant conditioned on ``s3:prefix`` is taken not to apply (modelled without the key).
* CopyObject needs ``s3:GetObject`` on the source and ``s3:PutObject`` on the destination; a multipart
  upload or copy needs ``s3:PutObject`` (and GetObject on a copy's source).
* ListObjectsV2 needs ``s3:ListBucket`` on the bucket with ``s3:prefix`` set to the request's prefix.
* A DynamoDB Query on an index needs ``dynamodb:Query`` on ``table/<name>/index/<index>``.
* TransactWriteItems is no action of its own: each write in it needs its own (PutItem, UpdateItem,
  DeleteItem, ConditionCheckItem) on its table.
A call this module cannot translate is reported as such, so a new kind of call cannot slip past.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ACCESS_DIR = Path(__file__).resolve().parent
RECORDER_DIR = ACCESS_DIR / "record"  # put on PYTHONPATH: sitecustomize.py records boto3 calls
CALL_LOG_VARIABLE = "GLUELINE_AWS_CALL_LOG"


@dataclass(frozen=True)
class Request:
    """One IAM authorization request."""

    role: str
    action: str
    resource: str
    context: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        condition = "".join(f" {k}={v!r}" for k, v in self.context)
        return f"{self.role}: {self.action} on {self.resource}{condition}"


def iam_requests(
    role: str, region: str, account: str, service: str, operation: str, params: dict, status: int
) -> list[Request] | None:
    """The IAM requests one call needs; None for a call this module does not know."""

    def request(action: str, resource: str, **context: str) -> Request:
        return Request(role, action, resource, tuple(sorted(context.items())))

    def arn(svc: str, res: str) -> str:
        return f"arn:aws:{svc}:{region}:{account}:{res}"

    if service == "s3":
        bucket = params.get("Bucket", "")
        obj = f"arn:aws:s3:::{bucket}/{params.get('Key', '')}"
        if operation in ("HeadObject", "GetObject"):
            requests = [request("s3:GetObject", obj)]
            if status == 404:  # S3 says "not found" only to a caller who may list the bucket
                requests.append(request("s3:ListBucket", f"arn:aws:s3:::{bucket}"))
            return requests
        if operation in ("PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"):
            return [request("s3:PutObject", obj)]
        if operation in ("CopyObject", "UploadPartCopy"):
            source = params["CopySource"]
            if isinstance(source, str):
                source_bucket, _, source_key = source.lstrip("/").partition("/")
            else:
                source_bucket, source_key = source["Bucket"], source["Key"]
            return [request("s3:GetObject", f"arn:aws:s3:::{source_bucket}/{source_key}"), request("s3:PutObject", obj)]
        if operation == "DeleteObject":
            return [request("s3:DeleteObject", obj)]
        if operation in ("ListObjectsV2", "ListObjects"):
            return [request("s3:ListBucket", f"arn:aws:s3:::{bucket}", **{"s3:prefix": params.get("Prefix", "")})]
        return None
    if service == "dynamodb" and operation == "TransactWriteItems":  # authorized as each of its writes
        actions = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            request(f"dynamodb:{actions[kind]}", arn("dynamodb", f"table/{write['TableName']}"))
            for member in params["TransactItems"]
            for kind, write in member.items()
        ]
    if service == "dynamodb" and operation in ("GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan"):
        resource = f"table/{params['TableName']}"
        if params.get("IndexName"):
            resource += f"/index/{params['IndexName']}"
        return [request(f"dynamodb:{operation}", arn("dynamodb", resource))]
    if service == "glue" and operation in ("StartJobRun", "GetJobRun", "GetJobRuns"):
        return [request(f"glue:{operation}", arn("glue", f"job/{params['JobName']}"))]
    if service == "logs" and operation == "CreateLogGroup":
        return [request("logs:CreateLogGroup", arn("logs", f"log-group:{params['logGroupName']}"))]
    if service == "logs" and operation in ("CreateLogStream", "PutLogEvents"):
        stream = f"log-group:{params['logGroupName']}:log-stream:{params['logStreamName']}"
        return [request(f"logs:{operation}", arn("logs", stream))]
    if service == "secretsmanager" and operation == "GetSecretValue":
        secret = params["SecretId"]
        if not secret.startswith("arn:"):  # IAM sees the secret's full ARN: its name and six characters
            secret = arn("secretsmanager", f"secret:{secret}-AbCdEf")
        return [request("secretsmanager:GetSecretValue", secret)]
    return None


def evaluate(policies: dict[str, dict], account: str, requests: list[Request]) -> list[str]:
    """The simulator's decision for each request: Allowed, ImplicitlyDenied, ExplicitlyDenied."""
    payload = {
        "policies": policies,
        "account": account,
        "requests": [
            {"role": r.role, "action": r.action, "resource": r.resource, "context": dict(r.context)} for r in requests
        ],
    }
    answer = subprocess.run(
        ["node", str(ACCESS_DIR / "simulate.mjs")],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        cwd=ACCESS_DIR,
    )
    return json.loads(answer.stdout)


def denied(policies: dict[str, dict], account: str, requests: list[Request]) -> list[str]:
    """Each distinct request IAM would refuse, with the simulator's decision."""
    unique = list(dict.fromkeys(requests))
    decisions = evaluate(policies, account, unique)
    return [f"{r} → {d}" for r, d in zip(unique, decisions, strict=True) if d != "Allowed"]


def ensure_simulator() -> None:
    """The simulator's Node packages, installed from the lock file when missing (``make test`` and CI
    install them first)."""
    if shutil.which("node") is None:
        raise RuntimeError("the access tests need Node.js (apt-get install nodejs npm)")
    if not (ACCESS_DIR / "node_modules" / "@cloud-copilot" / "iam-simulate").exists():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=ACCESS_DIR, check=True, capture_output=True)
