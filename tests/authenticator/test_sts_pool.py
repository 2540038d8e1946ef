"""Kept-alive STS connections (authenticator.sts_pool) against real local servers."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler

import pytest

from authenticator.emulator import STSEmulator
from authenticator.sts import STSClient
from authenticator.sts_pool import split_url
from tests.fixtures.verifier import USER, LocalServer, call_for, json_body, reply


@pytest.fixture
def server(local_sts: LocalServer) -> LocalServer:
    """A fresh local STS stand-in per test."""
    return local_sts


@pytest.mark.parametrize(
    ("url", "key", "target"),
    [
        (
            "https://sts.amazonaws.com/?a=b",
            ("https", "sts.amazonaws.com", 443),
            "/?a=b",
        ),
        ("http://127.0.0.1:8080/?x=1&y=2", ("http", "127.0.0.1", 8080), "/?x=1&y=2"),
        ("HTTPS://[::1]:4443/?q", ("https", "::1", 4443), "/?q"),
        ("https://[::1]/", ("https", "::1", 443), "/"),
        (
            "https://sts.us-east-1.amazonaws.com",
            ("https", "sts.us-east-1.amazonaws.com", 443),
            "/",
        ),
    ],
)
def test_split_url(url: str, key: tuple[str, str, int], target: str) -> None:
    """Scheme, host and port from the netloc; the target untouched."""
    assert split_url(url) == (key, target)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://host/?a",
        "sts.amazonaws.com/?a",
        "https://user@host/?a",
        "https://host:80a/?a",
        "https://[::1/?a",
        "https://[::1]x/?a",
        "https:///?a",
    ],
)
def test_split_url_refuses(url: str) -> None:
    """Anything but scheme://host[:port]/... is refused, never guessed at."""
    with pytest.raises(ValueError):
        split_url(url)


def _client_ports(server: LocalServer, calls: int) -> list[int]:
    call = call_for(server)
    client = STSClient(timeout=2.0)
    try:
        for _ in range(calls):
            assert client.call_get_caller_identity(call).arn == USER[0]
    finally:
        client.close()
    return [r.client_port for r in server.requests]


def test_one_connection_for_many_calls(server: LocalServer) -> None:
    """Sequential calls reuse one kept-alive connection."""
    server.respond = reply(200, json_body(*USER))
    assert len(set(_client_ports(server, 5))) == 1


def test_connection_close_is_honoured(server: LocalServer) -> None:
    """An answer with ``Connection: close`` is never followed by a reuse."""
    server.respond = reply(200, json_body(*USER), headers=(("Connection", "close"),))
    assert len(set(_client_ports(server, 3))) == 3


def test_connection_closed_while_idle_is_replaced(server: LocalServer) -> None:
    """A server that drops the idle connection unannounced: the next call reconnects."""
    answer = reply(200, json_body(*USER))
    closed = threading.Event()

    def respond_then_drop(handler: BaseHTTPRequestHandler) -> None:
        answer(handler)
        handler.wfile.flush()
        handler.connection.shutdown(socket.SHUT_RDWR)  # without saying so
        handler.close_connection = True
        closed.set()

    server.respond = respond_then_drop
    call = call_for(server)
    client = STSClient(timeout=2.0)
    try:
        for _ in range(3):
            closed.clear()
            assert client.call_get_caller_identity(call).arn == USER[0]
            assert closed.wait(5)
            time.sleep(0.05)  # the FIN reaches the client's socket
    finally:
        client.close()
    ports = [r.client_port for r in server.requests]
    assert len(ports) == 3
    assert len(set(ports)) == 3


def test_unread_body_is_not_reused(server: LocalServer) -> None:
    """An answer over the body cap is not read to its end: its connection is closed."""
    server.respond = reply(200, b"x" * 4096)
    call = call_for(server)
    client = STSClient(timeout=2.0, max_body_bytes=100)
    try:
        for _ in range(2):
            with pytest.raises(Exception, match="larger than"):
                client.call_get_caller_identity(call)
    finally:
        client.close()
    assert len({r.client_port for r in server.requests}) == 2


class TestEmulatorKeepAlive:
    """The embedded STS keeps body-less connections open (werkzeug closes them)."""

    def test_two_requests_on_one_connection(self) -> None:
        """Two GETs on one connection both get an answer; no Connection: close."""
        with STSEmulator() as sts:
            conn = http.client.HTTPConnection("127.0.0.1", sts.port, timeout=5)
            try:
                for _ in range(2):
                    conn.request("GET", "/?Action=GetCallerIdentity&Version=2011-06-15")
                    resp = conn.getresponse()
                    resp.read()
                    assert resp.getheader("Connection") is None
                    assert not resp.will_close
                first_port = conn.sock.getsockname()[1]
                conn.request("GET", "/?Action=GetCallerIdentity&Version=2011-06-15")
                conn.getresponse().read()
                assert conn.sock.getsockname()[1] == first_port
            finally:
                conn.close()
            assert sts.requests_total == 3

    def test_request_with_a_body_still_closes(self) -> None:
        """A POST (a body werkzeug would have to drain) is answered with close."""
        with STSEmulator() as sts:
            conn = http.client.HTTPConnection("127.0.0.1", sts.port, timeout=5)
            try:
                conn.request(
                    "POST",
                    "/",
                    body=b"Action=GetCallerIdentity&Version=2011-06-15",
                    headers={"Content-Type": "application/x-www-form-urlencoded"},
                )
                resp = conn.getresponse()
                resp.read()
                assert resp.getheader("Connection") == "close"
            finally:
                conn.close()
