"""A local stack, whichever kind: one type for the embedded stack (processes, ``glueline.local.embedded``)
and the compose stack (containers, ``glueline.local.compose``), so that a command, ``glueline.testing``
and the soak ask a stack for what they need and never which kind it is.

    LocalStack     a state directory's stack, running or not: can it run here, start, stop, clean
    RunningStack   one that runs: how to reach it (its endpoints, the AWS environment for them, its
                   database from here and as the pipeline reaches it), the Glue endpoint the function is
                   given, its inner-loop tools, its logs, its faults

``glueline.local.stacks`` finds the one a state directory runs, and starts the one asked for.

Dependency-free at run time (the types are for the type checker): the Glue runner's container imports
this module through ``glueline.local.processes``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from glueline.local.aws_config import stack_aws_env

if TYPE_CHECKING:
    from glueline.local.faults import StackFaults
    from glueline.local.inner_loop import InnerLoop
    from glueline.shared.dbsecret import DbConnection

# What a local stack cannot do as AWS does, applied to deploy's settings there: MiniStack drops an
# asynchronous invocation that the function's reserved concurrency throttles, where AWS retries it for up
# to six hours, so on the local stacks the Lambda is deployed without reserved concurrency (deploy to AWS
# keeps the setting, GLUELINE_LAMBDA_RESERVED_CONCURRENCY).
LOCAL_STACK_SETTINGS = {"lambda_reserved_concurrency": 0}


class StackError(RuntimeError):
    """A local stack cannot start, answer or be reached; the message says what to do."""


class RunningStack(Protocol):
    """A local stack that runs."""

    @property
    def kind(self) -> str:
        """``embedded`` or ``compose``: a name for figures and messages."""
        ...

    @property
    def region(self) -> str: ...

    @property
    def emulator_url(self) -> str: ...

    @property
    def glue_url(self) -> str: ...

    def describe(self, started: bool = False) -> str:
        """What a command says it talks to: ``embedded stack [started] in …``, ``compose stack … (…)``."""
        ...

    @property
    def emulator_name(self) -> str: ...

    def aws_env(self) -> dict[str, str]:
        """The standard AWS variables that point a client at the stack: the emulator, Glue at the runner."""
        ...

    @property
    def deployed_db(self) -> DbConnection | None:
        """Its database as the pipeline reaches it (the secret's value); None: started without one."""
        ...

    @property
    def db_here(self) -> DbConnection | None:
        """The same database as this machine reaches it."""
        ...

    @property
    def function_glue_endpoint(self) -> str | None:
        """Glue as the Lambda reaches it, where that is not as this machine does (None: the same)."""
        ...

    @property
    def database_files(self) -> str | None:
        """Where the database keeps its files, if on this machine's filesystem."""
        ...

    @property
    def logs_where(self) -> str:
        """Where its services' logs are, as a user reads them."""
        ...

    def follow_logs(self, follow: bool) -> int:
        """Print its services' last log lines (and, with ``follow``, what comes) until interrupted."""
        ...

    def log_texts(self) -> dict[str, str]:
        """Every log of the stack, its services' and every Glue run's, by name."""
        ...

    def inner_loop(self, debug_port: int | None = None, history_port: int | None = None) -> InnerLoop:
        """Where a --debug run waits for a debugger and a --spark-ui run's UI is, from this machine."""
        ...

    def history_server(self, port: int | None = None) -> AbstractContextManager[str]:
        """Spark's history server over the runner's event logs while the block runs; its URL here."""
        ...

    @property
    def faults(self) -> StackFaults:
        """Ways to break its parts as an outage would (glueline.local.faults)."""
        ...

    def memory(self) -> dict[str, int]:
        """Resident memory of each of its services, in bytes."""
        ...

    def stop(self) -> None: ...


class Endpoints(Protocol):
    """What a stack's record (``stack.json``, ``compose.json``) says of where it answers."""

    emulator_url: str
    glue_url: str
    region: str


class RecordedEndpoints:
    """The members of a RunningStack both kinds answer alike, from the endpoints their record holds."""

    record: Endpoints

    @property
    def region(self) -> str:
        return self.record.region

    @property
    def emulator_url(self) -> str:
        return self.record.emulator_url

    @property
    def glue_url(self) -> str:
        return self.record.glue_url

    def aws_env(self) -> dict[str, str]:
        return stack_aws_env(self.emulator_url, self.glue_url, self.region)


class LocalStack(Protocol):
    """The stack of a state directory, running or not."""

    def unavailable(self) -> str | None:
        """Why this machine cannot run it (no Java, no PostgreSQL binaries, no Docker engine), or None."""
        ...

    def start(self, *, with_postgres: bool = True, log: Callable[[str], None] = print) -> RunningStack: ...

    def running(self) -> RunningStack | None:
        """The stack the state directory records, if it runs."""
        ...

    def stop(self) -> bool:
        """Stop it (its data stays); True when something was running."""
        ...

    def clean(self) -> list[str]:
        """Stop it and delete its state; what was deleted."""
        ...
