"""examples/webhook_timers: its script, smaller, against a real ``jobline up`` process."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import httpx

from jobline.models import Job
from tests.conftest import ALL_DATABASES, ROOT, free_port, jobline_process

pytestmark = ALL_DATABASES

SCRIPT = ROOT / "examples" / "webhook_timers" / "set_timers.py"


def test_every_timer_calls_its_url_exactly_once(alias, service_env):
    env = service_env(alias, JOBLINE_HTTP_ALLOWED_NETWORKS="127.0.0.0/8")
    port = free_port()
    up = jobline_process(env, "up", "--port", str(port))
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/api/v1/health").json()["workers"] == 1:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and up.poll() is None, "jobline up did not start"
            time.sleep(0.1)
        created = jobline_process(env, "token", "create", "timers")
        token = created.communicate(timeout=30)[0].splitlines()[-1]
        small = ["--timers", "60", "--seconds", "2", "--concurrency", "4", "--wait", "20"]
        run = subprocess.run(
            [sys.executable, SCRIPT, "--api", f"http://127.0.0.1:{port}", "--token", token, *small],
            capture_output=True,
            text=True,
            timeout=90,
        )
    finally:
        up.send_signal(signal.SIGTERM)
        out = up.communicate(timeout=30)[0]
    assert run.returncode == 0, run.stdout + run.stderr + out[-3000:]
    assert "every URL called exactly once (60 of 60)" in run.stdout
    # The script's word, checked against the database: 60 http jobs, each run once.
    timers = Job.objects.using(alias).filter(type="http")
    assert sorted(timers.values_list("status", "attempts").distinct()) == [("succeeded", 1)]
    assert timers.count() == 60
