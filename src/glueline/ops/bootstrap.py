"""Create or converge every resource of the pipeline, idempotently, on whatever the AWS configuration
points at (the embedded stack, LocalStack, or a real account): one code path for all.

Each step compares what exists with what should exist: ``plan`` lists ``create``, ``update`` (with the
changed attributes) or ``unchanged`` per resource and writes nothing; deploy (``run``) applies the same
plan and reports ``created``, ``updated`` or ``unchanged``; a second deploy changes nothing and says so.
Every resource carries the tag ``glueline:stack=<stack>``; ``destroy`` finds what to remove by that tag,
never by guessing names, and keeps what holds data (bucket, audit table, secret) unless asked. Deploy
needs no database connection (a laptop usually cannot reach a private RDS): the job creates its table
when it starts.

What each resource should be (names, policies, properties) is ``glueline.ops.deploy.desired``: data,
computed from the settings and the ``Environment`` this class resolves once from the account.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3

from glueline.ops import packaging
from glueline.ops.deploy.aws import (
    BootstrapError,
    endpoint_alive,
    read_tags,
    tag_dict,
    tag_drift,
    tag_list,
    wait_until,
)
from glueline.ops.deploy.desired import (
    DB_SECURITY_GROUP,
    DB_SECURITY_GROUP_DESCRIPTION,
    ENDPOINT_SERVICES,
    GLUE_SECURITY_GROUP,
    GLUE_SECURITY_GROUP_DESCRIPTION,
    LAMBDA_DESCRIPTION,
    PUBLIC_ACCESS_BLOCK,
    STACK_TAG,
    DesiredState,
    Environment,
    arn,
    desired_state,
)
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.dbsecret import DbConnection
from glueline.shared.timeouts import aws_client

PLANNED = {"create": "created", "update": "updated", "unchanged": "unchanged"}
RDS_CA_BUNDLE = "rds-ca-bundle.pem"  # under scripts/
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


@dataclass
class Network:
    vpc_id: str
    subnet_id: str
    availability_zone: str
    security_group_id: str | None


@dataclass
class Change:
    """One resource: what a plan would do (create, update with the ``changed`` attributes, unchanged),
    or, once applied, what was done (created, updated, unchanged; for destroy: deleted, kept)."""

    resource: str
    type: str
    action: str
    changed: list[str] = field(default_factory=list)
    detail: str = ""
    apply: Callable[[], None] | None = field(default=None, repr=False, compare=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "resource": self.resource,
            "type": self.type,
            "action": self.action,
            "changed": self.changed,
            "detail": self.detail,
        }


def _document(value: Any) -> dict:
    """IAM answers with policy documents as dicts, JSON or URL-encoded JSON depending on the service."""
    if isinstance(value, str):
        value = json.loads(unquote(value))
    return value


def _normalized(document: dict) -> dict:
    def listify(v):
        return sorted(v) if isinstance(v, list) else [v]

    statements = []
    for s in document.get("Statement", []):
        s = dict(s)
        for key in ("Action", "Resource"):
            if key in s:
                s[key] = listify(s[key])
        statements.append(s)
    return {"Statement": statements}


class Bootstrap:
    """Plans and applies the pipeline's resources: ``plan()`` writes nothing, ``run()`` (deploy) applies
    the plan step by step (each step planned when the steps before it are applied), ``destroy()``
    removes what carries this stack's tag."""

    def __init__(
        self,
        settings: Settings,
        db: DbConnection | None,
        session: boto3.Session | None = None,
        log=print,
        function_glue_endpoint: str | None = None,
    ):
        """``db`` None: the database deploy creates (``settings.create_database``). ``function_glue_endpoint``:
        the Glue endpoint the Lambda is given where it reaches Glue otherwise than deploy does (the compose
        stack's runner, by its name in the project's network)."""
        self.settings = settings
        self.function_glue_endpoint = function_glue_endpoint
        self.session = session or boto3.Session()
        self.log = log
        self.changes: list[Change] = []
        self.region = self.session.region_name or settings.region
        self.account = aws_client("sts", self.session).get_caller_identity()["Account"]
        self.bucket = settings.bucket_name(self.account, self.region)
        self.tags = {STACK_TAG: settings.stack}
        self._network: Network | None = None
        self._db = self._verified(db) if db is not None else None

    @property
    def db(self) -> DbConnection:
        if self._db is None:
            self._db = self._created_database()
        return self._db

    @property
    def target(self) -> str:
        """Where the rows go; part of every FileID."""
        return self.db.target(str(self.settings.table))

    # -- names and ARNs -----------------------------------------------------------------------------

    def arn(self, service: str, resource: str) -> str:
        return arn(service, self.region, self.account, resource)

    @property
    def environment(self) -> Environment:
        """What the desired state needs from this account, as it is now (the network's group and the
        database appear once deploy has created them)."""
        net = self.network
        glue_endpoint = self.function_glue_endpoint or self.client("glue").meta.endpoint_url
        return Environment(
            account=self.account,
            region=self.region,
            bucket=self.bucket,
            target=self.target,
            db_secret_string=self.db.secret_string(),
            subnet_id=net.subnet_id,
            availability_zone=net.availability_zone,
            security_group_id=net.security_group_id,
            wheels=[path.name for path in self.wheels.values()],
            db_password_secret=self.db.password_secret,
            function_glue_endpoint=None if "amazonaws.com" in glue_endpoint else glue_endpoint,
        )

    @property
    def desired(self) -> DesiredState:
        return desired_state(self.settings, self.environment)

    def client(self, service: str):
        return aws_client(service, self.session, region_name=self.region)

    def _verified(self, db: DbConnection) -> DbConnection:
        """An RDS database left at libpq's default (``prefer``: encrypted if offered, the certificate not
        checked) is connected to with ``verify-full`` against the RDS CA bundle, which deploy ships to
        ``scripts/`` for the job. An sslmode given in the URL is kept as given."""
        if not db.host.endswith(".rds.amazonaws.com") or db.sslmode != "prefer":
            return db
        return replace(db, sslmode="verify-full", sslrootcert=f"s3://{self.bucket}/{layout.SCRIPTS}{RDS_CA_BUNDLE}")

    def _ca_bundle(self) -> bytes:
        if self.settings.db_ca_bundle:
            return Path(self.settings.db_ca_bundle).read_bytes()
        cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glueline" / RDS_CA_BUNDLE
        if not cache.exists():
            try:
                with urllib.request.urlopen(RDS_CA_BUNDLE_URL, timeout=30) as response:
                    data = response.read()
            except OSError as err:
                raise BootstrapError(
                    f"could not download the RDS CA bundle ({RDS_CA_BUNDLE_URL}): {err}; "
                    "set GLUELINE_DB_CA_BUNDLE to a copy of it"
                ) from err
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(data)
        return cache.read_bytes()

    # -- plan, deploy, destroy ----------------------------------------------------------------------

    def steps(self) -> list[Callable[[], list[Change]]]:
        """In dependency order: each step plans its resources as they are now."""
        return [
            self.plan_bucket,
            self.plan_scripts,
            self.plan_audit_table,
            self.plan_security_group,
            self.plan_endpoints,
            self.plan_database,
            self.plan_roles,
            self.plan_secret,
            self.plan_glue_connection,
            self.plan_glue_job,
            self.plan_lambda,
            self.plan_rules,
        ]

    def plan(self) -> list[Change]:
        """What deploy would do; writes nothing."""
        return [change for step in self.steps() for change in step()]

    def run(self) -> list[Change]:
        """Deploy: apply each step's plan, then plan the next step."""
        for step in self.steps():
            for change in step():
                if change.apply is not None:
                    change.apply()
                change.action = PLANNED[change.action]
                self._record(change)
        return self.changes

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        self.log(change)

    def _change(self, resource: str, type_: str, changed: list[str] | None, apply, detail: str = "") -> Change:
        """``changed`` None: the resource does not exist (create); []: unchanged; else: update."""
        if changed is None:
            return Change(resource, type_, "create", [], detail, apply)
        if changed:
            return Change(resource, type_, "update", changed, detail, apply)
        return Change(resource, type_, "unchanged", [], detail)

    # -- S3 -----------------------------------------------------------------------------------------

    def plan_bucket(self) -> list[Change]:
        s3 = self.client("s3")
        try:
            s3.head_bucket(Bucket=self.bucket)
        except s3.exceptions.ClientError:
            return [self._change(f"s3://{self.bucket}", "s3 bucket", None, self._create_bucket)]
        changed = []
        if read_tags(s3.get_bucket_tagging, Bucket=self.bucket) != self.tags:
            changed.append("tags")
        try:
            block = s3.get_public_access_block(Bucket=self.bucket)["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError:
            block = {}
        if block != PUBLIC_ACCESS_BLOCK:
            changed.append("public access block")
        if "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=self.bucket):
            changed.append("EventBridge notifications")
        for prefix in layout.ALL_PREFIXES:
            try:
                s3.head_object(Bucket=self.bucket, Key=prefix)
            except s3.exceptions.ClientError:
                changed.append(prefix)
        return [self._change(f"s3://{self.bucket}", "s3 bucket", changed, self._converge_bucket)]

    def _create_bucket(self) -> None:
        kwargs: dict[str, Any] = {"Bucket": self.bucket}
        if self.region != "us-east-1":
            kwargs["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        self.client("s3").create_bucket(**kwargs)
        self._converge_bucket()

    def _converge_bucket(self) -> None:
        s3 = self.client("s3")
        s3.put_bucket_tagging(Bucket=self.bucket, Tagging={"TagSet": tag_list(self.tags)})
        s3.put_public_access_block(Bucket=self.bucket, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK)
        s3.put_bucket_notification_configuration(
            Bucket=self.bucket, NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        for prefix in layout.ALL_PREFIXES:
            s3.put_object(Bucket=self.bucket, Key=prefix, Body=b"")

    def plan_scripts(self) -> list[Change]:
        return [
            self._plan_object(layout.SCRIPTS + packaging.GLUE_SCRIPT, packaging.glue_script()),
            self._plan_object(layout.SCRIPTS + packaging.GLUE_LIBRARY, packaging.glue_library_zip()),
            *(self._plan_object(key, wheel.read_bytes()) for key, wheel in self.wheels.items()),
            *([self._plan_object(layout.SCRIPTS + RDS_CA_BUNDLE, self._ca_bundle())] if self.db.sslrootcert else []),
        ]

    @cached_property
    def wheels(self) -> dict[str, Path]:
        """S3 key → local wheel of each module the job installs from S3."""
        prefix = layout.SCRIPTS + packaging.GLUE_WHEELS
        return {prefix + w.name: w for w in packaging.glue_wheels(self.settings.glue_version)}

    def _plan_object(self, key: str, body: bytes) -> Change:
        s3 = self.client("s3")
        try:
            current = s3.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        except s3.exceptions.ClientError:
            current = None
        changed = None if current is None else ([] if current == hashlib.md5(body).hexdigest() else ["content"])
        put = lambda: s3.put_object(Bucket=self.bucket, Key=key, Body=body)  # noqa: E731
        return self._change(f"s3://{self.bucket}/{key}", "s3 object", changed, put)

    # -- DynamoDB -----------------------------------------------------------------------------------

    def plan_audit_table(self) -> list[Change]:
        ddb = self.client("dynamodb")
        name = self.settings.audit_table
        try:
            arn = ddb.describe_table(TableName=name)["Table"]["TableArn"]
        except ddb.exceptions.ResourceNotFoundException:

            def create() -> None:
                ddb.create_table(**self.desired.audit_table, Tags=tag_list(self.tags))
                wait_until(ddb, "table_exists", f"the DynamoDB table {name}", 1, 120, TableName=name)

            return [self._change(f"dynamodb {name}", "dynamodb table", None, create)]
        current = read_tags(ddb.list_tags_of_resource, ResourceArn=arn)
        tag = lambda: ddb.tag_resource(ResourceArn=arn, Tags=tag_list(self.tags))  # noqa: E731
        return [self._change(f"dynamodb {name}", "dynamodb table", tag_drift(current, self.tags), tag)]

    # -- network: Glue's workers in a subnet next to the database -------------------------------------

    @property
    def network(self) -> Network:
        """The subnet (setting, else the default VPC's first by availability zone) and security group
        (setting, else glueline-glue) of Glue's workers; the group is None until deploy creates it."""
        if self._network is None:
            ec2 = self.client("ec2")
            s = self.settings
            if s.glue_subnet_id:
                subnet = ec2.describe_subnets(SubnetIds=[s.glue_subnet_id])["Subnets"][0]
            else:
                vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
                if not vpcs:
                    raise BootstrapError(
                        "this account and region have no default VPC: set GLUELINE_GLUE_SUBNET_ID to the subnet "
                        "Glue's workers should use (one that reaches the database)"
                    )
                subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
                subnet = sorted(subnets, key=lambda n: (n["AvailabilityZone"], n["SubnetId"]))[0]
            own = self._find_group(ec2, subnet["VpcId"], GLUE_SECURITY_GROUP)
            group = s.glue_security_group_id or (own["GroupId"] if own else None)
            self._network = Network(subnet["VpcId"], subnet["SubnetId"], subnet["AvailabilityZone"], group)
        return self._network

    def _create_group(self, ec2, name: str, description: str, ingress: Callable[..., dict[str, Any]]) -> None:
        """A tagged security group in the network's VPC with one ingress rule (``ingress`` is given the
        new group's id: a rule may admit the group itself)."""
        group = ec2.create_security_group(
            GroupName=name,
            Description=description,
            VpcId=self.network.vpc_id,
            TagSpecifications=[{"ResourceType": "security-group", "Tags": tag_list(self.tags)}],
        )["GroupId"]
        ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=[ingress(group)])

    @staticmethod
    def _find_group(ec2, vpc_id: str, name: str) -> dict[str, Any] | None:
        groups = ec2.describe_security_groups(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
        )["SecurityGroups"]
        return groups[0] if groups else None

    def plan_security_group(self) -> list[Change]:
        """Glue's workers talk to each other on every TCP port: a rule that admits the group itself."""
        ec2 = self.client("ec2")
        net = self.network
        if self.settings.glue_security_group_id:
            given = f"security group {net.security_group_id}"
            return [Change(given, "security group", "unchanged", [], "given by GLUELINE_GLUE_SECURITY_GROUP_ID")]
        resource = f"security group {GLUE_SECURITY_GROUP}"
        if net.security_group_id is None:

            def create() -> None:
                self._create_group(
                    ec2,
                    GLUE_SECURITY_GROUP,
                    GLUE_SECURITY_GROUP_DESCRIPTION,
                    _self_reference,
                )
                self._network = None  # resolved again, with the new group

            return [self._change(resource, "security group", None, create, f"in {net.vpc_id}")]
        group = ec2.describe_security_groups(GroupIds=[net.security_group_id])["SecurityGroups"][0]
        changed = [] if _self_referencing(group) else ["self-referencing ingress"]
        changed += tag_drift(tag_dict(group.get("Tags", [])), self.tags)

        def converge() -> None:
            if "self-referencing ingress" in changed:
                ec2.authorize_security_group_ingress(
                    GroupId=net.security_group_id, IpPermissions=[_self_reference(net.security_group_id)]
                )
            ec2.create_tags(Resources=[net.security_group_id], Tags=tag_list(self.tags))

        return [self._change(resource, "security group", changed, converge, f"{net.security_group_id} in {net.vpc_id}")]

    def plan_endpoints(self) -> list[Change]:
        """What the job calls, reachable from a subnet without internet: S3 and DynamoDB through gateway
        endpoints, Secrets Manager, CloudWatch Logs, STS and Glue through interface endpoints."""
        if not self.settings.vpc_endpoints:
            return []
        ec2 = self.client("ec2")
        net = self.network
        existing = {
            e["ServiceName"]: e
            for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [net.vpc_id]}])["VpcEndpoints"]
            if endpoint_alive(e)
        }
        changes = []
        for service, kind in ENDPOINT_SERVICES.items():
            name = f"com.amazonaws.{self.region}.{service}"

            def create(name=name, kind=kind) -> None:
                kwargs: dict[str, Any] = {"VpcEndpointType": kind, "VpcId": net.vpc_id, "ServiceName": name}
                if kind == "Gateway":
                    tables = ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [net.vpc_id]}])
                    kwargs["RouteTableIds"] = [t["RouteTableId"] for t in tables["RouteTables"]]
                else:
                    kwargs |= {
                        "SubnetIds": [net.subnet_id],
                        "SecurityGroupIds": [self.network.security_group_id],
                        "PrivateDnsEnabled": True,
                    }
                ec2.create_vpc_endpoint(
                    **kwargs, TagSpecifications=[{"ResourceType": "vpc-endpoint", "Tags": tag_list(self.tags)}]
                )

            changed = None if name not in existing else []
            changes.append(self._change(f"vpc endpoint {name}", "vpc endpoint", changed, create, kind))
        return changes

    def plan_glue_connection(self) -> list[Change]:
        glue = self.client("glue")
        connection = self.desired.glue_connection
        name = connection["Name"]
        wanted = connection["PhysicalConnectionRequirements"]
        detail = f"{wanted['SubnetId']} ({wanted['AvailabilityZone']})"
        try:
            current = glue.get_connection(Name=name)["Connection"]
        except glue.exceptions.EntityNotFoundException:
            create = lambda: glue.create_connection(ConnectionInput=connection, Tags=self.tags)  # noqa: E731
            return [self._change(f"glue connection {name}", "glue connection", None, create, detail)]
        requirements = current.get("PhysicalConnectionRequirements", {})
        changed = [k for k, v in wanted.items() if requirements.get(k) != v]
        update = lambda: glue.update_connection(Name=name, ConnectionInput=connection)  # noqa: E731
        return [self._change(f"glue connection {name}", "glue connection", changed, update, detail)]

    # -- the database deploy creates (--create-database) ------------------------------------------------

    def _created_database(self) -> DbConnection:
        """The RDS instance as a connection (its password in the secret RDS manages); before deploy has
        created it, a placeholder that names it."""
        s = self.settings
        if not s.create_database:
            raise BootstrapError("no database: pass --db-url once, or --create-database")
        rds = self.client("rds")
        try:
            instance = rds.describe_db_instances(DBInstanceIdentifier=s.db_instance)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            return DbConnection(
                host=f"{s.db_instance}.(created by deploy)",
                port=5432,
                dbname=s.db_name,
                username=s.db_username,
                sslmode="verify-full",
                sslrootcert=f"s3://{self.bucket}/{layout.SCRIPTS}{RDS_CA_BUNDLE}",
            )
        endpoint = instance["Endpoint"]
        return DbConnection(
            host=endpoint["Address"],
            port=int(endpoint["Port"]),
            dbname=instance.get("DBName") or s.db_name,
            username=instance["MasterUsername"],
            sslmode="verify-full",
            sslrootcert=f"s3://{self.bucket}/{layout.SCRIPTS}{RDS_CA_BUNDLE}",
            password_secret=instance["MasterUserSecret"]["SecretArn"],
        )

    def plan_database(self) -> list[Change]:
        """RDS PostgreSQL: private, encrypted, deletion protection on, the master password managed by RDS
        in Secrets Manager (never seen by glueline), reachable on 5432 from Glue's security group only."""
        s = self.settings
        if not (s.create_database or self.db.password_secret):  # asked for, or created by an earlier deploy
            return []
        ec2, rds = self.client("ec2"), self.client("rds")
        net = self.network
        changes = []
        group = self._find_group(ec2, net.vpc_id, DB_SECURITY_GROUP)
        if group is None:

            def create_group() -> None:
                self._create_group(
                    ec2,
                    DB_SECURITY_GROUP,
                    DB_SECURITY_GROUP_DESCRIPTION,
                    lambda group: self._database_ingress(),
                )

            changes.append(self._change(f"security group {DB_SECURITY_GROUP}", "security group", None, create_group))
        else:
            wanted = self._database_ingress()
            admitted = [
                (pair.get("GroupId"), permission.get("FromPort"))
                for permission in group.get("IpPermissions", [])
                for pair in permission.get("UserIdGroupPairs", [])
            ]
            changed = [] if (net.security_group_id, 5432) in admitted else ["ingress from Glue"]
            if any(permission.get("IpRanges") for permission in group.get("IpPermissions", [])):
                changed.append("ingress from addresses")

            def converge(group=group) -> None:
                for permission in group.get("IpPermissions", []):
                    if permission.get("IpRanges"):  # never an address range, least of all 0.0.0.0/0
                        ranges_only = {k: v for k, v in permission.items() if k != "UserIdGroupPairs"}
                        ec2.revoke_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[ranges_only])
                if "ingress from Glue" in changed:
                    ec2.authorize_security_group_ingress(GroupId=group["GroupId"], IpPermissions=[wanted])

            detail = f"{group['GroupId']}: 5432 from {net.security_group_id}"
            changes.append(
                self._change(f"security group {DB_SECURITY_GROUP}", "security group", changed, converge, detail)
            )
        try:
            rds.describe_db_subnet_groups(DBSubnetGroupName=s.db_instance)
            changes.append(Change(f"db subnet group {s.db_instance}", "db subnet group", "unchanged"))
        except rds.exceptions.DBSubnetGroupNotFoundFault:

            def create_subnets() -> None:
                subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [net.vpc_id]}])["Subnets"]
                rds.create_db_subnet_group(
                    DBSubnetGroupName=s.db_instance,
                    DBSubnetGroupDescription="glueline: the database's subnets",
                    SubnetIds=[n["SubnetId"] for n in subnets],
                    Tags=tag_list(self.tags),
                )

            changes.append(self._change(f"db subnet group {s.db_instance}", "db subnet group", None, create_subnets))
        try:
            instance = rds.describe_db_instances(DBInstanceIdentifier=s.db_instance)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            instance = None
        detail = f"PostgreSQL {s.db_engine_version}, {s.db_instance_class}, private, encrypted"
        if instance is None:

            def create_instance() -> None:
                group = self._find_group(ec2, net.vpc_id, DB_SECURITY_GROUP)["GroupId"]
                rds.create_db_instance(
                    DBInstanceIdentifier=s.db_instance,
                    Engine="postgres",
                    EngineVersion=s.db_engine_version,
                    DBInstanceClass=s.db_instance_class,
                    AllocatedStorage=s.db_allocated_storage_gb,
                    DBName=s.db_name,
                    MasterUsername=s.db_username,
                    ManageMasterUserPassword=True,
                    StorageEncrypted=True,
                    PubliclyAccessible=False,
                    DeletionProtection=True,
                    VpcSecurityGroupIds=[group],
                    DBSubnetGroupName=s.db_instance,
                    BackupRetentionPeriod=7,
                    CopyTagsToSnapshot=True,
                    Tags=tag_list(self.tags),
                )
                wait_until(
                    rds,
                    "db_instance_available",
                    f"the RDS instance {s.db_instance} to be available",
                    30,
                    80,
                    DBInstanceIdentifier=s.db_instance,
                )
                self._db = None  # now the instance itself

            changes.append(self._change(f"rds instance {s.db_instance}", "rds instance", None, create_instance, detail))
        else:
            wanted = {"PubliclyAccessible": False, "StorageEncrypted": True, "DeletionProtection": True}
            changed = [k for k, v in wanted.items() if instance.get(k) != v]
            changed += tag_drift(tag_dict(instance.get("TagList", [])), self.tags)

            def converge_instance() -> None:
                if {"PubliclyAccessible", "DeletionProtection"} & set(changed):
                    rds.modify_db_instance(
                        DBInstanceIdentifier=s.db_instance,
                        PubliclyAccessible=False,
                        DeletionProtection=True,
                        ApplyImmediately=True,
                    )
                rds.add_tags_to_resource(ResourceName=instance["DBInstanceArn"], Tags=tag_list(self.tags))

            # Encryption cannot be turned on in place; plan shows it, deploy cannot fix it.
            changes.append(
                self._change(f"rds instance {s.db_instance}", "rds instance", changed, converge_instance, detail)
            )
        return changes

    def _database_ingress(self) -> dict[str, Any]:
        return {
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "UserIdGroupPairs": [{"GroupId": self.network.security_group_id, "Description": "Glue's workers"}],
        }

    # -- IAM ----------------------------------------------------------------------------------------

    def plan_roles(self) -> list[Change]:
        iam = self.client("iam")
        changes = []
        for role, wanted in self.desired.roles.items():
            trust, policy, policy_name = wanted.trust, wanted.policy, wanted.policy_name
            try:
                current = iam.get_role(RoleName=role)["Role"]
            except iam.exceptions.NoSuchEntityException:
                current = None
            if current is None:
                changed = None
            else:
                changed = []
                if _normalized(_document(current["AssumeRolePolicyDocument"])) != _normalized(trust):
                    changed.append("trust policy")
                try:
                    existing = _document(iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"])
                except iam.exceptions.NoSuchEntityException:
                    existing = None
                if existing is None or _normalized(existing) != _normalized(policy):
                    changed.append("policy")
                changed += tag_drift(read_tags(iam.list_role_tags, RoleName=role), self.tags)

            def apply(role=role, trust=trust, policy=policy, policy_name=policy_name, exists=current is not None):
                if exists:
                    iam.update_assume_role_policy(RoleName=role, PolicyDocument=json.dumps(trust))
                    iam.tag_role(RoleName=role, Tags=tag_list(self.tags))
                else:
                    iam.create_role(
                        RoleName=role,
                        AssumeRolePolicyDocument=json.dumps(trust),
                        Description="glueline: least-privilege role of the batch ETL pipeline",
                        Tags=tag_list(self.tags),
                    )
                iam.put_role_policy(RoleName=role, PolicyName=policy_name, PolicyDocument=json.dumps(policy))

            changes.append(self._change(f"iam role {role}", "iam role", changed, apply))
        return changes

    # -- Secrets Manager ----------------------------------------------------------------------------

    def plan_secret(self) -> list[Change]:
        sm = self.client("secretsmanager")
        secret = self.desired.secret
        name, value = secret["Name"], secret["SecretString"]
        shown = self.db.url(with_password=False)
        try:
            described = sm.describe_secret(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:

            def create() -> None:
                sm.create_secret(**secret, Tags=tag_list(self.tags))

            return [self._change(f"secret {name}", "secret", None, create, shown)]
        changed = tag_drift(tag_dict(described.get("Tags", [])), self.tags)
        if sm.get_secret_value(SecretId=name)["SecretString"] != value:
            changed.append("value")

        def update() -> None:
            if "value" in changed:
                sm.put_secret_value(SecretId=name, SecretString=value)
            sm.tag_resource(SecretId=name, Tags=tag_list(self.tags))

        return [self._change(f"secret {name}", "secret", changed, update, shown)]

    # -- Glue ---------------------------------------------------------------------------------------

    def plan_glue_job(self) -> list[Change]:
        glue = self.client("glue")
        name = self.settings.glue_job
        wanted = self.desired.glue_job
        detail = f"Glue {wanted['GlueVersion']}"
        arn = self.arn("glue", f"job/{name}")
        try:
            current = glue.get_job(JobName=name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            create = lambda: glue.create_job(Name=name, Tags=self.tags, **wanted)  # noqa: E731
            return [self._change(f"glue job {name}", "glue job", None, create, detail)]
        changed = [k for k, v in wanted.items() if current.get(k) != v]
        changed += tag_drift(glue.get_tags(ResourceArn=arn).get("Tags", {}), self.tags)

        def update() -> None:
            glue.update_job(JobName=name, JobUpdate=wanted)
            glue.tag_resource(ResourceArn=arn, TagsToAdd=self.tags)

        return [self._change(f"glue job {name}", "glue job", changed, update, detail)]

    # -- Lambda -------------------------------------------------------------------------------------

    def plan_lambda(self) -> list[Change]:
        lam = self.client("lambda")
        s = self.settings
        code = packaging.lambda_zip()
        sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
        config = self.desired.lambda_function
        name = f"lambda {s.lambda_function}"
        what = f"the Lambda function {s.lambda_function} to be ready"
        try:
            current = lam.get_function(FunctionName=s.lambda_function)["Configuration"]
        except lam.exceptions.ResourceNotFoundException:

            def create() -> None:
                self._retry_role_propagation(
                    lambda: lam.create_function(
                        FunctionName=s.lambda_function,
                        Code={"ZipFile": code},
                        Description=LAMBDA_DESCRIPTION,
                        Tags=self.tags,
                        **config,
                    )
                )
                wait_until(lam, "function_active_v2", what, 1, 300, FunctionName=s.lambda_function)

            return [self._change(name, "lambda function", None, create)]
        changed = (["code"] if current.get("CodeSha256") != sha else []) + [
            k for k, v in config.items() if current.get(k) != v
        ]
        changed += tag_drift(lam.list_tags(Resource=current["FunctionArn"]).get("Tags", {}), self.tags)

        def update() -> None:
            if "code" in changed:
                lam.update_function_code(FunctionName=s.lambda_function, ZipFile=code)
                wait_until(lam, "function_updated_v2", what, 1, 300, FunctionName=s.lambda_function)
            if set(changed) & set(config):
                lam.update_function_configuration(FunctionName=s.lambda_function, **config)
                wait_until(lam, "function_updated_v2", what, 1, 300, FunctionName=s.lambda_function)
            lam.tag_resource(Resource=current["FunctionArn"], Tags=self.tags)

        return [self._change(name, "lambda function", changed, update)]

    @staticmethod
    def _retry_role_propagation(call: Callable[[], Any], attempts: int = 10) -> Any:
        """A new IAM role takes seconds to become assumable by Lambda on AWS."""
        for attempt in range(attempts):
            try:
                return call()
            except Exception as err:  # InvalidParameterValueException: role not yet assumable
                if "InvalidParameterValue" not in type(err).__name__ or attempt == attempts - 1:
                    raise
                time.sleep(3)

    # -- EventBridge --------------------------------------------------------------------------------

    def plan_rules(self) -> list[Change]:
        events = self.client("events")
        lam = self.client("lambda")
        try:
            policy = json.loads(lam.get_policy(FunctionName=self.settings.lambda_function)["Policy"])
            statements = {st["Sid"] for st in policy.get("Statement", [])}
        except lam.exceptions.ResourceNotFoundException:
            statements = set()
        changes = []
        desired = self.desired
        for rule, wanted in desired.rules.items():
            # PutRule takes the pattern as JSON text
            definition = {k: json.dumps(v, sort_keys=True) if k == "EventPattern" else v for k, v in wanted.items()}
            rule_arn = self.arn("events", f"rule/{rule}")
            statement_id = f"glueline-{rule}"
            detail = definition.get("ScheduleExpression", "Object Created under source/")
            try:
                current = events.describe_rule(Name=rule)
            except events.exceptions.ResourceNotFoundException:
                current = None
            if current is None:
                changed = None
            else:
                changed = [
                    k
                    for k, v in definition.items()
                    if (
                        json.loads(current.get(k, "{}")) != json.loads(v)
                        if k == "EventPattern"
                        else current.get(k) != v
                    )
                ]
                if current.get("State") != "ENABLED":
                    changed.append("State")
                targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
                if [t["Arn"] for t in targets] != [desired.lambda_arn]:
                    changed.append("target")
                changed += tag_drift(read_tags(events.list_tags_for_resource, ResourceARN=rule_arn), self.tags)
            if statement_id not in statements and changed is not None:
                changed.append("invoke permission")

            def apply(rule=rule, definition=definition, rule_arn=rule_arn, statement_id=statement_id):
                events.put_rule(Name=rule, State="ENABLED", Tags=tag_list(self.tags), **definition)
                events.tag_resource(ResourceARN=rule_arn, Tags=tag_list(self.tags))
                events.put_targets(Rule=rule, Targets=[{"Id": "ETL_Lambda_Function", "Arn": desired.lambda_arn}])
                if statement_id not in statements:
                    try:
                        lam.add_permission(
                            FunctionName=self.settings.lambda_function,
                            StatementId=statement_id,
                            Action="lambda:InvokeFunction",
                            Principal="events.amazonaws.com",
                            SourceArn=rule_arn,
                        )
                    except lam.exceptions.ResourceConflictException:
                        pass  # granted meanwhile

            changes.append(self._change(f"eventbridge rule {rule}", "eventbridge rule", changed, apply, detail))
        return changes


def _self_reference(group_id: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": group_id}]}


def _self_referencing(group: dict[str, Any]) -> bool:
    return any(
        pair.get("GroupId") == group["GroupId"] and permission.get("IpProtocol") in ("tcp", "-1")
        for permission in group.get("IpPermissions", [])
        for pair in permission.get("UserIdGroupPairs", [])
    )
