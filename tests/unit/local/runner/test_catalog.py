"""The runner's catalog as data: jobs, connections, tags and bookmarks, with no process and no HTTP."""

from __future__ import annotations

import threading

import pytest

from glueline.local.runner.catalog import Catalog
from glueline.local.runner.exceptions import (
    AlreadyExistsException,
    EntityNotFoundException,
    InvalidInputException,
)
from glueline.local.runner.models import JobRun

JOB = {"Name": "etl", "Role": "r", "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/etl.py"}}
ARN = "arn:aws:glue:us-east-1:000000000000:"


@pytest.fixture
def catalog():
    saves = []
    catalog = Catalog(threading.RLock(), lambda: saves.append(1))
    catalog.saves = saves
    return catalog


def test_a_job_is_stored_with_the_models_defaults_and_its_tags_apart(catalog):
    catalog.create_job({**JOB, "GlueVersion": "5.0", "Tags": {"team": "data"}})
    job = catalog.job("etl").as_dict()
    assert job["Timeout"] == 480 and job["MaxRetries"] == 0 and job["ExecutionProperty"] == {"MaxConcurrentRuns": 1}
    assert "Tags" not in job and job["CreatedOn"] == job["LastModifiedOn"]
    assert catalog.get_tags(ARN + "job/etl") == {"team": "data"}
    assert catalog.list_jobs({"team": "data"}) == ["etl"] and catalog.list_jobs({"team": "web"}) == []
    assert catalog.saves


def test_an_update_replaces_the_definition_and_keeps_creation_and_tags(catalog):
    catalog.create_job({**JOB, "Timeout": 30, "Tags": {"team": "data"}})
    created = catalog.job("etl").created_on
    catalog.update_job("etl", {"Role": "r2", "Command": JOB["Command"]})
    job = catalog.job("etl").as_dict()
    assert (job["Role"], job["Timeout"], job["CreatedOn"]) == ("r2", 480, created)  # Timeout back to its default
    assert catalog.get_tags(ARN + "job/etl") == {"team": "data"}


def test_glues_errors_for_missing_and_duplicate_entities(catalog):
    catalog.create_job(JOB)
    with pytest.raises(AlreadyExistsException, match="Job with name etl already exists"):
        catalog.create_job(JOB)
    with pytest.raises(EntityNotFoundException, match="^Job not found.$"):
        catalog.job("other")
    with pytest.raises(EntityNotFoundException, match="Connection not found: net"):
        catalog.connection("net")
    with pytest.raises(InvalidInputException, match="s3:// URI"):
        catalog.create_job({**JOB, "Name": "local", "Command": {"Name": "glueetl", "ScriptLocation": "/tmp/x.py"}})
    with pytest.raises(InvalidInputException, match="only jobs and connections"):
        catalog.get_tags(ARN + "trigger/t")


def test_connections_keep_their_creation_time_and_tags_across_updates(catalog):
    definition = {"Name": "net", "ConnectionType": "NETWORK", "ConnectionProperties": {}}
    catalog.create_connection({"ConnectionInput": definition, "Tags": {"a": "1"}})
    created = catalog.connection("net").creation_time
    catalog.update_connection("net", {**definition, "Description": "the job's network"})
    answered = catalog.connection("net").as_dict()
    assert answered["Description"] == "the job's network" and answered["CreationTime"] == created
    catalog.tag(ARN + "connection/net", {"b": "2"}, ["a"])
    assert catalog.get_tags(ARN + "connection/net") == {"b": "2"}
    catalog.delete_connection("net")
    assert catalog.get_connections() == []


def bookmarked_run(run_id: str, attempt: int = 0) -> JobRun:
    snapshot = {"DefaultArguments": {"--job-bookmark-option": "job-bookmark-enable"}, "NonOverridableArguments": {}}
    return JobRun(run_id, "etl", {}, 60, 0.0, attempt=attempt, job_snapshot=snapshot)


def test_bookmarks_follow_glues_versions_runs_and_previous_run_ids(catalog):
    catalog.create_job(JOB)
    with pytest.raises(EntityNotFoundException, match="Continuation for job etl not found"):
        catalog.get_bookmark("etl", None)
    catalog.record_bookmark(bookmarked_run("jr_1"))
    catalog.record_bookmark(bookmarked_run("jr_2", attempt=1))
    latest = catalog.get_bookmark("etl", None)
    assert (latest["Version"], latest["Run"], latest["Attempt"], latest["PreviousRunId"]) == (2, 2, 1, "jr_1")
    reset = catalog.reset_bookmark("etl", None)
    assert (reset["Version"], reset["Run"], reset["JobBookmark"]) == (3, 0, "{}")
    with pytest.raises(EntityNotFoundException, match="Continuation for job etl and run jr_9 not found"):
        catalog.reset_bookmark("etl", "jr_9")
    unbookmarked = JobRun("jr_3", "etl", {}, 60, 0.0, job_snapshot={"DefaultArguments": {}})
    catalog.record_bookmark(unbookmarked)
    assert catalog.get_bookmark("etl", None)["Version"] == 3


def test_the_catalog_is_saved_and_restored_as_it_answers(catalog):
    catalog.create_job({**JOB, "Tags": {"t": "1"}})
    catalog.create_connection({"ConnectionInput": {"Name": "net", "ConnectionType": "NETWORK"}})
    restored = Catalog(threading.RLock(), lambda: None)
    restored.restore(catalog.saved())
    assert restored.get_jobs() == catalog.get_jobs() and restored.get_connections() == catalog.get_connections()
    assert restored.get_tags(ARN + "job/etl") == {"t": "1"}
    assert restored.jobs["etl"].definition == catalog.jobs["etl"].definition
    assert restored.connections["net"].definition == catalog.connections["net"].definition  # no Status stored
