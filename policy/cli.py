"""``kubeiam policy``: dispatches to the IAM, RBAC and tier commands."""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

# subcommand -> (module, summary). Each module has ``main(argv) -> int``
# where argv starts after the subcommand name.
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "simulate": ("policy.iam.cli", "evaluate IAM cases, one JSON line each"),
    "explain": ("policy.iam.cli", "evaluate IAM cases and print a readable trace"),
    "test": ("policy.iam.cli", "run YAML policy test suites (JUnit XML on request)"),
    "lint": ("policy.iam.cli", "validate policies and report findings"),
    "tiers": (
        "policy.tiers.cli",
        "cluster / task / housekeeping tiers of an ECS or EKS workload",
    ),
    "can-i": (
        "policy.rbac.cli",
        "kubectl auth can-i against RBAC files (or an IAM ARN)",
    ),
    "rbac": ("policy.rbac.cli", "batch SubjectAccessReview decisions from RBAC files"),
    "who-can": ("policy.rbac.cli", "which subjects may VERB RESOURCE"),
    "covers": ("policy.rbac.cli", "escalation check: does role A cover role B"),
    "paths": (
        "policy.paths.cli",
        "access paths across IAM and Kubernetes (who can reach what, findings)",
    ),
}

_USAGE = """usage: kubeiam policy COMMAND [ARGS...]

Simulate, explain and test IAM and Kubernetes RBAC policies.

commands:
{commands}

examples:
  kubeiam policy simulate cases.json
  kubeiam policy test tests/security/*.yaml --junit-xml report.xml
  kubeiam policy can-i --rbac rbac/ --as alice get pods -n dev
  kubeiam policy tiers --task-definition td.json --account auth.json
"""


def main(argv: list[str]) -> int:
    """Run ``kubeiam policy``.

    Args:
        argv: Arguments after ``policy``.

    Returns:
        The exit code.
    """
    if not argv or argv[0] in ("-h", "--help"):
        width = max(len(n) for n in SUBCOMMANDS)
        lines = [f"  {n.ljust(width)}  {s}" for n, (_, s) in SUBCOMMANDS.items()]
        # No subcommand is a usage error: the usage goes to stderr, as argparse's.
        out = sys.stdout if argv else sys.stderr
        out.write(_USAGE.format(commands="\n".join(lines)))
        return 0 if argv else 2
    entry = SUBCOMMANDS.get(argv[0])
    if entry is None:
        sys.stderr.write(f"kubeiam policy: unknown command {argv[0]!r}\n")
        return 2
    func: Callable[[list[str]], int] = importlib.import_module(entry[0]).main
    return func(argv)
