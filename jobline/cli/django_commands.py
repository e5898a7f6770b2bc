"""Django's own user commands under ``jobline``, so service mode can reset a lost admin
password (``jobline changepassword NAME``) or add an admin (``jobline createsuperuser``)
without a ``manage.py``. Their arguments are Django's, passed through unchanged."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

PASSED_THROUGH = {
    "changepassword": "set a user's password (Django's changepassword): a lost admin password",
    "createsuperuser": "create an admin user (Django's createsuperuser)",
}
_GLOBAL_WITH_VALUE = {"--data-dir"}


def split(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """``argv`` cut after the command when it is one of Django's: what jobline's parser
    reads, and Django's own arguments (which jobline's parser would refuse)."""
    argv = list(argv)
    i = 0
    while i < len(argv) and argv[i].startswith("-"):  # global options before the command
        i += 2 if argv[i] in _GLOBAL_WITH_VALUE else 1
    if i < len(argv) and argv[i] in PASSED_THROUGH:
        return argv[: i + 1], argv[i + 1 :]
    return argv, []


def add_parsers(sub: argparse._SubParsersAction) -> None:
    for name, help_text in PASSED_THROUGH.items():
        parser = sub.add_parser(name, help=help_text, add_help=False)
        parser.set_defaults(run=_django_command(name), django_args=[])


def _django_command(name: str):
    def run(args: argparse.Namespace) -> None:
        from django.core.management import call_command

        call_command(name, *args.django_args)

    return run
