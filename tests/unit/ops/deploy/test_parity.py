"""Deploy and the CloudFormation template are one desired state: for the same settings (an RDS URL among
them) the resources deploy creates in an account (deployed into moto, each stage's calls as made) and
the resources of the template (its parameters given the values deploy found in that account) have the
same properties, each reduced to what both can say: policies, trust, the secret's connection with its
TLS mode and CA, the security groups' ingress (CIDRs included), the VPC endpoints, tags, retention, the
job's and the function's configuration, the rules.

The one difference by design is where the code is: deploy puts it in the pipeline's bucket under
``scripts/``, the template reads it from ``ArtifactsBucket`` under ``glueline/``; the comparison maps the
template's location onto deploy's. moto refuses every request to a bucket whose policy denies on a
condition (it evaluates no condition): deploy runs without the TLS-only policy, and a plan made after
it holds the policy it would add against the template's."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from glueline.ops.deploy import cloudformation
from glueline.ops.deploy.deployer import deployer_for
from glueline.ops.deploy.models import APICall, Ref
from glueline.settings import Settings

from .conftest import target_of

RDS_URL = "postgresql://etl:s3cr3t@bank.c0ffee123456.eu-west-1.rds.amazonaws.com:5432/bank"
ARTIFACTS = "artifacts-bucket"
SECOND_CIDR = "10.99.0.0/16"


@pytest.fixture
def settings(tmp_path) -> Settings:
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n")
    return Settings(_env_file=None, db_url=RDS_URL, db_ca_bundle=bundle)


def test_deploy_and_the_template_create_the_same_resources(session, settings):
    ec2 = session.client("ec2")
    (vpc,) = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
    ec2.associate_vpc_cidr_block(VpcId=vpc["VpcId"], CidrBlock=SECOND_CIDR)  # a VPC of two CIDR blocks

    deployed, found = _deploy(session, settings)
    template = cloudformation.template(settings, target_of(session, settings).database)
    rendered = _render(template, {**found, "ArtifactsBucket": ARTIFACTS})
    code_here = f"{found['Bucket']}/scripts/"
    templated = _from_template(rendered, code_there=f"{ARTIFACTS}/glueline/", code_here=code_here)
    planned = _from_plan(deployed)

    assert sorted(templated) == sorted(planned)
    for resource in planned:
        assert templated[resource] == planned[resource], resource
    # Said outright: the RDS database is checked against RDS's CA, shipped with the
    # code, and the interface endpoints answer every CIDR block of the VPC.
    secret = planned["secret"]
    assert (secret["sslmode"], secret["sslrootcert"]) == ("verify-full", f"s3://{code_here}rds-ca-bundle.pem")
    https = {rule[3] for rule in planned["security group glueline-endpoints"]["ingress"]}
    assert https == {vpc["CidrBlock"], SECOND_CIDR}

    tls_only = deployer_for(target_of(session, settings)).plan()
    (bucket,) = [c for c in tls_only if c.resource == f"s3://{found['Bucket']}"]
    (policy,) = [s.params["Policy"] for s in bucket.steps if isinstance(s, APICall) and s.method == "put_bucket_policy"]
    assert _policy(policy) == _policy(rendered["BucketPolicy"]["Properties"]["PolicyDocument"])


# -- the two sides -------------------------------------------------------------------------------------


def _deploy(session, settings: Settings) -> tuple[list, dict[str, Any]]:
    """What deploy did in a new account, and the values the template's parameters take for that account."""
    deployer = deployer_for(target_of(session, settings.model_copy(update={"bucket_tls_only": False})))
    changes = deployer.deploy()
    target, network = deployer.target, deployer.facts().network
    groups = session.client("ec2").describe_security_groups()["SecurityGroups"]
    # Where an ARN or a rule names a group deploy made, the template names its resource.
    found_groups = {
        g["GroupId"]: f"<{TEMPLATE_GROUPS[g['GroupName']]}>" for g in groups if g["GroupName"] in TEMPLATE_GROUPS
    }
    found = {
        "AWS::AccountId": target.account,
        "AWS::Region": target.region,
        "AWS::Partition": target.partition,
        "Bucket": target.bucket,
        "VpcId": network.vpc_id,
        "GlueSubnetId": network.subnet_id,
        "GlueAvailabilityZone": network.availability_zone,
        "RouteTableId": network.route_table_id,
        "VpcCidrBlocks": list(network.cidrs),
    }
    text = json.dumps([_steps_of(change) for change in changes], default=_ref)
    for group_id, resource in found_groups.items():
        text = text.replace(group_id, resource)
    return json.loads(text), found


# -- the template, rendered with parameter values -----------------------------------------------------


def _render(template: dict, parameters: dict[str, Any]) -> dict[str, dict]:
    """The template's resources with its intrinsic functions evaluated: parameters and pseudo parameters by
    value, a resource's own id or attribute as ``<Logical>``, ``Fn::ForEach`` expanded."""
    values = dict(parameters)

    def value(name: str) -> Any:
        if name in values:
            return values[name]
        return f"<{name.split('.')[0]}>"  # a resource's id or attribute

    def evaluate(node: Any) -> Any:
        if isinstance(node, list):
            return [evaluate(item) for item in node]
        if not isinstance(node, dict):
            return node
        if set(node) == {"Ref"}:
            return value(node["Ref"])
        if set(node) == {"Fn::GetAtt"}:
            return f"<{node['Fn::GetAtt'][0]}>"
        if set(node) == {"Fn::Sub"}:
            return re.sub(r"\$\{([^}]+)\}", lambda m: str(value(m.group(1))), node["Fn::Sub"])
        return {key: evaluate(item) for key, item in node.items()}

    resources: dict[str, dict] = {}
    for logical, resource in template["Resources"].items():
        if logical.startswith("Fn::ForEach::"):
            variable, collection, fragment = resource
            for item in evaluate(collection):
                values[variable] = item
                for key, body in fragment.items():
                    name = key.replace(f"&{{{variable}}}", re.sub(r"[^A-Za-z0-9]", "", item))
                    resources[name.replace(f"${{{variable}}}", item)] = evaluate(body)
                del values[variable]
        else:
            resources[logical] = evaluate(resource)
    return resources


# -- each side reduced to what both can say -----------------------------------------------------------


def _policy(document: Any) -> dict:
    document = json.loads(document) if isinstance(document, str) else document
    statements = []
    for statement in document["Statement"]:
        statement = dict(statement)
        for key in ("Action", "Resource"):
            if key in statement:
                listed = statement[key] if isinstance(statement[key], list) else [statement[key]]
                statement[key] = sorted(set(listed))
        statements.append(statement)
    return {"Statement": sorted(statements, key=lambda s: json.dumps(s, sort_keys=True))}


def _tags(tags: Any) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags} if isinstance(tags, list) else dict(tags or {})


TEMPLATE_GROUPS = {"glueline-glue": "GlueSecurityGroup", "glueline-endpoints": "EndpointsSecurityGroup"}
_GROUP_NAMES = {f"<{logical}>": name for name, logical in TEMPLATE_GROUPS.items()}


def _ref(value: Any) -> str:
    """A group created in the same stage, named in its calls by reference: as the template names it."""
    assert isinstance(value, Ref), value
    return f"<{TEMPLATE_GROUPS[value.name]}>"


def _steps_of(change) -> dict[str, Any]:
    """A change's calls by method (bytes, a code object's or a function's, left out: the code is not compared)."""
    return {
        step.method: {k: v for k, v in step.params.items() if not isinstance(v, bytes) and k != "Code"}
        for step in change.steps
        if isinstance(step, APICall)
    }


def _group(reference: str) -> str:
    """A security group as both sides name it: ``<Logical>`` of the template's resource, by its name."""
    return f"sg:{_GROUP_NAMES.get(reference, reference)}"


def _secret(secret_string: str) -> dict:
    connection = json.loads(secret_string)
    connection.pop("password")
    return connection


def _rule_facets(pattern: Any, schedule: Any, description: str) -> dict:
    return {
        "pattern": json.loads(pattern) if isinstance(pattern, str) else pattern,
        "schedule": schedule,
        "description": description,
    }


def _from_plan(calls: list[dict[str, Any]]) -> dict[str, dict]:
    """Deploy's calls (each change's, by method) reduced to the facets both sides can say."""
    facets: dict[str, dict] = {}
    for by_method in calls:
        if "create_role" in by_method:
            role = by_method["create_role"]
            facets[f"role {role['RoleName']}"] = {
                "trust": _policy(role["AssumeRolePolicyDocument"]),
                "policy": _policy(by_method["put_role_policy"]["PolicyDocument"]),
                "tags": _tags(role["Tags"]),
            }
        elif "create_bucket" in by_method:
            lifecycle = by_method["put_bucket_lifecycle_configuration"]["LifecycleConfiguration"]["Rules"]
            facets["bucket"] = {
                "block": by_method["put_public_access_block"]["PublicAccessBlockConfiguration"],
                "lifecycle": {
                    r["ID"]: (
                        r["Filter"]["Prefix"],
                        r.get("Expiration", {}).get("Days"),
                        r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
                    )
                    for r in lifecycle
                },
                "tags": _tags(by_method["put_bucket_tagging"]["Tagging"]["TagSet"]),
            }
        elif "create_table" in by_method:
            table = by_method["create_table"]
            facets["audit table"] = {
                "keys": table["KeySchema"],
                "indexes": table["GlobalSecondaryIndexes"],
                "recovery": by_method["update_continuous_backups"]["PointInTimeRecoverySpecification"],
                "tags": _tags(table["Tags"]),
            }
        elif "create_secret" in by_method:
            secret = by_method["create_secret"]
            facets["secret"] = {**_secret(secret["SecretString"]), "tags": _tags(secret["Tags"])}
        elif "create_security_group" in by_method:
            group = by_method["create_security_group"]
            ingress = by_method["authorize_security_group_ingress"]["IpPermissions"]
            facets[f"security group {group['GroupName']}"] = {
                "description": group["Description"],
                "ingress": sorted(
                    (p["IpProtocol"], p["FromPort"], p["ToPort"], source)
                    for p in ingress
                    for source in [*(_group(g["GroupId"]) for g in p.get("UserIdGroupPairs", []))]
                    + [r["CidrIp"] for r in p.get("IpRanges", [])]
                ),
                "tags": _tags(group["TagSpecifications"][0]["Tags"]),
            }
        elif "create_vpc_endpoint" in by_method:
            endpoint = by_method["create_vpc_endpoint"]
            facets[f"endpoint {endpoint['ServiceName']}"] = {
                "type": endpoint["VpcEndpointType"],
                "route tables": endpoint.get("RouteTableIds"),
                "subnets": endpoint.get("SubnetIds"),
                "groups": [_group(g) for g in endpoint.get("SecurityGroupIds", [])] or None,
                "private dns": endpoint.get("PrivateDnsEnabled"),
            }
        elif "create_connection" in by_method:
            connection = by_method["create_connection"]["ConnectionInput"]
            requirements = dict(connection["PhysicalConnectionRequirements"])
            requirements["SecurityGroupIdList"] = [_group(g) for g in requirements["SecurityGroupIdList"]]
            facets["glue connection"] = {"type": connection["ConnectionType"], "requirements": requirements}
        elif "create_job" in by_method:
            job = dict(by_method["create_job"])
            facets["glue job"] = {**{k: v for k, v in job.items() if k not in ("Name", "Tags")}, "tags": job["Tags"]}
        elif "create_function" in by_method:
            function = dict(by_method["create_function"])
            facets["lambda"] = {
                **{k: function[k] for k in ("Role", "Handler", "Runtime", "Timeout", "MemorySize", "Environment")},
                "reserved": by_method["put_function_concurrency"]["ReservedConcurrentExecutions"],
                "tags": function["Tags"],
            }
            invoke = by_method["put_function_event_invoke_config"]
            facets["lambda invoke config"] = {k: v for k, v in invoke.items() if k != "FunctionName"}
        elif "create_log_group" in by_method:
            facets["lambda log group"] = {
                "retention": by_method["put_retention_policy"]["retentionInDays"],
                "tags": by_method["create_log_group"]["tags"],
            }
        elif "create_queue" in by_method:
            queue = by_method["create_queue"]
            facets["failure queue"] = {
                "retention": int(queue["Attributes"]["MessageRetentionPeriod"]),
                "sse": queue["Attributes"]["SqsManagedSseEnabled"] == "true",
                "tags": queue["tags"],
            }
        elif "put_rule" in by_method:
            rule = by_method["put_rule"]
            facets[f"rule {rule['Name']}"] = {
                **_rule_facets(rule.get("EventPattern"), rule.get("ScheduleExpression"), rule["Description"]),
                "state": rule["State"],
                "tags": _tags(rule["Tags"]),
                "invoked by": by_method["add_permission"]["Principal"],
            }
    return facets


def _from_template(resources: dict[str, dict], code_there: str, code_here: str) -> dict[str, dict]:
    """The template's resources reduced as the plan's are (the code's location mapped onto deploy's)."""
    resources = json.loads(
        json.dumps(resources)
        .replace(f"s3://{code_there}", f"s3://{code_here}")
        .replace(f"arn:aws:s3:::{code_there}", f"arn:aws:s3:::{code_here}")
    )
    by_type: dict[str, list[dict]] = {}
    for resource in resources.values():
        by_type.setdefault(resource["Type"], []).append(resource)
    facets: dict[str, dict] = {}
    for role in by_type.get("AWS::IAM::Role", []):
        p = role["Properties"]
        (inline,) = p["Policies"]
        facets[f"role {p['RoleName']}"] = {
            "trust": _policy(p["AssumeRolePolicyDocument"]),
            "policy": _policy(inline["PolicyDocument"]),
            "tags": _tags(p["Tags"]),
        }
    (bucket,) = by_type["AWS::S3::Bucket"]
    b = bucket["Properties"]
    facets["bucket"] = {
        "block": b["PublicAccessBlockConfiguration"],
        "lifecycle": {
            r["Id"]: (
                r["Prefix"],
                r.get("ExpirationInDays"),
                r.get("AbortIncompleteMultipartUpload", {}).get("DaysAfterInitiation"),
            )
            for r in b["LifecycleConfiguration"]["Rules"]
        },
        "tags": _tags(b["Tags"]),
    }
    (table,) = by_type["AWS::DynamoDB::Table"]
    t = table["Properties"]
    facets["audit table"] = {
        "keys": t["KeySchema"],
        "indexes": t["GlobalSecondaryIndexes"],
        "recovery": t["PointInTimeRecoverySpecification"],
        "tags": _tags(t["Tags"]),
    }
    (secret,) = by_type["AWS::SecretsManager::Secret"]
    facets["secret"] = {**_secret(secret["Properties"]["SecretString"]), "tags": _tags(secret["Properties"]["Tags"])}
    ingress = by_type.get("AWS::EC2::SecurityGroupIngress", [])
    for group in by_type.get("AWS::EC2::SecurityGroup", []):
        g = group["Properties"]
        logical = "<GlueSecurityGroup>" if g["GroupName"] == "glueline-glue" else "<EndpointsSecurityGroup>"
        rules = [
            *g.get("SecurityGroupIngress", []),
            *(i["Properties"] for i in ingress if i["Properties"]["GroupId"] == logical),
        ]
        facets[f"security group {g['GroupName']}"] = {
            "description": g["GroupDescription"],
            "ingress": sorted(
                (
                    r["IpProtocol"],
                    r["FromPort"],
                    r["ToPort"],
                    _group(r["SourceSecurityGroupId"]) if "SourceSecurityGroupId" in r else r["CidrIp"],
                )
                for r in rules
            ),
            "tags": _tags(g["Tags"]),
        }
    for endpoint in by_type.get("AWS::EC2::VPCEndpoint", []):
        e = endpoint["Properties"]
        facets[f"endpoint {e['ServiceName']}"] = {
            "type": e["VpcEndpointType"],
            "route tables": e.get("RouteTableIds"),
            "subnets": e.get("SubnetIds"),
            "groups": [_group(g) for g in e.get("SecurityGroupIds", [])] or None,
            "private dns": e.get("PrivateDnsEnabled"),
        }
    (connection,) = by_type["AWS::Glue::Connection"]
    c = connection["Properties"]["ConnectionInput"]
    requirements = dict(c["PhysicalConnectionRequirements"])
    requirements["SecurityGroupIdList"] = [_group(g) for g in requirements["SecurityGroupIdList"]]
    facets["glue connection"] = {"type": c["ConnectionType"], "requirements": requirements}
    (job,) = by_type["AWS::Glue::Job"]
    j = dict(job["Properties"])
    facets["glue job"] = {**{k: v for k, v in j.items() if k not in ("Name", "Tags")}, "tags": j["Tags"]}
    (function,) = by_type["AWS::Lambda::Function"]
    f = function["Properties"]
    facets["lambda"] = {
        **{k: f[k] for k in ("Role", "Handler", "Runtime", "Timeout", "MemorySize", "Environment")},
        "reserved": f.get("ReservedConcurrentExecutions"),
        "tags": _tags(f["Tags"]),
    }
    (invoke,) = by_type["AWS::Lambda::EventInvokeConfig"]
    facets["lambda invoke config"] = {
        k: v for k, v in invoke["Properties"].items() if k not in ("FunctionName", "Qualifier")
    }
    (logs,) = by_type["AWS::Logs::LogGroup"]
    facets["lambda log group"] = {
        "retention": logs["Properties"]["RetentionInDays"],
        "tags": _tags(logs["Properties"]["Tags"]),
    }
    (queue,) = by_type["AWS::SQS::Queue"]
    q = queue["Properties"]
    facets["failure queue"] = {
        "retention": q["MessageRetentionPeriod"],
        "sse": q["SqsManagedSseEnabled"],
        "tags": _tags(q["Tags"]),
    }
    permissions = {
        p["Properties"]["SourceArn"]: p["Properties"]["Principal"] for p in by_type["AWS::Lambda::Permission"]
    }
    for logical, resource in resources.items():
        if resource["Type"] != "AWS::Events::Rule":
            continue
        r = resource["Properties"]
        facets[f"rule {r['Name']}"] = {
            **_rule_facets(r.get("EventPattern"), r.get("ScheduleExpression"), r["Description"]),
            "state": r["State"],
            "tags": _tags(r.get("Tags", [])),
            "invoked by": permissions[f"<{logical}>"],
        }
    return facets
