"""authenticator._startup: each start-up shortcut against the stdlib it replaces.

Every shortcut must give what the library gives on the inputs it takes, and
hand everything else, including any failure of its own, to the library.
"""

from __future__ import annotations

import configparser
import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authenticator import _startup
from authenticator._startup import (
    FrozenRecord,
    json_dumps,
    json_loads,
    preparse_flags,
    read_profile_section,
)
from authenticator.token_cli import (
    _SWITCH_OPTIONS,
    _VALUE_OPTIONS,
    TokenFlags,
    build_parser,
    parse_common_flags,
)

ROOT = Path(__file__).resolve().parents[2]
_JSON_SCALARS = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text()
)


def _configparser_profile(text: str, profile: str) -> dict[str, str]:
    """What RawConfigParser (the reference) finds for the profile, {} on error."""
    parser = configparser.RawConfigParser()
    try:
        parser.read_string(text)
    except configparser.Error:
        return {}
    for section in (f"profile {profile}", profile if profile == "default" else ""):
        if section and parser.has_section(section):
            return dict(parser.items(section))
    return {}


_CONFIG_LINES = [
    "[default]",
    "[profile dev]",
    "[profile dev]",
    "[DEFAULT]",
    "[ profile dev ]",
    "[profile x] # c",
    "[]",
    "region = us-west-2",
    "region=eu-west-1",
    "Region : ap-south-1",
    "use_fips_endpoint = true",
    "use_dualstack_endpoint=True ",
    "s3 =",
    "    max_concurrent_requests = 20",
    "\tmax_queue_size = 1000",
    "a = b = c",
    "k: v: w",
    "= novalue",
    "novalue",
    "# comment",
    "  ; comment",
    "",
    "   ",
    "region = é",
    "x = 1\x0b",
]


class TestProfileReader:
    """The configparser-free reader of ~/.aws/config agrees with RawConfigParser."""

    def test_common_config_is_read_without_configparser(self) -> None:
        """A usual config file is read by the fast reader, as configparser reads it."""
        text = (
            "# my config\n[default]\nregion = us-east-2\noutput = json\n\n"
            "[profile dev]\nregion=eu-west-1\nuse_fips_endpoint = true\n"
            "s3 =\n    max_concurrent_requests = 20\n\n    addressing_style = path\n"
            "; done\n"
        )
        for profile in ("default", "dev", "nope"):
            fast = read_profile_section(text, profile)
            assert fast is not None
            assert fast == _configparser_profile(text, profile)
        dev = read_profile_section(text, "dev")
        assert dev is not None
        assert dev["s3"] == "\nmax_concurrent_requests = 20\n\naddressing_style = path"

    @settings(max_examples=400, deadline=None)
    @given(
        st.lists(st.sampled_from(_CONFIG_LINES), max_size=10),
        st.sampled_from(["default", "dev", "x"]),
    )
    def test_random_configs_agree_with_configparser(
        self, lines: list[str], profile: str
    ) -> None:
        """On random files the fast reader either defers or matches configparser."""
        text = "\n".join(lines) + "\n"
        fast = read_profile_section(text, profile)
        if fast is not None:
            assert fast == _configparser_profile(text, profile)

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.tuples(
                st.sampled_from(["[default]", "[profile dev]", "[DEFAULT]", "[x]"]),
                st.lists(
                    st.sampled_from(
                        ["region", "Use_FIPS_endpoint", "s3", "output", "a b"]
                    ),
                    unique_by=str.lower,
                    max_size=4,
                ),
                st.sampled_from([" = ", "=", ": ", " :", "= "]),
                st.sampled_from(["v", "", "x = y", "  ", "\n  cont", "\n\n\tc\n"]),
                st.sampled_from(["", "# c", "; c", "  ", "  # c"]),
            ),
            unique_by=lambda section: section[0],
            max_size=4,
        ),
        st.sampled_from(["default", "dev", "x"]),
    )
    def test_usual_configs_are_read_fast_and_right(
        self, sections: list[tuple[str, list[str], str, str, str]], profile: str
    ) -> None:
        """Well-formed files are read by the fast reader, as configparser reads them."""
        text = "".join(
            f"{header}\n" + "".join(f"{key}{sep}{value}\n{extra}\n" for key in keys)
            for header, keys, sep, value, extra in sections
        )
        fast = read_profile_section(text, profile)
        assert fast is not None
        assert fast == _configparser_profile(text, profile)

    @pytest.mark.parametrize(
        "text",
        [
            "region = x\n",
            "[default]\nregion = a\n[default]\n",
            "[default]\nregion = a\nregion = b\n",
            "[default]\nnovalue\n",
            "[default]\n  indented = x\n",
            "[default] # c\n",
            "[default]\nregion = é\n",
        ],
    )
    def test_unusual_files_defer_to_configparser(self, text: str) -> None:
        """Errors, repeats, odd indentation and non-ASCII go to configparser."""
        assert read_profile_section(text, "default") is None


_JSON_DOCS = st.recursive(
    _JSON_SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


class TestJSONCodec:
    """json_dumps / json_loads (no json import on a hit) are json.dumps / json.loads."""

    @settings(max_examples=300, deadline=None)
    @given(_JSON_DOCS, st.booleans())
    def test_dumps_matches_json(self, doc: object, sort_keys: bool) -> None:
        """Compact output, key order and escaping are json.dumps's own."""
        want = json.dumps(doc, separators=(",", ":"), sort_keys=sort_keys)
        assert json_dumps(doc, sort_keys=sort_keys) == want

    @settings(max_examples=300, deadline=None)
    @given(_JSON_DOCS, st.sampled_from(["", " ", "\n\t ", "\r\n"]))
    def test_loads_matches_json(self, doc: object, pad: str) -> None:
        """A document, with JSON whitespace around it, loads as json.loads loads it."""
        text = pad + json.dumps(doc, ensure_ascii=False) + pad
        assert json_loads(text) == json.loads(text)

    @pytest.mark.parametrize(
        "text",
        [
            "",
            " ",
            "{",
            '{"a":1} x',
            '{"a":1}{}',
            "\ufeff{}",
            "[1,]",
            "nul",
            '"\x01"',
            "{'a': 1}",
            "1 2",
            "\u00a0{}",
        ],
    )
    def test_bad_json_raises_as_json_does(self, text: str) -> None:
        """Invalid text raises json's own error, message included."""
        with pytest.raises(ValueError) as want:
            json.loads(text)
        with pytest.raises(ValueError) as got:
            json_loads(text)
        assert type(got.value) is type(want.value)
        assert str(got.value) == str(want.value)

    def test_constants_and_odd_values_match_json(self) -> None:
        """NaN/Infinity, tuples, non-string keys and subclasses behave as in json."""
        text = "[NaN, Infinity, -Infinity, 1e400, 1.5, -0]"
        got, want = json_loads(text), json.loads(text)
        assert repr(got) == repr(want)
        for doc in [(1, "a"), {1: "a"}, {True: None}, [float("nan")], {"a": 1.0}]:
            assert json_dumps(doc) == json.dumps(doc, separators=(",", ":"))
        with pytest.raises(TypeError):
            json_dumps({"a": object()})
        with pytest.raises(TypeError):
            json_dumps({1: "a", "b": 2}, sort_keys=True)
        loop: list[object] = []
        loop.append(loop)
        with pytest.raises(ValueError, match="Circular reference"):
            json_dumps(loop)


def _argparse(argv: list[str]) -> TokenFlags | int:
    try:
        return TokenFlags.from_namespace(build_parser().parse_args(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2


class _BoomError(RuntimeError):
    """A failure inside a shortcut that is not ImportError nor ValueError."""


def _raise(*_: object, **__: object) -> object:
    raise _BoomError("shortcut broke")


class TestFallbackOnAnyFailure:
    """A shortcut that fails in any way hands over to the library, never raises."""

    def test_json_loads_falls_back_when_the_scanner_breaks(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A scanner raising RuntimeError: json.loads answers instead."""
        monkeypatch.setattr(_startup, "_scan", _raise)
        text = '{"a": [1, 2.5, "x"], "b": null}'
        assert json_loads(text) == json.loads(text)

    def test_json_dumps_falls_back_when_the_encoder_breaks(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """An encoder raising RuntimeError: json.dumps answers instead."""
        monkeypatch.setattr(_startup, "_c_encode_string", _raise)
        doc = {"b": ["x", 1, None], "a": True}
        assert json_dumps(doc, sort_keys=True) == json.dumps(
            doc, separators=(",", ":"), sort_keys=True
        )

    def test_pre_parser_falls_back_to_argparse(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A pre-parser raising RuntimeError: None, and argparse reads the flags."""
        monkeypatch.setattr(_startup, "_preparse_flags", _raise)
        argv = ["-i", "c", "--region", "eu-west-1"]
        assert preparse_flags(argv, _VALUE_OPTIONS, _SWITCH_OPTIONS) is None
        assert parse_common_flags(argv) is None
        assert _argparse(argv) == TokenFlags(cluster_id="c", region="eu-west-1")

    def test_profile_reader_falls_back_to_configparser(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """A reader raising RuntimeError: None, and the command asks configparser."""
        monkeypatch.setattr(_startup, "_read_profile_section", _raise)
        text = "[default]\nregion = eu-north-1\n"
        assert read_profile_section(text, "default") is None
        config = tmp_path / "config"
        config.write_text(text)
        from authenticator.token_cli import _load_profile

        env = {"AWS_CONFIG_FILE": str(config)}
        assert dict(_load_profile(env, "default")) == {"region": "eu-north-1"}

    def test_broken_c_json_module_is_not_fatal(self) -> None:
        """An _json whose make_scanner raises TypeError at import: json is used."""
        script = (
            # json itself keeps the real C module; only the shortcut sees the fake.
            "import json, sys, types\n"
            "fake = types.ModuleType('_json')\n"
            "def make_scanner(ctx): raise TypeError('not this build')\n"
            "fake.make_scanner = make_scanner\n"
            "sys.modules['_json'] = fake\n"
            "from authenticator import _startup as s\n"
            "assert s._scan is None and s._c_encode_string is None\n"
            "print(s.json_loads('{\"a\": [1]}'), s.json_dumps({'b': 'é'}))\n"
        )
        done = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            check=False,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        assert done.stdout == '{\'a\': [1]} {"b":"\\u00e9"}\n'


@dataclasses.dataclass(frozen=True, slots=True)
class _Point:
    x: int
    label: str
    secret: str = dataclasses.field(repr=False)


class _RecordPoint(FrozenRecord):
    __slots__ = ("label", "secret", "x")
    _SECRET_FIELDS = frozenset({"secret"})
    x: int
    label: str
    secret: str

    def __init__(self, x: int, label: str, secret: str) -> None:
        self._set(x=x, label=label, secret=secret)


class _OtherRecord(FrozenRecord):
    __slots__ = ("label", "secret", "x")
    x: int
    label: str
    secret: str

    def __init__(self, x: int, label: str, secret: str) -> None:
        self._set(x=x, label=label, secret=secret)


class TestFrozenRecord:
    """FrozenRecord behaves as a frozen, slotted dataclass does."""

    @settings(max_examples=100, deadline=None)
    @given(
        st.tuples(st.integers(), st.text(max_size=5), st.text(max_size=5)),
        st.tuples(st.integers(), st.text(max_size=5), st.text(max_size=5)),
    )
    def test_equality_and_hash_agree_with_dataclass(
        self, a: tuple[int, str, str], b: tuple[int, str, str]
    ) -> None:
        """Field-wise equality, equal hashes for equal records, as dataclasses."""
        ra, rb = _RecordPoint(*a), _RecordPoint(*b)
        da, db = _Point(*a), _Point(*b)
        assert (ra == rb) == (da == db)
        if ra == rb:
            assert hash(ra) == hash(rb)
        assert ra.as_dict() == dataclasses.asdict(da)
        assert ra != _OtherRecord(*a)

    def test_immutable_and_slotted_like_dataclass(self) -> None:
        """Setting or deleting a field fails, and there is no __dict__."""
        record, point = _RecordPoint(1, "a", "s"), _Point(1, "a", "s")
        for target in (record, point):
            with pytest.raises(AttributeError):
                target.x = 2  # type: ignore[misc]
            with pytest.raises(AttributeError):
                del target.label
            assert not hasattr(target, "__dict__")

    def test_repr_hides_secret_fields(self) -> None:
        """The repr names the fields as a dataclass's does, secrets masked."""
        record = _RecordPoint(1, "a", "hunter2")
        assert repr(record) == "_RecordPoint(label='a', secret=<hidden>, x=1)"
        assert "hunter2" not in repr(record)
        assert repr(_Point(1, "a", "hunter2")) == "_Point(x=1, label='a')"
