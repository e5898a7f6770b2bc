"""Flow control: how many jobs of a type run at once, how fast they start, which are unique.

``Limit``, ``Rate`` and ``Unique`` are declared on a job type (``@jobline.job(limit=...)``).
At enqueue they become :class:`FlowKeys` on the job's row: the key values read from its
inputs, and the numbers to enforce. The claim enforces them from the row alone, so every
worker and host applies the same rule without a registry of its own.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from jobline.core.states import JobStatus
from jobline.exceptions import JobDefinitionError

MAX_RATE_PER = 86_400.0  #: a rate's window is at most a day (the claim looks that far back)
UNIQUE_STATES = frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value})


def _key_names(key: str | Sequence[str] | None) -> tuple[str, ...]:
    if key is None:
        return ()
    names = (key,) if isinstance(key, str) else tuple(key)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise JobDefinitionError(f"a flow key is an input field name or a list of them: {key!r}")
    return names


@dataclass(frozen=True, slots=True, init=False)
class Limit:
    """At most ``n`` jobs of the type running at once, fleet-wide, per value of ``key``."""

    n: int
    key: tuple[str, ...]

    def __init__(self, n: int, key: str | Sequence[str] | None = None):
        if not isinstance(n, int) or n < 1:
            raise JobDefinitionError(f"Limit(n) needs an integer n >= 1, got {n!r}")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "key", _key_names(key))


@dataclass(frozen=True, slots=True, init=False)
class Rate:
    """At most ``n`` starts of the type in any window of ``per`` seconds, per value of ``key``."""

    n: int
    per: float
    key: tuple[str, ...]

    def __init__(self, n: int, per: float = 1.0, key: str | Sequence[str] | None = None):
        if not isinstance(n, int) or n < 1:
            raise JobDefinitionError(f"Rate(n) needs an integer n >= 1, got {n!r}")
        if not 0 < per <= MAX_RATE_PER:
            raise JobDefinitionError(f"Rate(per=) must be > 0 and <= {MAX_RATE_PER:.0f} s")
        object.__setattr__(self, "n", n)
        object.__setattr__(self, "per", float(per))
        object.__setattr__(self, "key", _key_names(key))


@dataclass(frozen=True, slots=True, init=False)
class Unique:
    """One job per key value: enqueueing a match of a job in ``states`` created within
    ``seconds`` returns that job (``on_conflict="keep"``), or updates the queued one's inputs
    and run time (``"replace"``: debounce)."""

    seconds: float
    key: tuple[str, ...]
    states: tuple[str, ...]
    on_conflict: str

    def __init__(
        self,
        seconds: float,
        key: str | Sequence[str] | None = None,
        states: Iterable[str] = ("queued", "running"),
        on_conflict: str = "keep",
    ):
        if not seconds > 0:
            raise JobDefinitionError(f"Unique(seconds) must be > 0, got {seconds!r}")
        states = tuple(str(s) for s in states)
        if not states or not set(states) <= {s.value for s in JobStatus}:
            raise JobDefinitionError(
                f"Unique(states=) takes job statuses {[s.value for s in JobStatus]}, got {states}"
            )
        if on_conflict not in ("keep", "replace"):
            raise JobDefinitionError(
                f"Unique(on_conflict=) is 'keep' or 'replace', got {on_conflict!r}"
            )
        object.__setattr__(self, "seconds", float(seconds))
        object.__setattr__(self, "key", _key_names(key))
        object.__setattr__(self, "states", states)
        object.__setattr__(self, "on_conflict", on_conflict)


@dataclass(frozen=True, slots=True, kw_only=True)
class FlowKeys:
    """A job's flow control, computed at enqueue and stored on its row."""

    limit_key: str | None = None  #: e.g. ``export:account_id=42``; None: no limit
    limit_n: int | None = None
    rate_key: str | None = None
    rate_n: int | None = None
    rate_per: float | None = None
    unique_key: str | None = None
    unique_seconds: float | None = None
    unique_states: tuple[str, ...] = ()
    replace: bool = False  #: a unique match takes this job's inputs and run time

    @property
    def claim_key(self) -> str | None:
        """What the claim takes turns by (fairness): the limit's key, else the rate's."""
        return self.limit_key or self.rate_key


@dataclass(frozen=True, slots=True)
class FlowRules:
    """A job type's declared flow control."""

    limit: Limit | None = None
    rate: Rate | None = None
    unique: Unique | None = None

    def check(self, type_name: str, fields: Iterable[str] | None) -> None:
        """Keys must name input fields (``fields`` None: the inputs have no fixed fields)."""
        if fields is None:
            return
        known = set(fields)
        for what, rule in (("limit", self.limit), ("rate", self.rate), ("unique", self.unique)):
            missing = [k for k in (rule.key if rule else ()) if k not in known]
            if missing:
                raise JobDefinitionError(
                    f"job {type_name!r}: {what} key {missing} is not an input field"
                    f" (fields: {sorted(known)})"
                )

    def keys(self, type_name: str, inputs: Any) -> FlowKeys | None:
        """The row's flow keys for these (validated, JSON) inputs; None when it has none."""
        if self.limit is None and self.rate is None and self.unique is None:
            return None
        limit, rate, unique = self.limit, self.rate, self.unique
        return FlowKeys(
            limit_key=key_text(type_name, limit.key, inputs) if limit else None,
            limit_n=limit.n if limit else None,
            rate_key=key_text(type_name, rate.key, inputs) if rate else None,
            rate_n=rate.n if rate else None,
            rate_per=rate.per if rate else None,
            unique_key=key_text(type_name, unique.key, inputs) if unique else None,
            unique_seconds=unique.seconds if unique else None,
            unique_states=unique.states if unique else (),
            replace=bool(unique and unique.on_conflict == "replace"),
        )


def key_text(type_name: str, names: tuple[str, ...], inputs: Any) -> str:
    """``type`` alone, or ``type:name=value,...``: readable in "waiting" messages."""
    if not names:
        return type_name
    values = inputs if isinstance(inputs, dict) else {}
    parts = []
    for name in names:
        value = values.get(name)
        parts.append(f"{name}={value if isinstance(value, str) else json.dumps(value)}")
    return f"{type_name}:{','.join(parts)}"


def key_label(key: str) -> str:
    """The part of a key people read: ``account_id=42``, or the type for a whole-type key."""
    return key.split(":", 1)[1] if ":" in key else key


def rate_text(n: int, per: float) -> str:
    return f"{n}/s" if per == 1.0 else f"{n} per {per:g} s"


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueRules:
    """A queue's fleet-wide flow control, set at run time (``jobline_queue``)."""

    name: str
    limit: int | None = None  #: at most this many of its jobs running at once
    rate: int | None = None  #: at most this many starts ...
    per: float = 1.0  #: ... per this many seconds

    @property
    def active(self) -> bool:
        return self.limit is not None or self.rate is not None


def queue_rules_problem(limit: Any, rate: Any, per: Any) -> str | None:
    """Why these queue settings cannot be stored, or None."""
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        return f"limit must be an integer >= 1 or null, got {limit!r}"
    if rate is not None and (not isinstance(rate, int) or rate < 1):
        return f"rate must be an integer >= 1 or null, got {rate!r}"
    if not isinstance(per, int | float) or not 0 < per <= MAX_RATE_PER:
        return f"per must be > 0 and <= {MAX_RATE_PER:.0f} seconds, got {per!r}"
    return None


def waiting_reason(
    keys: FlowKeys,
    *,
    limit_used: int,
    rate_used: int,
    queue: QueueRules | None = None,
    queue_running: int = 0,
    queue_starts: int = 0,
) -> str | None:
    """Why a due queued job is held back, from the current counts, or None if it is not."""
    reasons = []
    if keys.limit_key and keys.limit_n is not None and limit_used >= keys.limit_n:
        reasons.append(f"{limit_used} of {keys.limit_n} running for {key_label(keys.limit_key)}")
    if keys.rate_key and keys.rate_n is not None and rate_used >= keys.rate_n:
        rate = rate_text(keys.rate_n, keys.rate_per or 1.0)
        reasons.append(f"rate {rate} for {key_label(keys.rate_key)}")
    if queue is not None and queue.limit is not None and queue_running >= queue.limit:
        reasons.append(f"{queue_running} of {queue.limit} running in queue {queue.name}")
    if queue is not None and queue.rate is not None and queue_starts >= queue.rate:
        reasons.append(f"rate {rate_text(queue.rate, queue.per)} for queue {queue.name}")
    return "waiting: " + "; ".join(reasons) if reasons else None
