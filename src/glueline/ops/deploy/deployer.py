"""Create or converge every resource of the pipeline, idempotently, on whatever the target is (the
embedded stack, the compose stack, LocalStack, a real account): one code path for all; and remove them.

    Target ─► account facts ─► desired state ─► a plan per service (plans/) ─► Change(steps) ─► Executor
              (account.py)      (desired.py)     (reads the account)                            (or shown)

``plan`` shows the changes (``create``, ``update`` with the changed attributes, ``unchanged``, ``adopt``,
``conflict``) and writes nothing; ``deploy`` hands each stage's steps to the one ``Executor`` and plans the
next stage against what the last one made (a group's id, the database's endpoint); a second deploy
changes nothing and says so. ``plan_destroy``/``destroy`` do the same for removal (``sweeper``).

Every resource carries the tag ``glueline:stack=<stack>`` (IAM roles, global, also ``glueline:region``).
A resource of our name without it was not made by this stack: plan shows ``adopt`` and deploy refuses
unless ``adopt`` is asked for; one tagged by another stack or region is a ``conflict`` deploy never
touches. Deploy needs no database connection (a laptop usually cannot reach a private RDS): the job
creates its table when it starts.

``deployer_for`` is the one way to get a Deployer: the CLI, ``glueline.testing``, ``bench/`` and the tests
call it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from glueline.ops import packaging
from glueline.ops.database import Database, Origin, created_database
from glueline.ops.deploy.account import account_facts, code_file
from glueline.ops.deploy.aws import DeployError
from glueline.ops.deploy.desired import STACK_TAG, AccountFacts, DesiredState, desired_state
from glueline.ops.deploy.executor import Executor
from glueline.ops.deploy.models import Action, Change, Deletion
from glueline.ops.deploy.plans import compute, database, iam, network, storage
from glueline.ops.deploy.plans.base import Planning
from glueline.ops.deploy.sweeper import Sweeper
from glueline.ops.target import Target
from glueline.settings import Settings

Stage = Callable[[Planning], list[Change]]


class Deployer:
    """The pipeline's resources in one target. ``adopt``: take over resources of our names that no stack
    tagged; ``progress`` hears each state a waited resource passes through; ``announce`` hears what each
    deploy did; ``sleep`` is injected for tests."""

    def __init__(
        self,
        target: Target,
        adopt: bool,
        progress: Callable[[str], None],
        announce: Callable[[list[Change]], None],
        sleep: Callable[[float], None],
    ):
        self.target = target
        self.settings = target.settings  # what deploy deploys; deployed_with changes it for a while
        self.adopt = adopt
        self.progress = progress
        self.announce = announce
        self.sleep = sleep

    @property
    def bucket(self) -> str:
        return self.target.bucket

    @property
    def database(self) -> Database:
        """The target's database; one deploy creates as RDS describes it now (its endpoint comes once it
        is available)."""
        database = self.target.database
        if database.origin == Origin.CREATED:
            return created_database(self.settings, self.target.client("rds"))
        return database

    @property
    def rows_target(self) -> str:
        """Where the rows go, as every FileID names it."""
        return self.database.target(self.settings.table)

    def facts(self) -> AccountFacts:
        return account_facts(self.target, self.settings, self.database)

    def desired(self) -> DesiredState:
        return desired_state(self.settings, self.facts())

    # -- plan, deploy ---------------------------------------------------------------------------------

    def stages(self) -> list[Stage]:
        """In dependency order: each stage plans its resources as they are when it runs."""
        tls_offered = self.database.tls_offered
        review = self.database.login_review(self.settings.table)
        return [
            storage.bucket,
            lambda p: storage.code(p, lambda name: code_file(name, self.settings)),
            storage.audit_table,
            compute.failure_queue,
            network.glue_group,
            lambda p: network.endpoints(p, self.target.on_aws),
            database.instance,
            iam.roles,
            lambda p: database.secrets(p, tls_offered, review),
            compute.glue_connection,
            compute.glue_jobs,
            database.login,
            compute.lambda_logs,
            lambda p: compute.lambda_function(p, packaging.lambda_zip()),
            compute.rules,
        ]

    def plan(self) -> list[Change]:
        """What deploy would do; writes nothing."""
        return [change for changes in self._planned(self.stages()) for change in changes]

    def _planned(self, stages: list[Stage]) -> list[list[Change]]:
        """Each stage's changes, planned against the account as it is now."""
        planning = Planning(self.desired(), self.target.client)
        return [stage(planning) for stage in stages]

    def deploy(self) -> list[Change]:
        """Refuse what must not be touched, then apply each stage's plan; once a stage has changed
        something, plan each next stage again against the account as it is then: what was done."""
        stages = self.stages()
        planned = self._planned(stages)
        refused = refusals([change for changes in planned for change in changes], self.adopt, self.settings.stack)
        if refused:
            raise DeployError(refused)
        executor = Executor(self.target.client, self.sleep, self.progress)
        done: list[Change] = []
        since: DesiredState | None = None  # as the account is since a stage changed it (None: as planned)
        stale = False  # the last stage changed the account: read it again
        for stage, changes in zip(stages, planned, strict=True):
            if stale:
                since, stale = self.desired(), False
            if since is not None:
                changes = stage(Planning(since, self.target.client))
            for change in changes:
                executor.execute(change.steps)
                stale = stale or change.action != Action.UNCHANGED
                change.action = change.action.done
                done.append(change)
        self.announce(done)
        return done

    @contextmanager
    def deployed_with(self, **changes: Any) -> Iterator[Settings]:
        """The pipeline deployed with some settings changed (a debugger's address, the Spark UI, a shorter
        Timeout) while the block runs, and deployed back as it was after it, also when it fails. Blocks
        nest: ``settings`` says what is deployed meanwhile."""
        before = self.settings
        self.settings = before.model_copy(update=changes)
        try:
            self.deploy()
            yield self.settings
        finally:
            self.settings = before
            self.deploy()

    # -- destroy ----------------------------------------------------------------------------------------

    def plan_destroy(self) -> list[Deletion]:
        """What destroy would delete, keep or leave, in deletion order; writes nothing."""
        return Sweeper(self.settings, self.target).plan_destroy()

    def destroy(self, deletions: list[Deletion], delete_data: bool) -> list[Change]:
        """Delete what ``deletions`` say (keeping what holds data unless ``delete_data``): what was done."""
        executor = Executor(self.target.client, self.sleep, self.progress)
        done = []
        for deletion in deletions:
            action = deletion.action(delete_data)
            if action == Action.DELETE:
                executor.execute(deletion.steps)
            done.append(Change(deletion.resource, deletion.type, action.done, [], deletion.detail))
        return done


def deployer_for(
    target: Target,
    *,
    adopt: bool = False,
    progress: Callable[[str], None] = lambda line: None,
    announce: Callable[[list[Change]], None] = lambda changes: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Deployer:
    """The Deployer of ``target`` (``glueline.ops.target.resolve_target``)."""
    return Deployer(target, adopt, progress, announce, sleep)


def refusals(changes: list[Change], adopt: bool, stack: str) -> str:
    """Why deploy must not apply this plan ("" if it may): resources of another stack, or resources no
    stack tagged when taking them over was not asked for."""
    reasons = []
    conflicts = [c for c in changes if c.action == Action.CONFLICT]
    if conflicts:
        listed = "; ".join(f"{c.resource} ({c.detail})" for c in conflicts)
        reasons.append(f"deploy leaves these alone and cannot go on: {listed}")
    untagged = [c.resource for c in changes if c.action == Action.ADOPT]
    if untagged and not adopt:
        reasons.append(
            f"these exist but were not made by this stack (no tag {STACK_TAG}={stack}): {', '.join(untagged)}. "
            "deploy --adopt takes them over (roles get this stack's trust policy and inline policy, managed "
            "policies attached to them are detached; an endpoint gets the route table or group it lacks and "
            "stays theirs: `glueline plan` lists each)"
        )
    return "\n".join(reasons)
