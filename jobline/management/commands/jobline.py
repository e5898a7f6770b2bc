"""``python manage.py jobline <command>``: the ``jobline`` command inside a Django project."""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "jobline: up, web, worker, enqueue, bench, ... (see `manage.py jobline --help`)"

    def run_from_argv(self, argv: list[str]) -> None:
        from jobline.cli.main import main

        sys.exit(main(argv[2:], django_ready=True))
