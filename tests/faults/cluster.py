"""A private PostgreSQL 15 cluster owned by one test session, to crash and restart at will.

The machine's shared server (port 5432) is never touched: this cluster lives in a folder
of its own under /tmp, listens on a free loopback port and keeps its socket in that folder.
PostgreSQL refuses to run as root, so when the tests run as root the server binaries run as
the ``postgres`` user (``runuser``), which owns the folder.
"""

from __future__ import annotations

import atexit
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from jobline.dispatch.broker import free_port

BIN = Path(os.environ.get("JOBLINE_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))

# Tests need speed, not durability: a crash of the server is simulated, not of the machine.
CONF = """
listen_addresses = '127.0.0.1'
port = {port}
unix_socket_directories = '{folder}'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 32MB
log_min_messages = warning
"""


class ClusterUnavailable(RuntimeError):
    """This machine cannot run a private cluster (binaries or the postgres user missing)."""


def _as_postgres() -> list[str]:
    """The command prefix that runs a server binary as a user PostgreSQL accepts."""
    if os.geteuid() != 0:
        return []  # not root: run as ourselves, PostgreSQL allows that
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        raise ClusterUnavailable("running as root and there is no 'postgres' user") from None
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ClusterUnavailable("running as root and runuser is missing")
    return [runuser, "-u", "postgres", "--"]


class PostgresCluster:
    """``initdb`` + ``pg_ctl`` on a folder of its own. Use as a context manager."""

    def __init__(self) -> None:
        for tool in ("initdb", "pg_ctl"):
            if not (BIN / tool).exists():
                raise ClusterUnavailable(f"{BIN / tool} not found (apt-get install postgresql-15)")
        self._prefix = _as_postgres()
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="jobline-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        if self._prefix:
            ids = pwd.getpwnam("postgres")
            os.chown(self.folder, ids.pw_uid, ids.pw_gid)
        try:
            self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync")
        except Exception:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(CONF.format(port=self.port, folder=self.folder))
        atexit.register(self.close)  # even if a fixture's teardown never runs

    @property
    def url(self) -> str:
        """DATABASE_URL of the ``postgres`` database."""
        return self.database_url("postgres")

    def database_url(self, name: str, port: int | None = None) -> str:
        """DATABASE_URL of a database, optionally through another port (a proxy's)."""
        return f"postgres://postgres@127.0.0.1:{port or self.port}/{name}"

    def _run(self, tool: str, *args: str, timeout: float = 120) -> str:
        res = subprocess.run(
            [*self._prefix, str(BIN / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if res.returncode != 0:
            log = self.log.read_text()[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"{tool} {' '.join(args)} failed: {res.stderr or res.stdout}{log}")
        return res.stdout

    def _pg_ctl(self, *args: str) -> str:
        # -w: return once the server accepts connections (start) or is gone (stop).
        return self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", *args)

    def start(self) -> None:
        self._pg_ctl("start")

    def stop(self, mode: str = "fast") -> None:
        self._pg_ctl("stop", "-m", mode)

    def restart_immediate(self) -> None:
        """Crash and restart: every backend is killed without a checkpoint, then recovery."""
        self._pg_ctl("restart", "-m", "immediate")

    def running(self) -> bool:
        res = subprocess.run(
            [*self._prefix, str(BIN / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
        )
        return res.returncode == 0

    def ensure_running(self) -> None:
        if not self.running():
            self.start()

    def accepts_connections(self, timeout: float = 2) -> bool:
        try:
            psycopg.connect(self.url, connect_timeout=max(1, int(timeout))).close()
        except psycopg.OperationalError:
            return False
        return True

    def create_database(self, name: str) -> str:
        """A new empty database; its DATABASE_URL."""
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.database_url(name)

    def close(self) -> None:
        """Stop the server (immediately: nothing in it is worth a checkpoint) and remove it."""
        if not self.folder.exists():
            return
        if (self.data / "postmaster.pid").exists():
            subprocess.run(
                [*self._prefix, str(BIN / "pg_ctl"), "-D", str(self.data), "stop", "-m", "i"],
                capture_output=True,
                timeout=60,
            )
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> PostgresCluster:
        started = time.monotonic()
        self.start()
        self.started_in = time.monotonic() - started
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
