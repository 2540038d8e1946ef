"""``kubeiam sts-emulator``: run the embedded STS in the foreground.

A shell around :class:`authenticator.emulator.STSEmulator`: it parses flags,
refuses a non-loopback address unless told otherwise, creates the requested
IAM users, prints the endpoint (and the users' keys as ``export`` lines), and
serves until SIGINT or SIGTERM. With ``--exports-only`` it serves from a
background process instead and returns once the export lines are printed, so
``eval "$(kubeiam sts-emulator --exports-only)"`` works.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, TextIO

from authenticator.hosts import is_loopback

_DESCRIPTION = """\
Run a local STS that verifies presigned GetCallerIdentity calls (kubeiam and
`aws eks get-token` tokens) the way AWS STS does: the SigV4 signature, the signed
x-k8s-aws-id cluster header, session tokens and the 15-minute window. IAM users,
access keys, roles and AssumeRole come from moto, served on the same port.

This is a LOCAL TOY for trying kubeiam without an AWS account: plain HTTP, no
authorization, every secret kept in memory and printed on request. Never expose
it beyond this machine."""

_EPILOG = """\
examples:
  kubeiam sts-emulator --create-user alice          # prints export lines
  kubeiam sts-emulator --port 0 -v                  # any free port, log requests
  eval "$(kubeiam sts-emulator --port 0 --create-user alice --exports-only)"
  kill "$KUBEIAM_STS_EMULATOR_PID"                  # stops the background one

  # in another shell, with alice's export lines in the environment:
  kubeiam token -i demo --sts-endpoint "$AWS_ENDPOINT_URL_STS" --token-only
  kubeiam verify -i demo --sts-endpoint "$AWS_ENDPOINT_URL_STS" -t "$TOKEN"
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam sts-emulator",
        description=_DESCRIPTION,
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument(
        "--port", type=int, default=5000, help="TCP port (0: any free port)"
    )
    parser.add_argument(
        "--create-user",
        metavar="NAME",
        action="append",
        default=[],
        help="create an IAM user with an access key and print it (repeatable)",
    )
    parser.add_argument(
        "--exports-only",
        action="store_true",
        help="start in the background, print only the export lines and return "
        '(for eval "$(...)"; stop it with kill $KUBEIAM_STS_EMULATOR_PID)',
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="log one line per request"
    )
    parser.add_argument(
        "--allow-remote-iam-writes",
        action="store_true",
        help="serve IAM writes (CreateUser, CreateAccessKey, ...) sent over HTTP; "
        "by default only --create-user creates identities",
    )
    parser.add_argument(
        "--i-know-this-is-insecure",
        action="store_true",
        help="allow a non-loopback --host",
    )
    return parser


def _is_loopback(host: str) -> bool:
    return host == "localhost" or is_loopback(host)


def main(argv: list[str]) -> int:
    """Run ``kubeiam sts-emulator``.

    Args:
        argv: Arguments after the subcommand name.

    Returns:
        0 after a clean stop, 1 on error, 2 on a usage error.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port {args.port} is not a TCP port")
    if not _is_loopback(args.host) and not args.i_know_this_is_insecure:
        sys.stderr.write(
            f"kubeiam sts-emulator: refusing to listen on {args.host}: the emulator "
            "is a local toy with no authorization (add --i-know-this-is-insecure)\n"
        )
        return 1

    try:
        from authenticator.emulator import STSEmulator
    except ImportError as exc:
        sys.stderr.write(
            "kubeiam sts-emulator: needs the 'local' extra "
            f"(pip install 'kubeiam[local]'); {exc.name} is missing\n"
        )
        return 1

    if args.exports_only:
        return _start_in_background(args, STSEmulator)
    return _serve(args, STSEmulator, sys.stdout, sys.stderr, ready=sys.stdout.flush)


def _start_in_background(args: argparse.Namespace, emulator_class: type[Any]) -> int:
    """Fork a detached server; print its export lines (or its error) and return.

    The child gives up the caller's stdin, stdout and stderr at once, so a
    ``$(...)`` around this command ends when the parent returns. It reports
    through a pipe instead (the export lines once every user exists, or the
    error), then serves until SIGINT or SIGTERM.
    """
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # the background server
        os.close(read_fd)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        report = os.fdopen(write_fd, "w", encoding="utf-8")
        exports = io.StringIO()

        def ready() -> None:
            report.write(exports.getvalue())
            report.close()

        try:
            code = _serve(args, emulator_class, exports, report, ready=ready)
        finally:
            if not report.closed:
                report.close()
        os._exit(code)
    os.close(write_fd)
    with os.fdopen(read_fd, encoding="utf-8") as pipe:
        text = pipe.read()
    if not text.startswith("export "):
        os.waitpid(pid, 0)
        sys.stderr.write(text or "kubeiam sts-emulator: the background server died\n")
        return 1
    sys.stdout.write(text)
    sys.stdout.write(f"export KUBEIAM_STS_EMULATOR_PID={pid}\n")
    return 0


def _serve(
    args: argparse.Namespace,
    emulator_class: type[Any],
    out: TextIO,
    err: TextIO,
    *,
    ready: Callable[[], None],
) -> int:
    """Start the emulator, write the export lines, call ``ready``, serve."""
    emulator = emulator_class(
        args.host,
        args.port,
        verbose=args.verbose,
        allow_iam_writes=args.allow_remote_iam_writes,
    )
    try:
        emulator.start()
    except OSError as exc:
        err.write(
            f"kubeiam sts-emulator: cannot listen on {args.host}:{args.port}: "
            f"{exc.strerror or exc}\n"
        )
        return 1
    stop = threading.Event()

    def _on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    try:
        if not args.exports_only:
            out.write(f"kubeiam sts-emulator: listening on {emulator.url}\n")
            out.write("(a local toy: plain HTTP, no authorization; Ctrl-C stops it)\n")
        out.write(f"export AWS_ENDPOINT_URL_STS={shlex.quote(emulator.url)}\n")
        for name in args.create_user:
            try:
                creds = emulator.create_user(name)
            except ValueError as exc:
                err.write(f"kubeiam sts-emulator: cannot create user {name}: {exc}\n")
                return 1
            out.write(f"# IAM user {creds.arn}\n")
            out.write(f"export AWS_ACCESS_KEY_ID={shlex.quote(creds.access_key_id)}\n")
            out.write(
                f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds.secret_access_key)}\n"
            )
        ready()
        stop.wait()
        return 0
    finally:
        emulator.stop()
