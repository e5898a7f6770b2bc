"""The outbox of job events: triggers on ``jobline_job`` write one row per event.

A job's insert makes a ``created`` event; a change of its status to running, succeeded,
failed or cancelled makes ``started``, ``succeeded``, ``failed`` or ``terminated`` (a retry
back to queued makes none). The rows are written in the same transaction as the change, so
an event exists only once its change commits, and the worker's hot path runs no extra code.

The triggers exist only while an active subscription does (:func:`sync_triggers`, run in
the transaction of every change to subscriptions and after every migrate): a deployment
without subscriptions pays nothing, not even a trigger call. Each trigger also checks that
an active subscription exists, so rows changed without signals (``QuerySet.update``) never
make events nobody asked for. Jobs of the delivery type make no events, or deliveries would
make events that make deliveries.

PostgreSQL: statement-level triggers with transition tables, so a batch of 10,000 jobs is
one ``INSERT ... SELECT``, and a ``NOTIFY jobline_events`` at commit wakes the relay; the
functions come from migration 0017. SQLite: row triggers (a migration that rebuilds
``jobline_job`` drops them; the sync after migrate puts them back).
"""

from __future__ import annotations

import json
from typing import Any

from jobline.core.events import DELIVER_TYPE
from jobline.store.port import EVENTS

COLUMNS = (
    "kind, job_id, type, queue, status, attempts, schedule_id, outputs, error,"
    " created_at, started_at, finished_at, at"
)
_SUBSCRIBED = "EXISTS (SELECT 1 FROM jobline_subscription WHERE is_active)"
_KIND = (
    "CASE {t}.status WHEN 'running' THEN 'started' WHEN 'cancelled' THEN 'terminated'"
    " ELSE {t}.status END"
)
_EVENT_STATUSES = "('running', 'succeeded', 'failed', 'cancelled')"


def _values(t: str, kind: str, at: str) -> str:
    return (
        f"{kind}, {t}.id, {t}.type, {t}.queue, {t}.status, {t}.attempts, {t}.schedule_id,"
        f" {t}.outputs, {t}.error, {t}.created_at, {t}.started_at, {t}.finished_at, {at}"
    )


POSTGRES_FUNCTIONS = f"""
CREATE OR REPLACE FUNCTION jobline_outbox_created() RETURNS trigger AS $$
BEGIN
    IF {_SUBSCRIBED} THEN
        INSERT INTO jobline_outbox ({COLUMNS})
        SELECT {_values("n", "'created'", "clock_timestamp()")}
        FROM new_jobs n WHERE n.type <> '{DELIVER_TYPE}';
        IF FOUND THEN PERFORM pg_notify('{EVENTS}', ''); END IF;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
CREATE OR REPLACE FUNCTION jobline_outbox_changed() RETURNS trigger AS $$
BEGIN
    IF {_SUBSCRIBED} THEN
        INSERT INTO jobline_outbox ({COLUMNS})
        SELECT {_values("n", _KIND.format(t="n"), "clock_timestamp()")}
        FROM new_jobs n JOIN old_jobs o ON o.id = n.id
        WHERE n.status <> o.status AND n.status IN {_EVENT_STATUSES}
            AND n.type <> '{DELIVER_TYPE}'
        ORDER BY n.id;
        IF FOUND THEN PERFORM pg_notify('{EVENTS}', ''); END IF;
    END IF;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;
"""
POSTGRES_DROP_FUNCTIONS = """
DROP FUNCTION IF EXISTS jobline_outbox_created();
DROP FUNCTION IF EXISTS jobline_outbox_changed();
"""
POSTGRES_CREATE = """
CREATE TRIGGER jobline_job_outbox_created AFTER INSERT ON jobline_job
    REFERENCING NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobline_outbox_created();
CREATE TRIGGER jobline_job_outbox_changed AFTER UPDATE ON jobline_job
    REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs
    FOR EACH STATEMENT EXECUTE FUNCTION jobline_outbox_changed();
"""

POSTGRES_DROP = """
DROP TRIGGER IF EXISTS jobline_job_outbox_created ON jobline_job;
DROP TRIGGER IF EXISTS jobline_job_outbox_changed ON jobline_job;
"""

_SQLITE_NOW = "strftime('%Y-%m-%d %H:%M:%f', 'now')"
SQLITE_CREATE = (
    f"""
CREATE TRIGGER IF NOT EXISTS jobline_job_outbox_created AFTER INSERT ON jobline_job
WHEN NEW.type <> '{DELIVER_TYPE}' AND {_SUBSCRIBED}
BEGIN
    INSERT INTO jobline_outbox ({COLUMNS})
    VALUES ({_values("NEW", "'created'", _SQLITE_NOW)});
END
""",
    f"""
CREATE TRIGGER IF NOT EXISTS jobline_job_outbox_changed AFTER UPDATE OF status ON jobline_job
WHEN NEW.status <> OLD.status AND NEW.status IN {_EVENT_STATUSES}
    AND NEW.type <> '{DELIVER_TYPE}' AND {_SUBSCRIBED}
BEGIN
    INSERT INTO jobline_outbox ({COLUMNS})
    VALUES ({_values("NEW", _KIND.format(t="NEW"), _SQLITE_NOW)});
END
""",
)

SQLITE_DROP = (
    "DROP TRIGGER IF EXISTS jobline_job_outbox_created",
    "DROP TRIGGER IF EXISTS jobline_job_outbox_changed",
)


TRIGGERS = ("jobline_job_outbox_created", "jobline_job_outbox_changed")
_PRESENT = {
    "postgresql": "SELECT count(*) FROM pg_trigger"
    " WHERE tgrelid = 'jobline_job'::regclass AND tgname IN {names}",
    "sqlite": "SELECT count(*) FROM sqlite_master WHERE type = 'trigger' AND name IN {names}",
}


def sync_triggers(vendor: str, cursor: Any) -> bool:
    """Create the triggers if an active subscription exists, drop them if none does; returns
    whether they are on. Run it in the transaction that changed subscriptions: on PostgreSQL
    a lock on ``jobline_subscription`` makes concurrent syncs take turns, each seeing what
    the one before committed. DDL only when the state changes (it locks ``jobline_job``)."""
    if vendor == "postgresql":
        cursor.execute("LOCK TABLE jobline_subscription IN SHARE ROW EXCLUSIVE MODE")
    names = "(" + ", ".join(f"'{name}'" for name in TRIGGERS) + ")"
    cursor.execute(f"SELECT {_SUBSCRIBED}, ({_PRESENT[vendor].format(names=names)})")
    wanted, present = cursor.fetchone()
    if bool(wanted) != (present == len(TRIGGERS)):
        if vendor == "postgresql":
            cursor.execute(POSTGRES_DROP + (POSTGRES_CREATE if wanted else ""))
        else:
            for statement in (*SQLITE_DROP, *(SQLITE_CREATE if wanted else ())):
                cursor.execute(statement)
    return bool(wanted)


def after_migrate(vendor: str, cursor: Any, tables: Any) -> None:
    """The triggers as the subscriptions want them, once the tables exist (on SQLite a
    migration that rebuilt ``jobline_job`` dropped them)."""
    if {"jobline_outbox", "jobline_subscription"} <= set(tables):
        sync_triggers(vendor, cursor)


_TAKE = (
    "DELETE FROM jobline_outbox WHERE id IN"
    " (SELECT id FROM jobline_outbox ORDER BY id LIMIT {limit}{lock})"
    f" RETURNING id, {COLUMNS}"
)
#: The oldest events, removed from the outbox in the caller's transaction: concurrent relays
#: take different rows on PostgreSQL; SQLite has one writer.
TAKE_POSTGRES = _TAKE.format(limit="%s", lock=" FOR UPDATE SKIP LOCKED")
TAKE_SQLITE = _TAKE.format(limit="?", lock="")
FIELDS = ("id", *COLUMNS.replace(" ", "").split(","))  #: what each taken row holds


def rows_to_events(rows: Any) -> list[dict[str, Any]]:
    """Taken rows as events, oldest first (``RETURNING`` keeps no order), outputs decoded
    (Django's connections leave JSON as text)."""
    events = sorted((dict(zip(FIELDS, row, strict=True)) for row in rows), key=_id)
    for event in events:
        if isinstance(event["outputs"], str):
            event["outputs"] = json.loads(event["outputs"])
    return events


def _id(event: dict[str, Any]) -> int:
    return event["id"]
