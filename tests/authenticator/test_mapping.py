"""authenticator.mapping: the three formats and mapping identities."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from authenticator.arn import canonicalize_arn
from authenticator.errors import ConfigError, InvalidARNError
from authenticator.identity import Identity
from authenticator.mapping import (
    PRINCIPAL_ID_EXTRA,
    IdentityMappingTable,
    MappingEntry,
    MappingOutcome,
    MappingSet,
    NumericText,
    PackedEntries,
    SSOMatch,
    entry_match_key,
    evaluate_mapping,
    inspect_mapping_text,
    map_identity,
    parse_aws_auth,
    parse_identity_mappings,
    parse_mapping_text,
    parse_mappings,
    render_template,
    validate_aws_auth,
    validate_mappings,
)
from authenticator.yamlio import load_yaml_documents

ACCT = "111122223333"


def ident(
    arn: str, *, user_id: str = "", session: str = "", key: str = "ASIAKEY"
) -> Identity:
    """Build an identity as the verifier does: canonical ARN, user and session IDs."""
    if not user_id:
        user_id = "AROAEXAMPLE" if ":assumed-role/" in arn else "AIDAEXAMPLE"
    if not session and ":assumed-role/" in arn:
        session = arn.rsplit("/", 1)[1]
    account = arn.split(":")[4]
    return Identity(arn, canonicalize_arn(arn), account, user_id, session, key)


def role_session(role: str, session: str = "alice", account: str = ACCT) -> Identity:
    """An STS assumed-role identity."""
    return ident(
        f"arn:aws:sts::{account}:assumed-role/{role}/{session}", session=session
    )


def mset(
    roles: Sequence[tuple[str, str, tuple[str, ...]]] = (),
    users: Sequence[tuple[str, str, tuple[str, ...]]] = (),
    accounts: tuple[str, ...] = (),
    *,
    source: str = "file",
    reserved: tuple[str, ...] = (),
) -> MappingSet:
    """A mapping set from (arn, username, groups) triples."""
    return MappingSet(
        source,
        tuple(MappingEntry(a, u, g, "role") for a, u, g in roles),
        tuple(MappingEntry(a, u, g, "user") for a, u, g in users),
        accounts,
        reserved,
    )


class TestMatching:
    """Canonical ARN, case-insensitive, role paths ignored on both sides."""

    @pytest.mark.parametrize(
        ("entry_arn", "caller", "matches"),
        [
            (f"arn:aws:iam::{ACCT}:role/Deploy", role_session("Deploy"), True),
            (f"arn:aws:iam::{ACCT}:role/team/Deploy", role_session("Deploy"), True),
            (f"arn:aws:iam::{ACCT}:role/a/b/c/Deploy", role_session("Deploy"), True),
            (f"arn:aws:iam::{ACCT}:role/DEPLOY", role_session("deploy"), True),
            (f"arn:aws:iam::{ACCT}:role/Deploy", role_session("Deploy2"), False),
            (
                f"arn:aws:iam::{ACCT}:role/Deploy",
                role_session("Deploy", account="444455556666"),
                False,
            ),
            (
                f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/eu-west-1/"
                "AWSReservedSSO_Admin_0123abcd",
                role_session("AWSReservedSSO_Admin_0123abcd"),
                True,
            ),
            (
                f"arn:aws:iam::{ACCT}:user/alice",
                ident(f"arn:aws:iam::{ACCT}:user/alice"),
                True,
            ),
            (
                f"arn:aws:iam::{ACCT}:user/ALICE",
                ident(f"arn:aws:iam::{ACCT}:user/alice"),
                True,
            ),
            # user paths are part of the user's identity: only role paths are ignored
            (
                f"arn:aws:iam::{ACCT}:user/ops/alice",
                ident(f"arn:aws:iam::{ACCT}:user/alice"),
                False,
            ),
            (
                f"arn:aws:iam::{ACCT}:user/ops/alice",
                ident(f"arn:aws:iam::{ACCT}:user/ops/alice"),
                True,
            ),
            (
                f"arn:aws:iam::{ACCT}:root",
                ident(f"arn:aws:iam::{ACCT}:root", user_id=ACCT),
                True,
            ),
            (
                f"arn:aws:sts::{ACCT}:federated-user/bob",
                ident(f"arn:aws:sts::{ACCT}:federated-user/bob", user_id=f"{ACCT}:bob"),
                True,
            ),
            ("arn:aws-cn:iam::111122223333:role/Deploy", role_session("Deploy"), False),
            # a session ARN is not canonical: it never matches, not even its session
            (
                f"arn:aws:sts::{ACCT}:assumed-role/Deploy/alice",
                role_session("Deploy", "alice"),
                False,
            ),
        ],
    )
    def test_entry_matches_caller(
        self, entry_arn: str, caller: Identity, matches: bool
    ) -> None:
        """An entry matches exactly the callers the documented says it does."""
        user = map_identity(caller, [mset(roles=[(entry_arn, "u", ())])])
        assert (user is not None) is matches

    def test_role_path_ignored_on_the_caller_side(self) -> None:
        """A caller canonical ARN with a role path matches an entry without one."""
        caller = Identity(
            f"arn:aws:iam::{ACCT}:role/x/Deploy",
            f"arn:aws:iam::{ACCT}:role/x/Deploy",
            ACCT,
            "AROA1",
            "",
            "K",
        )
        user = map_identity(
            caller, [mset(roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", "d", ())])]
        )
        assert user is not None and user.username == "d"

    def test_role_arn_listed_under_map_users_still_matches(self) -> None:
        """As in the reference, a role ARN written under mapUsers maps the role."""
        user = map_identity(
            role_session("Deploy"),
            [mset(users=[(f"arn:aws:iam::{ACCT}:role/Deploy", "d", ())])],
        )
        assert user is not None and user.username == "d"


class TestPrecedence:
    """Per source: roles, then users, then that source's accounts; first entry wins."""

    def test_roles_before_users(self) -> None:
        """The same ARN in mapRoles and mapUsers: the mapRoles entry wins."""
        arn = f"arn:aws:iam::{ACCT}:role/Deploy"
        result = evaluate_mapping(
            role_session("Deploy"),
            [mset(roles=[(arn, "from-roles", ())], users=[(arn, "from-users", ())])],
        )
        assert result.user is not None and result.user.username == "from-roles"

    def test_first_entry_in_source_order_wins(self) -> None:
        """Duplicates after path stripping and case folding: the first one wins."""
        roles = [
            (f"arn:aws:iam::{ACCT}:role/a/Deploy", "first", ()),
            (f"arn:aws:iam::{ACCT}:role/deploy", "second", ()),
        ]
        for _ in range(3):
            user = map_identity(role_session("Deploy"), [mset(roles=roles)])
            assert user is not None and user.username == "first"

    def test_explicit_entry_beats_its_own_accounts(self) -> None:
        """A source's explicit entry wins over its own mapAccounts."""
        sets = [
            mset(
                roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", "deploy", ("g",))],
                accounts=(ACCT,),
            )
        ]
        user = map_identity(role_session("Deploy"), sets)
        assert user is not None and (user.username, user.groups) == ("deploy", ("g",))

    def test_earlier_account_automap_beats_later_explicit_entry(self) -> None:
        """An earlier source's mapAccounts beats a later source's explicit entry."""
        sets = [
            mset(accounts=(ACCT,), source="inline"),
            mset(
                roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", "deploy", ("admins",))],
                source="configMap",
            ),
        ]
        result = evaluate_mapping(role_session("Deploy"), sets)
        assert result.user is not None
        assert result.user.username == f"arn:aws:iam::{ACCT}:role/Deploy"
        assert result.user.groups == ()
        assert result.source == "inline"

    def test_later_source_answers_when_earlier_has_nothing(self) -> None:
        """Sources are tried in order until one maps the caller."""
        sets = [
            mset(accounts=("444455556666",)),
            mset(roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", "d", ())], source="crd"),
        ]
        result = evaluate_mapping(role_session("Deploy"), sets)
        assert result.user is not None and result.source == "crd"

    def test_account_automap_uses_canonical_arn_in_original_case(self) -> None:
        """mapAccounts: username = canonical ARN as STS spelled it, no groups."""
        user = map_identity(
            ident(f"arn:aws:iam::{ACCT}:user/Alice"), [mset(accounts=(ACCT,))]
        )
        assert (
            user is not None
            and user.username == f"arn:aws:iam::{ACCT}:user/Alice"
            and user.groups == ()
        )

    def test_unmapped_is_none_with_reason(self) -> None:
        """Nothing matches: no user, outcome not_mapped."""
        result = evaluate_mapping(
            role_session("Other"),
            [mset(roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", "d", ())])],
        )
        assert result.user is None and result.outcome is MappingOutcome.NOT_MAPPED
        assert map_identity(role_session("Other"), []) is None


class TestTemplates:
    """The five placeholders of docs/configuration.md."""

    @pytest.mark.parametrize(
        ("template", "expected"),
        [
            ("{{AccountID}}", ACCT),
            ("user:{{SessionName}}", "user:bob-example.com"),
            ("user:{{SessionNameRaw}}", "user:bob@example.com"),
            ("key-{{AccessKeyID}}", "key-ASIAKEY"),
            ("{{SessionName}}/{{SessionName}}", "bob-example.com/bob-example.com"),
            ("{{Unknown}}-{{AccountID}}", f"{{{{Unknown}}}}-{ACCT}"),
            ("{{accountid}}", "{{accountid}}"),
            ("{{ AccountID }}", "{{ AccountID }}"),
            ("plain", "plain"),
        ],
    )
    def test_username_rendering(self, template: str, expected: str) -> None:
        """Placeholders are replaced everywhere; unknown or mis-cased ones stay."""
        caller = role_session("Deploy", "bob@example.com")
        user = map_identity(
            caller, [mset(roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", template, ())])]
        )
        assert user is not None and user.username == expected

    def test_groups_are_rendered(self) -> None:
        """Groups take the same templates as the username."""
        caller = role_session("Deploy", "bob")
        entry = (
            f"arn:aws:iam::{ACCT}:role/Deploy",
            "u",
            ("team-{{AccountID}}", "s-{{SessionName}}"),
        )
        user = map_identity(caller, [mset(roles=[entry])])
        assert user is not None and user.groups == (f"team-{ACCT}", "s-bob")

    def test_single_pass_no_reinjection(self) -> None:
        """A value that looks like a placeholder is never expanded again."""
        assert (
            render_template(
                "{{SessionNameRaw}}",
                {"SessionNameRaw": "{{AccessKeyID}}", "AccessKeyID": "X"},
            )
            == "{{AccessKeyID}}"
        )

    @pytest.mark.parametrize("instance_id", ["i-0123abcd", "i-0123456789abcdef0"])
    def test_ec2_private_dns_name(self, instance_id: str) -> None:
        """{{EC2PrivateDNSName}} looks up the instance ID named by the session."""
        asked: list[str] = []

        def lookup(iid: str) -> str:
            asked.append(iid)
            return "ip-10-0-0-1.ec2.internal"

        entry = (
            f"arn:aws:iam::{ACCT}:role/Node",
            "system:node:{{EC2PrivateDNSName}}",
            ("system:nodes",),
        )
        user = map_identity(
            role_session("Node", instance_id),
            [mset(roles=[entry])],
            ec2_private_dns=lookup,
        )
        assert (
            user is not None and user.username == "system:node:ip-10-0-0-1.ec2.internal"
        )
        assert asked == [instance_id]

    @pytest.mark.parametrize(
        ("session", "dns", "configured"),
        [
            ("alice", "ip.internal", True),  # not an instance ID
            ("i-0123abc", "ip.internal", True),  # 7 characters
            ("i-0123abcde", "ip.internal", True),  # 9 characters
            ("i-0123abcd", "", True),  # lookup failed
            ("i-0123abcd", "ip.internal", False),  # no lookup configured
        ],
    )
    def test_ec2_template_failures_do_not_authenticate(
        self, session: str, dns: str, configured: bool
    ) -> None:
        """A session name that is no instance ID, or a failed lookup, gives no user."""
        entry = (
            f"arn:aws:iam::{ACCT}:role/Node",
            "system:node:{{EC2PrivateDNSName}}",
            (),
        )
        result = evaluate_mapping(
            role_session("Node", session),
            [mset(roles=[entry])],
            ec2_private_dns=(lambda _: dns) if configured else None,
        )
        assert result.user is None and result.outcome is MappingOutcome.TEMPLATE_ERROR

    def test_ec2_lookup_not_called_without_the_placeholder(self) -> None:
        """No {{EC2PrivateDNSName}}: the lookup is never called."""

        def lookup(_: str) -> str:
            raise AssertionError("called")

        user = map_identity(
            role_session("Node", "i-0123abcd"),
            [mset(roles=[(f"arn:aws:iam::{ACCT}:role/Node", "n", ())])],
            ec2_private_dns=lookup,
        )
        assert user is not None

    def test_empty_rendered_username_is_not_authenticated(self) -> None:
        """A username that renders empty (a user has no session name) gives no user."""
        result = evaluate_mapping(
            ident(f"arn:aws:iam::{ACCT}:user/alice"),
            [mset(users=[(f"arn:aws:iam::{ACCT}:user/alice", "{{SessionName}}", ())])],
        )
        assert result.user is None and result.outcome is MappingOutcome.TEMPLATE_ERROR


class TestReservedPrefixes:
    """A rendered username with a reserved prefix of its source is not authenticated."""

    AWS_AUTH: ClassVar[dict[str, str]] = {
        "mapRoles": f"- rolearn: arn:aws:iam::{ACCT}:role/Admin\n"
        "  username: system:admin\n  groups: [system:masters]\n"
    }

    def test_aws_auth_entry_rendering_system_admin_is_rejected(self) -> None:
        """Security history item 5: aws-auth + reserved system: -> not authenticated."""
        configmap = parse_aws_auth(
            self.AWS_AUTH,
            where="kube-system/aws-auth",
            reserved_prefixes=("system:", "eks:"),
        )
        result = evaluate_mapping(role_session("Admin"), [configmap])
        assert result.user is None
        assert (
            result.outcome is MappingOutcome.RESERVED_PREFIX
            and result.source == "configMap"
        )

    def test_same_entry_without_reserved_prefixes_maps(self) -> None:
        """Prefixes are per source: without a list the same entry authenticates."""
        configmap = parse_aws_auth(self.AWS_AUTH, where="kube-system/aws-auth")
        user = map_identity(role_session("Admin"), [configmap])
        assert user is not None and user.username == "system:admin"

    def test_rejection_does_not_fall_through(self) -> None:
        """The first matching entry decides: a later source is not tried."""
        first = mset(
            roles=[(f"arn:aws:iam::{ACCT}:role/Admin", "eks:{{SessionName}}", ())],
            reserved=("eks:",),
        )
        later = mset(
            roles=[(f"arn:aws:iam::{ACCT}:role/Admin", "admin", ())], source="crd"
        )
        assert map_identity(role_session("Admin"), [first, later]) is None

    def test_rendered_value_is_checked(self) -> None:
        """The check runs on the rendered username, not on the template."""
        entry = (f"arn:aws:iam::{ACCT}:role/Admin", "{{SessionNameRaw}}", ())
        sets = [mset(roles=[entry], reserved=("amazon",))]
        assert map_identity(role_session("Admin", "amazon-x"), sets) is None
        assert map_identity(role_session("Admin", "bob"), sets) is not None

    def test_groups_are_not_checked(self) -> None:
        """As in the reference, reserved prefixes apply to the username only."""
        entry = (f"arn:aws:iam::{ACCT}:role/Admin", "admin", ("system:masters",))
        user = map_identity(
            role_session("Admin"), [mset(roles=[entry], reserved=("system:",))]
        )
        assert user is not None and user.groups == ("system:masters",)


class TestKubernetesUser:
    """uid and extra of docs/operations.md."""

    def test_uid_and_extra(self) -> None:
        """uid = aws-iam-authenticator:<account>:<userId>; six one-element extras."""
        caller = role_session("Deploy", "bob")
        user = map_identity(
            caller, [mset(roles=[(f"arn:aws:iam::{ACCT}:role/Deploy", "d", ("g",))])]
        )
        assert user is not None
        assert user.uid == f"aws-iam-authenticator:{ACCT}:AROAEXAMPLE"
        assert user.to_json() == {
            "username": "d",
            "uid": f"aws-iam-authenticator:{ACCT}:AROAEXAMPLE",
            "groups": ["g"],
            "extra": {
                "arn": [caller.arn],
                "canonicalArn": [f"arn:aws:iam::{ACCT}:role/Deploy"],
                "sessionName": ["bob"],
                "accessKeyId": ["ASIAKEY"],
                "principalId": ["AROAEXAMPLE"],
                PRINCIPAL_ID_EXTRA: ["AROAEXAMPLE"],
            },
        }

    def test_user_without_session_has_empty_session_extra(self) -> None:
        """An IAM user's sessionName extra is [""]."""
        user = map_identity(
            ident(f"arn:aws:iam::{ACCT}:user/alice"), [mset(accounts=(ACCT,))]
        )
        assert user is not None and user.extra["sessionName"] == ("",)

    def test_federated_user_uid_differs_from_root(self) -> None:
        """Security history item 7: a federated user's uid is not the root user's."""
        sets = [mset(accounts=(ACCT,))]
        root = map_identity(ident(f"arn:aws:iam::{ACCT}:root", user_id=ACCT), sets)
        fed = map_identity(
            ident(f"arn:aws:sts::{ACCT}:federated-user/bob", user_id=f"{ACCT}:bob"),
            sets,
        )
        assert root is not None and fed is not None
        assert root.uid == f"aws-iam-authenticator:{ACCT}:{ACCT}"
        assert fed.uid == f"aws-iam-authenticator:{ACCT}:{ACCT}:bob"
        assert root.uid != fed.uid


class TestParseDocument:
    """mapRoles/mapUsers/mapAccounts documents (server config and mapping files)."""

    def test_valid_document(self) -> None:
        """Entries keep their ARN as written, in order, with where and kind."""
        doc = {
            "clusterID": "ignored",
            "mapRoles": [
                {
                    "rolearn": f"arn:aws:iam::{ACCT}:role/team/A",
                    "username": "a",
                    "groups": ["g1", "g2"],
                }
            ],
            "mapUsers": [{"userarn": f"arn:aws:iam::{ACCT}:user/u", "username": "u"}],
            "mapAccounts": [ACCT],
        }
        ms = parse_mappings(
            doc, source="inline", where="cfg.yaml", reserved_prefixes=("eks:",)
        )
        assert ms.roles == (
            MappingEntry(
                f"arn:aws:iam::{ACCT}:role/team/A",
                "a",
                ("g1", "g2"),
                "role",
                "cfg.yaml: mapRoles[0]",
            ),
        )
        assert ms.users[0].groups == () and ms.accounts == (ACCT,)
        assert (
            ms.source == "inline"
            and ms.reserved_prefixes == ("eks:",)
            and ms.entries == 3
        )

    def test_every_problem_is_listed_with_where(self) -> None:
        """One ConfigError names every problem and where it is."""
        doc = {
            "mapRoles": [
                {"rolearn": "not-an-arn", "username": "a"},
                {"rolearn": f"arn:aws:iam::{ACCT}:role/B"},
                {
                    "rolearn": f"arn:aws:iam::{ACCT}:role/C",
                    "username": "c",
                    "groups": "admins",
                },
                {
                    "rolearn": f"arn:aws:iam::{ACCT}:role/D",
                    "username": "d",
                    "usrname": "typo",
                },
                {
                    "roleArn": f"arn:aws:iam::{ACCT}:role/E",
                    "rolearn": f"arn:aws:iam::{ACCT}:role/E",
                    "username": "e",
                },
            ],
            "mapUsers": "nope",
            "mapAccounts": [1234, "12345678901x"],
        }
        problems = validate_mappings(doc, where="f.yaml")
        wheres = [p.where for p in problems]
        assert wheres == [
            "f.yaml: mapRoles[0].rolearn",
            "f.yaml: mapRoles[1].username",
            "f.yaml: mapRoles[2].groups",
            "f.yaml: mapRoles[3].usrname",
            "f.yaml: mapRoles[4].rolearn",
            "f.yaml: mapUsers",
            "f.yaml: mapAccounts[0]",
            "f.yaml: mapAccounts[1]",
        ]
        assert "leading zeros" in problems[6].message
        with pytest.raises(ConfigError) as err:
            parse_mappings(doc, source="file", where="f.yaml")
        for where in wheres:
            assert where in str(err.value)

    @pytest.mark.parametrize(
        ("value", "ok"),
        [
            (123456789012, True),  # a 12-digit int is exactly what was written
            (1402433619, False),  # what YAML 1.1 makes of unquoted 012345670123 (octal)
            ("012345678901", True),
            (True, False),
            ("1234", False),
        ],
    )
    def test_account_id_values(self, value: object, ok: bool) -> None:
        """Account IDs are 12 digits of text; ints only when nothing was lost."""
        problems = validate_mappings({"mapAccounts": [value]}, where="f")
        assert (not problems) is ok

    def test_unsupported_reference_keys_are_named(self) -> None:
        """userid entries say they are not supported; an sso entry needs accountID."""
        problems = validate_mappings(
            {
                "mapRoles": [
                    {"sso": {"permissionSetName": "A"}, "username": "a"},
                    {
                        "rolearn": f"arn:aws:iam::{ACCT}:role/r",
                        "username": "u",
                        "userid": "x",
                    },
                ]
            },
            where="f",
        )
        assert [p.where for p in problems] == [
            "f: mapRoles[0].sso.accountID",
            "f: mapRoles[1].userid",
        ]
        assert "'userid' (DynamicFile) is not supported" in problems[1].message


class TestYAMLText:
    """YAML read with every scalar kept as text."""

    def test_unquoted_account_ids_keep_leading_zeros(self) -> None:
        """000123456701 (octal to PyYAML) stays the text it was written as."""
        ms = parse_mapping_text(
            "mapAccounts:\n  - 000123456701\n  - 012345678912\n",
            source="file",
            where="f",
        )
        assert ms.accounts == ("000123456701", "012345678912")

    def test_numeric_scalars_are_marked(self) -> None:
        """Plain scalars YAML 1.1 reads as numbers are NumericText; quoted ones not."""
        (doc,) = load_yaml_documents(
            "a: 0123\nb: '0123'\nc: ~\nd: true\n", scalars="text"
        )
        assert isinstance(doc, dict)
        assert isinstance(doc["a"], NumericText) and not isinstance(
            doc["b"], NumericText
        )
        assert doc["c"] is None and doc["d"] == "true"

    def test_duplicate_keys_are_an_error(self) -> None:
        """PyYAML keeps the last of two equal keys silently; we refuse."""
        with pytest.raises(ConfigError, match="duplicate key 'mapRoles'"):
            load_yaml_documents("mapRoles: []\nmapRoles: []\n", scalars="text")

    def test_report_lists_numeric_accounts(self) -> None:
        """inspect_mapping_text reports where account IDs were unquoted numbers."""
        report = inspect_mapping_text(
            "mapAccounts: [111122223333, '444455556666']\n", source="file", where="f"
        )
        assert report.numeric_accounts == ("f: mapAccounts[0]",) and not report.problems


class TestAWSAuth:
    """The aws-auth ConfigMap's data (docs/migrating.md)."""

    @pytest.mark.parametrize("key", ["rolearn", "roleARN", "RoLeArN"])
    def test_entry_keys_ignore_case(self, key: str) -> None:
        """rolearn, roleARN and RoLeArN all work."""
        ms = parse_aws_auth(
            {"mapRoles": f"- {key}: arn:aws:iam::{ACCT}:role/A\n  UserName: a\n"},
            where="cm",
        )
        assert (
            ms.roles[0].arn == f"arn:aws:iam::{ACCT}:role/A"
            and ms.roles[0].username == "a"
        )

    @pytest.mark.parametrize("empty", ["", "  \n", '""', "''", "``"])
    def test_empty_values(self, empty: str) -> None:
        """Blank, "", '' and two backticks count as empty."""
        ms = parse_aws_auth(
            {"mapRoles": empty, "mapUsers": empty, "mapAccounts": empty}, where="cm"
        )
        assert ms.entries == 0

    def test_accounts_stay_text(self) -> None:
        """Unquoted account IDs inside the string keep their leading zeros."""
        ms = parse_aws_auth(
            {"mapAccounts": '- 000123456701\n- "444455556666"\n'}, where="cm"
        )
        assert ms.accounts == ("000123456701", "444455556666")

    def test_every_problem_with_where(self) -> None:
        """A broken edit reports each problem under data.<key>[i]."""
        data = {
            "mapRoles": "- rolearn: arn:aws:iam::1:role/A\n  username: a\n",
            "mapUsers": "- userarn: [unclosed\n",
            "mapAccounts": "- 12\n",
        }
        problems = validate_aws_auth(data, where="kube-system/aws-auth")
        assert [p.where for p in problems] == [
            "kube-system/aws-auth: data.mapRoles[0].rolearn",
            "kube-system/aws-auth: data.mapUsers",
            "kube-system/aws-auth: data.mapAccounts[0]",
        ]

    def test_nested_yaml_instead_of_string(self) -> None:
        """data values must be strings, not nested YAML."""
        problems = validate_aws_auth({"mapRoles": [{"rolearn": "x"}]}, where="cm")
        assert problems and "YAML string" in problems[0].message

    def test_configmap_document_detected(self) -> None:
        """A kind: ConfigMap file is read through its data."""
        text = (
            "apiVersion: v1\nkind: ConfigMap\n"
            "metadata: {name: aws-auth, namespace: kube-system}\n"
            "data:\n  mapRoles: |\n"
            "    - rolearn: arn:aws:iam::111122223333:role/A\n      username: a\n"
        )
        ms = parse_mapping_text(text, source="file", where="cm.yaml")
        assert [e.username for e in ms.roles] == ["a"]


class TestCRD:
    """IAMIdentityMapping objects."""

    def test_roles_and_users_split_by_arn(self) -> None:
        """Role ARNs become role entries, the rest user entries."""
        items: list[Mapping[str, object]] = [
            {
                "metadata": {"name": "a"},
                "spec": {
                    "arn": f"arn:aws:iam::{ACCT}:role/x/A",
                    "username": "a",
                    "groups": ["g"],
                },
            },
            {
                "metadata": {"name": "b"},
                "spec": {"arn": f"arn:aws:iam::{ACCT}:user/b", "username": "b"},
            },
        ]
        ms = parse_identity_mappings(items, where="iamidentitymappings")
        assert [e.username for e in ms.roles] == ["a"] and [
            e.username for e in ms.users
        ] == ["b"]
        assert ms.source == "crd" and ms.accounts == ()
        assert map_identity(role_session("A"), [ms]) is not None

    def test_problems_name_the_object(self) -> None:
        """A bad object is named by metadata.name."""
        items = [
            {
                "metadata": {"name": "bad"},
                "spec": {"arn": "arn:aws:s3:::bucket", "username": "x"},
            }
        ]
        with pytest.raises(ConfigError, match=r"iamidentitymapping/bad\.spec\.arn"):
            parse_identity_mappings(items, where="iamidentitymappings")

    def test_crd_documents_in_a_file(self) -> None:
        """kind: IAMIdentityMapping documents in a file are read as CRD objects."""
        text = (
            "apiVersion: iamauthenticator.k8s.aws/v1alpha1\nkind: IAMIdentityMapping\n"
            "metadata: {name: a}\n"
            "spec: {arn: 'arn:aws:iam::111122223333:user/a', username: a}\n"
        )
        ms = parse_mapping_text(text, source="file", where="crd.yaml")
        assert [e.username for e in ms.users] == ["a"]


_NAME = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+=,.@_-",
    min_size=1,
    max_size=64,
)


class TestMatchingProperties:
    """Path stripping and case folding, for any role name and path."""

    @settings(max_examples=60, deadline=None)
    @given(
        name=_NAME,
        path=st.lists(_NAME, max_size=3),
        flips=st.lists(st.booleans(), min_size=64, max_size=64),
    )
    def test_any_path_and_case_matches_the_session(
        self, name: str, path: list[str], flips: list[bool]
    ) -> None:
        """role/<path>/<NaMe> written in any case maps every session of the role."""
        written = "".join(
            c.swapcase() if f else c for c, f in zip(name, flips, strict=False)
        )
        arn = f"arn:aws:iam::{ACCT}:role/" + "".join(p + "/" for p in path) + written
        user = map_identity(role_session(name), [mset(roles=[(arn, "u", ())])])
        assert user is not None

    @settings(max_examples=60, deadline=None)
    @given(a=_NAME, b=_NAME)
    def test_different_names_never_match(self, a: str, b: str) -> None:
        """Two role names that differ ignoring case never map each other."""
        assume(a.lower() != b.lower())
        arn = f"arn:aws:iam::{ACCT}:role/{a}"
        assert map_identity(role_session(b), [mset(roles=[(arn, "u", ())])]) is None


class TestLargeTableParsing:
    """The parser's once-computed match keys and shared values (100k tables)."""

    ARNS: ClassVar[list[str]] = [
        f"arn:aws:iam::{ACCT}:role/Deploy",
        f"arn:aws:iam::{ACCT}:role/team/a/Deploy",
        f"arn:aws:iam::{ACCT}:role/Team/DEPLOY",
        f"arn:aws:iam::{ACCT}:user/alice",
        f"arn:aws:iam::{ACCT}:user/path/Alice",
        f"arn:aws:iam::{ACCT}:root",
        f"arn:aws-cn:iam::{ACCT}:role/p/q",
        f"arn:aws:sts::{ACCT}:federated-user/bob",
        f"arn:aws:sts::{ACCT}:assumed-role/Deploy/session",
    ]

    @pytest.mark.parametrize("arn", ARNS)
    def test_precomputed_key_is_entry_match_key(self, arn: str) -> None:
        """Each parsed entry's stored key is what entry_match_key computes."""
        mapping_set = parse_mappings(
            {"mapRoles": [{"rolearn": arn, "username": "u"}]},
            source="file",
            where="t",
        )
        (entry,) = mapping_set.roles
        assert (entry.match_key or None) == entry_match_key(arn)

    def test_equal_templates_and_groups_are_shared(self) -> None:
        """Equal usernames and group lists are one object each (memory at 100k)."""
        doc = {
            "mapRoles": [
                {
                    "rolearn": f"arn:aws:iam::{ACCT}:role/r{i}",
                    "username": "x-" + "{{SessionName}}",
                    "groups": ["a", "b"],
                }
                for i in range(3)
            ]
        }
        roles = parse_mappings(doc, source="file", where="t").roles
        assert roles[0].groups is roles[2].groups
        assert roles[0].username is roles[2].username
        assert roles[0] == MappingEntry(
            roles[0].arn, "x-{{SessionName}}", ("a", "b"), "role", roles[0].where
        )


# ARN-ish text: the fast check's alphabet edges (path and name characters,
# colons, slashes, case, partitions, services) so both checks are exercised.
_ARN_PIECES = st.sampled_from(
    [
        "arn",
        "aws",
        "aws-cn",
        "aws-us-gov",
        "awsx",
        "iam",
        "sts",
        "s3",
        ":",
        "::",
        "/",
        "role",
        "user",
        "root",
        "assumed-role",
        "federated-user",
        ACCT,
        "12345678901",
        "a",
        "Z",
        "_+=,.@-",
        "~",
        "!",
        " ",
        "\n",
        "é",
        "r:x",
    ]
)


class TestFastEntryChecks:
    """The parser's quick paths give what the full checks give."""

    @given(pieces=st.lists(_ARN_PIECES, max_size=12))
    @settings(max_examples=400, deadline=None)
    def test_any_text_as_rolearn(self, pieces: list[str]) -> None:
        """Accepted or refused, and the match key, exactly as entry_match_key says."""
        arn = "".join(pieces)
        for text in (
            arn,
            f"arn:aws:iam::{ACCT}:{arn}",
            f"arn:aws:iam::{ACCT}:role/{arn}",
        ):
            doc = {"mapRoles": [{"rolearn": text, "username": "u"}]}
            try:
                canonical: str | None = canonicalize_arn(text)
            except InvalidARNError:
                canonical = None
            if canonical is None:
                with pytest.raises(ConfigError):
                    parse_mappings(doc, source="file", where="t")
                continue
            (entry,) = parse_mappings(doc, source="file", where="t").roles
            assert (entry.match_key or None) == entry_match_key(text)

    def test_key_spellings_take_the_full_check(self) -> None:
        """Mixed-case keys are read, a duplicate by case and an unknown key refused."""
        arn = f"arn:aws:iam::{ACCT}:role/r"
        ok = parse_mappings(
            {"mapRoles": [{"roleARN": arn, "UserName": "u", "Groups": ["g"]}]},
            source="file",
            where="t",
        )
        assert ok.roles[0].groups == ("g",)
        with pytest.raises(ConfigError, match="duplicate key"):
            parse_mappings(
                {"mapRoles": [{"rolearn": arn, "RoleArn": arn, "username": "u"}]},
                source="file",
                where="t",
            )
        with pytest.raises(ConfigError, match="unknown key"):
            parse_mappings(
                {"mapRoles": [{"rolearn": arn, "username": "u", "group": ["g"]}]},
                source="file",
                where="t",
            )
        with pytest.raises(ConfigError, match="non-empty group name"):
            parse_mappings(
                {"mapRoles": [{"rolearn": arn, "username": "u", "groups": ["", 1]}]},
                source="file",
                where="t",
            )


def crd_object(
    name: str, arn: str, username: str, version: str = "1"
) -> dict[str, object]:
    """An IAMIdentityMapping object as the API server lists it."""
    return {
        "metadata": {"name": name, "resourceVersion": version},
        "spec": {"arn": arn, "username": username, "groups": ["g"]},
    }


class TestIdentityMappingTable:
    """Objects parsed one at a time give what parsing them all at once gives."""

    def objects(self) -> dict[str, dict[str, object]]:
        """Roles, users, an sso object, out of name order."""
        return {
            "zz": crd_object("zz", f"arn:aws:iam::{ACCT}:role/p/Z", "z"),
            "aa": crd_object("aa", f"arn:aws:iam::{ACCT}:user/a", "a"),
            "mm": crd_object("mm", f"arn:aws:iam::{ACCT}:role/M", "m"),
            "sso": {
                "metadata": {"name": "sso", "resourceVersion": "3"},
                "spec": {
                    "sso": {"permissionSetName": "Admin", "accountID": ACCT},
                    "username": "admin",
                },
            },
        }

    def table(
        self, objects: Mapping[str, Mapping[str, object]]
    ) -> IdentityMappingTable:
        """A table holding ``objects``."""
        table = IdentityMappingTable(
            where="iamidentitymappings", reserved_prefixes=("x-",)
        )
        for name, obj in objects.items():
            table.put(name, obj)
        return table

    def whole(self, objects: Mapping[str, Mapping[str, object]]) -> MappingSet:
        """parse_identity_mappings over the objects in name order."""
        return parse_identity_mappings(
            [objects[n] for n in sorted(objects)],
            where="iamidentitymappings",
            reserved_prefixes=("x-",),
        )

    def test_same_set_as_one_parse(self) -> None:
        """Entries, order, keys and prefixes equal the one-shot parse."""
        objects = self.objects()
        built, whole = self.table(objects).build(), self.whole(objects)
        assert built == whole
        assert [e.match_key for e in built.roles] == [e.match_key for e in whole.roles]

    def test_same_problems_as_one_parse(self) -> None:
        """Invalid objects give the one-shot parse's message, in name order."""
        objects = self.objects()
        objects["bb"] = crd_object("bb", "arn:aws:s3:::bucket", "b")
        objects["ab"] = crd_object("ab", f"arn:aws:iam::{ACCT}:role/R", "")
        with pytest.raises(ConfigError) as whole:
            self.whole(objects)
        with pytest.raises(ConfigError) as built:
            self.table(objects).build()
        assert str(built.value) == str(whole.value)

    def test_versions_changes_and_removals(self) -> None:
        """A known version is not parsed again; a new one is; removed objects go."""
        objects = self.objects()
        table = self.table(objects)
        first = table.build().find_entry(f"arn:aws:iam::{ACCT}:role/m")
        table.put("mm", crd_object("mm", f"arn:aws:iam::{ACCT}:role/M", "ignored"))
        assert table.build().find_entry(f"arn:aws:iam::{ACCT}:role/m") is first
        table.put("mm", crd_object("mm", f"arn:aws:iam::{ACCT}:role/M", "m2", "2"))
        changed = table.build().find_entry(f"arn:aws:iam::{ACCT}:role/m")
        assert changed is not None and changed.username == "m2"
        table.remove("aa")
        table.keep_only(["mm", "zz", "aa"])
        assert len(table) == 2
        assert [e.username for e in table.build().roles] == ["m2", "z"]


# Entry ARNs that collide after path stripping and case folding, never match
# (sessions, malformed), or are sso patterns: what the packed index must get
# exactly as the dict index does.
_PACKED_ARNS = st.sampled_from(
    [
        f"arn:aws:iam::{ACCT}:role/Deploy",
        f"arn:aws:iam::{ACCT}:role/team/Deploy",
        f"arn:aws:iam::{ACCT}:role/deploy",
        f"arn:aws:iam::{ACCT}:role/Other",
        f"arn:aws:iam::{ACCT}:user/alice",
        f"arn:aws:iam::{ACCT}:user/ops/alice",
        f"arn:aws-cn:iam::{ACCT}:role/Deploy",
        f"arn:aws:sts::{ACCT}:assumed-role/Deploy/s",
        "not-an-arn",
        "sso",
    ]
)


def _entry(arn: str, n: int, kind: str) -> MappingEntry:
    if arn == "sso":
        sso = SSOMatch("Admin", ACCT)
        return MappingEntry(sso.arn_pattern, f"u{n}", ("g",), kind, f"w{n}", sso)
    return MappingEntry(arn, f"u{n}-é", (f"g{n}", "x"), kind, f"m.yaml: [{n}]")


class TestPackedEntries:
    """The packed table a child process sends serves what the objects serve."""

    @given(arns=st.lists(_PACKED_ARNS, max_size=40))
    def test_lookups_and_order_match_the_dict_index(self, arns: list[str]) -> None:
        """Same entries in order, the same winner for every key, no extra hits."""
        entries = tuple(_entry(a, n, "role") for n, a in enumerate(arns))
        packed = PackedEntries(PackedEntries.pack(entries))
        plain = MappingSet("file", entries, (), ())
        served = MappingSet("file", packed, PackedEntries(PackedEntries.pack(())), ())
        assert len(packed) == len(entries) and tuple(packed) == entries
        assert packed == entries and served == plain
        keys = {entry_match_key(a) for a in arns} | {"", "arn:aws:iam::1:role/x"}
        keys |= {f"arn:aws:iam::{ACCT}:role/awsreservedsso_admin_1"}
        for key in keys - {None}:
            assert key is not None
            assert served.find_entry(key) == plain.find_entry(key)
        if entries:
            assert packed[-1] == entries[-1] and packed[1:3] == entries[1:3]

    def test_a_large_table_has_every_key(self) -> None:
        """Ten thousand keys in a table of a power-of-two size, all found."""
        entries = tuple(
            MappingEntry(f"arn:aws:iam::{ACCT}:role/r{i}", f"u{i}", (), "user")
            for i in range(10_000)
        )
        packed = PackedEntries(PackedEntries.pack(entries))
        for i in range(0, 10_000, 7):
            found = packed.get(f"arn:aws:iam::{ACCT}:role/r{i}")
            assert found is not None and found.username == f"u{i}"
        assert packed.get(f"arn:aws:iam::{ACCT}:role/r10000") is None

    def test_buffers_that_do_not_fit_are_refused(self) -> None:
        """Wrong count, a cut buffer or a slot table that is no power of two."""
        buffers = PackedEntries.pack((_entry("sso", 0, "role"),))
        with pytest.raises(ValueError, match="6 buffers"):
            PackedEntries(buffers[:5])
        for i, damaged in ((0, buffers[0][:-1]), (4, buffers[4] * 3), (5, b"\1" * 8)):
            broken = list(buffers)
            broken[i] = damaged
            with pytest.raises(ValueError, match="do not fit"):
                PackedEntries(broken)
        with pytest.raises(IndexError):
            PackedEntries(buffers)[1]


# Specs around the quick path's edges: the usual object (a user or role ARN,
# text, plain groups), then up to two fields replaced by odd values (session
# and odd ARNs, empty or non-text text, bad group members, sso beside an arn)
# and some removed.
_KEYS = st.sampled_from(["arn", "username", "groups", "sso"])
_ODD_VALUES = st.sampled_from(
    [
        f"arn:aws:sts::{ACCT}:assumed-role/R/s",
        f"arn:aws:iam::{ACCT}:root",
        "arn:aws:s3:::bucket",
        "name",
        "",
        None,
        7,
        [],
        ["g", ""],
        ["g", 3],
        "g",
        {"permissionSetName": "Admin", "accountID": ACCT},
    ]
)
_USUAL = st.fixed_dictionaries(
    {
        "arn": st.sampled_from(
            [
                f"arn:aws:iam::{ACCT}:role/team/R",
                f"arn:aws:iam::{ACCT}:user/u",
                f"arn:aws-cn:iam::{ACCT}:role/R",
            ]
        ),
        "username": st.sampled_from(["u-{{SessionName}}", "u"]),
    },
    optional={"groups": st.sampled_from([["g"], ["g", "h"], []])},
)
_SPECS = st.builds(
    lambda usual, odd, gone: {
        k: v for k, v in {**usual, **odd}.items() if k not in gone
    },
    _USUAL,
    st.dictionaries(_KEYS, _ODD_VALUES, max_size=2),
    st.sets(_KEYS, max_size=1),
)


class TestIdentityMappingQuickPath:
    """put_many's quick path for the usual object gives what the full checks give."""

    @given(specs=st.lists(_SPECS, max_size=6))
    @settings(max_examples=300)
    def test_same_entries_and_problems(self, specs: list[dict[str, object]]) -> None:
        """Each spec as a dict (quick path) and as a read-only mapping (full checks)."""
        from types import MappingProxyType

        def built(wrap: Callable[[dict[str, object]], object]) -> str | MappingSet:
            table = IdentityMappingTable(where="iamidentitymappings")
            table.put_many(
                (
                    f"m{i}",
                    {
                        "metadata": {"name": f"m{i}", "resourceVersion": "1"},
                        "spec": wrap(s),
                    },
                )
                for i, s in enumerate(specs)
            )
            try:
                return table.build()
            except ConfigError as exc:
                return str(exc)

        quick, full = built(lambda s: s), built(MappingProxyType)
        assert quick == full
        if isinstance(quick, MappingSet) and isinstance(full, MappingSet):
            assert [e.match_key for e in (*quick.roles, *quick.users)] == [
                e.match_key for e in (*full.roles, *full.users)
            ]
