"""Login throttling: after too many wrong passwords for a user name, or from an address,
logins from there are refused for a while, with a message that says so.

Failures are counted in Django's cache (``JOBLINE_LOGIN_CACHE``, default ``"default"``):
per user name and per client address (``REMOTE_ADDR``; put the real address there when
behind a proxy). Each failure keeps the count for ``JOBLINE_LOGIN_LOCKOUT_SECONDS`` more; at
``JOBLINE_LOGIN_FAILURE_LIMIT`` the password is no longer even checked. A successful login
clears its user name's count. The forms below carry it: the UI's login page uses
:class:`LoginForm`; service mode sets :class:`AdminLoginForm` on the admin site (a project
can do the same). API tokens never pass through a login form, so they are not affected.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.core.cache import caches
from django.core.exceptions import ValidationError
from django.http import HttpRequest

DEFAULT_LIMIT = 5
DEFAULT_LOCKOUT_SECONDS = 300


def _cache() -> Any:
    return caches[getattr(settings, "JOBLINE_LOGIN_CACHE", "default")]


def _lockout() -> int:
    return int(getattr(settings, "JOBLINE_LOGIN_LOCKOUT_SECONDS", DEFAULT_LOCKOUT_SECONDS))


def _keys(request: HttpRequest | None, username: str) -> list[str]:
    # Hashed: user names and addresses are not cache keys as they come (length, characters).
    parts = [f"user:{username.strip().casefold()}"]
    if request is not None and request.META.get("REMOTE_ADDR"):
        parts.append(f"addr:{request.META['REMOTE_ADDR']}")
    return [f"jobline:login:{hashlib.sha256(p.encode()).hexdigest()}" for p in parts]


def refusal(request: HttpRequest | None, username: str) -> str | None:
    """The message for a login that may not be tried now, or None."""
    limit = int(getattr(settings, "JOBLINE_LOGIN_FAILURE_LIMIT", DEFAULT_LIMIT))
    counts = _cache().get_many(_keys(request, username))
    if limit <= 0 or max(counts.values(), default=0) < limit:
        return None
    minutes = math.ceil(_lockout() / 60)
    return (
        "Too many failed sign-ins for this user name or from this address."
        f" Try again in {minutes} minute{'s' if minutes != 1 else ''}."
    )


def failed(request: HttpRequest | None, username: str) -> None:
    cache, timeout = _cache(), _lockout()
    for key in _keys(request, username):
        cache.add(key, 0, timeout)
        try:
            cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout)
        cache.touch(key, timeout)


def succeeded(username: str) -> None:
    _cache().delete(_keys(None, username)[0])


class ThrottledLogin:
    """A mixin for Django's authentication forms: refuse while throttled, count failures."""

    request: HttpRequest | None
    data: Any

    def clean(self) -> Any:
        username = str(self.data.get("username") or "")
        if message := refusal(self.request, username):
            raise ValidationError(message, code="throttled")
        try:
            cleaned = super().clean()  # type: ignore[misc]
        except ValidationError as exc:
            if any(e.code == "invalid_login" for e in exc.error_list):
                failed(self.request, username)
            raise
        succeeded(username)
        return cleaned


class LoginForm(ThrottledLogin, AuthenticationForm):
    """The UI's login form."""


class AdminLoginForm(ThrottledLogin, AdminAuthenticationForm):
    """The admin's login form (``admin.site.login_form``)."""
