"""What deploy and destroy read from AWS's answers, and how they wait: tags in any of AWS's shapes, policy
documents in any of IAM's, every page of a listing, bounded waiters."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

import jmespath
from botocore.exceptions import WaiterError
from botocore.waiter import WaiterModel, create_waiter_with_client

# Where a waited resource's state is in its describe answer (JMESPath), for wait_until's progress.
RDS_INSTANCE_STATE = "DBInstances[0].DBInstanceStatus"
TABLE_STATE = "Table.TableStatus"
# What SQS answers GetQueueUrl of a queue that does not exist (AWS, and emulators of older protocols).
NO_SUCH_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")


# A Glue job run until it ends: AWS's Glue model defines no waiter for it (botocore's waiter format).
GLUE_RUN_ENDED = "job_run_succeeded"
GLUE_RUN_STATE = "JobRun.JobRunState"
GLUE_RUN_ERROR = "JobRun.ErrorMessage"
_OWN_WAITERS = {
    ("glue", GLUE_RUN_ENDED): WaiterModel(
        {
            "version": 2,
            "waiters": {
                "JobRunSucceeded": {
                    "operation": "GetJobRun",
                    "delay": 10,
                    "maxAttempts": 90,
                    "acceptors": [
                        {"matcher": "path", "argument": GLUE_RUN_STATE, "expected": "SUCCEEDED", "state": "success"},
                        *(
                            {"matcher": "path", "argument": GLUE_RUN_STATE, "expected": ended, "state": "failure"}
                            for ended in ("FAILED", "ERROR", "TIMEOUT", "STOPPED", "EXPIRED")
                        ),
                    ],
                }
            },
        }
    )
}


class DeployError(RuntimeError):
    """Deploy or destroy cannot go on: the message says why and what to do."""


def wait_until(
    client,
    waiter: str,
    what: str,
    delay: int,
    attempts: int,
    params: dict[str, Any],
    state: str = "",
    progress: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
    reason: str = "",
) -> None:
    """A boto3 waiter, bounded by ``delay`` × ``attempts`` seconds; DeployError naming ``what`` when
    that passes or the resource reaches a state it will not leave (an RDS instance ``failed``). The
    waiter is asked one attempt at a time, so that each state the resource passes through (``state``: a
    JMESPath into the waiter's describe answer) is told to ``progress`` as it changes: an RDS instance
    takes minutes in creating, backing-up, configuring-enhanced-monitoring…; ``reason``, a JMESPath to why
    it failed (a Glue run's error message)."""
    seen = None
    for attempt in range(attempts):
        try:
            _waiter(client, waiter).wait(**params, WaiterConfig={"Delay": delay, "MaxAttempts": 1})
            return
        except WaiterError as err:
            if "Max attempts exceeded" not in str(err):
                why = jmespath.search(reason, err.last_response or {}) if reason else None
                raise DeployError(f"{what}: {err}" + (f": {why}" if why else "")) from err
            current = jmespath.search(state, err.last_response or {}) if state else None
            if current is not None and current != seen:
                progress(f"waiting for {what}: {current}")
                seen = current
        if attempt < attempts - 1:
            sleep(delay)
    raise DeployError(f"timed out after {delay * attempts} s waiting for {what}")


def _waiter(client, name: str):
    """The service model's waiter of that name, else one of ours (``_OWN_WAITERS``)."""
    own = _OWN_WAITERS.get((client.meta.service_model.service_name, name))
    if own is None:
        return client.get_waiter(name)
    return create_waiter_with_client(own.waiter_names[0], own, client)


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def read_tags(call, **kwargs) -> dict[str, str]:
    """Tags as a dict from any of AWS's list-shaped tag answers; {} when the resource has none (S3 then
    answers NoSuchTagSet)."""
    try:
        answer = call(**kwargs)
    except Exception as err:
        if "NoSuchTagSet" in str(err) or "NoSuchTagSetError" in type(err).__name__:
            return {}
        raise
    return tag_dict(answer.get("TagSet") or answer.get("Tags") or answer.get("TagList") or [])


def tag_dict(items: list[dict[str, str]]) -> dict[str, str]:
    """AWS's list of ``{"Key", "Value"}`` as a dict."""
    return {t["Key"]: t["Value"] for t in items}


def tag_drift(current: dict[str, str], wanted: dict[str, str]) -> list[str]:
    return ["tags"] if any(current.get(k) != v for k, v in wanted.items()) else []


def pages(call, key: str, token: str, next_token: str | None = None, **kwargs) -> list:
    """Every item of a paginated listing, whatever the service calls its page token."""
    items: list = []
    while True:
        answer = call(**kwargs)
        items += answer.get(key, [])
        marker = answer.get(next_token or token)
        if not marker:
            return items
        kwargs[token] = marker


def endpoint_alive(endpoint: dict[str, Any]) -> bool:
    """AWS lists a deleted endpoint for a while (State deleted)."""
    return endpoint.get("State", "available").lower() not in ("deleted", "deleting", "failed", "rejected")


def policy_document(value: Any) -> dict:
    """IAM answers with policy documents as dicts, JSON or URL-encoded JSON depending on the service."""
    if isinstance(value, str):
        value = json.loads(unquote(value))
    return value


def normalized_policy(document: dict) -> dict:
    """A policy document as compared: each statement's actions and resources as sorted lists."""

    def listify(v):
        return sorted(v) if isinstance(v, list) else [v]

    statements = []
    for s in document.get("Statement", []):
        s = dict(s)
        for key in ("Action", "Resource"):
            if key in s:
                s[key] = listify(s[key])
        statements.append(s)
    return {"Statement": statements}
