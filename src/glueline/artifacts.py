"""What the pipeline's artifacts are called and built from: the names several layers must agree on.
``glueline.ops.packaging`` builds the artifacts, deploy points the function and the job at them, the local
stacks build images that run them and the Glue runner reads a run's arguments by them.

Dependency-free (the Glue runner's container imports it beside the standard library alone).
"""

from __future__ import annotations

from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent  # .../glueline, installed or in a source checkout

# Supported by AWS Lambda until 2029-06-30 (AWS's runtime lifecycle, as cfn-lint's data carries it);
# the function's code is the standard library and boto3, checked on it by the Lambda artifact's tests.
LAMBDA_RUNTIME = "python3.13"
LAMBDA_PYTHON = LAMBDA_RUNTIME.removeprefix("python")
LAMBDA_HANDLER = "handler.lambda_handler"

GLUE_SCRIPT = "ETL_Job_to_RDS.py"
GLUE_LOGIN_SCRIPT = "ETL_DB_Login.py"  # the one-off job that makes the ETL's own database login
GLUE_LIBRARY = "glueline-lib.zip"  # glueline.shared + glueline.job: the job's --extra-py-files
GLUE_WHEELS = "wheels/"  # beside the script: the job's --additional-python-modules
GLUE_PYTHON = {"4.0": "3.10", "5.0": "3.11", "5.1": "3.11"}  # AWS Glue version → its Python
PSYCOPG_REQUIREMENT = "psycopg[binary]==3.3.9"  # the job's driver, shipped as a wheel

# AWS's CA bundle for RDS, shipped beside the job's code when the job checks an RDS certificate.
RDS_CA_BUNDLE = "rds-ca-bundle.pem"

# A job argument of the local Glue runner's only: where a run's driver waits for a debugger
# (glueline.local.runner.debug); AWS Glue passes it to the script, which ignores it.
DEBUG_ARGUMENT = "--glueline-debug"
