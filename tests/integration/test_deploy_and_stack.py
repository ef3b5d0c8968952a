"""Deploy converges and repeats as a no-op; policies are least privilege; the stack CLI starts/stops."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import psycopg
import pytest

from glueline.shared.audit import Status
from glueline.shared.dbsecret import DbConnection

from .harness import GLUELINE, SAMPLES, user_shell


def test_a_second_deploy_changes_nothing(glueline_stack):
    changes = glueline_stack.deploy()
    assert changes and {c.action for c in changes} == {"unchanged"}, [c for c in changes if c.action != "unchanged"]


@pytest.mark.embedded_only  # the roles deploy writes: the same desired state on both stacks
def test_roles_are_least_privilege(glueline_stack):
    iam = glueline_stack.client("iam")
    net = glueline_stack.deployer.facts().network
    owned = (
        glueline_stack.bucket,
        "S3_Audit_1",
        "ETL_Lambda_Function",
        "ETL_Job_to_RDS",
        "glueline/rds",
        "/aws-glue/",
        ":catalog",
        "connection/glueline-network",
        ":glueline-lambda-failures",  # the Lambda's on-failure destination
        ":network-interface/*",  # Glue's workers' interfaces (created by Glue, tagged aws-glue-service-resource)
        f":subnet/{net.subnet_id}",
        f":security-group/{net.glue_group}",
    )
    for role in ("LambdaS3ExecutionRole", "GlueServiceRole", "GlueDbLoginRole"):
        assert iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"] == []
        for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
            document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
            document = json.loads(document) if isinstance(document, str) else document
            for statement in document["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                assert all("*" not in action for action in actions), (role, actions)
                if statement["Resource"] == ["*"]:  # EC2's Describe actions take no resource
                    assert all(action.startswith("ec2:Describe") for action in actions), (role, actions)
                    continue
                for resource in statement["Resource"]:
                    assert any(mark in resource for mark in owned), (role, resource)


def test_no_secret_in_function_environment_job_arguments_or_audit(glueline_stack):
    password = glueline_stack.db.password
    assert len(password) >= 16
    function = glueline_stack.client("lambda").get_function(FunctionName="ETL_Lambda_Function")["Configuration"]
    job = glueline_stack.client("glue").get_job(JobName="ETL_Job_to_RDS")["Job"]
    assert password not in json.dumps(function["Environment"]) and password not in json.dumps(job, default=str)
    assert job["NonOverridableArguments"]["--DB_SECRET_ID"] == "glueline/rds"


def test_the_job_logs_in_as_its_own_login_and_only_the_login_job_reads_the_master(glueline_stack):
    """The stack's database gets what an RDS database deploy creates gets: the ETL's own login, made by the
    login job (a Glue run on the stack's runner, with the one role that reads the master's secret); the
    ETL's secret holds that login, its role reads no other secret, and its loads are that login's."""
    p = glueline_stack
    sm = p.client("secretsmanager")
    stored = DbConnection.from_secret(sm.get_secret_value(SecretId="glueline/rds")["SecretString"])
    master = p.target.database.connection
    assert (stored.username, stored.master_secret) == ("glueline_etl", "glueline/rds-master")
    assert stored.target("") == master.target("") and stored.password not in ("", master.password)
    masters = json.loads(sm.get_secret_value(SecretId="glueline/rds-master")["SecretString"])
    assert masters == {"username": master.username, "password": master.password}
    readers = {
        role: json.dumps(p.client("iam").get_role_policy(RoleName=role, PolicyName=f"{role}Policy")["PolicyDocument"])
        for role in ("GlueServiceRole", "GlueDbLoginRole")
    }
    assert (
        "glueline/rds-master" not in readers["GlueServiceRole"] and "glueline/rds-master" in readers["GlueDbLoginRole"]
    )
    (made,) = p.client("glue").get_job_runs(JobName="ETL_DB_Login")["JobRuns"][:1]
    assert made["JobRunState"] == "SUCCEEDED"
    stages = sm.describe_secret(SecretId="glueline/rds")["VersionIdsToStages"]
    assert "AWSPENDING" not in str(stages)  # nothing left waiting for the login job
    as_the_job = dataclasses.replace(p.db, username=stored.username, password=stored.password)  # reached from here
    with psycopg.connect(**as_the_job.connect_kwargs()) as job:  # the password works; nothing more
        assert job.execute("SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user").fetchone() == (
            False,
            False,
        )
    assert p.query(OWNER) == [("glueline_etl",)]


@pytest.mark.embedded_only
def test_glueline_up_and_down(tmp_path):
    state, env = user_shell("up")
    try:
        up = subprocess.run(
            [GLUELINE, "up", "-d", "--stack", "embedded"], capture_output=True, text=True, env=env, timeout=180
        )
        assert up.returncode == 0, up.stdout + up.stderr
        url = next(word for word in up.stdout.split() if word.startswith("postgresql://"))
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('public.transactions') IS NOT NULL").fetchone()[0]
        assert "AWS_CONFIG_FILE=" in up.stdout and (state / "aws-config").exists()
        status = subprocess.run([GLUELINE, "status", "--json"], capture_output=True, text=True, env=env, timeout=60)
        assert status.returncode == 0 and json.loads(status.stdout)["files"] == []
        stack = json.loads((state / "stack.json").read_text())
    finally:
        down = subprocess.run([GLUELINE, "down"], capture_output=True, text=True, env=env, timeout=120)
    assert down.returncode == 0 and "Stopped" in down.stdout
    for pid in stack["pids"].values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    again = subprocess.run([GLUELINE, "status"], capture_output=True, text=True, env=env, timeout=60)
    assert again.returncode == 2 and "glueline up" in again.stderr


@pytest.mark.embedded_only
def test_glueline_up_in_the_foreground_serves_the_console_until_stopped():
    """`glueline up` (not detached) prints the console's address and serves it beside the stack; SIGTERM
    stops both, and nothing it started is left."""
    state, env = user_shell("up-console")
    process = subprocess.Popen(
        [GLUELINE, "up", "--stack", "embedded"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    lines: list[str] = []
    try:
        while not any("Running: press Ctrl-C" in line for line in lines) and process.poll() is None:
            lines.append(process.stdout.readline())
        url = next(re.search(r"http://127\.0\.0\.1:\d+/", line) for line in lines if line.startswith("Console: "))
        with urllib.request.urlopen(url.group(0), timeout=60) as page:
            assert page.status == 200 and "embedded stack" in page.read().decode()
        stack = json.loads((state / "stack.json").read_text())
    finally:
        process.terminate()
        rest, _ = process.communicate(timeout=120)
    assert process.returncode == 0 and "Stopped." in rest, "".join(lines) + rest
    for pid in stack["pids"].values():
        assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    with pytest.raises(OSError):
        urllib.request.urlopen(url.group(0), timeout=5)
    shutil.rmtree(state, ignore_errors=True)


@pytest.mark.embedded_only
@pytest.mark.skipif(os.geteuid() != 0, reason="only root runs PostgreSQL as another user")
def test_a_state_directory_postgresql_cannot_enter_still_works(tmp_path):
    """Root in a private home directory (mode 0700): the database goes where its user can reach it,
    the commands say where, and up/down/clean keep working with it."""
    home = Path(tempfile.mkdtemp(prefix="glueline-home-"))
    os.chmod(home, 0o700)
    state = home / "project" / ".glueline"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["GLUELINE_STATE_DIR"] = str(state)

    def run(*args):
        return subprocess.run([GLUELINE, *args], capture_output=True, text=True, env=env, timeout=180)

    try:
        up = run("up", "-d", "--stack", "embedded")
        assert up.returncode == 0, up.stdout + up.stderr
        database = Path((state / "postgres.location").read_text().strip())
        assert not database.is_relative_to(home) and (database / "data" / "PG_VERSION").exists()
        assert str(database) in up.stdout  # it says where the database is
        url = next(word for word in up.stdout.split() if word.startswith("postgresql://"))
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (x int)")
        assert run("down").returncode == 0
        again = run("up", "-d", "--no-deploy", "--stack", "embedded")
        assert again.returncode == 0, again.stdout + again.stderr
        url = next(word for word in again.stdout.split() if word.startswith("postgresql://"))
        with psycopg.connect(url) as conn:
            assert conn.execute("SELECT to_regclass('public.kept') IS NOT NULL").fetchone()[0]  # data survived
    finally:
        cleaned = run("clean")
        shutil.rmtree(home, ignore_errors=True)
    assert cleaned.returncode == 0 and str(database) in cleaned.stdout
    assert not database.exists() and not state.exists()


@pytest.mark.embedded_only
def test_an_installed_wheel_bootstraps_the_running_pipeline_unchanged(glueline_stack, tmp_path):
    """glueline built as a wheel and installed elsewhere deploys the same artifacts as this checkout:
    against the pipeline this checkout deployed, its bootstrap changes nothing."""
    project = Path(__file__).resolve().parents[2]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", tmp_path, project],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("glueline-*.whl")
    installed = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", installed, wheel],
        check=True,
        capture_output=True,
    )
    site_packages = next(p for p in sys.path if p.endswith("site-packages"))
    code = (
        f"import sys; sys.path[:0] = {[str(installed), site_packages]!r}\n"
        "from glueline.ops.cli import main\n"
        "sys.argv = ['glueline', 'bootstrap']\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    env["GLUELINE_STATE_DIR"] = str(glueline_stack.state_dir)
    result = subprocess.run(
        [sys.executable, "-I", "-S", "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Nothing changed: every resource was already as wanted." in result.stdout, result.stdout


@pytest.mark.embedded_only
def test_make_run_twice_redelivers_the_same_files(tmp_path):
    """`glueline run` with no stack running starts one and stops it; run again, the same samples are
    the same files for the same database (its port is kept): redeliveries, no second load."""
    state, env = user_shell("twice")
    try:
        reports = []
        for _ in range(2):
            result = subprocess.run([GLUELINE, "run", "--json"], capture_output=True, text=True, env=env, timeout=600)
            assert result.returncode == 0, result.stderr
            reports.append(json.loads(result.stdout))
    finally:
        subprocess.run([GLUELINE, "clean"], capture_output=True, env=env, timeout=120)
    first, second = reports
    assert second["target"] == first["target"]
    assert [f["file_id"] for f in second["files"]] == [f["file_id"] for f in first["files"]]
    assert [f["redeliveries"] for f in second["files"]] == [1, 1, 1]
    assert second["table_rows"] == first["table_rows"] == first["totals"]["rows_loaded"]


@pytest.mark.embedded_only
def test_a_killed_glueline_run_stops_the_stack_it_started(tmp_path):
    """SIGTERM (a `kill`, a CI timeout) in the middle of `glueline run`: no process of its stack is left."""
    state, env = user_shell("killed")
    run = subprocess.Popen([GLUELINE, "run"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    try:
        for line in run.stdout:  # the stack is up and the files are on their way
            if line.startswith("uploaded"):
                break
        stack = json.loads((state / "stack.json").read_text())
        run.terminate()
        assert run.wait(timeout=120) != 0
        for pid in stack["pids"].values():
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        assert not Path(stack["postgres_dir"], "data", "postmaster.pid").exists()
        assert not (state / "stack.json").exists()
    finally:
        run.kill()
        subprocess.run([GLUELINE, "clean"], capture_output=True, env=env, timeout=120)


@pytest.mark.embedded_only
def test_glueline_up_never_prints_an_external_databases_password(tmp_path):
    state, env = user_shell("external")
    env["GLUELINE_DB_URL"] = "postgresql://etl:s3cr3t-pw@db.example:5432/bank"
    try:
        up = subprocess.run(
            [GLUELINE, "up", "-d", "--stack", "embedded"], capture_output=True, text=True, env=env, timeout=300
        )
        assert up.returncode == 0, up.stdout + up.stderr
        assert "postgresql://etl@db.example:5432/bank" in up.stdout
        assert "s3cr3t-pw" not in up.stdout + up.stderr
    finally:
        subprocess.run([GLUELINE, "clean"], capture_output=True, env=env, timeout=120)


def test_a_durable_emulator_keeps_what_it_acknowledged_across_a_kill(tmp_path, monkeypatch):
    """The soak's emulator (GLUELINE_EMULATOR_DURABLE): kill -9, and the audit item written just before,
    the bucket's EventBridge notification (without it no upload raises an event again; found by the soak)
    and the objects are all there. MiniStack alone saves them only on a clean shutdown."""
    from glueline.local.aws_config import apply_aws_env
    from glueline.local.embedded.stack import EmbeddedStack
    from glueline.settings import Settings

    stack = EmbeddedStack(Settings(state_dir=tmp_path, emulator_durable=True))
    running = stack.start(with_postgres=False)
    try:
        for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_GLUE"):
            monkeypatch.delenv(name, raising=False)
        environ = dict(os.environ)
        apply_aws_env(running.aws_env(), environ)
        for name, value in environ.items():
            monkeypatch.setenv(name, value)
        import boto3

        s3, ddb = boto3.client("s3"), boto3.client("dynamodb")
        s3.create_bucket(Bucket="kept")
        s3.put_bucket_notification_configuration(
            Bucket="kept", NotificationConfiguration={"EventBridgeConfiguration": {}}
        )
        s3.put_object(Bucket="kept", Key="source/a.csv", Body=b"x")
        ddb.create_table(
            TableName="kept",
            KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        ddb.put_item(TableName="kept", Item={"k": {"S": "last"}})
        running.restart_emulator(kill=True)
        assert ddb.get_item(TableName="kept", Key={"k": {"S": "last"}}).get("Item") == {"k": {"S": "last"}}
        assert "EventBridgeConfiguration" in s3.get_bucket_notification_configuration(Bucket="kept")
        assert [o["Key"] for o in s3.list_objects_v2(Bucket="kept")["Contents"]] == ["source/a.csv"]
    finally:
        stack.stop()


@pytest.mark.embedded_only  # the login job and the secret's stages: the same code on both stacks
def test_a_new_login_is_made_before_the_etl_uses_it(glueline):
    """Deploy writes a new login to the job's secret as its AWSPENDING value, the login job makes it from
    there, and only then does it become the value the ETL reads: the ETL never holds a login that does not
    exist yet. Here, another login's name for a while (a new password, a new role), and back."""
    p = glueline
    sm = p.client("secretsmanager")
    with p.deployed_with(db_login="glueline_etl_two"):
        stored = DbConnection.from_secret(sm.get_secret_value(SecretId="glueline/rds")["SecretString"])
        assert stored.username == "glueline_etl_two"
        assert "AWSPENDING" not in str(sm.describe_secret(SecretId="glueline/rds")["VersionIdsToStages"])
        (loaded,) = p.wait(p.upload(SAMPLES / "transactions_2024-07-14.csv"))
        assert loaded.status == Status.COMPLETED, loaded.error_message
        assert p.query(OWNER) == [("glueline_etl_two",)]  # the tables handed to the login the ETL uses
    stored = DbConnection.from_secret(sm.get_secret_value(SecretId="glueline/rds")["SecretString"])
    assert stored.username == "glueline_etl" and p.query(OWNER) == [("glueline_etl",)]


OWNER = "SELECT tableowner FROM pg_tables WHERE schemaname = 'public' AND tablename = 'transactions'"
