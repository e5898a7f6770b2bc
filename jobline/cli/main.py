"""``jobline <command>``: parse arguments, set up Django, run the command."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from jobline.cli import django_commands


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _worker_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--queue",
        "-q",
        action="append",
        type=_csv,
        default=[],
        help="queues to take (repeat or comma-separate); default: all",
    )
    p.add_argument(
        "--only",
        action="append",
        type=_csv,
        default=[],
        help="job types to take; default: every registered type",
    )
    p.add_argument(
        "--exclude", action="append", type=_csv, default=[], help="job types never to take"
    )
    p.add_argument(
        "--tag",
        action="append",
        type=_csv,
        default=[],
        help="capabilities of this host; job types that require them run here",
    )
    p.add_argument("--concurrency", "-c", type=int, help="jobs run at once (WORKER_CONCURRENCY)")


DATA_DIR_HELP = "folder for the SQLite database (JOBLINE_DATA_DIR)"
HOST_HELP = "address to listen on (0.0.0.0: every interface)"
DESCRIPTION = """\
jobline: a job queue and scheduler. `up` runs everything in one process (web UI, API,
admin, scheduler, worker); `web`, `worker` and `scheduler` run one role each. Settings come
from the environment (or .env) in service mode, from Django's settings in a project."""


def _global_options_after(parser: argparse.ArgumentParser) -> None:
    """Let every command (and sub-command) take the global options after its name too.

    SUPPRESS: a command that is not given the option leaves the global one as it was."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for command in action.choices.values():
                command.add_argument("--data-dir", default=argparse.SUPPRESS, help=DATA_DIR_HELP)
                _global_options_after(command)


def build_parser(prog: str = "jobline") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data-dir", help=DATA_DIR_HELP)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser(
        "up", help="migrate, create the first admin, serve web + API + scheduler + worker"
    )
    up.add_argument("--host", default="127.0.0.1", help=HOST_HELP)
    up.add_argument("--port", type=int, default=8000, help="port to serve on")
    up.add_argument("--no-worker", action="store_true", help="no worker, no scheduler")
    up.add_argument("--concurrency", "-c", type=int, help="the worker's (WORKER_CONCURRENCY)")

    web = sub.add_parser("web", help="serve the web UI, API and admin (no worker)")
    web.add_argument("--host", default="127.0.0.1", help=HOST_HELP)
    web.add_argument("--port", type=int, default=8000, help="port to serve on")

    worker = sub.add_parser("worker", help="run jobs")
    _worker_args(worker)
    worker.add_argument("--max-jobs", type=int, help="stop after this many jobs")
    worker.add_argument("--timeout", type=float, help="stop after this many seconds")

    sub.add_parser("scheduler", help="fire due schedules, exactly once across any number of these")
    sub.add_parser("trigger", help="fire the schedules that are due once, print them, exit")

    sub.add_parser("migrate", help="create or update the database tables")

    prune = sub.add_parser(
        "prune", help="remove finished jobs, history and runs past their retention, print what"
    )
    prune.add_argument("--dry-run", action="store_true", help="only count what would go")

    enqueue = sub.add_parser("enqueue", help="enqueue one job and print its id")
    enqueue.add_argument("type", help="the job type's name (noop, sleep, http, myapp.jobs.f)")
    enqueue.add_argument("--inputs", default="{}", help="inputs as a JSON object")
    enqueue.add_argument("--queue", help="default: the job type's")
    enqueue.add_argument("--priority", type=int, help="higher runs first")
    enqueue.add_argument("--delay", type=float, help="seconds to wait before it may run")
    enqueue.add_argument("--idempotency-key", help="a second enqueue with it returns the first job")

    queue = sub.add_parser(
        "queue", help="show a queue; pause or resume it, set its fleet-wide limit and rate"
    )
    queue.add_argument("name")
    state = queue.add_mutually_exclusive_group()
    state.add_argument("--pause", action="store_true", help="workers take no new jobs from it")
    state.add_argument("--resume", action="store_true")
    limit = queue.add_mutually_exclusive_group()
    limit.add_argument("--limit", type=int, help="at most N of its jobs running at once")
    limit.add_argument("--no-limit", action="store_true")
    rate = queue.add_mutually_exclusive_group()
    rate.add_argument("--rate", type=int, help="at most N starts per --per seconds")
    rate.add_argument("--no-rate", action="store_true")
    queue.add_argument("--per", type=float, help="seconds of the rate's window (default 1)")

    sub.add_parser(
        "initialsuperuser", help="create the admin from INITIAL_SUPERUSER_NAME / _PASSWORD"
    )

    token = sub.add_parser("token", help="API tokens (Authorization: Bearer <token>)")
    token_actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    token_create = token_actions.add_parser(
        "create", help="create a token and print it, alone on the last line"
    )
    token_create.add_argument("name", help="a name to know (and revoke) it by")
    token_create.add_argument("--read-only", action="store_true", help="it may only read")
    token_actions.add_parser("revoke", help="delete a token").add_argument("name")

    templates = sub.add_parser(
        "import-templates", help="create or update templates from a job_templates.json"
    )
    templates.add_argument("file", help="RestJobScheduler's job_templates.json format")

    bench = sub.add_parser("bench", help="measure enqueue and drain rates and start latency")
    bench.add_argument("--jobs", "-n", type=int, default=20_000)
    bench.add_argument(
        "--kind",
        default="noop",
        help="noop, sleep:SECONDS, http (calls a server on loopback), kafka (KAFKA_BOOTSTRAP_"
        "SERVERS, else a tansu it starts), or pipeline (chains of noop steps)",
    )
    bench.add_argument("--runs", type=int, default=1000, help="pipeline: runs to start")
    bench.add_argument("--steps", type=int, default=10, help="pipeline: steps in each chain")
    bench.add_argument("--workers", "-w", type=int, default=1, help="worker processes")
    bench.add_argument("--concurrency", "-c", type=int, default=1000)
    bench.add_argument(
        "--latency-samples",
        type=int,
        default=200,
        help="jobs enqueued one by one into idle workers to time the start",
    )
    bench.add_argument(
        "--limit",
        type=int,
        help="noop under jobline.Limit(N, key=...): the cost of the flow claim",
    )
    bench.add_argument("--keys", type=int, default=1, help="--limit: distinct key values")
    bench.add_argument("--no-progress", action="store_true")
    django_commands.add_parsers(sub)
    _global_options_after(parser)
    return parser


def setup_django(args: argparse.Namespace) -> None:
    if args.data_dir:
        os.environ["JOBLINE_DATA_DIR"] = args.data_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "jobline.service.settings")
    import django

    django.setup()


def main(
    argv: Sequence[str] | None = None, *, django_ready: bool = False, prog: str = "jobline"
) -> int:
    argv, django_args = django_commands.split(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    if django_args:
        args.django_args = django_args
    if not django_ready:
        setup_django(args)
    from jobline.cli import commands
    from jobline.services import database

    try:
        run = getattr(args, "run", None) or getattr(commands, args.command.replace("-", "_"))
        return run(args) or 0
    except commands.CommandError as exc:
        print(f"jobline {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # the database locked, read-only or away: one line, no traceback
        explained = database.explain(exc)
        if explained is None:
            raise
        print(f"jobline {args.command}: {explained}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
