"""The console served on werkzeug's threaded server, and started as a user starts it: a tool on the
operator's own machine, bound to 127.0.0.1 unless told otherwise, not a service to expose."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"


class ConsoleStartError(RuntimeError):
    pass


def serve(app, host: str, port: int, announce: Callable[[str], None]) -> None:
    """Serve ``app`` until interrupted; ``port`` 0: a free one. ``announce`` hears the address."""
    server = make_server(host, port, app, threaded=True)
    announce(f"http://{host}:{server.port}/")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


@contextmanager
def serving(app, host: str = LOOPBACK, port: int = 0) -> Iterator[str]:
    """Serve ``app`` from a thread while the block runs (``glueline up`` in the foreground); its address."""
    server = make_server(host, port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="glueline-console", daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{server.port}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def launch(env: dict[str, str], log: Path, timeout: float = 120) -> tuple[subprocess.Popen, str]:
    """``glueline console`` started as a user starts it (the tests and ``make bench-console`` drive it
    so), and the address it prints. Its request log goes to ``log``: a pipe nobody reads would fill and
    stall it. ``stop`` ends it."""
    command = [str(Path(sys.executable).with_name("glueline")), "console"]
    with log.open("w") as sink:  # the child keeps its own descriptor
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=sink, text=True, env=env)
    first_line: list[str] = []
    output = process.stdout
    assert output is not None  # a pipe, asked for above
    reader = threading.Thread(target=lambda: first_line.append(output.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    found = re.search(r"http://127\.0\.0\.1:\d+/", first_line[0] if first_line else "")
    if not found:
        stop(process)
        raise ConsoleStartError(f"the console printed no address: {first_line} {log.read_text()[-2000:]}")
    return process, found.group(0)


def stop(process: subprocess.Popen) -> None:
    """SIGTERM (the console then stops a stack it started), and SIGKILL after a minute."""
    process.terminate()
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
