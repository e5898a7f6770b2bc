"""Latency histograms a worker keeps and publishes with its heartbeat (for ``/metrics``)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)


@dataclass(slots=True)
class Histogram:
    """Cumulative-ready counts per upper bound, as Prometheus expects."""

    counts: list[int] = field(default_factory=lambda: [0] * (len(BUCKETS) + 1))
    total: float = 0.0

    def observe(self, seconds: float) -> None:
        self.counts[bisect.bisect_left(BUCKETS, seconds)] += 1
        self.total += seconds

    def as_dict(self) -> dict[str, object]:
        return {"counts": self.counts, "sum": self.total}


@dataclass(slots=True)
class WorkerStats:
    claim: Histogram = field(default_factory=Histogram)  #: seconds per claim query
    run: Histogram = field(default_factory=Histogram)  #: seconds per job attempt

    def as_dict(self) -> dict[str, object]:
        return {"claim": self.claim.as_dict(), "run": self.run.as_dict()}
