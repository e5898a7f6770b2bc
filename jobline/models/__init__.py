"""Django models: the schema of jobline's tables, used by the admin, the API and the UI.

Models hold data and keep it consistent; what people and roles do with it lives in
``jobline.services``. ``migrations/`` owns the schema.
"""

from __future__ import annotations

from jobline.models.api import ApiToken, Template
from jobline.models.jobs import Job, JobLog, Queue, Worker
from jobline.models.pipelines import PipelineDefinition, PipelineRun
from jobline.models.schedules import Schedule, ScheduleRun
from jobline.models.subscriptions import OutboxEvent, Subscription

__all__ = [
    "ApiToken",
    "Job",
    "JobLog",
    "OutboxEvent",
    "PipelineDefinition",
    "PipelineRun",
    "Queue",
    "Schedule",
    "ScheduleRun",
    "Subscription",
    "Template",
    "Worker",
]
