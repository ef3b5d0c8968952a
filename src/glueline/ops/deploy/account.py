"""The account as deploy finds it: what the desired state needs that only the account knows. Its network
(the Glue subnet, its VPC's CIDR blocks and route table, the pipeline's security groups that exist), where
the function reaches Glue, whether deploy speaks to S3 over TLS; and the code's files (RDS's CA bundle
among them, downloaded once). Read afresh for each stage of a deploy: a stage may create what the next
one names (a group, the database)."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from secrets import token_urlsafe
from typing import Any

import urllib3

from glueline.artifacts import RDS_CA_BUNDLE
from glueline.ops import packaging
from glueline.ops.database import Database, Origin
from glueline.ops.deploy.aws import DeployError
from glueline.ops.deploy.desired import (
    DB_SECURITY_GROUP,
    ENDPOINTS_SECURITY_GROUP,
    GLUE_SECURITY_GROUP,
    AccountFacts,
    GroupId,
    Network,
)
from glueline.ops.deploy.models import Ref
from glueline.ops.target import Target
from glueline.settings import Settings
from glueline.shared.awserrors import error_code
from glueline.shared.dbsecret import PENDING, DbConnection

RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"


def account_facts(target: Target, settings: Settings, database: Database) -> AccountFacts:
    login, master = job_login(target, settings, database)
    # A master's secret named by ARN is RDS's own: RDS made it for the instance deploy created.
    creates_database = settings.create_database or login.master_secret.startswith("arn:")
    return AccountFacts(
        account=target.account,
        region=target.region,
        partition=target.partition,
        bucket=target.bucket,
        db=login,
        db_master=master,
        rds_ca=database.rds_ca,
        creates_database=creates_database,
        network=find_network(target.client("ec2"), settings, creates_database),
        wheels=[wheel.name for wheel in packaging.glue_wheels(settings.glue_version)],
        function_glue_endpoint=target.function_glue_endpoint,
        s3_over_tls=target.client("s3").meta.endpoint_url.startswith("https://"),
    )


def job_login(target: Target, settings: Settings, database: Database) -> tuple[DbConnection, DbConnection | None]:
    """The login the job connects with, and a local stack's master (for the master's secret). A given
    database's login is the user's own (``plan`` says what it lacks or holds beyond the job's needs), and
    so is one deployed with it; for the local stack's database and one deploy creates (or created: the job's
    secret names its master's), the job's own login (``settings.db_login``), made by the login job: its
    password kept from the job's secret where that holds this login already, else a new one (256 random
    bits, never shown)."""
    connection = database.connection
    local = database.origin == Origin.LOCAL_STACK
    if not (local or database.origin == Origin.CREATED or connection.master_secret):
        return connection, None  # given, or deployed with the user's own login
    login = replace(
        connection,
        username=settings.db_login,
        password="",
        master_secret=settings.db_master_secret_name if local else connection.master_secret,
    )
    return replace(login, password=_login_password(target.client("secretsmanager"), settings, login)), (
        connection if local else None
    )


def _login_password(secrets, settings: Settings, login: DbConnection) -> str:
    """The password the job's secret holds for this very login (its value waiting for the login job
    first, else the current one), else a new one."""
    for stage in (PENDING, "AWSCURRENT"):
        try:
            stored = DbConnection.from_secrets_manager(secrets, settings.db_secret_name, stage)
        except secrets.exceptions.ClientError as err:
            if error_code(err) not in ("ResourceNotFoundException", "InvalidRequestException"):  # none, or deleted
                raise
            continue
        if stored.password and (stored.target(""), stored.username) == (login.target(""), login.username):
            return stored.password
    return token_urlsafe(32)


def find_network(ec2, settings: Settings, creates_database: bool) -> Network:
    """The subnet (setting, else the default VPC's first by availability zone) and what deploy places
    beside it: the route table and CIDR blocks the endpoints need, the VPC's subnets a created database
    needs, the pipeline's groups (their ids once they exist)."""
    s = settings
    if s.glue_subnet_id:
        subnet = ec2.describe_subnets(SubnetIds=[s.glue_subnet_id])["Subnets"][0]
    else:
        vpcs = ec2.describe_vpcs(Filters=[{"Name": "isDefault", "Values": ["true"]}])["Vpcs"]
        if not vpcs:
            raise DeployError(
                "this account and region have no default VPC: set GLUELINE_GLUE_SUBNET_ID to the subnet "
                "Glue's workers should use (one that reaches the database)"
            )
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpcs[0]["VpcId"]]}])["Subnets"]
        subnet = sorted(subnets, key=lambda n: (n["AvailabilityZone"], n["SubnetId"]))[0]
    vpc_id, subnet_id = subnet["VpcId"], subnet["SubnetId"]
    network: dict[str, Any] = {
        "glue_group": s.glue_security_group_id or _group(ec2, vpc_id, GLUE_SECURITY_GROUP),
    }
    if s.vpc_endpoints:
        (vpc,) = ec2.describe_vpcs(VpcIds=[vpc_id])["Vpcs"]
        associated = [
            block["CidrBlock"]
            for block in vpc.get("CidrBlockAssociationSet", [])
            if block.get("CidrBlockState", {}).get("State", "associated") == "associated"
        ]
        network["cidrs"] = tuple(associated or [vpc["CidrBlock"]])
        network["route_table_id"] = _route_table(ec2, vpc_id, subnet_id)
        network["endpoints_group"] = _group(ec2, vpc_id, ENDPOINTS_SECURITY_GROUP)
    if creates_database:
        subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc_id]}])["Subnets"]
        network["subnet_ids"] = tuple(n["SubnetId"] for n in subnets)
        network["db_group"] = _group(ec2, vpc_id, DB_SECURITY_GROUP)
    return Network(vpc_id, subnet_id, subnet["AvailabilityZone"], **network)


def _group(ec2, vpc_id: str, name: str) -> GroupId:
    """The id of the pipeline's group of that name in the VPC, or what names the one deploy creates."""
    groups = ec2.describe_security_groups(
        Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "group-name", "Values": [name]}]
    )["SecurityGroups"]
    return groups[0]["GroupId"] if groups else Ref(name)


def _route_table(ec2, vpc_id: str, subnet_id: str) -> str:
    """The Glue subnet's route table: the one associated with it, else the VPC's main table."""
    for filters in (
        [{"Name": "association.subnet-id", "Values": [subnet_id]}],
        [{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}],
    ):
        tables = ec2.describe_route_tables(Filters=filters)["RouteTables"]
        if tables:
            return tables[0]["RouteTableId"]
    raise DeployError(f"no route table for {subnet_id} in {vpc_id}")


def code_file(name: str, settings: Settings) -> bytes:
    """A file of the job's code by its name under the code prefix (``DesiredState.code_files``)."""
    if name == RDS_CA_BUNDLE:
        return rds_ca_bundle(settings)
    return packaging.job_code(name, settings.glue_version)


def rds_ca_bundle(settings: Settings) -> bytes:
    """The bundle of GLUELINE_DB_CA_BUNDLE, else AWS's global RDS bundle, downloaded once into the cache."""
    if settings.db_ca_bundle:
        return Path(settings.db_ca_bundle).read_bytes()
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "glueline" / RDS_CA_BUNDLE
    if not cache.exists():
        try:
            response = urllib3.request("GET", RDS_CA_BUNDLE_URL, timeout=30)
            if response.status != 200:
                raise urllib3.exceptions.HTTPError(f"HTTP {response.status}")
        except urllib3.exceptions.HTTPError as err:
            raise DeployError(
                f"could not download the RDS CA bundle ({RDS_CA_BUNDLE_URL}): {err}; "
                "set GLUELINE_DB_CA_BUNDLE to a copy of it"
            ) from err
        data = response.data
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(data)
    return cache.read_bytes()
