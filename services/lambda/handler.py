"""ETL_Lambda_Function: triggered by S3 "Object Created" events (via EventBridge) and the daily schedule.

Wiring only; what it decides is in ``glueline.intake`` and ``glueline.shared.lifecycle``. Configuration
comes from the function's environment, set by deploy:
    AUDIT_TABLE     the DynamoDB audit table (S3_Audit_1)
    GLUE_JOB_NAME   the Glue job to start (ETL_Job_to_RDS)
    SOURCE_BUCKET   the bucket whose source/ prefix the scheduled sweep lists
    MAX_ATTEMPTS    processing attempts of a file before it is given up (moved to rejected/)
    TARGET          the database and table the job loads into (host:port/dbname/schema.table; no secret)
AWS endpoints come from the standard AWS configuration only; this code never asks where it runs. Every
AWS call is bounded (``glueline.shared.timeouts``); nothing waits for Glue (``glueline.intake``).
"""

import json
import logging
import os

from glueline.intake.intake import Intake
from glueline.shared.audit import AuditTable
from glueline.shared.lifecycle import Lifecycle
from glueline.shared.timeouts import aws_client

# The Lambda runtime installs a handler on the root logger; elsewhere basicConfig adds one.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
logger = logging.getLogger("glueline.intake")
logger.setLevel(logging.INFO)

_intake = None


def _get_intake() -> Intake:
    global _intake
    if _intake is None:  # built once per execution environment, reused while warm
        lifecycle = Lifecycle(
            audit=AuditTable(aws_client("dynamodb"), os.environ["AUDIT_TABLE"]),
            s3=aws_client("s3"),
            glue=aws_client("glue"),
            job_name=os.environ["GLUE_JOB_NAME"],
            max_attempts=int(os.environ["MAX_ATTEMPTS"]),
            target=os.environ["TARGET"],
        )
        _intake = Intake(lifecycle, bucket=os.environ["SOURCE_BUCKET"])
    return _intake


def lambda_handler(event, context):
    result = _get_intake().handle(event)
    logger.info("glueline intake: %s", json.dumps(result))
    return result
