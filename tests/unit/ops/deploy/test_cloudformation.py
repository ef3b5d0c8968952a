"""``glueline package --format cloudformation``: the desired state as a template that AWS's own rules
(cfn-lint, pinned) find nothing wrong with. No check is ignored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from glueline.ops.database import Database, Origin
from glueline.ops.deploy import cloudformation
from glueline.ops.deploy.desired import DB_SECURITY_GROUP_DESCRIPTION, GLUE_SECURITY_GROUP_DESCRIPTION
from glueline.settings import Settings
from glueline.shared.dbsecret import DbConnection

GLUELINE = str(Path(sys.executable).with_name("glueline"))
DB = DbConnection.from_url("postgresql://glueline@db.example.internal:5432/bank")
DATABASE = Database(Origin.GIVEN, DB, DB)
REGIONS = ["us-east-1", "eu-west-1", "ap-southeast-2"]


def findings(template: dict) -> list[str]:
    return [str(match) for match in lint(json.dumps(template), config=ManualArgs(regions=REGIONS))]


@pytest.mark.parametrize(
    "overrides",
    [{}, {"vpc_endpoints": False}, {"glue_security_group_id": "sg-0123456789abcdef0", "glue_version": "4.0"}],
    ids=["default", "no-endpoints", "given-group"],
)
def test_the_template_passes_cfn_lint(overrides):
    settings = Settings(_env_file=None, **overrides)
    assert findings(cloudformation.template(settings, DATABASE)) == []


def test_security_group_descriptions_are_what_ec2_accepts():
    """Emulators accept any description; EC2 refuses an apostrophe (among others)."""
    groups = {
        f"Group{i}": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": description}}
        for i, description in enumerate([GLUE_SECURITY_GROUP_DESCRIPTION, DB_SECURITY_GROUP_DESCRIPTION])
    }
    assert findings({"AWSTemplateFormatVersion": "2010-09-09", "Resources": groups}) == []
    wrong = {"Bad": {"Type": "AWS::EC2::SecurityGroup", "Properties": {"GroupDescription": "Glue's workers"}}}
    assert findings({"AWSTemplateFormatVersion": "2010-09-09", "Resources": wrong})  # the check works


def test_the_template_is_the_desired_state_deploy_converges_to():
    template = cloudformation.template(Settings(_env_file=None), DATABASE)
    resources = template["Resources"]
    job = resources["GlueJob"]["Properties"]
    assert set(job["DefaultArguments"]) == {"--FILE_IDS"}
    assert job["NonOverridableArguments"]["--TARGET"] == "db.example.internal:5432/bank/public.transactions"
    assert resources["Function"]["Properties"]["Runtime"] == "python3.13"
    assert {r["Type"] for logical, r in resources.items() if not logical.startswith("Fn::ForEach::")} >= {
        "AWS::S3::Bucket",
        "AWS::DynamoDB::Table",
        "AWS::SecretsManager::Secret",
        "AWS::IAM::Role",
        "AWS::Glue::Connection",
        "AWS::Glue::Job",
        "AWS::Lambda::Function",
        "AWS::Events::Rule",
        "AWS::Lambda::Permission",
    }
    secret = resources["DbSecret"]["Properties"]["SecretString"]["Fn::Sub"]
    assert json.loads(secret.replace("${DbPassword}", "p"))["password"] == "p"
    assert template["Parameters"]["DbPassword"]["NoEcho"] is True


def test_glueline_package_writes_a_template_and_the_code_it_reads(tmp_path):
    """As a user runs it: the template cfn-lint passes (its command line), and beside it the code at the
    keys the template names; the URL's password is never written."""
    out, artifacts = tmp_path / "template.json", tmp_path / "artifacts"
    url = "postgresql://glueline:s3cr3t-pw@db.example.internal:5432/bank"
    result = subprocess.run(
        [
            GLUELINE,
            "package",
            "--format",
            "cloudformation",
            "--db-url",
            url,
            "--out",
            str(out),
            "--artifacts",
            str(artifacts),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    assert "s3cr3t-pw" not in out.read_text() + result.stdout + result.stderr
    lint_run = subprocess.run(
        [str(Path(sys.executable).with_name("cfn-lint")), "--regions", *REGIONS, "--", str(out)],
        capture_output=True,
        text=True,
    )
    assert lint_run.returncode == 0, lint_run.stdout + lint_run.stderr
    template = json.loads(out.read_text())
    function = template["Resources"]["Function"]["Properties"]
    assert (artifacts / function["Code"]["S3Key"]).is_file()
    job = template["Resources"]["GlueJob"]["Properties"]
    for argument in ("--scriptLocation", "--extra-py-files", "--additional-python-modules"):
        for url in job["NonOverridableArguments"][argument]["Fn::Sub"].split(","):
            assert (artifacts / url.removeprefix("s3://${ArtifactsBucket}/")).is_file(), url
