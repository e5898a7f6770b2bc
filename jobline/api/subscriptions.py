"""``/api/v1/subscriptions``: where job events are delivered (webhook, Kafka topic, AMQP).

See docs/how-to/notifications.md for the events, their delivery and signatures.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from ninja import Path, Router, Schema, Status
from ninja.errors import HttpError
from pydantic import Field

from jobline.api.errors import model_errors, responses
from jobline.api.schemas import MAX_ID, QUEUE_OR_EMPTY, Body
from jobline.models import Schedule, Subscription

router = Router(tags=["subscriptions"])

SubscriptionId = Path(..., ge=1, le=MAX_ID)
NAME = r"^[-a-zA-Z0-9_.]+$"
Kind = Literal["created", "started", "succeeded", "failed", "terminated"]
Target = Literal["webhook", "kafka", "amqp"]


class SubscriptionIn(Body):
    name: str = Field(min_length=1, max_length=100, pattern=NAME)
    is_active: bool = True
    events: list[Kind] = Field(
        default_factory=list, max_length=5, description="Event kinds; empty: all of them."
    )
    job_type: str = Field("", max_length=200, description="Only jobs of this type; empty: any.")
    queue: str = Field("", max_length=100, pattern=QUEUE_OR_EMPTY, description="Empty: any.")
    schedule_id: int | None = Field(
        None, ge=1, le=MAX_ID, description="Only jobs this schedule fired."
    )
    target: Target
    url: str = Field("", max_length=8192, description="webhook: the URL events are POSTed to.")
    sign_with: str = Field(
        "", max_length=100, description="webhook: a secret's name in JOBLINE_HTTP_SIGNING_SECRETS."
    )
    topic: str = Field("", max_length=249, description="kafka: the topic.")
    exchange: str = Field("", max_length=255, description="amqp: the exchange; empty: default.")
    routing_key: str = Field("", max_length=255, description="amqp: the routing key.")


class SubscriptionPatch(Body):
    """Only the fields sent change; null clears schedule_id."""

    # Non-nullable fields default to None only to tell "not sent"; an explicit null is refused.
    name: str = Field(None, min_length=1, max_length=100, pattern=NAME)
    is_active: bool = None  # type: ignore[assignment]
    events: list[Kind] = Field(None, max_length=5)
    job_type: str = Field(None, max_length=200)
    queue: str = Field(None, max_length=100, pattern=QUEUE_OR_EMPTY)
    schedule_id: int | None = Field(None, ge=1, le=MAX_ID)
    target: Target = None  # type: ignore[assignment]
    url: str = Field(None, max_length=8192)
    sign_with: str = Field(None, max_length=100)
    topic: str = Field(None, max_length=249)
    exchange: str = Field(None, max_length=255)
    routing_key: str = Field(None, max_length=255)


class SubscriptionOut(Schema):
    id: int
    name: str
    is_active: bool
    events: list[str]
    job_type: str
    queue: str
    schedule_id: int | None
    target: str
    url: str
    sign_with: str
    topic: str
    exchange: str
    routing_key: str
    created_at: datetime
    updated_at: datetime


def get_subscription(subscription_id: int) -> Subscription:
    found = Subscription.objects.filter(pk=subscription_id).first()
    if found is None:
        raise HttpError(404, f"subscription {subscription_id} not found")
    return found


def _save(subscription: Subscription) -> Subscription:
    """Validate as the admin and the UI do (422 naming fields), then save; 409 on a taken
    name."""
    if subscription.schedule_id and not Schedule.objects.filter(pk=subscription.schedule_id):
        raise model_errors(
            ValidationError({"schedule_id": f"schedule {subscription.schedule_id} not found"})
        )
    try:
        subscription.full_clean(validate_unique=False)
    except ValidationError as exc:
        raise model_errors(exc, {"schedule": "schedule_id"}) from None
    try:
        with transaction.atomic():
            subscription.save()
    except IntegrityError:
        raise HttpError(409, f"a subscription named {subscription.name!r} exists") from None
    return subscription


@router.get("/subscriptions", response=responses({200: list[SubscriptionOut]}))
def list_subscriptions(request: HttpRequest):
    return Subscription.objects.all()


@router.post("/subscriptions", response=responses({201: SubscriptionOut}, 400, 409, 422))
def create_subscription(request: HttpRequest, payload: SubscriptionIn):
    """Deliver job events to a webhook `url`, a Kafka `topic`, or an AMQP `exchange` with a
    `routing_key`, from now on."""
    return Status(201, _save(Subscription(**payload.model_dump())))


@router.get(
    "/subscriptions/{subscription_id}", response=responses({200: SubscriptionOut}, 404, 422)
)
def get_subscription_view(request: HttpRequest, subscription_id: int = SubscriptionId):
    return get_subscription(subscription_id)


@router.patch(
    "/subscriptions/{subscription_id}",
    response=responses({200: SubscriptionOut}, 400, 404, 409, 422),
)
def update_subscription(
    request: HttpRequest, payload: SubscriptionPatch, subscription_id: int = SubscriptionId
):
    subscription = get_subscription(subscription_id)
    for field, value in payload.model_dump(exclude_unset=True).items():
        setattr(subscription, field, value)
    return _save(subscription)


@router.delete("/subscriptions/{subscription_id}", response=responses({204: None}, 404, 422))
def delete_subscription(request: HttpRequest, subscription_id: int = SubscriptionId):
    """Events already relayed are still delivered; no new ones are."""
    get_subscription(subscription_id).delete()
    return Status(204, None)
