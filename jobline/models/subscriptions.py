"""Subscriptions to job events, and the outbox the database's triggers fill with them.

The outbox (``jobline_outbox``) is written by triggers on ``jobline_job`` (see
``jobline.store.outbox``), never through this model: a row exists only once the job's
change commits. The relay (``jobline.services.subscriptions``) takes rows out and enqueues
one delivery job per matching subscription.
"""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models

from jobline.core import events
from jobline.core.events import Filters
from jobline.input_guard import field_errors


class Subscription(models.Model):
    """Where to deliver which job events: a webhook URL, a Kafka topic or an AMQP exchange."""

    Target = models.TextChoices("Target", [(t.upper(), t) for t in events.TARGETS])

    name = models.CharField(max_length=100, unique=True)
    is_active = models.BooleanField(default=True)
    events = models.JSONField(
        default=list, blank=True, help_text=f"Any of {', '.join(events.KINDS)}; empty: all."
    )
    job_type = models.CharField(max_length=200, blank=True, help_text="Empty: any type.")
    queue = models.CharField(max_length=100, blank=True, help_text="Empty: any queue.")
    schedule = models.ForeignKey(
        "jobline.Schedule",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="subscriptions",
        help_text="Only jobs this schedule fired.",
    )
    target = models.CharField(max_length=10, choices=Target.choices)
    url = models.TextField(blank=True, help_text="webhook: the URL events are POSTed to.")
    sign_with = models.CharField(
        max_length=100,
        blank=True,
        help_text="webhook: the name of a secret in JOBLINE_HTTP_SIGNING_SECRETS to sign with.",
    )
    topic = models.CharField(max_length=249, blank=True, help_text="kafka: the topic.")
    exchange = models.CharField(
        max_length=255, blank=True, help_text="amqp: the exchange; empty: the default exchange."
    )
    routing_key = models.CharField(max_length=255, blank=True, help_text="amqp: routing key.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.target})"

    def clean(self) -> None:
        problems = events.target_problems(
            self.target,
            url=self.url,
            topic=self.topic,
            exchange=self.exchange,
            routing_key=self.routing_key,
        )
        if problem := events.kinds_problem(self.events):
            problems["events"] = problem
        errors = {field: [message] for field, message in problems.items()}
        if errors := field_errors(self) | errors:
            raise ValidationError(errors)

    @property
    def filters(self) -> Filters:
        return Filters(
            kinds=tuple(self.events),
            job_type=self.job_type or None,
            queue=self.queue or None,
            schedule_id=self.schedule_id,
        )

    def destination(self) -> dict[str, str]:
        """Where its deliveries go, as the delivery job's inputs hold it."""
        fields = {
            "webhook": ("url", "sign_with"),
            "kafka": ("topic",),
            "amqp": ("exchange", "routing_key"),
        }[self.target]
        return {"target": self.target, **{f: getattr(self, f) for f in fields}}


class OutboxEvent(models.Model):
    """A job event not yet handed to the relay: a copy of the job's row as it changed."""

    id = models.BigAutoField(primary_key=True)
    kind = models.CharField(max_length=12)
    job_id = models.BigIntegerField()  # no foreign key: the job may be pruned meanwhile
    type = models.CharField(max_length=200)
    queue = models.CharField(max_length=100)
    status = models.CharField(max_length=12)
    attempts = models.PositiveIntegerField(default=0)
    schedule_id = models.BigIntegerField(null=True)
    outputs = models.JSONField(null=True)
    error = models.TextField(default="")
    created_at = models.DateTimeField()
    started_at = models.DateTimeField(null=True)
    finished_at = models.DateTimeField(null=True)
    at = models.DateTimeField(help_text="When it happened.")

    class Meta:
        db_table = "jobline_outbox"
