"""``glueline package --format cloudformation``: the desired state as a template that AWS's own rules
(cfn-lint, pinned) find nothing wrong with. No check is ignored."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cfnlint.api import ManualArgs, lint

from glueline.ops.database import Database, Origin, known_database
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
    for argument in (
        "--scriptLocation",
        "--extra-py-files",
        "--extra-jars",
        "--extra-files",
        "--additional-python-modules",
    ):
        for url in job["NonOverridableArguments"][argument]["Fn::Sub"].split(","):
            assert (artifacts / url.removeprefix("s3://${ArtifactsBucket}/")).is_file(), url


def test_the_template_pins_what_deploy_pins_and_names_no_partition():
    """A run started in the stack cannot choose code either; every ARN is of the stack's partition."""
    settings = Settings(_env_file=None)
    template = cloudformation.template(settings, DATABASE)
    pinned = template["Resources"]["GlueJob"]["Properties"]["NonOverridableArguments"]
    assert set(pinned) == set(cloudformation.desired(settings, DATABASE).glue_job["NonOverridableArguments"])
    assert (
        pinned["--extra-jars"]
        == pinned["--extra-py-files"]
        == {"Fn::Sub": "s3://${ArtifactsBucket}/glueline/glueline-lib.zip"}
    )
    assert "arn:aws:" not in json.dumps(template)


def test_an_rds_database_is_checked_against_the_ca_bundle_the_artifacts_carry(tmp_path):
    """The template stores what deploy stores for an RDS host (verify-full against RDS's CA bundle), and
    the bundle the secret names is among the artifacts ``package --artifacts`` writes."""
    bundle = tmp_path / "rds-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\nnot a real one\n-----END CERTIFICATE-----\n")
    url = "postgresql://etl@bank.c0ffee123456.eu-west-1.rds.amazonaws.com:5432/bank"
    settings = Settings(_env_file=None, db_url=url, db_ca_bundle=bundle)
    rds = known_database(settings, None, None)
    secret = cloudformation.template(settings, rds)["Resources"]["DbSecret"]["Properties"]["SecretString"]["Fn::Sub"]
    stored = json.loads(secret.replace("${DbPassword}", "p"))
    assert (stored["sslmode"], stored["sslrootcert"]) == (
        "verify-full",
        "s3://${ArtifactsBucket}/glueline/rds-ca-bundle.pem",
    )
    written = cloudformation.write_artifacts(settings, rds, tmp_path / "artifacts")
    key = stored["sslrootcert"].removeprefix("s3://${ArtifactsBucket}/")
    assert key in written and (tmp_path / "artifacts" / key).read_text() == bundle.read_text()
