"""What the Glue job ETL_Job_to_RDS does (``services/glue/ETL_Job_to_RDS.py`` wires it): the run's
orchestration, reading, the cleaning rules, loading into PostgreSQL, the table schema. Shipped as the
job's ``--extra-py-files`` with ``glueline.shared``: may use what Glue 5 provides (pyspark, numpy,
pyarrow, boto3) and psycopg."""
