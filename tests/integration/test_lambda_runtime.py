"""The Lambda on the Lambda runtime's Python (python3.13), which the machine running glueline (3.11) lacks.

The compose stack runs the function in MiniStack's interpreter, and the MiniStack stand-in is built on
Debian 13's CPython 3.13 for that reason (``glueline.local.compose.images``): every compose test that
uploads a file runs the handler there. Here the Lambda's own unit tests run on that interpreter against the
contents of the deployed zip alone (its glueline packages, its boto3 and botocore), in an image made from
the stand-in with pytest and moto added."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from glueline.artifacts import LAMBDA_RUNTIME
from glueline.local.compose.images import (
    build_base,
    docker,
    engine_platforms,
    image_exists,
    pinned,
    stand_ins,
    wheelhouse,
)
from glueline.ops.packaging import lambda_zip

pytestmark = pytest.mark.compose_only
ROOT = Path(__file__).resolve().parents[2]
# The Lambda's subject: its intake rules and the shared modules the zip carries. test_timeouts also covers
# the Glue job's library, which the zip does not carry.
UNIT_TESTS = ["tests/unit/intake", "tests/unit/shared", "--ignore=tests/unit/shared/test_timeouts.py"]
PYTEST = ["-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "addopts="]
TEST_IMAGE_DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY wheels /tmp/wheels
RUN python3 -m venv /opt/lambda-tests \\
 && /opt/lambda-tests/bin/pip install --quiet --no-index --find-links /tmp/wheels -r /tmp/wheels/requirements.txt \\
 && rm -rf /tmp/wheels
"""


@pytest.fixture(scope="module")
def lambda_python_image(tmp_path_factory) -> str:
    """The MiniStack stand-in plus pytest and moto (in a venv of their own, beside MiniStack's)."""
    spec = stand_ins()["ministack"]
    if not image_exists(spec["image"]):
        pytest.fail(f"{spec['image']} is missing: run make images-offline")
    context = tmp_path_factory.mktemp("lambda-tests-image")
    (context / "Dockerfile").write_text(TEST_IMAGE_DOCKERFILE)
    requirements = [pinned("pytest"), pinned("pytest-timeout"), pinned("moto")]
    shutil.copytree(wheelhouse(requirements, engine_platforms(), spec["python"]), context / "wheels")
    image = f"glueline-test/lambda-python:{spec['python']}"
    docker("build", "--quiet", "--build-arg", f"BASE_IMAGE={spec['image']}", "--tag", image, str(context))
    return image


def test_the_stand_in_runs_lambdas_on_the_lambda_runtimes_python():
    spec = stand_ins()["ministack"]
    assert f"python{spec['python']}" == LAMBDA_RUNTIME
    assert build_base(spec["python"]).endswith(":trixie")  # Debian 13's python3 is 3.13
    version = docker("run", "--rm", "--entrypoint", "python3", spec["image"], "--version")
    assert version.strip().startswith(f"Python {spec['python']}."), version


def test_the_lambdas_unit_tests_pass_on_its_runtime_from_the_zip_alone(lambda_python_image, tmp_path):
    task = tmp_path / "task"  # as Lambda unpacks the zip: /var/task, first on the function's path
    with zipfile.ZipFile(io.BytesIO(lambda_zip())) as archive:
        archive.extractall(task)
    where = (
        "import sys, botocore, glueline.intake, handler; "
        "print(sys.version.split()[0], botocore.__version__, botocore.__file__, glueline.intake.__file__)"
    )
    command = [
        "run", "--rm", "--network", "none", "--entrypoint", "/opt/lambda-tests/bin/python",
        "-v", f"{task}:/var/task:ro", "-v", f"{ROOT / 'tests'}:/src/tests:ro", "-w", "/src",
        "-e", "PYTHONPATH=/var/task", "-e", "PYTHONDONTWRITEBYTECODE=1",
        "-e", "AWS_DEFAULT_REGION=us-east-1", "-e", "AUDIT_TABLE=S3_Audit_1", "-e", "GLUE_JOB_NAME=ETL_Job_to_RDS",
        "-e", "SOURCE_BUCKET=b", "-e", "MAX_ATTEMPTS=3", "-e", "TARGET=h:5432/d/public.t",
        lambda_python_image,
    ]  # fmt: skip
    version, botocore_version, botocore_file, intake_file = docker(*command, "-c", where).split()
    assert version.startswith(LAMBDA_RUNTIME.removeprefix("python") + ".")
    assert botocore_version == pinned("botocore").split("==")[1]
    assert botocore_file.startswith("/var/task/") and intake_file.startswith("/var/task/glueline/")

    run = subprocess.run(
        ["docker", *command, *PYTEST, *UNIT_TESTS],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    here = subprocess.run(  # the same tests, as collected on this machine: none may be lost on the way
        [sys.executable, *PYTEST, "--collect-only", *UNIT_TESTS],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    collected = re.search(r"(\d+) tests? collected", here.stdout)
    assert collected, here.stdout[-2000:]
    summary = run.stdout.strip().splitlines()[-1]
    assert re.match(rf"{collected.group(1)} passed in ", summary), run.stdout[-2000:]
