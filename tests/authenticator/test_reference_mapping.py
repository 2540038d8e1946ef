"""aws-iam-authenticator's mapper and server tests, restated for kubeiam's mapping core.

Each case cites the reference test it restates (kubernetes-sigs/aws-iam-authenticator:
``pkg/mapper/file/mapper_test.go``, ``pkg/config/mapper_test.go``,
``pkg/mapper/configmap/configmap_test.go`` and ``yaml_test.go``,
``pkg/mapper/crd/mapper_test.go``, ``pkg/server/server_test.go``) or the security
advisory it comes from (docs/threat-model.md). Outcomes are the
reference's, except where kubeiam's contract differs on purpose (docs/configuration.md,
docs/token-format.md); those cases say why. Two differences recur:

* The reference tests use the 13-digit account ``0123456789012``; AWS account IDs
  are 12 digits and kubeiam only accepts those (docs/configuration.md), so the restated
  cases use ``012345678901``.
* ``sso:`` role entries (a reference feature gate) are not part of kubeiam's
  formats (docs/configuration.md): a document with one is refused as a whole,
  naming the entry; the role ARN of the SSO role matches its sessions instead.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import pytest

from authenticator.arn import canonicalize_arn
from authenticator.errors import ConfigError
from authenticator.identity import Identity
from authenticator.mapping import (
    KubernetesUser,
    MappingOutcome,
    MappingResult,
    MappingSet,
    entry_match_key,
    evaluate_mapping,
    inspect_mapping_text,
    parse_aws_auth,
    parse_identity_mappings,
    parse_mapping_text,
    parse_mappings,
)

# server_test.go uses 0123456789012 (13 digits); see the module docstring.
ACCT = "012345678901"
PRINCIPAL_KEY = "sigs.k8s.io/aws-iam-authenticator/principalId"


def ident(
    arn: str,
    *,
    user_id: str = "AIDAEXAMPLE",
    session: str = "",
    key: str = "",
    account: str | None = None,
) -> Identity:
    """A verified identity as the verifier would produce it."""
    return Identity(
        arn=arn,
        canonical_arn=canonicalize_arn(arn),
        account_id=account if account is not None else arn.split(":")[4],
        user_id=user_id,
        session_name=session,
        access_key_id=key,
    )


def session_of(
    role_arn: str, session: str = "s", role_id: str = "AROAEXAMPLE"
) -> Identity:
    """An assumed-role session of an IAM role (path dropped, as STS does)."""
    _, partition, _, _, account, resource = role_arn.split(":", 5)
    name = resource.split("/")[-1]
    return ident(
        f"arn:{partition}:sts::{account}:assumed-role/{name}/{session}",
        user_id=role_id,
        session=session,
    )


def file_set(doc: Mapping[str, object], *, reserved: Sequence[str] = ()) -> MappingSet:
    """A mapRoles/mapUsers/mapAccounts document as the file source parses it."""
    return parse_mappings(
        doc, source="file", where="mapping.yaml", reserved_prefixes=reserved
    )


def crd_set(
    *specs: tuple[str, str, Sequence[str]], reserved: Sequence[str] = ()
) -> MappingSet:
    """IAMIdentityMapping objects (arn, username, groups) for the crd source."""
    items = [
        {
            "apiVersion": "iamauthenticator.k8s.aws/v1alpha1",
            "kind": "IAMIdentityMapping",
            "metadata": {"name": f"test-iam-identity-mapping-{i}"},
            "spec": {"arn": arn, "username": username, "groups": list(groups)},
        }
        for i, (arn, username, groups) in enumerate(specs)
    ]
    return parse_identity_mappings(items, where="crd", reserved_prefixes=reserved)


def role_doc(arn: str, username: str, groups: Sequence[str] = ()) -> dict[str, object]:
    """A document with one mapRoles entry."""
    return {
        "mapRoles": [{"rolearn": arn, "username": username, "groups": list(groups)}]
    }


def user_doc(arn: str, username: str, groups: Sequence[str] = ()) -> dict[str, object]:
    """A document with one mapUsers entry."""
    return {
        "mapUsers": [{"userarn": arn, "username": username, "groups": list(groups)}]
    }


def mapped(
    identity: Identity,
    *sources: MappingSet,
    ec2: Callable[[str], str] | None = None,
) -> MappingResult:
    """evaluate_mapping over the sources in order."""
    return evaluate_mapping(identity, list(sources), ec2_private_dns=ec2)


def review_user(
    identity: Identity, username: str, groups: Sequence[str]
) -> dict[str, object]:
    """server_test.go tokenReview(...).status.user, plus kubeiam's extra key."""
    return {
        "username": username,
        "uid": f"aws-iam-authenticator:{identity.account_id}:{identity.user_id}",
        "groups": list(groups),
        "extra": {
            "arn": [identity.arn],
            "canonicalArn": [identity.canonical_arn],
            "sessionName": [identity.session_name],
            "accessKeyId": [identity.access_key_id],
            "principalId": [identity.user_id],
            # docs/operations.md adds the reference's newer namespaced key
            PRINCIPAL_KEY: [identity.user_id],
        },
    }


def user_json(result: MappingResult) -> dict[str, object]:
    """The TokenReview user of a mapped result."""
    assert result.outcome is MappingOutcome.MAPPED, result.detail
    assert isinstance(result.user, KubernetesUser)
    return result.user.to_json()


# ----------------------------------------------------- pkg/mapper/file/mapper_test.go

FILE_ACCT = "012345678910"
FILE_DOC: dict[str, object] = {
    "mapRoles": [
        {
            "rolearn": f"arn:aws:iam::{FILE_ACCT}:role/test-role",
            "username": "shreyas",
            "groups": ["system:masters"],
        }
    ],
    "mapUsers": [
        {
            "userarn": f"arn:aws:iam::{FILE_ACCT}:user/donald",
            "username": "donald",
            "groups": ["system:masters"],
        }
    ],
    "mapAccounts": ["000000000000"],
}


class TestFileMapper:
    """file/mapper_test.go TestNewFileMapper and TestMap."""

    def test_new_file_mapper(self) -> None:
        """The config becomes one role, one user and one account, as written."""
        mapping = file_set(FILE_DOC)
        assert [(e.arn, e.username, e.groups) for e in mapping.roles] == [
            (f"arn:aws:iam::{FILE_ACCT}:role/test-role", "shreyas", ("system:masters",))
        ]
        assert [(e.arn, e.username, e.groups) for e in mapping.users] == [
            (f"arn:aws:iam::{FILE_ACCT}:user/donald", "donald", ("system:masters",))
        ]
        assert mapping.accounts == ("000000000000",)

    @pytest.mark.parametrize(
        ("identity", "username"),
        [
            (ident(f"arn:aws:iam::{FILE_ACCT}:role/test-role"), "shreyas"),
            (session_of(f"arn:aws:iam::{FILE_ACCT}:role/test-role"), "shreyas"),
            (ident(f"arn:aws:iam::{FILE_ACCT}:user/donald"), "donald"),
        ],
    )
    def test_map(self, identity: Identity, username: str) -> None:
        """TestMap: the role and the user map to their usernames and groups."""
        result = mapped(identity, file_set(FILE_DOC))
        assert user_json(result)["username"] == username
        assert user_json(result)["groups"] == ["system:masters"]

    def test_sso_entry_maps_the_permission_sets_roles(self) -> None:
        """TestNewFileMapper's sso entry matches AWSReservedSSO_<set>_* roles (7.1)."""
        doc = {
            "mapRoles": [
                {
                    "sso": {
                        "permissionSetName": "CookieCutterPermissions",
                        "accountID": FILE_ACCT,
                    },
                    "username": "cookie-cutter",
                    "groups": ["system:masters"],
                }
            ]
        }
        mapping = file_set(doc)
        (entry,) = mapping.roles
        assert entry.arn == (
            f"arn:aws:iam::{FILE_ACCT}:role/AWSReservedSSO_CookieCutterPermissions_*"
        )
        for path in (
            "aws-reserved/sso.amazonaws.com/",
            "aws-reserved/sso.amazonaws.com/eu-west-1/",
        ):
            role = (
                f"arn:aws:iam::{FILE_ACCT}:role/{path}"
                "AWSReservedSSO_CookieCutterPermissions_0123456789abcdef"
            )
            result = mapped(session_of(role, "jdoe@example.com"), mapping)
            assert user_json(result)["username"] == "cookie-cutter"
        for other in (
            f"arn:aws:iam::{FILE_ACCT}:role/AWSReservedSSO_Billing_0123456789abcdef",
            f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_CookieCutterPermissions_01",
            f"arn:aws-cn:iam::{FILE_ACCT}:role/AWSReservedSSO_CookieCutterPermissions_01",
        ):
            assert (
                mapped(session_of(other), mapping).outcome is MappingOutcome.NOT_MAPPED
            )

    def test_sso_in_an_identity_mapping_object(self) -> None:
        """An IAMIdentityMapping with spec.sso maps the permission set's sessions."""
        item = {
            "apiVersion": "iamauthenticator.k8s.aws/v1alpha1",
            "kind": "IAMIdentityMapping",
            "metadata": {"name": "sso-admins"},
            "spec": {
                "sso": {"permissionSetName": "Admin", "accountID": FILE_ACCT},
                "username": "sso:{{SessionName}}",
                "groups": ["admins"],
            },
        }
        mapping = parse_identity_mappings([item], where="crd")
        role = f"arn:aws:iam::{FILE_ACCT}:role/AWSReservedSSO_Admin_77aa"
        result = mapped(session_of(role, "bob"), mapping)
        assert user_json(result)["username"] == "sso:bob"
        both = {**item, "spec": {**item["spec"], "arn": role}}  # type: ignore[dict-item]
        with pytest.raises(ConfigError, match="either arn or sso"):
            parse_identity_mappings([both], where="crd")

    def test_sso_partition_is_honoured(self) -> None:
        """An explicit partition is used (the reference leaves it empty: a bug, 7.1)."""
        doc = {
            "mapRoles": [
                {
                    "sso": {
                        "permissionSetName": "Admin",
                        "accountID": FILE_ACCT,
                        "partition": "aws-us-gov",
                    },
                    "username": "gov-admin",
                }
            ]
        }
        role = (
            f"arn:aws-us-gov:iam::{FILE_ACCT}:role/aws-reserved/sso.amazonaws.com/"
            "us-gov-west-1/AWSReservedSSO_Admin_00ff"
        )
        assert (
            user_json(mapped(session_of(role), file_set(doc)))["username"]
            == "gov-admin"
        )

    @pytest.mark.parametrize(
        ("sso", "where"),
        [
            ({"permissionSetName": "A", "accountID": "123"}, "sso.accountID"),
            (
                {"permissionSetName": "bad name", "accountID": FILE_ACCT},
                "sso.permissionSetName",
            ),
            (
                {
                    "permissionSetName": "A",
                    "accountID": FILE_ACCT,
                    "partition": "azure",
                },
                "sso.partition",
            ),
            (
                {"permissionSetName": "A", "accountID": FILE_ACCT, "region": "x"},
                "sso.region",
            ),
        ],
    )
    def test_bad_sso_entries_are_refused(self, sso: dict[str, str], where: str) -> None:
        """Each bad sso field is named with its whole path."""
        with pytest.raises(ConfigError, match=rf"mapRoles\[0\]\.{where}"):
            file_set({"mapRoles": [{"sso": sso, "username": "u"}]})

    def test_sso_role_by_its_arn(self) -> None:
        """TestMap's SSO case: the SSO role's IAM ARN (path ignored) maps its sessions.

        The reference's sso matcher accepts any ``AWSReservedSSO_<set>_*`` role;
        kubeiam matches the one role named (paths ignored, docs/configuration.md).
        """
        role = (
            f"arn:aws:iam::{FILE_ACCT}:role/aws-reserved/sso.amazonaws.com/"
            "AWSReservedSSO_CookieCutterPermissions_123123123"
        )
        mapping = file_set(role_doc(role, "cookie-cutter", ["system:masters"]))
        caller = session_of(role, "jdoe@example.com")
        assert user_json(mapped(caller, mapping))["username"] == "cookie-cutter"
        other = session_of(
            f"arn:aws:iam::{FILE_ACCT}:role/AWSReservedSSO_Billing_hijklmn"
        )
        assert mapped(other, mapping).outcome is MappingOutcome.NOT_MAPPED

    def test_unquoted_zero_account_stays_text(self) -> None:
        """Unquoted mapAccounts 000000000000 stays text (the reference yields "0")."""
        mapping = parse_mapping_text(
            "mapAccounts:\n- 000000000000\n", source="file", where="mapping.yaml"
        )
        assert mapping.accounts == ("000000000000",)
        caller = ident("arn:aws:iam::000000000000:user/alice")
        result = mapped(caller, mapping)
        assert user_json(result)["username"] == "arn:aws:iam::000000000000:user/alice"


# -------------------------------------------------------- pkg/config/mapper_test.go


class TestConfigMapper:
    """config/mapper_test.go: TestRoleARNMapping, TestUserARNMapping, TestSSORole..."""

    @pytest.mark.parametrize(
        ("caller", "matches"),
        [
            (f"arn:aws:iam::{ACCT}:role/KubeAdmin", True),
            (f"arn:aws:iam::{ACCT}:role/kubeadmin", True),  # Key() lower-cases
            (f"arn:aws:iam::{ACCT}:role/notKubeAdmin", False),
        ],
    )
    def test_role_arn_mapping(self, caller: str, matches: bool) -> None:
        """RoleMapping.Matches: case-insensitive equality of the role ARN."""
        mapping = file_set(
            role_doc(f"arn:aws:iam::{ACCT}:role/KubeAdmin", "admin", ["system:masters"])
        )
        result = mapped(session_of(caller), mapping)
        assert (result.outcome is MappingOutcome.MAPPED) is matches

    @pytest.mark.parametrize(
        ("caller", "matches"),
        [
            (f"arn:aws:iam::{ACCT}:user/Shanice", True),
            (f"arn:aws:iam::{ACCT}:user/shanice", True),
            (f"arn:aws:iam::{ACCT}:user/notShanice", False),
        ],
    )
    def test_user_arn_mapping(self, caller: str, matches: bool) -> None:
        """UserMapping.Matches: case-insensitive equality of the user ARN."""
        mapping = file_set(
            user_doc(f"arn:aws:iam::{ACCT}:user/Shanice", "Shanice", ["system:masters"])
        )
        result = mapped(ident(caller), mapping)
        assert (result.outcome is MappingOutcome.MAPPED) is matches

    @pytest.mark.parametrize(
        "doc",
        [
            {"mapRoles": [{"rolearn": "", "username": "u"}]},  # RoleMapping.Validate
            {"mapRoles": [{"username": "u"}]},
            {"mapUsers": [{"userarn": "", "username": "u"}]},  # UserMapping.Validate
            {"mapUsers": [{"username": "u"}]},
            # TestSSORoleMapping's invalid matchers: an unknown partition
            {
                "mapRoles": [
                    {
                        "sso": {
                            "partition": "aws-nk",
                            "accountID": ACCT,
                            "permissionSetName": "ViewOnlyAccess",
                        },
                        "username": "u",
                    }
                ]
            },
        ],
    )
    def test_invalid_entries(self, doc: dict[str, object]) -> None:
        """Entries the reference's Validate() refuses are refused."""
        with pytest.raises(ConfigError):
            file_set(doc)


# ----------------------------------------------- pkg/mapper/configmap/configmap_test.go

CM_ACCT = "012345678912"
MAKE_STORE = {
    "mapUsers": (
        f"- userarn: arn:aws:iam::{CM_ACCT}:user/matt\n"
        "  username: matlan\n"
        "  groups:\n  - system:master\n  - dev\n"
    ),
    "mapRoles": (
        f"- rolearn: arn:aws:iam::{CM_ACCT}:role/computer\n"
        "  username: computer\n"
        "  groups:\n  - system:nodes\n"
    ),
    # makeStore uses account "123"; kubeiam takes 12-digit account IDs only
    "mapAccounts": "- '123456789012'\n",
}


def cm(data: Mapping[str, object], *, reserved: Sequence[str] = ()) -> MappingSet:
    """An aws-auth ConfigMap's data as the configMap source parses it."""
    return parse_aws_auth(
        data, where="kube-system/aws-auth", reserved_prefixes=reserved
    )


class TestConfigMapStore:
    """configmap_test.go TestUserMapping, TestRoleMapping, TestAWSAccount."""

    def test_user_mapping(self) -> None:
        """matt maps to matlan with both groups; nic is not mapped."""
        store = cm(MAKE_STORE)
        result = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/matt"), store)
        assert user_json(result)["username"] == "matlan"
        assert user_json(result)["groups"] == ["system:master", "dev"]
        nic = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/nic"), store)
        assert nic.outcome is MappingOutcome.NOT_MAPPED
        assert nic.user is None

    def test_role_mapping(self) -> None:
        """The computer role maps; borg does not."""
        store = cm(MAKE_STORE)
        result = mapped(session_of(f"arn:aws:iam::{CM_ACCT}:role/computer"), store)
        assert user_json(result)["username"] == "computer"
        borg = mapped(session_of(f"arn:aws:iam::{CM_ACCT}:role/borg"), store)
        assert borg.outcome is MappingOutcome.NOT_MAPPED

    def test_aws_account(self) -> None:
        """A listed account is allowed, another is not."""
        store = cm(MAKE_STORE)
        assert store.maps_account("123456789012")
        assert not store.maps_account("345345345345")

    def test_short_account_refused(self) -> None:
        """makeStore's account "123": not an account ID, so the ConfigMap is refused."""
        with pytest.raises(ConfigError, match="12-digit"):
            cm({"mapAccounts": "- 123\n- 345\n"})


LOAD_INITIAL = {
    "mapUsers": (
        f"- userarn: arn:aws:iam::{CM_ACCT}:user/matlan\n"
        "  username: matlan\n"
        "  groups:\n  - loadedfromconfigmap\n  - 'system:master'\n"
        "- groups:\n  - 'system:master'\n"
        f"  userarn: 'arn:aws:iam::{CM_ACCT}:user/NIC'\n"
        "  username: nic\n"
    ),
    "mapRoles": (
        f"- rolearn: 'arn:aws:iam::{CM_ACCT}:role/me'\n"
        "  username: '{{Session}}'\n"
        "  groups:\n  - system:nodes\n"
    ),
    "mapAccounts": "- '123123123123'\n- '345345345345'\n",
}
LOAD_UPDATED = {
    "mapUsers": (
        "- groups:\n  - 'system:master'\n  - 'test'\n"
        f"  userarn: 'arn:aws:iam::{CM_ACCT}:user/NIC'\n"
        "  username: nic\n"
        f"- userarn: 'arn:aws:iam::{CM_ACCT}:user/beswar'\n"
        "  username: beswar\n"
        "  groups:\n  - 'system:master'\n"
        f"- userarn: 'arn:aws:iam::{CM_ACCT}:user/nogroups'\n"
        "  username: nogroups\n"
    ),
    "mapRoles": (
        f"- rolearn: 'arn:aws:iam::{CM_ACCT}:role/me'\n"
        "  username: '{{Session}}'\n"
        "  groups:\n  - system:nodes\n"
        f"- rolearn: 'arn:aws:iam::{CM_ACCT}:role/you'\n"
        "  username: test\n"
        "  groups:\n  - system:nodes\n"
    ),
    "mapAccounts": "- '567567567567'\n",
}


class TestLoadConfigMap:
    """configmap_test.go TestLoadConfigMap: a modified ConfigMap replaces everything."""

    def test_initial(self) -> None:
        """Accounts 123/345 allowed; NIC maps to nic with system:master."""
        store = cm(LOAD_INITIAL)
        assert store.maps_account("123123123123")
        assert store.maps_account("345345345345")
        nic = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/NIC"), store)
        assert user_json(nic)["username"] == "nic"
        assert user_json(nic)["groups"] == ["system:master"]

    def test_updated(self) -> None:
        """After the update: 345 gone, 567 in, NIC gains test, beswar in, matlan out."""
        store = cm(LOAD_UPDATED)
        assert not store.maps_account("345345345345")
        assert store.maps_account("567567567567")
        nic = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/NIC"), store)
        assert user_json(nic)["groups"] == ["system:master", "test"]
        beswar = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/beswar"), store)
        assert user_json(beswar)["username"] == "beswar"
        nogroups = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/nogroups"), store)
        assert user_json(nogroups)["groups"] == []
        matlan = mapped(ident(f"arn:aws:iam::{CM_ACCT}:user/matlan"), store)
        assert matlan.outcome is MappingOutcome.NOT_MAPPED

    def test_unknown_placeholder_stays_literal(self) -> None:
        """username "{{Session}}" is not a placeholder: it renders as written."""
        store = cm(LOAD_UPDATED)
        me = mapped(session_of(f"arn:aws:iam::{CM_ACCT}:role/me", "bob"), store)
        assert user_json(me)["username"] == "{{Session}}"

    def test_malformed_arns_refuse_the_configmap(self) -> None:
        """TestLoadConfigMap's "arn:iam:matlan": the reference keeps it (never matches).

        kubeiam refuses the whole ConfigMap naming the entry, and the source keeps
        its last good mappings (docs/configuration.md).
        """
        data = {
            "mapUsers": "- userarn: 'arn:iam:matlan'\n  username: matlan\n",
        }
        with pytest.raises(ConfigError, match=r"mapUsers\[0\]\.userarn"):
            cm(data)


PARSE_MAP_ROLES = (
    "- rolearn: arn:aws:iam::123456789101:role/test-NodeInstanceRole-1VWRHZ3GKZ1T4\n"
    "  username: system:node:{{EC2PrivateDNSName}}\n"
    "  groups:\n  - system:bootstrappers\n  - system:nodes\n"
)
PARSE_MAP_SSO = (
    "- sso:\n    permissionSetName: ViewOnlyAccess\n"
    '    accountID: "012345678912"\n    partition: aws-cn\n'
    "  username: user1\n  groups:\n  - system:basic-users\n"
)
PARSE_MAP_USERS = (
    "- userarn: arn:aws:iam::123456789101:user/Hello\n"
    "  username: Hello\n  groups:\n  - system:masters\n"
    "- userarn: arn:aws:iam::123456789101:user/World\n"
    "  username: World\n  groups:\n  - system:masters\n"
)


class TestParseMap:
    """configmap_test.go TestParseMap."""

    def test_parse_map(self) -> None:
        """Roles, users in order; no accounts."""
        store = cm({"mapRoles": PARSE_MAP_ROLES, "mapUsers": PARSE_MAP_USERS})
        assert [(e.arn, e.username, e.groups) for e in store.roles] == [
            (
                "arn:aws:iam::123456789101:role/test-NodeInstanceRole-1VWRHZ3GKZ1T4",
                "system:node:{{EC2PrivateDNSName}}",
                ("system:bootstrappers", "system:nodes"),
            )
        ]
        assert [(e.arn, e.username, e.groups) for e in store.users] == [
            ("arn:aws:iam::123456789101:user/Hello", "Hello", ("system:masters",)),
            ("arn:aws:iam::123456789101:user/World", "World", ("system:masters",)),
        ]
        assert store.accounts == ()

    def test_parse_map_with_sso(self) -> None:
        """TestParseMap's sso entry in aws-auth: parsed, and it maps SSO sessions."""
        data = {
            "mapRoles": PARSE_MAP_ROLES + PARSE_MAP_SSO,
            "mapUsers": PARSE_MAP_USERS,
        }
        store = cm(data)
        sso = store.roles[1]
        assert sso.arn == (
            "arn:aws-cn:iam::012345678912:role/AWSReservedSSO_ViewOnlyAccess_*"
        )
        assert (sso.username, sso.groups) == ("user1", ("system:basic-users",))
        role = (
            "arn:aws-cn:iam::012345678912:role/aws-reserved/sso.amazonaws.com/"
            "cn-north-1/AWSReservedSSO_ViewOnlyAccess_a1b2c3d4e5f60718"
        )
        assert user_json(mapped(session_of(role), store))["username"] == "user1"


# ---------------------------------------------- pkg/mapper/configmap/yaml_test.go

NODE_ROLE = (
    "arn:aws:iam::555555555555:role/devel-worker-nodes-NodeInstanceRole-74RF4UBDUKL6"
)
ADMIN = "arn:aws:iam::555555555555:user/admin"


def aws_auth_yaml(
    role_keys: tuple[str, str, str] = ("rolearn", "username", "groups"),
    user_keys: tuple[str, str, str] = ("userarn", "username", "groups"),
    top: tuple[str, str, str] = ("mapRoles", "mapUsers", "mapAccounts"),
    groups_block: str = "        - system:bootstrappers\n        - system:nodes\n",
    bar: str = " |",
) -> str:
    """The yaml_test.go fixtures: an EKS-documentation aws-auth ConfigMap."""
    r_arn, r_user, r_groups = role_keys
    u_arn, u_user, u_groups = user_keys
    return (
        "apiVersion: v1\nkind: ConfigMap\n"
        "metadata:\n  name: aws-auth\n  namespace: kube-system\n"
        "data:\n"
        f"  {top[0]}:{bar}\n"
        f"    - {r_arn}: {NODE_ROLE}\n"
        f"      {r_user}: system:node:{{{{EC2PrivateDNSName}}}}\n"
        f"      {r_groups}:\n{groups_block}"
        f"  {top[1]}: |\n"
        f"    - {u_arn}: {ADMIN}\n"
        f"      {u_user}: admin\n"
        f"      {u_groups}:\n        - system:masters\n"
        f"  {top[2]}: |\n    - 555555555555\n"
    )


def parse_text(text: str) -> MappingSet:
    """A mapping file holding an aws-auth ConfigMap."""
    return parse_mapping_text(text, source="configMap", where="aws-auth.yaml")


class TestConfigMapYaml:
    """yaml_test.go TestConfigMap: the aws-auth fixtures."""

    @pytest.mark.parametrize(
        ("role_keys", "user_keys"),
        [
            # aws-auth.yaml
            (("rolearn", "username", "groups"), ("userarn", "username", "groups")),
            # aws-auth-crazy-case-keys.yaml
            (("rOlEaRn", "UsErNaMe", "gRoUpS"), ("uSeRaRn", "UsErNaMe", "gRoUpS")),
            # aws-auth-open-source-case-keys.yaml
            (("roleARN", "username", "groups"), ("userARN", "username", "groups")),
        ],
    )
    def test_entry_keys_ignore_case(
        self, role_keys: tuple[str, str, str], user_keys: tuple[str, str, str]
    ) -> None:
        """Entry keys in any case parse to the same mappings."""
        store = parse_text(aws_auth_yaml(role_keys, user_keys))
        assert [(e.arn, e.username, e.groups) for e in store.roles] == [
            (
                NODE_ROLE,
                "system:node:{{EC2PrivateDNSName}}",
                ("system:bootstrappers", "system:nodes"),
            )
        ]
        assert [(e.arn, e.username, e.groups) for e in store.users] == [
            (ADMIN, "admin", ("system:masters",))
        ]
        assert store.accounts == ("555555555555",)

    @pytest.mark.parametrize(
        "top",
        [
            ("maproles", "mapusers", "mapaccounts"),  # aws-auth-lower-case-top-keys
            ("MaPrOlEs", "MaPuSeRs", "MaPaCcOuNtS"),  # aws-auth-crazy-case-top-keys
        ],
    )
    def test_top_level_keys_are_case_sensitive(self, top: tuple[str, str, str]) -> None:
        """data keys in the wrong case hold no mappings (as the reference)."""
        store = parse_text(aws_auth_yaml(top=top))
        assert store.entries == 0

    def test_space_out_of_place(self) -> None:
        """aws-auth-space-out-of-place.yaml: the two groups fold into one string."""
        text = aws_auth_yaml(
            groups_block="        - system:bootstrappers\n         - system:nodes\n"
        )
        store = parse_text(text)
        assert store.roles[0].groups == ("system:bootstrappers - system:nodes",)

    def test_missing_bar(self) -> None:
        """aws-auth-missing-bar.yaml: nested YAML under mapRoles is not a string."""
        report = inspect_mapping_text(
            aws_auth_yaml(bar=""), source="configMap", where="aws-auth.yaml"
        )
        assert [p.where for p in report.problems] == ["aws-auth.yaml: data.mapRoles"]
        with pytest.raises(ConfigError, match="YAML string"):
            parse_text(aws_auth_yaml(bar=""))


# --------------------------------------------------------- pkg/server/server_test.go

EC2_NAME = "ip-172-31-27-14"


def fake_ec2(name: str = EC2_NAME) -> Callable[[str], str]:
    """testEC2Provider: every instance has the same private DNS name."""
    return lambda _instance_id: name


TEST_ROLE = f"arn:aws:iam::{ACCT}:role/Test"
TEST_USER = f"arn:aws:iam::{ACCT}:user/Test"
ROLE_IDENTITY = ident(
    TEST_ROLE, user_id="Test", session="TestSession", key="ABCDEF", account=ACCT
)
USER_IDENTITY = ident(TEST_USER, user_id="Test", session="TestSession", account=ACCT)
GROUPS = ("sys:admin", "listers")


class TestAuthenticateVerifier:
    """server_test.go TestAuthenticateVerifier*: identity -> TokenReview user."""

    def test_not_mapped(self) -> None:
        """TestAuthenticateVerifierNotMapped(CRD): no user (reference 403).

        kubeiam's webhook answers 200 with ``status.error`` (docs/operations.md) so a
        mapping added a moment later works at once; the core says NOT_MAPPED.
        """
        for source in (file_set({}), crd_set()):
            result = mapped(USER_IDENTITY, source)
            assert result.outcome is MappingOutcome.NOT_MAPPED
            assert result.user is None

    @pytest.mark.parametrize(
        "source",
        [
            file_set(role_doc(TEST_ROLE, "TestUser", GROUPS)),  # ...RoleMapping
            crd_set((TEST_ROLE, "TestUser", GROUPS)),  # ...RoleMappingCRD
        ],
        ids=["file", "crd"],
    )
    def test_role_mapping(self, source: MappingSet) -> None:
        """TestAuthenticateVerifierRoleMapping: username, uid, groups and extra."""
        assert user_json(mapped(ROLE_IDENTITY, source)) == review_user(
            ROLE_IDENTITY, "TestUser", GROUPS
        )

    @pytest.mark.parametrize(
        "source",
        [
            file_set(user_doc(TEST_USER, "TestUser", GROUPS)),
            crd_set((TEST_USER, "TestUser", GROUPS)),
        ],
        ids=["file", "crd"],
    )
    def test_user_mapping(self, source: MappingSet) -> None:
        """TestAuthenticateVerifierUserMapping(CRD)."""
        assert user_json(mapped(USER_IDENTITY, source)) == review_user(
            USER_IDENTITY, "TestUser", GROUPS
        )

    @pytest.mark.parametrize("crd_first", [False, True], ids=["file", "crd+file"])
    @pytest.mark.parametrize(
        "identity",
        [
            USER_IDENTITY,  # ...AccountMappingForUser
            # ...AccountMappingForRole (the reference writes the session ARN with
            # service iam; STS reports sts, which is what kubeiam canonicalizes)
            ident(
                f"arn:aws:sts::{ACCT}:assumed-role/Test/extra",
                user_id="Test",
                session="TestSession",
            ),
        ],
        ids=["user", "role"],
    )
    def test_account_mapping(self, identity: Identity, crd_first: bool) -> None:
        """mapAccounts: username is the canonical ARN, no groups; empty CRD first."""
        sources = [file_set({"mapAccounts": [ACCT]})]
        if crd_first:
            sources.insert(0, crd_set())
        result = mapped(identity, *sources)
        assert user_json(result) == review_user(identity, identity.canonical_arn, ())
        assert result.source == "file"

    @pytest.mark.parametrize(
        "source",
        [
            file_set(
                role_doc(
                    f"arn:aws:iam::{ACCT}:role/TestNodeRole",
                    "system:node:{{EC2PrivateDNSName}}",
                    ("system:nodes", "system:bootstrappers"),
                )
            ),
            crd_set(
                (
                    f"arn:aws:iam::{ACCT}:role/TestNodeRole",
                    "system:node:{{EC2PrivateDNSName}}",
                    ("system:nodes", "system:bootstrappers"),
                )
            ),
        ],
        ids=["file", "crd"],
    )
    def test_node_mapping(self, source: MappingSet) -> None:
        """TestAuthenticateVerifierNodeMapping(CRD): the instance's private DNS name."""
        node = ident(
            f"arn:aws:iam::{ACCT}:role/TestNodeRole",
            user_id="TestNodeRole",
            session="i-0c6f21bf1f24f9708",
        )
        assert user_json(mapped(node, source, ec2=fake_ec2())) == review_user(
            node,
            "system:node:ip-172-31-27-14",
            ("system:nodes", "system:bootstrappers"),
        )


# TestRenderTemplate: (template, session name, account, access key, rendered or None)
RENDER_CASES: list[tuple[str, str, str, str, str | None]] = [
    ("a-{{EC2PrivateDNSName}}-b", "i-aaaaaaaa", ACCT, "", "a-ip-172-31-27-14-b"),
    ("a-{{EC2PrivateDNSName}}-b", "i-aaaaa", ACCT, "", None),  # not an instance ID
    ("a-{{AccountID}}-b", "s", "123", "", "a-123-b"),
    ("a-{{AccessKeyID}}-b", "s", ACCT, "321", "a-321-b"),
    ("a-{{SessionName}}-b", "jdoe", ACCT, "", "a-jdoe-b"),
    ("a-{{SessionName}}-b", "jdoe@example.com", ACCT, "", "a-jdoe-example.com-b"),
    ("a-{{SessionNameRaw}}-b", "jdoe@example.com", ACCT, "", "a-jdoe@example.com-b"),
    (
        "a-{{AccountID}}-{{SessionName}}-{{SessionNameRaw}}-b",
        "jdoe@example.com",
        "123",
        "",
        "a-123-jdoe-example.com-jdoe@example.com-b",
    ),
    # 17-character instance IDs pass the same check
    ("{{EC2PrivateDNSName}}", "i-0c6f21bf1f24f9708", ACCT, "", EC2_NAME),
]


class TestRenderTemplate:
    """server_test.go TestRenderTemplate, in the username and in every group."""

    @pytest.mark.parametrize(
        ("template", "session", "account", "key", "want"), RENDER_CASES
    )
    def test_render(
        self, template: str, session: str, account: str, key: str, want: str | None
    ) -> None:
        """Each placeholder renders as the reference does; a bad instance ID fails."""
        role = f"arn:aws:iam::{ACCT}:role/Templated"
        caller = Identity(
            arn=f"arn:aws:sts::{ACCT}:assumed-role/Templated/{session}",
            canonical_arn=role,
            account_id=account,
            user_id="AROAEXAMPLE",
            session_name=session,
            access_key_id=key,
        )
        mapping = file_set(role_doc(role, template, [template, "fixed"]))
        result = mapped(caller, mapping, ec2=fake_ec2())
        if want is None:
            assert result.outcome is MappingOutcome.TEMPLATE_ERROR
            assert result.user is None
        else:
            assert user_json(result)["username"] == want
            assert user_json(result)["groups"] == [want, "fixed"]


# ------------------------------------------------ reserved prefixes (server, crd tests)

RESERVED = ("aws:", "eks:", "amazon:", "iam:", "system:")


class TestReservedPrefixes:
    """server_test.go TestReservedPrefixExists and crd/mapper_test.go prefix tests."""

    @pytest.mark.parametrize(
        ("username", "reserved"),
        [
            ("system:masters", True),
            ("test", False),
            ("eksb:test", False),
            ("eks:test", True),
        ],
    )
    def test_reserved_prefix_exists(self, username: str, reserved: bool) -> None:
        """A rendered username with a reserved prefix is not authenticated."""
        caller = session_of(TEST_ROLE)
        result = mapped(
            caller, file_set(role_doc(TEST_ROLE, username), reserved=RESERVED)
        )
        expected = MappingOutcome.RESERVED_PREFIX if reserved else MappingOutcome.MAPPED
        assert result.outcome is expected
        assert (result.user is None) is reserved

    def test_empty_prefix_reserves_nothing(self) -> None:
        """ReservedPrefixExists skips empty prefixes; "" must not deny everyone."""
        caller = session_of(TEST_ROLE)
        source = file_set(role_doc(TEST_ROLE, "admin"), reserved=("", "system:"))
        assert user_json(mapped(caller, source))["username"] == "admin"

    def test_crd_reserved_prefixes_from_config(self) -> None:
        """TestCRDMapperReservedPrefixesFromConfig / ...EmptyByDefault."""
        assert crd_set(reserved=("system:", "eks:")).reserved_prefixes == (
            "system:",
            "eks:",
        )
        assert crd_set().reserved_prefixes == ()

    @pytest.mark.parametrize("source_kind", ["configMap", "crd"])
    def test_pr_1047_configmap_and_crd_enforce(self, source_kind: str) -> None:
        """Advisory 5: aws-auth and CRD entries rendering system:* are refused."""
        if source_kind == "configMap":
            source = cm(
                {"mapRoles": f"- rolearn: {TEST_ROLE}\n  username: system:admin\n"},
                reserved=("system:",),
            )
        else:
            source = crd_set((TEST_ROLE, "system:admin", ()), reserved=("system:",))
        result = mapped(session_of(TEST_ROLE), source)
        assert result.outcome is MappingOutcome.RESERVED_PREFIX
        assert result.source == source_kind

    def test_rendered_username_is_checked_groups_are_not(self) -> None:
        """The rendered username is checked; groups never are (reference 7.6)."""
        source = file_set(
            role_doc(TEST_ROLE, "{{SessionName}}", ["system:masters"]),
            reserved=("system:",),
        )
        # STS session names cannot contain ":"; the check is on the rendered text
        sneaky_caller = Identity(
            arn=f"arn:aws:sts::{ACCT}:assumed-role/Test/x",
            canonical_arn=TEST_ROLE,
            account_id=ACCT,
            user_id="AROA1",
            session_name="system:x",
            access_key_id="",
        )
        sneaky = mapped(sneaky_caller, source)
        assert sneaky.outcome is MappingOutcome.RESERVED_PREFIX
        fine = mapped(session_of(TEST_ROLE, "alice"), source)
        assert user_json(fine)["groups"] == ["system:masters"]


class TestMalformedMappingArn:
    """Advisory 4 (PR #1046): a malformed mapping ARN never matches anything."""

    @pytest.mark.parametrize(
        "arn", [f"arn:aws:iam::{ACCT}:role/", "arn:iam:matlan", "", "not an arn"]
    )
    def test_never_matches(self, arn: str) -> None:
        """Strictly refused; leniently dropped, and nothing maps through it."""
        text = (
            f"mapRoles:\n- rolearn: '{arn}'\n"
            "  username: admin\n  groups: [system:masters]\n"
        )
        with pytest.raises(ConfigError):
            parse_mapping_text(text, source="file", where="m.yaml")
        report = inspect_mapping_text(text, source="file", where="m.yaml")
        assert report.problems
        assert report.mapping_set.entries == 0
        result = mapped(session_of(TEST_ROLE), report.mapping_set)
        assert result.outcome is MappingOutcome.NOT_MAPPED


class TestIAMIdentityMappingController:
    """crd/controller/controller_test.go TestIAMIdentityMappingCreation."""

    def test_canonical_arn_is_lower_cased(self) -> None:
        """status.canonicalARN is the lower-cased canonical spec.arn (the match key)."""
        arn = "arn:aws:iam::123456789012:user/AuthorizedUser"
        assert entry_match_key(arn) == "arn:aws:iam::123456789012:user/authorizeduser"
        source = crd_set((arn, "user-1", ["system:masters"]))
        caller = ident("arn:aws:iam::123456789012:user/authorizeduser")
        assert user_json(mapped(caller, source))["username"] == "user-1"

    def test_placeholder_account_refused(self) -> None:
        """The test's XXXXXXXXXXXX account is not an account ID: refused."""
        with pytest.raises(ConfigError, match="12-digit"):
            crd_set(("arn:aws:iam::XXXXXXXXXXXX:user/AuthorizedUser", "user-1", ()))


class TestDynamicFileEntries:
    """dynamicfile tests: ``userid``-keyed entries are not a kubeiam format."""

    def test_userid_key_refused(self) -> None:
        """An entry with userid is refused with a hint to map the ARN (auth.md 7.2)."""
        doc = {
            "mapRoles": [
                {
                    "rolearn": f"arn:aws:iam::{ACCT}:role/test",
                    "userid": "AROAEXAMPLE",
                    "username": "test",
                }
            ]
        }
        with pytest.raises(ConfigError, match="'userid'"):
            file_set(doc)
