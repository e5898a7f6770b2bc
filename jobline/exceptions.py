"""jobline's exceptions. Each docstring is the default message."""

from __future__ import annotations

from jobline.core.schema import InputsError


class JoblineError(Exception):
    """A jobline error."""

    def __init__(self, message: str | None = None):
        super().__init__(message or (self.__doc__ or "").strip())


class UnknownJobType(JoblineError, LookupError):
    """No job type has this name."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(
            f"unknown job type {name!r}; known types: {', '.join(sorted(known)) or '(none)'}. "
            "Define it with @jobline.job in a jobs.py module of an installed app."
        )


class JobDefinitionError(JoblineError, TypeError):
    """A job type is defined in a way jobline cannot run."""


class Retry(Exception):
    """Raise inside a job to retry it (an attempt), optionally after ``delay`` seconds."""

    def __init__(self, reason: str = "retry requested", *, delay: float | None = None):
        super().__init__(reason)
        self.delay = delay


class Fail(Exception):
    """Raise inside a job to fail it now: no further attempts, whatever ``max_attempts`` says."""

    def __init__(self, reason: str = "failed by the job"):
        super().__init__(reason)


__all__ = [
    "DatabaseLocked",
    "DatabaseReadOnly",
    "Fail",
    "InputsError",
    "JobDefinitionError",
    "JoblineError",
    "Retry",
    "StoreUnavailable",
    "UnknownJobType",
]


class PipelineRunError(JoblineError):
    """The pipeline run cannot do this in its current state."""


class StoreUnavailable(JoblineError):
    """The database did not answer: the connection broke or a call passed its deadline."""

    retry_after = 5  #: seconds a client may wait before trying again (HTTP ``Retry-After``)


class DatabaseLocked(StoreUnavailable):
    """The database is locked by another process and stayed locked past the busy timeout:
    try again shortly; if it lasts, find the process holding the lock (a long write, or a
    transaction left open) or raise JOBLINE_SQLITE_BUSY_TIMEOUT."""


class DatabaseReadOnly(JoblineError):
    """The database is read-only for this process: give it write access (for SQLite, to the
    file and its folder: SQLite writes -wal and -shm files beside it; for PostgreSQL,
    point DATABASE_URL at the primary, not a standby)."""

    retry_after = 60  #: it lasts until someone fixes it
