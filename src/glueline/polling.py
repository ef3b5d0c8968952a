"""Waiting for something that another process does: one way to poll, for the stack, the CLI, the tests
and the benchmark."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import urllib3

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and return that;
    TimeoutError naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def url_answers(url: str) -> bool:
    """Does an HTTP server answer ``url`` with 200 (within 2 s)? (urllib3: http and https only)"""
    try:
        return urllib3.request("GET", url, timeout=2, retries=False).status == 200
    except urllib3.exceptions.HTTPError:
        return False
