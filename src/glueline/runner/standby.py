"""A job process started before its run: Python imported, Spark started and warmed up, waiting.

A cold PySpark process spends most of a small file's run starting: the JVM, the first job's planning,
code generation and Python workers (≈ 15 s here for a 10k-row file, ≈ 2.5 s warm). The runner keeps one
standby and hands the next run to it, so that wait happens off the critical path. Each standby serves
exactly one run and exits, as a fresh Glue run would: nothing carries over between runs but the warm
JVM of an otherwise unused process.

Once warm, it writes its pid to ``standby.ready`` in its working directory (the runner's state
directory). Protocol: the runner writes one JSON line to stdin —
``{"script", "argv", "cwd", "env", "py_files", "log"}`` — and the standby, once warm, sends its output to
``log``, applies the run's environment, puts ``py_files`` on the path of the driver and of Spark's
Python workers (as Glue does with ``--extra-py-files``), and runs the script as ``__main__``. Modules of
the package it was started from are forgotten first, so the script imports the code it was deployed
with.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import traceback

READY_FILE = "standby.ready"  # in the runner's state directory, the standby's working directory


def warm_up(spark) -> None:
    """Run the job's own read and cleaning plan on a small generated file, split and multi-line, so the
    JVM has planned, code-generated and compiled what a run does, and the Python workers have imported
    what the load imports. Only the driver imports glueline for this, and forgets it before the run; the
    function the workers run is defined here, imports nothing of ours and is shipped by value, so a run's
    tasks use the code the run was deployed with."""
    from datetime import datetime, timezone
    from pathlib import Path

    from glueline.integrity import SAMPLE_BYTES, check_prefix
    from glueline.load import columns_for_loading
    from glueline.samples import write_file
    from glueline.transform import clean, read_csv, use_sql_settings

    def to_csv(batches):
        import io

        import numpy  # noqa: F401
        import psycopg  # noqa: F401
        import pyarrow as pa
        import pyarrow.compute  # noqa: F401
        import pyarrow.csv as pacsv

        for batch in batches:
            pacsv.write_csv(pa.Table.from_batches([batch]), io.BytesIO())
            yield batch

    use_sql_settings(spark)
    with tempfile.TemporaryDirectory(prefix="glueline-warm-") as directory:
        path = Path(directory) / "warm.csv"
        write_file(path, 500, seed=1, dirty=0.1, line_breaks=False)
        header = check_prefix(path.read_bytes()[:SAMPLE_BYTES], complete=True).header
        for multiline in (False, True):
            raw = read_csv(spark, str(path), header, multiline)
            cleaned = clean(raw, datetime.now(timezone.utc).date(), "s3://warm/warm.csv", "warm")
            loading = columns_for_loading(cleaned)
            for _ in loading.mapInArrow(to_csv, loading.schema).toLocalIterator():
                pass


def _forget_package(name: str) -> None:
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def main() -> None:
    from glueline.localspark import session

    spark = session("glueline-standby")
    spark.sparkContext.setLogLevel("WARN")
    try:
        warm_up(spark)
    except Exception:  # a standby that could not warm up is still a started one
        traceback.print_exc()
    with open(READY_FILE, "w") as ready:
        ready.write(str(os.getpid()))
    print("standby: warm, waiting for a run", flush=True)
    line = sys.stdin.readline()
    if not line:
        return  # the runner went away
    run = json.loads(line)
    log = os.open(run["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    sys.stdout.flush()
    sys.stderr.flush()
    os.dup2(log, 1)
    os.dup2(log, 2)
    os.chdir(run["cwd"])
    os.environ.update(run["env"])
    for path in reversed(run["py_files"]):
        sys.path.insert(0, path)
        spark.sparkContext.addPyFile(path)
    _forget_package("glueline")
    sys.argv = [run["script"], *run["argv"]]
    code = 0
    try:
        runpy.run_path(run["script"], run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    main()
