"""``python manage.py jobline <command>``: the ``jobline`` command inside a Django project."""

from __future__ import annotations

import os
import sys

from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = "Run jobline: up, web, worker, scheduler, trigger, enqueue, bench, token, ..."

    def run_from_argv(self, argv: list[str]) -> None:
        from jobline.cli.main import main
        from jobline.logs import configure_if_unset

        configure_if_unset()  # the project's LOGGING, if it has one for jobline, wins
        sys.exit(main(argv[2:], django_ready=True, prog=_prog(argv)))

    def print_help(self, prog_name: str, subcommand: str) -> None:
        """``manage.py help jobline`` shows jobline's own commands, as ``--help`` does."""
        from jobline.cli.main import build_parser

        build_parser(f"{os.path.basename(prog_name)} {subcommand}").print_help()


def _prog(argv: list[str]) -> str:
    name = os.path.basename(argv[0])
    return f"{'python -m django' if name == '__main__.py' else name} {argv[1]}"
