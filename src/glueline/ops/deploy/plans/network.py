"""Glue's workers in a subnet next to the database: their security group, and the VPC endpoints of what
the job calls (a subnet without internet needs them)."""

from __future__ import annotations

from typing import Any

from glueline.ops.deploy.aws import endpoint_alive, tag_dict, tag_drift, tag_list
from glueline.ops.deploy.desired import ENDPOINTS_SECURITY_GROUP, GLUE_SECURITY_GROUP, STACK_TAG, SecurityGroup
from glueline.ops.deploy.models import Action, APICall, Change, Step
from glueline.ops.deploy.plans.base import Planning, group_id, missing_ingress


def glue_group(p: Planning) -> list[Change]:
    group = p.desired.glue_security_group
    if group is None:
        given = f"security group {p.desired.glue_group}"
        return [Change(given, "security group", Action.UNCHANGED, [], "given by GLUELINE_GLUE_SECURITY_GROUP_ID")]
    resource = f"security group {group.name}"
    existing = group_id(group.group_id)
    if existing is None:
        return [p.change(resource, "security group", None, p.create_group(group), f"in {group.vpc_id}")]
    return [_converged(p, group, existing, "self-referencing ingress", f"{existing} in {group.vpc_id}")]


def endpoints(p: Planning, on_aws: bool) -> list[Change]:
    """The endpoints' group, then each endpoint. The VPC may be shared (often the default one): an
    interface endpoint with private DNS answers for its service in the whole VPC, so its group admits
    HTTPS from every CIDR block of the VPC, not only from Glue; a gateway endpoint routes only the Glue
    subnet's route table; an endpoint that already exists for a service is reused (checked, never
    replaced; another's is changed only by deploy --adopt), and one that is not this stack's is never
    deleted by destroy. ``plan`` says each of these in its detail; ``on_aws``, a VPC where AWS would
    refuse the private DNS of the endpoints to create is a conflict (emulators accept it; MiniStack
    answers DNS hostnames off for its default VPC, which AWS's has on)."""
    group = p.desired.endpoints_security_group
    if group is None:
        return []
    cidrs = ", ".join(r["CidrIp"] for rule in group.ingress for r in rule.get("IpRanges", []))
    existing_group = group_id(group.group_id)
    if existing_group is None:
        changes = [
            p.change(f"security group {group.name}", "security group", None, p.create_group(group), f"443 from {cidrs}")
        ]
    else:
        detail = f"{existing_group}: 443 from {cidrs}"
        changes = [_converged(p, group, existing_group, "", detail)]
    ec2 = p.client("ec2")
    existing = {
        e["ServiceName"]: e
        for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [group.vpc_id]}])["VpcEndpoints"]
        if endpoint_alive(e)
    }
    private_dns = [
        name.rsplit(".", 1)[1]
        for name, wanted in p.desired.vpc_endpoints.items()
        if wanted.get("PrivateDnsEnabled") and name not in existing
    ]
    if on_aws and private_dns:
        changes += _dns_conflict(ec2, group.vpc_id, private_dns)
    glue_group_id = group_id(p.desired.glue_group)
    for name, wanted in p.desired.vpc_endpoints.items():
        changes.append(_endpoint(p, name, wanted, existing.get(name), cidrs, glue_group_id))
    return changes


# The VPC attributes private DNS needs: as DescribeVpcAttribute names them, answers them, the AWS CLI sets them.
DNS_ATTRIBUTES = {
    "enableDnsSupport": ("EnableDnsSupport", "--enable-dns-support"),
    "enableDnsHostnames": ("EnableDnsHostnames", "--enable-dns-hostnames"),
}


def _dns_conflict(ec2, vpc_id: str, services: list[str]) -> list[Change]:
    """AWS refuses private DNS on an interface endpoint unless its VPC resolves names and gives
    hostnames; a VPC not made as the default one (or by the console's wizard) starts without hostnames."""
    off = [
        (name, option)
        for name, (key, option) in DNS_ATTRIBUTES.items()
        if not ec2.describe_vpc_attribute(VpcId=vpc_id, Attribute=name)[key]["Value"]
    ]
    if not off:
        return []
    turn_on = "; ".join(f"aws ec2 modify-vpc-attribute --vpc-id {vpc_id} {option} Value=true" for _, option in off)
    why = (
        f"{' and '.join(f'{name} off' for name, _ in off)}: AWS refuses the private DNS of the endpoints of "
        f"{', '.join(services)} unless both {' and '.join(DNS_ATTRIBUTES)} are on ({turn_on}); or "
        "GLUELINE_VPC_ENDPOINTS=false where the subnet has a NAT gateway"
    )
    return [Change(f"vpc {vpc_id}", "vpc", Action.CONFLICT, [], why)]


def _endpoint(
    p: Planning, name: str, wanted: dict[str, Any], endpoint: dict[str, Any] | None, cidrs: str, glue_group: str | None
) -> Change:
    resource = f"vpc endpoint {name}"
    kind, service = wanted["VpcEndpointType"], name.rsplit(".", 1)[1]
    table = wanted.get("RouteTableIds", [""])[0]
    if kind == "Gateway":
        detail = f"routes {service} from route table {table} (the Glue subnet's) only"
    else:
        detail = f"private DNS: all of {wanted['VpcId']} reaches {service} through it; HTTPS from {cidrs}"
    if endpoint is None:
        tagged = {"TagSpecifications": [{"ResourceType": "vpc-endpoint", "Tags": tag_list(p.tags)}]}
        return p.change(
            resource, "vpc endpoint", None, [APICall("ec2", "create_vpc_endpoint", wanted | tagged)], detail
        )
    endpoint_id = endpoint["VpcEndpointId"]
    if endpoint.get("VpcEndpointType", kind) != kind:
        why = f"{endpoint_id} is a {endpoint['VpcEndpointType']} endpoint; the pipeline needs {kind}"
        return Change(resource, "vpc endpoint", Action.CONFLICT, [], why)
    tags = tag_dict(endpoint.get("Tags", []))
    ours = tags.get(STACK_TAG) == p.desired.tags[STACK_TAG]
    changed: list[str] = []
    modify: dict[str, Any] = {"VpcEndpointId": endpoint_id}
    if kind == "Gateway" and table not in endpoint.get("RouteTableIds", []):
        changed.append(f"route table {table} added")
        modify["AddRouteTableIds"] = [table]
    # AWS lists an interface endpoint's groups (one at least); an emulator that keeps none answers
    # without them, which is not drift.
    groups = [g["GroupId"] for g in endpoint.get("Groups", [])]
    (group,) = wanted.get("SecurityGroupIds", [None])
    if kind == "Interface" and "Groups" in endpoint and group not in groups:
        changed.append(f"security group {ENDPOINTS_SECURITY_GROUP} added")
        modify["AddSecurityGroupIds"] = [group]
        if ours and glue_group in groups:  # an older deploy's: Glue's group only
            changed.append(f"security group {GLUE_SECURITY_GROUP} removed")
            modify["RemoveSecurityGroupIds"] = [glue_group]
    owner = "" if ours else ", not this stack's: reused, left by destroy"
    steps = [APICall("ec2", "modify_vpc_endpoint", modify)] if changed else []
    # Reused as it is, whoever's; another's that lacks something is changed only when adopted (and stays
    # theirs, untagged: the VPC's other workloads use it), another stack's never.
    return p.change(
        resource, "vpc endpoint", changed, steps, f"{endpoint_id}{owner}; {detail}", tags=tags if changed else None
    )


def _converged(p: Planning, group: SecurityGroup, existing: str, label: str, detail: str) -> Change:
    """A group that exists: tagged, and given the ingress it lacks (``label`` names what was missing,
    "" for a list of the CIDR blocks)."""
    current = p.client("ec2").describe_security_groups(GroupIds=[existing])["SecurityGroups"][0]
    tags = tag_dict(current.get("Tags", []))
    changed = tag_drift(tags, p.tags)
    steps: list[Step] = [APICall("ec2", "create_tags", {"Resources": [existing], "Tags": tag_list(p.tags)})]
    missing = missing_ingress(current, group.ingress)
    if missing:
        ranges = [r["CidrIp"] for rule in missing for r in rule.get("IpRanges", [])]
        changed.append(label or f"HTTPS from {', '.join(ranges)}")
        steps.append(
            APICall("ec2", "authorize_security_group_ingress", {"GroupId": existing, "IpPermissions": missing})
        )
    return p.change(f"security group {group.name}", "security group", changed, steps, detail, tags=tags)
