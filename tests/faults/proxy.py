"""A TCP proxy on loopback between a process and a server, to cut the link in chosen ways.

* ``blackhole()``: nothing is forwarded in either direction and nothing is closed, as when a
  network silently drops packets. Bytes already read are held, further bytes are left unread
  in the kernel (the sender sees a full window, as with lost packets that TCP retransmits),
  and new connections are accepted but never reach the server, like unanswered SYNs.
* ``restore()``: forwarding resumes; what was held is delivered, as TCP would after a
  retransmit.
* ``reset()``: every connection is closed with a RST on both sides.

Threads, not asyncio, so it works whatever event loop the test runs (or none).
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading

CHUNK = 65536
POLL = 0.05  #: how often a held thread checks whether its connection was reset


def _close(sock: socket.socket, *, abort: bool) -> None:
    """Close, waking a thread blocked in ``recv`` on it (a bare close would not).

    ``abort``: with a RST (SO_LINGER 0), not a FIN, so the peer sees 'connection reset'.
    """
    with contextlib.suppress(OSError):
        if abort:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            sock.shutdown(socket.SHUT_RD)  # wakes recv; sends nothing
        else:
            sock.shutdown(socket.SHUT_RDWR)
    with contextlib.suppress(OSError):
        sock.close()


class _Link:
    """One client connection and its upstream connection."""

    def __init__(self, client: socket.socket) -> None:
        self.client = client
        self.upstream: socket.socket | None = None
        self.closed = threading.Event()

    def close(self, *, abort: bool) -> None:
        self.closed.set()
        for sock in (self.client, self.upstream):
            if sock is not None:
                _close(sock, abort=abort)


class TcpProxy:
    """Listens on 127.0.0.1:<port> and forwards each connection to ``target``."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._links: set[_Link] = set()
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._acceptor = threading.Thread(target=self._accept, name="proxy-accept", daemon=True)
        self._acceptor.start()

    @property
    def connections(self) -> int:
        """Client connections open now."""
        with self._lock:
            return len(self._links)

    def blackhole(self) -> None:
        self._flowing.clear()

    def restore(self) -> None:
        self._flowing.set()

    def reset(self) -> None:
        with self._lock:
            links, self._links = self._links, set()
        for link in links:
            link.close(abort=True)

    def close(self) -> None:
        self._stopped.set()
        self._flowing.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self.reset()
        self._acceptor.join(timeout=5)

    def __enter__(self) -> TcpProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _hold(self, link: _Link) -> bool:
        """Wait while black-holed; False once the link is closed."""
        while not self._flowing.wait(POLL):
            if link.closed.is_set():
                return False
        return not link.closed.is_set()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            link = _Link(client)
            with self._lock:
                self._links.add(link)
            threading.Thread(target=self._open, args=(link,), daemon=True).start()

    def _open(self, link: _Link) -> None:
        if not self._hold(link):  # a black hole answers no SYN: never reach the server
            return
        try:
            link.upstream = socket.create_connection(self.target, timeout=10)
            link.upstream.settimeout(None)
        except OSError:
            self._drop(link)
            return
        for src, dst in ((link.client, link.upstream), (link.upstream, link.client)):
            threading.Thread(target=self._pump, args=(link, src, dst), daemon=True).start()

    def _pump(self, link: _Link, src: socket.socket, dst: socket.socket) -> None:
        try:
            while self._hold(link):  # black-holed: leave bytes unread in the kernel
                data = src.recv(CHUNK)
                if not data:
                    break
                if not self._hold(link):  # black-holed meanwhile: hold what was read
                    return
                dst.sendall(data)
        except OSError:
            pass  # reset, or the other side went away
        if not link.closed.is_set():  # a clean end on one side ends both
            self._drop(link)

    def _drop(self, link: _Link) -> None:
        with self._lock:
            self._links.discard(link)
        link.close(abort=False)
