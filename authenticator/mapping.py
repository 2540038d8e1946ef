"""Map a verified IAM identity to a Kubernetes user (docs/configuration.md), purely.

Parsing turns the three accepted formats (``mapRoles``/``mapUsers``/
``mapAccounts`` documents, the ``aws-auth`` ConfigMap's ``data`` and
``IAMIdentityMapping`` objects) into immutable :class:`MappingSet` values;
:func:`evaluate_mapping` (and its short form :func:`map_identity`) decides who a
caller is. Nothing here reads files, the network, the clock or the environment:
the EC2 private-DNS lookup is injected as a callable. The values live in
:mod:`authenticator.mapping_model` and the parsers in
:mod:`authenticator.mapping_formats`; both are re-exported here, the one place
to import them from.

Rules (docs/configuration.md):

* Matching is on the canonical ARN, case-insensitive, with role paths ignored
  on both sides. An entry written as an STS assumed-role ARN is not canonical
  and never matches (the EKS ConfigMap mapper never matches it either; turning
  it into the role ARN would silently widen one session's grant to the role).
* Per source in order: explicit entries (the ``mapRoles`` list, then
  ``mapUsers``), then that source's ``mapAccounts``; the first entry in source
  order wins, deterministically.
* The first explicit entry that matches decides. If its templates cannot be
  rendered, or the rendered username begins with one of that source's reserved
  prefixes, the identity is not authenticated: the search does not fall through
  to later entries or sources (the reference returns an error at that point).
* Templates are replaced in one pass, so a value can never inject another
  placeholder.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from authenticator.arn import canonicalize_arn, parse_arn
from authenticator.errors import InvalidARNError
from authenticator.identity import Identity
from authenticator.mapping_formats import (
    IdentityMappingTable,
    MappingReport,
    inspect_mapping_text,
    parse_aws_auth,
    parse_identity_mappings,
    parse_mapping_text,
    parse_mappings,
    validate_aws_auth,
    validate_mappings,
)
from authenticator.mapping_model import (
    KubernetesUser,
    MappingEntry,
    MappingProblem,
    MappingSet,
    PackedEntries,
    SSOMatch,
    entry_match_key,
    identity_match_key,
)
from authenticator.yamlio import NumericText

__all__ = [
    "IdentityMappingTable",
    "KubernetesUser",
    "MappingEntry",
    "MappingOutcome",
    "MappingProblem",
    "MappingReport",
    "MappingResult",
    "MappingSet",
    "NumericText",
    "PackedEntries",
    "SSOMatch",
    "build_kubernetes_user",
    "entry_match_key",
    "evaluate_mapping",
    "identity_match_key",
    "inspect_mapping_text",
    "map_identity",
    "mapping_for_arn",
    "parse_aws_auth",
    "parse_identity_mappings",
    "parse_mapping_text",
    "parse_mappings",
    "render_template",
    "validate_aws_auth",
    "validate_mappings",
]

# The uid and extra keys of the reference authenticator (docs/configuration.md).
UID_PREFIX = "aws-iam-authenticator"
PRINCIPAL_ID_EXTRA = "sigs.k8s.io/aws-iam-authenticator/principalId"
# Reference check before {{EC2PrivateDNSName}}: ^i-(\w{8}|\w{17})$ (Go's \w is ASCII).
INSTANCE_ID_RE = re.compile(r"i-(\w{8}|\w{17})", re.ASCII)
# The five placeholders of mapping templates (docs/configuration.md); unknown ones
# stay literal.
TEMPLATE_RE = re.compile(
    r"\{\{(EC2PrivateDNSName|AccountID|SessionName|SessionNameRaw|AccessKeyID)\}\}"
)
EC2_TEMPLATE = "{{EC2PrivateDNSName}}"


class MappingOutcome(enum.Enum):
    """How :func:`evaluate_mapping` ended; the value is a stable reason code."""

    MAPPED = "mapped"
    NOT_MAPPED = "not_mapped"
    RESERVED_PREFIX = "reserved_prefix"
    TEMPLATE_ERROR = "template_error"


@dataclass(frozen=True, slots=True)
class MappingResult:
    """The answer of :func:`evaluate_mapping`.

    Attributes:
        user: The Kubernetes user, or None when not authenticated.
        outcome: Why.
        source: The source that decided (empty when nothing matched).
        detail: A human explanation for logs (no secrets).
        entry: The explicit entry that matched, if any.
    """

    user: KubernetesUser | None
    outcome: MappingOutcome
    source: str = ""
    detail: str = ""
    entry: MappingEntry | None = None


def evaluate_mapping(
    identity: Identity,
    sources: Sequence[MappingSet],
    *,
    ec2_private_dns: Callable[[str], str] | None = None,
) -> MappingResult:
    """Decide which Kubernetes user an identity is, and why (docs/configuration.md).

    Args:
        identity: The verified identity.
        sources: The mapping sets, in precedence order.
        ec2_private_dns: Returns an instance's private DNS name, or ``""`` when
            it cannot (only called for ``{{EC2PrivateDNSName}}``).

    Returns:
        The result; ``result.user`` is None when the identity is not authenticated.
    """
    key = identity_match_key(identity.canonical_arn)
    if key is not None:
        for mapping_set in sources:
            entry = mapping_set.find_entry(key)
            if entry is not None:
                return _render_entry(identity, entry, mapping_set, ec2_private_dns)
            if mapping_set.maps_account(identity.account_id):
                return _finish(identity, identity.canonical_arn, (), mapping_set, None)
    return MappingResult(
        None, MappingOutcome.NOT_MAPPED, "", f"{identity.canonical_arn} is not mapped"
    )


def mapping_for_arn(
    arn: str,
    sources: Sequence[MappingSet],
    *,
    session_name: str,
    user_id: str,
) -> tuple[str, tuple[str, ...]] | None:
    """What an IAM ARN would be mapped to, without a token: (username, groups).

    For offline questions (``policy tiers``, ``policy paths``): a role is asked
    about as a session named ``session_name``; an entry whose template cannot be
    rendered offline (e.g. ``{{EC2PrivateDNSName}}`` for node roles) answers
    with its templates as written.

    Args:
        arn: The IAM ARN.
        sources: The mapping sets, in priority order.
        session_name: The session name a role is assumed with.
        user_id: The UserId the synthetic identity carries.

    Returns:
        (username, groups), or None when the ARN is invalid or not mapped.
    """
    try:
        parsed = parse_arn(arn)
        canonical = canonicalize_arn(arn)
    except InvalidARNError:
        return None
    session = session_name if parsed.resource.startswith("role/") else ""
    identity = Identity(arn, canonical, parsed.account, user_id, session, "")
    result = evaluate_mapping(identity, sources)
    if result.user is not None:
        return result.user.username, result.user.groups
    if result.outcome is MappingOutcome.TEMPLATE_ERROR and result.entry is not None:
        return result.entry.username, result.entry.groups
    return None


def map_identity(
    identity: Identity,
    sources: Sequence[MappingSet],
    *,
    ec2_private_dns: Callable[[str], str] | None = None,
) -> KubernetesUser | None:
    """Return the Kubernetes user for an identity, or None (:func:`evaluate_mapping`).

    Args:
        identity: The verified identity.
        sources: The mapping sets, in precedence order.
        ec2_private_dns: The EC2 private DNS lookup.

    Returns:
        The user, or None when the identity is not authenticated.
    """
    return evaluate_mapping(identity, sources, ec2_private_dns=ec2_private_dns).user


def render_template(template: str, values: Mapping[str, str]) -> str:
    """Replace the known placeholders of a template in one pass.

    Args:
        template: A username or group template.
        values: Placeholder name (``AccountID``, ...) -> value.

    Returns:
        The rendered text; placeholders without a value stay literal.
    """
    return TEMPLATE_RE.sub(lambda m: values.get(m.group(1), m.group(0)), template)


def _render_entry(
    identity: Identity,
    entry: MappingEntry,
    mapping_set: MappingSet,
    ec2_private_dns: Callable[[str], str] | None,
) -> MappingResult:
    values = {
        "AccountID": identity.account_id,
        "SessionName": identity.session_name.replace("@", "-"),
        "SessionNameRaw": identity.session_name,
        "AccessKeyID": identity.access_key_id,
    }
    if any(EC2_TEMPLATE in t for t in (entry.username, *entry.groups)):
        problem = ""
        if not INSTANCE_ID_RE.fullmatch(identity.session_name):
            problem = "SessionName did not contain an instance id"
        elif ec2_private_dns is None:
            problem = "no EC2 lookup is configured for {{EC2PrivateDNSName}}"
        elif not (dns := ec2_private_dns(identity.session_name)):
            problem = f"no private DNS name for instance {identity.session_name}"
        else:
            values["EC2PrivateDNSName"] = dns
        if problem:
            return MappingResult(
                None, MappingOutcome.TEMPLATE_ERROR, mapping_set.source, problem, entry
            )
    username = render_template(entry.username, values)
    groups = tuple(g for g in (render_template(t, values) for t in entry.groups) if g)
    return _finish(identity, username, groups, mapping_set, entry)


def _finish(
    identity: Identity,
    username: str,
    groups: tuple[str, ...],
    mapping_set: MappingSet,
    entry: MappingEntry | None,
) -> MappingResult:
    if not username:
        return MappingResult(
            None,
            MappingOutcome.TEMPLATE_ERROR,
            mapping_set.source,
            "the username rendered empty",
            entry,
        )
    for prefix in mapping_set.reserved_prefixes:
        # An empty prefix reserves nothing (reference ReservedPrefixExists).
        if prefix and username.startswith(prefix):
            return MappingResult(
                None,
                MappingOutcome.RESERVED_PREFIX,
                mapping_set.source,
                f"username {username!r} begins with {prefix!r}, reserved for source "
                f"{mapping_set.source}",
                entry,
            )
    for prefix in mapping_set.reserved_group_prefixes:
        for group in groups:
            if prefix and group.startswith(prefix):
                return MappingResult(
                    None,
                    MappingOutcome.RESERVED_PREFIX,
                    mapping_set.source,
                    f"group {group!r} begins with {prefix!r}, reserved for source "
                    f"{mapping_set.source}",
                    entry,
                )
    user = build_kubernetes_user(identity, username, groups)
    return MappingResult(user, MappingOutcome.MAPPED, mapping_set.source, "", entry)


def build_kubernetes_user(
    identity: Identity, username: str, groups: Sequence[str]
) -> KubernetesUser:
    """Build the user with the uid and extra of docs/operations.md.

    Args:
        identity: The verified identity.
        username: The rendered username.
        groups: The rendered groups.

    Returns:
        The user.
    """
    return KubernetesUser(
        username=username,
        uid=f"{UID_PREFIX}:{identity.account_id}:{identity.user_id}",
        groups=tuple(groups),
        extra={
            "arn": (identity.arn,),
            "canonicalArn": (identity.canonical_arn,),
            "sessionName": (identity.session_name,),
            "accessKeyId": (identity.access_key_id,),
            "principalId": (identity.user_id,),
            PRINCIPAL_ID_EXTRA: (identity.user_id,),
        },
    )
