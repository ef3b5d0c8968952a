import pytest

from glueline.shared.events import ObjectRef, object_created_event, parse_event, scheduled_event


def test_an_eventbridge_s3_event_names_its_object():
    event = {
        "source": "aws.s3",
        "detail-type": "Object Created",
        "time": "2024-07-13T08:00:00Z",
        "detail": {"bucket": {"name": "bkt"}, "object": {"key": "source/a.csv", "size": 8, "etag": "abc"}},
    }
    assert parse_event(event) == ([ObjectRef("bkt", "source/a.csv", "abc", 8, "2024-07-13T08:00:00.000Z")], False)


def test_the_events_we_send_are_the_events_we_read():
    assert parse_event(scheduled_event("000000000000", "us-east-1", "ETL_Daily_Schedule")) == ([], True)
    refs, sweep = parse_event(object_created_event("bkt", "source/a.csv"))
    assert not sweep and refs[0].key == "source/a.csv" and refs[0].etag is None  # looked up when admitted


def test_a_classic_s3_notification_has_url_encoded_keys():
    classic = {
        "Records": [
            {
                "eventName": "ObjectCreated:Put",
                "eventTime": "2024-07-13T08:00:00.000Z",
                "s3": {"bucket": {"name": "bkt"}, "object": {"key": "source/my+file.csv", "size": 1}},
            }
        ]
    }
    assert parse_event(classic)[0][0].key == "source/my file.csv"


def test_anything_else_is_an_error():
    with pytest.raises(ValueError):
        parse_event({"hello": "world"})


def test_the_events_we_send_name_resources_in_the_accounts_partition():
    scheduled = scheduled_event("000000000000", "cn-north-1", "ETL_Daily_Schedule", partition="aws-cn")
    assert scheduled["resources"] == ["arn:aws-cn:events:cn-north-1:000000000000:rule/ETL_Daily_Schedule"]
    created = object_created_event("bkt", "source/a.csv", partition="aws-us-gov")
    assert created["resources"] == ["arn:aws-us-gov:s3:::bkt"]
