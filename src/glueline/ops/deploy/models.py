"""What a plan is made of: resources (``Change``, ``Deletion``), what is done to each (``Action``), and the
declared steps that converge or remove them (``APICall``, ``Wait``, ``EmptyBucket``). Plain data: a plan
(``plans/``) returns it, the executor runs it, ``plan`` shows it, and unit tests compare it, with no AWS
in between.

A value an earlier call returns (the id of a security group just created) is named by ``APICall.store``
and used by later calls as ``Ref(name)``: the plan stays data although the id exists only at run time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


@dataclass(frozen=True)
class Ref:
    """The value an earlier ``APICall`` stored under ``name`` (resolved by the executor)."""

    name: str


@dataclass(frozen=True)
class APICall:
    """One call of a boto3 client: ``client(service).<method>(**params)``.

    ``store``: (name, key) keeps ``response[key]`` for later ``Ref(name)``s. ``retry_while``: an error
    code that means "not yet" (a role Lambda cannot assume yet, a security group whose network interfaces
    AWS is still removing), or, where the code also means other things, only with one of
    ``retry_messages`` in its message. ``ignore``: an error code that means "already done" (a permission
    granted meanwhile)."""

    service: str
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    retry_while: str | None = None
    ignore: str | None = None
    store: tuple[str, str] | None = None
    retry_messages: tuple[str, ...] = ()


@dataclass(frozen=True)
class Wait:
    """A boto3 waiter, bounded by ``delay`` × ``attempts`` seconds; ``state``: where the waited
    resource's state is in the waiter's describe answer (JMESPath), shown as it changes."""

    service: str
    waiter: str
    what: str
    delay: int
    attempts: int
    params: dict[str, Any] = field(default_factory=dict)
    state: str = ""
    reason: str = ""  # JMESPath to why it failed, said with the error


@dataclass(frozen=True)
class EmptyBucket:
    """Every object and version of the bucket, as they are when it runs."""

    bucket: str


Step = APICall | Wait | EmptyBucket


class Action(StrEnum):
    """What a plan does to a resource, and (``done``) what was done once applied."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    ADOPT = "adopt"  # ours by name, tagged by no stack: taken over when asked (deploy --adopt)
    CONFLICT = "conflict"  # another stack's, or not what the pipeline can use: never touched
    DELETE = "delete"
    KEEP = "keep"  # holds data: destroy keeps it unless asked
    LEAVE = "left"  # our name, not our tag: destroy leaves it
    CREATED = "created"
    UPDATED = "updated"
    ADOPTED = "adopted"
    DELETED = "deleted"
    KEPT = "kept"

    @property
    def done(self) -> Action:
        return _DONE.get(self, self)


_DONE = {
    Action.CREATE: Action.CREATED,
    Action.UPDATE: Action.UPDATED,
    Action.ADOPT: Action.ADOPTED,
    Action.DELETE: Action.DELETED,
    Action.KEEP: Action.KEPT,
}


@dataclass
class Change:
    """One resource: what a plan would do (create, update with the ``changed`` attributes, unchanged),
    the ``steps`` that do it, or, once applied, what was done (created, updated, unchanged; for destroy:
    deleted, kept, left)."""

    resource: str
    type: str
    action: Action
    changed: list[str] = field(default_factory=list)
    detail: str = ""
    steps: list[Step] = field(default_factory=list, repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "type": self.type,
            "action": self.action,
            "changed": self.changed,
            "detail": self.detail,
        }


@dataclass
class Deletion:
    """One resource destroy found: the steps that delete it, whether it holds data, whether it is ours
    (our name *and* our tag)."""

    resource: str
    type: str
    steps: list[Step]
    holds_data: bool = False
    ours: bool = True  # False: our name without our tag; left as it is
    detail: str = ""

    def action(self, delete_data: bool) -> Action:
        if not self.ours:
            return Action.LEAVE
        return Action.DELETE if delete_data or not self.holds_data else Action.KEEP
