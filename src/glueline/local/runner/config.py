"""How a runner is set up: where it keeps its state, what starts a job's script, its own address."""

from __future__ import annotations

import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RunnerConfig:
    state_dir: Path
    launcher: list[str]
    self_url: str = ""  # this runner's URL, given to jobs as their Glue endpoint
    minute_seconds: float = 60.0  # the length of one Timeout minute (tests shorten it)
    env: dict[str, str] = field(default_factory=dict)  # extra environment for job processes
    standby: bool = False  # keep a warm job process ready (PySpark scripts run with the default launcher)
    host: str = "127.0.0.1"  # the runner's address; Spark's UI binds there too (every interface in a container)

    @property
    def spark_events_dir(self) -> Path:
        """Where runs of a job with --enable-spark-ui keep their Spark event logs (glueline spark-history)."""
        return self.state_dir / "spark-events"


def default_launcher() -> list[str]:
    """``spark-submit`` where one is on PATH beside no PySpark (the aws-glue-libs image), else Python."""
    try:
        import pyspark  # noqa: F401
    except ImportError:
        submit = shutil.which("spark-submit")
        if submit:
            return [submit]
    return [sys.executable]
