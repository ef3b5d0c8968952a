import os
import sys

import pytest


@pytest.fixture(scope="session")
def spark():
    """A small local Spark session with the SQL settings the cleaning rules rely on."""
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession

    from glueline.transform import SPARK_SQL_SETTINGS

    builder = SparkSession.builder.master("local[1]").appName("glueline-unit").config("spark.ui.enabled", "false")
    for key, value in {**SPARK_SQL_SETTINGS, "spark.sql.shuffle.partitions": "1"}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()
