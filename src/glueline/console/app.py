"""The console's pages: each route reads its parameters, asks ``ConsoleData`` and renders a template
(Jinja2, autoescaped: file names and error messages are data, never markup). Every asset is in this
package; the Content-Security-Policy lets a page load nothing from anywhere else and run no inline
script."""

from __future__ import annotations

import hmac
import secrets

from flask import Flask, Response, abort, flash, redirect, render_template, request, url_for

from glueline.console.data import SORTABLE, ActionRefused, ConsoleData, FileFilter, counts_table, timeline
from glueline.shared.audit import Status

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # "no-referrer" would make a form's Origin "null"
    "X-Frame-Options": "DENY",
}


def create_app(data: ConsoleData, where: str) -> Flask:
    """``where``: the environment the console reads, shown on every page.

    The two actions (retry a file, run the sweep) are a confirmation page (GET) and its form (POST).
    A POST must carry the token this process made at start and put in its own pages, which another
    site's page cannot read, and must not come from another site by the browser's own word
    (``Sec-Fetch-Site``, ``Origin``): a cross-site request is refused with 403."""
    app = Flask(__name__)
    app.secret_key = secrets.token_bytes(32)  # signs the flash messages' cookie; new with each start
    csrf_token = secrets.token_urlsafe(32)

    @app.context_processor
    def everywhere() -> dict:
        return {"where": where, "statuses": sorted(Status.ALL), "csrf_token": csrf_token}

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
        return Response(
            body,
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{_header_safe(name)}-rejected-rows.csv"'},
        )

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


def _header_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "file"
