"""One function per ``jobline`` command; each takes the parsed arguments."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
from itertools import chain

from django.conf import settings
from django.core.management import call_command

from jobline.core.flow import QueueRules, rate_text
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
            scheduler=getattr(settings, "JOBLINE_SCHEDULER_ENABLED", True) and not args.no_worker,
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


def scheduler(args: argparse.Namespace) -> None:
    from jobline.scheduler.loop import Scheduler, install_signal_handlers
    from jobline.services.beside import with_upkeep

    async def main() -> None:
        s = Scheduler()
        install_signal_handlers(s)
        await with_upkeep(s.run())

    _run(main())


def prune(args: argparse.Namespace) -> int:
    from jobline.services.retention import Retention
    from jobline.services.retention import prune as prune_rows

    retention = Retention.from_settings().as_dict()
    print(
        "retention (days; None keeps forever): "
        + ", ".join(
            f"{k.removesuffix('_days')} {v}" for k, v in retention.items() if k.endswith("_days")
        )
    )
    pruned = prune_rows(dry_run=args.dry_run)
    if pruned.skipped:
        print("another process is pruning now; nothing done", file=sys.stderr)
        return 1
    for line in pruned.lines(args.dry_run):
        print(line)
    return 0


def trigger(args: argparse.Namespace) -> None:
    from jobline.scheduler.api import sync_periodic
    from jobline.services.firing import tick

    sync_periodic()
    fired = tick().fired
    for entry in fired:
        print(entry)
    print(f"{sum(1 for f in fired if f.job_id)} jobs enqueued")


def enqueue(args: argparse.Namespace) -> None:
    from jobline.services.enqueue import enqueue as enqueue_job

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


def queue(args: argparse.Namespace) -> None:
    """Change a queue at run time (workers apply it at their next claims), print it."""
    from jobline.models import Queue
    from jobline.services import actions

    row = Queue.objects.filter(name=args.name).first()
    rules = row.rules if row is not None else QueueRules(name=args.name)
    if args.limit is not None or args.no_limit or args.rate is not None or args.no_rate or args.per:
        try:
            actions.set_queue_rules(
                args.name,
                limit=None
                if args.no_limit
                else args.limit
                if args.limit is not None
                else rules.limit,
                rate=None if args.no_rate else args.rate if args.rate is not None else rules.rate,
                per=args.per if args.per is not None else rules.per,
            )
        except ValueError as exc:
            raise CommandError(str(exc)) from None
    if args.pause:
        actions.pause_queue(args.name)
    elif args.resume:
        actions.resume_queue(args.name)
    row = Queue.objects.filter(name=args.name).first()
    rules = row.rules if row is not None else QueueRules(name=args.name)
    limit = "none" if rules.limit is None else rules.limit
    rate = "none" if rules.rate is None else rate_text(rules.rate, rules.per)
    paused = "paused" if row is not None and row.paused else "active"
    print(f"queue {args.name}: {paused}, limit {limit}, rate {rate}")


def bench(args: argparse.Namespace) -> None:
    from jobline.bench.queue import run_bench

    try:
        run_bench(args)
    except ValueError as exc:
        raise CommandError(str(exc)) from None


def token(args: argparse.Namespace) -> None:
    from django.core.exceptions import ValidationError

    from jobline.models.api import ApiToken

    if args.action == "revoke":
        if not ApiToken.objects.filter(name=args.name).delete()[0]:
            raise CommandError(f"no token named {args.name!r}")
        print(f"Revoked API token {args.name!r}")
        return
    try:
        _, secret = ApiToken.issue(args.name, read_only=args.read_only)
    except ValidationError as exc:
        raise CommandError("; ".join(exc.messages)) from None
    access = "read-only" if args.read_only else "read-write"
    print(f"Created {access} API token {args.name!r}. It is shown this once:")
    print(secret)


def import_templates(args: argparse.Namespace) -> None:
    from jobline.api.template_import import TemplateFileError
    from jobline.api.template_import import import_templates as load

    try:
        result = load(args.file)
    except TemplateFileError as exc:
        raise CommandError(str(exc)) from None
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"Imported {len(result.created)} new and {len(result.updated)} updated templates")
