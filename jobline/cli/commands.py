"""One function per ``jobline`` command; each takes the parsed arguments."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
from itertools import chain

from django.conf import settings
from django.core.management import call_command

from jobline.exceptions import InputsError, UnknownJobType


class CommandError(Exception):
    """A mistake the user can fix; printed without a traceback."""


def _flat(groups: list[tuple[str, ...]]) -> tuple[str, ...]:
    return tuple(chain.from_iterable(groups))


def _run(coro) -> None:
    try:
        import uvloop

        uvloop.run(coro)
    except ImportError:
        asyncio.run(coro)


def migrate(args: argparse.Namespace) -> None:
    call_command("migrate", interactive=False, verbosity=1)


def initialsuperuser(args: argparse.Namespace | None = None) -> None:
    """Create the first admin: from the environment, else with a generated password."""
    from django.contrib.auth import get_user_model

    users = get_user_model()
    name = os.environ.get("INITIAL_SUPERUSER_NAME", "")
    password = os.environ.get("INITIAL_SUPERUSER_PASSWORD", "")
    if name and users.objects.filter(username=name).exists():
        print(f"admin user {name!r} exists")
        return
    if not name and users.objects.filter(is_superuser=True).exists():
        return
    generated = not password
    password = password or secrets.token_urlsafe(12)
    users.objects.create_superuser(username=name or "admin", email="", password=password)
    if generated:
        print(f"Created admin user {name or 'admin'!r} with password: {password}")
        print("This password is shown once: note it, or set INITIAL_SUPERUSER_PASSWORD.")
    else:
        print(f"Created admin user {name!r}")


def up(args: argparse.Namespace) -> None:
    from jobline.cli.serve import serve

    migrate(args)
    initialsuperuser()
    run_worker = (
        settings.JOBLINE_WORKER_ENABLED if hasattr(settings, "JOBLINE_WORKER_ENABLED") else True
    )
    _run(
        serve(
            args.host,
            args.port,
            worker=run_worker and not args.no_worker,
            concurrency=args.concurrency,
        )
    )


def web(args: argparse.Namespace) -> None:
    from jobline.cli.serve import serve

    _run(serve(args.host, args.port, worker=False))


def worker(args: argparse.Namespace) -> None:
    from jobline.worker.runtime import build_worker, install_signal_handlers

    try:
        w = build_worker(
            queues=_flat(args.queue) or None,
            only=_flat(args.only),
            exclude=_flat(args.exclude),
            tags=_flat(args.tag),
            concurrency=args.concurrency,
            max_jobs=args.max_jobs,
            run_for=args.timeout,
        )
        w.claim_filter()
    except ValueError as exc:
        raise CommandError(str(exc)) from None

    async def main() -> None:
        install_signal_handlers(w)
        await w.run()

    _run(main())


def enqueue(args: argparse.Namespace) -> None:
    from jobline.enqueuing import enqueue as enqueue_job

    try:
        inputs = json.loads(args.inputs)
    except json.JSONDecodeError as exc:
        raise CommandError(f"--inputs is not valid JSON: {exc}") from None
    try:
        job = enqueue_job(
            args.type,
            inputs,
            queue=args.queue,
            priority=args.priority,
            delay=args.delay,
            idempotency_key=args.idempotency_key,
        )
    except (InputsError, UnknownJobType, ValueError) as exc:
        raise CommandError(str(exc)) from None
    print(job.id)


def bench(args: argparse.Namespace) -> None:
    from jobline.bench import run_bench

    try:
        run_bench(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
