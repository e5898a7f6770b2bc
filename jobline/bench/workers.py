"""Worker processes for the benchmarks: start them, read their peak memory, stop them."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def start_workers(
    args: argparse.Namespace, queue: str, env: dict[str, str]
) -> list[subprocess.Popen[bytes]]:
    cmd = [
        sys.executable,
        "-m",
        "jobline.cli.main",
        "worker",
        "--queue",
        queue,
        "--concurrency",
        str(args.concurrency),
    ]
    return [subprocess.Popen(cmd, env=os.environ | env) for _ in range(args.workers)]


def peak_rss_mb(workers: list[subprocess.Popen[bytes]]) -> list[float]:
    peaks = []
    for w in workers:
        with open(f"/proc/{w.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    peaks.append(int(line.split()[1]) / 1024)
    return peaks


def stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        w.terminate()
    for w in workers:
        try:
            w.wait(30)
        except subprocess.TimeoutExpired:
            w.kill()
