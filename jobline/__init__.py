"""jobline: typed jobs, a database queue and async workers for Python and Django.

Define jobs with ``@jobline.job`` or ``class MyJob(jobline.Job)`` in an app's ``jobs.py``,
enqueue them with ``my_job.enqueue(...)`` or ``jobline.enqueue("name", {...})``, and run
``jobline worker`` (or ``python manage.py jobline worker``).
"""

from __future__ import annotations

from typing import Any

from jobline.core.flow import Limit, Rate, Unique
from jobline.core.jobtypes import JobContext, JobType, current_job, registry
from jobline.core.retry import RetryPolicy
from jobline.core.schedules import ScheduleError
from jobline.core.states import JobStatus
from jobline.exceptions import Fail, InputsError, JoblineError, Retry, UnknownJobType
from jobline.jobtypes import Job, job
from jobline.scheduler.periodic import periodic

_LAZY = {  # need Django's database layer, imported on first use
    "enqueue": "jobline.services.enqueue",
    "aenqueue": "jobline.services.enqueue",
    "enqueue_many": "jobline.services.enqueue",
    "aenqueue_many": "jobline.services.enqueue",
    "EnqueuedJob": "jobline.services.enqueue",
    "schedule": "jobline.scheduler.api",
    # pipelines: jsonschema and the models load on first use
    "pipeline": "jobline.pipelines",
    "Pipeline": "jobline.pipelines",
    "Step": "jobline.pipelines",
    "OnFailure": "jobline.pipelines",
    "PipelineDefinitionError": "jobline.pipelines",
    "PipelineRun": "jobline.models",
    "database": "jobline.service.database",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'jobline' has no attribute {name!r}")


__all__ = [
    "EnqueuedJob",
    "Fail",
    "InputsError",
    "Job",
    "JobContext",
    "JobStatus",
    "JobType",
    "JoblineError",
    "Limit",
    "OnFailure",
    "Pipeline",
    "PipelineDefinitionError",
    "PipelineRun",
    "Rate",
    "Retry",
    "RetryPolicy",
    "ScheduleError",
    "Step",
    "Unique",
    "UnknownJobType",
    "aenqueue",
    "aenqueue_many",
    "current_job",
    "database",
    "enqueue",
    "enqueue_many",
    "job",
    "periodic",
    "pipeline",
    "registry",
    "schedule",
]
