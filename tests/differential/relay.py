"""A loopback-to-loopback TCP relay from the STS namespace to the host.

The servers of the differential run inside the STS namespace
(:mod:`tests.fixtures.stsnamespace`), whose only interface is its own loopback;
the real kube-apiserver of ``tests/fixtures/controlplane.py`` listens on the
host's 127.0.0.1. :class:`LoopbackRelay` joins the two without touching either
program or the host's network: the test process opens a listening socket on
127.0.0.1 *inside* the namespace (from one of its ``setns`` threads) and, for
every connection accepted there, a socket to the host's 127.0.0.1:port (from an
ordinary thread, which lives in the host's network namespace), then copies bytes
both ways. TLS runs end to end through it (the API server's certificate names
127.0.0.1, whatever the port), no route, interface or address is added, and
nothing but the one host loopback port is reachable from inside.
"""

from __future__ import annotations

import contextlib
import socket
import threading

from tests.fixtures.stsnamespace import STSNamespace

_CHUNK = 65536
# Bounded: the two servers of the test hold a few watches and lists at a time.
_MAX_CONNECTIONS = 64


class LoopbackRelay:
    """127.0.0.1:``port`` inside ``namespace`` -> 127.0.0.1:``target_port`` on the host.

    Args:
        namespace: The started STS namespace.
        target_port: The port on the host's loopback to forward to.

    Attributes:
        port: The listening port inside the namespace (chosen by the kernel).
        connections: How many connections were relayed so far.
    """

    def __init__(self, namespace: STSNamespace, target_port: int) -> None:
        self.target = ("127.0.0.1", target_port)
        self.connections = 0
        self._open: set[socket.socket] = set()
        self._half_closed: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener = namespace.submit(self._listen).result(timeout=10)
        self.port = int(self._listener.getsockname()[1])
        # Created by the test's (host-namespace) thread: connects go to the host.
        self._acceptor = threading.Thread(
            target=self._accept_loop, name="netns-relay", daemon=True
        )
        self._acceptor.start()

    @staticmethod
    def _listen() -> socket.socket:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        return listener

    def _accept_loop(self) -> None:
        while True:
            try:
                inside, _ = self._listener.accept()
            except OSError:
                return  # closed by stop()
            with self._lock:
                if len(self._open) >= 2 * _MAX_CONNECTIONS:
                    inside.close()
                    continue
            try:
                outside = socket.create_connection(self.target, timeout=10)
            except OSError:
                inside.close()
                continue
            outside.settimeout(None)
            with self._lock:
                self.connections += 1
                self._open.update((inside, outside))
            for src, dst in ((inside, outside), (outside, inside)):
                threading.Thread(
                    target=self._pump, args=(src, dst), daemon=True
                ).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(_CHUNK):
                dst.sendall(data)
        except OSError:
            pass
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)
        with self._lock:
            # The second pump of a pair to finish closes both sockets.
            if src not in self._half_closed:
                self._half_closed.add(dst)
                return
            self._half_closed.discard(src)
            for sock in (src, dst):
                self._open.discard(sock)
                sock.close()

    def stop(self) -> None:
        """Close the listener and every relayed connection."""
        self._listener.close()
        with self._lock:
            for sock in self._open:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self._open.clear()
        self._acceptor.join(timeout=5)
