"""A worker process loads only what it runs: each module below costs its RSS and start-up time
in every worker, and is loaded on first use by the code that needs it."""

from __future__ import annotations

import os
import subprocess
import sys

# The API and web faces, the admin's run-input checks (jsonschema, RE2), benchmark code and
# the clients of optional dependencies; aiohttp loads when a worker that takes http jobs starts.
NOT_IN_A_WORKER = (
    "aiohttp",
    "aio_pika",
    "aiokafka",
    "jobline.api",
    "jobline.bench",
    "jobline.core.safe_schema",
    "jobline.web",
    "jsonschema",
    "opentelemetry",
    "re2",
)


def test_worker__loads_no_face_nor_client_it_does_not_run():
    # A fresh process: the test session itself has imported everything.
    code = (
        "import sys, django; django.setup(); import jobline.cli.commands, jobline.worker.runtime; "
        f"print(' '.join(m for m in {NOT_IN_A_WORKER!r} if m in sys.modules))"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}  # admin installed too
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == []
