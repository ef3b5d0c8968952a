"""``glueline console``: a local web page of what the pipeline records — files by status, each file's
lifecycle and counts, its rejected rows, the Glue runs — read through the same environment resolution
as every other command (embedded stack, compose stack, or an AWS account by ``--profile``).

``data`` reads (the one module that talks to AWS), ``app`` renders (Flask, Jinja2 templates and a
stylesheet shipped in this package; nothing is fetched from the internet), ``serve`` runs it on
werkzeug's threaded server: a tool on the operator's own machine, bound to 127.0.0.1 unless told
otherwise, not a service to expose.
"""

from __future__ import annotations

from collections.abc import Callable

from werkzeug.serving import make_server

LOOPBACK = "127.0.0.1"


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
