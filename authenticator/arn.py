"""ARN parsing and canonicalization of IAM identities (docs/token-format.md).

Pure functions: no I/O. ``canonicalize_arn`` is what mapping lookups compare
(case-insensitively, with role paths ignored via ``strip_role_path``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from authenticator.errors import InvalidARNError
from authenticator.partitions import PARTITIONS

# An ARN has 6 colon-separated sections; the resource keeps any further colons.
_ARN_SECTIONS = 6
# Account IDs are 12 decimal digits (IAM User Guide, "Your AWS account ID").
_ACCOUNT_RE = re.compile(r"^[0-9]{12}$")
# IAM names (users, roles), session names and federated-user names: IAM API
# reference, RoleName / UserName / RoleSessionName / Name patterns ``[\w+=,.@-]+``.
_NAME_RE = re.compile(r"^[A-Za-z0-9_+=,.@-]+$")
# IAM path segments: printable ASCII without "/" (IAM API reference, Path pattern).
_PATH_SEGMENT_RE = re.compile(r"^[\x21-\x2e\x30-\x7e]+$")


@dataclass(frozen=True, slots=True)
class ARN:
    """The six sections of an ARN (``arn:partition:service:region:account:resource``).

    Attributes:
        partition: ``aws``, ``aws-cn``, ...
        service: ``iam``, ``sts``, ``s3``, ...
        region: Empty for global services such as IAM.
        account: The account ID, empty for some resources (S3 buckets).
        resource: Everything after the fifth colon.
    """

    partition: str
    service: str
    region: str
    account: str
    resource: str

    def __str__(self) -> str:
        """Return the ARN text."""
        return (
            f"arn:{self.partition}:{self.service}:{self.region}:"
            f"{self.account}:{self.resource}"
        )


def parse_arn(arn: str) -> ARN:
    """Split an ARN into its sections (structure only, any service).

    Args:
        arn: The ARN text.

    Returns:
        The parsed sections.

    Raises:
        InvalidARNError: It does not start with ``arn:`` or has fewer than six
            sections, or the partition, service or resource is empty.
    """
    parts = arn.split(":", _ARN_SECTIONS - 1)
    if len(parts) != _ARN_SECTIONS or parts[0] != "arn":
        raise InvalidARNError(
            f"{_show(arn)} is not an ARN (expected arn:partition:service:region:"
            "account:resource)"
        )
    _, partition, service, region, account, resource = parts
    if not partition or not service or not resource:
        raise InvalidARNError(
            f"ARN {_show(arn)} has an empty partition, service or resource"
        )
    return ARN(partition, service, region, account, resource)


def canonicalize_arn(arn: str) -> str:
    """Return the canonical form of an IAM identity ARN.

    ``iam`` users, roles (paths kept) and root, and ``sts`` federated users are
    returned unchanged; an ``sts`` assumed-role session becomes
    ``arn:<partition>:iam::<account>:role/<everything between the first and the
    last slash>`` (STS never puts a role path in a session ARN).

    Args:
        arn: An identity ARN, as STS reports it or as a mapping names it.

    Returns:
        The canonical ARN.

    Raises:
        InvalidARNError: Not an ARN, an unknown partition, a region in an IAM or
            STS ARN, an account that is not 12 digits, or a resource that is not
            an identity.
    """
    parsed = parse_arn(arn)
    if parsed.partition not in PARTITIONS:
        raise InvalidARNError(f"ARN {_show(arn)} does not have a recognized partition")
    if parsed.service not in ("iam", "sts"):
        raise InvalidARNError(
            f"service {_show(parsed.service)} in ARN {_show(arn)} is not a valid "
            "service for identities (expected iam or sts)"
        )
    if parsed.region:
        raise InvalidARNError(f"identity ARN {_show(arn)} must not name a region")
    if not _ACCOUNT_RE.fullmatch(parsed.account):
        raise InvalidARNError(f"ARN {_show(arn)} does not have a 12-digit account ID")
    segments = parsed.resource.split("/")
    kind = segments[0]
    if parsed.service == "iam":
        if kind == "root" and len(segments) == 1:
            return arn
        if kind in ("user", "role") and _valid_named(segments[1:]):
            return arn
        raise InvalidARNError(
            f"unrecognized resource {_show(parsed.resource)} for service iam "
            "(expected user/<name>, role/<name> or root)"
        )
    if (
        kind == "federated-user"
        and len(segments) == 2
        and _NAME_RE.fullmatch(segments[1])
    ):
        return arn
    if kind == "assumed-role":
        if len(segments) < 3:
            raise InvalidARNError(f"assumed-role ARN {_show(arn)} does not have a role")
        if not _valid_named(segments[1:]):
            raise InvalidARNError(
                f"assumed-role ARN {_show(arn)} has a malformed role or session name"
            )
        role = "/".join(segments[1:-1])
        return f"arn:{parsed.partition}:iam::{parsed.account}:role/{role}"
    raise InvalidARNError(
        f"unrecognized resource {_show(parsed.resource)} for service sts "
        "(expected assumed-role/<role>/<session> or federated-user/<name>)"
    )


def strip_role_path(arn: str) -> str:
    """Drop the path of an IAM role ARN: ``role/<path>/<name>`` becomes ``role/<name>``.

    Anything else (users, sessions, roles without a path, text that is not an
    ARN) is returned unchanged, so a malformed ARN can only ever fail to match.

    Args:
        arn: An ARN.

    Returns:
        The ARN without the role path.
    """
    try:
        parsed = parse_arn(arn)
    except InvalidARNError:
        return arn
    segments = parsed.resource.split("/")
    if parsed.service != "iam" or segments[0] != "role" or len(segments) <= 2:
        return arn
    return str(
        ARN(
            parsed.partition,
            "iam",
            parsed.region,
            parsed.account,
            "role/" + segments[-1],
        )
    )


def _valid_named(segments: list[str]) -> bool:
    """Path segments then a final name, none empty (``team/Deploy``, ``Deploy``)."""
    if not segments or not _NAME_RE.fullmatch(segments[-1]):
        return False
    return all(_PATH_SEGMENT_RE.fullmatch(seg) for seg in segments[:-1])


def _show(text: str, limit: int = 200) -> str:
    """Quote untrusted text for a message, bounded in length."""
    return repr(text if len(text) <= limit else text[:limit] + "...")
