"""The console's pages: each route reads its parameters, asks ``ConsoleData`` and renders a template
(Jinja2, autoescaped: file names and error messages are data, never markup). Every asset is in this
package; the Content-Security-Policy lets a page load nothing from anywhere else and run no inline
script."""

from __future__ import annotations

import hmac
import io
import secrets
from dataclasses import dataclass

from flask import Flask, Response, abort, flash, redirect, render_template, request, send_file, url_for

from glueline.console.data import SORTABLE, ActionRefused, ConsoleData, FileFilter, counts_table, timeline
from glueline.console.server import LOOPBACK
from glueline.shared.audit import Status

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form's Origin "null"
    "X-Frame-Options": "DENY",
}
LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
ACTIONS = frozenset({"confirm_retry", "retry", "confirm_sweep", "sweep"})  # their endpoints


@dataclass(frozen=True)
class Environment:
    """What the console reads and acts on, named on every page: a retry lands in this account."""

    description: str
    account: str
    region: str
    profile: str | None  # None: no AWS profile (a local stack's clients use its variables)


def create_app(data: ConsoleData, where: Environment, host: str = LOOPBACK, read_only: str | None = None) -> Flask:
    """``host``: the address the console listens on; ``read_only``: why the actions are refused (None:
    they are offered).

    A request must name this console in ``Host``: a loopback name or ``host``. Another name is a page
    that had its own name resolve to this machine (DNS rebinding) to read the console with the
    browser's leave: 400. (Flask's TRUSTED_HOSTS cannot name an IPv6 address in werkzeug 3.1.)

    The two actions (retry a file, run the sweep) are a confirmation page (GET) and its form (POST).
    A read-only console refuses both with 403 and says why. A POST must carry the token this process
    made at start and put in its own pages, which another site's page cannot read, and must not come
    from another site by the browser's own word (``Sec-Fetch-Site``, ``Origin``): else 403."""
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)  # signs the flash messages' cookie; new with each start
    csrf_token = secrets.token_urlsafe(32)
    host_names = LOOPBACK_NAMES | {host.strip("[]").lower()}

    @app.context_processor
    def everywhere() -> dict:
        return {"where": where, "read_only": read_only, "statuses": sorted(Status.ALL), "csrf_token": csrf_token}

    @app.before_request
    def named_as_this_console_only() -> None:
        if _host_name(request.host) not in host_names:
            abort(400, description="this console answers only to its own address (127.0.0.1, localhost)")

    @app.before_request
    def actions_only_when_allowed() -> None:
        if read_only is not None and request.endpoint in ACTIONS:
            abort(403, description=read_only)

    @app.before_request
    def same_site_posts_only() -> None:
        if request.method != "POST":
            return
        if request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            abort(403)
        origin = request.headers.get("Origin")
        if origin and origin != request.host_url.rstrip("/"):
            abort(403)
        if not hmac.compare_digest(request.form.get("csrf_token", ""), csrf_token):
            abort(403)

    @app.after_request
    def secure(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/")
    def overview():
        return render_template("overview.html", o=data.overview())

    @app.get("/files")
    def files():
        wanted = FileFilter.from_args(request.args)

        def link(**changes) -> str:
            return url_for("files", **wanted.args(**changes))

        return render_template("files.html", page=data.files(wanted), wanted=wanted, link=link, sortable=list(SORTABLE))

    @app.get("/files/<fid>")
    def file(fid: str):
        record = data.file(fid) or abort(404)
        return render_template("file.html", r=record, timeline=timeline(record), counts=counts_table(record))

    @app.get("/files/<fid>/rejected-rows.csv")
    def rejected_rows(fid: str):
        record = data.file(fid) or abort(404)
        body = data.rejected_rows(record)
        if body is None:
            abort(404)
        name = record.file_name.rsplit(".", 1)[0]
        # send_file names a file beyond Latin-1 as RFC 5987 says (filename*): a raw header cannot be sent.
        download_name = f"{_header_safe(name)}-rejected-rows.csv"
        return send_file(io.BytesIO(body), "text/csv", as_attachment=True, download_name=download_name)

    @app.get("/files/<fid>/retry")
    def confirm_retry(fid: str):
        return render_template("confirm.html", r=data.file(fid) or abort(404), action="retry")

    @app.post("/files/<fid>/retry")
    def retry(fid: str):
        try:
            flash(data.retry(fid))
        except ActionRefused as refused:
            flash(f"not retried: {refused}", "error")
        return redirect(url_for("file", fid=fid), code=303)

    @app.get("/sweep")
    def confirm_sweep():
        return render_template("confirm.html", r=None, action="sweep")

    @app.post("/sweep")
    def sweep():
        data.sweep()
        flash("the daily sweep started: a Glue run takes every file waiting (PENDING, FAILED with attempts left)")
        return redirect(url_for("overview"), code=303)

    @app.get("/quality")
    def quality():
        try:
            days = min(max(int(request.args.get("days", 30)), 1), 366)
        except ValueError:
            days = 30
        return render_template("quality.html", q=data.quality(days))

    @app.get("/runs")
    def runs():
        return render_template("runs.html", runs=data.runs())

    @app.get("/runs/<run_id>")
    def run(run_id: str):
        return render_template("run.html", run=data.run(run_id) or abort(404))

    return app


def _host_name(host: str) -> str:
    """The name in ``Host`` (werkzeug has checked its characters; "" when invalid), without its port."""
    name = host[1 : host.find("]")] if host.startswith("[") else host.partition(":")[0]
    return name.lower()


def _header_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "file"
