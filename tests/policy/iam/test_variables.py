"""Policy variables and ARN/wildcard matching."""

from __future__ import annotations

import pytest

from policy.iam.arnmatch import arn_regex, flat_regex, literal, split_arn, wild
from policy.iam.variables import Variable, parse_template, resolve_template


def _lookup(values: dict[str, str]):  # type: ignore[no-untyped-def]
    return lambda key: values.get(key)


class TestTemplates:
    """Parsing and resolving ${...}."""

    def test_parse_parts(self) -> None:
        """Variables, defaults and escapes are recognised; other text stays text."""
        t = parse_template(
            "a/${aws:username}/${aws:PrincipalTag/team, 'x y'}/${*}${?}${$}"
            "/${bad key'}",
            substitute=True,
        )
        assert t.parts[1] == Variable("aws:username")
        assert t.parts[3] == Variable("aws:PrincipalTag/team", "x y")
        assert t.parts[5:8] == (("lit", "*"), ("lit", "?"), ("lit", "$"))
        assert t.has_variables

    def test_no_substitution_in_2008(self) -> None:
        """Without substitution the string is one literal-text part."""
        t = parse_template("a/${aws:username}", substitute=False)
        assert t.is_plain and not t.has_variables

    def test_resolve(self) -> None:
        """Values are literal chunks; a missing key without default is None."""
        t = parse_template("b/${aws:username}/*", substitute=True)
        assert resolve_template(t, _lookup({"aws:username": "a*"})) == (
            ("b/", True),
            ("a*", False),
            ("/*", True),
        )
        assert resolve_template(t, _lookup({})) is None
        d = parse_template("${aws:x, 'dflt'}", substitute=True)
        assert resolve_template(d, _lookup({})) == (("dflt", False),)

    def test_key_lookup_is_lower_case(self) -> None:
        """Variable keys are looked up case-insensitively."""
        t = parse_template("${AWS:UserName}", substitute=True)
        assert resolve_template(t, _lookup({"aws:username": "z"})) == (("z", False),)


class TestMatching:
    """Flat and per-segment globs."""

    @pytest.mark.parametrize(
        ("pattern", "value", "expected"),
        [
            ("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/y:z", True),
            ("arn:aws:ecs:*:1:task/*", "arn:aws:ecs:us-east-1:1:task/c/t", True),
            ("arn:aws:ecs:*:1:task/*", "arn:aws:ecs:us-east-1:2:task/1:task/x", False),
            ("arn:aws:iam::*:role/x", "arn:aws:iam:us-east-1:1:role/x", False),
            ("arn:aws:iam::?:role/x", "arn:aws:iam::1:role/x", True),
            ("arn:aws:iam::1:role/x", "arn:aws:iam::1:role/X", False),
            ("arn:aws:s3:::b", "arn:aws:s3:::b/c", False),
        ],
    )
    def test_arn(self, pattern: str, value: str, expected: bool) -> None:
        """ARN globs match segment by segment, case-sensitively."""
        assert bool(arn_regex(wild(pattern)).fullmatch(value)) is expected

    def test_literal_chunks_are_not_wildcards(self) -> None:
        """A literal * or ? matches only itself."""
        assert flat_regex(literal("a*")).fullmatch("a*")
        assert not flat_regex(literal("a*")).fullmatch("ab")
        assert flat_regex(wild("a*")).fullmatch("ab")

    def test_flat_ignore_case(self) -> None:
        """Flat globs can ignore case (actions)."""
        assert flat_regex(wild("s3:get*"), ignore_case=True).fullmatch("S3:GetObject")

    def test_split_arn(self) -> None:
        """ARNs split on the first five colons only."""
        assert split_arn("arn:aws:logs:r:1:log-group:a:b") == (
            "arn",
            "aws",
            "logs",
            "r",
            "1",
            "log-group:a:b",
        )
        assert split_arn("arn:aws:s3") is None
        assert split_arn("urn:a:b:c:d:e") is None
