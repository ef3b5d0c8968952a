"""Create or converge every resource of the pipeline, idempotently, on whatever the AWS configuration
points at (the embedded stack, LocalStack, or a real account): one code path for all.

A planner per service compares what exists with what should exist and returns ``Change``s whose steps
are declared API calls (``glueline.ops.deploy.models``), not code: ``plan`` shows them (``create``,
``update`` with the changed attributes, ``unchanged``, ``adopt``, ``conflict``) and writes nothing;
deploy (``run``) hands each stage's steps to the one ``Executor`` and plans the next stage against what
the last one made; a second deploy changes nothing and says so.

    settings, account ─► Environment ─► desired state ─► planner per service ─► Change(steps) ─► Executor
                                                        (reads the account)                  (or shown)

Every resource carries the tag ``glueline:stack=<stack>`` (IAM roles, global, also ``glueline:region``).
A resource of our name without it was not made by this stack: plan shows ``adopt`` and deploy refuses
unless ``adopt`` is asked for; one tagged by another stack or region is a ``conflict`` deploy never
touches. Deploy needs no database connection (a laptop usually cannot reach a private RDS): the job
creates its table when it starts.

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
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import boto3

from glueline.artifacts import GLUE_LIBRARY, GLUE_SCRIPT, GLUE_WHEELS
from glueline.ops import packaging
from glueline.ops.deploy import tls
from glueline.ops.deploy.aws import (
    RDS_INSTANCE_STATE,
    TABLE_STATE,
    BootstrapError,
    endpoint_alive,
    read_tags,
    tag_dict,
    tag_drift,
    tag_list,
)
from glueline.ops.deploy.desired import (
    DB_SECURITY_GROUP,
    DB_SECURITY_GROUP_DESCRIPTION,
    ENDPOINT_SERVICES,
    ENDPOINTS_SECURITY_GROUP,
    ENDPOINTS_SECURITY_GROUP_DESCRIPTION,
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
from glueline.ops.deploy.executor import Executor
from glueline.ops.deploy.models import APICall, Change, Ref, Step, Wait
from glueline.settings import Settings
from glueline.shared import layout
from glueline.shared.dbsecret import DbConnection
from glueline.shared.timeouts import aws_client

PLANNED = {"create": "created", "update": "updated", "unchanged": "unchanged", "adopt": "adopted"}
RDS_CA_BUNDLE = "rds-ca-bundle.pem"  # under scripts/
NO_SUCH_QUEUE = ("AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist")
RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


@dataclass
class Network:
    vpc_id: str
    subnet_id: str
    availability_zone: str
    security_group_id: str | None


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
    """Plans and applies the pipeline's resources: ``plan()`` reads the account and writes nothing;
    ``run()`` (deploy) refuses a plan with a conflict, or with resources to adopt unless ``adopt``, then
    applies it stage by stage (each stage planned when the stages before it are applied)."""

    def __init__(
        self,
        settings: Settings,
        db: DbConnection | None,
        session: boto3.Session | None = None,
        log=print,
        function_glue_endpoint: str | None = None,
        adopt: bool = False,
        sleep: Callable[[float], None] = time.sleep,
        account: str | None = None,
        progress: Callable[[str], None] = lambda line: None,
    ):
        """``db`` None: the database deploy creates (``settings.create_database``). ``function_glue_endpoint``:
        the Glue endpoint the Lambda is given where it reaches Glue otherwise than deploy does (the compose
        stack's runner, by its name in the project's network). ``adopt``: take over resources of our
        names that no stack tagged. ``account``: the session's, where the caller already asked STS.
        ``log`` hears each applied Change, ``progress`` each state a waited resource passes through."""
        self.settings = settings
        self.function_glue_endpoint = function_glue_endpoint
        self.session = session or boto3.Session()
        self.log = log
        self.progress = progress
        self.adopt = adopt
        self.sleep = sleep
        self.changes: list[Change] = []
        self.region = self.session.region_name or settings.region
        self.account = account or aws_client("sts", self.session).get_caller_identity()["Account"]
        self.bucket = settings.bucket_name(self.account, self.region)
        self.tags = {STACK_TAG: settings.stack}
        self._network: Network | None = None
        self._desired: DesiredState | None = None
        self._given_db = db is not None
        self.tls_offered = ""  # what a --db-url server offered (glueline.ops.deploy.tls); "": not asked
        if db is not None:
            db, self.tls_offered = strictest_tls(db, self.bucket)
        self._db = db

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
        """Computed once per stage: a stage may create what the next one names (a group, the database)."""
        if self._desired is None:
            self._desired = desired_state(self.settings, self.environment)
        return self._desired

    def _refresh(self) -> None:
        """Forget what a stage may have changed: the network's group, the database deploy created."""
        self._network = None
        self._desired = None
        if not self._given_db:
            self._db = None

    def client(self, service: str):
        return aws_client(service, self.session, region_name=self.region)

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
            self.plan_failure_queue,
            self.plan_security_group,
            self.plan_endpoints,
            self.plan_database,
            self.plan_roles,
            self.plan_secret,
            self.plan_glue_connection,
            self.plan_glue_job,
            self.plan_lambda_logs,
            self.plan_lambda,
            self.plan_rules,
        ]

    def plan(self) -> list[Change]:
        """What deploy would do; writes nothing."""
        changes = [change for step in self.steps() for change in step()]
        self._refresh()
        return changes

    def run(self) -> list[Change]:
        """Deploy: refuse what must not be touched, then apply each stage's plan and plan the next."""
        refused = refusals(self.plan(), self.adopt, self.settings.stack)
        if refused:
            raise BootstrapError(refused)
        executor = Executor(self.client, self.sleep, self.progress)
        for step in self.steps():
            for change in step():
                executor.execute(change.steps)
                change.action = PLANNED[change.action]
                self._record(change)
            self._refresh()
        return self.changes

    def _record(self, change: Change) -> None:
        self.changes.append(change)
        self.log(change)

    def _change(
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
            return Change(resource, type_, "create", [], detail, list(steps))
        if tags is not None:
            wanted = wanted_tags or self.tags
            if STACK_TAG not in tags:
                return Change(resource, type_, "adopt", changed, detail, list(steps))
            others = {k: v for k, v in wanted.items() if tags.get(k, v) != v}
            if others:
                owner = ", ".join(f"{k}={tags[k]}" for k in others)
                return Change(resource, type_, "conflict", [], f"tagged {owner}: another stack's")
        if changed:
            return Change(resource, type_, "update", changed, detail, list(steps))
        return Change(resource, type_, "unchanged", [], detail)

    # -- S3 -----------------------------------------------------------------------------------------

    def plan_bucket(self) -> list[Change]:
        s3 = self.client("s3")
        resource = f"s3://{self.bucket}"
        try:
            s3.head_bucket(Bucket=self.bucket)
        except s3.exceptions.ClientError:
            create: dict[str, Any] = {"Bucket": self.bucket}
            if self.region != "us-east-1":
                create["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
            steps = [APICall("s3", "create_bucket", create), *self._bucket_settings(layout.ALL_PREFIXES)]
            return [self._change(resource, "s3 bucket", None, steps)]
        tags = read_tags(s3.get_bucket_tagging, Bucket=self.bucket)
        changed = tag_drift(tags, self.tags)
        try:
            block = s3.get_public_access_block(Bucket=self.bucket)["PublicAccessBlockConfiguration"]
        except s3.exceptions.ClientError:
            block = {}
        if block != PUBLIC_ACCESS_BLOCK:
            changed.append("public access block")
        if "EventBridgeConfiguration" not in s3.get_bucket_notification_configuration(Bucket=self.bucket):
            changed.append("EventBridge notifications")
        if self.bucket_policy is not None:
            try:
                policy = _document(s3.get_bucket_policy(Bucket=self.bucket)["Policy"])
            except s3.exceptions.ClientError:
                policy = {}
            if _normalized(policy) != _normalized(self.bucket_policy):
                changed.append("TLS-only policy")
        try:
            rules = s3.get_bucket_lifecycle_configuration(Bucket=self.bucket)["Rules"]
        except s3.exceptions.ClientError:
            rules = []
        by_id = lambda rule: rule["ID"]  # noqa: E731
        if sorted(rules, key=by_id) != sorted(self.desired.bucket_lifecycle["Rules"], key=by_id):
            changed.append("lifecycle rules")
        missing = []
        for prefix in layout.ALL_PREFIXES:
            try:
                s3.head_object(Bucket=self.bucket, Key=prefix)
            except s3.exceptions.ClientError:
                missing.append(prefix)
        changed += missing
        return [self._change(resource, "s3 bucket", changed, self._bucket_settings(missing), tags=tags)]

    @property
    def bucket_policy(self) -> dict[str, Any] | None:
        """The TLS-only policy, unless it is not wanted or deploy speaks to S3 without TLS (an emulator
        on plain HTTP), where it would refuse deploy's own next request."""
        if not self.client("s3").meta.endpoint_url.startswith("https://"):
            return None
        return self.desired.bucket_policy

    def _bucket_settings(self, prefixes: Sequence[str]) -> list[Step]:
        bucket = self.bucket
        return [
            APICall("s3", "put_bucket_tagging", {"Bucket": bucket, "Tagging": {"TagSet": tag_list(self.tags)}}),
            APICall(
                "s3",
                "put_public_access_block",
                {"Bucket": bucket, "PublicAccessBlockConfiguration": PUBLIC_ACCESS_BLOCK},
            ),
            APICall(
                "s3",
                "put_bucket_notification_configuration",
                {"Bucket": bucket, "NotificationConfiguration": {"EventBridgeConfiguration": {}}},
            ),
            *(
                [APICall("s3", "put_bucket_policy", {"Bucket": bucket, "Policy": json.dumps(self.bucket_policy)})]
                if self.bucket_policy is not None
                else []
            ),
            APICall(
                "s3",
                "put_bucket_lifecycle_configuration",
                {"Bucket": bucket, "LifecycleConfiguration": self.desired.bucket_lifecycle},
            ),
            *(APICall("s3", "put_object", {"Bucket": bucket, "Key": prefix, "Body": b""}) for prefix in prefixes),
        ]

    def plan_scripts(self) -> list[Change]:
        return [
            self._plan_object(layout.SCRIPTS + GLUE_SCRIPT, packaging.glue_script()),
            self._plan_object(layout.SCRIPTS + GLUE_LIBRARY, packaging.glue_library_zip()),
            *(self._plan_object(key, wheel.read_bytes()) for key, wheel in self.wheels.items()),
            *([self._plan_object(layout.SCRIPTS + RDS_CA_BUNDLE, self._ca_bundle())] if self.db.sslrootcert else []),
        ]

    @cached_property
    def wheels(self) -> dict[str, Path]:
        """S3 key → local wheel of each module the job installs from S3."""
        prefix = layout.SCRIPTS + GLUE_WHEELS
        return {prefix + w.name: w for w in packaging.glue_wheels(self.settings.glue_version)}

    def _plan_object(self, key: str, body: bytes) -> Change:
        s3 = self.client("s3")
        try:
            current = s3.head_object(Bucket=self.bucket, Key=key)["ETag"].strip('"')
        except s3.exceptions.ClientError:
            current = None
        changed = None if current is None else ([] if current == hashlib.md5(body).hexdigest() else ["content"])
        put = APICall("s3", "put_object", {"Bucket": self.bucket, "Key": key, "Body": body})
        return self._change(f"s3://{self.bucket}/{key}", "s3 object", changed, [put])

    # -- DynamoDB -----------------------------------------------------------------------------------

    def plan_audit_table(self) -> list[Change]:
        """An existing table is checked for the keys and the status index the pipeline queries: neither
        can be changed in place, so a table made otherwise is a conflict, not an update."""
        ddb = self.client("dynamodb")
        name = self.settings.audit_table
        resource = f"dynamodb {name}"
        wanted = self.desired.audit_table
        try:
            table = ddb.describe_table(TableName=name)["Table"]
        except ddb.exceptions.ResourceNotFoundException:
            steps: list[Step] = [
                APICall("dynamodb", "create_table", {**wanted, "Tags": tag_list(self.tags)}),
                _table_ready(name),
                self._point_in_time_recovery(name),
            ]
            return [self._change(resource, "dynamodb table", None, steps)]
        unusable = _table_mismatch(table, wanted)
        if unusable:
            return [Change(resource, "dynamodb table", "conflict", [], unusable)]
        arn = table["TableArn"]
        tags = read_tags(ddb.list_tags_of_resource, ResourceArn=arn)
        changed = tag_drift(tags, self.tags)
        steps = [APICall("dynamodb", "tag_resource", {"ResourceArn": arn, "Tags": tag_list(self.tags)})]
        backups = ddb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        recovery = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        if recovery != "ENABLED":
            changed.append("point-in-time recovery")
            steps.append(self._point_in_time_recovery(name))
        present = {index["IndexName"] for index in table.get("GlobalSecondaryIndexes", [])}
        for index in wanted["GlobalSecondaryIndexes"]:
            if index["IndexName"] not in present:  # an index can be added in place
                changed.append(f"index {index['IndexName']}")
                update = {"AttributeDefinitions": wanted["AttributeDefinitions"]}
                update["GlobalSecondaryIndexUpdates"] = [{"Create": index}]
                steps += [
                    APICall("dynamodb", "update_table", {"TableName": name, **update}),
                    _table_ready(name),
                ]
        return [self._change(resource, "dynamodb table", changed, steps, tags=tags)]

    @staticmethod
    def _point_in_time_recovery(table: str) -> APICall:
        """The audit table is the pipeline's memory (what was loaded, what was given up): restorable to
        any second of the last 35 days."""
        specification = {"PointInTimeRecoveryEnabled": True}
        params = {"TableName": table, "PointInTimeRecoverySpecification": specification}
        return APICall("dynamodb", "update_continuous_backups", params)

    # -- SQS: where the Lambda's failed events are kept ---------------------------------------------------

    def plan_failure_queue(self) -> list[Change]:
        """The on-failure destination of the Lambda's asynchronous invocations (EventBridge's): an event
        the Lambda failed on after its retries is kept 14 days, encrypted, for an operator to replay.
        An attribute an emulator does not answer back is not counted as drift."""
        sqs = self.client("sqs")
        wanted = self.desired.failure_queue
        name = wanted["QueueName"]
        resource = f"sqs queue {name}"
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.ClientError as err:
            if err.response.get("Error", {}).get("Code") not in NO_SUCH_QUEUE:
                raise
            create = APICall("sqs", "create_queue", {**wanted, "tags": self.tags})
            return [self._change(resource, "sqs queue", None, [create], "on-failure destination of the Lambda")]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]).get("Attributes", {})
        changed = [k for k, v in wanted["Attributes"].items() if k in attributes and attributes[k] != v]
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        changed += tag_drift(tags, self.tags)
        steps = [
            APICall("sqs", "set_queue_attributes", {"QueueUrl": url, "Attributes": wanted["Attributes"]}),
            APICall("sqs", "tag_queue", {"QueueUrl": url, "Tags": self.tags}),
        ]
        return [self._change(resource, "sqs queue", changed, steps, "on-failure destination of the Lambda", tags=tags)]

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

    def _create_group(self, name: str, description: str, ingress: Callable[[Any], dict[str, Any]]) -> list[Step]:
        """A tagged security group in the network's VPC with one ingress rule (``ingress`` is given the
        new group's id, a ``Ref`` until it exists: a rule may admit the group itself)."""
        create = {
            "GroupName": name,
            "Description": description,
            "VpcId": self.network.vpc_id,
            "TagSpecifications": [{"ResourceType": "security-group", "Tags": tag_list(self.tags)}],
        }
        group = Ref(name)
        return [
            APICall("ec2", "create_security_group", create, store=(name, "GroupId")),
            APICall("ec2", "authorize_security_group_ingress", {"GroupId": group, "IpPermissions": [ingress(group)]}),
        ]

    @property
    def glue_group(self) -> str | Ref:
        """Glue's security group, or, before deploy creates it, a reference to the one it will."""
        return self.network.security_group_id or Ref(GLUE_SECURITY_GROUP)

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
            steps = self._create_group(GLUE_SECURITY_GROUP, GLUE_SECURITY_GROUP_DESCRIPTION, _self_reference)
            return [self._change(resource, "security group", None, steps, f"in {net.vpc_id}")]
        group_id = net.security_group_id
        group = ec2.describe_security_groups(GroupIds=[group_id])["SecurityGroups"][0]
        tags = tag_dict(group.get("Tags", []))
        changed = tag_drift(tags, self.tags)
        steps = [APICall("ec2", "create_tags", {"Resources": [group_id], "Tags": tag_list(self.tags)})]
        if not _self_referencing(group):
            changed.append("self-referencing ingress")
            ingress = {"GroupId": group_id, "IpPermissions": [_self_reference(group_id)]}
            steps.append(APICall("ec2", "authorize_security_group_ingress", ingress))
        detail = f"{group_id} in {net.vpc_id}"
        return [self._change(resource, "security group", changed, steps, detail, tags=tags)]

    def plan_endpoints(self) -> list[Change]:
        """What the job calls, reachable from a subnet without internet: S3 and DynamoDB through gateway
        endpoints, Secrets Manager, CloudWatch Logs, STS and Glue through interface endpoints.

        The VPC may be shared (often the default one): an interface endpoint with private DNS answers
        for its service in the whole VPC, so its group (glueline-endpoints) admits HTTPS from the VPC's
        CIDR blocks, not only from Glue; a gateway endpoint routes only the Glue subnet's route table;
        an endpoint that already exists for a service is reused (checked, never replaced), and one that
        is not this stack's is never deleted by destroy. ``plan`` says each of these in its detail."""
        if not self.settings.vpc_endpoints:
            return []
        ec2 = self.client("ec2")
        net = self.network
        (vpc,) = ec2.describe_vpcs(VpcIds=[net.vpc_id])["Vpcs"]
        cidrs = [
            block["CidrBlock"]
            for block in vpc.get("CidrBlockAssociationSet", [])
            if block.get("CidrBlockState", {}).get("State", "associated") == "associated"
        ] or [vpc["CidrBlock"]]
        table = self._route_table(ec2, net)
        group_change, group = self._plan_endpoints_group(ec2, net.vpc_id, cidrs)
        changes = [group_change]
        existing = {
            e["ServiceName"]: e
            for e in ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [net.vpc_id]}])["VpcEndpoints"]
            if endpoint_alive(e)
        }
        for service, kind in ENDPOINT_SERVICES.items():
            name = f"com.amazonaws.{self.region}.{service}"
            resource = f"vpc endpoint {name}"
            if kind == "Gateway":
                detail = f"routes {service} from route table {table} (the Glue subnet's) only"
            else:
                detail = f"private DNS: all of {net.vpc_id} reaches {service} through it; HTTPS from {', '.join(cidrs)}"
            endpoint = existing.get(name)
            if endpoint is None:
                create: dict[str, Any] = {"VpcEndpointType": kind, "VpcId": net.vpc_id, "ServiceName": name}
                if kind == "Gateway":
                    create["RouteTableIds"] = [table]
                else:
                    create |= {"SubnetIds": [net.subnet_id], "SecurityGroupIds": [group], "PrivateDnsEnabled": True}
                create["TagSpecifications"] = [{"ResourceType": "vpc-endpoint", "Tags": tag_list(self.tags)}]
                steps = [APICall("ec2", "create_vpc_endpoint", create)]
                changes.append(self._change(resource, "vpc endpoint", None, steps, detail))
                continue
            endpoint_id = endpoint["VpcEndpointId"]
            if endpoint.get("VpcEndpointType", kind) != kind:
                why = f"{endpoint_id} is a {endpoint['VpcEndpointType']} endpoint; the pipeline needs {kind}"
                changes.append(Change(resource, "vpc endpoint", "conflict", [], why))
                continue
            ours = tag_dict(endpoint.get("Tags", [])).get(STACK_TAG) == self.settings.stack
            changed: list[str] = []
            modify: dict[str, Any] = {"VpcEndpointId": endpoint_id}
            if kind == "Gateway" and table not in endpoint.get("RouteTableIds", []):
                changed.append(f"route table {table} added")
                modify["AddRouteTableIds"] = [table]
            # AWS lists an interface endpoint's groups (one at least); an emulator that keeps none
            # answers without them, which is not drift.
            groups = [g["GroupId"] for g in endpoint.get("Groups", [])]
            if kind == "Interface" and "Groups" in endpoint and group not in groups:
                changed.append(f"security group {ENDPOINTS_SECURITY_GROUP} added")
                modify["AddSecurityGroupIds"] = [group]
                if ours and self.network.security_group_id in groups:  # an older deploy's: Glue's group only
                    changed.append(f"security group {GLUE_SECURITY_GROUP} removed")
                    modify["RemoveSecurityGroupIds"] = [self.network.security_group_id]
            owner = "" if ours else ", not this stack's: reused, left by destroy"
            steps = [APICall("ec2", "modify_vpc_endpoint", modify)] if changed else []
            changes.append(self._change(resource, "vpc endpoint", changed, steps, f"{endpoint_id}{owner}; {detail}"))
        return changes

    @staticmethod
    def _route_table(ec2, net: Network) -> str:
        """The Glue subnet's route table: the one associated with it, else the VPC's main table."""
        for filters in (
            [{"Name": "association.subnet-id", "Values": [net.subnet_id]}],
            [{"Name": "vpc-id", "Values": [net.vpc_id]}, {"Name": "association.main", "Values": ["true"]}],
        ):
            tables = ec2.describe_route_tables(Filters=filters)["RouteTables"]
            if tables:
                return tables[0]["RouteTableId"]
        raise BootstrapError(f"no route table for {net.subnet_id} in {net.vpc_id}")

    def _plan_endpoints_group(self, ec2, vpc_id: str, cidrs: list[str]) -> tuple[Change, str | Ref]:
        """The interface endpoints' group: HTTPS from every CIDR block of the VPC (whoever resolves the
        service's name to the endpoint must be able to reach it)."""
        resource = f"security group {ENDPOINTS_SECURITY_GROUP}"

        def https(group: Any) -> dict[str, Any]:
            ranges = [{"CidrIp": cidr, "Description": "HTTPS from the VPC"} for cidr in cidrs]
            return {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": ranges}

        group = self._find_group(ec2, vpc_id, ENDPOINTS_SECURITY_GROUP)
        detail = f"443 from {', '.join(cidrs)}"
        if group is None:
            steps = self._create_group(ENDPOINTS_SECURITY_GROUP, ENDPOINTS_SECURITY_GROUP_DESCRIPTION, https)
            return self._change(resource, "security group", None, steps, detail), Ref(ENDPOINTS_SECURITY_GROUP)
        group_id = group["GroupId"]
        tags = tag_dict(group.get("Tags", []))
        changed = tag_drift(tags, self.tags)
        steps = [APICall("ec2", "create_tags", {"Resources": [group_id], "Tags": tag_list(self.tags)})]
        admitted = {
            r["CidrIp"]
            for permission in group.get("IpPermissions", [])
            if permission.get("FromPort") == 443 and permission.get("IpProtocol") == "tcp"
            for r in permission.get("IpRanges", [])
        }
        missing = [cidr for cidr in cidrs if cidr not in admitted]
        if missing:
            changed.append(f"HTTPS from {', '.join(missing)}")
            rule = https(group_id)
            rule["IpRanges"] = [r for r in rule["IpRanges"] if r["CidrIp"] in missing]
            ingress = {"GroupId": group_id, "IpPermissions": [rule]}
            steps.append(APICall("ec2", "authorize_security_group_ingress", ingress))
        change = self._change(resource, "security group", changed, steps, f"{group_id}: {detail}", tags=tags)
        return change, group_id

    def plan_glue_connection(self) -> list[Change]:
        glue = self.client("glue")
        connection = self.desired.glue_connection
        name = connection["Name"]
        resource = f"glue connection {name}"
        wanted = connection["PhysicalConnectionRequirements"]
        detail = f"{wanted['SubnetId']} ({wanted['AvailabilityZone']})"
        try:
            current = glue.get_connection(Name=name)["Connection"]
        except glue.exceptions.EntityNotFoundException:
            create = APICall("glue", "create_connection", {"ConnectionInput": connection, "Tags": self.tags})
            return [self._change(resource, "glue connection", None, [create], detail)]
        arn = self.arn("glue", f"connection/{name}")
        tags = glue.get_tags(ResourceArn=arn).get("Tags", {})
        requirements = current.get("PhysicalConnectionRequirements", {})
        changed = [k for k, v in wanted.items() if requirements.get(k) != v] + tag_drift(tags, self.tags)
        steps = [
            APICall("glue", "update_connection", {"Name": name, "ConnectionInput": connection}),
            APICall("glue", "tag_resource", {"ResourceArn": arn, "TagsToAdd": self.tags}),
        ]
        return [self._change(resource, "glue connection", changed, steps, detail, tags=tags)]

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
            instance = {}
        endpoint = instance.get("Endpoint")  # none until the instance is first available
        return DbConnection(
            host=endpoint["Address"] if endpoint else f"{s.db_instance}.(created by deploy)",
            port=int(endpoint["Port"]) if endpoint else 5432,
            dbname=instance.get("DBName") or s.db_name,
            username=instance.get("MasterUsername", s.db_username),
            sslmode="verify-full",
            sslrootcert=f"s3://{self.bucket}/{layout.SCRIPTS}{RDS_CA_BUNDLE}",
            password_secret=instance.get("MasterUserSecret", {}).get("SecretArn", ""),
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
        resource = f"security group {DB_SECURITY_GROUP}"
        group = self._find_group(ec2, net.vpc_id, DB_SECURITY_GROUP)
        if group is None:
            steps = self._create_group(
                DB_SECURITY_GROUP, DB_SECURITY_GROUP_DESCRIPTION, lambda group: self._database_ingress()
            )
            changes.append(self._change(resource, "security group", None, steps))
            database_group: str | Ref = Ref(DB_SECURITY_GROUP)
        else:
            database_group = group["GroupId"]
            tags = tag_dict(group.get("Tags", []))
            changed = tag_drift(tags, self.tags)
            steps = [APICall("ec2", "create_tags", {"Resources": [database_group], "Tags": tag_list(self.tags)})]
            for permission in group.get("IpPermissions", []):
                if permission.get("IpRanges"):  # never an address range, least of all 0.0.0.0/0
                    ranges_only = {k: v for k, v in permission.items() if k != "UserIdGroupPairs"}
                    revoke = {"GroupId": database_group, "IpPermissions": [ranges_only]}
                    steps.append(APICall("ec2", "revoke_security_group_ingress", revoke))
                    if "ingress from addresses" not in changed:
                        changed.append("ingress from addresses")
            admitted = [
                (pair.get("GroupId"), permission.get("FromPort"))
                for permission in group.get("IpPermissions", [])
                for pair in permission.get("UserIdGroupPairs", [])
            ]
            if (net.security_group_id, 5432) not in admitted:
                changed.append("ingress from Glue")
                ingress = {"GroupId": database_group, "IpPermissions": [self._database_ingress()]}
                steps.append(APICall("ec2", "authorize_security_group_ingress", ingress))
            detail = f"{database_group}: 5432 from {net.security_group_id}"
            changes.append(self._change(resource, "security group", changed, steps, detail, tags=tags))
        try:
            subnet_group = rds.describe_db_subnet_groups(DBSubnetGroupName=s.db_instance)["DBSubnetGroups"][0]
            tags = read_tags(rds.list_tags_for_resource, ResourceName=subnet_group["DBSubnetGroupArn"])
            tag = {"ResourceName": subnet_group["DBSubnetGroupArn"], "Tags": tag_list(self.tags)}
            steps = [APICall("rds", "add_tags_to_resource", tag)]
            changed = tag_drift(tags, self.tags)
            changes.append(
                self._change(f"db subnet group {s.db_instance}", "db subnet group", changed, steps, tags=tags)
            )
        except rds.exceptions.DBSubnetGroupNotFoundFault:
            subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [net.vpc_id]}])["Subnets"]
            create = {
                "DBSubnetGroupName": s.db_instance,
                "DBSubnetGroupDescription": "glueline: the database's subnets",
                "SubnetIds": [n["SubnetId"] for n in subnets],
                "Tags": tag_list(self.tags),
            }
            steps = [APICall("rds", "create_db_subnet_group", create)]
            changes.append(self._change(f"db subnet group {s.db_instance}", "db subnet group", None, steps))
        changes.append(self._plan_instance(rds, database_group))
        return changes

    def _plan_instance(self, rds, database_group: str | Ref) -> Change:
        """An instance still being created (a deploy interrupted while it was) is waited for, not made
        again; one being deleted is refused."""
        s = self.settings
        resource = f"rds instance {s.db_instance}"
        detail = f"PostgreSQL {s.db_engine_version}, {s.db_instance_class}, private, encrypted"
        available = Wait(
            "rds",
            "db_instance_available",
            f"the RDS instance {s.db_instance} to be available",
            30,
            80,
            {"DBInstanceIdentifier": s.db_instance},
            RDS_INSTANCE_STATE,
        )
        try:
            instance = rds.describe_db_instances(DBInstanceIdentifier=s.db_instance)["DBInstances"][0]
        except rds.exceptions.DBInstanceNotFoundFault:
            create = {
                "DBInstanceIdentifier": s.db_instance,
                "Engine": "postgres",
                "EngineVersion": s.db_engine_version,
                "DBInstanceClass": s.db_instance_class,
                "AllocatedStorage": s.db_allocated_storage_gb,
                "DBName": s.db_name,
                "MasterUsername": s.db_username,
                "ManageMasterUserPassword": True,
                "StorageEncrypted": True,
                "PubliclyAccessible": False,
                "DeletionProtection": True,
                "VpcSecurityGroupIds": [database_group],
                "DBSubnetGroupName": s.db_instance,
                "BackupRetentionPeriod": 7,
                "CopyTagsToSnapshot": True,
                "Tags": tag_list(self.tags),
            }
            return self._change(
                resource, "rds instance", None, [APICall("rds", "create_db_instance", create), available], detail
            )
        status = instance.get("DBInstanceStatus", "available")
        if status == "deleting":
            return Change(resource, "rds instance", "conflict", [], "being deleted: deploy again once it is gone")
        tags = tag_dict(instance.get("TagList", []))
        wanted = {"PubliclyAccessible": False, "StorageEncrypted": True, "DeletionProtection": True}
        changed = [k for k, v in wanted.items() if instance.get(k) != v]
        changed += tag_drift(tags, self.tags)
        steps: list[Step] = []
        if status != "available":
            changed.append(f"status {status}")
            steps.append(available)
        if {"PubliclyAccessible", "DeletionProtection"} & set(changed):
            modify = {
                "DBInstanceIdentifier": s.db_instance,
                "PubliclyAccessible": False,
                "DeletionProtection": True,
                "ApplyImmediately": True,
            }
            steps.append(APICall("rds", "modify_db_instance", modify))
        tag = {"ResourceName": instance["DBInstanceArn"], "Tags": tag_list(self.tags)}
        steps.append(APICall("rds", "add_tags_to_resource", tag))
        # Encryption cannot be turned on in place; plan shows it, deploy cannot fix it.
        return self._change(resource, "rds instance", changed, steps, detail, tags=tags)

    def _database_ingress(self) -> dict[str, Any]:
        return {
            "IpProtocol": "tcp",
            "FromPort": 5432,
            "ToPort": 5432,
            "UserIdGroupPairs": [{"GroupId": self.glue_group, "Description": "Glue's workers"}],
        }

    # -- IAM ----------------------------------------------------------------------------------------

    def plan_roles(self) -> list[Change]:
        """A role gets exactly its trust policy and its one inline policy: inline policies of other
        names and attached managed policies (a FullAccess policy left from the console walkthrough) are
        removed, and ``plan`` names each."""
        iam = self.client("iam")
        tags_wanted = self.desired.role_tags
        changes = []
        for role, wanted in self.desired.roles.items():
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
                    "Description": "glueline: least-privilege role of the batch ETL pipeline",
                    "Tags": tag_list(tags_wanted),
                }
                steps: list[Step] = [APICall("iam", "create_role", create), put_policy]
                changes.append(self._change(f"iam role {role}", "iam role", None, steps))
                continue
            tags = read_tags(iam.list_role_tags, RoleName=role)
            changed = []
            if _normalized(_document(current["AssumeRolePolicyDocument"])) != _normalized(trust):
                changed.append("trust policy")
            try:
                existing = _document(iam.get_role_policy(RoleName=role, PolicyName=policy_name)["PolicyDocument"])
            except iam.exceptions.NoSuchEntityException:
                existing = None
            if existing is None or _normalized(existing) != _normalized(policy):
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
                detach = {"RoleName": role, "PolicyArn": attached["PolicyArn"]}
                steps.append(APICall("iam", "detach_role_policy", detach))
            changes.append(
                self._change(f"iam role {role}", "iam role", changed, steps, tags=tags, wanted_tags=tags_wanted)
            )
        return changes

    # -- Secrets Manager ----------------------------------------------------------------------------

    def plan_secret(self) -> list[Change]:
        sm = self.client("secretsmanager")
        secret = self.desired.secret
        name, value = secret["Name"], secret["SecretString"]
        resource = f"secret {name}"
        shown = f"{self.db.url(with_password=False)}, sslmode={self.db.sslmode}"
        if self.tls_offered in (tls.UNVERIFIED, tls.NO_TLS, tls.UNREACHABLE):
            shown += f" (the server: {self.tls_offered} from here)"
        try:
            described = sm.describe_secret(SecretId=name)
        except sm.exceptions.ResourceNotFoundException:
            create = APICall("secretsmanager", "create_secret", {**secret, "Tags": tag_list(self.tags)})
            return [self._change(resource, "secret", None, [create], shown)]
        tags = tag_dict(described.get("Tags", []))
        changed = tag_drift(tags, self.tags)
        steps: list[Step] = [APICall("secretsmanager", "tag_resource", {"SecretId": name, "Tags": tag_list(self.tags)})]
        if sm.get_secret_value(SecretId=name)["SecretString"] != value:
            changed.append("value")
            steps.append(APICall("secretsmanager", "put_secret_value", {"SecretId": name, "SecretString": value}))
        return [self._change(resource, "secret", changed, steps, shown, tags=tags)]

    # -- Glue ---------------------------------------------------------------------------------------

    def plan_glue_job(self) -> list[Change]:
        glue = self.client("glue")
        name = self.settings.glue_job
        resource = f"glue job {name}"
        wanted = self.desired.glue_job
        detail = f"Glue {wanted['GlueVersion']}"
        arn = self.arn("glue", f"job/{name}")
        try:
            current = glue.get_job(JobName=name)["Job"]
        except glue.exceptions.EntityNotFoundException:
            create = APICall("glue", "create_job", {"Name": name, "Tags": self.tags, **wanted})
            return [self._change(resource, "glue job", None, [create], detail)]
        tags = glue.get_tags(ResourceArn=arn).get("Tags", {})
        changed = [k for k, v in wanted.items() if current.get(k) != v] + tag_drift(tags, self.tags)
        steps = [
            APICall("glue", "update_job", {"JobName": name, "JobUpdate": wanted}),
            APICall("glue", "tag_resource", {"ResourceArn": arn, "TagsToAdd": self.tags}),
        ]
        return [self._change(resource, "glue job", changed, steps, detail, tags=tags)]

    # -- Lambda -------------------------------------------------------------------------------------

    def plan_lambda_logs(self) -> list[Change]:
        """The Lambda's log group, made before the function (which would make it, kept forever) with a
        retention. Not tagged as ours to adopt: a function of an earlier deploy may have made it.
        Glue's log groups (/aws-glue/jobs/…) are every job's in the account: left as they are."""
        logs = self.client("logs")
        wanted = self.desired.lambda_log_group
        name, days = wanted["logGroupName"], wanted["retentionInDays"]
        resource = f"log group {name}"
        retention = APICall("logs", "put_retention_policy", {"logGroupName": name, "retentionInDays": days})
        found = [
            group
            for group in logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
            if group["logGroupName"] == name
        ]
        if not found:
            create = APICall("logs", "create_log_group", {"logGroupName": name, "tags": self.tags})
            return [self._change(resource, "log group", None, [create, retention], f"kept {days} days")]
        changed = [] if found[0].get("retentionInDays") == days else ["retention"]
        return [self._change(resource, "log group", changed, [retention], f"kept {days} days")]

    def plan_lambda(self) -> list[Change]:
        lam = self.client("lambda")
        function = self.settings.lambda_function
        code = packaging.lambda_zip()
        sha = base64.b64encode(hashlib.sha256(code).digest()).decode()
        config = self.desired.lambda_function
        resource = f"lambda {function}"

        def ready(waiter: str) -> Wait:
            what = f"the Lambda function {function} to be ready"
            state = "Configuration.State" if waiter == "function_active_v2" else "Configuration.LastUpdateStatus"
            return Wait("lambda", waiter, what, 1, 300, {"FunctionName": function}, state)

        try:
            found = lam.get_function(FunctionName=function)
        except lam.exceptions.ResourceNotFoundException:
            create = {
                "FunctionName": function,
                "Code": {"ZipFile": code},
                "Description": LAMBDA_DESCRIPTION,
                "Tags": self.tags,
                **config,
            }
            # A new IAM role takes seconds to become assumable by Lambda on AWS.
            steps: list[Step] = [
                APICall("lambda", "create_function", create, retry_while="InvalidParameterValueException"),
                ready("function_active_v2"),
                *self._concurrency(),
                self._invoke_config(),
            ]
            return [self._change(resource, "lambda function", None, steps)]
        current = found["Configuration"]
        tags = lam.list_tags(Resource=current["FunctionArn"]).get("Tags", {})
        changed = [k for k, v in config.items() if current.get(k) != v] + tag_drift(tags, self.tags)
        steps = []
        reserved = found.get("Concurrency", {}).get("ReservedConcurrentExecutions")
        if reserved != self.desired.lambda_concurrency:
            changed.append("reserved concurrency")
            steps += self._concurrency()
        try:
            invoke_config = lam.get_function_event_invoke_config(FunctionName=function)
        except lam.exceptions.ResourceNotFoundException:
            invoke_config = {}
        if any(invoke_config.get(k) != v for k, v in self.desired.lambda_invoke_config.items()):
            changed.append("retries and on-failure destination")
            steps.append(self._invoke_config())
        if current.get("CodeSha256") != sha:
            changed.insert(0, "code")
            steps += [
                APICall("lambda", "update_function_code", {"FunctionName": function, "ZipFile": code}),
                ready("function_updated_v2"),
            ]
        if set(changed) & set(config):
            steps += [
                APICall("lambda", "update_function_configuration", {"FunctionName": function, **config}),
                ready("function_updated_v2"),
            ]
        steps.append(APICall("lambda", "tag_resource", {"Resource": current["FunctionArn"], "Tags": self.tags}))
        return [self._change(resource, "lambda function", changed, steps, tags=tags)]

    def _concurrency(self) -> list[Step]:
        function = self.settings.lambda_function
        reserved = self.desired.lambda_concurrency
        if reserved is None:
            return [APICall("lambda", "delete_function_concurrency", {"FunctionName": function})]
        params = {"FunctionName": function, "ReservedConcurrentExecutions": reserved}
        return [APICall("lambda", "put_function_concurrency", params)]

    def _invoke_config(self) -> APICall:
        """Lambda checks that the function's role may send to the destination: a role just given that
        permission may not be effective yet."""
        params = {"FunctionName": self.settings.lambda_function, **self.desired.lambda_invoke_config}
        return APICall(
            "lambda", "put_function_event_invoke_config", params, retry_while="InvalidParameterValueException"
        )

    # -- EventBridge --------------------------------------------------------------------------------

    def plan_rules(self) -> list[Change]:
        events = self.client("events")
        lam = self.client("lambda")
        function = self.settings.lambda_function
        try:
            policy = json.loads(lam.get_policy(FunctionName=function)["Policy"])
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
            steps: list[Step] = [
                APICall(
                    "events", "put_rule", {"Name": rule, "State": "ENABLED", "Tags": tag_list(self.tags), **definition}
                ),
                APICall("events", "tag_resource", {"ResourceARN": rule_arn, "Tags": tag_list(self.tags)}),
                APICall(
                    "events",
                    "put_targets",
                    {"Rule": rule, "Targets": [{"Id": "ETL_Lambda_Function", "Arn": desired.lambda_arn}]},
                ),
            ]
            if statement_id not in statements:
                grant = {
                    "FunctionName": function,
                    "StatementId": statement_id,
                    "Action": "lambda:InvokeFunction",
                    "Principal": "events.amazonaws.com",
                    "SourceArn": rule_arn,
                }
                steps.append(APICall("lambda", "add_permission", grant, ignore="ResourceConflictException"))
            try:
                current = events.describe_rule(Name=rule)
            except events.exceptions.ResourceNotFoundException:
                changes.append(self._change(f"eventbridge rule {rule}", "eventbridge rule", None, steps, detail))
                continue
            changed = [
                k
                for k, v in definition.items()
                if (json.loads(current.get(k, "{}")) != json.loads(v) if k == "EventPattern" else current.get(k) != v)
            ]
            if current.get("State") != "ENABLED":
                changed.append("State")
            targets = events.list_targets_by_rule(Rule=rule).get("Targets", [])
            if [t["Arn"] for t in targets] != [desired.lambda_arn]:
                changed.append("target")
            tags = read_tags(events.list_tags_for_resource, ResourceARN=rule_arn)
            changed += tag_drift(tags, self.tags)
            if statement_id not in statements:
                changed.append("invoke permission")
            changes.append(
                self._change(f"eventbridge rule {rule}", "eventbridge rule", changed, steps, detail, tags=tags)
            )
        return changes


def _self_reference(group_id: str) -> dict[str, Any]:
    return {"IpProtocol": "tcp", "FromPort": 0, "ToPort": 65535, "UserIdGroupPairs": [{"GroupId": group_id}]}


def _self_referencing(group: dict[str, Any]) -> bool:
    return any(
        pair.get("GroupId") == group["GroupId"] and permission.get("IpProtocol") in ("tcp", "-1")
        for permission in group.get("IpPermissions", [])
        for pair in permission.get("UserIdGroupPairs", [])
    )


def _keys(schema: list[dict[str, str]]) -> list[tuple[str, str]]:
    return [(key["AttributeName"], key["KeyType"]) for key in schema]


def _table_mismatch(table: dict[str, Any], wanted: dict[str, Any]) -> str:
    """Why an existing audit table cannot serve the pipeline ("" if it can): its key, or an index of
    the pipeline's name on other keys. Neither changes in place; a missing index can be added."""
    if _keys(table.get("KeySchema", [])) != _keys(wanted["KeySchema"]):
        return f"its key is {_keys(table.get('KeySchema', []))}, not {_keys(wanted['KeySchema'])}: not an audit table"
    indexes = {index["IndexName"]: _keys(index["KeySchema"]) for index in table.get("GlobalSecondaryIndexes", [])}
    for index in wanted["GlobalSecondaryIndexes"]:
        name = index["IndexName"]
        if name in indexes and indexes[name] != _keys(index["KeySchema"]):
            return f"its index {name} is on {indexes[name]}, not {_keys(index['KeySchema'])}"
    return ""


def refusals(changes: list[Change], adopt: bool, stack: str) -> str:
    """Why deploy must not apply this plan ("" if it may): resources of another stack, or resources no
    stack tagged when taking them over was not asked for."""
    reasons = []
    conflicts = [c for c in changes if c.action == "conflict"]
    if conflicts:
        listed = "; ".join(f"{c.resource} ({c.detail})" for c in conflicts)
        reasons.append(f"deploy leaves these alone and cannot go on: {listed}. Give this stack other names")
    untagged = [c.resource for c in changes if c.action == "adopt"]
    if untagged and not adopt:
        reasons.append(
            f"these exist but were not made by this stack (no tag {STACK_TAG}={stack}): {', '.join(untagged)}. "
            "deploy --adopt takes them over (roles get this stack's trust policy and inline policy, managed "
            "policies attached to them are detached: `glueline plan` lists each)"
        )
    return "\n".join(reasons)


def strictest_tls(db: DbConnection, bucket: str) -> tuple[DbConnection, str]:
    """A database left at libpq's default sslmode (``prefer``: encrypted if offered, the certificate not
    checked), with the strictest mode that works, and what the server offered ("" when not asked): an
    RDS database ``verify-full`` against the RDS CA bundle, which deploy ships to ``scripts/`` for the
    job; another by what it offers (``glueline.ops.deploy.tls``). An sslmode given in the URL is kept."""
    if db.sslmode != "prefer":
        return db, ""
    if db.host.endswith(".rds.amazonaws.com"):
        return replace(db, sslmode="verify-full", sslrootcert=f"s3://{bucket}/{layout.SCRIPTS}{RDS_CA_BUNDLE}"), ""
    offered = tls.probe(db.host, db.port)
    if offered == tls.VERIFIED:
        return replace(db, sslmode="verify-full", sslrootcert="system"), offered
    if offered == tls.UNVERIFIED:
        return replace(db, sslmode="require"), offered
    return db, offered


def _table_ready(name: str) -> Wait:
    """The audit table created or its index added: ACTIVE again."""
    return Wait("dynamodb", "table_exists", f"the DynamoDB table {name}", 1, 120, {"TableName": name}, TABLE_STATE)
