"""The webhook's gunicorn worker: gthread with the TLS handshake in the event loop.

gunicorn's ``gthread`` worker (23.0) has three faults that let anyone who can
reach the port take the webhook down (docs/threat-model.md):

1. a connection that sends nothing waits in the poller forever: there is no
   timeout before the first byte;
2. at ``worker_connections`` (1,000) the worker stops polling and spins on an
   empty ``futures.wait``: it never accepts again and never notices that the
   idle connections closed (they stay in CLOSE-WAIT);
3. the TLS handshake runs in a worker thread on a blocking socket without a
   timeout: one byte of a ClientHello holds a thread for good, 32 such
   connections hold every thread of the default two workers.

:class:`GuardedThreadWorker` keeps gthread's request path (the same parser,
WSGI call and keep-alive handling) and changes the connection path:

- the handshake is done in the event loop on a non-blocking socket, one step
  per readiness event, so a stalled handshake costs a file descriptor and
  nothing else; a thread only ever sees a connection that finished its
  handshake (under mTLS: one that presented the API server's certificate);
- a connection must finish its handshake within :data:`HANDSHAKE_TIMEOUT_S`
  of being accepted, and send its first request within the keep-alive time
  after it, or it is closed;
- at the connection cap the worker keeps accepting and sheds the oldest
  connection that has not finished its handshake, then the oldest idle
  keep-alive connection; it refuses the new one only when every connection is
  in a request;
- the loop always polls, so closed connections are reaped at once;
- a thread reading a request gives up after :data:`REQUEST_READ_TIMEOUT_S`
  without a byte.
"""

from __future__ import annotations

import contextlib
import errno
import resource
import selectors
import socket
import ssl
import time
from collections import OrderedDict
from concurrent import futures
from functools import partial
from typing import Any

from gunicorn import http
from gunicorn import sock as gsock
from gunicorn.workers.gthread import TConn, ThreadWorker

__all__ = [
    "HANDSHAKE_TIMEOUT_S",
    "MAX_CONNECTIONS",
    "REQUEST_READ_TIMEOUT_S",
    "GuardedThreadWorker",
]

# Seconds from accept to a finished TLS handshake. The API server's Go client
# finishes it in a round trip or two; 5 s is generous on a loaded node.
HANDSHAKE_TIMEOUT_S = 5.0
# Seconds a worker thread waits for the next bytes of a request.
REQUEST_READ_TIMEOUT_S = 10.0
# Connections per worker process (gunicorn's worker_connections default).
MAX_CONNECTIONS = 1000
# Seconds the event loop waits for readiness before checking deadlines.
_POLL_S = 0.5


class _GuardedConn(TConn):  # type: ignore[misc]  # gunicorn is untyped
    """A connection whose socket is already TLS-wrapped (and handshaken) by the loop."""

    def __init__(self, cfg: Any, sock: socket.socket, client: Any, server: Any) -> None:
        super().__init__(cfg, sock, client, server)
        self.deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S

    def init(self) -> None:
        self.initialized = True
        # Blocking with a timeout: a client that stops mid-request frees the thread.
        self.sock.settimeout(REQUEST_READ_TIMEOUT_S)
        if self.parser is None:  # type: ignore[has-type]  # set by gunicorn's TConn
            self.parser = http.RequestParser(self.cfg, self.sock, self.client)


def _raise_nofile_limit() -> None:
    """Raise this process's open-file limit to its hard limit (idle sockets are fds)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


class GuardedThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """gthread with handshakes in the event loop, deadlines and shedding."""

    def init_process(self) -> None:
        _raise_nofile_limit()
        # One context per worker (gunicorn would build one per connection).
        self._tls: ssl.SSLContext | None = (
            gsock.ssl_context(self.cfg) if self.cfg.is_ssl else None
        )
        # Connections that have not finished their handshake, oldest first.
        self._pending: OrderedDict[_GuardedConn, None] = OrderedDict()
        self.shed = 0
        super().init_process()

    # -- connection path ------------------------------------------------------

    def accept(self, server: Any, listener: socket.socket) -> None:
        try:
            sock, client = listener.accept()
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.ECONNABORTED, errno.EWOULDBLOCK):
                return
            raise
        if self.nr_conns >= self.worker_connections and not self._shed_one():
            self.shed += 1
            sock.close()
            return
        conn = _GuardedConn(self.cfg, sock, client, server)
        if self._tls is not None:
            try:
                conn.sock = self._tls.wrap_socket(
                    conn.sock,
                    server_side=True,
                    do_handshake_on_connect=False,
                    suppress_ragged_eofs=self.cfg.suppress_ragged_eofs,
                )
            except OSError:
                sock.close()
                return
        self.nr_conns += 1
        self._pending[conn] = None
        with self._lock:
            self.poller.register(
                conn.sock, selectors.EVENT_READ, partial(self._on_handshake, conn)
            )

    def _on_handshake(self, conn: _GuardedConn, fileobj: object) -> None:
        """One handshake step; on completion the connection waits for its request."""
        if self._tls is not None:
            try:
                conn.sock.do_handshake()
            except ssl.SSLWantReadError:
                self._modify(conn, selectors.EVENT_READ)
                return
            except ssl.SSLWantWriteError:
                self._modify(conn, selectors.EVENT_WRITE)
                return
            except (OSError, ValueError):
                # Bad certificate, not TLS, reset, EOF: the client is gone.
                self._drop(conn)
                return
        self._pending.pop(conn, None)
        with self._lock:
            self.poller.unregister(conn.sock)
        conn.initialized = True
        pending = self._tls is None or conn.sock.pending() > 0
        if pending:
            self.enqueue_req(conn)
            return
        # Handshaken and quiet: wait for the first request like a keep-alive.
        conn.set_timeout()
        with self._lock:
            self._keep.append(conn)
            self.poller.register(
                conn.sock,
                selectors.EVENT_READ,
                partial(self.on_client_socket_readable, conn),
            )

    def _modify(self, conn: _GuardedConn, events: int) -> None:
        with self._lock:
            self.poller.modify(conn.sock, events, partial(self._on_handshake, conn))

    def _drop(self, conn: _GuardedConn) -> None:
        self._pending.pop(conn, None)
        with self._lock, contextlib.suppress(KeyError, ValueError, OSError):
            self.poller.unregister(conn.sock)
        self.nr_conns -= 1
        conn.close()

    def _shed_one(self) -> bool:
        """Close the oldest unauthenticated connection, else the oldest idle one."""
        if self._pending:
            conn = next(iter(self._pending))
            self._drop(conn)
            self.shed += 1
            return True
        with self._lock:
            try:
                conn = self._keep.popleft()
            except IndexError:
                return False
        self._drop(conn)
        self.shed += 1
        return True

    def _reap_handshakes(self) -> None:
        now = time.monotonic()
        while self._pending:
            conn = next(iter(self._pending))
            if conn.deadline > now:
                break
            self._drop(conn)

    # -- the loop -------------------------------------------------------------

    def run(self) -> None:
        for listener in self.sockets:
            listener.setblocking(False)
            server = listener.getsockname()
            self.poller.register(
                listener, selectors.EVENT_READ, partial(self.accept, server)
            )

        while self.alive:
            self.notify()
            # Always poll: a worker at its cap still accepts (and sheds) and
            # still sees connections close.
            for key, _ in self.poller.select(_POLL_S):
                key.data(key.fileobj)
            result = futures.wait(
                self.futures, timeout=0, return_when=futures.FIRST_COMPLETED
            )
            for fut in result.done:
                self.futures.remove(fut)
            if not self.is_parent_alive():
                break
            self._reap_handshakes()
            self.murder_keepalived()

        self.tpool.shutdown(False)
        self.poller.close()
        for listener in self.sockets:
            listener.close()
        futures.wait(self.futures, timeout=self.cfg.graceful_timeout)
