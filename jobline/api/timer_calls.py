"""What a timer's answer tells besides ``time_left``: whether its call could ever be made,
and how it went.

A timer to an address the ``http`` guard refuses used to answer 201 and fail later, while
``GET /timer/{id}`` kept saying ``time_left: 0``. IP literals (and ``localhost``) are judged
at ``POST`` by the guard's own rule; names that resolve to such addresses can only be judged
when the call connects, and then ``status`` says ``failed`` with the guard's error.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Literal
from urllib.parse import urlsplit

from jobline import conf
from jobline.core.states import JobStatus
from jobline.models import Job

CallStatus = Literal["pending", "succeeded", "failed"]

#: How ``jobline.dispatch.http.check`` words an unexpected answer: "HTTP 503 from POST ...".
_HTTP_ERROR = re.compile(r"^HTTP (\d{3}) from ")


def refused_address(url: str) -> str | None:
    """Why the http guard would refuse to connect to ``url``'s host, if it is an IP literal
    or ``localhost``; None when it may connect or only the connection can tell."""
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        host = "127.0.0.1"
    try:
        ipaddress.ip_address(host.partition("%")[0])
    except ValueError:
        return None  # a name: resolved, and checked, when the call connects
    # imported here: the guard imports aiohttp, which the web process need not load at start
    from jobline.dispatch.guard import parse_networks, refusal

    return refusal(host, parse_networks(conf.get("JOBLINE_HTTP_ALLOWED_NETWORKS")))


def call_state(job: Job) -> dict[str, Any]:
    """The call's ``status``, its ``error`` and the ``http_status`` it was answered with."""
    status: CallStatus = "pending"
    http_status = None
    if job.status == JobStatus.SUCCEEDED:
        status = "succeeded"
        http_status = (job.outputs or {}).get("status") if isinstance(job.outputs, dict) else None
    elif job.status in (JobStatus.FAILED, JobStatus.CANCELLED):
        status = "failed"
    if http_status is None and (found := _HTTP_ERROR.match(job.error or "")):
        http_status = int(found.group(1))  # a failed attempt's answer (maybe retried)
    return {"status": status, "error": job.error or None, "http_status": http_status}
