from __future__ import annotations

import importlib

from django.apps import AppConfig
from django.conf import settings
from django.utils.module_loading import autodiscover_modules


class JoblineConfig(AppConfig):
    name = "jobline"
    verbose_name = "jobline"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Job types register themselves as each installed app's jobs.py is imported;
        # jobline's own jobs.py holds the built-in types.
        autodiscover_modules("jobs")
        # Plain modules of jobs, for service mode without a Django project of one's own.
        for module in getattr(settings, "JOBLINE_IMPORT", ()):
            importlib.import_module(module)
