"""Runs declared steps (``glueline.ops.deploy.models``) against boto3 clients, and shows them without
running them: deploy and destroy share the one ``Executor``; ``plan --calls`` uses ``describe``.

Nothing secret is shown: a secret's value, a function's code and an object's body appear as their
sizes only."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from glueline.ops.deploy.aws import wait_until
from glueline.ops.deploy.models import APICall, EmptyBucket, Ref, Step, Wait

HIDDEN = ("SecretString", "ZipFile", "Body")


class Executor:
    """``client(service)`` gives a boto3 client; ``progress`` hears each state a waited resource passes
    through; ``sleep`` is injected for tests."""

    def __init__(
        self,
        client: Callable[[str], Any],
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[str], None] = lambda line: None,
    ):
        self.client = client
        self.sleep = sleep
        self.progress = progress
        self.variables: dict[str, Any] = {}

    def execute(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, Wait):
                client, params = self.client(step.service), self.resolve(step.params)
                wait_until(
                    client,
                    step.waiter,
                    step.what,
                    step.delay,
                    step.attempts,
                    params,
                    step.state,
                    self.progress,
                    self.sleep,
                    step.reason,
                )
            elif isinstance(step, EmptyBucket):
                empty(self.client("s3"), step.bucket)
            else:
                response = self.call(step)
                if step.store is not None:
                    name, key = step.store
                    self.variables[name] = response[key]

    def resolve(self, value: Any) -> Any:
        if isinstance(value, Ref):
            return self.variables[value.name]
        if isinstance(value, dict):
            return {k: self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value

    def call(self, step: APICall, attempts: int = 20) -> Any:
        service_client = self.client(step.service)
        params = self.resolve(step.params)
        for attempt in range(attempts):
            try:
                return getattr(service_client, step.method)(**params)
            except service_client.exceptions.ClientError as err:
                code, message = (err.response.get("Error", {}).get(key) for key in ("Code", "Message"))
                if step.ignore is not None and code == step.ignore:
                    return {}
                not_yet = (
                    step.retry_while is not None
                    and code == step.retry_while
                    and (not step.retry_messages or any(m in (message or "") for m in step.retry_messages))
                )
                if not not_yet or attempt == attempts - 1:
                    raise
                self.sleep(15)
        raise AssertionError("unreachable")


def describe(step: Step) -> str:
    """One step as a line a reviewer reads: ``iam.create_role(RoleName='glueline-lambda', …)``."""
    if isinstance(step, Wait):
        return f"wait for {step.what} ({step.service} {step.waiter}, up to {step.delay * step.attempts} s)"
    if isinstance(step, EmptyBucket):
        return f"empty s3://{step.bucket} (every object and version)"
    args = ", ".join(f"{key}={_shown(key, value)}" for key, value in step.params.items())
    return f"{step.service}.{step.method}({args})"


def _shown(key: str, value: Any) -> str:
    if key in HIDDEN:
        return f"<{len(value)} {'bytes' if isinstance(value, bytes) else 'characters'}>"
    if isinstance(value, Ref):
        return f"<{value.name}>"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k!r}: {_shown(k, v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_shown(key, v) for v in value) + "]"
    return repr(value)


def empty(s3, bucket: str) -> None:
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        versions = page.get("Versions", []) + page.get("DeleteMarkers", [])
        if versions:
            objects = [{"Key": v["Key"], "VersionId": v["VersionId"]} for v in versions]
            s3.delete_objects(Bucket=bucket, Delete={"Objects": objects, "Quiet": True})
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
