"""Is the serving port free? Asked once before gunicorn starts.

gunicorn retries a busy address five times, a second apart, logging each try;
``kubeiam server`` instead says in one line, at once, which port is taken.
"""

from __future__ import annotations

import errno
import socket

from webhook.errors import ConfigError


def check_port_free(address: str, port: int) -> None:
    """Bind (and release) ``address:port`` as gunicorn will, or explain why not.

    Args:
        address: The listen address (``0.0.0.0``, ``127.0.0.1``, ``::``).
        port: The TCP port.

    Raises:
        ConfigError: The port is in use, or the address cannot be bound.
    """
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    shown = f"[{address}]:{port}" if family == socket.AF_INET6 else f"{address}:{port}"
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        # gunicorn sets SO_REUSEADDR too: a port in TIME_WAIT is not "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((address, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(
                    f"port {port} is already in use ({shown}); stop what listens "
                    "there or choose another with --port / server.port"
                ) from exc
            raise ConfigError(
                f"cannot listen on {shown}: {exc.strerror or exc}"
            ) from exc
