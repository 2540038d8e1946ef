"""Kept-alive connections for the STS call, without re-parsing the presigned URL.

A cold review used to spend most of its CPU in requests and urllib3 preparing
the ~1 KB presigned URL: ``Session.prepare_request`` parses and re-encodes it,
the adapter parses it again to pick a pool, and the pool parses and
percent-encodes the target once more (each pass a regex over every query
character). The URL :func:`authenticator.verify.verify_token` returns is
already rebuilt from validated parts (``scheme://<pinned host[:port]>/?<query>``,
the query restricted to characters that need no encoding), so this module
splits it with two string operations and hands the target to a urllib3
:class:`~urllib3.connection.HTTPConnection` as it is.

urllib3 still does the connecting, TLS (the client's one context with
requests' CA bundle, loaded when the client is made; host names checked, as
requests does), writing the request and parsing the answer; this module only
keeps idle connections per ``(scheme, host, port)``, at most ``maxsize`` each.
A connection goes back to the pool only after its answer was read to the end
and the server did not ask to close it; one that the server closed while idle
is noticed before reuse (:attr:`~urllib3.connection.HTTPConnection.is_connected`).
A failed request is never retried (STS may have seen it: one STS call per
review), as before.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Mapping

from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.response import BaseHTTPResponse

__all__ = ["PooledResponse", "STSConnections", "split_url"]

_Key = tuple[str, str, int]
_DEFAULT_PORTS = {"http": 80, "https": 443}


def split_url(url: str) -> tuple[_Key, str]:
    """Split ``scheme://host[:port]/target`` into the pool key and the target.

    Args:
        url: An absolute http(s) URL (``PresignedCall.url``).

    Returns:
        ``((scheme, host, port), target)``; an IPv6 host loses its brackets.

    Raises:
        ValueError: The URL is not of that form.
    """
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in _DEFAULT_PORTS:
        raise ValueError("not an http(s) URL")
    netloc, slash, tail = rest.partition("/")
    target = slash + tail if slash else "/"
    if netloc.startswith("["):
        host, bracket, after = netloc[1:].partition("]")
        if not bracket or (after and not after.startswith(":")):
            raise ValueError("bad IPv6 host")
        port_text = after[1:]
    else:
        host, _, port_text = netloc.partition(":")
    if not host or "@" in netloc:
        raise ValueError("bad host")
    if port_text and not port_text.isdigit():
        raise ValueError("bad port")
    port = int(port_text) if port_text else _DEFAULT_PORTS[scheme]
    return (scheme, host, port), target


class PooledResponse:
    """An STS answer whose connection goes back to the pool when it is closed.

    Attributes:
        status: The HTTP status code.
        headers: The answer's headers (case-insensitive).
    """

    def __init__(
        self,
        response: BaseHTTPResponse,
        conn: HTTPConnection,
        key: _Key,
        pool: STSConnections,
    ) -> None:
        self._response = response
        self._conn: HTTPConnection | None = conn
        self._key = key
        self._pool = pool
        self._eof = False
        self.status = response.status
        self.headers = response.headers

    def read1(self, amt: int) -> bytes:
        """One read of at most ``amt`` raw (not decoded) body bytes; b"" at the end."""
        chunk = self._response.read1(amt, decode_content=False)
        if not chunk:
            self._eof = True
        return chunk

    def close(self) -> None:
        """Return the connection (answer read to the end, kept alive) or close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._eof and conn.sock is not None:
            self._pool.put(self._key, conn)
        else:
            self._response.close()
            conn.close()

    def __enter__(self) -> PooledResponse:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


class STSConnections:
    """Idle kept-alive connections per ``(scheme, host, port)``.

    Args:
        timeout: Socket timeout for connecting and each read, in seconds.
        maxsize: Idle connections kept per host (more are closed after use).
        ssl_context: Verifies HTTPS answers (its CA bundle already loaded, once,
            by the caller; host names are checked).
    """

    def __init__(
        self, *, timeout: float, maxsize: int, ssl_context: ssl.SSLContext
    ) -> None:
        self._tls = ssl_context
        self._timeout = timeout
        self._maxsize = max(maxsize, 1)
        self._lock = threading.Lock()
        self._idle: dict[_Key, list[HTTPConnection]] = {}
        self._closed = False

    def get(self, url: str, headers: Mapping[str, str]) -> PooledResponse:
        """Send ``GET target`` to the URL's host and return the answer's head.

        Args:
            url: The validated presigned URL.
            headers: The request headers (urllib3's ``SKIP_HEADER`` honoured).

        Returns:
            The answer; read its body with ``read1`` and ``close`` it.

        Raises:
            ValueError: The URL is not http(s).
            TimeoutError: Connecting or the answer's head timed out.
            OSError: The connection failed (also ``ssl.SSLError``).
            http.client.HTTPException: The answer is not HTTP.
            urllib3.exceptions.HTTPError: urllib3 refused the connection or answer.
        """
        key, target = split_url(url)
        conn = self._take(key)
        try:
            conn.request(
                "GET",
                target,
                headers=dict(headers),
                preload_content=False,
                decode_content=False,
            )
            response = conn.getresponse()
        except BaseException:
            # Never retried: STS may have seen the request (one call per review).
            conn.close()
            raise
        return PooledResponse(response, conn, key, self)

    def put(self, key: _Key, conn: HTTPConnection) -> None:
        """Keep an idle connection for the next call (or close it when full)."""
        with self._lock:
            idle = self._idle.setdefault(key, [])
            if not self._closed and len(idle) < self._maxsize:
                idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        """Close every idle connection; later answers close theirs."""
        with self._lock:
            self._closed = True
            conns = [c for idle in self._idle.values() for c in idle]
            self._idle.clear()
        for conn in conns:
            conn.close()

    def _take(self, key: _Key) -> HTTPConnection:
        while True:
            with self._lock:
                idle = self._idle.get(key)
                conn = idle.pop() if idle else None
            if conn is None:
                return self._new(key)
            if conn.is_connected:
                return conn
            conn.close()  # closed by the server while idle

    def _new(self, key: _Key) -> HTTPConnection:
        scheme, host, port = key
        if scheme == "http":
            return HTTPConnection(host, port, timeout=self._timeout)
        return HTTPSConnection(
            host,
            port,
            timeout=self._timeout,
            ssl_context=self._tls,
            cert_reqs=ssl.CERT_REQUIRED,
        )
