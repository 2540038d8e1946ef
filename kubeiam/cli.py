"""The ``kubeiam`` command: a thin, lazy dispatcher.

Each subcommand lives in a package's ``cli`` module and is imported only when
it runs: ``kubeiam token`` is started by kubectl on every command, so it must
not pay for Flask, the policy engine or boto3.
"""

from __future__ import annotations

import sys

# Type-only names: importing collections.abc (and importlib) would cost
# ~4 ms on every kubectl call of ``kubeiam token``.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

# subcommand -> (module, function, one-line summary). Each function takes the
# remaining argv and returns the exit code (0 ok, 1 error, 2 usage).
COMMANDS: dict[str, tuple[str, str, str]] = {
    "token": (
        "authenticator.cli",
        "token_main",
        "mint a token, print an ExecCredential",
    ),
    "verify": ("kubeiam.verify_cli", "main", "verify a token against STS"),
    "server": (
        "webhook.cli",
        "server_main",
        "run the TokenReview webhook (gunicorn, TLS)",
    ),
    "init": (
        "kubeconfig.cli",
        "init_main",
        "write certificates and the webhook kubeconfig",
    ),
    "kubeconfig": (
        "kubeconfig.cli",
        "kubeconfig_main",
        "write or merge a user kubeconfig",
    ),
    "mappings": (
        "webhook.cli",
        "mappings_main",
        "validate / lint / show mapping configs",
    ),
    "policy": (
        "policy.cli",
        "main",
        "simulate, explain and test IAM and RBAC policies",
    ),
    "sts-emulator": (
        "authenticator.cli",
        "emulator_main",
        "run a local signature-checking STS",
    ),
    "demo": ("kubeiam.demo", "main", "the whole path on embedded defaults"),
}

_USAGE = """usage: kubeiam [-h] [--version] COMMAND [ARGS...]

AWS IAM identities for Kubernetes.

commands:
{commands}

examples:
  kubeiam token -i my-cluster                       # the kubectl exec plugin
  kubeiam verify -t "$TOKEN" -i my-cluster -o json  # who signed this token?
  kubeiam server --config /etc/kubeiam/config.yaml  # the TokenReview webhook
  kubeiam demo                                      # everything, on a local STS

Run 'kubeiam COMMAND --help' for a command's options.
"""


def _usage() -> str:
    width = max(len(name) for name in COMMANDS)
    lines = [
        f"  {name.ljust(width)}  {summary}"
        for name, (_, _, summary) in COMMANDS.items()
    ]
    return _USAGE.format(commands="\n".join(lines))


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``kubeiam`` command.

    Args:
        argv: Arguments after the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help", "help"):
        # No command is a usage error: the usage goes to stderr, as argparse's.
        (sys.stdout if args else sys.stderr).write(_usage())
        return 0 if args else 2
    if args[0] == "--version":
        from kubeiam import __version__

        sys.stdout.write(f"kubeiam {__version__}\n")
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        sys.stderr.write(
            f"kubeiam: unknown command {args[0]!r} (see 'kubeiam --help')\n"
        )
        return 2
    module_name, func_name, _ = entry
    __import__(module_name)
    func: Callable[[list[str]], int] = getattr(sys.modules[module_name], func_name)
    try:
        return func(args[1:])
    except KeyboardInterrupt:
        sys.stderr.write("kubeiam: interrupted\n")
        return 130
