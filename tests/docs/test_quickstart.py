"""The quickstart pages work as written: every code block on them is run.

docs/quickstart/service.md: its first bash block is README's command 1; the test starts that
``jobline up`` itself (the installed package, in a temporary folder, on the embedded SQLite
and a free port), then runs each other bash block against it. docs/quickstart/library.md:
its blocks build and drive a new Django project in a temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

from tests.conftest import ROOT, free_port, stop_process, wait_until

DOCS = ROOT / "docs" / "quickstart"
UP_COMMAND = "python3 -m pip install uv && python3 -m uv run --frozen jobline up"
BIN = Path(sys.executable).parent
FENCE = re.compile(r"^```(\w+)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
EXPECTED = re.compile(r"^print\(.*\)\s+# (.+)$", re.MULTILINE)


def blocks(page: str) -> list[tuple[str, str]]:
    """``(language, code)`` of each fenced block of a quickstart page, in order."""
    return FENCE.findall((DOCS / page).read_text())


def clean_env(**extra: str) -> dict[str, str]:
    """The environment of a user's shell: no test settings, no database of the suite's."""
    skip = {"DJANGO_SETTINGS_MODULE", "DATABASE_URL", "JOBLINE_DATA_DIR", "PYTHONPATH"}
    env = {k: v for k, v in os.environ.items() if k not in skip}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update(extra)
    return env


def run_bash(code: str, cwd: Path, env: dict[str, str]) -> str:
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", code],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{code}\n-> {done.returncode}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def test_service_quickstart_runs_as_written(tmp_path):
    first, *rest = [code for lang, code in blocks("service.md") if lang == "bash"]
    assert first.strip() == UP_COMMAND
    assert UP_COMMAND in (ROOT / "README.md").read_text(), "README's command 1 is the same"
    port = free_port()
    jobline = f"{sys.executable} -m jobline.cli.main"
    env = clean_env()
    up = subprocess.Popen(
        [*jobline.split(), "up", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:

        def healthy() -> bool:
            try:
                return httpx.get(f"http://127.0.0.1:{port}/api/v1/health").json()["workers"] == 1
            except httpx.HTTPError:
                return False

        wait_until(healthy, timeout=90, what="jobline up healthy with its worker")
        for code in rest:
            code = code.replace("python3 -m uv run jobline", jobline)
            run_bash(code.replace("127.0.0.1:8000", f"127.0.0.1:{port}"), tmp_path, env)
    finally:
        out = stop_process(up)
    assert up.returncode == 0, out
    assert (tmp_path / "jobline-data" / "jobline.sqlite3").exists()


def write_file_block(code: str, project: Path) -> None:
    """A block whose first line is ``# path`` extends that file (or makes it)."""
    name, body = code.split("\n", 1)
    path = project / name.removeprefix("# ").strip()
    with path.open("a") as f:
        f.write("\n" + body)


def run_in_shell(code: str, project: Path, env: dict[str, str]) -> None:
    """A Python block, through ``python manage.py shell``; ``print(x)  # y`` must print y."""
    done = subprocess.run(
        [sys.executable, "manage.py", "shell"],
        input=code,
        cwd=project,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"{code}\n{done.stdout}\n{done.stderr}"
    for expected in EXPECTED.findall(code):
        assert expected in done.stdout, f"{code}\nprinted: {done.stdout}"


def test_library_quickstart_runs_as_written(tmp_path):
    env = clean_env()
    ran = {"bash": 0, "file": 0, "shell": 0}
    for lang, code in blocks("library.md"):
        if lang == "bash":
            kept = [line for line in code.splitlines() if not line.startswith("pip install")]
            run_bash("\n".join(kept), tmp_path, env)
            ran["bash"] += 1
        elif lang == "python" and re.match(r"# [\w/]+\.py\n", code):
            write_file_block(code, tmp_path)
            ran["file"] += 1
        elif lang == "python":
            run_in_shell(code, tmp_path, env)
            ran["shell"] += 1
    assert all(ran.values()), ran  # the page still has each kind of block
