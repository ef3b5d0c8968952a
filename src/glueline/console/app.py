"""The console's pages: each route reads its parameters, asks ``ConsoleData`` and renders a template
(Jinja2, autoescaped: file names and error messages are data, never markup). Every asset is in this
package; the Content-Security-Policy lets a page load nothing from anywhere else and run no inline
script."""

from __future__ import annotations

from flask import Flask, Response, abort, render_template, request, url_for

from glueline.console.data import SORTABLE, ConsoleData, FileFilter, counts_table, timeline
from glueline.shared.audit import Status

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def create_app(data: ConsoleData, where: str) -> Flask:
    """``where``: the environment the console reads, shown on every page."""
    app = Flask(__name__)

    @app.context_processor
    def everywhere() -> dict:
        return {"where": where, "statuses": sorted(Status.ALL)}

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

    @app.get("/runs")
    def runs():
        return render_template("runs.html", runs=data.runs())

    @app.get("/runs/<run_id>")
    def run(run_id: str):
        return render_template("run.html", run=data.run(run_id) or abort(404))

    return app


def _header_safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[:100] or "file"
