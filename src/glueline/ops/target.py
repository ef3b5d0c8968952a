"""What a command talks to, resolved once and passed down: every command, ``glueline.testing``, ``bench/``
and the tests get it from ``resolve_target``.

    AWS_PROFILE or AWS_ENDPOINT_URL set (``--profile`` sets the first), or a session given: that account
        (real AWS, LocalStack, your own emulator) exactly as the standard AWS configuration describes it
    else the local stack of ``<state_dir>`` that runs (``glueline.local.stacks``): this process's AWS
        clients are pointed at it
    else, for a command that may (``glueline run``, ``glueline console``), an embedded stack started for
        it and stopped after it

Then, once each: the boto3 session, the account (the one STS call glueline makes), its region and
partition, the pipeline's bucket, and the database (``glueline.ops.database``): the one known without
asking the account at once (``known_database``), the one deploy needs on first use (``database``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import UnknownRegionError

from glueline.local.aws_config import apply_aws_env
from glueline.local.processes import termination_raises
from glueline.local.running import LOCAL_STACK_SETTINGS, RunningStack
from glueline.local.stacks import local_stack, running_stack
from glueline.ops.database import Database, deployed_database, known_database
from glueline.settings import Settings
from glueline.shared.events import scheduled_event
from glueline.shared.timeouts import aws_client


class NoTargetError(RuntimeError):
    pass


@dataclass
class Target:
    settings: Settings  # the command's, with what a local stack cannot do as AWS does (LOCAL_STACK_SETTINGS)
    session: boto3.Session
    account: str
    region: str
    partition: str
    endpoint: str  # where STS answered: AWS's own (``…amazonaws.com``) or an emulator's
    bucket: str
    description: str  # what a command says it talks to
    stack: RunningStack | None = None
    _clients: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def on_aws(self) -> bool:
        """AWS itself, not an emulator: a command that writes asks first."""
        return "amazonaws.com" in self.endpoint

    def client(self, service: str, config: Config | None = None) -> Any:
        """A client of the target's session and region, with glueline's bounds (``config`` overrides some;
        one client per service otherwise: a deploy asks for the same ones at every stage)."""
        if config is not None:
            return aws_client(service, self.session, config, region_name=self.region)
        if service not in self._clients:
            self._clients[service] = aws_client(service, self.session, region_name=self.region)
        return self._clients[service]

    def schedule_event(self) -> dict[str, Any]:
        """The event the daily schedule rule sends the Lambda here (the rule's ARN in this partition): the
        sweep, as the console, `glueline trigger` and the tests start it."""
        return scheduled_event(self.account, self.region, self.settings.schedule_rule, partition=self.partition)

    @cached_property
    def known_database(self) -> Database | None:
        """The given database, else the local stack's: decided with no call to the account."""
        stack = self.stack
        return known_database(self.settings, stack.deployed_db if stack else None, stack.db_here if stack else None)

    @cached_property
    def database(self) -> Database:
        """The database deploy stores in the secret and the job loads into: the known one, else the
        deployed secret's, else the one deploy creates; NoDatabase says how to name one."""
        if self.known_database is not None:
            return self.known_database
        return deployed_database(self.settings, self.client("secretsmanager"), self.client("rds"))

    @property
    def function_glue_endpoint(self) -> str | None:
        """Glue as the deployed function reaches it, where not at AWS's own endpoint: the compose stack's
        runner by its name in the project's network, the embedded stack's where this process reaches it."""
        if self.stack is not None and self.stack.function_glue_endpoint:
            return self.stack.function_glue_endpoint
        glue = self.client("glue").meta.endpoint_url
        return None if "amazonaws.com" in glue else glue


def configured_externally() -> bool:
    return bool(os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ENDPOINT_URL"))


@contextmanager
def resolve_target(
    settings: Settings,
    *,
    start_stack: bool = False,
    keep_stack: bool = False,
    session: boto3.Session | None = None,
    stack: RunningStack | None = None,
) -> Iterator[Target]:
    """The target of a command (see the module's docstring); ``start_stack``: start the embedded stack
    when nothing else is there, and stop it after unless ``keep_stack``; ``stack``: the local stack the
    caller has just started (and stops). NoTargetError when nothing is there and nothing may be started."""
    if stack is not None:
        yield _resolved(settings, _session_of(stack), stack.describe(), stack)
        return
    if session is not None or configured_externally():
        configured = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ENDPOINT_URL") or "the given session"
        yield _resolved(settings, session or boto3.Session(), f"configured AWS environment ({configured})", None)
        return
    running = running_stack(settings)
    if running is not None:
        yield _resolved(settings, _session_of(running), running.describe(), running)
        return
    if not start_stack:
        raise NoTargetError(
            "no environment: start a local stack with `glueline up -d` (make up), or configure AWS "
            "(AWS_PROFILE / AWS_ENDPOINT_URL)"
        )
    with termination_raises():
        started = local_stack(settings, "embedded").start(with_postgres=settings.db_url is None)
        try:
            yield _resolved(settings, _session_of(started), started.describe(started=True), started)
        finally:
            if not keep_stack:
                started.stop()


def _session_of(stack: RunningStack) -> boto3.Session:
    """This process's clients pointed at the stack, and nowhere else."""
    apply_aws_env(stack.aws_env())
    return boto3.Session()


def _resolved(settings: Settings, session: boto3.Session, description: str, stack: RunningStack | None) -> Target:
    if stack is not None:
        settings = settings.model_copy(update=LOCAL_STACK_SETTINGS)
    region = session.region_name or settings.region
    sts = aws_client("sts", session, region_name=region)
    account = sts.get_caller_identity()["Account"]
    try:
        partition = session.get_partition_for_region(region)
    except UnknownRegionError:
        partition = "aws"
    return Target(
        settings=settings,
        session=session,
        account=account,
        region=region,
        partition=partition,
        endpoint=sts.meta.endpoint_url,
        bucket=settings.bucket_name(account, region),
        description=description,
        stack=stack,
    )
