"""glueline's settings: one object, one place.

Layered like dlt's providers, highest first: ``GLUELINE_*`` environment variables, a ``.env`` file, a
``glueline.toml`` file (both in the working directory), then the defaults below. AWS endpoints,
credentials and region are *not* settings of ours: they come from the standard AWS configuration
(profile, ``AWS_ENDPOINT_URL*``), which is what selects local or real AWS.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from glueline.shared.tablename import TableName
from glueline.shared.timeouts import DbBounds


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="GLUELINE_", env_file=".env", toml_file="glueline.toml", extra="ignore"
    )

    # -- resources (the AWS walkthrough's names) -------------------------------------------------
    stack: str = Field("glueline", description="value of the glueline:stack tag on every resource deploy creates")
    bucket: str | None = Field(
        None, description="pipeline bucket; default glueline-<account>-<region> (S3 names are global)"
    )
    audit_table: str = "S3_Audit_1"
    lambda_function: str = "ETL_Lambda_Function"
    lambda_role: str = "LambdaS3ExecutionRole"
    lambda_timeout_seconds: int = 300
    lambda_reserved_concurrency: int = Field(
        2,
        ge=0,
        description="the Lambda's reserved concurrency, so a burst of uploads cannot drain the account's "
        "(it starts runs of a job that takes one at a time); 0: none reserved (accounts whose limit is 10)",
    )
    bucket_tls_only: bool = Field(
        True,
        description="a bucket policy that refuses requests without TLS; not applied through a plain-HTTP "
        "endpoint (an emulator), which it would lock out",
    )
    rejected_rows_retention_days: int = Field(
        90, ge=1, description="days rejected/rows/ (the rows a load refused, with reasons) are kept"
    )
    log_retention_days: int = Field(
        30, description="days the Lambda's CloudWatch logs are kept (a value CloudWatch Logs accepts)"
    )
    lambda_failure_queue: str = Field(
        "glueline-lambda-failures", description="SQS queue that keeps events the Lambda failed on after retries"
    )
    glue_job: str = "ETL_Job_to_RDS"
    glue_role: str = "GlueServiceRole"
    db_login_job: str = Field(
        "ETL_DB_Login",
        description="the one-off Glue job that makes the ETL's own database login (from inside its network)",
    )
    db_login_role: str = Field(
        "GlueDbLoginRole", description="the login job's role: the one that reads the master's secret"
    )
    events_role: str = Field(
        "EventBridgeInvokeLambdaRole",
        description="the walkthrough's role for EventBridge, which nothing assumes and deploy no longer creates; "
        "destroy removes one an earlier deploy made",
    )
    glue_version: str = Field("5.0", description="5.0 (Spark 3.5, Python 3.11) or the design's 4.0")
    glue_worker_type: str = "G.1X"
    glue_workers: int = 2
    glue_max_concurrent_runs: int = 1
    glue_timeout_minutes: int = Field(
        60,
        ge=1,
        le=10080,
        description="the Glue job's Timeout: a longer run ends TIMEOUT and the next trigger retries its files "
        "(a day's files load in minutes; Glue's own default, 48 h, would let a hung database hold DPUs for two days)",
    )
    glue_batch_seconds: int = Field(
        600,
        ge=0,
        description="the most a batch of files may take (Spark's pass, the merges, settling): a run with less of its "
        "Timeout left claims no new batch and hands the work to the next run; 0: a run claims until its Timeout",
    )
    max_attempts: int = Field(3, ge=1, description="processing attempts of a file before it is moved to rejected/")
    db_lost_within_seconds: int = Field(
        60,
        ge=6,
        le=900,
        description="the Glue job gives up on a database gone silent (a cut network, a vanished host) within this: "
        "TCP keepalives and tcp_user_timeout, at both ends of each connection (glueline.shared.timeouts)",
    )
    db_ddl_timeout_seconds: int = Field(
        60,
        ge=1,
        le=3600,
        description="the job's DDL (its target's columns, its staging tables) waits this long at most behind "
        "another session's lock; then the run fails its files without counting an attempt",
    )
    glue_connection: str = Field("glueline-network", description="the job's Glue NETWORK connection")
    glue_subnet_id: str | None = Field(None, description="subnet of Glue's workers; default: the default VPC's first")
    glue_security_group_id: str | None = Field(
        None, description="security group of Glue's workers; default: glueline-glue, created (self-referencing)"
    )
    vpc_endpoints: bool = Field(
        True, description="S3/DynamoDB gateway + Secrets Manager/Logs/STS/Glue interface endpoints; off: needs a NAT"
    )
    schedule_rule: str = "ETL_Daily_Schedule"
    schedule_expression: str = "cron(0 8 * * ? *)"
    s3_rule: str = "ETL_S3_Object_Created"
    db_secret_name: str = "glueline/rds"
    db_login: str = Field(
        "glueline_etl", description="the ETL's own database login, which deploy makes where it knows the master"
    )
    db_master_secret_name: str = Field(
        "glueline/rds-master", description="a local stack's database master (an RDS database deploy created: RDS's own)"
    )
    target_table: str = "public.transactions"
    db_url: str | None = Field(
        None, description="PostgreSQL to load into (postgresql://…); default: the embedded server"
    )

    create_database: bool = Field(False, description="deploy creates the database: RDS PostgreSQL, private")
    db_instance: str = "glueline-db"
    db_instance_class: str = "db.t4g.micro"
    db_allocated_storage_gb: int = 20
    db_engine_version: str = "16"
    db_name: str = "glueline"
    db_username: str = "glueline"
    db_ca_bundle: Path | None = Field(
        None, description="CA bundle for sslmode=verify-full to RDS; default: AWS's global RDS bundle, downloaded"
    )

    # -- the embedded stack ------------------------------------------------------------------------
    state_dir: Path = Path(".glueline")
    region: str = "us-east-1"
    emulator_port: int = Field(0, description="0 picks a free port")
    glue_runner_port: int = 0
    postgres_port: int = 0
    # The compose stack publishes the inner loop's ports of its Glue runner; 0: the usual one where free
    # (5678, 4040, 18080), else a free one (glueline run --debug / --spark-ui and spark-history print them).
    debug_port: int = 0
    spark_ui_port: int = 0
    spark_history_port: int = 0
    postgres_bin_dir: Path | None = None
    emulator_durable: bool = Field(
        False, description="answer a write only once it is on disk, so a kill -9 loses nothing (slower; the soak)"
    )
    spark_ui: bool = Field(
        False,
        description="Glue's --enable-spark-ui for the job's runs: Spark's UI while a run is active and its event "
        "log (s3://<bucket>/spark-events/ on AWS; the local runner's state directory, glueline spark-history)",
    )
    glue_debug: str | None = Field(
        None,
        description="HOST:PORT where a Glue run's driver waits for a debugger (glueline run --debug; the local "
        "Glue runner only: see glueline.local.runner.debug)",
    )

    # -- the compose stack (docker-compose.yml; ports above) -------------------------------------------
    emulator: str = Field("localstack", description="the compose stack's AWS emulator: localstack or ministack")
    localstack_image: str = "localstack/localstack:4.14.0"
    ministack_image: str = "ministackorg/ministack:1.5.33"
    postgres_image: str = "postgres:16"
    glue_base_image: str = Field("public.ecr.aws/glue/aws-glue-libs:5", description="base of services/glue/Dockerfile")

    @field_validator("target_table")
    @classmethod
    def _valid_table(cls, value: str) -> str:
        TableName.parse(value)
        return value

    @field_validator("glue_version")
    @classmethod
    def _known_glue_version(cls, value: str) -> str:
        if value not in ("4.0", "5.0", "5.1"):
            raise ValueError("glue_version must be 4.0, 5.0 or 5.1")
        return value

    @model_validator(mode="after")
    def _a_batch_fits_in_a_run(self) -> Settings:
        if self.glue_batch_seconds >= 60 * self.glue_timeout_minutes:
            raise ValueError(
                f"glue_batch_seconds ({self.glue_batch_seconds}) must be less than the Glue job's Timeout "
                f"(glue_timeout_minutes: {self.glue_timeout_minutes} min = {60 * self.glue_timeout_minutes} s)"
            )
        return self

    def bucket_name(self, account: str, region: str) -> str:
        return self.bucket or f"glueline-{account}-{region}"

    @property
    def table(self) -> TableName:
        return TableName.parse(self.target_table)

    @property
    def db_bounds(self) -> DbBounds:
        return DbBounds(self.db_lost_within_seconds, self.db_ddl_timeout_seconds)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, TomlConfigSettingsSource(settings_cls))
