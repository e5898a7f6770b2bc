"""Capture what running jobs log, per job and attempt, while workers run in this process.

A handler on the root logger hands every record logged inside a job (the job's context is
``jobline.current_job()``'s context variable, which tasks and threads the job starts carry
along) to the job's reporter, the worker's :class:`~jobline.worker.reports.JobReports`.
Records logged outside jobs (the worker's own) pass it by: a context variable lookup, and
nothing when nobody logs. Records reach the root logger only through their loggers' levels
and ``propagate``, as for any other handler. With ``prints``, ``sys.stdout`` is wrapped too:
lines a job prints are captured (level ``PRINT``) and still printed.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from typing import Any, TextIO

from jobline.core.jobtypes import _current

#: The worker's own loggers: never a job's lines, even if one logs inside a job's context.
OWN = "jobline.worker"

_lock = threading.Lock()
_users = 0
_prints = 0
_handler: JobLogHandler | None = None
_stdout: PrintCapture | None = None
_formatter = logging.Formatter()  # tracebacks of records logged with exc_info


class JobLogHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        job = _current.get(None)
        if job is None or job.reporter is None or record.name.startswith(OWN):
            return
        try:
            text = record.getMessage()
            if record.exc_info:
                text = f"{text}\n{_formatter.formatException(record.exc_info)}"
        except Exception:
            self.handleError(record)
            return
        job.reporter.log(job, record.levelname, text, record.created)


class PrintCapture:
    """``sys.stdout`` as jobs see it: whole lines printed inside a job go to its log too."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self._partial: dict[tuple[int, int], str] = {}  #: a job's line not ended yet

    def write(self, text: str) -> int:
        job = _current.get(None)
        if job is not None and job.reporter is not None:
            key = (job.id, job.attempt)
            *lines, rest = (self._partial.pop(key, "") + text).split("\n")
            if rest:
                self._partial[key] = rest
            for line in lines:
                job.reporter.log(job, "PRINT", line, time.time())
        return self.stream.write(text)

    def __getattr__(self, name: str) -> Any:  # flush, fileno, encoding, isatty...
        return getattr(self.stream, name)


def start(*, prints: bool = False) -> None:
    """Capture from now on (a worker starts); every ``start`` needs its ``stop``."""
    global _users, _prints, _handler, _stdout
    with _lock:
        _users += 1
        if _handler is None:
            _handler = JobLogHandler()
            logging.getLogger().addHandler(_handler)
        if prints:
            _prints += 1
            if _stdout is None:
                _stdout = PrintCapture(sys.stdout)
                sys.stdout = _stdout


def stop(*, prints: bool = False) -> None:
    """The worker that called ``start`` is done; the last one out removes the capture."""
    global _users, _prints, _handler, _stdout
    with _lock:
        _users -= 1
        if _users == 0 and _handler is not None:
            logging.getLogger().removeHandler(_handler)
            _handler = None
        if prints:
            _prints -= 1
            if _prints == 0 and _stdout is not None:
                if sys.stdout is _stdout:
                    sys.stdout = _stdout.stream
                _stdout = None
