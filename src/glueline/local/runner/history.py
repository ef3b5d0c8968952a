"""Spark's history server over the event logs of runs with the Spark UI on, where the runner runs.

A run's own UI lives only while the run does; its event log stays in the runner's state directory
(``spark-events``, see glueline.local.runner.launch), and Spark's history server — started as
``spark-class`` runs it, from the image's Spark or PySpark's — shows finished runs from it. On the host
``glueline spark-history`` starts it (``RunningStack.history_server``); in the compose stack's glue container
``python -m glueline.local.runner.history serve`` does, until ``… stop``. Like the runner, this module needs
only what the Glue image has.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glueline.local.inner_loop import EVERY_INTERFACE, SPARK_HISTORY_PORT
from glueline.local.processes import block_stop_signals, terminate, until_stopped
from glueline.polling import url_answers, wait_for

HISTORY_SERVER = "org.apache.spark.deploy.history.HistoryServer"
STARTS_WITHIN_SECONDS = 60


def spark_class() -> Path:
    if os.environ.get("SPARK_HOME"):  # the aws-glue-libs image's Spark
        return Path(os.environ["SPARK_HOME"]) / "bin" / "spark-class"
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@contextmanager
def history_server(events: Path, port: int, log: Path, host: str = "127.0.0.1") -> Iterator[str]:
    """Start the history server on ``events``, bound to ``host``; its URL once it answers; stopped when
    the block ends."""
    events.mkdir(parents=True, exist_ok=True)
    log.parent.mkdir(parents=True, exist_ok=True)
    options = {
        "spark.history.fs.logDirectory": events.absolute().as_uri(),
        "spark.history.ui.port": str(port),
        "spark.history.fs.update.interval": "2s",  # a run that just ended shows up soon
    }
    env = {**os.environ, "SPARK_HISTORY_OPTS": " ".join(f"-D{k}={v}" for k, v in options.items())}
    if host != EVERY_INTERFACE:
        env["SPARK_LOCAL_IP"] = host  # its UI binds there (else to every interface)
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [str(spark_class()), HISTORY_SERVER], env=env, stdout=output, stderr=output, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for(lambda: url_answers(url + "/api/v1/applications"), STARTS_WITHIN_SECONDS, f"{url} to answer")
        except TimeoutError as error:
            raise RuntimeError(f"Spark's history server: {error}; its log: {log}") from None
        yield url
    finally:
        terminate(process)


def main(argv: list[str] | None = None) -> None:
    """``serve`` the event logs of the runner's state directory on every interface (compose publishes the
    port on the host's 127.0.0.1) until ``stop``."""
    parser = argparse.ArgumentParser(prog="python -m glueline.local.runner.history")
    parser.add_argument("action", choices=("serve", "stop"))
    parser.add_argument("--state-dir", type=Path, required=True, help="the runner's (compose.RUNNER_STATE)")
    options = parser.parse_args(argv)
    pid_file = options.state_dir / "spark-history.pid"
    if options.action == "stop":
        if pid_file.exists():
            os.kill(int(pid_file.read_text()), signal.SIGTERM)
        return
    block_stop_signals()  # a stop while starting waits for the server's start
    pid_file.write_text(str(os.getpid()))
    events, log = options.state_dir / "spark-events", options.state_dir / "logs" / "spark-history.log"
    try:
        with history_server(events, SPARK_HISTORY_PORT, log, host=EVERY_INTERFACE):
            until_stopped()
    finally:
        pid_file.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
