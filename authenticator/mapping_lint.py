"""What a security reviewer wants to know about a set of mappings, purely.

:func:`build_effective_table` shows every entry after precedence (which entry
answers for a principal, and which never will); :func:`lint_mappings` turns
the same facts, and who may assume each role (:class:`TrustSummary`, answered
by the IAM engine in ``policy.iam.trust``), into findings with a severity
(docs/configuration.md, docs/threat-model.md):

* ``system:masters`` grants (cluster-admin) and other ``system:`` groups;
* caller-chosen templates (``{{SessionName}}``, ``{{SessionNameRaw}}``,
  ``{{EC2PrivateDNSName}}``) on roles that people, not only AWS services, can
  assume: the caller picks the session name, and so the username;
* entries that can never match or never win: session ARNs, service-linked
  roles, duplicates after path stripping and case folding, entries shadowed by
  an earlier source or an earlier account auto-map, reserved-prefix usernames;
* account IDs YAML turned into numbers.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from authenticator.arn import strip_role_path
from authenticator.findings import Finding, Severity
from authenticator.mapping_model import (
    MappingEntry,
    MappingProblem,
    MappingSet,
    entry_match_key,
)

# Placeholders whose value the caller of AssumeRole chooses (section 11, item 8).
CALLER_CHOSEN = ("{{SessionName}}", "{{SessionNameRaw}}", "{{EC2PrivateDNSName}}")
# system: groups that node and admin mappings legitimately use (section 8).
EXPECTED_SYSTEM_GROUPS = frozenset(
    {"system:masters", "system:nodes", "system:bootstrappers"}
)
# Role paths of service-linked roles (IAM User Guide, "Using service-linked roles").
SERVICE_LINKED_PATH = "aws-service-role/"


def finding_json(finding: Finding) -> dict[str, str]:
    """A lint finding as ``kubeiam mappings lint -o json`` prints it.

    Args:
        finding: The finding.

    Returns:
        ``severity``, ``code``, ``where`` and ``message``.
    """
    return {
        "severity": finding.severity.value,
        "code": finding.code,
        "where": finding.where,
        "message": finding.message,
    }


@dataclass(frozen=True, slots=True)
class TableRow:
    """One line of the effective mapping table.

    Attributes:
        source: The source name.
        kind: ``role``, ``user`` or ``account``.
        arn: The canonical, path-stripped ARN (the account ID for accounts).
        username: The username template (``(canonical ARN)`` for accounts).
        groups: The group templates.
        where: Where the entry is written.
        shadowed_by: Where the entry that answers instead is, ``(never matches)``,
            or empty when this entry is the one that answers.
    """

    source: str
    kind: str
    arn: str
    username: str
    groups: tuple[str, ...]
    where: str
    shadowed_by: str

    def to_json(self) -> dict[str, object]:
        """Return the row as a JSON object."""
        return {
            "source": self.source,
            "kind": self.kind,
            "arn": self.arn,
            "username": self.username,
            "groups": list(self.groups),
            "where": self.where,
            "shadowedBy": self.shadowed_by,
        }


@dataclass(frozen=True, slots=True)
class TrustSummary:
    """Who may assume a role, as the IAM engine answered from its trust policy.

    Attributes:
        people: Non-service principals allowed (``AWS``, ``Federated``, ``*``...).
        services: Service principals allowed.
        conditional: Non-service principals allowed when condition keys hold
            (``AWS:* (if aws:PrincipalOrgID)``).
    """

    people: tuple[str, ...]
    services: tuple[str, ...]
    conditional: tuple[str, ...] = ()


NEVER_MATCHES = "(never matches)"


def build_effective_table(
    sets: Sequence[MappingSet], labels: Sequence[str] = ()
) -> list[TableRow]:
    """Return every entry with the entry that answers instead of it, if any.

    Args:
        sets: The mapping sets, in precedence order.
        labels: Per set, the prefix of its mapAccounts rows' ``where``
            (``"file.yaml: "``, ``"aws-auth.yaml: data."``; default ``"<source>: "``).

    Returns:
        Rows in precedence order: per source, roles, users, accounts.
    """
    claimed: dict[str, str] = {}
    accounts: dict[str, str] = {}
    rows: list[TableRow] = []
    for i, mapping_set in enumerate(sets):
        label = labels[i] if i < len(labels) else f"{mapping_set.source}: "
        for entry in (*mapping_set.roles, *mapping_set.users):
            key = entry_match_key(entry.arn)
            if entry.sso is not None:
                shadow = ""  # a pattern (roles of a permission set), not one ARN
            elif key is None:
                shadow = NEVER_MATCHES
            elif key in claimed:
                shadow = claimed[key]
            elif key.split(":")[4] in accounts:
                shadow = accounts[key.split(":")[4]]
            else:
                claimed[key] = entry.where
                shadow = ""
            rows.append(
                TableRow(
                    mapping_set.source,
                    entry.kind,
                    _display_arn(entry.arn),
                    entry.username,
                    entry.groups,
                    entry.where,
                    shadow,
                )
            )
        for j, account in enumerate(mapping_set.accounts):
            where = f"{label}mapAccounts[{j}]"
            shadow = accounts.get(account, "")
            rows.append(
                TableRow(
                    mapping_set.source,
                    "account",
                    account,
                    "(canonical ARN)",
                    (),
                    where,
                    shadow,
                )
            )
        for j, account in enumerate(mapping_set.accounts):
            accounts.setdefault(account, f"{label}mapAccounts[{j}]")
    return rows


def _display_arn(arn: str) -> str:
    """The ARN as written, role path stripped (assumed-role ARNs stay as written)."""
    return arn if entry_match_key(arn) is None else strip_role_path(arn)


def trust_documents(doc: object) -> dict[str, tuple[str, object]]:
    """Collect role trust policies by role match key, unparsed.

    Accepts the output of ``aws iam get-account-authorization-details``
    (``RoleDetailList``), a list of ``{"Arn", "AssumeRolePolicyDocument"}``,
    or a mapping of role ARN to trust policy. Who may assume each role is the
    IAM engine's question (``policy.iam.trust``, asked by the CLI); this only
    finds the documents.

    Args:
        doc: The parsed JSON.

    Returns:
        Role match key -> (role ARN, trust policy; URL-encoded text decoded).
    """
    pairs: list[tuple[object, object]] = []
    if isinstance(doc, Mapping) and "RoleDetailList" in doc:
        doc = doc["RoleDetailList"]
    if isinstance(doc, Mapping):
        pairs = list(doc.items())
    elif isinstance(doc, list):
        for item in doc:
            if isinstance(item, Mapping):
                pairs.append((item.get("Arn"), item.get("AssumeRolePolicyDocument")))
    out: dict[str, tuple[str, object]] = {}
    for arn, policy in pairs:
        key = entry_match_key(arn) if isinstance(arn, str) else None
        if key is not None and isinstance(arn, str):
            out[key] = (arn, _policy_doc(policy))
    return out


def _policy_doc(policy: object) -> object:
    if isinstance(policy, str):
        # IAM returns policy documents URL-encoded; awscli decodes them.
        try:
            return json.loads(urllib.parse.unquote(policy))
        except ValueError:
            return policy
    return policy


def lint_mappings(
    sets: Sequence[MappingSet],
    *,
    labels: Sequence[str] = (),
    problems: Sequence[MappingProblem] = (),
    numeric_accounts: Sequence[str] = (),
    trust: Mapping[str, TrustSummary] | None = None,
) -> list[Finding]:
    """Return the findings for a set of mappings, most severe first.

    Args:
        sets: The mapping sets, in precedence order.
        labels: Per set, the prefix of its mapAccounts rows' ``where``.
        problems: Validation problems (each a high finding).
        numeric_accounts: Where account IDs were unquoted numbers.
        trust: Who may assume each role, by role match key, if known.

    Returns:
        The findings, sorted by severity then position.
    """
    findings = [Finding(Severity.HIGH, "invalid", p.where, p.message) for p in problems]
    for where in numeric_accounts:
        findings.append(
            Finding(
                Severity.MEDIUM,
                "numeric-account",
                where,
                "unquoted account ID: YAML 1.1 readers (PyYAML, the reference's "
                "loaders) "
                "read it as a number and can drop leading zeros; quote it",
            )
        )
    for row in build_effective_table(sets, labels):
        findings.extend(_row_findings(row))
    for mapping_set in sets:
        for entry in (*mapping_set.roles, *mapping_set.users):
            findings.extend(_entry_findings(entry, mapping_set, trust))
    order = {id(f): i for i, f in enumerate(findings)}
    return sorted(findings, key=lambda f: (f.severity.rank, order[id(f)]))


def _row_findings(row: TableRow) -> list[Finding]:
    if row.kind == "account":
        if row.shadowed_by:
            return [
                Finding(
                    Severity.LOW,
                    "duplicate",
                    row.where,
                    f"account already listed at {row.shadowed_by}",
                )
            ]
        return [
            Finding(
                Severity.LOW,
                "account-automap",
                row.where,
                f"every principal of account {row.arn} without an explicit entry "
                "authenticates (username = its ARN, no groups); later sources' entries "
                "for this account are never used",
            )
        ]
    if not row.shadowed_by or row.shadowed_by == NEVER_MATCHES:
        return []
    if "mapAccounts" in row.shadowed_by:
        return [
            Finding(
                Severity.MEDIUM,
                "shadowed-by-account",
                row.where,
                f"never used: the account auto-map at {row.shadowed_by} answers first "
                "(an earlier source's mapAccounts beats later explicit entries)",
            )
        ]
    return [
        Finding(
            Severity.MEDIUM,
            "duplicate",
            row.where,
            f"same principal as {row.shadowed_by} after path stripping and case "
            "folding; "
            "that entry wins and this one is never used",
        )
    ]


def _entry_findings(
    entry: MappingEntry,
    mapping_set: MappingSet,
    trust: Mapping[str, TrustSummary] | None,
) -> list[Finding]:
    out: list[Finding] = []
    resource = entry.arn.split(":", 5)[-1]
    is_role = resource.startswith(("role/", "assumed-role/"))
    if "system:masters" in entry.groups:
        out.append(
            Finding(
                Severity.HIGH,
                "system-masters",
                entry.where,
                "grants system:masters (cluster-admin, not limited by RBAC) to "
                f"{entry.arn}",
            )
        )
    for group in entry.groups:
        if group.startswith("system:") and group not in EXPECTED_SYSTEM_GROUPS:
            out.append(
                Finding(
                    Severity.MEDIUM,
                    "system-group",
                    entry.where,
                    f"group {group!r} is a Kubernetes system group; EKS access entries "
                    "refuse groups starting with system:",
                )
            )
    if entry.sso is None and entry_match_key(entry.arn) is None:
        out.append(
            Finding(
                Severity.MEDIUM,
                "never-matches",
                entry.where,
                f"{entry.arn} is a session ARN and never matches: map the role ARN "
                "(which grants every session of the role)",
            )
        )
    elif resource.startswith("role/" + SERVICE_LINKED_PATH):
        out.append(
            Finding(
                Severity.LOW,
                "service-linked-role",
                entry.where,
                "a service-linked role: only its AWS service can assume it",
            )
        )
    elif resource == "root":
        out.append(
            Finding(
                Severity.MEDIUM,
                "root-user",
                entry.where,
                "maps the account's root user; root credentials should not be in "
                "daily use",
            )
        )
    if (entry.kind == "role") != is_role:
        listed = "mapRoles" if entry.kind == "role" else "mapUsers"
        out.append(
            Finding(
                Severity.LOW,
                "wrong-list",
                entry.where,
                f"{entry.arn} is listed under {listed}; it still matches, but say "
                "what it is",
            )
        )
    static = entry.username.split("{{", 1)[0]
    for prefix in mapping_set.reserved_prefixes:
        if static.startswith(prefix):
            out.append(
                Finding(
                    Severity.HIGH,
                    "reserved-prefix",
                    entry.where,
                    f"never authenticates: username {entry.username!r} begins with "
                    f"{prefix!r}, reserved for source {mapping_set.source}",
                )
            )
            break
    for group in entry.groups:
        static_group = group.split("{{", 1)[0]
        hit = next(
            (
                p
                for p in mapping_set.reserved_group_prefixes
                if p and static_group.startswith(p)
            ),
            None,
        )
        if hit is not None:
            out.append(
                Finding(
                    Severity.HIGH,
                    "reserved-group-prefix",
                    entry.where,
                    f"never authenticates: group {group!r} begins with {hit!r}, "
                    f"reserved for source {mapping_set.source} (reservedGroupPrefixes; "
                    "grant it from a source an administrator controls, or drop it)",
                )
            )
            break
    out.extend(_template_findings(entry, is_role, trust))
    return out


def _template_findings(
    entry: MappingEntry, is_role: bool, trust: Mapping[str, TrustSummary] | None
) -> list[Finding]:
    used = sorted(
        {p for p in CALLER_CHOSEN for t in (entry.username, *entry.groups) if p in t}
    )
    if not used:
        return []
    names = ", ".join(used)
    if not is_role:
        return [
            Finding(
                Severity.LOW,
                "session-template",
                entry.where,
                f"{names} is always empty for IAM users",
            )
        ]
    out: list[Finding] = []
    for placeholder in ("{{SessionName}}", "{{SessionNameRaw}}"):
        head = entry.username.split(placeholder, 1)
        if len(head) == 2 and ":" not in head[0]:
            out.append(
                Finding(
                    Severity.MEDIUM,
                    "username-from-session",
                    entry.where,
                    f"no ':' before {placeholder} in the username: a caller can pick a "
                    "session name that equals another user's name (EKS requires a ':')",
                )
            )
    key = entry_match_key(entry.arn)
    summary = trust.get(key) if trust is not None and key is not None else None
    if summary is not None and summary.people:
        out.append(
            Finding(
                Severity.HIGH,
                "session-template",
                entry.where,
                f"{names} is chosen by whoever assumes the role, and "
                f"{', '.join(summary.people)} can: they can render any value "
                "(e.g. another node's name)",
            )
        )
    elif summary is not None and summary.conditional:
        out.append(
            Finding(
                Severity.MEDIUM,
                "session-template",
                entry.where,
                f"{names} is chosen by whoever assumes the role, and "
                f"{', '.join(summary.conditional)} can when those condition keys "
                "hold: they can render any value",
            )
        )
    elif summary is not None:
        out.append(
            Finding(
                Severity.INFO,
                "session-template",
                entry.where,
                f"{names}: only {', '.join(summary.services) or 'no one'} can assume "
                "the role",
            )
        )
    else:
        note = (
            "the role is not in the trust policies given"
            if trust is not None
            else "pass --trust-policies (get-account-authorization-details) to tell"
        )
        out.append(
            Finding(
                Severity.MEDIUM,
                "session-template",
                entry.where,
                f"{names} is chosen by whoever assumes the role; if people (not only "
                "an "
                f"AWS service) can assume it, they choose the username: {note}",
            )
        )
    return out
