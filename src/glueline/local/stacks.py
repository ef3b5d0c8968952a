"""Which local stack a state directory has, and starting the one asked for: the only place that names
both kinds (``glueline.local.running`` says what either is)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from glueline.local.compose.engine import engine_answers
from glueline.local.compose.stack import ComposeStack
from glueline.local.embedded.stack import EmbeddedStack
from glueline.local.running import LocalStack, RunningStack, StackError
from glueline.settings import Settings

KINDS = ("embedded", "compose")
CHOICES = ("auto", *KINDS)  # auto: compose where a Docker engine answers


def check_choice(choice: str) -> None:
    if choice not in CHOICES:
        raise StackError("--stack is auto, compose or embedded")


def local_stack(settings: Settings, kind: str) -> LocalStack:
    if kind not in KINDS:
        raise StackError(f"a local stack is {' or '.join(KINDS)}, not {kind!r}")
    return ComposeStack(settings) if kind == "compose" else EmbeddedStack(settings)


def local_stacks(settings: Settings) -> list[LocalStack]:
    """The state directory's stacks: the compose one where one was ever started there, and the embedded one."""
    stacks: list[LocalStack] = [EmbeddedStack(settings)]
    if ComposeStack.made_in(Path(settings.state_dir)):
        stacks.insert(0, ComposeStack(settings))
    return stacks


def running_stack(settings: Settings) -> RunningStack | None:
    """The stack of the state directory that runs, if one does."""
    for stack in local_stacks(settings):
        running = stack.running()
        if running is not None:
            return running
    return None


def logs_of(settings: Settings, follow: bool) -> int:
    """The running stack's logs; else the embedded stack's log files, which outlive it (a crash, a
    ``down``): where an operator looks after one."""
    running = running_stack(settings)
    if running is not None:
        return running.follow_logs(follow)
    return EmbeddedStack(settings).follow_logs(follow)


def start_stack(
    settings: Settings, choice: str = "embedded", *, with_postgres: bool = True, log: Callable[[str], None] = print
) -> RunningStack:
    """Start the stack ``choice`` names (``auto``: compose where a Docker engine answers, else embedded)."""
    check_choice(choice)
    kind = "compose" if choice == "compose" or (choice == "auto" and engine_answers()) else "embedded"
    return local_stack(settings, kind).start(with_postgres=with_postgres, log=log)
