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


def warm_up(spark) -> None:
    """Exercise what a CSV-to-PostgreSQL job uses — the CSV reader, string, cast and date functions,
    JSON, mapInArrow with pyarrow in Python workers — on a few rows, without importing any job code."""
    from pyspark.sql import functions as F

    with tempfile.TemporaryDirectory(prefix="glueline-warm-") as directory:
        path = os.path.join(directory, "warm.csv")
        with open(path, "w") as out:
            out.write(
                "a,b,c,d\n" + "".join(f' {i} ,"x, ""{i}""",{i}.50,2024-07-{i % 28 + 1:02d}\n' for i in range(200))
            )
        df = (
            spark.read.schema("a string, b string, c string, d string, _corrupt_record string")
            .option("header", True)
            .option("escape", '"')
            .option("columnNameOfCorruptRecord", "_corrupt_record")
            .csv(path)
            .withColumn("p", F.monotonically_increasing_id())
        )
        df = df.select(
            F.expr("trim(BOTH ' \\t' FROM a)").cast("bigint").alias("a"),
            F.when(F.instr("b", "x") > 0, F.upper("b")).alias("b"),
            F.col("c").cast("decimal(18,2)").alias("c"),
            F.to_date("d", "yyyy-MM-dd").alias("d"),
            F.to_json(F.struct(F.translate("b", "x", "").alias("t"))).alias("j"),
            (F.octet_length("b") == F.length("b")).alias("ascii"),
            "p",
        )

        def to_csv(batches):
            import io

            import pyarrow as pa
            import pyarrow.csv as pacsv

            for batch in batches:
                pacsv.write_csv(pa.Table.from_batches([batch]), io.BytesIO())
                yield batch

        for _ in df.mapInArrow(to_csv, df.schema).toLocalIterator():
            pass


def _forget_package(name: str) -> None:
    for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
        del sys.modules[module]


def main() -> None:
    from glueline.localspark import session

    spark = session("glueline-standby")
    spark.sparkContext.setLogLevel("WARN")
    warm_up(spark)
    with open("standby.ready", "w") as ready:  # in the runner's state directory, our working directory
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
