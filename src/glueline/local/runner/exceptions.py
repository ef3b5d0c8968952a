"""The errors the runner answers with, one class per AWS Glue error type (``__type`` on the wire, as
the service model's error shapes name them), and the messages clients meet spelt once each.

Where clients match on a message, it is Glue's own, as AWS CLI output quoted in public repositories
shows it: a missing job ("Job not found." from GetJob; "Failed to start job run due to missing
metadata." from StartJobRun) and a refused concurrent run ("Concurrent runs exceeded for <job>").
The others are ours: the type is what a client branches on."""

from __future__ import annotations


class GlueError(Exception):
    """An error in the shape AWS Glue answers with: ``{"__type": error_type, "Message": message}``."""

    error_type = "InternalServiceException"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidInputException(GlueError):
    error_type = "InvalidInputException"


class EntityNotFoundException(GlueError):
    error_type = "EntityNotFoundException"


class AlreadyExistsException(GlueError):
    error_type = "AlreadyExistsException"


class ConcurrentRunsExceededException(GlueError):
    error_type = "ConcurrentRunsExceededException"


class JobNotFound(EntityNotFoundException):
    """GetJob, UpdateJob, GetJobRuns, tags, bookmarks: Glue names no job in it."""

    def __init__(self) -> None:
        super().__init__("Job not found.")


class JobToRunNotFound(EntityNotFoundException):
    """StartJobRun of a job that does not exist."""

    def __init__(self) -> None:
        super().__init__("Failed to start job run due to missing metadata.")


class ConcurrentRunsExceeded(ConcurrentRunsExceededException):
    def __init__(self, name: str):
        super().__init__(f"Concurrent runs exceeded for {name}")


class JobRunNotFound(EntityNotFoundException):
    def __init__(self, name: str, run_id: str):
        super().__init__(f"Job run {run_id} of job {name} not found")


class ConnectionNotFound(EntityNotFoundException):
    def __init__(self, name: str):
        super().__init__(f"Connection not found: {name}")


class BookmarkNotFound(EntityNotFoundException):
    def __init__(self, name: str, run_id: str | None = None):
        super().__init__(f"Continuation for job {name}" + (f" and run {run_id}" if run_id else "") + " not found")
