"""``glueline spark-history``: Spark's history server over the event logs of the local stack's Glue runner,
wherever that runs (glueline.local.runner.history): here, bound to 127.0.0.1, for the embedded stack; in the
glue container for the compose stack, on the port compose publishes on this machine's 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from glueline.local.compose import RUNNER_STATE, ComposeInfo, ComposeStack
from glueline.local.runner.history import history_server
from glueline.local.stack import SERVICE_START_SECONDS, StackError, StackInfo
from glueline.polling import url_answers, wait_for
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
        try:
            wait_for(lambda: url_answers(url + "/api/v1/applications"), SERVICE_START_SECONDS, f"{url} to answer")
        except TimeoutError as error:
            log = f"{RUNNER_STATE}/logs/spark-history.log"
            tail = stack.compose("exec", "-T", "glue", "tail", "-20", log, check=False).stdout
            raise StackError(f"Spark's history server in the glue container: {error}; {log}:\n{tail}") from None
        yield url
    finally:
        stack.compose("exec", "-T", *command, "stop", "--state-dir", RUNNER_STATE, check=False)
