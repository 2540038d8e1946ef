"""``kubeiam server``: the TokenReview webhook under gunicorn, over TLS.

The shell around :func:`webhook.create_app`: it reads the config, checks
everything that can be checked before serving (settings, STS endpoints,
mapping files, certificate and key, client CA) and exits 1 with the file, the
key and the reason when something is wrong; then it runs gunicorn
programmatically with threaded workers (gthread's request path, the TLS
handshake in the event loop: :mod:`webhook.server_worker`): the STS call is I/O.

- TLS: ``server.certFile``/``keyFile`` are required; TLS 1.2 is the minimum.
- mTLS: with ``server.clientCAFile``, ``cert_reqs=CERT_REQUIRED``: a client
  without a certificate signed by that CA (the API server's, from
  ``kubeiam init``) fails the handshake and never reaches the app.
- SIGTERM: gunicorn's graceful stop; in-flight reviews finish (up to
  ``GRACEFUL_TIMEOUT_S``), then the process exits 0.
- Logs: JSON lines on stderr; gunicorn's access log (stdout) is JSON too and
  logs the path without the query string; no request body is ever logged.
- Metrics across workers: see :mod:`webhook.metrics` (a private
  ``PROMETHEUS_MULTIPROC_DIR``, removed at exit).
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import logging
import logging.config
import os
import shutil
import ssl
import sys
import tempfile
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication
from gunicorn.glogging import Logger as GunicornLogger

from webhook import check_settings, create_app
from webhook.errors import ConfigError
from webhook.imds import with_region
from webhook.portcheck import check_port_free
from webhook.server_worker import MAX_CONNECTIONS
from webhook.settings import DEFAULT_PORT, WebhookSettings, load_settings

__all__ = [
    "JSONFormatter",
    "build_gunicorn_options",
    "main",
    "run_gunicorn",
    "startup_warnings",
]

# Seconds a worker gets to finish in-flight reviews after SIGTERM. The API
# server gives each attempt 30 s (Kubernetes webhook authn docs); the STS timeout
# is 5 s.
GRACEFUL_TIMEOUT_S = 10
# Idle keep-alive seconds: the API server reuses its webhook connection.
KEEPALIVE_S = 15
# gunicorn's worker heartbeat timeout.
WORKER_TIMEOUT_S = 30
# The worker: gthread's request path, the TLS handshake in the event loop.
WORKER_CLASS = "webhook.server_worker.GuardedThreadWorker"
# Libraries whose DEBUG lines would carry request URLs (a presigned URL is a
# bearer secret); they are held at WARNING whatever the log level.
_QUIET_LOGGERS = ("urllib3", "requests", "kubernetes", "botocore", "boto3")

_EPILOG = """examples:
  kubeiam server --config /etc/kubeiam/config.yaml
  kubeiam server --config config.yaml --address 0.0.0.0 --port {port} \\
      --workers 2 --threads 16

The config file (every key: docs/configuration.md; an aws-iam-authenticator
config file is accepted as it is) names the cluster ID, the serving certificate
and key (server.certFile/keyFile, required), the optional client CA that the
API server's certificate must chain to (server.clientCAFile), STS settings and
the mapping sources. Flags override the file. A bad config exits 1 naming the
file, the key and the reason.
"""

# Standard LogRecord attributes; anything else on a record came through `extra`.
_RECORD_ATTRS = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys()
    | {"message", "asctime"}
)


class JSONFormatter(logging.Formatter):
    """One JSON object per log line: time, level, logger, msg and the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        """Render ``record`` as a JSON line.

        Args:
            record: The log record.

        Returns:
            The JSON text.
        """
        doc: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key in _RECORD_ATTRS or key.startswith("_"):
                continue
            if key == "kubeiam" and isinstance(value, dict):
                doc.update(value)
            elif isinstance(value, str | int | float | bool) or value is None:
                doc[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            doc["exception"] = record.exc_info[0].__name__
        return json.dumps(doc, separators=(",", ":"))


def _logconfig(level: str) -> dict[str, Any]:
    """``logging.config.dictConfig`` for the app and gunicorn: JSON lines.

    The app and gunicorn's error log go to stderr, the access log to stdout.
    """
    console = {"class": "logging.StreamHandler", "formatter": "json"}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JSONFormatter}, "raw": {"format": "%(message)s"}},
        "handlers": {
            "console": {**console, "stream": "ext://sys.stderr"},
            "access": {**console, "formatter": "raw", "stream": "ext://sys.stdout"},
        },
        "root": {"level": level.upper(), "handlers": ["console"]},
        "loggers": {
            "gunicorn.error": {
                "level": level.upper(),
                "handlers": ["console"],
                "propagate": False,
            },
            "gunicorn.access": {
                "level": "INFO",
                "handlers": ["access"],
                "propagate": False,
            },
            **{name: {"level": "WARNING"} for name in _QUIET_LOGGERS},
        },
    }


class _AccessLogger(GunicornLogger):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn's logger with a JSON access line: the path only, never the query.

    The query string, headers and body are never logged (a presigned URL or a
    token must not reach a log).
    """

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        status = (
            resp.status.split(None, 1)[0]
            if isinstance(resp.status, str)
            else resp.status
        )
        line = {
            "event": "access",
            "remote": environ.get("REMOTE_ADDR", "-"),
            "method": environ.get("REQUEST_METHOD"),
            "path": environ.get("PATH_INFO"),
            "status": int(status),
            "bytes": getattr(resp, "sent", None),
            "durationMs": round(request_time.total_seconds() * 1000, 3),
        }
        self.access_log.info(json.dumps(line, separators=(",", ":")))


def _check_tls(settings: WebhookSettings) -> None:
    """Load the certificate, key and client CA once, as gunicorn will."""
    where = str(settings.config_file or "config")
    srv = settings.server
    if srv.cert_file is None or srv.key_file is None:
        raise ConfigError(
            f"{where}: server.certFile: required (kubeiam server serves TLS only; "
            "`kubeiam init` writes a certificate and key)"
        )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(srv.cert_file, srv.key_file)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(
            f"{where}: server.certFile/keyFile: cannot load {srv.cert_file} and "
            f"{srv.key_file}: {exc}"
        ) from exc
    if srv.client_ca_file is not None:
        try:
            context.load_verify_locations(cafile=srv.client_ca_file)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"{where}: server.clientCAFile: cannot load {srv.client_ca_file}: {exc}"
            ) from exc


def startup_warnings(settings: WebhookSettings) -> list[str]:
    """What the server warns about at start: settings that leave a door open.

    - an extra STS endpoint over plain http (allowed on loopback only): any
      local process that takes that port answers "you are this principal";
    - no ``server.clientCAFile``: anyone who reaches the port can send
      TokenReviews (a token oracle) and hold connections.

    Args:
        settings: The server settings.

    Returns:
        One message per finding (empty when none).
    """
    out: list[str] = []
    for i, endpoint in enumerate(settings.sts.extra_endpoints):
        if endpoint.lower().startswith("http://"):
            out.append(
                f"sts.extraEndpoints[{i}] {endpoint} is plain http: whoever holds "
                "that loopback port decides who every token belongs to; use it "
                "for tests and demos only"
            )
    if settings.server.client_ca_file is None:
        out.append(
            "server.clientCAFile is not set: any client that reaches the port can "
            "send TokenReviews; set it to the CA of the API server's client "
            "certificate (`kubeiam init` writes both)"
        )
    return out


def _ssl_context(
    config: object, default_ssl_context_factory: Callable[[], ssl.SSLContext]
) -> ssl.SSLContext:
    # The reference serves TLS 1.2 or later (docs/operations.md).
    context = default_ssl_context_factory()
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


def _bind(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def build_gunicorn_options(
    settings: WebhookSettings,
    *,
    metrics_dir: str | None = None,
    log_level: str = "info",
) -> dict[str, Any]:
    """Return the gunicorn settings for the webhook.

    Args:
        settings: The server settings (certificate and key set).
        metrics_dir: The private ``PROMETHEUS_MULTIPROC_DIR``, if any.
        log_level: gunicorn's error-log level.

    Returns:
        gunicorn option name -> value.
    """
    srv = settings.server
    options: dict[str, Any] = {
        "bind": [_bind(srv.address, srv.port)],
        # gthread with the handshake in the event loop, deadlines and shedding
        # (webhook.server_worker; docs/architecture.md "Serving model").
        "worker_class": WORKER_CLASS,
        "worker_connections": MAX_CONNECTIONS,
        "workers": srv.workers,
        "threads": srv.threads,
        "certfile": str(srv.cert_file),
        "keyfile": str(srv.key_file),
        "ssl_context": _ssl_context,
        "graceful_timeout": GRACEFUL_TIMEOUT_S,
        "timeout": WORKER_TIMEOUT_S,
        "keepalive": KEEPALIVE_S,
        "accesslog": "-",
        "errorlog": "-",
        "loglevel": log_level,
        "logconfig_dict": _logconfig(log_level),
        "logger_class": _AccessLogger,
        "proc_name": "kubeiam-server",
        "preload_app": False,
        "worker_exit": _worker_exit,
    }
    if srv.client_ca_file is not None:
        options["ca_certs"] = str(srv.client_ca_file)
        options["cert_reqs"] = ssl.CERT_REQUIRED
    if metrics_dir is not None:
        options["child_exit"] = _child_exit_for(metrics_dir)
    return options


# The app of this worker process, for the worker_exit hook.
_APPS: list[Any] = []


def _worker_exit(server: object, worker: object) -> None:
    for app in _APPS:
        app.extensions["kubeiam"].close()


def _child_exit_for(metrics_dir: str) -> Callable[[object, Any], None]:
    def child_exit(server: object, worker: Any) -> None:
        from prometheus_client import multiprocess

        # Drop a dead worker's live gauges (prometheus_client multiprocess docs).
        multiprocess.mark_process_dead(worker.pid, metrics_dir)  # type: ignore[no-untyped-call]  # unannotated upstream

    return child_exit


class _WebhookApplication(BaseApplication):  # type: ignore[misc]  # gunicorn is untyped
    """gunicorn run programmatically: fixed options, the app built in each worker."""

    def __init__(self, options: dict[str, Any], factory: Callable[[], Any]) -> None:
        self._options = options
        self._factory = factory
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        app = self._factory()
        _APPS.append(app)
        return app


def _share_with_workers() -> None:
    """Freeze the arbiter's heap just before gunicorn forks the workers.

    The workers share the arbiter's pages copy-on-write: the modules and the
    mapping files it read at start-up (``check_settings``), which they serve
    as they are. ``gc.freeze`` keeps the collector from writing to (and so
    copying) every one of those objects in each worker, and from scanning a
    100,000-entry table on each full collection.
    """
    gc.collect()
    gc.freeze()


def run_gunicorn(options: dict[str, Any], factory: Callable[[], Any]) -> int:
    """Run gunicorn in this process until it stops.

    Args:
        options: gunicorn settings (:func:`build_gunicorn_options`).
        factory: Builds the WSGI app in each worker.

    Returns:
        gunicorn's exit code (in the arbiter; a worker returns its own).
    """
    try:
        _WebhookApplication(options, factory).run()
    except SystemExit as exc:
        code = exc.code
        return code if isinstance(code, int) else (0 if code is None else 1)
    return 0


def _use_multiprocess_metrics(metrics_dir: str) -> None:
    """Switch prometheus_client to per-process files in ``metrics_dir``.

    prometheus_client picks its value class when it is first imported, from
    ``PROMETHEUS_MULTIPROC_DIR``; it is already imported here (the settings
    module's package), so the class is switched the way that import would have.
    Workers are forked after this and create their metrics in ``load()``.
    """
    from prometheus_client import values

    os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    values.ValueClass = values.MultiProcessValue()  # type: ignore[no-untyped-call]  # unannotated upstream


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam server",
        description="Run the TokenReview webhook (gunicorn, gthread workers, TLS).",
        epilog=_EPILOG.format(port=DEFAULT_PORT),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--config", required=True, type=Path, help="the server config (YAML)"
    )
    parser.add_argument("--address", help="listen address (overrides server.address)")
    parser.add_argument("--port", type=int, help="listen port (overrides server.port)")
    parser.add_argument(
        "--workers", type=int, help="worker processes (overrides server.workers)"
    )
    parser.add_argument(
        "--threads", type=int, help="threads per worker (overrides server.threads)"
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default info)",
    )
    return parser


def _apply_flags(
    settings: WebhookSettings, args: argparse.Namespace
) -> WebhookSettings:
    srv = settings.server
    changes: dict[str, Any] = {}
    if args.address is not None:
        changes["address"] = args.address
    if args.port is not None:
        if not 1 <= args.port <= 65535:
            raise ConfigError("--port: must be from 1 to 65535")
        changes["port"] = args.port
    for flag in ("workers", "threads"):
        value = getattr(args, flag)
        if value is not None:
            if value < 1:
                raise ConfigError(f"--{flag}: must be at least 1")
            changes[flag] = value
    return replace(settings, server=replace(srv, **changes)) if changes else settings


def main(argv: list[str]) -> int:
    """Run ``kubeiam server``.

    Args:
        argv: The arguments after ``server``.

    Returns:
        0 after a clean shutdown, 1 on a bad config, 2 on a usage error.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        settings = _apply_flags(load_settings(args.config), args)
        _check_tls(settings)
        preloaded = check_settings(settings)
        check_port_free(settings.server.address, settings.server.port)
        settings, region_from = with_region(settings)  # IMDS when sts.region unset
    except ConfigError as exc:
        print(f"kubeiam server: {exc}", file=sys.stderr)
        return 1
    logging.config.dictConfig(_logconfig(args.log_level))
    for warning in startup_warnings(settings):
        logging.getLogger("kubeiam.webhook").warning(
            warning, extra={"kubeiam": {"event": "insecure-setting"}}
        )
    metrics_dir = tempfile.mkdtemp(prefix="kubeiam-metrics-")
    _use_multiprocess_metrics(metrics_dir)
    options = build_gunicorn_options(
        settings, metrics_dir=metrics_dir, log_level=args.log_level
    )
    logging.getLogger("kubeiam.webhook").info(
        "starting",
        extra={
            "kubeiam": {
                "event": "start",
                "bind": options["bind"][0],
                "workers": settings.server.workers,
                "threads": settings.server.threads,
                "mtls": settings.server.client_ca_file is not None,
                "clusterID": settings.cluster_id,
                "stsRegion": settings.sts.region or "(partition default)",
                "stsRegionFrom": region_from,
            }
        },
    )
    arbiter_pid = os.getpid()
    _share_with_workers()
    try:
        return run_gunicorn(
            options,
            lambda: create_app(
                settings, multiprocess_dir=metrics_dir, preloaded=preloaded
            ),
        )
    finally:
        # Workers leave through here too (gunicorn forks inside run()).
        if os.getpid() == arbiter_pid:
            shutil.rmtree(metrics_dir, ignore_errors=True)
