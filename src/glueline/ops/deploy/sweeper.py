"""Destroy as data: ``plan_destroy`` finds what this stack's settings name and what carries this
stack's tag, both, and returns each resource's deletion as declared steps (API calls, waits); nothing is
deleted until ``execute`` runs them, after the CLI has shown the list and asked.

A tag anyone can set is not enough: a resource is ours when its name is one the settings give (the
function, the job, the roles…) *and* it carries ``glueline:stack=<stack>``. A resource of our name
without the tag is left and listed as such; a tagged resource of another name is not looked at. What
holds data (the bucket, the audit table, the secret, a database deploy created with its subnet and
security groups) is kept unless ``delete_data``; only then is the database's deletion protection lifted,
and a final snapshot is kept; the secret stays restorable for SECRET_RECOVERY_DAYS.

    settings ─► names ─► describe each ─► tagged ours? ─► Deletion(steps) ─► shown, confirmed ─► execute
"""

from __future__ import annotations

import time
from typing import Any

from glueline.ops.deploy.aws import RDS_INSTANCE_STATE, endpoint_alive, pages, read_tags, tag_dict
from glueline.ops.deploy.desired import (
    DB_SECURITY_GROUP,
    ENDPOINT_SERVICES,
    ENDPOINTS_SECURITY_GROUP,
    GLUE_SECURITY_GROUP,
    STACK_TAG,
    arn,
)
from glueline.ops.deploy.models import APICall, Deletion, EmptyBucket, Step, Wait
from glueline.ops.target import Target
from glueline.settings import Settings

OUR_GROUPS = (GLUE_SECURITY_GROUP, DB_SECURITY_GROUP, ENDPOINTS_SECURITY_GROUP)
# A deleted secret stays restorable this many days (Secrets Manager's minimum): the database's password
# may live nowhere else.
SECRET_RECOVERY_DAYS = 7


class Sweeper:
    """Reads the target's account for the resources ``settings`` name; writes nothing."""

    def __init__(self, settings: Settings, target: Target):
        self.settings = settings
        self.client = target.client
        self.region = target.region
        self.bucket = target.bucket
        self.account, self.partition = target.account, target.partition

    def arn(self, service: str, resource: str) -> str:
        return arn(service, self.region, self.account, resource, self.partition)

    def ours(self, tags: dict[str, str]) -> bool:
        return tags.get(STACK_TAG) == self.settings.stack

    def plan_destroy(self) -> list[Deletion]:
        """In deletion order: rules before the function they invoke, the job before its connection,
        endpoints and the network's groups before the roles, the data last."""
        deletions = [
            *self.rules(),
            *self.function(),
            *self.glue(),
            *self.endpoints(),
            *self.network_security_groups(),
            *self.roles(),
            *self.database(),
            *self.data(),
        ]
        return deletions

    def _found(self, resource: str, type_: str, tags: dict[str, str], steps: list[Step], **kwargs) -> Deletion:
        ours = self.ours(tags)
        detail = kwargs.pop("detail", "")
        if not ours:
            detail = f"not tagged {STACK_TAG}={self.settings.stack}: not this stack's, left as it is"
        return Deletion(resource, type_, steps if ours else [], ours=ours, detail=detail, **kwargs)

    def rules(self) -> list[Deletion]:
        events = self.client("events")
        found = []
        for name in (self.settings.schedule_rule, self.settings.s3_rule):
            try:
                rule = events.describe_rule(Name=name)
            except events.exceptions.ResourceNotFoundException:
                continue
            ids = [t["Id"] for t in events.list_targets_by_rule(Rule=name).get("Targets", [])]
            steps: list[Step] = [APICall("events", "remove_targets", {"Rule": name, "Ids": ids})] if ids else []
            steps.append(APICall("events", "delete_rule", {"Name": name}))
            tags = read_tags(events.list_tags_for_resource, ResourceARN=rule["Arn"])
            found.append(self._found(f"eventbridge rule {name}", "eventbridge rule", tags, steps))
        return found

    def function(self) -> list[Deletion]:
        lam, name = self.client("lambda"), self.settings.lambda_function
        try:
            function = lam.get_function(FunctionName=name)
        except lam.exceptions.ResourceNotFoundException:
            return []
        steps: list[Step] = [APICall("lambda", "delete_function", {"FunctionName": name})]
        return [self._found(f"lambda {name}", "lambda function", function.get("Tags", {}), steps)]

    def glue(self) -> list[Deletion]:
        glue, s = self.client("glue"), self.settings
        found = []
        for job in (s.glue_job, s.db_login_job):
            try:
                glue.get_job(JobName=job)
                tags = glue.get_tags(ResourceArn=self.arn("glue", f"job/{job}")).get("Tags", {})
                steps: list[Step] = [APICall("glue", "delete_job", {"JobName": job})]
                found.append(self._found(f"glue job {job}", "glue job", tags, steps))
            except glue.exceptions.EntityNotFoundException:
                pass
        try:
            glue.get_connection(Name=s.glue_connection)
            arn = self.arn("glue", f"connection/{s.glue_connection}")
            tags = glue.get_tags(ResourceArn=arn).get("Tags", {})
            steps = [APICall("glue", "delete_connection", {"ConnectionName": s.glue_connection})]
            found.append(self._found(f"glue connection {s.glue_connection}", "glue connection", tags, steps))
        except glue.exceptions.EntityNotFoundException:
            pass
        return found

    def endpoints(self) -> list[Deletion]:
        """Endpoints have no name: ours are those of the pipeline's services that carry our tag."""
        ec2 = self.client("ec2")
        services = {f"com.amazonaws.{self.region}.{service}" for service in ENDPOINT_SERVICES}
        tagged = [{"Name": f"tag:{STACK_TAG}", "Values": [self.settings.stack]}]
        found = []
        for endpoint in pages(ec2.describe_vpc_endpoints, "VpcEndpoints", token="NextToken", Filters=tagged):
            if endpoint["ServiceName"] not in services or not endpoint_alive(endpoint):
                continue
            endpoint_id = endpoint["VpcEndpointId"]
            steps: list[Step] = [APICall("ec2", "delete_vpc_endpoints", {"VpcEndpointIds": [endpoint_id]})]
            tags = tag_dict(endpoint.get("Tags", []))
            found.append(
                self._found(f"vpc endpoint {endpoint['ServiceName']}", "vpc endpoint", tags, steps, detail=endpoint_id)
            )
        return found

    def _groups(self, name: str) -> list[dict[str, Any]]:
        ec2 = self.client("ec2")
        return ec2.describe_security_groups(Filters=[{"Name": "group-name", "Values": [name]}])["SecurityGroups"]

    def _delete_group(self, group: dict[str, Any]) -> list[Step]:
        """Rules of this stack's other group that admit this one (the database's admits Glue's) go
        first: a group still referenced cannot be deleted."""
        steps: list[Step] = []
        others = [name for name in OUR_GROUPS if name != group["GroupName"]]
        for admitting in [g for name in others for g in self._groups(name)]:
            if not self.ours(tag_dict(admitting.get("Tags", []))):
                continue
            for permission in admitting.get("IpPermissions", []):
                pairs = [p for p in permission.get("UserIdGroupPairs", []) if p.get("GroupId") == group["GroupId"]]
                if pairs:
                    rule = {k: v for k, v in permission.items() if k in ("IpProtocol", "FromPort", "ToPort")}
                    rule["UserIdGroupPairs"] = pairs  # as described: a rule is revoked by an exact match
                    params = {"GroupId": admitting["GroupId"], "IpPermissions": [rule]}
                    steps.append(APICall("ec2", "revoke_security_group_ingress", params))
        delete = APICall("ec2", "delete_security_group", {"GroupId": group["GroupId"]}, "DependencyViolation")
        return [*steps, delete]

    def network_security_groups(self) -> list[Deletion]:
        """The endpoints' group and Glue's (the database's goes with the database)."""
        return [
            self._found(
                f"security group {name}",
                "security group",
                tag_dict(group.get("Tags", [])),
                self._delete_group(group),
                detail=group["GroupId"],
            )
            for name in (ENDPOINTS_SECURITY_GROUP, GLUE_SECURITY_GROUP)
            for group in self._groups(name)
        ]

    def roles(self) -> list[Deletion]:
        iam, s = self.client("iam"), self.settings
        found = []
        for name in (s.lambda_role, s.glue_role, s.db_login_role, s.events_role):
            try:
                iam.get_role(RoleName=name)
            except iam.exceptions.NoSuchEntityException:
                continue
            steps: list[Step] = [
                APICall("iam", "delete_role_policy", {"RoleName": name, "PolicyName": policy})
                for policy in iam.list_role_policies(RoleName=name)["PolicyNames"]
            ]
            steps += [
                APICall("iam", "detach_role_policy", {"RoleName": name, "PolicyArn": attached["PolicyArn"]})
                for attached in iam.list_attached_role_policies(RoleName=name)["AttachedPolicies"]
            ]
            steps.append(APICall("iam", "delete_role", {"RoleName": name}))
            found.append(
                self._found(f"iam role {name}", "iam role", read_tags(iam.list_role_tags, RoleName=name), steps)
            )
        return found

    def database(self) -> list[Deletion]:
        """A database deploy created, then its subnet group and security group (in deletion order). The
        instance is deleted with deletion protection lifted and a final snapshot kept."""
        rds, name = self.client("rds"), self.settings.db_instance
        found = []
        try:
            (instance,) = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"]
        except rds.exceptions.DBInstanceNotFoundFault:
            instance = None
        if instance is not None:
            snapshot = f"{name}-final-{time.strftime('%Y%m%d%H%M%S')}"
            steps: list[Step] = [
                APICall(
                    "rds",
                    "modify_db_instance",
                    {"DBInstanceIdentifier": name, "DeletionProtection": False, "ApplyImmediately": True},
                ),
                APICall(
                    "rds",
                    "delete_db_instance",
                    {"DBInstanceIdentifier": name, "SkipFinalSnapshot": False, "FinalDBSnapshotIdentifier": snapshot},
                ),
                Wait(
                    "rds",
                    "db_instance_deleted",
                    f"the RDS instance {name} to be deleted",
                    30,
                    80,
                    {"DBInstanceIdentifier": name},
                    RDS_INSTANCE_STATE,
                ),
            ]
            tags = tag_dict(instance.get("TagList", []))
            found.append(
                self._found(
                    f"rds instance {name}",
                    "rds instance",
                    tags,
                    steps,
                    holds_data=True,
                    detail=f"final snapshot {snapshot}",
                )
            )
        try:
            (group,) = rds.describe_db_subnet_groups(DBSubnetGroupName=name)["DBSubnetGroups"]
            tags = read_tags(rds.list_tags_for_resource, ResourceName=group["DBSubnetGroupArn"])
            steps = [APICall("rds", "delete_db_subnet_group", {"DBSubnetGroupName": name})]
            found.append(self._found(f"db subnet group {name}", "db subnet group", tags, steps, holds_data=True))
        except rds.exceptions.DBSubnetGroupNotFoundFault:
            pass
        for group in self._groups(DB_SECURITY_GROUP):
            found.append(
                self._found(
                    f"security group {DB_SECURITY_GROUP}",
                    "security group",
                    tag_dict(group.get("Tags", [])),
                    self._delete_group(group),
                    holds_data=True,
                    detail=group["GroupId"],
                )
            )
        return found

    def data(self) -> list[Deletion]:
        s3, ddb, sm, s = self.client("s3"), self.client("dynamodb"), self.client("secretsmanager"), self.settings
        found = []
        try:
            s3.head_bucket(Bucket=self.bucket)
            tags = read_tags(s3.get_bucket_tagging, Bucket=self.bucket)
            steps: list[Step] = [EmptyBucket(self.bucket), APICall("s3", "delete_bucket", {"Bucket": self.bucket})]
            found.append(self._found(f"s3://{self.bucket}", "s3 bucket", tags, steps, holds_data=True))
        except s3.exceptions.ClientError:
            pass
        try:
            arn = ddb.describe_table(TableName=s.audit_table)["Table"]["TableArn"]
            tags = read_tags(ddb.list_tags_of_resource, ResourceArn=arn)
            steps = [APICall("dynamodb", "delete_table", {"TableName": s.audit_table})]
            found.append(self._found(f"dynamodb {s.audit_table}", "dynamodb table", tags, steps, holds_data=True))
        except ddb.exceptions.ResourceNotFoundException:
            pass
        for name in (s.db_secret_name, s.db_master_secret_name):
            try:
                secret = sm.describe_secret(SecretId=name)
            except sm.exceptions.ResourceNotFoundException:
                continue
            if "DeletedDate" in secret:  # one scheduled for deletion is deleted already
                continue
            delete = {"SecretId": secret["ARN"], "RecoveryWindowInDays": SECRET_RECOVERY_DAYS}
            restore = f"aws secretsmanager restore-secret --secret-id {name}"
            detail = f"once deleted, restorable for {SECRET_RECOVERY_DAYS} days: {restore} (or a deploy)"
            steps = [APICall("secretsmanager", "delete_secret", delete)]
            tags = tag_dict(secret.get("Tags", []))
            found.append(self._found(f"secret {name}", "secret", tags, steps, holds_data=True, detail=detail))
        return found + self.failure_queue() + self.lambda_log_group()

    def lambda_log_group(self) -> list[Deletion]:
        logs, name = self.client("logs"), f"/aws/lambda/{self.settings.lambda_function}"
        groups = logs.describe_log_groups(logGroupNamePrefix=name).get("logGroups", [])
        if name not in [group["logGroupName"] for group in groups]:
            return []
        tags = logs.list_tags_log_group(logGroupName=name).get("tags", {})
        steps: list[Step] = [APICall("logs", "delete_log_group", {"logGroupName": name})]
        return [self._found(f"log group {name}", "log group", tags, steps, holds_data=True)]

    def failure_queue(self) -> list[Deletion]:
        """The events the Lambda failed on are data too."""
        sqs, name = self.client("sqs"), self.settings.lambda_failure_queue
        try:
            url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.ClientError:
            return []
        tags = sqs.list_queue_tags(QueueUrl=url).get("Tags", {})
        steps: list[Step] = [APICall("sqs", "delete_queue", {"QueueUrl": url})]
        return [self._found(f"sqs queue {name}", "sqs queue", tags, steps, holds_data=True)]
