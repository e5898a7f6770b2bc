"""jobline's logs in a Django project that configured none for them.

In service mode the settings send every log to stderr as ``key=value`` lines. A project
using jobline as a library may have no handler for the ``jobline`` loggers, and then
``manage.py jobline worker`` printed nothing: no start line, no failed job, nothing on
SIGTERM. So, only when neither the ``jobline`` logger nor the root logger has a handler,
the management command gives ``jobline`` the service's stderr handler and format, at
``LOG_LEVEL`` (default ``INFO``). A project's own ``LOGGING`` always wins.
"""

from __future__ import annotations

import logging
import os

FORMAT = "%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"


def configure_if_unset() -> bool:
    """Give the ``jobline`` loggers a stderr handler if nothing would show their records;
    returns whether it did."""
    logger = logging.getLogger("jobline")
    if logger.handlers or logging.getLogger().handlers:
        return False
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter(FORMAT))
    logger.addHandler(handler)
    if logger.level == logging.NOTSET:
        logger.setLevel(os.environ.get("LOG_LEVEL", "INFO").upper())
    logger.propagate = False  # the root has no handler: nothing else would print them
    return True
