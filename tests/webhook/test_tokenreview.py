"""TokenReview parsing and answers (webhook/tokenreview.py, pure)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest

from webhook.errors import InvalidReviewError
from webhook.tokenreview import (
    API_VERSIONS,
    TokenReviewRequest,
    build_allow,
    build_deny,
    build_status,
    parse_review,
)

V1 = "authentication.k8s.io/v1"
V1BETA1 = "authentication.k8s.io/v1beta1"


def _body(doc: object) -> bytes:
    return json.dumps(doc).encode()


@dataclass(frozen=True)
class _User:
    username: str = "alice"
    uid: str = "aws-iam-authenticator:111122223333:AIDAEXAMPLE"
    groups: tuple[str, ...] = ("devs", "ops")
    extra: dict[str, tuple[str, ...]] = field(
        default_factory=lambda: {"arn": ("arn:aws:iam::111122223333:user/alice",)}
    )


class TestParseReview:
    """What counts as a TokenReview and what is read from it."""

    @pytest.mark.parametrize("version", sorted(API_VERSIONS))
    def test_reads_version_and_token(self, version: str) -> None:
        """Both versions parse; the token and the version come back."""
        review = parse_review(
            _body(
                {
                    "apiVersion": version,
                    "kind": "TokenReview",
                    "spec": {"token": "k8s-aws-v1.x"},
                }
            )
        )
        assert review == TokenReviewRequest(api_version=version, token="k8s-aws-v1.x")

    def test_ignores_metadata_audiences_status_and_unknown_fields(self) -> None:
        """metadata, spec.audiences, status and unknown keys are ignored."""
        review = parse_review(
            _body(
                {
                    "apiVersion": V1,
                    "kind": "TokenReview",
                    "metadata": {"creationTimestamp": None},
                    "spec": {
                        "token": "t",
                        "audiences": ["https://kubernetes.default.svc"],
                    },
                    "status": {"user": {}},
                    "somethingNew": 1,
                }
            )
        )
        assert review.token == "t"

    @pytest.mark.parametrize("spec", [None, {}, {"token": None}, {"token": ""}])
    def test_missing_token_is_empty_not_an_error(self, spec: object) -> None:
        """A review without a token parses with an empty token (verify rejects it)."""
        doc: dict[str, object] = {"apiVersion": V1, "kind": "TokenReview"}
        if spec is not None:
            doc["spec"] = spec
        assert parse_review(_body(doc)).token == ""

    @pytest.mark.parametrize(
        ("body", "reason"),
        [
            (b"", "empty_body"),
            (b"not json", "not_json"),
            (b"\xff\xfe", "not_json"),
            (b"[" * 100_000, "not_json"),
            (b"[]", "not_object"),
            (b'"TokenReview"', "not_object"),
            (_body({"apiVersion": V1, "spec": {"token": "t"}}), "wrong_kind"),
            (_body({"apiVersion": V1, "kind": "SubjectAccessReview"}), "wrong_kind"),
            (_body({"kind": "TokenReview"}), "unsupported_version"),
            (
                _body(
                    {"apiVersion": "authentication.k8s.io/v2", "kind": "TokenReview"}
                ),
                "unsupported_version",
            ),
            (_body({"apiVersion": 1, "kind": "TokenReview"}), "unsupported_version"),
            (_body({"apiVersion": V1, "kind": "TokenReview", "spec": []}), "bad_spec"),
            (
                _body({"apiVersion": V1, "kind": "TokenReview", "spec": {"token": 5}}),
                "bad_token_field",
            ),
            (
                b'{"apiVersion":"authentication.k8s.io/v1","kind":"TokenReview",'
                b'"spec":{"token":"a","token":"b"}}',
                "duplicate_key",
            ),
        ],
    )
    def test_rejects_what_is_not_a_tokenreview(self, body: bytes, reason: str) -> None:
        """A body that is not a TokenReview raises InvalidReviewError with a reason."""
        with pytest.raises(InvalidReviewError) as info:
            parse_review(body)
        assert info.value.reason == reason

    def test_error_messages_never_echo_the_input(self) -> None:
        """A rejected body's values never appear in the error message."""
        secret = "k8s-aws-v1.SECRETSECRET"
        for doc in (
            {"apiVersion": V1, "kind": secret},
            {"apiVersion": secret, "kind": "TokenReview"},
            {"apiVersion": V1, "kind": "TokenReview", "spec": {"token": [secret]}},
        ):
            with pytest.raises(InvalidReviewError) as info:
                parse_review(_body(doc))
            assert secret not in str(info.value)

    def test_repr_hides_the_token(self) -> None:
        """The parsed request's repr never shows the token."""
        review = TokenReviewRequest(api_version=V1, token="k8s-aws-v1.SECRET")
        assert "SECRET" not in repr(review)


class TestBuild:
    """The answers' exact shapes (docs/operations.md)."""

    @pytest.mark.parametrize("version", [V1, V1BETA1])
    def test_allow_echoes_version_and_carries_the_user(self, version: str) -> None:
        """An allow is a TokenReview in the request's version with the full user."""
        assert build_allow(_User(), api_version=version) == {
            "apiVersion": version,
            "kind": "TokenReview",
            "status": {
                "authenticated": True,
                "user": {
                    "username": "alice",
                    "uid": "aws-iam-authenticator:111122223333:AIDAEXAMPLE",
                    "groups": ["devs", "ops"],
                    "extra": {"arn": ["arn:aws:iam::111122223333:user/alice"]},
                },
            },
        }

    def test_plain_deny_has_no_error(self) -> None:
        """A plain deny (cacheable by the API server) carries no status.error."""
        body = build_deny(api_version=V1BETA1)
        assert body == {
            "apiVersion": V1BETA1,
            "kind": "TokenReview",
            "status": {"authenticated": False, "user": {}},
        }

    def test_deny_with_error(self) -> None:
        """A deny with a reason carries status.error (not cached by the API server)."""
        body = build_deny(api_version=V1, error="arn:... is not mapped")
        assert body["status"] == {
            "authenticated": False,
            "user": {},
            "error": "arn:... is not mapped",
        }

    @pytest.mark.parametrize(
        "body",
        [build_allow(_User(), api_version=V1), build_deny(api_version=V1, error="x")],
    )
    def test_never_returns_audiences(self, body: dict[str, object]) -> None:
        """No answer carries status.audiences (Kubernetes webhook authn docs)."""
        status = body["status"]
        assert isinstance(status, dict)
        assert "audiences" not in status

    def test_answers_are_json_serialisable(self) -> None:
        """Every answer round-trips through JSON."""
        for body in (
            build_allow(_User(), api_version=V1),
            build_deny(api_version=V1),
            build_status(400, "BadRequest", "m"),
        ):
            assert json.loads(json.dumps(body)) == body

    def test_status_object(self) -> None:
        """4xx answers are a Kubernetes Status object client-go decodes."""
        assert build_status(413, "RequestEntityTooLarge", "too big") == {
            "apiVersion": "v1",
            "kind": "Status",
            "status": "Failure",
            "message": "too big",
            "reason": "RequestEntityTooLarge",
            "code": 413,
        }
