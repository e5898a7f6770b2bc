"""The queue's models: jobs, queues' run-time settings, and live workers.

The worker's hot path does not go through these models: it speaks SQL through
``jobline.store``, against the tables defined here.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from jobline.core import tracecontext
from jobline.core.flow import QueueRules
from jobline.core.states import JobStatus


class Job(models.Model):
    Status = models.TextChoices("Status", [(s.name, s.value) for s in JobStatus])
    # A dispatched job (kafka) hands its work to an executor elsewhere: "delivered" once the
    # broker has it, then what the executor reports. Empty for jobs that run here.
    Dispatch = models.TextChoices(
        "Dispatch", [(s.upper(), s) for s in ("delivered", "running", "succeeded", "failed")]
    )

    id = models.BigAutoField(primary_key=True)
    type = models.CharField(max_length=200)
    queue = models.CharField(max_length=100, default="default")
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first.")
    status = models.CharField(max_length=12, choices=Status.choices, default=JobStatus.QUEUED.value)
    inputs = models.JSONField(default=dict, blank=True)
    outputs = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    traceback = models.TextField(blank=True, default="")
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=3)
    timeout = models.FloatField(null=True, blank=True, help_text="Seconds per attempt.")
    requires = models.JSONField(default=list, blank=True, help_text="Worker tags needed.")
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    run_at = models.DateTimeField(help_text="Not started before this time.")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    worker_id = models.CharField(max_length=64, null=True, blank=True)
    cancel_requested = models.BooleanField(default=False)
    schedule = models.ForeignKey(  # the schedule that fired it; indexed below, only when set
        "jobline.Schedule",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="jobs",
        db_index=False,
    )
    pipeline_run = models.ForeignKey(  # the run this job is a step of; indexed below, when set
        "jobline.PipelineRun",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="jobs",
        db_index=False,
    )
    pipeline_step = models.CharField(max_length=100, null=True, blank=True)
    pipeline_index = models.IntegerField(null=True, blank=True, help_text="Fan-out item.")
    dispatch = models.CharField(
        max_length=12, choices=Dispatch.choices, blank=True, default="", db_default=""
    )
    dispatch_outputs = models.JSONField(
        null=True, blank=True, help_text="The outputs its executor reported."
    )
    # Flow control (jobline.core.flow), computed at enqueue from the type's rules and inputs;
    # all empty for jobs without any, which the partial indexes below then never hold.
    flow_key = models.TextField(null=True, blank=True, help_text="Takes turns by this key.")
    limit_key = models.TextField(null=True, blank=True)
    limit_n = models.IntegerField(null=True, blank=True, help_text="At most this many running.")
    rate_key = models.TextField(null=True, blank=True)
    rate_n = models.IntegerField(null=True, blank=True, help_text="At most this many starts...")
    rate_per = models.FloatField(null=True, blank=True, help_text="...per this many seconds.")
    unique_key = models.TextField(null=True, blank=True)
    # What the running job reported (jobline.current_job().progress), written by its worker
    # at most once per JOBLINE_PROGRESS_SECONDS; and how many lines its latest attempt logged
    # (the log itself is in JobLog).
    progress = models.FloatField(null=True, blank=True, help_text="From 0 to 1.")
    progress_message = models.TextField(blank=True, default="", db_default="")
    log_lines = models.PositiveIntegerField(default=0, db_default=0)
    # The W3C trace context of the span that enqueued it (OpenTelemetry, when installed and
    # configured): the worker's span continues that trace. Null when not traced.
    trace_context = models.JSONField(null=True, blank=True, editable=False)

    class Meta:
        indexes = [
            # The claim: queued jobs in priority order. Partial, so finished jobs cost nothing.
            models.Index(
                models.F("priority").desc(),
                "run_at",
                "id",
                name="jobline_job_claim",
                condition=Q(status="queued"),
            ),
            # An idle worker's wait: the earliest delayed job (a MIN without it reads every
            # queued row; with it, one index probe).
            models.Index(fields=["run_at"], name="jobline_job_due", condition=Q(status="queued")),
            # Heartbeats, terminate and lease recovery look up running jobs by worker.
            models.Index(
                fields=["worker_id"], name="jobline_job_running", condition=Q(status="running")
            ),
            models.Index(fields=["status", "-id"], name="jobline_job_status"),
            models.Index(fields=["type", "-id"], name="jobline_job_type"),
            # The jobs page by queue (migration 0016 builds it CONCURRENTLY on PostgreSQL).
            models.Index(fields=["queue", "-id"], name="jobline_job_queue"),
            # Dashboard charts and the SQLite event poll: what finished since a time.
            models.Index(
                fields=["finished_at", "status"],
                name="jobline_job_finished",
                condition=Q(finished_at__isnull=False),
            ),
            models.Index(
                fields=["schedule", "-id"],
                name="jobline_job_schedule",
                condition=Q(schedule__isnull=False),
            ),
            # The claim of flow-controlled jobs: their keys (a loose scan), then each key's
            # next jobs in claim order.
            models.Index(
                "flow_key",
                models.F("priority").desc(),
                "run_at",
                "id",
                name="jobline_job_flow",
                condition=Q(status="queued", flow_key__isnull=False),
            ),
            # A limit's slots in use: running jobs by key.
            models.Index(
                fields=["limit_key"],
                name="jobline_job_limit",
                condition=Q(status="running", limit_key__isnull=False),
            ),
            # A rate's starts in its window (whatever the jobs' states now).
            models.Index(
                fields=["started_at", "rate_key"],
                name="jobline_job_rate",
                condition=Q(rate_key__isnull=False),
            ),
            # Unique jobs: the newest job with the key.
            models.Index(
                fields=["unique_key", "-created_at"],
                name="jobline_job_unique",
                condition=Q(unique_key__isnull=False),
            ),
        ]
        constraints = [
            # One job per step item of a run: a step can never be enqueued twice. Partial, so
            # jobs outside pipelines cost nothing; it also serves lookups by run.
            models.UniqueConstraint(
                fields=["pipeline_run", "pipeline_step", "pipeline_index"],
                name="jobline_job_pipeline_step",
                condition=Q(pipeline_run__isnull=False),
            ),
            # Partial: jobs without a key (most) cost nothing in this index.
            models.UniqueConstraint(
                fields=["idempotency_key"],
                name="jobline_job_idempotency_key",
                condition=Q(idempotency_key__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.id} ({self.display_status})"

    @property
    def display_status(self) -> str:
        """What people see: a delivered job shows its executor's side until it reports a result."""
        if self.status == JobStatus.SUCCEEDED and self.dispatch in ("delivered", "running"):
            return self.dispatch
        return self.status

    @property
    def trace_id(self) -> str | None:
        """The OpenTelemetry trace the job runs in (32 hex digits), None when not traced."""
        return tracecontext.trace_id(self.trace_context)


class JobLog(models.Model):
    """A line a job logged while it ran, numbered within its attempt (``seq`` from 1).

    Capped per attempt, the tail kept: the lines before the first stored one were dropped.
    No foreign key constraint: a worker may still be writing lines of a job a person just
    deleted; the pruner deletes lines with their jobs, the ORM cascades.
    """

    id = models.BigAutoField(primary_key=True)
    job = models.ForeignKey(
        Job, on_delete=models.CASCADE, db_constraint=False, related_name="logs", db_index=False
    )
    attempt = models.PositiveIntegerField()
    seq = models.PositiveIntegerField()
    level = models.CharField(max_length=10)
    text = models.TextField()
    created_at = models.DateTimeField()

    class Meta:
        constraints = [
            # Reads, follows and trims go by job, attempt and line number.
            models.UniqueConstraint(fields=["job", "attempt", "seq"], name="jobline_joblog_line")
        ]

    def __str__(self) -> str:
        return f"job {self.job_id} attempt {self.attempt} line {self.seq}"


class Queue(models.Model):
    """A named queue's run-time settings. A queue without a row is active."""

    name = models.CharField(max_length=100, primary_key=True)
    paused = models.BooleanField(default=False)
    # Fleet-wide flow control, read by every claim (jobline.core.flow.QueueRules).
    concurrency_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many of its jobs running at once."
    )
    rate_limit = models.PositiveIntegerField(
        null=True, blank=True, help_text="At most this many starts per rate_per seconds."
    )
    rate_per = models.FloatField(default=1.0, help_text="Seconds of the rate's window.")
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"{self.name} ({'paused' if self.paused else 'active'})"

    @property
    def rules(self) -> QueueRules:
        return QueueRules(
            name=self.name, limit=self.concurrency_limit, rate=self.rate_limit, per=self.rate_per
        )


class Worker(models.Model):
    """A live (or recently seen) worker process. Its lease covers every job it runs."""

    id = models.CharField(max_length=64, primary_key=True)
    hostname = models.CharField(max_length=255)
    pid = models.IntegerField()
    queues = models.JSONField(default=list)
    tags = models.JSONField(default=list)
    concurrency = models.IntegerField()
    running = models.IntegerField(default=0)
    processed = models.BigIntegerField(default=0)
    stats = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField()
    last_heartbeat_at = models.DateTimeField()
    lease_expires_at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.hostname}:{self.pid}"
