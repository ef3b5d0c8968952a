import pytest

from glueline.job.args import resolve_options


def test_job_arguments_are_read_like_get_resolved_options():
    argv = ["script.py", "--JOB_NAME", "j", "--JOB_RUN_ID=jr_1", "--extra", "x", "--TARGET_TABLE", "a.b"]
    assert resolve_options(argv, ["JOB_NAME", "JOB_RUN_ID", "TARGET_TABLE"]) == {
        "JOB_NAME": "j",
        "JOB_RUN_ID": "jr_1",
        "TARGET_TABLE": "a.b",
    }
    with pytest.raises(SystemExit, match="--DB_SECRET_ID"):
        resolve_options(argv, ["DB_SECRET_ID"])
