"""The pipeline's roles: each gets exactly its trust policy and its one inline policy."""

from __future__ import annotations

import json

from glueline.ops.deploy.aws import normalized_policy, policy_document, read_tags, tag_drift, tag_list
from glueline.ops.deploy.desired import ROLE_DESCRIPTION
from glueline.ops.deploy.models import APICall, Change, Step
from glueline.ops.deploy.plans.base import Planning


def roles(p: Planning) -> list[Change]:
    """Inline policies of other names and attached managed policies (a FullAccess policy left from the
    console walkthrough) are removed, and ``plan`` names each."""
    iam = p.client("iam")
    tags_wanted = p.desired.role_tags
    changes = []
    for role, wanted in p.desired.roles.items():
        trust, policy, policy_name = wanted.trust, wanted.policy, wanted.policy_name
        put_policy = APICall(
            "iam",
            "put_role_policy",
            {"RoleName": role, "PolicyName": policy_name, "PolicyDocument": json.dumps(policy)},
        )
        try:
            current = iam.get_role(RoleName=role)["Role"]
        except iam.exceptions.NoSuchEntityException:
            create = {
                "RoleName": role,
                "AssumeRolePolicyDocument": json.dumps(trust),
                "Description": ROLE_DESCRIPTION,
                "Tags": tag_list(tags_wanted),
            }
            steps: list[Step] = [APICall("iam", "create_role", create), put_policy]
            changes.append(p.change(f"iam role {role}", "iam role", None, steps))
            continue
        tags = read_tags(iam.list_role_tags, RoleName=role)
        changed = []
        if normalized_policy(policy_document(current["AssumeRolePolicyDocument"])) != normalized_policy(trust):
            changed.append("trust policy")
        try:
            existing = policy_document(iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"])
        except iam.exceptions.NoSuchEntityException:
            existing = None
        if existing is None or normalized_policy(existing) != normalized_policy(policy):
            changed.append("policy")
        changed += tag_drift(tags, tags_wanted)
        steps = [
            APICall("iam", "update_assume_role_policy", {"RoleName": role, "PolicyDocument": json.dumps(trust)}),
            APICall("iam", "tag_role", {"RoleName": role, "Tags": tag_list(tags_wanted)}),
            put_policy,
        ]
        for other in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            if other != policy_name:
                changed.append(f"inline policy {other} removed")
                steps.append(APICall("iam", "delete_role_policy", {"RoleName": role, "PolicyName": other}))
        for attached in iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]:
            changed.append(f"managed policy {attached['PolicyName']} detached")
            steps.append(APICall("iam", "detach_role_policy", {"RoleName": role, "PolicyArn": attached["PolicyArn"]}))
        changes.append(p.change(f"iam role {role}", "iam role", changed, steps, tags=tags, wanted_tags=tags_wanted))
    return changes
