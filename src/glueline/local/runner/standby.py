"""A job process started before its run: Spark started and the job's own warm-up done, waiting.

A cold PySpark process spends most of a small file's run starting: the JVM, the first query's planning
and code generation, the Python workers. The runner keeps one standby for the job it expects next and
hands that job's next run to it, so the wait happens off the critical path. Each standby serves exactly
one run and exits, as a fresh Glue run would.

The standby knows nothing of the job: it is started with the job's deployed script and
``--extra-py-files`` (its ``PYTHONPATH``, which Spark's Python workers inherit), imports the script
without running it, and calls the script's ``warm_up(spark)`` if it defines one — any script may offer
the hook. The runner hands it a run only if that run's script and extra files are byte for byte the ones
it was started with, so a run always executes the code it was deployed with.

It is started by path with ``python -I`` (not as ``-m glueline...``): nothing of the runner's own
installation is imported, so the deployed code is what ``import`` finds.

A run that arrives while the hook still runs cuts it short (its Spark jobs cancelled until it gives up):
the run waits for Spark's start, never for the rest of a warm-up — back-to-back runs would otherwise each
wait out a whole one.

Protocol (JSON lines): stdin first brings ``{"script", "py_files"}``; once warm the standby writes
``ready`` on its original stdout (its output goes to its log from the start); stdin then brings the run:
``{"script", "argv", "cwd", "env", "stdout", "stderr"}``, and the standby runs the script as ``__main__``
with its stdout and stderr in the run's two log files.
"""

import json
import os
import runpy
import sys
import threading
import traceback

CUT_SHORT_INTERVAL_SECONDS = 0.2


def main() -> None:
    protocol = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)  # what anything prints goes to the log; the protocol has its own channel
    warm = json.loads(sys.stdin.readline())
    for path in reversed(warm["py_files"]):
        sys.path.insert(0, path)
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("glueline-standby").getOrCreate()
    spark.sparkContext.setLogLevel("WARN")
    warming = threading.Thread(target=_warm_up, args=(spark, warm["script"], protocol), name="warm-up", daemon=True)
    warming.start()
    line = sys.stdin.readline()
    while warming.is_alive():  # the run came first: it waits for Spark's start, not for the warm-up
        spark.sparkContext.cancelAllJobs()  # again until the hook gives up: it may start another job
        warming.join(CUT_SHORT_INTERVAL_SECONDS)
    if not line:
        return  # the runner went away
    run = json.loads(line)
    sys.stdout.flush()
    sys.stderr.flush()
    for descriptor, path in ((1, run["stdout"]), (2, run["stderr"])):
        os.dup2(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644), descriptor)
    os.chdir(run["cwd"])
    os.environ.update(run["env"])
    sys.argv = [run["script"], *run["argv"]]
    code = 0
    try:
        runpy.run_path(run["script"], run_name="__main__")
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 1)
        if code and not isinstance(exit_.code, int):
            print(exit_.code, file=sys.stderr)  # as the interpreter does: the reason is the run's error
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _warm_up(spark, script: str, protocol) -> None:
    """Import the script and call its hook; ``ready`` once done (cut short by a run: never)."""
    try:
        hook = runpy.run_path(script, run_name="__glue_warm_up__").get("warm_up")
        if callable(hook):
            hook(spark)
    except Exception as error:  # a standby that could not warm up, or was cut short, is still a started one
        print(f"warm-up ended early: {type(error).__name__}: {str(error)[:200]}", file=sys.stderr)
        return
    protocol.write("ready\n")
    protocol.flush()


if __name__ == "__main__":
    main()
