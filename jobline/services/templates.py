"""Starting jobs from templates."""

from __future__ import annotations

from typing import Any

from jobline.exceptions import JoblineError
from jobline.models import Template
from jobline.services.enqueue import EnqueuedJob, enqueue


class TemplateDisabled(JoblineError):
    """This template is disabled; enable it to start jobs from it."""


def start(
    template: Template,
    overrides: dict[str, Any] | None = None,
    *,
    using: str | None = None,
    **options: Any,
) -> EnqueuedJob:
    """Start a job from a template; ``options`` (queue, priority, delay, run_at, ...) win over
    the template's."""
    if not template.enabled:
        raise TemplateDisabled()
    chosen = {k: v for k, v in options.items() if v is not None}
    defaults = {"queue": template.queue or None, "priority": template.priority}
    if "run_at" not in chosen:
        defaults["delay"] = template.delay
    chosen = {k: v for k, v in defaults.items() if v is not None} | chosen
    inputs = template.merged_inputs(overrides)
    return enqueue(template.job_type, inputs, using=using, **chosen)
