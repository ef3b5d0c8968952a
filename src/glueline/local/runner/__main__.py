"""``python -m glueline.local.runner``: serve the Glue API on 127.0.0.1 until SIGTERM or Ctrl-C.

The runner reaches S3 (for scripts), CloudWatch Logs and EventBridge through the standard AWS
configuration of its environment (``AWS_ENDPOINT_URL``: the emulator), and its job processes inherit
that environment, with ``AWS_ENDPOINT_URL_GLUE`` pointing back at the runner. Jobs and runs are kept in
``--state-dir`` across restarts. See docs/runner.md.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import signal
import threading
from pathlib import Path

from glueline.local.inner_loop import EVERY_INTERFACE
from glueline.local.runner.backend import GlueBackend
from glueline.local.runner.config import RunnerConfig, default_launcher
from glueline.local.runner.server import make_server


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m glueline.local.runner", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4567)
    parser.add_argument("--state-dir", type=Path, default=Path(".glueline/glue-runner"))
    parser.add_argument("--launcher", help="command that runs a job script (default: this Python)")
    parser.add_argument("--minute-seconds", type=float, default=60.0, help="length of a Timeout minute")
    parser.add_argument(
        "--standby",
        action="store_true",
        help="keep one warm PySpark job process of this Python ready (faster small runs)",
    )
    options = parser.parse_args()
    if options.standby and options.launcher:
        parser.error("--standby keeps a PySpark process of this Python warm; it cannot use --launcher")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s [%(name)s] %(message)s")

    # Jobs reach the runner on this machine (or container): every interface is where it listens, not an address.
    url = f"http://{'127.0.0.1' if options.host == EVERY_INTERFACE else options.host}:{options.port}"
    launcher = shlex.split(options.launcher) if options.launcher else default_launcher()
    options.state_dir.mkdir(parents=True, exist_ok=True)
    backend = GlueBackend(
        RunnerConfig(
            options.state_dir, launcher, url, options.minute_seconds, standby=options.standby, host=options.host
        )
    )
    server = make_server(backend, options.host, options.port)

    def shut_down(*_):
        backend.close()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    logging.getLogger("glueline.local.runner").info("Glue API on %s (launcher: %s)", url, " ".join(launcher))
    server.serve_forever()


if __name__ == "__main__":
    main()
