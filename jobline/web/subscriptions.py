"""Subscriptions: the list, the form (new and edit, errors by field) and delete.

A plain HTML form, checked as the API and the admin check it (``Subscription.clean``).
"""

from __future__ import annotations

from django import forms
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect

from jobline.api.auth import user_can_write
from jobline.core import events
from jobline.models import Subscription
from jobline.web.base import action, flash, page, render


class SubscriptionForm(forms.ModelForm):
    """The model's fields; event kinds as checkboxes (none checked: every kind)."""

    events = forms.MultipleChoiceField(
        choices=[(k, k) for k in events.KINDS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
    )

    class Meta:
        model = Subscription
        fields = (
            "name",
            "is_active",
            "events",
            "job_type",
            "queue",
            "schedule",
            "target",
            "url",
            "sign_with",
            "topic",
            "exchange",
            "routing_key",
        )
        labels = {"is_active": "Active", "url": "URL", "sign_with": "Sign with (secret name)"}
        widgets = {"url": forms.TextInput(attrs={"class": "mono", "spellcheck": "false"})}


@page
def subscriptions_list(request: HttpRequest) -> HttpResponse:
    found = Subscription.objects.select_related("schedule")
    return render(request, "jobline/subscriptions.html", {"subscriptions": found})


def _form(request: HttpRequest, subscription: Subscription | None) -> HttpResponse:
    form = SubscriptionForm(request.POST or None, instance=subscription, label_suffix="")
    if request.method == "POST":
        if not user_can_write(request.user):
            return render(request, "jobline/denied.html", status=403)
        if form.is_valid():
            try:
                with transaction.atomic():
                    saved = form.save()
            except IntegrityError:
                form.add_error("name", "a subscription of this name exists")
            else:
                flash(request, f"Subscription {saved.name} saved")
                return redirect("jobline:subscriptions")
    status = 422 if form.errors else 200
    context = {"form": form, "subscription": subscription, "kinds": events.KINDS}
    return render(request, "jobline/subscription_form.html", context, status=status)


@page
def subscription_new(request: HttpRequest) -> HttpResponse:
    return _form(request, None)


@page
def subscription_edit(request: HttpRequest, pk: int) -> HttpResponse:
    return _form(request, get_object_or_404(Subscription, pk=pk))


@action
def subscription_delete(request: HttpRequest, pk: int) -> HttpResponse:
    subscription = get_object_or_404(Subscription, pk=pk)
    subscription.delete()
    flash(request, f"Subscription {subscription.name} deleted")
    return redirect("jobline:subscriptions")
