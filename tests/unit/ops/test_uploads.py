"""`glueline upload`: the FileID it waits for is the one the Lambda admits the file as."""

from __future__ import annotations

from glueline.intake.intake import Intake
from glueline.ops.uploads import upload
from glueline.shared.events import object_created_event

from ..conftest import BUCKET, GOOD_CSV, TARGET, FakeGlue


def test_the_file_id_glueline_upload_waits_for_is_the_one_the_lambda_admits(aws, tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes(GOOD_CSV)
    (sent,) = upload(aws.s3, BUCKET, [path], TARGET)
    Intake(aws.lifecycle(FakeGlue()), BUCKET).handle(object_created_event(BUCKET, sent.key))
    assert [r.file_id for r in aws.audit.all()] == [sent.file_id]
