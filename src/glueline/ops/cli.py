"""The ``glueline`` command line."""

from __future__ import annotations

import importlib.metadata
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import partial
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from botocore.config import Config
from flask import Flask
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from glueline.console.app import Environment, create_app
from glueline.console.data import ConsoleData
from glueline.console.server import LOOPBACK, serve, serving
from glueline.local.aws_config import AWS_CONFIG_FILE, AWS_PROFILE
from glueline.local.compose import images
from glueline.local.compose.stack import project_dir
from glueline.local.processes import block_stop_signals, termination_raises, until_stopped
from glueline.local.running import RunningStack, StackError
from glueline.local.samples import write_file
from glueline.local.stacks import check_choice, local_stacks, logs_of, running_stack, start_stack
from glueline.ops import packaging, report
from glueline.ops.database import NoDatabase, Origin, known_database
from glueline.ops.deploy import cloudformation
from glueline.ops.deploy.aws import DeployError
from glueline.ops.deploy.deployer import Deployer, deployer_for, refusals
from glueline.ops.deploy.executor import describe
from glueline.ops.deploy.models import Action, Change
from glueline.ops.target import NoTargetError, Target, resolve_target
from glueline.ops.uploads import InputError, collect_files, count_rows, placeholder, upload, wait_for_outcomes
from glueline.settings import Settings
from glueline.shared import gluerun
from glueline.shared.audit import AuditQuery, AuditTable, Status, to_timestamp

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


def _fail(message: str, code: int = 2) -> NoReturn:
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
    Action.CREATE: "green",
    Action.CREATED: "green",
    Action.UPDATE: "yellow",
    Action.UPDATED: "yellow",
    Action.ADOPT: "magenta",
    Action.ADOPTED: "magenta",
    Action.CONFLICT: "bold red",
    Action.DELETED: "red",
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


def _deployer(target: Target, adopt: bool = False, quiet: bool = False) -> Deployer:
    """The target's Deployer, telling a long step's progress on stderr; ``quiet``: each deploy's changes
    as one line of counts on stderr (the commands that deploy on the way to something else)."""
    return deployer_for(target, adopt=adopt, progress=_progress, announce=_counts if quiet else lambda changes: None)


def _counts(changes: list[Change]) -> None:
    counts: dict[str, int] = {}
    for change in changes:
        counts[change.action] = counts.get(change.action, 0) + 1
    err.print("deploy: " + ", ".join(f"{n} {a}" for a, n in sorted(counts.items())))


def _deploy(deployer: Deployer, as_json: bool = False) -> None:
    """Deploy, and show what was done as a table (or JSON)."""
    changes = deployer.deploy()
    _show_changes(changes, f"deploy ({deployer.target.description})", as_json)
    if not as_json and all(c.action == Action.UNCHANGED for c in changes):
        out.print("Nothing changed: every resource was already as wanted.")


@contextmanager
def _job_options(deployer: Deployer, debug: bool, debug_port: int | None, spark_ui: bool) -> Iterator[None]:
    """--debug and --spark-ui: the job deployed with them for the runs this command causes
    (glueline.local.runner.debug, Glue's --enable-spark-ui), and deployed back as it was when it ends, so
    a later upload's run neither waits for a debugger nor keeps a UI."""
    if not (debug or spark_ui):
        yield
        return
    stack = _local_stack(deployer.target, "--debug and --spark-ui serve runs")
    try:
        loop = stack.inner_loop(debug_port=debug_port)
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
    with deployer.deployed_with(**options):
        yield


def _local_stack(target: Target, what: str) -> RunningStack:
    if target.stack is None:
        _fail(f"{what} of a local stack's Glue runner (glueline up -d)")
    return target.stack


@contextmanager
def _target(settings: Settings, **options) -> Iterator[Target]:
    """The target a command talks to (glueline.ops.target); none configured and none running is a clear
    error (exit 2)."""
    try:
        with resolve_target(settings, **options) as target:
            yield target
    except NoTargetError as error:
        _fail(str(error))


def _use_profile(profile: str | None) -> None:
    """--profile selects the AWS configuration exactly as AWS_PROFILE does; nothing else changes."""
    if profile:
        os.environ["AWS_PROFILE"] = profile


def _print_stack(target: Target) -> None:
    stack, state = _local_stack(target, "endpoints"), Path(target.settings.state_dir).absolute()
    out.print(f"[bold]AWS emulator[/] ({stack.emulator_name})  {stack.emulator_url}")
    out.print(f"[bold]Glue runner[/]  {stack.glue_url}")
    database = target.known_database
    if database is not None and database.here is not None:
        # A local stack's password is a local, generated one; an external database's is a secret.
        url = database.here.url(with_password=database.origin == Origin.LOCAL_STACK)
        out.print(f"[bold]PostgreSQL[/]   {escape(url)}")
    if stack.database_files:
        out.print(f"[bold]PostgreSQL data[/] {stack.database_files}")
    out.print(f"[bold]logs[/]         {stack.logs_where}")
    out.print(
        f"AWS CLI: [cyan]export AWS_CONFIG_FILE={state / AWS_CONFIG_FILE} AWS_PROFILE={AWS_PROFILE}[/] then e.g. "
        "`aws s3 ls`, `aws glue get-job-runs --job-name ETL_Job_to_RDS`"
    )


StackChoice = Annotated[
    str,
    typer.Option(
        "--stack",
        help="compose (docker-compose.yml), embedded (processes), or auto: compose when a Docker engine answers",
    ),
]


@app.command()
def up(
    detach: Annotated[bool, typer.Option("--detach", "-d", help="start in the background and return")] = False,
    deploy: Annotated[bool, typer.Option("--deploy/--no-deploy", help="deploy the pipeline onto it")] = True,
    stack_choice: StackChoice = "auto",
) -> None:
    """Start a local stack (emulator, Glue runner, PostgreSQL) and deploy the pipeline onto it."""
    settings = _settings()
    try:
        check_choice(stack_choice)
    except StackError as error:
        _fail(str(error))
    if running_stack(settings):
        _fail(f"a stack of {settings.state_dir} is already running: `glueline down` stops it")
    try:
        stack = start_stack(
            settings,
            stack_choice,
            with_postgres=settings.db_url is None,
            log=lambda message: err.print(f"[dim]{escape(message)}[/]"),
        )
    except StackError as error:
        _fail(str(error))
    try:
        with resolve_target(settings, stack=stack) as target:
            _print_stack(target)
            if deploy:
                _deployer(target, quiet=True).deploy()
                out.print(f"Pipeline deployed: drop CSV files into [cyan]s3://{target.bucket}/source/[/]")
            if detach:
                out.print("Console: `glueline console` (make console) shows its files, runs and data quality")
                out.print("Running in the background: `glueline down` stops it.")
                return
            block_stop_signals()  # before the console's thread starts
            with serving(_console_app(target)) as url:
                out.print(f"Console: [cyan]{url}[/] (files, runs and data quality; 127.0.0.1 only)")
                out.print("Running: press Ctrl-C to stop.")
                until_stopped()
    except BaseException:
        stack.stop()
        raise
    stack.stop()
    out.print("Stopped.")


@app.command()
def down() -> None:
    """Stop the local stack (the database's data and the emulator's state stay for the next `up`)."""
    stopped = [stack.stop() for stack in local_stacks(_settings())]
    out.print("Stopped." if any(stopped) else "No stack was running.")


@app.command()
def clean() -> None:
    """Stop the local stack and delete its state: emulator data, logs and the database."""
    deleted = [path for stack in local_stacks(_settings()) for path in stack.clean()]
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
    try:
        raise typer.Exit(logs_of(settings, True if follow is None else follow))
    except StackError as error:
        _fail(str(error))


def _run_logs(settings: Settings, run_id: str, follow: bool) -> None:
    def write(group: str, line: str) -> None:
        (err if group == gluerun.ERROR_GROUP else out).print(
            escape(line), style="red" if group == gluerun.ERROR_GROUP else None, soft_wrap=True, highlight=False
        )

    with _target(settings) as target:
        try:
            state = gluerun.show_run_logs(
                target.client("logs"), target.client("glue"), settings.glue_job, run_id, follow, write
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
    with _target(settings) as target:
        changes = _deployer(target).plan()
        _show_changes(changes, f"plan ({target.description})", as_json, calls)
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
    with _target(settings) as target:
        _confirm_account(target, "deploy to", yes)
        _deploy(_deployer(target, adopt), as_json=as_json)


# The AWS console walkthrough's name for deploy (and infra/bootstrap.py's): the same command.
app.command("bootstrap", help="The walkthrough's name for deploy: the same command.")(deploy)


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
    database = known_database(settings, None, None)
    if database is None:
        _fail("no database: pass --db-url (its password, if any, is left out: the template asks for DbPassword)")
    if artifacts is not None:
        cloudformation.write_artifacts(settings, database, artifacts)
    text = cloudformation.dumps(cloudformation.template(settings, database))
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
    with _target(settings) as target:
        deployer = _deployer(target)
        deletions = deployer.plan_destroy()
        listed = [Change(d.resource, d.type, d.action(delete_data), [], d.detail) for d in deletions]
        where = f"account {target.account}, region {target.region}, endpoint {target.endpoint}"
        doomed = [d for d in deletions if d.action(delete_data) == Action.DELETE]
        if not as_json:
            _show_changes(listed, f"destroy would ({where})", as_json=False)
        if not doomed:
            err.print("nothing of this stack to delete")
        elif not yes and not typer.confirm(f"delete these {len(doomed)} resources?", err=True):
            raise typer.Exit(1)
        changes = deployer.destroy(deletions, delete_data)
        _show_changes(changes, f"destroy ({where})", as_json)
        kept = [c.resource for c in changes if c.action == Action.KEPT]
        if kept and not as_json:
            out.print(f"Kept (they hold data; --delete-data removes them): {', '.join(kept)}")


def _confirm_account(target: Target, what: str, yes: bool) -> None:
    """Say which account, region and endpoint; on AWS itself (no custom endpoint) ask unless --yes:
    every command that writes to an account (deploy, bootstrap, run, trigger, console --allow-actions)
    calls this first."""
    err.print(f"account {target.account}, region {target.region}, endpoint {target.endpoint}")
    if target.on_aws and not yes and not typer.confirm(f"{what} AWS account {target.account}?", err=True):
        raise typer.Exit(1)


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
    with _target(settings) as target:
        records = AuditTable(target.client("dynamodb"), settings.audit_table).find(query)
        database = target.known_database
        rows = count_rows(database.here if database else None, settings.table)
        where = database.target(settings.table) if database else None
        result = report.build(records, target.bucket, where, str(settings.table), rows)
    if as_json:
        print(json.dumps(result, indent=2))
    else:
        report.render(result, out, title=f"{settings.audit_table} ({target.description})")


@app.command()
def console(
    host: Annotated[
        str, typer.Option("--host", help="the address to listen on (default: this machine only)")
    ] = LOOPBACK,
    port: Annotated[int, typer.Option("--port", help="the port (default: a free one, printed)")] = 0,
    db_url: DbUrl = None,
    profile: Profile = None,
    allow_actions: Annotated[
        bool,
        typer.Option(
            "--allow-actions",
            help="on real AWS, offer the actions (retry a file, run the sweep): asks first, naming the account, "
            "unless --yes; without it the console there only reads (a local stack: always offered)",
        ),
    ] = False,
    yes: Yes = False,
) -> None:
    """A web page of what the pipeline records: files by status, each file's lifecycle, counts and
    rejected rows, the Glue runs; two actions, each confirmed: retry a file, run the sweep (on real AWS
    only with --allow-actions). Ctrl-C stops it. With no stack running and no AWS configured, it starts
    the embedded stack (its state: what the last `glueline run` left) and stops it on exit."""
    _use_profile(profile)
    if host != LOOPBACK:
        err.print(
            f"[bold yellow]warning:[/] listening on {escape(host)}: anyone who reaches this address sees the "
            "pipeline's files and counts (the console has no login)"
        )
    settings = _settings(db_url)
    with _target(settings, start_stack=True) as target:
        read_only = None
        if allow_actions:
            _confirm_account(target, "retry files and run the sweep from the console in", yes)
        elif target.on_aws:
            read_only = (
                f"read-only: this console reads AWS account {target.account} and acts on it (retry, sweep) only "
                "when started with --allow-actions"
            )
            err.print(f"[bold yellow]{escape(read_only)}[/]")
        announce = lambda url: out.print(f"glueline console on {url} ({target.description}); Ctrl-C stops it")  # noqa: E731
        serve(_console_app(target, host, read_only), host, port, announce)


def _console_app(target: Target, host: str = LOOPBACK, read_only: str | None = None) -> Flask:
    """The console of the target, naming its account, region and AWS profile on every page."""
    where = Environment(target.description, target.account, target.region, os.environ.get("AWS_PROFILE"))
    return create_app(_console_data(target), where, host, read_only)


def _console_data(target: Target) -> ConsoleData:
    """What the console reads, from the target (its clients, its database as this machine reaches it)."""
    settings, lam = target.settings, target.client("lambda")
    database = target.known_database

    def sweep() -> None:  # asynchronously, as EventBridge invokes it: the page does not wait for the run
        event = target.schedule_event()
        lam.invoke(FunctionName=settings.lambda_function, InvocationType="Event", Payload=json.dumps(event).encode())

    return ConsoleData(
        AuditTable(target.client("dynamodb"), settings.audit_table),
        target.client("glue"),
        target.client("s3"),
        target.client("logs"),
        settings.glue_job,
        str(settings.table),
        lambda: count_rows(database.here if database else None, settings.table),
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
    with _target(settings) as target:
        _confirm_account(target, "invoke the Lambda in", yes)
        event = target.schedule_event()
        # A synchronous invocation answers when the function ends: read for longer than its timeout.
        lam = target.client("lambda", Config(read_timeout=settings.lambda_timeout_seconds + 30))
        with _job_options(_deployer(target, quiet=True), debug, debug_port, spark_ui):
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
    with _target(settings, start_stack=True, keep_stack=keep_up) as target:
        progress.print(f"environment: {target.description}")
        _confirm_account(target, "deploy to and run the pipeline in", yes)
        deployer = _deployer(target, quiet=True)
        with _job_options(deployer, debug, debug_port, spark_ui):
            code = packaging.glue_code_digest()  # before the deploy: a change made meanwhile is a change
            run_files = partial(_run_files, deployer, files, timeout, progress, as_json)
            result = run_files()
            if watch:
                with termination_raises():
                    _rerun_on_change(run_files, progress, code)
    if not result["ok"]:
        raise typer.Exit(1)


def _run_files(
    deployer: Deployer,
    files: list[Path],
    timeout: float,
    progress: Console,
    as_json: bool,
    folder="",
) -> dict:
    """Deploy (what changed), upload the files under source/``folder``, wait for their outcomes, report."""
    deployer.deploy()
    target, settings = deployer.target, deployer.settings
    rows_target = deployer.rows_target
    uploads = upload(target.client("s3"), target.bucket, files, rows_target, folder)
    progress.print(f"uploaded {len(uploads)} file(s) to s3://{target.bucket}/source/{folder}")
    audit = AuditTable(target.client("dynamodb"), settings.audit_table)
    outcomes = wait_for_outcomes(audit, uploads, timeout, progress)
    records = [r if r is not None else placeholder(u) for r, u in zip(outcomes, uploads, strict=True)]
    table_rows = count_rows(target.database.here, settings.table)
    result = report.build(records, target.bucket, rows_target, str(settings.table), table_rows)
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
    with _target(settings) as target:
        stack = _local_stack(target, "spark-history shows runs")
        try:
            with stack.history_server(port) as url:
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
    except (StackError, DeployError, NoDatabase) as error:
        err.print(f"[bold red]error:[/] {error}")
        sys.exit(2)
