"""Which scripts the warm standby serves: those that offer a ``warm_up`` hook (defined or imported at
their top level). A one-off job without one (deploy's login job) gets no standby, so it never takes the
place of the one kept for the job that runs every day."""

from __future__ import annotations

import pytest

from glueline.local.runner.launch import offers_warm_up
from glueline.ops.packaging import bundled


@pytest.mark.parametrize(
    "script, offers",
    [("ETL_Job_to_RDS.py", True), ("ETL_DB_Login.py", False)],
)
def test_the_pipelines_scripts(script, offers):
    assert offers_warm_up(bundled("services") / "glue" / script) is offers


@pytest.mark.parametrize(
    "source, offers",
    [
        ("def warm_up(spark):\n    pass\n", True),
        ("from somewhere import warm_up as warm_up\n", True),
        ("from somewhere import warm_up as other\n", False),
        ("def main():\n    def warm_up(spark): pass\n", False),  # not at the top level: not the hook
        ("this is not Python (\n", False),
    ],
)
def test_a_hook_is_found_where_the_standby_looks_for_it(tmp_path, source, offers):
    script = tmp_path / "job.py"
    script.write_text(source)
    assert offers_warm_up(script) is offers
