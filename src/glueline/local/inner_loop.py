"""Where the inner loop's tools meet a local stack's Glue runs: the debugger of ``glueline run --debug``,
Spark's UI of ``--spark-ui`` and ``glueline spark-history``. Each stack answers for its own runner
(``RunningStack.inner_loop``), so the CLI and the tests ask once and print or use
what they get.

On the embedded stack the runner is a process on this machine: a debugged run's driver listens on
127.0.0.1:<--debug-port> and the debugger attaches there; the laid-out code is under the state directory.
On the compose stack the runner is in the ``glue`` container: the driver listens on every interface of
the container at the usual ports, which compose publishes on this machine's 127.0.0.1 (``make up`` picks
the usual ones where free, else free ones, and records them); the laid-out code is at the container's path.
"""

from __future__ import annotations

from dataclasses import dataclass

DEBUG_PORT = 5678  # debugpy's usual port
SPARK_UI_PORT = 4040  # Spark's
SPARK_HISTORY_PORT = 18080  # Spark's history server's
# Where the runner, its runs' Spark UI and debugger, and the history server listen inside the runner's
# container (compose publishes their ports on the host's 127.0.0.1 only); never on this machine. Bandit's
# B104 (binding to all interfaces) is answered here, once.
EVERY_INTERFACE = "0.0.0.0"  # nosec B104


@dataclass(frozen=True)
class InnerLoop:
    debug_listen: str  # the job's --glueline-debug: where a run's driver listens, as the runner sees it
    debug_attach: str  # where a debugger attaches from this machine
    debug_root: str  # the debugged run's code as the debugger sees it (launch.json's remoteRoot: script/, lib/)
    launch_config: str  # the name of .vscode/launch.json's configuration that attaches there
    spark_ui_url: str  # an active --spark-ui run's UI, from this machine
    spark_ui_moves: bool  # whether a run takes the next port when that one is taken (compose: published)
    spark_history_port: int  # glueline spark-history's, on this machine's 127.0.0.1
