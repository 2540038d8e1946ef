"""Fuzzing the mapping parsers: only ConfigError escapes, and what parses maps safely.

Inputs: random text, YAML built from valid and broken mapping documents and
then edited (anchors, aliases, tags, flow/block mixes, deep nesting), random
documents for ``parse_mappings``, aws-auth ``data`` dictionaries for
``parse_aws_auth`` and IAMIdentityMapping lists. Properties (docs/configuration.md,
docs/token-format.md):

* ``parse_*`` return a :class:`MappingSet` or raise :class:`ConfigError`,
  nothing else; the lenient ``inspect_mapping_text`` / ``validate_*`` never
  raise, and report no problem exactly when the strict parser accepts;
* a parsed set maps identities without raising, and never grants a username
  that starts with one of the source's reserved prefixes;
* a pathological file does not stop a file source from picking up the next
  good one (the reload must survive every input).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from authenticator.errors import ConfigError
from authenticator.identity import Identity
from authenticator.mapping import (
    MappingOutcome,
    MappingSet,
    evaluate_mapping,
    inspect_mapping_text,
    parse_aws_auth,
    parse_identity_mappings,
    parse_mapping_text,
    parse_mappings,
    validate_aws_auth,
    validate_mappings,
)
from webhook.sources import build_registry
from webhook.sources_file import FileSource

FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
ACCOUNT = "111122223333"
RESERVED = ("system:", "eks:")
# Texts that must be refused cleanly: recursion and alias bombs.
PATHOLOGICAL_YAML = [
    "[" * 5000,
    "mapRoles: " + "[" * 2000 + "]" * 2000,
    "&a [*a]",
    "mapRoles: &x\n- rolearn: *x\n",
    "a: &a [*a, *a]\nmapRoles: []\n",
    "mapRoles:\n" + "".join("  " * i + "- \n" for i in range(1500)),
]

ARNS = [
    f"arn:aws:iam::{ACCOUNT}:role/Deploy",
    f"arn:aws:iam::{ACCOUNT}:role/team/path/Deploy",
    f"arn:aws:iam::{ACCOUNT}:user/alice",
    f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/alice",
    f"arn:aws-cn:iam::{ACCOUNT}:role/Deploy",
    "arn:aws:iam::123:role/x",
    "arn:aws:iam::111122223333:root",
    "not-an-arn",
    "",
]
IDENTITIES = [
    Identity(
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/Deploy/alice",
        canonical_arn=f"arn:aws:iam::{ACCOUNT}:role/Deploy",
        account_id=ACCOUNT,
        user_id="AROAEXAMPLEROLEID0001",
        session_name="alice",
        access_key_id="ASIAEXAMPLE",
    ),
    Identity(
        arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        canonical_arn=f"arn:aws:iam::{ACCOUNT}:user/alice",
        account_id=ACCOUNT,
        user_id="AIDAEXAMPLEUSERID0001",
        session_name="",
        access_key_id="AKIAEXAMPLE",
    ),
    Identity(
        arn="arn:aws:iam::999988887777:user/bob",
        canonical_arn="arn:aws:iam::999988887777:user/bob",
        account_id="999988887777",
        user_id="AIDAEXAMPLEUSERID0002",
        session_name="",
        access_key_id="AKIAEXAMPLE2",
    ),
]

text = st.text(max_size=40)
usernames = (
    st.sampled_from(
        [
            "alice",
            "system:admin",
            "SYSTEM:admin",
            "eks:x",
            "deploy:{{SessionName}}",
            "{{AccountID}}:{{SessionNameRaw}}",
            "{{EC2PrivateDNSName}}",
            "{{ unknown }}",
            "{{SessionName",
            "",
        ]
    )
    | text
)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | text
entries = st.dictionaries(
    st.sampled_from(
        ["rolearn", "userarn", "username", "groups", "RoleArn", "sso", "x"]
    ),
    st.sampled_from(ARNS)
    | usernames
    | st.lists(st.sampled_from(["devs", "system:masters", ""]) | text, max_size=3)
    | scalars,
    max_size=5,
)
documents = st.fixed_dictionaries(
    {},
    optional={
        "mapRoles": st.lists(entries, max_size=4) | scalars,
        "mapUsers": st.lists(entries, max_size=4) | scalars,
        "mapAccounts": st.lists(
            st.sampled_from([ACCOUNT, "012345678901", 12345, "x"]) | scalars,
            max_size=3,
        )
        | scalars,
        "other": scalars,
    },
)


def check_set(mapping_set: MappingSet, reserved: tuple[str, ...]) -> None:
    """Evaluating a parsed set never raises nor grants a reserved username."""
    for identity in IDENTITIES:
        result = evaluate_mapping(
            identity, (mapping_set,), ec2_private_dns=lambda _id: "ip-10-0-0-1"
        )
        assert isinstance(result.outcome, MappingOutcome)
        if result.user is not None:
            assert result.user.username
            assert not result.user.username.lower().startswith(reserved), result.user


def parse_text_checked(text: str) -> None:
    """Strict and lenient text parsing agree, and only ConfigError escapes."""
    report = inspect_mapping_text(
        text, source="file", where="fuzz.yaml", reserved_prefixes=RESERVED
    )
    try:
        mapping_set = parse_mapping_text(
            text, source="file", where="fuzz.yaml", reserved_prefixes=RESERVED
        )
    except ConfigError:
        assert report.problems, "the strict parser refused what inspect accepted"
        return
    assert not report.problems
    check_set(mapping_set, RESERVED)


@st.composite
def edited_yaml(draw: st.DrawFn) -> str:
    """A mapping document dumped as YAML, then edited as text."""
    doc = draw(documents)
    style = draw(st.sampled_from([None, False, True]))
    out = yaml.safe_dump(doc, default_flow_style=style, allow_unicode=True)
    for _ in range(draw(st.integers(0, 3))):
        i = draw(st.integers(0, len(out)))
        piece = draw(
            st.sampled_from(
                [
                    "&a ",
                    "*a",
                    "!!python/object:os.system ",
                    "!!binary ",
                    "? ",
                    "- ",
                    "\n  ",
                    ": ",
                    "{",
                    "[",
                    "'",
                    '"',
                    "#",
                    "---\n",
                    "%YAML 1.1\n",
                    "<<: *a\n",
                    "\t",
                    "\x00",
                    "012345678901",
                ]
            )
            | text
        )
        out = out[:i] + piece + out[i + draw(st.integers(0, 3)) :]
    return out


class TestMappingText:
    """Mapping files (plain, aws-auth ConfigMap, IAMIdentityMapping lists)."""

    @FUZZ
    @given(text=st.text(max_size=300))
    @example(text="")
    @example(text="---\n---\n")
    @example(text="kind: ConfigMap\ndata: 5\n")
    @example(text="kind: List\nitems: 7\n")
    @example(text="kind: IAMIdentityMapping\nspec: [1]\n")
    @example(text="mapAccounts: [012345678901, 0o17, 1_2]\n")
    def test_random_text(self, text: str) -> None:
        """Any text parses or raises ConfigError, and inspect agrees."""
        parse_text_checked(text)

    @FUZZ
    @given(text=edited_yaml())
    def test_edited_yaml(self, text: str) -> None:
        """Edited YAML of plausible documents parses or raises ConfigError."""
        parse_text_checked(text)

    @FUZZ
    @given(
        items=st.lists(
            st.fixed_dictionaries(
                {"kind": st.sampled_from(["IAMIdentityMapping", "x"])},
                optional={
                    "metadata": st.fixed_dictionaries({"name": text}) | scalars,
                    "spec": st.fixed_dictionaries(
                        {},
                        optional={
                            "arn": st.sampled_from(ARNS) | scalars,
                            "username": usernames | scalars,
                            "groups": st.lists(text, max_size=2) | scalars,
                        },
                    )
                    | scalars,
                },
            ),
            max_size=4,
        ),
        wrapper=st.sampled_from(["List", "IAMIdentityMappingList", "docs"]),
    )
    def test_crd_lists(self, items: list[dict[str, object]], wrapper: str) -> None:
        """IAMIdentityMapping objects in a List or as documents parse or refuse."""
        if wrapper == "docs":
            text = yaml.safe_dump_all(items)
        else:
            text = yaml.safe_dump({"kind": wrapper, "items": items})
        parse_text_checked(text)

    @pytest.mark.parametrize("text", PATHOLOGICAL_YAML)
    def test_pathological_yaml_is_a_config_error(self, text: str) -> None:
        """Deep nesting and self-referencing aliases are a ConfigError, not a crash."""
        with pytest.raises(ConfigError):
            parse_mapping_text(text, source="file", where="fuzz.yaml")


class TestMappingDocuments:
    """Parsed documents (server config inline mappings, aws-auth data, CRDs)."""

    @FUZZ
    @given(doc=documents)
    def test_documents(self, doc: dict[str, object]) -> None:
        """parse_mappings accepts exactly what validate_mappings finds no problem in."""
        problems = validate_mappings(doc, where="fuzz")
        try:
            mapping_set = parse_mappings(
                doc, source="inline", where="fuzz", reserved_prefixes=RESERVED
            )
        except ConfigError:
            assert problems
            return
        assert not problems
        check_set(mapping_set, RESERVED)

    @FUZZ
    @given(
        data=st.fixed_dictionaries(
            {},
            optional={
                "mapRoles": st.builds(yaml.safe_dump, st.lists(entries, max_size=3))
                | text
                | scalars,
                "mapUsers": st.builds(yaml.safe_dump, st.lists(entries, max_size=3))
                | st.sampled_from(['""', "''", "``", " "])
                | scalars,
                "mapAccounts": st.sampled_from(
                    ["- 012345678901", "- 12345", "[111122223333]", "- *a"]
                )
                | text,
            },
        )
        | st.none()
    )
    def test_aws_auth_data(self, data: dict[str, object] | None) -> None:
        """parse_aws_auth accepts exactly what validate_aws_auth finds no problem in."""
        problems = validate_aws_auth(data, where="kube-system/aws-auth")
        try:
            mapping_set = parse_aws_auth(
                data, where="kube-system/aws-auth", reserved_prefixes=RESERVED
            )
        except ConfigError:
            assert problems
            return
        assert not problems
        check_set(mapping_set, RESERVED)

    @pytest.mark.parametrize("text", PATHOLOGICAL_YAML)
    def test_pathological_aws_auth_is_a_config_error(self, text: str) -> None:
        """An aws-auth mapRoles string that is a YAML bomb is a ConfigError."""
        with pytest.raises(ConfigError):
            parse_aws_auth({"mapRoles": text}, where="kube-system/aws-auth")

    @FUZZ
    @given(items=st.lists(st.dictionaries(text, scalars | entries), max_size=3))
    def test_identity_mapping_objects(self, items: list[dict[str, object]]) -> None:
        """parse_identity_mappings returns a set or raises ConfigError."""
        try:
            mapping_set = parse_identity_mappings(
                items, where="crd", reserved_prefixes=RESERVED
            )
        except ConfigError:
            return
        check_set(mapping_set, RESERVED)


@pytest.fixture
def file_source(tmp_path: Path) -> Iterator[tuple[Path, list[str]]]:
    """A started file source over mapping.yaml; yields the path and a user list."""
    path = tmp_path / "mapping.yaml"
    path.write_text(_users_doc("alice"))
    registry = build_registry([FileSource(path, poll_interval=0.05)])
    registry.start()
    usernames: list[str] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(0.02):
            usernames[:] = [u.username for s in registry.snapshot() for u in s.users]

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    yield path, usernames
    stop.set()
    thread.join()
    registry.stop()


def _users_doc(name: str) -> str:
    return yaml.safe_dump(
        {
            "mapUsers": [
                {"userarn": f"arn:aws:iam::{ACCOUNT}:user/{name}", "username": name}
            ]
        }
    )


def _wait_for(usernames: list[str], expected: list[str], timeout: float = 5) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and usernames != expected:
        time.sleep(0.02)
    assert usernames == expected


class TestFileSourceSurvives:
    """A file source keeps reloading whatever a bad version of the file held."""

    @pytest.mark.parametrize("text", ["mapUsers: 5\n", "{", *PATHOLOGICAL_YAML[2:4]])
    def test_good_file_after_a_bad_one_is_applied(
        self, file_source: tuple[Path, list[str]], text: str
    ) -> None:
        """A bad write keeps the last good set, and the next good write replaces it."""
        path, usernames = file_source
        _wait_for(usernames, ["alice"])
        path.write_text(text)
        time.sleep(0.4)
        assert usernames == ["alice"]
        path.write_text(_users_doc("bob"))
        _wait_for(usernames, ["bob"])
