"""Waiting for something that another process does: one way to poll, for the stack, the CLI, the tests
and the benchmark."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

import urllib3

T = TypeVar("T")


def wait_for(condition: Callable[[], T | None], timeout: float, what: str, interval: float = 0.1) -> T:
    """Call ``condition`` every ``interval`` seconds until it returns something truthy, and return that;
    TimeoutError naming ``what`` after ``timeout`` seconds — also when a call of ``condition`` hangs
    (a hung emulator, a stopped database): each call runs in a daemon thread of its own, abandoned if it
    has not returned by then. An error the condition raises is raised here."""
    deadline = time.monotonic() + timeout
    while True:
        value = _call_until(condition, deadline)
        if value is _HUNG:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what} (its last check had not returned)")
        if value:
            return value  # type: ignore[return-value]
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def within(timeout: float, call: Callable[[], T], what: str) -> T:
    """``call()``'s answer (or its error); TimeoutError naming ``what`` when it has not returned within
    ``timeout`` seconds: it runs in a daemon thread, abandoned then (a call to a hung server)."""
    value = _call_until(call, time.monotonic() + timeout, grace=0.0)
    if value is _HUNG:
        raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")
    return value  # type: ignore[return-value]


_HUNG = object()  # a call of the condition that had not returned by the deadline


def _call_until(condition: Callable[[], T | None], deadline: float, grace: float = 1.0) -> object:
    """``condition()``, or _HUNG if it has not returned by ``deadline`` plus ``grace`` (it then runs on,
    unawaited)."""
    answer: list = []

    def call() -> None:
        try:
            answer.append((True, condition()))
        except BaseException as err:  # raised in the waiting thread instead
            answer.append((False, err))

    caller = threading.Thread(target=call, daemon=True, name="wait_for")
    caller.start()
    caller.join(max(0.0, deadline - time.monotonic()) + grace)  # a last check begun at the deadline: the grace
    if not answer:
        return _HUNG
    returned, value = answer[0]
    if not returned:
        raise value
    return value


def url_answers(url: str) -> bool:
    """Does an HTTP server answer ``url`` with 200 (within 2 s)? (urllib3: http and https only)"""
    try:
        return urllib3.request("GET", url, timeout=2, retries=False).status == 200
    except urllib3.exceptions.HTTPError:
        return False
