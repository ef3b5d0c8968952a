"""What deploy and destroy read from AWS's answers, and how they wait: tags in any of AWS's shapes,
every page of a listing, bounded waiters."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import WaiterError


class BootstrapError(RuntimeError):
    pass


def wait_until(client, waiter: str, what: str, delay: int, attempts: int, **params) -> None:
    """A boto3 waiter, bounded by ``delay`` × ``attempts`` seconds; BootstrapError naming ``what`` when
    that passes or the resource reaches a state it will not leave (an RDS instance ``failed``)."""
    try:
        client.get_waiter(waiter).wait(**params, WaiterConfig={"Delay": delay, "MaxAttempts": attempts})
    except WaiterError as err:
        if "Max attempts exceeded" in str(err):
            raise BootstrapError(f"timed out after {delay * attempts} s waiting for {what}") from err
        raise BootstrapError(f"{what}: {err}") from err


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
