"""Which environment a command talks to — the one place that decides.

* ``AWS_PROFILE`` or ``AWS_ENDPOINT_URL`` set: that environment (real AWS, LocalStack, your own
  emulator) exactly as the standard AWS configuration describes it. The database is ``--db-url`` /
  ``GLUELINE_DB_URL``.
* Otherwise the stack of ``<state_dir>`` that runs: the compose stack (``glueline up --stack compose``)
  or the embedded one; else (for ``glueline run``) an embedded stack started for the command and
  stopped after it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glueline.local.compose import ComposeInfo, running_compose
from glueline.local.stack import (
    LOCAL_STACK_SETTINGS,
    EmbeddedStack,
    StackInfo,
    apply_aws_env,
    termination_raises,
)
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection


class NoEnvironmentError(RuntimeError):
    pass


@dataclass
class Environment:
    description: str
    db: DbConnection | None  # as the pipeline reaches it: the secret's value, part of the target's name
    stack: StackInfo | ComposeInfo | None = None
    db_here: DbConnection | None = None  # as this machine reaches it, where that differs (compose)
    function_glue_endpoint: str | None = None  # Glue as the Lambda reaches it, where not as this machine does
    settings_overrides: dict[str, Any] = field(default_factory=dict)  # what a local stack cannot do as AWS does

    def deploy_settings(self, settings: Settings) -> Settings:
        return settings.model_copy(update=self.settings_overrides)

    @property
    def reachable_db(self) -> DbConnection | None:
        return self.db_here or self.db


def configured_externally() -> bool:
    return bool(os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ENDPOINT_URL"))


@contextmanager
def environment(settings: Settings, *, start_stack: bool = False, keep_stack: bool = False) -> Iterator[Environment]:
    db = DbConnection.from_url(settings.db_url) if settings.db_url else None
    if configured_externally():
        target = os.environ.get("AWS_PROFILE") or os.environ.get("AWS_ENDPOINT_URL")
        yield Environment(f"configured AWS environment ({target})", db)
        return
    composed = running_compose(settings)
    if composed is not None:
        apply_aws_env(composed)
        deployed = db or composed.deployed_db
        yield Environment(
            f"compose stack {composed.project} ({composed.emulator})",
            deployed,
            composed,
            db_here=db or composed.db_here,
            function_glue_endpoint=composed.function_glue_endpoint,
            settings_overrides=LOCAL_STACK_SETTINGS,
        )
        return
    stack = EmbeddedStack(settings)
    info = stack.running()
    if info is not None:
        apply_aws_env(info)
        yield Environment(
            f"embedded stack in {_where(stack, info)}",
            db or info.db(settings.postgres_bin_dir),
            info,
            settings_overrides=LOCAL_STACK_SETTINGS,
        )
        return
    if not start_stack:
        raise NoEnvironmentError(
            "no environment: start a local stack with `glueline up -d` (make up), or configure AWS "
            "(AWS_PROFILE / AWS_ENDPOINT_URL)"
        )
    with termination_raises():
        info = stack.start(with_postgres=db is None)
        try:
            apply_aws_env(info)
            yield Environment(
                f"embedded stack started in {_where(stack, info)}",
                db or info.db(settings.postgres_bin_dir),
                info,
                settings_overrides=LOCAL_STACK_SETTINGS,
            )
        finally:
            if not keep_stack:
                stack.stop()


def _where(stack: EmbeddedStack, info: StackInfo) -> str:
    if info.postgres_dir is None or Path(info.postgres_dir).parent == stack.state_dir:
        return str(stack.state_dir)
    postgres = info.postgres_dir
    return (
        f"{stack.state_dir}, its database in {postgres} (PostgreSQL's system user cannot enter "
        f"{stack.state_dir}; `glueline clean` deletes both)"
    )
