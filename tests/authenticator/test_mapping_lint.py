"""authenticator.mapping_lint: the effective table and the security findings."""

from __future__ import annotations

import json
import urllib.parse

import pytest

from authenticator.findings import Severity
from authenticator.mapping import (
    MappingEntry,
    MappingProblem,
    MappingSet,
    parse_mapping_text,
)
from authenticator.mapping_lint import (
    NEVER_MATCHES,
    TrustSummary,
    build_effective_table,
    lint_mappings,
    trust_documents,
)

ACCT = "111122223333"
ROLE = f"arn:aws:iam::{ACCT}:role/Deploy"


def one(
    arn: str = ROLE,
    username: str = "u",
    groups: tuple[str, ...] = (),
    kind: str = "role",
    *,
    source: str = "file",
    reserved: tuple[str, ...] = (),
) -> MappingSet:
    """A set with one entry."""
    entry = MappingEntry(arn, username, groups, kind, f"{source}.yaml: entry")
    roles = (entry,) if kind == "role" else ()
    users = (entry,) if kind == "user" else ()
    return MappingSet(source, roles, users, (), reserved)


def codes(sets: list[MappingSet], **kwargs: object) -> dict[str, Severity]:
    """code -> severity of every finding (the highest per code)."""
    out: dict[str, Severity] = {}
    for f in lint_mappings(sets, **kwargs):  # type: ignore[arg-type]  # keyword passthrough
        out.setdefault(f.code, f.severity)
    return out


PEOPLE = TrustSummary(("AWS:arn:aws:iam::111122223333:root",), ())
EC2_ONLY = TrustSummary((), ("ec2.amazonaws.com",))


class TestFindings:
    """One finding per risk, with its severity."""

    @pytest.mark.parametrize(
        ("mapping_set", "code", "severity"),
        [
            (one(groups=("system:masters",)), "system-masters", Severity.HIGH),
            (one(groups=("system:authenticated",)), "system-group", Severity.MEDIUM),
            (
                one(f"arn:aws:sts::{ACCT}:assumed-role/Deploy/alice"),
                "never-matches",
                Severity.MEDIUM,
            ),
            (
                one(
                    f"arn:aws:iam::{ACCT}:role/aws-service-role/eks.amazonaws.com/"
                    "AWSServiceRoleForAmazonEKS"
                ),
                "service-linked-role",
                Severity.LOW,
            ),
            (
                one(f"arn:aws:iam::{ACCT}:root", kind="user"),
                "root-user",
                Severity.MEDIUM,
            ),
            (one(kind="user"), "wrong-list", Severity.LOW),
            (
                one(username="system:admin", reserved=("system:",)),
                "reserved-prefix",
                Severity.HIGH,
            ),
            (
                one(username="eks:{{SessionName}}", reserved=("eks:",)),
                "reserved-prefix",
                Severity.HIGH,
            ),
            (one(username="{{SessionName}}"), "username-from-session", Severity.MEDIUM),
            (
                one(f"arn:aws:iam::{ACCT}:user/a", "{{SessionName}}", kind="user"),
                "session-template",
                Severity.LOW,
            ),
        ],
    )
    def test_finding(
        self, mapping_set: MappingSet, code: str, severity: Severity
    ) -> None:
        """The entry produces the finding with the expected severity."""
        assert codes([mapping_set]).get(code) is severity

    def test_clean_entry_has_no_findings(self) -> None:
        """A plain role -> username/group entry is clean."""
        assert lint_mappings([one(username="deployer", groups=("deployers",))]) == []

    def test_colon_before_session_name_is_fine(self) -> None:
        """deploy:{{SessionName}} cannot collide with another user's name."""
        assert "username-from-session" not in codes(
            [one(username="deploy:{{SessionName}}")]
        )

    @pytest.mark.parametrize(
        ("trust", "severity"),
        [
            ({"arn:aws:iam::111122223333:role/deploy": PEOPLE}, Severity.HIGH),
            ({"arn:aws:iam::111122223333:role/deploy": EC2_ONLY}, Severity.INFO),
            ({}, Severity.MEDIUM),  # trust data given, role not in it
            (None, Severity.MEDIUM),  # no trust data
        ],
    )
    def test_session_template_severity_follows_trust(
        self, trust: dict[str, TrustSummary] | None, severity: Severity
    ) -> None:
        """Caller-chosen templates: high if people can assume the role, info if EC2."""
        ms = one(username="system:node:{{EC2PrivateDNSName}}")
        assert codes([ms], trust=trust)["session-template"] is severity

    def test_problems_and_numeric_accounts(self) -> None:
        """Validation problems are high; unquoted account IDs are medium."""
        report_set = parse_mapping_text(
            "mapAccounts: ['012345678901']\n", source="file", where="f"
        )
        findings = lint_mappings(
            [report_set],
            problems=[MappingProblem("f: mapRoles[0].rolearn", "bad")],
            numeric_accounts=["f: mapAccounts[0]"],
        )
        assert [(f.severity, f.code) for f in findings] == [
            (Severity.HIGH, "invalid"),
            (Severity.MEDIUM, "numeric-account"),
            (Severity.LOW, "account-automap"),
        ]

    def test_sorted_by_severity(self) -> None:
        """Findings come most severe first."""
        findings = lint_mappings([one(kind="user", groups=("system:masters",))])
        order = [f.severity for f in findings]
        assert order == sorted(order, key=list(Severity).index)


class TestEffectiveTable:
    """Which entry answers, and what is shadowed by what."""

    def test_shadowing(self) -> None:
        """Duplicates, earlier account auto-maps and session ARNs are marked."""
        first = MappingSet(
            "inline",
            (
                MappingEntry(
                    f"arn:aws:iam::{ACCT}:role/ops/Deploy", "a", (), "role", "c: r0"
                ),
            ),
            (),
            ("444455556666",),
        )
        second = MappingSet(
            "file",
            (
                MappingEntry(
                    f"arn:aws:iam::{ACCT}:role/DEPLOY", "b", (), "role", "m: r0"
                ),
                MappingEntry(
                    f"arn:aws:sts::{ACCT}:assumed-role/X/s", "c", (), "role", "m: r1"
                ),
            ),
            (
                MappingEntry(
                    "arn:aws:iam::444455556666:user/u", "d", (), "user", "m: u0"
                ),
            ),
            ("444455556666",),
        )
        rows = build_effective_table([first, second], ["c: ", "m: "])
        assert [(r.where, r.arn, r.shadowed_by) for r in rows] == [
            ("c: r0", f"arn:aws:iam::{ACCT}:role/Deploy", ""),
            ("c: mapAccounts[0]", "444455556666", ""),
            ("m: r0", f"arn:aws:iam::{ACCT}:role/DEPLOY", "c: r0"),
            ("m: r1", f"arn:aws:sts::{ACCT}:assumed-role/X/s", NEVER_MATCHES),
            ("m: u0", "arn:aws:iam::444455556666:user/u", "c: mapAccounts[0]"),
            ("m: mapAccounts[0]", "444455556666", "c: mapAccounts[0]"),
        ]

    def test_own_accounts_do_not_shadow_own_entries(self) -> None:
        """A source's explicit entries beat its own mapAccounts."""
        ms = MappingSet(
            "file", (MappingEntry(ROLE, "a", (), "role", "m: r0"),), (), (ACCT,)
        )
        assert build_effective_table([ms])[0].shadowed_by == ""


class TestTrustDocuments:
    """Finding role trust policies (who may assume is the IAM engine's question)."""

    def test_account_authorization_details(self) -> None:
        """RoleDetailList with URL-encoded and decoded documents, by match key."""
        people = {"Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole"}]}
        doc = {
            "RoleDetailList": [
                {
                    "Arn": f"arn:aws:iam::{ACCT}:role/path/People",
                    "AssumeRolePolicyDocument": urllib.parse.quote(json.dumps(people)),
                },
                {
                    "Arn": f"arn:aws:iam::{ACCT}:role/Node",
                    "AssumeRolePolicyDocument": {},
                },
                {"Arn": "not an arn", "AssumeRolePolicyDocument": {}},
            ]
        }
        docs = trust_documents(doc)
        assert docs == {
            f"arn:aws:iam::{ACCT}:role/people": (
                f"arn:aws:iam::{ACCT}:role/path/People",
                people,
            ),
            f"arn:aws:iam::{ACCT}:role/node": (f"arn:aws:iam::{ACCT}:role/Node", {}),
        }

    def test_arn_to_policy_mapping(self) -> None:
        """A mapping of role ARN to trust policy is read as well."""
        assert trust_documents({ROLE: {"Statement": []}}) == {
            ROLE.lower(): (ROLE, {"Statement": []})
        }

    def test_conditional_people_are_medium(self) -> None:
        """People who may assume only when condition keys hold: medium, named."""
        ms = one(username="node:{{SessionName}}")
        summary = TrustSummary((), (), ("AWS:* (if aws:PrincipalOrgID)",))
        findings = lint_mappings([ms], trust={ROLE.lower(): summary})
        [template] = [f for f in findings if f.code == "session-template"]
        assert template.severity is Severity.MEDIUM
        assert "AWS:* (if aws:PrincipalOrgID)" in template.message
