"""The one YAML door: strict reads, the same with libyaml and pure Python."""

from __future__ import annotations

import pytest

from authenticator.errors import ConfigError
from authenticator.yamlio import (
    C_PARSER_AVAILABLE,
    MAX_ALIAS_NODES,
    MAX_YAML_DEPTH,
    NumericText,
    Scalars,
    YAMLError,
    dump_yaml,
    load_yaml,
    load_yaml_documents,
)

# libyaml is part of the dev install; if PyYAML lost it the comparison is moot,
# and that is a failure, not a skip.
PARSERS = [pytest.param(False, id="pure-python"), pytest.param(True, id="libyaml")]

CORPUS = [
    "",
    "---\n",
    "a: 1\n",
    "---\na: 1\n---\nb: 2\n",
    "mapAccounts: [012345678901, '012345678901', 123456789012, 0o17, 1_000]\n",
    "x: [true, True, yes, no, on, off, ~, null, '', 2024-01-02]\n",
    "port: 8443\nratio: 0.5\nbig: 1e3\nhex: 0x1f\nsex: 1:30\ninf: .inf\n",
    "k: |\n  line one\n  line two\nf: >\n  folded\n  text\n",
    "anchors:\n  base: &b {a: [1, 2]}\n  copy: *b\n  s: &s hi\n  t: *s\n",
    "? complex key\n: value\n",
    "tags: [!!str 12, ! 13, !!map {a: b}, !!seq [c]]\n",
    "unicode: 'é ü 字'\nempty:\nnested: {a: {b: {c: [d, {e: f}]}}}\n",
    "- a\n- - b\n  - c\n- {d: e}\n",
]

REFUSED = [
    ("a: 1\na: 2\n", "line 2, column 1: duplicate key 'a'"),
    ("a: {b: 1, b: 2}\n", "duplicate key 'b'"),
    ("&a [*a]\n", "an alias refers to a node that contains it"),
    ("a: *nope\n", "undefined alias 'nope'"),
    ("[" * (MAX_YAML_DEPTH + 1) + "]" * (MAX_YAML_DEPTH + 1), "nested deeper"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper"),
    ("x: !!python/object/apply:os.system ['true']\n", "is not allowed"),
    ("x: !!binary aGk=\n", "is not allowed"),
    ("x: !!set {a, b}\n", "is not allowed"),
    ("? [a]\n: b\n", "a mapping key must be text"),
    ("a: [\n", "not valid YAML: line"),
    ("a: b\n\x00\n", "not valid YAML"),
    ("a: 'x\n", "not valid YAML"),
    ("k: &k [1]\n*k : v\n", "a mapping key must be text"),
]


def _bomb(levels: int, width: int) -> str:
    lines = ["a0: &a0 [x]"]
    for i in range(1, levels):
        refs = ", ".join([f"*a{i - 1}"] * width)
        lines.append(f"a{i}: &a{i} [{refs}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("c_parser", PARSERS)
class TestRules:
    """Each rule, with both parsers."""

    def test_duplicate_keys(self, c_parser: bool) -> None:
        """PyYAML keeps the last of two equal keys; the door refuses."""
        with pytest.raises(YAMLError, match="line 3, column 3: duplicate key 'Effect'"):
            load_yaml(
                "Statement:\n  Effect: Deny\n  Effect: Allow\n", c_parser=c_parser
            )

    def test_error_is_a_config_error_with_the_line(self, c_parser: bool) -> None:
        """Callers catch ConfigError; the line is kept for messages."""
        with pytest.raises(ConfigError) as info:
            load_yaml("a: 1\nb: [\n", c_parser=c_parser)
        assert isinstance(info.value, YAMLError) and info.value.line is not None
        assert str(info.value).startswith("not valid YAML: line ")
        assert "\n" not in str(info.value)

    def test_alias_bomb(self, c_parser: bool) -> None:
        """Nine levels of ten aliases would be 10**9 nodes: refused early."""
        with pytest.raises(YAMLError, match="aliases expand too far"):
            load_yaml(_bomb(9, 10), c_parser=c_parser)

    def test_aliases_within_budget_are_copies(self, c_parser: bool) -> None:
        """A modest alias use works and does not share mutable values."""
        doc = load_yaml("a: &x {k: [1]}\nb: *x\n", c_parser=c_parser)
        assert doc == {"a": {"k": [1]}, "b": {"k": [1]}}
        assert isinstance(doc, dict) and doc["a"] is not doc["b"]

    def test_depth_through_an_alias(self, c_parser: bool) -> None:
        """An alias cannot carry a value past the depth cap."""
        half = MAX_YAML_DEPTH // 2 + 1
        text = f"a: &d {'[' * half}{']' * half}\nb: {'[' * half}*d{']' * half}\n"
        with pytest.raises(YAMLError, match="through an alias"):
            load_yaml(text, c_parser=c_parser)

    def test_depth_at_the_cap_is_fine(self, c_parser: bool) -> None:
        """Exactly MAX_YAML_DEPTH levels load."""
        n = MAX_YAML_DEPTH
        doc = load_yaml("[" * n + "]" * n, c_parser=c_parser)
        for _ in range(n - 1):
            assert isinstance(doc, list) and len(doc) == 1
            doc = doc[0]
        assert doc == []

    def test_account_ids_stay_text(self, c_parser: bool) -> None:
        """Unquoted account IDs keep their digits, leading zeros included."""
        text = "ids: [000123456789, 123456789012, 012345670123]\n"
        modes: tuple[Scalars, ...] = ("text", "typed")
        for scalars in modes:
            doc = load_yaml(text, scalars=scalars, c_parser=c_parser)
            assert doc == {"ids": ["000123456789", "123456789012", "012345670123"]}
            assert isinstance(doc, dict)
            # YAML 1.1 reads the last two as a decimal and an octal int
            assert [isinstance(v, NumericText) for v in doc["ids"]] == [
                False,
                True,
                True,
            ]

    def test_typed_scalars(self, c_parser: bool) -> None:
        """Typed mode: JSON-like values; YAML 1.1 surprises stay text."""
        doc = load_yaml(
            "a: 8443\nb: -1\nc: 0.5\nd: true\ne: FALSE\nf: yes\ng: off\nh: ~\n"
            "i: 0o17\nj: 0x1f\nk: 1_000\nl: 1:30\nm: .inf\nn: 2024-01-02\no: '7'\n",
            c_parser=c_parser,
        )
        assert doc == {
            "a": 8443,
            "b": -1,
            "c": 0.5,
            "d": True,
            "e": False,
            "f": "yes",
            "g": "off",
            "h": None,
            "i": "0o17",
            "j": "0x1f",
            "k": "1_000",
            "l": "1:30",
            "m": ".inf",
            "n": "2024-01-02",
            "o": "7",
        }
        assert isinstance(doc, dict) and type(doc["o"]) is str
        assert isinstance(doc["j"], NumericText) and not isinstance(
            doc["i"], NumericText
        )

    def test_text_scalars(self, c_parser: bool) -> None:
        """Text mode: every scalar its text; keys are always text."""
        doc = load_yaml(
            "8443: 8443\nd: true\nh: ~\n", scalars="text", c_parser=c_parser
        )
        assert doc == {"8443": "8443", "d": "true", "h": None}

    def test_several_documents(self, c_parser: bool) -> None:
        """load_yaml wants one document; load_yaml_documents gives each."""
        text = "a: 1\n---\n---\nb: 2\n"
        assert load_yaml_documents(text, c_parser=c_parser) == [
            {"a": 1},
            None,
            {"b": 2},
        ]
        with pytest.raises(YAMLError, match="found several"):
            load_yaml(text, c_parser=c_parser)
        assert load_yaml("", c_parser=c_parser) is None


@pytest.mark.parametrize("scalars", ["text", "typed"])
@pytest.mark.parametrize("text", CORPUS)
def test_both_parsers_give_the_same_values(text: str, scalars: Scalars) -> None:
    """libyaml's events and PyYAML's build the same values, types included."""
    assert C_PARSER_AVAILABLE, "PyYAML should be built with libyaml here"
    pure = load_yaml_documents(text, scalars=scalars, c_parser=False)
    fast = load_yaml_documents(text, scalars=scalars, c_parser=True)
    assert fast == pure
    assert repr(_types(fast)) == repr(_types(pure))


@pytest.mark.parametrize(("text", "message"), REFUSED)
def test_both_parsers_refuse_the_same(text: str, message: str) -> None:
    """Every refusal happens with either parser, with the same message."""
    errors = []
    for c_parser in (False, True):
        with pytest.raises(YAMLError, match=message) as info:
            load_yaml_documents(text, c_parser=c_parser)
        errors.append(info.value)
    pure, fast = errors
    assert (pure.line, str(pure).split(":")[0]) == (fast.line, str(fast).split(":")[0])
    if "not valid YAML: line" not in message and message != "not valid YAML":
        assert str(pure) == str(fast)


def test_plain_nodes_are_not_counted_as_alias_expansion() -> None:
    """A file larger than the alias budget but without aliases loads."""
    n = MAX_ALIAS_NODES // 3 + 1
    text = "mapRoles:\n" + "".join(
        f"  - {{rolearn: 'arn:aws:iam::111122223333:role/r{i}', username: u{i}}}\n"
        for i in range(n)
    )
    (doc,) = load_yaml_documents(text, scalars="text", c_parser=C_PARSER_AVAILABLE)
    assert isinstance(doc, dict)
    roles = doc["mapRoles"]
    assert isinstance(roles, list) and len(roles) == n
    assert roles[-1] == {
        "rolearn": f"arn:aws:iam::111122223333:role/r{n - 1}",
        "username": f"u{n - 1}",
    }


def test_dump_round_trips_through_the_door() -> None:
    """dump_yaml writes what load_yaml reads back, NumericText included."""
    doc = {
        "name": "x",
        "ids": [NumericText("012345678901"), "123"],
        "n": 3,
        "flag": True,
        "none": None,
        "nested": {"list": [{"a": "b"}]},
    }
    text = dump_yaml(doc, header="made by a test\nsecond line")
    assert text.startswith("# made by a test\n# second line\n")
    assert "  - a: b\n" in text  # list items indented under their key
    assert load_yaml(text) == doc


def _types(value: object) -> object:
    if isinstance(value, dict):
        return {k: _types(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_types(v) for v in value]
    return type(value).__name__
