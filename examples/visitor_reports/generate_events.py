"""Write events.csv: page views from a fixed seed, so the file is the same on every run.

    python examples/visitor_reports/generate_events.py  [--events 3000] [--seed 9]

Two hours of traffic across midnight UTC (so a window spans two days of the event store),
timestamps to the millisecond in one fixed-width format, rows in time order.
"""

from __future__ import annotations

import argparse
import csv
import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

START = datetime(2025, 6, 1, 23, 0, tzinfo=UTC)
SPAN = timedelta(hours=2)
PAGES = ["/", "/pricing", "/docs", "/docs/install", "/blog", "/blog/launch", "/signup", "/login"]
HERE = Path(__file__).resolve().parent


def stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def events(count: int, seed: int) -> list[dict[str, str]]:
    rng = random.Random(seed)
    visitors = [f"v{n:04d}" for n in range(1, 201)]
    rows = []
    for _ in range(count):
        moment = START + timedelta(milliseconds=rng.randrange(int(SPAN.total_seconds() * 1000)))
        rows.append(
            {
                "request_id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                "visitor_id": rng.choice(visitors),
                # Some pages are far more popular than others, as on a real site.
                "page": rng.choices(PAGES, weights=[30, 12, 15, 6, 10, 8, 4, 15])[0],
                "timestamp": stamp(moment),
            }
        )
    return sorted(rows, key=lambda r: (r["timestamp"], r["request_id"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--out", type=Path, default=HERE / "events.csv")
    args = parser.parse_args()
    with open(args.out, "w", newline="") as out:
        fields = ["request_id", "visitor_id", "page", "timestamp"]
        writer = csv.DictWriter(out, fieldnames=fields, lineterminator="\n")
        writer.writeheader()
        writer.writerows(events(args.events, args.seed))
    print(f"wrote {args.events} events to {args.out}")


if __name__ == "__main__":
    main()
