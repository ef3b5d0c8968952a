"""What the Lambda and the Glue job share, shipped in both: the data contract, the S3 layout, the audit
record, the file lifecycle, the integrity check, the event shapes, the database secret, the counts; and
the names every layer above agrees on (the target table's name, a Glue run's states and log groups).

Standard library and boto3 only (both runtimes have them): ``tests/unit/ops/test_packaging.py`` imports
every module here in an interpreter that has nothing else."""
