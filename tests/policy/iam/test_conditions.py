"""Condition operators: parsing names and values, missing keys, sets, variables."""

from __future__ import annotations

import pytest

from policy.iam.conditions import (
    ValueError_,
    clause_holds,
    compile_clause,
    evaluate_clause,
    parse_date,
    parse_operator,
)


def _run(
    op: str, values: list[object], context: dict[str, tuple[str, ...]], key: str = "k"
) -> bool:
    operator = parse_operator(op)
    assert operator is not None
    clause = compile_clause(operator, key, values, substitute=True)
    ctx = {k.lower(): v for k, v in context.items()}

    def lookup(name: str) -> str | None:
        vals = ctx.get(name)
        return vals[0] if vals and len(vals) == 1 else None

    result = evaluate_clause(clause, ctx, lookup).result
    # The decision-only path (policy.iam.decide) must agree on every clause.
    assert clause_holds(clause, ctx, lookup) is result
    return result


class TestOperatorNames:
    """Operator parsing."""

    @pytest.mark.parametrize(
        ("name", "base", "qualifier", "if_exists"),
        [
            ("StringEquals", "StringEquals", None, False),
            ("ForAllValues:StringLikeIfExists", "StringLike", "ForAllValues", True),
            ("ForAnyValue:ArnNotLike", "ArnNotLike", "ForAnyValue", False),
            ("NotIpAddressIfExists", "NotIpAddress", None, True),
            ("stringequals", "StringEquals", None, False),
            ("Null", "Null", None, False),
        ],
    )
    def test_known(
        self, name: str, base: str, qualifier: str | None, if_exists: bool
    ) -> None:
        """Known operators parse into base, qualifier and IfExists."""
        op = parse_operator(name)
        assert op is not None
        assert (op.base, op.qualifier, op.if_exists) == (base, qualifier, if_exists)

    @pytest.mark.parametrize(
        "name",
        [
            "StringEqulas",
            "NullIfExists",
            "ForAllValues:Null",
            "Foo:StringEquals",
            "IfExists",
            "",
        ],
    )
    def test_unknown(self, name: str) -> None:
        """Unknown names are None (never treated as true)."""
        assert parse_operator(name) is None


class TestSemantics:
    """Operator behaviour on present, missing and multi-valued keys."""

    @pytest.mark.parametrize(
        ("op", "values", "context", "expected"),
        [
            ("StringEquals", ["a"], {}, False),
            ("StringNotEquals", ["a"], {}, True),
            ("StringEqualsIfExists", ["a"], {}, True),
            ("StringEqualsIfExists", ["a"], {"k": ("b",)}, False),
            ("StringNotEqualsIfExists", ["a"], {}, True),
            ("StringNotEquals", ["a", "b"], {"k": ("b",)}, False),
            ("StringNotEquals", ["a", "b"], {"k": ("c",)}, True),
            ("StringLike", ["a*c"], {"k": ("abbbc",)}, True),
            ("StringLike", ["a?c"], {"k": ("ac",)}, False),
            ("StringNotLike", ["a*"], {}, True),
            ("NumericLessThan", ["10"], {"k": ("9.99",)}, True),
            ("NumericLessThan", ["10"], {"k": ("abc",)}, False),
            ("NumericNotEquals", ["10"], {"k": ("abc",)}, True),
            ("NumericGreaterThanEquals", [10], {"k": ("10",)}, True),
            ("DateEquals", ["2026-01-01T00:00:00Z"], {"k": ("1767225600",)}, True),
            (
                "DateLessThan",
                ["2026-01-01T00:00:00.500Z"],
                {"k": ("2026-01-01T00:00:00Z",)},
                True,
            ),
            ("Bool", [True], {"k": ("true",)}, True),
            ("Bool", ["false"], {}, False),
            ("BoolIfExists", ["false"], {}, True),
            ("IpAddress", ["10.0.0.0/8"], {"k": ("not-an-ip",)}, False),
            ("NotIpAddress", ["10.0.0.0/8"], {"k": ("not-an-ip",)}, True),
            ("IpAddress", ["2001:db8::/32"], {"k": ("2001:DB8::1",)}, True),
            ("ArnLike", ["*"], {"k": ("anything",)}, True),
            (
                "ArnEquals",
                ["arn:aws:iam::*:role/x"],
                {"k": ("arn:aws:iam::1:role/x",)},
                True,
            ),
            ("ArnLike", ["arn:aws:iam::*:role/x"], {"k": ("not-an-arn",)}, False),
            ("ArnNotLike", ["arn:aws:iam::*:role/x"], {"k": ("not-an-arn",)}, True),
            ("Null", ["true"], {"k": ()}, True),
            ("Null", ["false"], {"k": ("v",)}, True),
            ("Null", [False], {}, False),
            ("BinaryEquals", ["YQ=="], {"k": ("not base64!",)}, False),
            ("ForAllValues:StringEquals", ["a"], {}, True),
            ("ForAllValues:StringEquals", ["a"], {"k": ()}, True),
            ("ForAllValues:StringEquals", ["a", "b"], {"k": ("a", "c")}, False),
            ("ForAnyValue:StringEquals", ["a"], {}, False),
            ("ForAnyValue:StringEqualsIfExists", ["a"], {}, True),
            ("ForAnyValue:StringNotEquals", ["a", "b"], {"k": ("a", "b")}, False),
            ("ForAnyValue:StringNotEquals", ["a", "b"], {"k": ("a", "z")}, True),
            ("ForAllValues:StringNotLike", ["adm*"], {"k": ("x", "admin")}, False),
            # [open] plain operator, several request values: any / none.
            ("StringEquals", ["a"], {"k": ("b", "a")}, True),
            ("StringNotEquals", ["a"], {"k": ("b", "a")}, False),
        ],
    )
    def test_operator(
        self,
        op: str,
        values: list[object],
        context: dict[str, tuple[str, ...]],
        expected: bool,
    ) -> None:
        """Each operator's documented result."""
        assert _run(op, values, context) is expected

    def test_variables_in_values(self) -> None:
        """String/ARN values substitute variables; a missing one never matches."""
        assert _run(
            "StringEquals",
            ["${aws:username}"],
            {"k": ("alice",), "aws:username": ("alice",)},
        )
        assert not _run("StringEquals", ["${aws:username}"], {"k": ("alice",)})
        assert _run("StringNotEquals", ["${aws:username}"], {"k": ("alice",)})
        assert _run(
            "StringLike",
            ["home/${aws:username}/*"],
            {"k": ("home/a/x",), "aws:username": ("a",)},
        )
        assert not _run(
            "StringLike",
            ["${aws:PrincipalTag/x}"],
            {"k": ("anything",), "aws:principaltag/x": ("*",)},
        )
        assert _run(
            "ArnLike",
            ["arn:aws:iam::1:role/${aws:username}"],
            {"k": ("arn:aws:iam::1:role/r",), "aws:username": ("r",)},
        )
        # The fifth-colon rule holds for Arn* values as for Resource: before the
        # resource part ${...} is literal text, so it matches nothing real.
        assert not _run(
            "ArnLike",
            ["arn:aws:iam::${aws:PrincipalAccount}:role/*"],
            {"k": ("arn:aws:iam::1:role/r",), "aws:PrincipalAccount": ("1",)},
        )
        assert _run(
            "ArnLike",
            ["arn:aws:iam::${aws:PrincipalAccount}:role/*"],
            {"k": ("arn:aws:iam::${aws:PrincipalAccount}:role/r",)},
        )
        assert _run(
            "Bool",
            ["${aws:PrincipalTag/flag}"],
            {"k": ("true",), "aws:principaltag/flag": ("TRUE",)},
        )

    def test_multi_valued_key_is_not_a_variable(self) -> None:
        """A key with several values does not resolve as a variable."""
        assert not _run(
            "StringEquals", ["${aws:TagKeys}"], {"k": ("a",), "aws:tagkeys": ("a", "b")}
        )

    def test_unparseable_values_rejected(self) -> None:
        """Bad numbers, dates, CIDRs and booleans fail at compile time."""
        for op, value in [
            ("NumericEquals", "x"),
            ("DateEquals", "2026-13-40"),
            ("IpAddress", "300.1.1.1"),
            ("Bool", "1"),
            ("NumericEquals", True),
        ]:
            operator = parse_operator(op)
            assert operator is not None
            with pytest.raises(ValueError_):
                compile_clause(operator, "k", [value], substitute=True)


class TestDates:
    """Date parsing: W3C ISO 8601 profiles and epoch seconds."""

    @pytest.mark.parametrize(
        ("text", "epoch"),
        [
            ("1970-01-01T00:00:00Z", 0.0),
            ("1970-01-01", 0.0),
            ("1970", 1970.0),  # all digits: epoch seconds, not the year
            ("1970-01-01T01:00:00+01:00", 0.0),
            ("1970-01-01T00:00Z", 0.0),
            ("86400", 86400.0),
            ("1970-01-02T00:00:00.25Z", 86400.25),
        ],
    )
    def test_parse(self, text: str, epoch: float) -> None:
        """Formats parse to the same instant."""
        assert parse_date(text) == epoch

    @pytest.mark.parametrize(
        "text", ["", "tomorrow", "2026-02-30", "2026-01-01T25:00:00Z"]
    )
    def test_invalid(self, text: str) -> None:
        """Invalid dates are None."""
        assert parse_date(text) is None
