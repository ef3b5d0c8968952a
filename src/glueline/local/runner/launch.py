"""What a run starts: its script and ``--extra-py-files`` fetched from S3, its command line as Glue
builds it (``--JOB_ID``, ``--JOB_RUN_ID``, ``--JOB_NAME``, the job's DefaultArguments overlaid with the
run's Arguments, NonOverridableArguments last) and the environment of its process.

Like Glue, the runner configures the Spark its scripts get: with the default launcher,
``PYSPARK_SUBMIT_ARGS`` (local mode on every core with Glue's four attempts per task, a 2 GB driver, no UI,
bound to 127.0.0.1) unless the environment sets it. A job with Glue's ``--enable-spark-ui true`` gets
Spark's UI on port 4040 of the runner's address while a run is active (the next free port when 4040 is
taken) and its event log in ``state_dir/spark-events``; ``--spark-event-logs-path``, an S3 location on
AWS, is not written here.
"""

from __future__ import annotations

import ast
import hashlib
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from glueline.artifacts import DEBUG_ARGUMENT
from glueline.local.inner_loop import EVERY_INTERFACE, SPARK_UI_PORT
from glueline.local.runner import debug
from glueline.local.runner.config import RunnerConfig, default_launcher
from glueline.shared.timeouts import aws_client

# Local mode binds the driver and block manager to the loopback interface only (by default Spark binds
# the machine's first non-loopback address, open to its network). A failed task is retried up to four
# times as on a Glue cluster (spark.task.maxFailures=4; local mode ignores that setting and never retries
# unless the master says so: local[*,4]), so a task that wrote before it failed runs again here too.
SPARK_SUBMIT_ARGS = (
    "--master local[*,4] --driver-memory 2g --conf spark.ui.enabled=false "
    "--conf spark.driver.bindAddress=127.0.0.1 --conf spark.driver.host=127.0.0.1 pyspark-shell"
)
SPARK_UI_ARGUMENT = "--enable-spark-ui"  # Glue's: "true" turns the UI and the event log on


@dataclass
class Launch:
    """How to start one run's script: its arguments, its --extra-py-files, its environment."""

    script: str
    argv: list[str]
    py_files: list[str]
    env: dict[str, str]
    fingerprint: str  # of the script and its extra files: which code a run executes
    debug: str | None = None  # the address its driver waits for a debugger on (glueline.local.runner.debug)
    spark_ui: bool = False  # Spark's UI on and its event log kept


def offers_warm_up(script: Path) -> bool:
    """The script defines or imports a ``warm_up`` hook at its top level (``glueline.local.runner.standby``)."""
    try:
        tree = ast.parse(script.read_bytes())
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "warm_up":
            return True
        if isinstance(node, ast.ImportFrom | ast.Import) and any(
            (alias.asname or alias.name) == "warm_up" for alias in node.names
        ):
            return True
    return False


def prepare(config: RunnerConfig, job: dict, run_arguments: dict[str, str], run_dir: Path, run_id: str) -> Launch:
    """Fetch the script and its --extra-py-files into ``run_dir``; how to start them."""
    arguments = {**job["DefaultArguments"], **run_arguments, **job["NonOverridableArguments"]}
    script = _download(job["Command"]["ScriptLocation"], run_dir)
    py_files = []
    for uri in filter(None, (u.strip() for u in arguments.get("--extra-py-files", "").split(","))):
        py_files.append(str(_download(uri, run_dir / "py")))
    argv = ["--JOB_ID", "j_" + job["Name"], "--JOB_RUN_ID", run_id, "--JOB_NAME", job["Name"]]
    for key, value in arguments.items():
        argv += [key, value]
    fingerprint = hashlib.sha256()
    for path in [script, *map(Path, py_files)]:
        fingerprint.update(path.read_bytes())
    spark_ui = arguments.get(SPARK_UI_ARGUMENT) == "true"
    address = debug.debug_address(arguments)
    script_path, library = str(script), py_files
    if address:
        if config.launcher != [sys.executable]:
            raise ValueError(f"{DEBUG_ARGUMENT}: a debugger attaches to a Python driver, not to {config.launcher}")
        script_path, library = debug.lay_out(config.state_dir, script_path, py_files)
    env = environment(config, spark_ui)
    env["PYTHONPATH"] = os.pathsep.join(library + [p for p in [env.get("PYTHONPATH")] if p])
    return Launch(script_path, argv, py_files, env, fingerprint.hexdigest(), address, spark_ui)


def environment(config: RunnerConfig, spark_ui: bool = False) -> dict[str, str]:
    env = {**os.environ, **config.env}
    if config.self_url:
        env["AWS_ENDPOINT_URL_GLUE"] = config.self_url
    if config.launcher == default_launcher():
        env.setdefault("PYSPARK_SUBMIT_ARGS", SPARK_SUBMIT_ARGS)
        if spark_ui:
            events = config.spark_events_dir
            events.mkdir(parents=True, exist_ok=True)
            on = (
                f"--conf spark.ui.enabled=true --conf spark.ui.port={SPARK_UI_PORT} "
                f"--conf spark.eventLog.enabled=true --conf spark.eventLog.dir={events.absolute().as_uri()} "
            )
            env["PYSPARK_SUBMIT_ARGS"] = env["PYSPARK_SUBMIT_ARGS"].replace("--conf spark.ui.enabled=false ", on)
            if config.host != EVERY_INTERFACE:  # in the runner's container, compose publishes the UI port
                env["SPARK_LOCAL_IP"] = config.host  # the UI binds to it (else to every interface)
    return env


def needs_own_process(arguments: dict[str, str]) -> bool:
    """A run waiting for a debugger, or with Spark's UI, starts its own process (a standby has neither)."""
    return bool(debug.debug_address(arguments)) or arguments.get(SPARK_UI_ARGUMENT) == "true"


def _download(uri: str, directory: Path) -> Path:
    parts = urlsplit(uri)
    if parts.scheme != "s3":
        raise ValueError(f"not an s3:// URI: {uri}")
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / Path(parts.path).name
    aws_client("s3").download_file(parts.netloc, parts.path.lstrip("/"), str(target))
    return target
