"""The database's side of deploy: the secret that names it to the job, and, where deploy creates it
(``--create-database``), the RDS instance with its subnet group and security group; where deploy knows
the master (that database, or a local stack's), the master's secret and the job's own login."""

from __future__ import annotations

import hashlib
from pathlib import Path

from glueline.job import login as job_login
from glueline.ops import tls
from glueline.ops.deploy.aws import (
    GLUE_RUN_ENDED,
    GLUE_RUN_ERROR,
    GLUE_RUN_STATE,
    RDS_INSTANCE_STATE,
    read_tags,
    tag_dict,
    tag_drift,
    tag_list,
)
from glueline.ops.deploy.desired import CreatedDatabase
from glueline.ops.deploy.models import Action, APICall, Change, Ref, Step, Wait
from glueline.ops.deploy.plans.base import Planning, group_id, missing_ingress
from glueline.shared.dbsecret import PENDING, DbConnection


def instance(p: Planning) -> list[Change]:
    """The security group (5432 from Glue's workers, never from an address range), the subnet group and
    the instance, in that order."""
    database = p.desired.database
    if database is None:
        return []
    return [_security_group(p, database), _subnet_group(p, database), _instance(p, database)]


def _security_group(p: Planning, database: CreatedDatabase) -> Change:
    group = database.security_group
    resource = f"security group {group.name}"
    existing = group_id(group.group_id)
    if existing is None:
        return p.change(resource, "security group", None, p.create_group(group))
    current = p.client("ec2").describe_security_groups(GroupIds=[existing])["SecurityGroups"][0]
    tags = tag_dict(current.get("Tags", []))
    changed = tag_drift(tags, p.tags)
    steps: list[Step] = [APICall("ec2", "create_tags", {"Resources": [existing], "Tags": tag_list(p.tags)})]
    for permission in current.get("IpPermissions", []):
        if permission.get("IpRanges"):  # never an address range, least of all 0.0.0.0/0
            ranges_only = {k: v for k, v in permission.items() if k != "UserIdGroupPairs"}
            steps.append(
                APICall("ec2", "revoke_security_group_ingress", {"GroupId": existing, "IpPermissions": [ranges_only]})
            )
            if "ingress from addresses" not in changed:
                changed.append("ingress from addresses")
    missing = missing_ingress(current, group.ingress)
    if missing:
        changed.append("ingress from Glue")
        steps.append(
            APICall("ec2", "authorize_security_group_ingress", {"GroupId": existing, "IpPermissions": missing})
        )
    sources = [pair["GroupId"] for rule in group.ingress for pair in rule["UserIdGroupPairs"]]
    detail = f"{existing}: 5432 from {', '.join(map(str, sources))}"
    return p.change(resource, "security group", changed, steps, detail, tags=tags)


def _subnet_group(p: Planning, database: CreatedDatabase) -> Change:
    rds = p.client("rds")
    wanted = database.subnet_group
    name = wanted["DBSubnetGroupName"]
    resource = f"db subnet group {name}"
    try:
        current = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"][0]
    except rds.exceptions.DBSubnetGroupNotFoundFault:
        create = APICall("rds", "create_db_subnet_group", {**wanted, "Tags": tag_list(p.tags)})
        return p.change(resource, "db subnet group", None, [create])
    tags = read_tags(rds.list_tags_for_resource, ResourceName=current["DBSubnetGroupArn"])
    tag = {"ResourceName": current["DBSubnetGroupArn"], "Tags": tag_list(p.tags)}
    return p.change(
        resource, "db subnet group", tag_drift(tags, p.tags), [APICall("rds", "add_tags_to_resource", tag)], tags=tags
    )


def _instance(p: Planning, database: CreatedDatabase) -> Change:
    """An instance still being created (a deploy interrupted while it was) is waited for, not made again;
    one being deleted is refused."""
    rds = p.client("rds")
    wanted = database.instance
    name = wanted["DBInstanceIdentifier"]
    resource = f"rds instance {name}"
    detail = f"PostgreSQL {wanted['EngineVersion']}, {wanted['DBInstanceClass']}, private, encrypted"
    available = Wait(
        "rds",
        "db_instance_available",
        f"the RDS instance {name} to be available",
        30,
        80,
        {"DBInstanceIdentifier": name},
        RDS_INSTANCE_STATE,
    )
    try:
        current = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    except rds.exceptions.DBInstanceNotFoundFault:
        create = APICall("rds", "create_db_instance", {**wanted, "Tags": tag_list(p.tags)})
        return p.change(resource, "rds instance", None, [create, available], detail)
    status = current.get("DBInstanceStatus", "available")
    if status == "deleting":
        return Change(resource, "rds instance", Action.CONFLICT, [], "being deleted: deploy again once it is gone")
    tags = tag_dict(current.get("TagList", []))
    changed = [k for k, v in database.guarded.items() if current.get(k) != v]
    changed += tag_drift(tags, p.tags)
    steps: list[Step] = []
    if status != "available":
        changed.append(f"status {status}")
        steps.append(available)
    modifiable = {k: v for k, v in database.guarded.items() if k != "StorageEncrypted"}
    if set(modifiable) & set(changed):
        steps.append(
            APICall("rds", "modify_db_instance", {"DBInstanceIdentifier": name, **modifiable, "ApplyImmediately": True})
        )
    steps.append(
        APICall("rds", "add_tags_to_resource", {"ResourceName": current["DBInstanceArn"], "Tags": tag_list(p.tags)})
    )
    # Encryption cannot be turned on in place; plan shows it, deploy cannot fix it.
    return p.change(resource, "rds instance", changed, steps, detail, tags=tags)


# On the job's secret: what the login job made last (``login_made``), so a deploy with nothing new to make
# runs no job. Deploy never asks the database itself.
LOGIN_TAG = "glueline:login"
# The rights a login gets are the login module's: a release that changes them makes the login again.
_LOGIN_RIGHTS = hashlib.sha256(Path(job_login.__file__).read_bytes()).hexdigest()


def secrets(p: Planning, tls_offered: str, review: str) -> list[Change]:
    """The job's secret, and a local stack's master's (``review``: what a login the user brings lacks or
    holds beyond the job's needs, ``glueline.ops.database.Database.login_review``)."""
    wanted, master = p.desired.secret, p.desired.master_secret
    shown = _shown(DbConnection.from_secret(wanted["SecretString"]), tls_offered)
    # Where deploy makes the login, a new value waits for the login job (AWSPENDING): the ETL keeps
    # logging in with the current one until the login it names exists.
    pending = p.desired.login_job is not None
    changes = [_secret(p, wanted, shown + (f"; the login: {review}" if review else ""), pending)]
    if master:
        changes.append(_secret(p, master, "the master's username and password, for the login job"))
    return changes


def login_made(p: Planning) -> str:
    """What the login job makes from the job's secret, the master's and the login rights of this release
    (a digest: of values that hold passwords of 144 and 256 random bits, so it gives nothing away)."""
    master = p.desired.master_secret["SecretString"] if p.desired.master_secret else ""
    table = (p.desired.login_job or {}).get("NonOverridableArguments", {}).get("--TARGET_TABLE", "")
    made = "\n".join([p.desired.secret["SecretString"], master, table, _LOGIN_RIGHTS])
    return hashlib.sha256(made.encode()).hexdigest()[:32]


def login(p: Planning) -> list[Change]:
    """The job's own login, made in the database by the login job when it is new, or its password, its
    master, its target or its rights changed: the job runs where the database is (deploy's laptop may not
    reach a private RDS), with the one role that reads the master's secret."""
    job = p.desired.login_job_name
    if p.desired.login_job is None:
        return []
    name = p.desired.secret["Name"]
    made = login_made(p)
    login = DbConnection.from_secret(p.desired.secret["SecretString"])
    resource = f"database login {login.username}"
    detail = f"on {login.target('').rstrip('/')}, made by the Glue job {job}"
    sm = p.client("secretsmanager")
    try:
        described = sm.describe_secret(SecretId=name)
    except sm.exceptions.ResourceNotFoundException:
        described = {}
    last = tag_dict(described.get("Tags", [])).get(LOGIN_TAG)
    versions = described.get("VersionIdsToStages", {})
    pending = _labelled(versions, PENDING)
    if last == made and pending is None:
        return [Change(resource, "database login", Action.UNCHANGED, [], detail)]
    stale: list[Step] = []  # a value left waiting that deploy no longer wants: the login job must not read it
    promote: list[Step] = []
    if pending is not None:
        unlabel = APICall(
            "secretsmanager",
            "update_secret_version_stage",
            {"SecretId": name, "VersionStage": PENDING, "RemoveFromVersionId": pending},
        )
        if _value(sm, name, PENDING) != p.desired.secret["SecretString"]:
            stale = [unlabel]
        else:  # the value the login job makes becomes the one the ETL reads
            stage = {"SecretId": name, "VersionStage": "AWSCURRENT", "MoveToVersionId": pending}
            current = {"RemoveFromVersionId": _labelled(versions, "AWSCURRENT")}
            promote = [
                APICall("secretsmanager", "update_secret_version_stage", stage | current),
                unlabel,
            ]
    steps: list[Step] = [
        *stale,
        APICall("glue", "start_job_run", {"JobName": job}, store=("login_run", "JobRunId")),
        Wait(
            "glue",
            GLUE_RUN_ENDED,
            f"the Glue job {job} to make the login {login.username}",
            2,  # a local run ends in seconds; on AWS, a minute (Glue's start)
            375,
            {"JobName": job, "RunId": Ref("login_run")},
            GLUE_RUN_STATE,
            GLUE_RUN_ERROR,
        ),
        *promote,
        APICall("secretsmanager", "tag_resource", {"SecretId": name, "Tags": [{"Key": LOGIN_TAG, "Value": made}]}),
    ]
    return [
        p.change(resource, "database login", None if last is None else ["password, master or rights"], steps, detail)
    ]


def _secret(p: Planning, wanted: dict[str, str], shown: str, pending: bool = False) -> Change:
    """A secret (``shown``: what a plan says of its value); ``pending``: a new value goes to its
    AWSPENDING stage (``login`` makes it current), where one waiting there already is kept."""
    sm = p.client("secretsmanager")
    name, value = wanted["Name"], wanted["SecretString"]
    resource = f"secret {name}"
    try:
        described = sm.describe_secret(SecretId=name)
    except sm.exceptions.ResourceNotFoundException:
        create = APICall("secretsmanager", "create_secret", {**wanted, "Tags": tag_list(p.tags)})
        return p.change(resource, "secret", None, [create], shown)
    tags = tag_dict(described.get("Tags", []))
    changed = tag_drift(tags, p.tags)
    steps: list[Step] = [APICall("secretsmanager", "tag_resource", {"SecretId": name, "Tags": tag_list(p.tags)})]
    put_value = APICall("secretsmanager", "put_secret_value", {"SecretId": name, "SecretString": value})
    if "DeletedDate" in described:
        # destroy --delete-data scheduled its deletion: restored first (AWS refuses every other call, a
        # new secret of its name too), its value, which cannot be read meanwhile, put again.
        changed.insert(0, "restored from its scheduled deletion")
        steps = [APICall("secretsmanager", "restore_secret", {"SecretId": name}), *steps, put_value]
    elif _value(sm, name, "AWSCURRENT") != value:
        if not pending:
            changed.append("value")
            steps.append(put_value)
        elif _value(sm, name, PENDING) == value:
            changed.append("value (waiting for the login job)")
        else:
            changed.append("value (once the login job made its login)")
            steps.append(APICall("secretsmanager", "put_secret_value", put_value.params | {"VersionStages": [PENDING]}))
    return p.change(resource, "secret", changed, steps, shown, tags=tags)


def _labelled(versions: dict[str, list[str]], stage: str) -> str | None:
    """The version of a secret that carries ``stage`` (DescribeSecret's VersionIdsToStages)."""
    return next((version for version, stages in versions.items() if stage in stages), None)


def _value(sm, name: str, stage: str) -> str | None:
    try:
        return sm.get_secret_value(SecretId=name, VersionStage=stage)["SecretString"]
    except sm.exceptions.ResourceNotFoundException:
        return None


def _shown(db: DbConnection, tls_offered: str) -> str:
    """The stored connection as a plan says it: no password; what the server offered from here, where
    that leaves the job's connection unverified."""
    said = f"{db.url(with_password=False)}, sslmode={db.sslmode}"
    unverified = tls_offered in (tls.UNVERIFIED, tls.NO_TLS, tls.UNREACHABLE)
    return said + (f" (the server: {tls_offered} from here)" if unverified else "")
