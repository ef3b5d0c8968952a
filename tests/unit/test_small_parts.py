import pytest

from glueline.dbsecret import DbConnection
from glueline.jobargs import resolve_options
from glueline.samples import generate_rows, write_file
from glueline.schema import TableName


def test_job_arguments_like_get_resolved_options():
    argv = ["script.py", "--JOB_NAME", "j", "--JOB_RUN_ID=jr_1", "--extra", "x", "--TARGET_TABLE", "a.b"]
    assert resolve_options(argv, ["JOB_NAME", "JOB_RUN_ID", "TARGET_TABLE"]) == {
        "JOB_NAME": "j",
        "JOB_RUN_ID": "jr_1",
        "TARGET_TABLE": "a.b",
    }
    with pytest.raises(SystemExit, match="--DB_SECRET_ID"):
        resolve_options(argv, ["DB_SECRET_ID"])


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


@pytest.mark.parametrize("name", ["transactions; drop table x", "Public.T", "a.b.c", "1abc", ""])
def test_table_names_from_settings_are_validated(name):
    with pytest.raises(ValueError):
        TableName.parse(name)


def test_table_name_defaults_to_public_schema():
    assert str(TableName.parse("transactions")) == "public.transactions"


def test_generator_is_seeded_and_its_manifest_reconciles(tmp_path):
    a = write_file(tmp_path / "a.csv", 3000, seed=5, dirty=0.2)
    b = write_file(tmp_path / "b.csv", 3000, seed=5, dirty=0.2)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert a == b
    assert a.rows_read == 3000
    assert a.rows_read == a.rows_loaded + a.rows_rejected + a.rows_duplicate
    assert min(a.rows_rejected, a.rows_duplicate, a.customer_id_filled, a.dates_replaced) > 0
    rows = list(generate_rows(10, seed=1, dirty=0.0))
    assert len({r["TransactionID"] for r in rows}) == 10


def test_the_sample_files_are_the_seeded_generator_output(tmp_path):
    """data/samples/expected-counts.json holds the generator's manifests for the generated samples."""
    import json
    from pathlib import Path

    from glueline.samples import manifest_dict

    samples = Path(__file__).resolve().parents[2] / "data" / "samples"
    expected = json.loads((samples / "expected-counts.json").read_text())
    for name, kwargs in {
        "transactions_2024-07-12.csv": dict(rows=200, seed=12, dirty=0.1, first_id=200_000),
        "transactions_2024-07-13.csv": dict(rows=250, seed=13, dirty=0.1, first_id=300_000, crlf=True),
    }.items():
        manifest = write_file(tmp_path / name, **kwargs)
        assert (tmp_path / name).read_bytes() == (samples / name).read_bytes()
        assert manifest_dict(manifest) == expected[name]
