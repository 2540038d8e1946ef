"""Errors of the policy engine.

The tree::

    KubeIAMError                      authenticator/errors.py
    └── PolicyError                   policy/errors.py
        └── InvalidPolicyError        a policy or RBAC document that does not parse
"""

from __future__ import annotations

from authenticator.errors import KubeIAMError


class PolicyError(KubeIAMError):
    """Base of the policy engine's errors."""


class InvalidPolicyError(PolicyError):
    """A policy or RBAC document that does not parse or validate.

    Args:
        message: What is wrong.
        pointer: A JSON-pointer-like location, e.g. ``/Statement/0/Condition``.
        policy: The policy's name, when known.
    """

    def __init__(self, message: str, *, pointer: str = "", policy: str = "") -> None:
        where = f"{policy}{pointer}" if (policy or pointer) else ""
        super().__init__(f"{where}: {message}" if where else message)
        self.pointer = pointer
        self.policy = policy
        self.detail = message


def describe_parse_error(exc: BaseException) -> str:
    """One line saying why a YAML or JSON file could not be read or parsed.

    PyYAML's messages span several lines (the problem, then a quoted snippet and
    a caret); the CLIs promise one line on stderr, so keep only the position and
    the problem.

    Args:
        exc: What reading or parsing raised.

    Returns:
        A one-line description.
    """
    if isinstance(exc, RecursionError):
        return "nested too deeply"
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text"
    if isinstance(exc, OSError) and exc.strerror:
        return f"cannot read: {exc.strerror}"
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None)
    if mark is not None and problem:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return " ".join(str(exc).split())
