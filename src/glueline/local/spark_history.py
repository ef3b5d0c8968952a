"""``glueline spark-history``: Spark's history server over the event logs of the local stack's Glue runner,
wherever that runs (glueline.local.runner.history): here, bound to 127.0.0.1, for the embedded stack; in the
glue container for the compose stack, on the port compose publishes on this machine's 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glueline.local.compose import RUNNER_STATE, ComposeInfo, ComposeStack
from glueline.local.runner.history import history_server
from glueline.local.stack import StackInfo, wait_healthy
from glueline.settings import Settings


@contextmanager
def stack_history_server(settings: Settings, info: StackInfo | ComposeInfo, port: int | None = None) -> Iterator[str]:
    """The history server over the event logs of the stack's runner; its URL here, until the block ends."""
    published = info.inner_loop(settings, history_port=port).spark_history_port
    if isinstance(info, StackInfo):
        state = Path(settings.state_dir)
        events, log = state / "glue-runner" / "spark-events", state / "logs" / "spark-history.log"
        with history_server(events, published, log) as url:
            yield url
        return
    stack = ComposeStack(settings)
    command = ["glue", "python3.11", "-m", "glueline.local.runner.history"]
    stack.compose("exec", "-d", *command, "serve", "--state-dir", RUNNER_STATE)
    try:
        url = f"http://127.0.0.1:{published}"
        log = f"{RUNNER_STATE}/logs/spark-history.log"
        wait_healthy(
            "Spark's history server in the glue container",
            url + "/api/v1/applications",
            lambda: stack.compose("exec", "-T", "glue", "tail", "-20", log, check=False).stdout,
        )
        yield url
    finally:
        stack.compose("exec", "-T", *command, "stop", "--state-dir", RUNNER_STATE, check=False)
