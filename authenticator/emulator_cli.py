"""``kubeiam sts-emulator``: run the embedded STS in the foreground.

A shell around :class:`authenticator.emulator.STSEmulator`: it parses flags,
refuses a non-loopback address unless told otherwise, creates the requested
IAM users, prints the endpoint (and the users' keys as ``export`` lines), and
serves until SIGINT or SIGTERM.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
import threading
from types import FrameType

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
        help="print only the export lines on stdout (for eval)",
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

    emulator = STSEmulator(
        args.host,
        args.port,
        verbose=args.verbose,
        allow_iam_writes=args.allow_remote_iam_writes,
    )
    try:
        emulator.start()
    except OSError as exc:
        sys.stderr.write(
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
        out = sys.stdout
        if not args.exports_only:
            out.write(f"kubeiam sts-emulator: listening on {emulator.url}\n")
            out.write("(a local toy: plain HTTP, no authorization; Ctrl-C stops it)\n")
        out.write(f"export AWS_ENDPOINT_URL_STS={shlex.quote(emulator.url)}\n")
        for name in args.create_user:
            try:
                creds = emulator.create_user(name)
            except ValueError as exc:
                sys.stderr.write(
                    f"kubeiam sts-emulator: cannot create user {name}: {exc}\n"
                )
                return 1
            out.write(f"# IAM user {creds.arn}\n")
            out.write(f"export AWS_ACCESS_KEY_ID={shlex.quote(creds.access_key_id)}\n")
            out.write(
                f"export AWS_SECRET_ACCESS_KEY={shlex.quote(creds.secret_access_key)}\n"
            )
        out.flush()
        stop.wait()
        return 0
    finally:
        emulator.stop()
