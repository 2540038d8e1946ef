"""Policy parsing and validation: errors name the policy, statement and element."""

from __future__ import annotations

from typing import Any

import pytest

from policy.errors import InvalidPolicyError
from policy.iam.model import compile_policy, load_policy_json
from policy.iam.statement import PolicyKind
from policy.iam.suite import format_error

V = "2012-10-17"


def _doc(*stmts: dict[str, Any], version: str | None = V) -> dict[str, Any]:
    doc: dict[str, Any] = {"Statement": list(stmts)}
    if version:
        doc["Version"] = version
    return doc


OK = {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}


def _error(
    doc: object, kind: str = "identity", name: str = "deploy-policy"
) -> InvalidPolicyError:
    with pytest.raises(InvalidPolicyError) as info:
        compile_policy(doc, name=name, kind=kind)
    return info.value


class TestErrors:
    """Invalid documents and the pointer each error carries."""

    def test_unknown_operator_example(self) -> None:
        """The documented example: policy, statement index and Sid, operator."""
        bad = {
            **OK,
            "Sid": "AllowS3",
            "Condition": {"StringEqulas": {"aws:username": "a"}},
        }
        exc = _error(_doc(OK, OK, bad))
        assert (
            format_error(exc)
            == 'deploy-policy: /Statement/2 (Sid "AllowS3")/Condition/StringEqulas: '
            "unknown operator"
        )
        assert exc.policy == "deploy-policy"

    @pytest.mark.parametrize(
        ("stmt", "pointer", "fragment"),
        [
            (
                {"Effect": "allow", "Action": "s3:*", "Resource": "*"},
                "/Statement/0/Effect",
                "Allow",
            ),
            (
                {"Effect": "Allow", "Resource": "*"},
                "/Statement/0",
                "Action or NotAction",
            ),
            (
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "NotAction": "s3:Get*",
                    "Resource": "*",
                },
                "/Statement/0",
                "exactly one",
            ),
            (
                {"Effect": "Allow", "Action": "s3:*"},
                "/Statement/0",
                "Resource or NotResource",
            ),
            (
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": "*",
                    "NotResource": "*",
                },
                "/Statement/0",
                "exclusive",
            ),
            (
                {"Effect": "Allow", "Action": "s3", "Resource": "*"},
                "/Statement/0/Action",
                "service:action",
            ),
            (
                {"Effect": "Allow", "Action": [], "Resource": "*"},
                "/Statement/0/Action",
                "empty",
            ),
            (
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": "arn:aws:ecs:us-east-1:*",
                },
                "/Statement/0/Resource",
                "six parts",
            ),
            (
                {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3*:::b"},
                "/Statement/0/Resource",
                "service",
            ),
            (
                {"Effect": "Allow", "Action": "s3:*", "Resource": "bucket"},
                "/Statement/0/Resource",
                "ARN",
            ),
            (
                {
                    "Effect": "Allow",
                    "Action": "s3:*",
                    "Resource": "*",
                    "Principal": "*",
                },
                "/Statement/0/Principal",
                "identity",
            ),
            (
                {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Extra": 1},
                "/Statement/0/Extra",
                "unknown element",
            ),
            (
                {"Sid": 3, "Effect": "Allow", "Action": "s3:*", "Resource": "*"},
                "/Statement/0/Sid",
                "string",
            ),
            ({**OK, "Condition": []}, "/Statement/0/Condition", "object"),
            (
                {**OK, "Condition": {"StringEquals": "x"}},
                "/Statement/0/Condition/StringEquals",
                "key -> values",
            ),
            (
                {**OK, "Condition": {"StringEquals": {"k": []}}},
                "/Statement/0/Condition/StringEquals/k",
                "at least one",
            ),
            (
                {**OK, "Condition": {"StringEquals": {"k": {"a": 1}}}},
                "/Statement/0/Condition/StringEquals/k",
                "strings, numbers",
            ),
            (
                {**OK, "Condition": {"NumericLessThan": {"k": "ten"}}},
                "/Statement/0/Condition/NumericLessThan/k",
                "not a number",
            ),
            (
                {**OK, "Condition": {"NumericEquals": {"k": "${aws:x}"}}},
                "/Statement/0/Condition/NumericEquals/k",
                "not a number",
            ),
            (
                {**OK, "Condition": {"DateLessThan": {"k": "yesterday"}}},
                "/Statement/0/Condition/DateLessThan/k",
                "ISO 8601",
            ),
            (
                {**OK, "Condition": {"IpAddress": {"k": "10.0.0.0/33"}}},
                "/Statement/0/Condition/IpAddress/k",
                "CIDR",
            ),
            (
                {**OK, "Condition": {"BinaryEquals": {"k": "not base64!"}}},
                "/Statement/0/Condition/BinaryEquals/k",
                "base64",
            ),
            (
                {**OK, "Condition": {"Bool": {"k": "yes"}}},
                "/Statement/0/Condition/Bool/k",
                "true or false",
            ),
            (
                {**OK, "Condition": {"Null": {"k": "maybe"}}},
                "/Statement/0/Condition/Null/k",
                "true or false",
            ),
            (
                {**OK, "Condition": {"ArnLike": {"k": "arn:aws:iam::1"}}},
                "/Statement/0/Condition/ArnLike/k",
                "six parts",
            ),
            (
                {**OK, "Condition": {"NullIfExists": {"k": "true"}}},
                "/Statement/0/Condition/NullIfExists",
                "unknown operator",
            ),
            (
                {**OK, "Condition": {"ForEveryValue:StringEquals": {"k": "v"}}},
                "/Statement/0/Condition/ForEveryValue:StringEquals",
                "unknown operator",
            ),
        ],
    )
    def test_statement_errors_point_at_element(
        self, stmt: dict[str, Any], pointer: str, fragment: str
    ) -> None:
        """Each invalid element is reported at its JSON pointer."""
        exc = _error(_doc(stmt))
        assert exc.pointer == pointer
        assert fragment in exc.detail

    @pytest.mark.parametrize(
        ("doc", "pointer"),
        [
            ([], ""),
            ({"Version": V}, ""),
            ({"Version": "2020-01-01", "Statement": [OK]}, "/Version"),
            ({"Version": V, "Statement": "x"}, "/Statement"),
            ({"Version": V, "Statement": [OK], "Other": 1}, "/Other"),
            ({"Version": V, "Statement": [1]}, "/Statement/0"),
        ],
    )
    def test_document_errors(self, doc: object, pointer: str) -> None:
        """Top-level shape errors point at the top-level element."""
        assert _error(doc).pointer == pointer

    def test_single_statement_object_pointer(self) -> None:
        """A Statement given as one object is addressed as /Statement."""
        exc = _error(
            {
                "Version": V,
                "Statement": {
                    "Sid": "One",
                    "Effect": "Maybe",
                    "Action": "s3:*",
                    "Resource": "*",
                },
            }
        )
        assert exc.pointer == '/Statement (Sid "One")/Effect'

    def test_duplicate_operator_rejected(self) -> None:
        """The same operator twice in a Condition is rejected, not silently merged."""
        text = (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "s3:*", "Resource": "*",'
            ' "Condition": {"StringEquals": {"a": "1"}, "StringEquals": {"b": "2"}}}]}'
        )
        exc = _error(load_policy_json(text))
        assert exc.pointer == "/Statement/0/Condition/StringEquals"
        assert "duplicate" in exc.detail

    def test_duplicate_key_in_block_and_statement(self) -> None:
        """Duplicate condition keys and statement elements are rejected too."""
        block = (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Action": "s3:*", "Resource": "*", '
            '"Condition": {"StringEquals": {"a": "1", "a": "2"}}}]}'
        )
        assert (
            _error(load_policy_json(block)).pointer
            == "/Statement/0/Condition/StringEquals/a"
        )
        elem = (
            '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", '
            '"Effect": "Deny", "Action": "s3:*", "Resource": "*"}]}'
        )
        assert _error(load_policy_json(elem)).pointer == "/Statement/0/Effect"

    def test_not_json(self) -> None:
        """Text that is not JSON is an InvalidPolicyError."""
        with pytest.raises(InvalidPolicyError, match="not valid JSON"):
            compile_policy("{nope", name="p")


class TestKinds:
    """Which elements each policy type accepts."""

    def test_resource_policy_needs_principal(self) -> None:
        """Resource and trust policies require Principal or NotPrincipal."""
        assert "needs Principal" in _error(_doc(OK), kind="resource").detail
        assert (
            "needs Principal"
            in _error(
                _doc({"Effect": "Allow", "Action": "sts:AssumeRole"}), kind="trust"
            ).detail
        )

    def test_resource_policy_may_omit_resource(self) -> None:
        """A resource policy statement without Resource means this resource."""
        policy = compile_policy(
            _doc({"Effect": "Allow", "Principal": "*", "Action": "sqs:*"}),
            kind="resource",
        )
        assert policy.statements[0].resources is None

    def test_allow_with_notprincipal_rejected(self) -> None:
        """Allow + NotPrincipal is rejected; Deny + NotPrincipal is accepted."""
        allow = {
            "Effect": "Allow",
            "NotPrincipal": {"AWS": "111122223333"},
            "Action": "s3:*",
            "Resource": "*",
        }
        assert (
            _error(_doc(allow), kind="resource").pointer == "/Statement/0/NotPrincipal"
        )
        compile_policy(_doc({**allow, "Effect": "Deny"}), kind="resource")

    def test_unknown_principal_type(self) -> None:
        """Principal types other than AWS/Service/Federated/CanonicalUser fail."""
        stmt = {"Effect": "Allow", "Principal": {"Aws": "x"}, "Action": "s3:*"}
        assert (
            _error(_doc(stmt), kind="resource").pointer == "/Statement/0/Principal/Aws"
        )

    @pytest.mark.parametrize("element", ["Principal", "NotPrincipal"])
    def test_scp_rejects_principal(self, element: str) -> None:
        """SCPs have no Principal or NotPrincipal."""
        stmt = {"Effect": "Deny", element: "*", "Action": "s3:*", "Resource": "*"}
        assert _error(_doc(stmt), kind="scp").pointer == f"/Statement/0/{element}"

    def test_scp_resource_optional(self) -> None:
        """An SCP statement without Resource applies to every resource."""
        policy = compile_policy(_doc({"Effect": "Deny", "Action": "s3:*"}), kind="scp")
        (stmt,) = policy.statements
        assert policy.kind is PolicyKind.SCP and not policy.warnings
        # None is "no Resource element": every resource, unlike an empty list
        assert stmt.resources is None and stmt.not_resource is False

    @pytest.mark.parametrize(
        ("stmt", "version", "pointer"),
        [
            (
                {"Effect": "Deny", "NotAction": "s3:*", "Resource": "*"},
                V,
                "/Statement/0/NotAction",
            ),
            (
                {
                    "Effect": "Deny",
                    "Principal": {"AWS": "111122223333"},
                    "Action": "s3:*",
                    "Resource": "*",
                },
                V,
                "/Statement/0/Principal",
            ),
            (
                {
                    "Effect": "Deny",
                    "NotPrincipal": "*",
                    "Action": "s3:*",
                    "Resource": "*",
                },
                V,
                "/Statement/0/NotPrincipal",
            ),
            (
                {"Effect": "Deny", "Principal": "*", "Action": "s3:*", "Resource": "*"},
                "2008-10-17",
                "/Version",
            ),
        ],
    )
    def test_rcp_restrictions(
        self, stmt: dict[str, Any], version: str, pointer: str
    ) -> None:
        """RCPs: no NotAction/NotPrincipal, only Principal "*", Version 2012-10-17."""
        assert _error(_doc(stmt, version=version), kind="rcp").pointer == pointer

    def test_unknown_kind(self) -> None:
        """An unknown policy kind is an InvalidPolicyError."""
        assert "kind" in _error(_doc(OK), kind="bucket").detail


class TestWarnings:
    """lint findings that are valid but risky."""

    def test_warnings(self) -> None:
        """NotAction on *, ForAllValues under Allow, odd operator case, no Version."""
        doc = _doc(
            {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"},
            {
                **OK,
                "Condition": {
                    "ForAllValues:StringEquals": {"aws:TagKeys": "a"},
                    "stringequals": {"k": "v"},
                },
            },
            version=None,
        )
        messages = [w.message for w in compile_policy(doc).warnings]
        assert any("NotAction" in m for m in messages)
        assert any("ForAllValues" in m for m in messages)
        assert any("StringEquals" in m for m in messages)
        assert any("Version" in m for m in messages)

    def test_clean_policy_has_no_warnings(self) -> None:
        """A plain policy has no findings."""
        assert compile_policy(_doc(OK)).warnings == ()


class TestIndex:
    """Statements are indexed by service prefix."""

    def test_candidates(self) -> None:
        """Candidates: statements that can concern the service (NotAction, * always)."""
        doc = _doc(
            {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
            {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
            {"Effect": "Deny", "NotAction": "iam:*", "Resource": "*"},
            {"Effect": "Allow", "Action": "*", "Resource": "*"},
        )
        policy = compile_policy(doc)
        assert [s.index for s in policy.candidates("s3")] == [0, 2, 3]
        assert [s.index for s in policy.candidates("lambda")] == [2, 3]
        assert policy.kind is PolicyKind.IDENTITY


class TestKeyWarnings:
    """Key metadata findings and the RCP Allow warning."""

    def test_set_and_plain_operator_misuse(self) -> None:
        """Set operators on single-valued keys, plain ones on multivalued keys warn."""
        doc = _doc(
            {
                **OK,
                "Condition": {
                    "ForAnyValue:StringEquals": {"aws:SourceVpce": "vpce-1"},
                    "StringEquals": {"aws:TagKeys": "env"},
                },
            }
        )
        messages = [w.message for w in compile_policy(doc).warnings]
        assert "set operator on a single-valued key" in messages
        assert "multivalued key: use ForAllValues: or ForAnyValue:" in messages

    def test_rcp_allow_warning(self) -> None:
        """RCP Allow warns unless it is the RCPFullAWSAccess form."""
        full = {"Effect": "Allow", "Principal": "*", "Action": "*", "Resource": "*"}
        assert compile_policy(_doc(full), kind="rcp").warnings == ()
        limited = {**full, "Action": "s3:*"}
        warnings = compile_policy(_doc(limited), kind="rcp").warnings
        assert [w.where for w in warnings] == ["/Statement/0/Effect"]


def test_runtask_with_cluster_arn_warns() -> None:
    """ecs:RunTask on a cluster ARN is flagged (authorized on task definitions)."""
    cluster = "arn:aws:ecs:eu-west-1:111122223333:cluster/prod"
    bad = compile_policy(
        _doc({"Effect": "Allow", "Action": "ecs:RunTask", "Resource": cluster})
    )
    assert any("task-definition" in w.message for w in bad.warnings)
    good = compile_policy(
        _doc(
            {
                "Effect": "Allow",
                "Action": "ecs:RunTask",
                "Resource": "arn:aws:ecs:eu-west-1:111122223333:task-definition/web:*",
                "Condition": {"ArnEquals": {"ecs:cluster": cluster}},
            }
        )
    )
    assert good.warnings == ()


@pytest.mark.parametrize(
    "resource", ["arn:aws:ec2:*", "arn:aws:ecs:us-east-1:*", "arn:aws:sqs:*:*"]
)
def test_truncated_resource_rejected_in_validation(resource: str) -> None:
    """A Resource ARN with under six parts is invalid, not padded
    (docs/policy-semantics.md)."""
    err = _error(_doc({"Effect": "Allow", "Action": "ec2:*", "Resource": resource}))
    assert err.pointer == "/Statement/0/Resource"
    assert "six parts" in str(err)
