"""The ``glueline`` command line."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Annotated

import boto3
import typer
from botocore.config import Config
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from glueline.console import LOOPBACK, serve, serving
from glueline.console.app import create_app
from glueline.console.data import ConsoleData
from glueline.local.compose import ComposeInfo, ComposeStack, engine_answers, images, project_dir, running_compose
from glueline.local.runner.history import block_stop_signals, until_stopped
from glueline.local.samples import write_file
from glueline.local.spark_history import stack_history_server
from glueline.local.stack import EmbeddedStack, StackError, StackInfo, termination_raises
from glueline.ops import packaging, report
from glueline.ops.deploy import cloudformation
from glueline.ops.deploy.aws import BootstrapError
from glueline.ops.deploy.executor import Executor, describe
from glueline.ops.deploy.models import Change
from glueline.ops.deploy.planner import Bootstrap, refusals
from glueline.ops.deploy.sweeper import Sweeper
from glueline.ops.environment import Environment, NoEnvironmentError, environment
from glueline.ops.uploads import InputError, collect_files, count_rows, placeholder, upload, wait_for_outcomes
from glueline.settings import Settings
from glueline.shared import gluerun
from glueline.shared.audit import AuditQuery, AuditTable, Status, to_timestamp
from glueline.shared.dbsecret import DbConnection
from glueline.shared.events import scheduled_event
from glueline.shared.timeouts import aws_client

app = typer.Typer(
    help="glueline: an S3 → Lambda → Glue → PostgreSQL batch ETL pipeline, the same code locally and on AWS.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
# Wide enough for the report when piped (rich would assume 80 columns).
out = Console(width=None if Console().is_terminal else 200)
err = Console(stderr=True, width=None if Console(stderr=True).is_terminal else 200)

DbUrl = Annotated[
    str | None,
    typer.Option("--db-url", help="PostgreSQL to load into (postgresql://user:password@host:port/db)"),
]
AsJson = Annotated[bool, typer.Option("--json", help="print JSON instead of a table")]


def _settings(db_url: str | None = None, create_database: bool = False) -> Settings:
    settings = Settings()
    if db_url:
        settings.db_url = db_url
    if create_database:
        settings.create_database = True
    return settings


def _fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}")
    raise typer.Exit(code)


Profile = Annotated[
    str | None,
    typer.Option("--profile", help="AWS profile (default: the standard AWS resolution: AWS_PROFILE, …)"),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")]
Debug = Annotated[
    bool,
    typer.Option(
        "--debug",
        help="the Glue run's driver waits for a debugger (debugpy) on 127.0.0.1 (address printed); a local stack "
        "(.vscode/launch.json maps the repository onto the run's code)",
    ),
]
DebugPort = Annotated[
    int | None,
    typer.Option(
        "--debug-port",
        help="where a --debug run waits for the debugger (default 5678; compose: the port the stack published)",
    ),
]
SparkUi = Annotated[
    bool,
    typer.Option(
        "--spark-ui",
        help="Glue's Spark UI for the runs: on 127.0.0.1 while a run is active (address printed), its event log "
        "kept for `glueline spark-history`",
    ),
]
_ACTION_COLOR = {
    "create": "green",
    "created": "green",
    "update": "yellow",
    "updated": "yellow",
    "adopt": "magenta",
    "adopted": "magenta",
    "conflict": "bold red",
    "deleted": "red",
}
Adopt = Annotated[
    bool,
    typer.Option(
        "--adopt",
        help="take over resources of this stack's names that no glueline stack tagged (plan lists them as adopt)",
    ),
]


CreateDatabase = Annotated[
    bool,
    typer.Option(
        "--create-database",
        help="create the database: RDS PostgreSQL, private, encrypted, deletion protection, password managed by RDS",
    ),
]


def _database(settings: Settings, env, session: boto3.Session):
    """The database to load into: --db-url, the embedded one, the one the deployed secret names, or
    (None) the one deploy creates with --create-database."""
    if env.db is not None:
        return env.db
    secrets = aws_client("secretsmanager", session)
    try:
        return DbConnection.from_secrets_manager(secrets, settings.db_secret_name)
    except secrets.exceptions.ResourceNotFoundException:
        if settings.create_database:
            return None
        _fail(
            f"no database: pass --db-url once (it is stored in the secret {settings.db_secret_name}, "
            "never printed), set GLUELINE_DB_URL, or let deploy create one (--create-database)"
        )


def _show_changes(changes: list[Change], title: str, as_json: bool, calls: bool = False) -> None:
    """A table of changes; ``calls``: each change's API calls under it (secrets shown by size only)."""
    if as_json:
        out.print_json(
            json.dumps([c.as_json() | ({"calls": [describe(s) for s in c.steps]} if calls else {}) for c in changes])
        )
        return
    table = Table(title=title, title_justify="left")
    for column in ("Resource", "Type", "Action", "Changed", "Detail"):
        table.add_column(column)
    for change in changes:
        color = _ACTION_COLOR.get(change.action, "dim")
        table.add_row(
            escape(change.resource),
            change.type,
            f"[{color}]{change.action}[/]",
            ", ".join(change.changed),
            escape(change.detail),
        )
    out.print(table)
    if calls:
        for change in changes:
            if change.steps:
                out.print(f"\n[bold]{escape(change.resource)}[/] ({change.action})")
                for step in change.steps:
                    out.print(f"  {escape(describe(step))}", soft_wrap=True, highlight=False)


def _progress(line: str) -> None:
    """A long step's progress (a waited resource's state changes), on stderr: stdout may be JSON."""
    err.print(escape(line), highlight=False)


def _deployer(
    settings: Settings, env, log=lambda change: None, adopt: bool = False, account: str | None = None
) -> Bootstrap:
    """Deploy's planner for the environment (with what a local stack cannot do as AWS does); ``account``:
    as ``_confirm_account`` found it, else looked up."""
    session = boto3.Session()
    settings = env.deploy_settings(settings)
    database = _database(settings, env, session)
    return Bootstrap(
        settings,
        database,
        session,
        log=log,
        function_glue_endpoint=env.function_glue_endpoint,
        adopt=adopt,
        account=account,
        progress=_progress,
    )


def _bootstrap(
    settings: Settings, env, quiet: bool, account: str | None = None, as_json: bool = False, adopt: bool = False
) -> Bootstrap:
    changes: list[Change] = []
    boot = _deployer(settings, env, changes.append, adopt, account)
    boot.run()
    if quiet:
        counts: dict[str, int] = {}
        for change in changes:
            counts[change.action] = counts.get(change.action, 0) + 1
        err.print("bootstrap: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())))
        return boot
    _show_changes(changes, f"deploy ({env.description})", as_json)
    if not as_json and all(c.action == "unchanged" for c in changes):
        out.print("Nothing changed: every resource was already as wanted.")
    return boot


@contextmanager
def _job_options(
    settings: Settings, env, account: str | None, debug: bool, debug_port: int | None, spark_ui: bool
) -> Iterator[Settings]:
    """--debug and --spark-ui: the job deployed with them for the runs this command causes
    (glueline.local.runner.debug, Glue's --enable-spark-ui), and deployed back as it was when it ends, so
    a later upload's run neither waits for a debugger nor keeps a UI."""
    if not (debug or spark_ui):
        yield settings
        return
    if not isinstance(env.stack, StackInfo | ComposeInfo):
        _fail("--debug and --spark-ui serve runs of a local stack's Glue runner (glueline up -d)")
    try:
        loop = env.stack.inner_loop(settings, debug_port=debug_port)
    except StackError as error:
        _fail(str(error))
    options: dict[str, object] = {"spark_ui": spark_ui}
    if debug:
        options["glue_debug"] = loop.debug_listen
        err.print(
            f"[bold]debug[/]: each Glue run waits for a debugger to attach at {loop.debug_attach} "
            f"(VS Code: .vscode/launch.json, '{loop.launch_config}'; the run's code is at {loop.debug_root})"
        )
    if spark_ui:
        err.print(
            f"[bold]Spark UI[/]: {loop.spark_ui_url} while a run is active"
            + (" (the next port when taken)" if loop.spark_ui_moves else "")
            + "; finished runs: glueline spark-history"
        )
    _bootstrap(settings.model_copy(update=options), env, quiet=True, account=account)
    try:
        yield settings.model_copy(update=options)
    finally:
        _bootstrap(settings, env, quiet=True, account=account)


@contextmanager
def _environment(settings: Settings) -> Iterator:
    """The environment a command talks to; none configured and none running is a clear error (exit 2)."""
    try:
        with environment(settings) as env:
            yield env
    except NoEnvironmentError as error:
        _fail(str(error))


def _use_profile(profile: str | None) -> None:
    """--profile selects the AWS configuration exactly as AWS_PROFILE does; nothing else changes."""
    if profile:
        os.environ["AWS_PROFILE"] = profile


def _print_stack(env, settings: Settings) -> None:
    info, state = env.stack, Path(settings.state_dir).absolute()
    emulator = f"{info.emulator}, compose project {info.project}" if isinstance(info, ComposeInfo) else "MiniStack"
    out.print(f"[bold]AWS emulator[/] ({emulator})  {info.emulator_url}")
    out.print(f"[bold]Glue runner[/]  {info.glue_url}")
    db = env.reachable_db
    if db is not None:
        # A local stack's password is a local, generated one; an external database's is a secret.
        url = db.url(with_password=settings.db_url is None)
        out.print(f"[bold]PostgreSQL[/]   {escape(url)}")
    if getattr(info, "postgres_dir", None):
        out.print(f"[bold]PostgreSQL data[/] {info.postgres_dir}")
    logs = "`glueline logs` (make logs)" if isinstance(info, ComposeInfo) else str(state / "logs")
    out.print(f"[bold]logs[/]         {logs}")
    out.print(
        f"AWS CLI: [cyan]export AWS_CONFIG_FILE={state / 'aws-config'} AWS_PROFILE=glueline[/] then e.g. `aws s3 ls`, "
        "`aws glue get-job-runs --job-name ETL_Job_to_RDS`"
    )


StackChoice = Annotated[
    str,
    typer.Option(
        "--stack",
        help="compose (docker-compose.yml), embedded (processes), or auto: compose when a Docker engine answers",
    ),
]


def _start(settings: Settings, stack_choice: str):
    """Start the chosen stack; the stack object (to stop it) and how to describe it."""
    if stack_choice not in ("auto", "compose", "embedded"):
        _fail("--stack is auto, compose or embedded")
    if stack_choice == "compose" or (stack_choice == "auto" and engine_answers()):
        stack = ComposeStack(settings)
        stack.start(log=lambda message: err.print(f"[dim]{escape(message)}[/]"))
        return stack
    stack = EmbeddedStack(settings)
    stack.start(with_postgres=settings.db_url is None)
    return stack


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="start in the background and return")] = False,
    deploy: Annotated[bool, typer.Option("--bootstrap/--no-bootstrap", help="deploy the pipeline onto it")] = True,
    stack_choice: StackChoice = "auto",
) -> None:
    """Start a local stack (emulator, Glue runner, PostgreSQL) and deploy the pipeline onto it."""
    settings = _settings()
    if running_compose(settings) or EmbeddedStack(settings).running():
        _fail(f"a stack of {settings.state_dir} is already running: `glueline down` stops it")
    try:
        stack = _start(settings, stack_choice)
    except StackError as error:
        _fail(str(error))
    try:
        with environment(settings) as env:
            _print_stack(env, settings)
            if deploy:
                boot = _bootstrap(settings, env, quiet=True)
                out.print(f"Pipeline deployed: drop CSV files into [cyan]s3://{boot.bucket}/source/[/]")
            if detach:
                out.print("Console: `glueline console` (make console) shows its files, runs and data quality")
                out.print("Running in the background: `glueline down` stops it.")
                return
            block_stop_signals()  # before the console's thread starts
            with serving(create_app(_console_data(settings, env), env.description)) as url:
                out.print(f"Console: [cyan]{url}[/] (files, runs and data quality; 127.0.0.1 only)")
                out.print("Running: press Ctrl-C to stop.")
                until_stopped()
    except BaseException:
        stack.stop()
        raise
    stack.stop()
    out.print("Stopped.")


def _stacks(settings: Settings) -> list:
    """The state directory's stacks: the compose one where it has one, and the embedded one."""
    stacks: list = [EmbeddedStack(settings)]
    if (Path(settings.state_dir) / "compose.json").exists() or (Path(settings.state_dir) / "compose").exists():
        stacks.insert(0, ComposeStack(settings))
    return stacks


@app.command()
def down() -> None:
    """Stop the local stack (the database's data and the emulator's state stay for the next `up`)."""
    stopped = [stack.stop() for stack in _stacks(_settings())]
    out.print("Stopped." if any(stopped) else "No stack was running.")


@app.command()
def clean() -> None:
    """Stop the local stack and delete its state: emulator data, logs and the database."""
    deleted = [str(path) for stack in _stacks(_settings()) for path in stack.clean()]
    out.print("Deleted " + ", ".join(deleted) if deleted else "Nothing to delete.")


@app.command()
def logs(
    run_id: Annotated[
        str | None, typer.Option("--run", help="a Glue job run's output instead (its JobRunId, as status shows)")
    ] = None,
    follow: Annotated[
        bool | None,
        typer.Option("--follow/--no-follow", help="keep printing (default: yes for the stack, no for --run)"),
    ] = None,
    profile: Profile = None,
) -> None:
    """The local stack's logs (every compose service's, or the embedded stack's log files), or with
    --run a Glue job run's output from CloudWatch Logs, on any stack or AWS (stdout, stderr in red)."""
    _use_profile(profile)
    settings = _settings()
    if run_id:
        _run_logs(settings, run_id, bool(follow))
        return
    follow = True if follow is None else follow
    composed = running_compose(settings)
    if composed is not None:
        raise typer.Exit(ComposeStack(settings).logs(follow))
    files = sorted((Path(settings.state_dir) / "logs").glob("*.log"))
    if not files:
        _fail(f"no logs in {Path(settings.state_dir) / 'logs'}: is a stack running (`glueline up -d`)?")
    os.execvp("tail", ["tail", "-n", "100", *(["-F"] if follow else []), *map(str, files)])


def _run_logs(settings: Settings, run_id: str, follow: bool) -> None:
    def write(group: str, line: str) -> None:
        (err if group == gluerun.ERROR_GROUP else out).print(
            escape(line), style="red" if group == gluerun.ERROR_GROUP else None, soft_wrap=True, highlight=False
        )

    with _environment(settings):
        session = boto3.Session()
        try:
            state = gluerun.show_run_logs(
                aws_client("logs", session), aws_client("glue", session), settings.glue_job, run_id, follow, write
            )
        except gluerun.RunNotFoundError as error:
            _fail(str(error))
    err.print(f"run {escape(run_id)}: {state}")


@app.command("images-offline")
def images_offline() -> None:
    """Build stand-ins for the compose stack's images from Debian packages and PyPI (no registry needed);
    later `up --stack compose` uses them."""
    try:
        recorded = images.build_offline_images(project_dir(), log=lambda message: err.print(escape(message)))
    except (images.ImageError, StackError) as error:
        _fail(str(error))
    for setting, value in recorded.items():
        out.print(f"{setting:16} {value}")
    out.print(f"recorded in {images.record_path()}: `up --stack compose` uses them; GLUELINE_* settings still win")


@app.command("bootstrap")
def bootstrap_command(db_url: DbUrl = None, yes: Yes = False, adopt: Adopt = False, profile: Profile = None) -> None:
    """Create or converge every AWS resource (deploy by the walkthrough's name; idempotent). Asks first
    on real AWS unless --yes."""
    _use_profile(profile)
    settings = _settings(db_url)
    with _environment(settings) as env:
        account = _confirm_account("bootstrap", yes)
        _bootstrap(settings, env, quiet=False, account=account, adopt=adopt)


@app.command()
def plan(
    db_url: DbUrl = None,
    profile: Profile = None,
    as_json: AsJson = False,
    create_database: CreateDatabase = False,
    calls: Annotated[bool, typer.Option("--calls", help="also list the API calls deploy would make")] = False,
) -> None:
    """What deploy would create, update, adopt or leave unchanged, resource by resource, and what it
    must not touch (conflict); changes nothing."""
    _use_profile(profile)
    settings = _settings(db_url, create_database)
    with _environment(settings) as env:
        changes = _deployer(settings, env).plan()
        _show_changes(changes, f"plan ({env.description})", as_json, calls)
        refused = refusals(changes, adopt=False, stack=settings.stack)
        if refused and not as_json:
            err.print(f"[yellow]{escape(refused)}[/]")


@app.command()
def deploy(
    db_url: DbUrl = None,
    profile: Profile = None,
    as_json: AsJson = False,
    yes: Yes = False,
    create_database: CreateDatabase = False,
    adopt: Adopt = False,
) -> None:
    """Create or converge every resource (the plan, applied). Asks first on real AWS unless --yes.
    Refuses resources another stack tagged, and untagged ones of its names unless --adopt."""
    _use_profile(profile)
    settings = _settings(db_url, create_database)
    with _environment(settings) as env:
        account = _confirm_account("deploy to", yes)
        _bootstrap(settings, env, quiet=False, account=account, as_json=as_json, adopt=adopt)


@app.command()
def package(
    db_url: DbUrl = None,
    template_format: Annotated[
        str, typer.Option("--format", help="what to write: cloudformation (a template of the whole stack)")
    ] = "cloudformation",
    out: Annotated[Path | None, typer.Option("--out", help="the template's file (default: standard output)")] = None,
    artifacts: Annotated[
        Path | None,
        typer.Option("--artifacts", help="write the pipeline's code here, to copy into ArtifactsBucket (aws s3 sync)"),
    ] = None,
) -> None:
    """The pipeline as a CloudFormation template: the same desired state deploy converges to. No AWS
    call; the database's password is the template's DbPassword parameter, never written."""
    if template_format != "cloudformation":
        _fail(f"--format must be cloudformation, not {template_format!r}")
    settings = _settings(db_url)
    if settings.create_database:
        _fail("--create-database is not in the template yet: deploy creates the RDS instance (glueline deploy)")
    if not settings.db_url:
        _fail("no database: pass --db-url (its password, if any, is left out: the template asks for DbPassword)")
    db = replace(DbConnection.from_url(settings.db_url), password="")
    if artifacts is not None:
        wheels = cloudformation.write_artifacts(settings, artifacts)
    else:
        wheels = [wheel.name for wheel in packaging.glue_wheels(settings.glue_version)]
    text = cloudformation.dumps(cloudformation.template(settings, db, wheels))
    if out is None:
        sys.stdout.write(text)
    else:
        out.write_text(text)
        err.print(f"wrote {out}" + (f" and the code under {artifacts}" if artifacts else ""))


@app.command()
def destroy(
    profile: Profile = None,
    as_json: AsJson = False,
    yes: Yes = False,
    delete_data: Annotated[
        bool,
        typer.Option(
            "--delete-data",
            help="also delete what holds data: the bucket and its objects, the audit table, the secret, "
            "a database deploy created",
        ),
    ] = False,
) -> None:
    """Remove what deploy created: each resource the settings name that carries this stack's tag, listed
    first and asked for (unless --yes); keeps what holds data unless --delete-data."""
    _use_profile(profile)
    settings = _settings()
    with _environment(settings):
        session = boto3.Session()
        account, region, endpoint = _account(session, settings.region)
        bucket = settings.bucket_name(account, region)
        deletions = Sweeper(settings, session, account, region, bucket).plan_destroy()
        listed = [Change(d.resource, d.type, d.action(delete_data), [], d.detail) for d in deletions]
        where = f"account {account}, region {region}, endpoint {endpoint}"
        doomed = [d for d in deletions if d.action(delete_data) == "delete"]
        if not as_json:
            _show_changes(listed, f"destroy would ({where})", as_json=False)
        if not doomed:
            err.print("nothing of this stack to delete")
        elif not yes and not typer.confirm(f"delete these {len(doomed)} resources?", err=True):
            raise typer.Exit(1)
        executor = Executor(lambda service: aws_client(service, session, region_name=region), progress=_progress)
        done = {"delete": "deleted", "keep": "kept", "left": "left"}
        changes = []
        for deletion in deletions:
            action = deletion.action(delete_data)
            if action == "delete":
                executor.execute(deletion.steps)
            changes.append(Change(deletion.resource, deletion.type, done[action], [], deletion.detail))
        _show_changes(changes, f"destroy ({where})", as_json)
        kept = [c.resource for c in changes if c.action == "kept"]
        if kept and not as_json:
            out.print(f"Kept (they hold data; --delete-data removes them): {', '.join(kept)}")


def _account(session: boto3.Session, default_region: str) -> tuple[str, str, str]:
    """The account, region and endpoint the session reaches (its region, else ``default_region``)."""
    sts = aws_client("sts", session)
    return sts.get_caller_identity()["Account"], session.region_name or default_region, sts.meta.endpoint_url


def _confirm_account(what: str, yes: bool) -> str:
    """Say which account, region and endpoint; on AWS itself (no custom endpoint) ask unless --yes:
    every command that writes to an account (deploy, bootstrap, run, trigger) calls this first, and
    uses the account it returns."""
    account, region, endpoint = _account(boto3.Session(), Settings().region)
    err.print(f"account {account}, region {region}, endpoint {endpoint}")
    on_aws = "amazonaws.com" in endpoint
    if on_aws and not yes and not typer.confirm(f"{what} AWS account {account}?", err=True):
        raise typer.Exit(1)
    return account


def _since(value: str | None) -> str | None:
    """--since: a date (midnight UTC) or an ISO 8601 moment (UTC unless it says otherwise), as our timestamps."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        _fail(f"--since {value!r}: give a date (2024-07-13) or a moment (2024-07-13T08:00, 2024-07-13T08:00+02:00)")
    return to_timestamp(moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc))


@app.command()
def status(
    as_json: AsJson = False,
    db_url: DbUrl = None,
    profile: Profile = None,
    status_filter: Annotated[
        str | None, typer.Option("--status", help="only files in this status (PENDING, PROCESSING, COMPLETED, …)")
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="only files uploaded at or after this date or moment")
    ] = None,
    file_name: Annotated[str | None, typer.Option("--file", help="only files whose name contains this")] = None,
) -> None:
    """The audit table (S3_Audit_1): every file, its status and counts (or those the filters select)."""
    _use_profile(profile)
    statuses = sorted(Status.ALL)
    if status_filter and status_filter.upper() not in statuses:
        _fail(f"--status {status_filter!r}: one of {', '.join(statuses)}")
    query = AuditQuery(
        status=status_filter.upper() if status_filter else None, since=_since(since), name=file_name or None
    )
    settings = _settings(db_url)
    with _environment(settings) as env:
        session = boto3.Session()
        records = AuditTable(aws_client("dynamodb", session), settings.audit_table).find(query)
        account = aws_client("sts", session).get_caller_identity()["Account"]
        bucket = settings.bucket_name(account, session.region_name or settings.region)
        target = env.db.target(str(settings.table)) if env.db else None
        rows = count_rows(env.reachable_db, settings.table)
        result = report.build(records, bucket, target, str(settings.table), rows)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        report.render(result, out, title=f"{settings.audit_table} ({env.description})")


@app.command()
def console(
    host: Annotated[
        str, typer.Option("--host", help="the address to listen on (default: this machine only)")
    ] = LOOPBACK,
    port: Annotated[int, typer.Option("--port", help="the port (default: a free one, printed)")] = 0,
    db_url: DbUrl = None,
    profile: Profile = None,
) -> None:
    """A web page of what the pipeline records: files by status, each file's lifecycle, counts and
    rejected rows, the Glue runs; two actions, each confirmed: retry a file, run the sweep. Ctrl-C stops it.
    With no stack running and no AWS configured, it starts the embedded stack (its state: what the last
    `glueline run` left) and stops it on exit."""
    _use_profile(profile)
    if host != LOOPBACK:
        err.print(
            f"[bold yellow]warning:[/] listening on {escape(host)}: anyone who reaches this address sees the "
            "pipeline's files and counts (the console has no login)"
        )
    settings = _settings(db_url)
    with environment(settings, start_stack=True) as env:
        announce = lambda url: out.print(f"glueline console on {url} ({env.description}); Ctrl-C stops it")  # noqa: E731
        serve(create_app(_console_data(settings, env), env.description), host, port, announce)


def _console_data(settings: Settings, env: Environment) -> ConsoleData:
    """What the console reads, from the environment ``env`` resolved (its clients, its database)."""
    session = boto3.Session()
    account, region, _ = _account(session, settings.region)
    lam = aws_client("lambda", session)

    def sweep() -> None:  # asynchronously, as EventBridge invokes it: the page does not wait for the run
        event = scheduled_event(account, region, settings.schedule_rule)
        lam.invoke(FunctionName=settings.lambda_function, InvocationType="Event", Payload=json.dumps(event).encode())

    return ConsoleData(
        AuditTable(aws_client("dynamodb", session), settings.audit_table),
        aws_client("glue", session),
        aws_client("s3", session),
        aws_client("logs", session),
        settings.glue_job,
        str(settings.table),
        lambda: count_rows(env.reachable_db, settings.table),
        sweep,
    )


@app.command()
def trigger(
    schedule: Annotated[bool, typer.Option("--schedule", help="send the daily scheduled event (08:00)")] = False,
    debug: Debug = False,
    debug_port: DebugPort = None,
    spark_ui: SparkUi = False,
    yes: Yes = False,
    profile: Profile = None,
) -> None:
    """Invoke ETL_Lambda_Function as EventBridge would. Asks first on real AWS unless --yes."""
    _use_profile(profile)
    if not schedule:
        _fail("say what to send: --schedule")
    settings = _settings()
    with _environment(settings) as env:
        account = _confirm_account("invoke the Lambda in", yes)
        session = boto3.Session()
        region = session.region_name or settings.region
        event = scheduled_event(account, region, settings.schedule_rule)
        # A synchronous invocation answers when the function ends: read for longer than its timeout.
        lam = aws_client("lambda", session, Config(read_timeout=settings.lambda_timeout_seconds + 30))
        with _job_options(settings, env, account, debug, debug_port, spark_ui):
            response = lam.invoke(FunctionName=settings.lambda_function, Payload=json.dumps(event).encode())
    payload = json.loads(response["Payload"].read() or b"null")
    print(json.dumps(payload, indent=2))
    if response.get("FunctionError"):
        raise typer.Exit(1)


@app.command()
def run(
    paths: Annotated[list[Path] | None, typer.Argument(help="CSV files or directories")] = None,
    db_url: DbUrl = None,
    as_json: AsJson = False,
    timeout: Annotated[float, typer.Option(help="seconds to wait for every file's outcome")] = 900.0,
    keep_up: Annotated[bool, typer.Option("--keep-up", help="leave a stack this command started running")] = False,
    watch: Annotated[
        bool,
        typer.Option(
            "--watch",
            help="then, whenever the job's script or library changes, deploy it and run the files again "
            "(under source/watch-N/: new FileIDs), until Ctrl-C",
        ),
    ] = False,
    debug: Debug = False,
    debug_port: DebugPort = None,
    spark_ui: SparkUi = False,
    yes: Yes = False,
    profile: Profile = None,
) -> None:
    """Upload files to source/, let S3 events drive the pipeline, wait, and report each file. On real
    AWS (it deploys, uploads and runs Glue there) it asks first unless --yes."""
    _use_profile(profile)
    settings = _settings(db_url)
    try:
        files = collect_files(paths or [packaging.bundled("samples")])
    except InputError as error:
        _fail(str(error))
    progress = err if as_json else out
    with environment(settings, start_stack=True, keep_stack=keep_up) as env:
        progress.print(f"environment: {env.description}")
        account = _confirm_account("deploy to and run the pipeline in", yes)
        with _job_options(settings, env, account, debug, debug_port, spark_ui) as deployed:
            code = packaging.glue_code_digest()  # before the deploy: a change made meanwhile is a change
            run_files = partial(_run_files, deployed, env, account, files, timeout, progress, as_json)
            result = run_files()
            if watch:
                with termination_raises():
                    _rerun_on_change(run_files, progress, code)
    if not result["ok"]:
        raise typer.Exit(1)


def _run_files(
    settings: Settings,
    env,
    account: str,
    files: list[Path],
    timeout: float,
    progress: Console,
    as_json: bool,
    folder="",
) -> dict:
    """Deploy (what changed), upload the files under source/``folder``, wait for their outcomes, report."""
    boot = _bootstrap(settings, env, quiet=True, account=account)
    session = boto3.Session()
    uploads = upload(aws_client("s3", session), boot.bucket, files, boot.target, folder)
    progress.print(f"uploaded {len(uploads)} file(s) to s3://{boot.bucket}/source/{folder}")
    audit = AuditTable(aws_client("dynamodb", session), settings.audit_table)
    records = wait_for_outcomes(audit, uploads, timeout, progress)
    records = [r if r is not None else placeholder(u) for r, u in zip(records, uploads, strict=True)]
    table_rows = count_rows(env.reachable_db, settings.table)
    result = report.build(records, boot.bucket, boot.target, str(settings.table), table_rows)
    if as_json:
        print(json.dumps(result, indent=2), flush=True)
    else:
        report.render(result, out, title="glueline run")
    return result


WATCH_POLL_SECONDS = 0.5


def _rerun_on_change(run_files: Callable[..., dict], progress: Console, deployed: str) -> None:
    """--watch: the job's code as deploy would ship it (packaging.glue_code_digest), polled against the
    ``deployed`` digest, taken before the last deploy; on a change, ``run_files`` (_run_files) deploys and
    runs the files again under source/watch-N/ (new keys, so new FileIDs: a run, not a redelivery)."""
    progress.print(
        "watching the Glue job's script and library (services/glue/, glueline.shared, glueline.job); Ctrl-C stops"
    )
    rerun = 0
    try:
        while True:
            time.sleep(WATCH_POLL_SECONDS)
            current = packaging.glue_code_digest()
            if current == deployed:
                continue
            deployed, rerun = current, rerun + 1
            progress.print(f"the job's code changed: deploying it and running the files again (watch-{rerun}/)")
            run_files(folder=f"watch-{rerun}/")
    except KeyboardInterrupt:
        progress.print("stopped watching")


@app.command("spark-history")
def spark_history(
    port: Annotated[
        int | None,
        typer.Option(
            "--port", help="the history server's port on 127.0.0.1 (default 18080; compose: the one published)"
        ),
    ] = None,
) -> None:
    """Spark's history server over the event logs of the local stack's runs made with --spark-ui, until Ctrl-C."""
    settings = _settings()
    with _environment(settings) as env:
        if not isinstance(env.stack, StackInfo | ComposeInfo):
            _fail("spark-history shows runs of a local stack's Glue runner (glueline up -d)")
        try:
            with stack_history_server(settings, env.stack, port) as url:
                out.print(f"[bold]Spark history[/] {url}  (runs made with --spark-ui; Ctrl-C stops it)")
                until_stopped()
        except StackError as error:
            _fail(str(error))


@app.command()
def generate(
    path: Annotated[Path, typer.Argument(help="the CSV file to write")],
    rows: Annotated[int, typer.Option(help="number of data rows")] = 10_000,
    seed: Annotated[int, typer.Option(help="random seed (same seed, same file)")] = 7,
    dirty: Annotated[float, typer.Option(help="share of dirty rows")] = 0.02,
    first_id: Annotated[int, typer.Option(help="first TransactionID")] = 100_000,
    crlf: Annotated[bool, typer.Option(help="CRLF line endings")] = False,
) -> None:
    """Write a seeded transactions file; prints the counts a correct run must report."""
    counts = write_file(path, rows, seed, dirty, first_id, crlf)
    print(json.dumps(counts.as_dict(), indent=2))


def _version(value: bool) -> None:
    if value:
        print(f"glueline {importlib.metadata.version('glueline')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print glueline's version and exit")
    ] = False,
) -> None:
    """glueline: an S3 → Lambda → Glue → PostgreSQL batch ETL pipeline, the same code locally and on AWS."""


def main() -> None:  # pragma: no cover - console entry point
    try:
        app()
    except (StackError, BootstrapError) as error:
        err.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
