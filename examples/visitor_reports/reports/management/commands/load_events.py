"""``python manage.py load_events``: put the events file into the DynamoDB table."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from django.core.management.base import BaseCommand
from django.utils import timezone

from reports.events import EVENTS_FILE, create_table, parse_stamp, put_events, read_file


class Command(BaseCommand):
    help = "Create the events table if needed and load the events file into it."

    def add_arguments(self, parser):
        parser.add_argument("--file", type=Path, default=EVENTS_FILE)
        parser.add_argument(
            "--to-now",
            action="store_true",
            help="load a copy moved in time, its newest event now (for the last-minutes job)",
        )

    def handle(self, *args, file: Path, to_now: bool, **options):
        rows = read_file(file)
        shift = timedelta(0)
        if to_now:
            shift = timezone.now() - max(parse_stamp(r["timestamp"]) for r in rows)
        create_table()
        count = put_events(rows, shift)
        self.stdout.write(f"loaded {count} events into DynamoDB")
