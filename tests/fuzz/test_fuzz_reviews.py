"""Fuzzing the webhook's request bodies through Flask's test client.

``POST /authenticate`` (TokenReview) and ``POST /authorize``
(SubjectAccessReview) get random bytes, random JSON, and mutations of a real
review (fields of the wrong type, other versions and kinds, unknown fields,
duplicate keys, raw text edits, a real token or a broken one, strings with
lone surrogates). Properties (docs/operations.md and
docs/rbac-and-tiers.md):

* the status is one of 200, 400, 405, 413, 429 (never a 5xx);
* a body that is not a review of a supported version is 400, a body over
  64 KiB is 413, any method but POST is 405;
* a review is answered 200 in its own apiVersion and kind;
* STS is called only for tokens that pass the offline checks (the fake STS
  records every call; the test fails when one appears for a rejected token).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from authenticator.errors import MalformedTokenError
from authenticator.identity import Identity
from authenticator.mapping import MappingSet, parse_mappings
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.verify import PresignedCall, verify_token
from webhook import create_app
from webhook.services import Services
from webhook.settings import CacheSettings, STSSettings, WebhookSettings

CLUSTER = "fuzz-cluster"
REGION = "us-west-2"
ACCOUNT = "111122223333"
NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
# Nobody listens there: the recording fake answers instead.
ENDPOINT = "http://127.0.0.1:9"
TR_V1 = "authentication.k8s.io/v1"
TR_V1BETA1 = "authentication.k8s.io/v1beta1"
SAR_V1 = "authorization.k8s.io/v1"
SAR_V1BETA1 = "authorization.k8s.io/v1beta1"
# docs/operations.md: every status the webhook may answer with.
SPEC_STATUSES = frozenset({200, 400, 405, 413, 429})
MAX_BODY = 64 * 1024
RBAC_DIR = Path(__file__).parent.parent / "data" / "rbac" / "cluster"
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
IDENTITY = Identity(
    arn=f"arn:aws:iam::{ACCOUNT}:user/fuzzer",
    canonical_arn=f"arn:aws:iam::{ACCOUNT}:user/fuzzer",
    account_id=ACCOUNT,
    user_id="AIDAFUZZFUZZFUZZFUZZ",
    session_name="",
    access_key_id="AKIAFUZZ",
)
MAPPING = {
    "mapUsers": [
        {
            "userarn": IDENTITY.canonical_arn,
            "username": "fuzzer",
            "groups": ["fuzzers"],
        }
    ]
}


@dataclass
class RecordingSTS:
    """Answers IDENTITY and records every call."""

    calls: list[PresignedCall] = field(default_factory=list)

    def call_get_caller_identity(self, call: PresignedCall) -> Identity:
        """Record the call; the identity is always the mapped fuzzer."""
        self.calls.append(call)
        return IDENTITY


@dataclass
class FixedRegistry:
    """One immutable mapping table."""

    sets: tuple[MappingSet, ...]
    ready: bool = True

    def snapshot(self) -> tuple[MappingSet, ...]:
        """The table."""
        return self.sets


@dataclass
class App:
    """The app under test, its client and the recording STS."""

    app: Flask
    client: FlaskClient
    sts: RecordingSTS

    @property
    def services(self) -> Services:
        """The app's services (allow-list, cache...)."""
        services = self.app.extensions["kubeiam"]
        assert isinstance(services, Services)
        return services


@pytest.fixture(scope="module")
def webhook() -> Iterator[App]:
    """The webhook over a recording STS, with POST /authorize enabled."""
    sts = RecordingSTS()
    registry = FixedRegistry((parse_mappings(MAPPING, source="inline", where="fuzz"),))
    app = create_app(
        WebhookSettings(
            cluster_id=CLUSTER,
            sts=STSSettings(region=REGION, extra_endpoints=(ENDPOINT,), timeout_s=2),
            cache=CacheSettings(ttl_seconds=60, max_entries=100),
            authorization={"rbacPaths": [str(RBAC_DIR)]},
        ),
        sts=sts,
        registry=registry,
        clock=lambda: NOW,
    )
    yield App(app, app.test_client(), sts)
    app.extensions["kubeiam"].close()


def mint(secret: str = "fuzz-secret") -> str:
    """A real token for ENDPOINT, valid at NOW."""
    return presign_get_caller_identity(
        credentials=StaticCredentials("AKIAFUZZ", secret),
        region=REGION,
        cluster_id=CLUSTER,
        now=NOW,
        endpoint_url=ENDPOINT,
    ).token


VALID_TOKEN = mint()


# --------------------------------------------------------------------------- oracles


class _DuplicateKeyError(ValueError):
    pass


def _strict_object(pairs: list[tuple[str, object]]) -> dict[str, object]:
    out: dict[str, object] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKeyError(key)
        out[key] = value
    return out


def load_json(body: bytes, *, strict: bool) -> object | None:
    """The decoded body, or None when it is not JSON (or repeats a key when strict)."""
    try:
        hook = _strict_object if strict else None
        doc: object = json.loads(body.decode("utf-8"), object_pairs_hook=hook)
    except (ValueError, RecursionError):
        return None
    return doc


def tokenreview_of(body: bytes) -> tuple[str, str] | None:
    """``(apiVersion, token)`` when the body is a TokenReview kubeiam must answer.

    Kubernetes webhook authn docs: a JSON object with kind TokenReview, apiVersion v1
    or v1beta1, ``spec`` an object (absent or null: empty) and ``spec.token`` a
    string (absent or null: empty). kubeiam also refuses a repeated JSON key.
    """
    doc = load_json(body, strict=True)
    if not isinstance(doc, dict) or doc.get("kind") != "TokenReview":
        return None
    version = doc.get("apiVersion")
    if version not in (TR_V1, TR_V1BETA1):
        return None
    spec = {} if doc.get("spec") is None else doc["spec"]
    if not isinstance(spec, dict):
        return None
    token = "" if spec.get("token") is None else spec["token"]
    if not isinstance(token, str):
        return None
    assert isinstance(version, str)
    return version, token


def passes_offline(webhook: App, token: str) -> bool:
    """Whether the token passes every offline check (the only way to reach STS)."""
    try:
        verify_token(
            token,
            cluster_id=CLUSTER,
            now=NOW,
            allowed_hosts=webhook.services.allowed_hosts,
        )
    except MalformedTokenError:
        return False
    return True


def check_authenticate(
    webhook: App, body: bytes, content_type: str = "application/json"
) -> None:
    """POST a body to /authenticate and check every property of the answer."""
    calls = len(webhook.sts.calls)
    resp = webhook.client.post(
        "/authenticate?timeout=30s", data=body, content_type=content_type
    )
    assert resp.status_code in SPEC_STATUSES, (resp.status_code, resp.data[:200])
    assert resp.mimetype == "application/json"
    answer = json.loads(resp.data)
    if len(body) > MAX_BODY:
        assert resp.status_code == 413
        assert len(webhook.sts.calls) == calls
        return
    review = tokenreview_of(body)
    if review is None:
        assert resp.status_code == 400, resp.data[:200]
        assert len(webhook.sts.calls) == calls
        return
    version, token = review
    assert resp.status_code == 200
    assert answer["apiVersion"] == version
    assert answer["kind"] == "TokenReview"
    assert "audiences" not in answer["status"]
    offline_ok = passes_offline(webhook, token)
    if not offline_ok:
        assert len(webhook.sts.calls) == calls, "STS called for a rejected token"
        assert answer["status"]["authenticated"] is False
        assert "error" not in answer["status"]
    else:
        assert answer["status"]["authenticated"] is True
        assert answer["status"]["user"]["username"] == "fuzzer"


def check_authorize(webhook: App, body: bytes) -> None:
    """POST a body to /authorize and check every property of the answer."""
    resp = webhook.client.post("/authorize", data=body, content_type="application/json")
    assert resp.status_code in SPEC_STATUSES, (resp.status_code, resp.data[:200])
    if len(body) > MAX_BODY:
        assert resp.status_code == 413
        return
    doc = load_json(body, strict=False)
    is_sar_shaped = (
        isinstance(doc, dict)
        and doc.get("kind") == "SubjectAccessReview"
        and doc.get("apiVersion") in (SAR_V1, SAR_V1BETA1)
    )
    if not is_sar_shaped:
        assert resp.status_code == 400, resp.data[:200]
        return
    assert isinstance(doc, dict)
    assert resp.status_code in (200, 400)
    answer = json.loads(resp.data)
    if resp.status_code == 200:
        assert answer["apiVersion"] == doc["apiVersion"]
        assert answer["kind"] == "SubjectAccessReview"
        assert isinstance(answer["status"]["allowed"], bool)
        assert isinstance(answer["status"].get("denied", False), bool)


# --------------------------------------------------------------------------- inputs

# Strings with the characters JSON and URLs make special, plus lone surrogates
# (valid JSON escapes that are not encodable text).
# (st.text drops surrogates from any alphabet: join characters instead.)
odd_text = st.lists(
    st.characters(codec="utf-8")
    | st.sampled_from(["\ud800", "\udfff", "\x00", '"', "\\", "%", "\u2028"]),
    max_size=30,
).map("".join)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | odd_text
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(odd_text, inner, max_size=4)
    ),
    max_leaves=12,
)
tokens = (
    st.sampled_from(
        [
            VALID_TOKEN,
            VALID_TOKEN[:-1],
            VALID_TOKEN + "A",
            "",
            "k8s-aws-v1.",
            "x" * 5000,
        ]
    )
    | odd_text
    | st.just(None)
    | json_values
)


def dumps(doc: object) -> bytes:
    """JSON text (NaN and lone surrogates escaped as Python's json writes them)."""
    return json.dumps(doc).encode()


@st.composite
def mutated_tokenreviews(draw: st.DrawFn) -> bytes:
    """A TokenReview with fields replaced, dropped or added, then maybe text-edited."""
    doc: dict[str, object] = {
        "apiVersion": draw(st.sampled_from([TR_V1, TR_V1BETA1])),
        "kind": "TokenReview",
        "metadata": {"creationTimestamp": None},
        "spec": {"token": draw(tokens), "audiences": ["https://kubernetes"]},
        "status": {"user": {}},
    }
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(["apiVersion", "kind", "spec", "metadata", "x"]))
        choice = draw(st.integers(0, 2))
        if choice == 0:
            doc.pop(key, None)
        elif choice == 1:
            doc[key] = draw(
                st.sampled_from(
                    [TR_V1, "authentication.k8s.io/v2", "v1", "TokenRevieW", SAR_V1]
                )
                | json_values
            )
        else:
            doc["spec"] = draw(
                st.dictionaries(
                    st.sampled_from(["token", "audiences", "Token", "x"]),
                    tokens,
                    max_size=3,
                )
                | json_values
            )
    text = dumps(doc)
    edit = draw(st.sampled_from(["none", "none", "duplicate", "cut", "insert"]))
    if edit == "duplicate":
        text = text[:-1] + b', "kind": "TokenReview"}' if text.endswith(b"}") else text
    elif edit == "cut":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + text[i + draw(st.integers(1, 5)) :]
    elif edit == "insert":
        i = draw(st.integers(0, len(text)))
        text = text[:i] + draw(st.binary(min_size=1, max_size=4)) + text[i:]
    return text


def sar(version: str, spec: object) -> dict[str, object]:
    """A SubjectAccessReview document."""
    return {"apiVersion": version, "kind": "SubjectAccessReview", "spec": spec}


@st.composite
def mutated_sars(draw: st.DrawFn) -> bytes:
    """A SubjectAccessReview with spec fields of random shapes and values."""
    version = draw(st.sampled_from([SAR_V1, SAR_V1BETA1, TR_V1, "v1"]))
    groups_key = "groups" if version == SAR_V1 else "group"
    attrs = draw(
        st.fixed_dictionaries(
            {},
            optional={
                "verb": st.sampled_from(["get", "list", "*", "create"]) | json_values,
                "resource": st.sampled_from(["pods", "secrets", "*"]) | json_values,
                "group": st.sampled_from(["", "apps", "*"]) | json_values,
                "namespace": st.sampled_from(["", "dev", "prod"]) | json_values,
                "name": odd_text,
                "subresource": st.sampled_from(["", "log", "status"]),
                "version": st.just("v1"),
            },
        )
    )
    spec: dict[str, object] = {
        "user": draw(st.sampled_from(["alice", "system:admin", ""]) | json_values),
        groups_key: draw(
            st.lists(st.sampled_from(["system:masters", "dev-team"]) | odd_text)
            | json_values
        ),
        "uid": draw(odd_text),
        "extra": draw(
            st.dictionaries(odd_text, st.lists(odd_text, max_size=2)) | json_values
        ),
    }
    which = draw(st.sampled_from(["res", "non", "both", "neither"]))
    if which in ("res", "both"):
        spec["resourceAttributes"] = attrs
    if which in ("non", "both"):
        spec["nonResourceAttributes"] = draw(
            st.fixed_dictionaries(
                {"path": st.sampled_from(["/healthz", "/api", "*"]) | json_values},
                optional={"verb": st.sampled_from(["get", "post"]) | json_values},
            )
        )
    doc = sar(version, spec if draw(st.integers(0, 9)) else draw(json_values))
    return dumps(doc)


# --------------------------------------------------------------------------- tests


class TestTokenReviewBodies:
    """POST /authenticate with any body answers within the documented statuses."""

    def test_positive_control(self, webhook: App) -> None:
        """A real TokenReview with a valid token is authenticated (and reaches STS)."""
        before = len(webhook.sts.calls)
        check_authenticate(
            webhook,
            dumps(
                {
                    "apiVersion": TR_V1,
                    "kind": "TokenReview",
                    "spec": {"token": mint("control")},
                }
            ),
        )
        assert len(webhook.sts.calls) == before + 1

    @FUZZ
    @given(body=st.binary(max_size=300))
    @example(body=b"")
    @example(body=b"\xef\xbb\xbf{}")
    @example(body=b"[" * 50_000)
    @example(body=b'{"a":' * 10_000)
    @example(body=b" " * (MAX_BODY + 1))
    def test_random_bytes(self, webhook: App, body: bytes) -> None:
        """Random bytes are 400 (or 413 when over 64 KiB), never a 5xx."""
        check_authenticate(webhook, body)

    @FUZZ
    @given(doc=json_values)
    def test_random_json(self, webhook: App, doc: object) -> None:
        """Random JSON documents are 400 unless they happen to be a TokenReview."""
        check_authenticate(webhook, dumps(doc))

    @FUZZ
    @given(
        body=mutated_tokenreviews(),
        content_type=st.sampled_from(
            [
                "application/json",
                "application/json; charset=utf-8",
                "text/plain",
                "application/x-www-form-urlencoded",
                "multipart/form-data; boundary=x",
            ]
        ),
    )
    def test_mutated_reviews(
        self, webhook: App, body: bytes, content_type: str
    ) -> None:
        """Mutated reviews get the documented answer; STS sees valid tokens only."""
        check_authenticate(webhook, body, content_type)

    @pytest.mark.parametrize("token", ["\ud800", "k8s-aws-v1.\udfff"])
    def test_lone_surrogate_token_is_a_plain_deny(
        self, webhook: App, token: str
    ) -> None:
        """A token with a lone surrogate (a legal JSON escape) is denied, not a 500."""
        check_authenticate(
            webhook,
            dumps(
                {"apiVersion": TR_V1, "kind": "TokenReview", "spec": {"token": token}}
            ),
        )

    @pytest.mark.parametrize(
        "method", ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE"]
    )
    def test_other_methods_are_405(self, webhook: App, method: str) -> None:
        """Every method but POST is 405 (docs/operations.md)."""
        resp = webhook.client.open("/authenticate", method=method, data=b"{}")
        assert resp.status_code == 405

    def test_body_over_64k_is_413(self, webhook: App) -> None:
        """A TokenReview padded over 64 KiB is 413 and never reaches STS."""
        doc = {
            "apiVersion": TR_V1,
            "kind": "TokenReview",
            "spec": {"token": VALID_TOKEN},
            "pad": "x" * MAX_BODY,
        }
        check_authenticate(webhook, dumps(doc))


class TestSubjectAccessReviewBodies:
    """POST /authorize with any body answers 200 or 400 (413 when too large)."""

    def test_positive_control(self, webhook: App) -> None:
        """system:masters is allowed (privileged bypass), in the request's version."""
        body = dumps(
            sar(
                SAR_V1,
                {
                    "user": "root",
                    "groups": ["system:masters"],
                    "resourceAttributes": {"verb": "delete", "resource": "nodes"},
                },
            )
        )
        resp = webhook.client.post("/authorize", data=body)
        assert resp.status_code == 200
        assert resp.get_json()["status"]["allowed"] is True

    @FUZZ
    @given(body=st.binary(max_size=300))
    @example(body=b"")
    @example(body=b"null")
    @example(body=b" " * (MAX_BODY + 1))
    def test_random_bytes(self, webhook: App, body: bytes) -> None:
        """Random bytes are 400 (or 413 when over 64 KiB)."""
        check_authorize(webhook, body)

    @FUZZ
    @given(doc=json_values)
    def test_random_json(self, webhook: App, doc: object) -> None:
        """Random JSON documents are 400."""
        check_authorize(webhook, dumps(doc))

    @FUZZ
    @given(body=mutated_sars())
    def test_mutated_reviews(self, webhook: App, body: bytes) -> None:
        """SubjectAccessReviews with fields of any shape are 200 or 400, never 5xx."""
        check_authorize(webhook, body)

    @pytest.mark.parametrize("body", [b"[" * 50_000, b'{"a":' * 10_000 + b"1"])
    def test_deeply_nested_json_is_400(self, webhook: App, body: bytes) -> None:
        """JSON nested past the parser's recursion limit is a 400, not a 500."""
        check_authorize(webhook, body)

    @pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
    def test_other_methods_are_405(self, webhook: App, method: str) -> None:
        """Every method but POST is 405."""
        resp = webhook.client.open("/authorize", method=method, data=b"{}")
        assert resp.status_code == 405
