"""Request validation: the Glue API's rules as the runner enforces them — botocore's Glue service model
(names, types, lengths, ranges, enums) and what AWS Glue checks beyond it.

botocore's own client-side validator checks required members and types only; AWS checks lengths,
ranges and enums on the server, so the runner does too. A request member the model does not know is
ignored, not refused: a client built on a newer model than the runner's (botocore pinned in
pyproject.toml) still works, as it does against AWS.
"""

from __future__ import annotations

from typing import Any

import botocore.session
from botocore.model import Shape

from glueline.local.runner.exceptions import InvalidInputException

MODEL = botocore.session.get_session().get_service_model("glue")

GLUE_VERSIONS = ("0.9", "1.0", "2.0", "3.0", "4.0", "5.0", "5.1")
DEFAULT_GLUE_VERSION = "5.1"  # "Jobs that are created without specifying a Glue version default to Glue 5.1."
MAX_TIMEOUT_MINUTES = 10080  # "Jobs must have timeout values less than 7 days or 10080 minutes."


def default_timeout(glue_version: str) -> int:
    """The service model's default: 2,880 minutes for Glue 4.0 and earlier, 480 for 5.0 and later."""
    return 480 if float(glue_version) >= 5.0 else 2880


def validate_request(operation: str, request: dict[str, Any]) -> None:
    problems = _check(MODEL.operation_model(operation).input_shape, request, "")
    if problems:
        count = len(problems)
        raise InvalidInputException(f"{count} validation error{'s' * (count > 1)} detected: " + "; ".join(problems))
    if operation in ("CreateJob", "UpdateJob", "StartJobRun"):
        definition = request["JobUpdate"] if operation == "UpdateJob" else request
        check_job_rules(definition, whole=operation != "StartJobRun")


def check_job_rules(definition: dict, whole: bool = True) -> None:
    """What Glue checks beyond the model's shapes, for a job definition or (not ``whole``) a run's
    overrides: a run may override one of WorkerType and NumberOfWorkers, combined with the job's other
    (see models.run_capacity)."""
    timeout = definition.get("Timeout")
    if timeout is not None and timeout > MAX_TIMEOUT_MINUTES:
        raise InvalidInputException(
            f"Timeout {timeout} is more than the maximum of {MAX_TIMEOUT_MINUTES} minutes (7 days)"
        )
    version = definition.get("GlueVersion")
    if version is not None and version not in GLUE_VERSIONS:
        raise InvalidInputException(f"Glue version {version} is not supported (supported: {', '.join(GLUE_VERSIONS)})")
    sized_by_workers = "WorkerType" in definition or "NumberOfWorkers" in definition
    if sized_by_workers and ("MaxCapacity" in definition or "AllocatedCapacity" in definition):
        raise InvalidInputException("Please set either WorkerType and NumberOfWorkers, or MaxCapacity, not both")
    if "AllocatedCapacity" in definition and "MaxCapacity" in definition:
        raise InvalidInputException(
            "AllocatedCapacity and MaxCapacity are exclusive (AllocatedCapacity is deprecated: use MaxCapacity)"
        )
    if whole:
        check_worker_pair(definition)
        check_flex(definition, definition)


def check_flex(job: dict, request: dict) -> None:
    """The API reference: only jobs with Glue version 3.0 and above and command type glueetl may set
    ExecutionClass to FLEX (on the job, or on a run of it: ``request``)."""
    if request.get("ExecutionClass") != "FLEX":
        return
    version = job.get("GlueVersion", DEFAULT_GLUE_VERSION)
    command = job.get("Command", {}).get("Name", "glueetl")
    if command != "glueetl" or float(version) < 3.0:
        raise InvalidInputException(
            f"ExecutionClass FLEX needs a glueetl job of Glue 3.0 or later, not a {command} job of Glue {version}"
        )


def check_worker_pair(sizing: dict) -> None:
    if ("WorkerType" in sizing) != ("NumberOfWorkers" in sizing):
        raise InvalidInputException("WorkerType and NumberOfWorkers must be set together")


def _check(shape: Shape, value: Any, path: str) -> list[str]:
    where = path or "request"
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            return [f"Value at '{where}' must be an object"]
        problems = [
            f"Value null at '{_join(path, name)}' failed to satisfy constraint: Member must not be null"
            for name in shape.required_members
            if value.get(name) is None
        ]
        for name, member in value.items():
            if name in shape.members and member is not None:
                problems += _check(shape.members[name], member, _join(path, name))
        return problems
    if kind == "list":
        if not isinstance(value, list):
            return [f"Value at '{where}' must be a list"]
        problems = _length(shape, len(value), where, "length")
        for index, item in enumerate(value):
            problems += _check(shape.member, item, f"{where}.{index + 1}.member")
        return problems
    if kind == "map":
        if not isinstance(value, dict):
            return [f"Value at '{where}' must be a map"]
        problems = _length(shape, len(value), where, "length")
        for key, item in value.items():
            problems += _check(shape.key, key, f"{where}.key")
            problems += _check(shape.value, item, f"{where}.{key}")
        return problems
    if kind == "string":
        if not isinstance(value, str):
            return [f"Value at '{where}' must be a string"]
        problems = _length(shape, len(value), where, "length")
        if shape.enum and value not in shape.enum:
            problems.append(
                f"Value '{value}' at '{where}' failed to satisfy constraint: Member must satisfy enum value set: "
                f"[{', '.join(shape.enum)}]"
            )
        return problems
    if kind in ("integer", "long"):
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"Value at '{where}' must be an integer"]
        return _length(shape, value, where, "value")
    if kind in ("double", "float"):
        if isinstance(value, bool) or not isinstance(value, int | float):
            return [f"Value at '{where}' must be a number"]
        return _length(shape, value, where, "value")
    if kind == "boolean" and not isinstance(value, bool):
        return [f"Value at '{where}' must be a boolean"]
    return []


def _length(shape: Shape, measured: float, where: str, what: str) -> list[str]:
    low, high = shape.metadata.get("min"), shape.metadata.get("max")
    failed = f"Value at '{where}' failed to satisfy constraint: Member must have {what}"
    if low is not None and measured < low:
        return [f"{failed} greater than or equal to {low}"]
    if high is not None and measured > high:
        return [f"{failed} less than or equal to {high}"]
    return []


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name[:1].lower() + name[1:]
