"""What every plan shares: the desired state it plans toward, the account it reads through boto3
clients, and how a resource's state becomes a ``Change``."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from glueline.ops.deploy.aws import tag_list
from glueline.ops.deploy.desired import STACK_TAG, DesiredState, GroupId, SecurityGroup
from glueline.ops.deploy.models import Action, APICall, Change, Ref, Step


@dataclass(frozen=True)
class Planning:
    desired: DesiredState
    client: Callable[[str], Any]  # a boto3 client of the account, by service

    @property
    def tags(self) -> dict[str, str]:
        return self.desired.tags

    def change(
        self,
        resource: str,
        type_: str,
        changed: list[str] | None,
        steps: Sequence[Step],
        detail: str = "",
        tags: dict[str, str] | None = None,
        wanted_tags: dict[str, str] | None = None,
    ) -> Change:
        """``changed`` None: the resource does not exist (create); []: unchanged; else: update. ``tags``,
        those of an existing resource: untagged is ``adopt``, tagged by another stack (or, for a role,
        another region) is ``conflict`` and has no steps."""
        if changed is None:
            return Change(resource, type_, Action.CREATE, [], detail, list(steps))
        if tags is not None:
            wanted = wanted_tags or self.tags
            if STACK_TAG not in tags:
                return Change(resource, type_, Action.ADOPT, changed, detail, list(steps))
            others = {k: v for k, v in wanted.items() if tags.get(k, v) != v}
            if others:
                owner = ", ".join(f"{k}={tags[k]}" for k in others)
                why = f"tagged {owner}: another stack's (give this stack other names)"
                return Change(resource, type_, Action.CONFLICT, [], why)
        if changed:
            return Change(resource, type_, Action.UPDATE, changed, detail, list(steps))
        return Change(resource, type_, Action.UNCHANGED, [], detail)

    def create_group(self, group: SecurityGroup) -> list[Step]:
        """A tagged security group with its ingress (which may admit the group itself: its id is then
        the ``Ref`` the create call stores)."""
        create = {
            "GroupName": group.name,
            "Description": group.description,
            "VpcId": group.vpc_id,
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": tag_list(self.tags)}],
        }
        return [
            APICall("ec2", "create_security_group", create, store=(group.name, "GroupId")),
            APICall(
                "ec2", "authorize_security_group_ingress", {"GroupId": Ref(group.name), "IpPermissions": group.ingress}
            ),
        ]


def missing_ingress(current: dict[str, Any], wanted: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The parts of the ``wanted`` rules a group's ``current`` rules do not already admit: each source
    (a group, a CIDR block) of a wanted rule is admitted by a current rule of its protocol (or all
    traffic) whose ports cover the wanted ones."""
    missing = []
    for rule in wanted:
        covering = [
            p
            for p in current.get("IpPermissions", [])
            if p.get("IpProtocol") == "-1"
            or (
                p.get("IpProtocol") == rule["IpProtocol"]
                and p.get("FromPort", 0) <= rule["FromPort"]
                and p.get("ToPort", 65535) >= rule["ToPort"]
            )
        ]
        groups = {pair.get("GroupId") for p in covering for pair in p.get("UserIdGroupPairs", [])}
        cidrs = {r.get("CidrIp") for p in covering for r in p.get("IpRanges", [])}
        pairs = [pair for pair in rule.get("UserIdGroupPairs", []) if pair["GroupId"] not in groups]
        ranges = [r for r in rule.get("IpRanges", []) if r["CidrIp"] not in cidrs]
        if pairs or ranges:
            part = {k: v for k, v in rule.items() if k not in ("UserIdGroupPairs", "IpRanges")}
            missing.append(
                part | ({"UserIdGroupPairs": pairs} if pairs else {}) | ({"IpRanges": ranges} if ranges else {})
            )
    return missing


def group_id(group: GroupId) -> str | None:
    """The id of a group that exists; None for one deploy is to create."""
    return group if isinstance(group, str) else None
