"""The data engineer's inner loop: a debugger attached to a Glue run's driver and Spark's UI and history of
a run (on both stacks: the runner's container publishes their ports), and the files run again when the
job's code changes (the CLI's, so the embedded stack's)."""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import threading
import urllib.request
from pathlib import Path, PurePosixPath

import pytest

from glueline.local.ports import free_port
from glueline.polling import wait_for

from .dap import DapClient
from .harness import GLUELINE, HEADER, cli_environment, row

REPOSITORY = Path(__file__).resolve().parents[2]
SCRIPT = REPOSITORY / "services/glue/ETL_Job_to_RDS.py"
RUN = REPOSITORY / "src/glueline/job/run.py"


def line_of(path: Path, text: str) -> int:
    return next(number for number, line in enumerate(path.read_text().splitlines(), 1) if text in line)


def ports_here(glueline) -> int | None:
    """A free port for the embedded stack's tools (another may run here); compose has published its own."""
    return None if glueline.stack.kind == "compose" else free_port()


def test_a_debugger_attaches_to_the_glue_run_and_its_breakpoints_hit(glueline, tmp_path):
    loop = glueline.stack.inner_loop(debug_port=ports_here(glueline))
    with glueline.deployed_with(glue_debug=loop.debug_listen):  # runs wait for no debugger after it
        upload = glueline.upload_bytes(tmp_path, "debugged.csv", f"{HEADER}\n{row(1)}\n".encode())
        debug_root = PurePosixPath(loop.debug_root)  # as the runner lays the run's code out
        # The repository's files, as an editor has them (.vscode/launch.json maps them the same way).
        breakpoints = {
            SCRIPT: line_of(SCRIPT, 'announced = Lifecycle.announced(args["FILE_IDS"])'),
            RUN: line_of(RUN, "candidates = self._work()"),
        }
        host, port = loop.debug_attach.rsplit(":", 1)
        client = DapClient(host, int(port), adapterID="debugpy", clientID="glueline-test", pathFormat="path")
        try:
            attach = client.send(
                "attach",
                justMyCode=False,
                pathMappings=[
                    {"localRoot": str(SCRIPT.parent), "remoteRoot": str(debug_root / "script")},
                    {"localRoot": str(REPOSITORY / "src/glueline"), "remoteRoot": str(debug_root / "lib/glueline")},
                ],
            )
            client.event("initialized")
            for path, line in breakpoints.items():
                answer = client.request("setBreakpoints", source={"path": str(path)}, breakpoints=[{"line": line}])
                assert answer["body"]["breakpoints"][0]["verified"], answer
            client.request("configurationDone")
            client.receive(lambda m: m["type"] == "response" and m["request_seq"] == attach)
            hit = []
            while len(hit) < len(breakpoints):
                stopped = client.event("stopped")
                assert stopped["body"]["reason"] == "breakpoint", stopped
                thread = stopped["body"]["threadId"]
                frame = client.request("stackTrace", threadId=thread, levels=1)["body"]["stackFrames"][0]
                hit.append((Path(frame["source"]["path"]), frame["line"]))
                if len(hit) == len(breakpoints):  # the library's line runs again for every batch
                    for path in breakpoints:
                        client.request("setBreakpoints", source={"path": str(path)}, breakpoints=[])
                client.request("continue", threadId=thread)
            assert hit == list(breakpoints.items())  # the script's line first, then the library's
            client.request("disconnect", terminateDebuggee=False)
        finally:
            client.close()
        [record] = glueline.wait([upload])
        assert record.status == "COMPLETED" and record.counts.rows_loaded == 1


def test_runs_with_the_spark_ui_keep_an_event_log_the_history_server_shows(glueline, tmp_path):
    with glueline.deployed_with(spark_ui=True):
        upload = glueline.upload_bytes(tmp_path, "seen.csv", f"{HEADER}\n{row(1)}\n".encode())
        [record] = glueline.wait([upload])
    assert record.status == "COMPLETED"
    with glueline.stack.history_server(ports_here(glueline)) as url:

        def get(path: str):
            with urllib.request.urlopen(url + "/api/v1/applications" + path, timeout=10) as answer:
                return json.load(answer)

        def listed():  # the only run of this stack with the UI on
            return [a for a in get("") if a["name"] == glueline.settings.glue_job]

        [application] = wait_for(listed, 60, "the run in the history server")
        spark = dict(get(f"/{application['id']}/environment")["sparkProperties"])
        stages = get(f"/{application['id']}/stages")
    assert application["attempts"][0]["completed"] is True
    assert (spark["spark.ui.enabled"], spark["spark.ui.port"]) == ("true", "4040")
    statuses = {stage["status"] for stage in stages}  # what the UI's Stages tab shows
    assert "COMPLETE" in statuses and "FAILED" not in statuses


def interruptible() -> None:
    """In the child: Ctrl-C's default, as in a terminal's foreground. A suite started in the background
    by a script has SIGINT ignored, and the child would inherit that (and rightly ignore Ctrl-C)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.embedded_only  # the CLI's loop: the same on both stacks
def test_watch_deploys_a_changed_job_and_runs_the_files_again_as_new_files(glueline, tmp_path):
    path = tmp_path / "watched.csv"
    path.write_text(f"{HEADER}\n{row(1)}\n")
    original = SCRIPT.read_bytes()
    progress = tmp_path / "progress.log"
    with open(progress, "wb") as stderr:
        watcher = subprocess.Popen(
            [GLUELINE, "run", str(path), "--watch", "--json"],
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=cli_environment(glueline),
            start_new_session=True,
            preexec_fn=interruptible,
        )
    reports = JsonStream(watcher.stdout)
    try:
        [first] = reports.next(timeout=300)["files"]
        assert (first["file_name"], first["status"]) == ("watched.csv", "COMPLETED")
        SCRIPT.write_bytes(original + b"\n# a change the watcher deploys\n")
        [second] = reports.next(timeout=300)["files"]
        assert (second["file_name"], second["status"]) == ("watch-1/watched.csv", "COMPLETED")
        assert second["file_id"] != first["file_id"]  # a new file, not a redelivery
        deployed = glueline.client("s3").get_object(Bucket=glueline.bucket, Key="scripts/ETL_Job_to_RDS.py")
        assert deployed["Body"].read().endswith(b"# a change the watcher deploys\n")
        watcher.send_signal(signal.SIGINT)
        assert watcher.wait(timeout=60) == 0, progress.read_text()
        assert "stopped watching" in progress.read_text()
    finally:
        SCRIPT.write_bytes(original)
        if watcher.poll() is None:
            os.killpg(watcher.pid, signal.SIGKILL)
            watcher.wait()
        glueline.deploy()  # the job's code as the repository has it


class JsonStream:
    """The JSON documents a process prints, one after another, read as they come."""

    def __init__(self, stream):
        self.documents: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream) -> None:
        decoder, buffer = json.JSONDecoder(), ""
        for line in iter(stream.readline, b""):
            buffer += line.decode()
            try:
                document, end = decoder.raw_decode(buffer.strip())
            except json.JSONDecodeError:
                continue
            self.documents.put(document)
            buffer = buffer.strip()[end:]

    def next(self, timeout: float) -> dict:
        return self.documents.get(timeout=timeout)
