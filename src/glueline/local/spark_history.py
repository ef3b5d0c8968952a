"""Spark's history server over the event logs of runs with the Spark UI on (``glueline spark-history``).

A run's own UI lives only while the run does; its event log stays (the runner keeps it in its state
directory, see glueline.local.runner.jobs), and Spark's history server — started from the PySpark
installation, as ``spark-class`` runs it — shows finished runs from it, bound to 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glueline.local.stack import terminate_group, wait_healthy

HISTORY_SERVER = "org.apache.spark.deploy.history.HistoryServer"


def spark_class() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent / "bin" / "spark-class"


@contextmanager
def history_server(events: Path, port: int, log: Path) -> Iterator[str]:
    """Start the history server on ``events``; its URL once it answers; stopped when the block ends."""
    events.mkdir(parents=True, exist_ok=True)
    options = {
        "spark.history.fs.logDirectory": events.absolute().as_uri(),
        "spark.history.ui.port": str(port),
        "spark.history.fs.update.interval": "2s",  # a run that just ended shows up soon
    }
    env = {
        **os.environ,
        "SPARK_LOCAL_IP": "127.0.0.1",  # its UI binds there, not to every interface
        "SPARK_HISTORY_OPTS": " ".join(f"-D{k}={v}" for k, v in options.items()),
    }
    with open(log, "ab") as output:
        process = subprocess.Popen(
            [str(spark_class()), HISTORY_SERVER], env=env, stdout=output, stderr=output, start_new_session=True
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy("Spark's history server", url + "/api/v1/applications", log)
        yield url
    finally:
        terminate_group(process.pid)
        process.wait()
