from __future__ import annotations

import contextlib
import importlib

from django.apps import AppConfig
from django.conf import settings
from django.db import connections, transaction
from django.db.models.signals import post_delete, post_migrate, post_save
from django.utils.module_loading import autodiscover_modules, import_string

from jobline.store import outbox


class JoblineConfig(AppConfig):
    name = "jobline"
    verbose_name = "jobline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        post_migrate.connect(_outbox_triggers, sender=self)
        # Job events' triggers exist while an active subscription does.
        subscription = self.get_model("Subscription")
        post_save.connect(_sync_triggers, sender=subscription)
        post_delete.connect(_sync_triggers, sender=subscription)
        # Pipeline runs' actions (run.cancel(), run.resume(), run.steps) come from the services.
        importlib.import_module("jobline.services.actions")
        # Job types register themselves as each installed app's jobs.py is imported;
        # jobline's own jobs.py holds the built-in types.
        autodiscover_modules("jobs")
        # django.tasks on jobline: each @task registers its job type as its module imports,
        # so import every app's tasks.py for workers to know them all.
        if _runs_django_tasks():
            autodiscover_modules("tasks")
        # Plain modules of jobs, for service mode without a Django project of one's own.
        for module in getattr(settings, "JOBLINE_IMPORT", ()):
            importlib.import_module(module)


def _outbox_triggers(using: str, **kwargs: object) -> None:
    """Job events' triggers, again after migrations (a rebuilt job table lost them)."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
        outbox.after_migrate(connection.vendor, cursor, tables)


def _sync_triggers(using: str, **kwargs: object) -> None:
    """A subscription was saved or deleted: the triggers follow, in the same transaction
    (a savepoint in the caller's, else a transaction of its own right after the write)."""
    connection = connections[using]
    with transaction.atomic(using=using), connection.cursor() as cursor:
        outbox.sync_triggers(connection.vendor, cursor)


def _runs_django_tasks() -> bool:
    """Whether a ``TASKS`` backend is jobline's (or a subclass of it)."""
    for conf in getattr(settings, "TASKS", {}).values():
        if conf["BACKEND"].startswith("django.tasks."):  # Django's own (its default TASKS):
            continue  # never ours, so not imported: 10 modules and 20 ms off a worker's start
        with contextlib.suppress(ImportError):  # the framework reports a wrong BACKEND on use
            backend = import_string(conf["BACKEND"])
            from jobline.tasks import Backend  # a tasks backend imported: so does ours

            if isinstance(backend, type) and issubclass(backend, Backend):
                return True
    return False
