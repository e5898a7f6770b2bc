"""The soak script's short run (CI): real workers and a scheduler under the mixed load."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from jobline.models import Job, PipelineRun, Schedule
from tests.conftest import ALL_DATABASES, ROOT

pytestmark = ALL_DATABASES


@pytest.mark.timeout(300)
def test_short_soak_reports_each_interval_and_cleans_up(alias, service_env):
    env = service_env(alias)
    # Leaks show over an hour, not 24 s: a short run checks the mechanics, with room for the
    # growth of processes still warming their caches.
    short = ["--duration", "24", "--interval", "4", "--warmup", "8", "--max-growth", "50"]
    res = subprocess.run(
        [sys.executable, "scripts/soak.py", *short, "--workers", "2", "--rate", "30"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )
    out = res.stdout
    assert res.returncode == 0, out + res.stderr[-3000:]
    lines = [line for line in out.splitlines() if line.startswith("t=")]
    assert len(lines) >= 5, out
    rates = [float(re.search(r"([\d.]+) jobs/s", line)[1]) for line in lines]
    assert sum(rates[-3:]) > 0, out  # still working at the end
    assert all("RSS" in line and "fds" in line for line in lines)
    if alias == "postgres":
        assert all("pg connections" in line for line in lines)
    summary = re.search(r"summary: (\d+) jobs finished .* \(n=(\d+)\)", out)
    assert summary and int(summary[1]) > 100 and int(summary[2]) > 10, out
    assert "after warm-up: RSS" in out and out.rstrip().endswith("OK")
    assert not Job.objects.using(alias).exists()  # what it created is gone
    assert not PipelineRun.objects.using(alias).exists()
    assert not Schedule.objects.using(alias).exists()
