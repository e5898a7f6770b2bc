"""Retry policy: exponential backoff with jitter."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """Wait ``base * factor ** (attempt - 1)`` seconds, capped at ``cap``, with +/- ``jitter``.

    ``jitter`` is a fraction: 0.2 spreads each delay uniformly over 80 %..120 % so that
    jobs that failed together do not all come back at the same instant.
    """

    base: float = 1.0
    factor: float = 2.0
    cap: float = 3600.0
    jitter: float = 0.2

    def __post_init__(self) -> None:
        if self.base < 0 or self.cap < 0:
            raise ValueError("RetryPolicy base and cap must be >= 0 seconds")
        if self.factor < 1:
            raise ValueError("RetryPolicy factor must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("RetryPolicy jitter must be between 0 and 1")

    def delay(self, attempt: int, rand: float) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based); ``rand`` in [0, 1)."""
        raw = min(self.cap, self.base * self.factor ** max(0, attempt - 1))
        return max(0.0, raw * (1 + self.jitter * (2 * rand - 1)))


DEFAULT_RETRY = RetryPolicy()
