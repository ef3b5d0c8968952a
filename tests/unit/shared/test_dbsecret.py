from glueline.shared.dbsecret import DbConnection


def test_database_url_round_trip_and_no_password_in_repr():
    db = DbConnection.from_url("postgresql://etl:p%40ss@db.example:6543/bank?sslmode=require")
    assert (db.username, db.password, db.host, db.port, db.dbname, db.sslmode) == (
        "etl",
        "p@ss",
        "db.example",
        6543,
        "bank",
        "require",
    )
    assert DbConnection.from_secret(db.secret_string()) == db
    assert "p@ss" not in repr(db) and "p%40ss" not in db.url(with_password=False)
    assert db.url(with_password=True) == "postgresql://etl:p%40ss@db.example:6543/bank"


def test_the_target_names_the_database_and_table_but_no_secret():
    db = DbConnection.from_url("postgresql://etl:secret@db.example:6543/bank")
    assert db.target("public.transactions") == "db.example:6543/bank/public.transactions"
    assert "secret" not in db.target("public.transactions") and "etl" not in db.target("public.transactions")


def test_spark_tasks_carry_the_secret_name_not_the_password(aws):
    """What a task closure holds (pickled and shipped to executors) names the secret; the executor reads
    it from Secrets Manager."""
    import pickle

    import boto3

    from glueline.shared.dbsecret import SecretReference, _read_secret

    db = DbConnection(host="db.example", port=5432, dbname="bank", username="etl", password="s3cr3t-pw")
    boto3.client("secretsmanager").create_secret(Name="glueline/rds", SecretString=db.secret_string())
    reference = SecretReference("glueline/rds")
    assert b"s3cr3t-pw" not in pickle.dumps(reference)
    _read_secret.cache_clear()
    assert pickle.loads(pickle.dumps(reference)).connect_kwargs() == db.connect_kwargs()


def test_a_ca_bundle_in_s3_is_fetched_where_the_connection_is_made(aws):
    import boto3

    s3 = boto3.client("s3")
    s3.create_bucket(Bucket="ca-bucket")
    s3.put_object(Bucket="ca-bucket", Key="scripts/rds-ca-bundle.pem", Body=b"PEM")
    db = DbConnection.from_url(
        "postgresql://etl:pw@mydb.abc.eu-west-1.rds.amazonaws.com/bank?sslmode=verify-full"
        "&sslrootcert=s3://ca-bucket/scripts/rds-ca-bundle.pem"
    )
    assert DbConnection.from_secret(db.secret_string()) == db
    kwargs = db.connect_kwargs()
    assert kwargs["sslmode"] == "verify-full" and open(kwargs["sslrootcert"], "rb").read() == b"PEM"
