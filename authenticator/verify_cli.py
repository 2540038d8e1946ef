"""``kubeiam verify``: check a token with STS and print the identity (SPEC section 3).

The shell around :func:`authenticator.verify.verify_token` (offline checks) and
:class:`authenticator.sts.STSClient` (the STS call).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import yaml

from authenticator.errors import (
    ConfigError,
    MalformedTokenError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
    TokenError,
)
from authenticator.hosts import build_allowed_hosts, parse_endpoint
from authenticator.identity import Identity
from authenticator.partitions import PARTITIONS
from authenticator.sts import STSClient
from authenticator.token_cli import sts_endpoint_from_env
from authenticator.verify import verify_token

# Defaults of the server config (SPEC section 5).
DEFAULT_PARTITION = "aws"
DEFAULT_REGION = "us-east-1"
DEFAULT_TIMEOUT_S = 5.0

_EPILOG = """\
examples:
  kubeiam verify -t "$TOKEN" -i my-cluster
  kubeiam token -i my-cluster --token-only | kubeiam verify -t - -i my-cluster -o json
  kubeiam verify -t "$TOKEN" --config /etc/kubeiam/config.yaml
  kubeiam verify -t "$TOKEN" -i demo --sts-endpoint http://127.0.0.1:5000
  AWS_ENDPOINT_URL_STS=http://127.0.0.1:5000 kubeiam verify -t "$TOKEN" -i demo

environment: AWS_ENDPOINT_URL_STS (else AWS_ENDPOINT_URL) adds that STS endpoint,
as kubeiam token uses it; HTTPS_PROXY / NO_PROXY apply to https STS endpoints.

exit codes: 0 verified, 1 rejected (the reason code and why on stderr), 2 usage error.
"""


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """What ``kubeiam verify`` needs, from the config file and flags.

    Attributes:
        cluster_id: The cluster ID the token must be bound to.
        partition: The server's partition.
        region: The server's STS region (credential scope on extra endpoints).
        timeout_s: The STS call's timeout.
        extra_endpoints: Extra STS endpoint URLs.
    """

    cluster_id: str
    partition: str = DEFAULT_PARTITION
    region: str = DEFAULT_REGION
    timeout_s: float = DEFAULT_TIMEOUT_S
    extra_endpoints: tuple[str, ...] = ()


def main(argv: list[str]) -> int:
    """Run ``kubeiam verify``.

    Args:
        argv: Arguments after ``verify``.

    Returns:
        0 when the token verifies, 1 when it is rejected or the config is bad,
        2 for usage errors.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else 2
    try:
        settings = _settings(args, os.environ)
        token = _read_token(args.token)
        allowed = build_allowed_hosts(
            settings.partition, settings.extra_endpoints, region=settings.region
        )
    except ConfigError as exc:
        sys.stderr.write(f"kubeiam verify: {exc}\n")
        return 1
    try:
        call = verify_token(
            token,
            cluster_id=settings.cluster_id,
            now=datetime.now(UTC),
            allowed_hosts=allowed,
        )
        client = STSClient(timeout=settings.timeout_s)
        try:
            identity = client.call_get_caller_identity(call)
        finally:
            client.close()
    except TokenError as exc:
        return _report_rejection(exc, json_output=args.output == "json")
    _print_identity(identity, json_output=args.output == "json")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam verify",
        description="Verify a token (k8s-aws-v1....) offline, then with STS, and "
        "print the identity that signed it.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    parser.add_argument(
        "-t", "--token", required=True, help="the token, or - for stdin"
    )
    parser.add_argument("-i", "--cluster-id", help="the cluster ID (config: clusterID)")
    parser.add_argument(
        "--config", type=Path, help="the server config YAML (docs/configuration.md)"
    )
    parser.add_argument(
        "--partition", choices=sorted(PARTITIONS), help="the server's partition"
    )
    parser.add_argument("--region", help="the server's STS region (config: sts.region)")
    parser.add_argument(
        "--sts-endpoint",
        action="append",
        default=[],
        metavar="URL",
        help="add an extra STS endpoint scheme://host[:port] (repeatable)",
    )
    parser.add_argument("--timeout", type=float, help="STS timeout in seconds")
    parser.add_argument("-o", "--output", choices=("human", "json"), default="human")
    return parser


def _settings(args: argparse.Namespace, env: Mapping[str, str]) -> VerifySettings:
    """Config file first, then flags and the environment's STS endpoint on top."""
    config = _load_config(args.config) if args.config else {}
    sts = config.get("sts") or {}
    where = str(args.config)
    if not isinstance(sts, Mapping):
        raise ConfigError(f"{where}: sts must be a mapping")
    cluster_id = args.cluster_id or _text(config, "clusterID", where, "")
    if not cluster_id:
        raise ConfigError(
            "a cluster ID is required: -i/--cluster-id or clusterID in --config"
        )
    extra = sts.get("extraEndpoints") or []
    if not isinstance(extra, list) or not all(isinstance(u, str) for u in extra):
        raise ConfigError(f"{where}: sts.extraEndpoints must be a list of URLs")
    timeout = (
        args.timeout if args.timeout is not None else sts.get("timeoutSeconds", 5.0)
    )
    if (
        isinstance(timeout, bool)
        or not isinstance(timeout, int | float)
        or timeout <= 0
    ):
        key = (
            "--timeout" if args.timeout is not None else f"{where}: sts.timeoutSeconds"
        )
        raise ConfigError(f"{key} must be a positive number")
    return VerifySettings(
        cluster_id=cluster_id,
        partition=args.partition
        or _text(config, "partition", where, DEFAULT_PARTITION),
        region=args.region or _text(sts, "region", where + " sts", DEFAULT_REGION),
        timeout_s=float(timeout),
        extra_endpoints=(*extra, *args.sts_endpoint, *_env_endpoint(env)),
    )


def _env_endpoint(env: Mapping[str, str]) -> tuple[str, ...]:
    """The STS endpoint ``kubeiam token`` would sign for from the environment."""
    name, url = sts_endpoint_from_env(env)
    if url is None:
        return ()
    try:
        parse_endpoint(url.rstrip("/"))
    except ConfigError as exc:
        raise ConfigError(f"{name}: {exc}") from exc
    return (url.rstrip("/"),)


def _load_config(path: Path) -> Mapping[str, object]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc
    except RecursionError as exc:  # PyYAML composes and constructs recursively
        raise ConfigError(f"{path}: not valid YAML: nested too deeply") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise ConfigError(f"{path}: not valid YAML{where}: {problem}") from exc
    if doc is None:
        return {}
    if not isinstance(doc, Mapping):
        raise ConfigError(f"{path}: the config must be a mapping")
    return doc


def _text(config: Mapping[str, object], key: str, where: str, default: str) -> str:
    value = config.get(key, default)
    if not isinstance(value, str):
        raise ConfigError(f"{where}: {key} must be a string")
    return value


def _read_token(value: str) -> str:
    token = sys.stdin.read() if value == "-" else value
    token = token.strip()
    if not token:
        raise ConfigError("the token is empty")
    return token


# How each failure is introduced on stderr.
_KINDS: dict[type[TokenError], str] = {
    MalformedTokenError: "rejected",
    STSRejectedError: "rejected by STS",
    STSThrottledError: "STS throttled the request",
    STSUnavailableError: "STS unavailable",
}


def _report_rejection(exc: TokenError, *, json_output: bool) -> int:
    kind = _KINDS.get(type(exc), "rejected")
    sys.stderr.write(f"kubeiam verify: {kind} ({exc.reason}): {exc.message}\n")
    if json_output:
        doc = {"verified": False, "reason": exc.reason, "message": exc.message}
        sys.stdout.write(json.dumps(doc) + "\n")
    return 1


def _print_identity(identity: Identity, *, json_output: bool) -> None:
    doc = identity.to_json()
    if json_output:
        sys.stdout.write(json.dumps(doc, indent=2) + "\n")
        return
    width = max(len(key) for key in doc)
    for key, value in doc.items():
        sys.stdout.write(f"{key.ljust(width)}  {value}\n")
