"""A local AWS Glue job runner: the Glue API for jobs and job runs, executing scripts with local Spark."""
