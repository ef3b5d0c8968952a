import json

from glueline.local.samples import generate_rows, write_file
from glueline.ops.packaging import bundled


def test_the_generator_is_seeded_and_its_counts_reconcile(tmp_path):
    a = write_file(tmp_path / "a.csv", 3000, seed=5, dirty=0.2)
    b = write_file(tmp_path / "b.csv", 3000, seed=5, dirty=0.2)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert a == b and a.rows_read == 3000 and a.reconciles
    assert min(a.rows_rejected, a.rows_duplicate, a.customer_id_filled, a.dates_replaced) > 0
    rows = list(generate_rows(10, seed=1, dirty=0.0))
    assert len({r["TransactionID"] for r in rows}) == 10


def test_the_sample_files_are_the_seeded_generator_output(tmp_path):
    """data/samples/expected-counts.json holds the generator's counts for the generated samples."""
    samples = bundled("samples")
    expected = json.loads((samples / "expected-counts.json").read_text())
    for name, kwargs in {
        "transactions_2024-07-12.csv": dict(rows=200, seed=12, dirty=0.1, first_id=200_000),
        "transactions_2024-07-13.csv": dict(rows=250, seed=13, dirty=0.1, first_id=300_000, crlf=True),
    }.items():
        counts = write_file(tmp_path / name, **kwargs)
        assert (tmp_path / name).read_bytes() == (samples / name).read_bytes()
        assert counts.as_dict() == expected[name]
