"""The SparkSession a Glue script gets off Glue: one definition for the job script's plain-PySpark branch
and the local runner's standby process (which starts it before the run arrives).

Settings from the environment: GLUELINE_SPARK_MASTER (default ``local[*]``),
GLUELINE_SPARK_DRIVER_MEMORY (default ``2g``).
"""

from __future__ import annotations

import os
import sys


def session(app_name: str):
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)  # workers need this venv (pyarrow, psycopg)
    from pyspark.sql import SparkSession

    return (
        SparkSession.builder.appName(app_name)
        .master(os.environ.get("GLUELINE_SPARK_MASTER", "local[*]"))
        .config("spark.ui.enabled", "false")
        .config("spark.driver.memory", os.environ.get("GLUELINE_SPARK_DRIVER_MEMORY", "2g"))
        .getOrCreate()
    )
