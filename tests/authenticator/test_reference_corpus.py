"""aws-iam-authenticator's verifier, host, ARN and identity tests, restated for kubeiam.

Every case cites the reference test it restates (kubernetes-sigs/aws-iam-authenticator:
``pkg/token/token_test.go``, ``pkg/arn/arn_test.go``) or the security advisory it
comes from (docs/threat-model.md). The expected outcome is the
reference's, except where kubeiam's contract is deliberately stricter or
different (docs/token-format.md); those cases say why.

Two rules hold throughout:

* a token the reference rejects is rejected by kubeiam, offline, for the same
  defect: reference URLs lack fields kubeiam requires (``Version``, a credential
  scope, the signature), so each such case is also run "completed" (those fields
  added, the defect kept) and must then fail on the reference's own rule;
* a token the reference accepts is accepted by kubeiam once completed the same
  way; the bare reference URL fails only on a documented stricter rule.

Rejected tokens go through the full path with a loopback canary registered as
an extra STS endpoint: the canary must hear nothing.
"""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler

import pytest

from authenticator.arn import canonicalize_arn, strip_role_path
from authenticator.errors import (
    ConfigError,
    InvalidARNError,
    MalformedTokenError,
    STSRejectedError,
    STSThrottledError,
    STSUnavailableError,
)
from authenticator.hosts import build_allowed_hosts, region_for_host
from authenticator.identity import Identity
from authenticator.partitions import PARTITIONS
from authenticator.sts import STSClient, parse_get_caller_identity
from authenticator.verify import verify_token
from tests.fixtures.verifier import (
    AKID,
    CLUSTER,
    DATE,
    NOW,
    SERVER_REGION,
    SIG,
    LocalServer,
    assert_rejected,
    build_url,
    canary_url,
    reply,
    tok,
)

# The reference's test access key (token_test.go validURL).
REF_AKID = "ASIABCDEFGHIJKLMNOPQ"
# token_test.go formats time.Now() as X-Amz-Date; kubeiam's tests pin NOW/DATE.
TIME_STR = DATE
# kubeiam's fields that reference test URLs lack, by lower-case name.
_KUBEIAM_FIELDS = {
    "version": "Version=2011-06-15",
    "x-amz-algorithm": "X-Amz-Algorithm=AWS4-HMAC-SHA256",
    "x-amz-signature": f"X-Amz-Signature={SIG}",
    "x-amz-signedheaders": "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
}


def complete(url: str, region: str, *, akid: str = AKID) -> str:
    """Add what kubeiam's stricter rules require and a reference test URL lacks.

    Missing ``Version``, ``X-Amz-Algorithm``, ``X-Amz-Signature``,
    ``X-Amz-SignedHeaders`` and ``X-Amz-Credential`` (scoped to ``region`` and the
    date of NOW) are appended; the reference's signed-header list
    ``x-k8s-aws-id`` becomes ``host;x-k8s-aws-id`` (SigV4 always signs host).
    Every other piece, defects included, stays as written.
    """
    base, _, query = url.partition("?")
    pieces = [p for p in query.split("&") if p] if query else []
    pieces = [
        "x-amz-signedheaders=host%3Bx-k8s-aws-id"
        if p.lower() == "x-amz-signedheaders=x-k8s-aws-id"
        else p
        for p in pieces
    ]
    present = {p.split("=", 1)[0].lower() for p in pieces}
    fields = dict(_KUBEIAM_FIELDS)
    fields["x-amz-credential"] = (
        f"X-Amz-Credential={akid}%2F{DATE[:8]}%2F{region}%2Fsts%2Faws4_request"
    )
    pieces += [value for name, value in fields.items() if name not in present]
    return f"{base}?{'&'.join(pieces)}"


@pytest.fixture
def sts() -> Iterator[LocalServer]:
    """A fresh local STS stand-in per test."""
    server = LocalServer().start()
    try:
        yield server
    finally:
        server.close()


def ref_json(arn: str, account: str, user_id: str) -> bytes:
    """token_test.go jsonResponse: the marshalled getCallerIdentityWrapper."""
    return json.dumps(
        {
            "GetCallerIdentityResponse": {
                "GetCallerIdentityResult": {
                    "Account": account,
                    "Arn": arn,
                    "UserId": user_id,
                },
                "ResponseMetadata": {"RequestId": ""},
            }
        }
    ).encode()


def call_sts(server: LocalServer, *, akid: str = REF_AKID) -> Identity:
    """Verify a token aimed at ``server`` and make the STS call (as the webhook)."""
    url = canary_url(
        server,
        X_Amz_Credential=f"{akid}%2F{DATE[:8]}%2F{SERVER_REGION}%2Fsts%2Faws4_request",
    )
    allowed = build_allowed_hosts("aws", [server.url], region=SERVER_REGION)
    call = verify_token(tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed)
    client = STSClient(timeout=2.0)
    try:
        return client.call_get_caller_identity(call)
    finally:
        client.close()


# ----------------------------------------------- TestVerifyTokenPreSTSValidations

# (reference case, token, kubeiam reason). Whole-token checks: no URL to complete.
RAW_CASES = [
    ("too large: 4097 NUL bytes", "\x00" * 4097, "token_too_large"),
    ("prefix k8s-aws-v2.", "k8s-aws-v2.asdfasdfa", "bad_prefix"),
    ("illegal base64 data", "k8s-aws-v1.decodingerror", "bad_base64"),
]

# (reference case, partition, reference URL, reason for the bare URL, reason once
# completed). Where the two reasons differ, the bare URL fails first on a field
# kubeiam requires and the reference does not check (docs/token-format.md: Version
# exactly 2011-06-15, docs/token-format.md); completed, it fails on the
# reference's own rule.
URL_CASES = [
    ("missing protocol scheme", "aws", ":ab:cd.af:/asda", "bad_url", "bad_url"),
    ("unexpected scheme", "aws", "http://", "bad_scheme", "bad_scheme"),
    (
        "invalid host format google.com",
        "aws",
        "https://google.com",
        "host_not_allowed",
        "host_not_allowed",
    ),
    (
        "unexpected path (aws-cn)",
        "aws-cn",
        "https://sts.cn-north-1.amazonaws.com.cn/abc",
        "bad_path",
        "bad_path",
    ),
    (
        "unexpected path",
        "aws",
        "https://sts.amazonaws.com/abc",
        "bad_path",
        "bad_path",
    ),
    (
        "non-whitelisted query parameter",
        "aws",
        "https://sts.amazonaws.com/?NoInWhiteList=abc",
        "unknown_parameter",
        "unknown_parameter",
    ),
    # reference message: "multiple values not supported"; kubeiam rejects any
    # name twice ignoring case (CVE-2022-2385), which includes the same case.
    (
        "query parameter with multiple values",
        "aws",
        "https://sts.amazonaws.com/?action=get&action=post",
        "duplicate_parameter",
        "duplicate_parameter",
    ),
    (
        "unexpected action parameter",
        "aws",
        "https://sts.amazonaws.com/?action=NotGetCallerIdenity",
        "bad_action",
        "bad_action",
    ),
    (
        "did not sign the x-k8s-aws-id header",
        "aws",
        "https://sts.amazonaws.com/?action=GetCallerIdentity"
        "&x-amz-signedheaders=abc%3bx-k8s-aws-i%3bdef",
        "bad_version",
        "unsigned_cluster_id",
    ),
    (
        "invalid X-Amz-Expires 9999999",
        "aws",
        "https://sts.amazonaws.com/?action=GetCallerIdentity"
        f"&x-amz-signedheaders=x-k8s-aws-id&x-amz-date={TIME_STR}"
        "&x-amz-expires=9999999",
        "bad_version",
        "bad_expires",
    ),
    (
        "error parsing X-Amz-Date",
        "aws",
        "https://sts.amazonaws.com/?action=GetCallerIdentity"
        "&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=xxxxxxx&x-amz-expires=60",
        "bad_version",
        "bad_date",
    ),
    (
        "X-Amz-Date parameter is expired",
        "aws",
        "https://sts.amazonaws.com/?action=GetCallerIdentity"
        "&x-amz-signedheaders=x-k8s-aws-id&x-amz-date=19900422T010203Z"
        "&x-amz-expires=60",
        "bad_version",
        "expired",
    ),
    (
        "malformed query parameter 60%gh",
        "aws",
        "https://sts.sa-east-1.amazonaws.com/?action=GetCallerIdentity"
        f"&x-amz-signedheaders=x-k8s-aws-id&x-amz-date={TIME_STR}"
        "&x-amz-expires=60%gh",
        "bad_query",
        "bad_query",
    ),
    # CVE-2022-2385 regression case (the decoy x-amz-credential=eve).
    (
        "duplicate query parameter found",
        "aws",
        "https://sts.us-west-2.amazonaws.com/?Action=GetCallerIdentity"
        "&Version=2011-06-15&X-Amz-Algorithm=AWS4-HMAC-SHA256"
        "&X-Amz-Credential=ASIAAAAAAAAAAAAAAAAA%2F20220601%2Fus-west-2%2Fsts"
        f"%2Faws4_request&X-Amz-Date={TIME_STR}&X-Amz-Expires=900"
        "&X-Amz-Security-Token=XXXXXXXXXXXXX&X-Amz-SignedHeaders=host%3Bx-k8s-aws-id"
        "&x-amz-credential=eve&X-Amz-Signature=999999999999999999",
        "duplicate_parameter",
        "duplicate_parameter",
    ),
]

# validationSuccessTest hosts (all partition aws): accepted by the reference.
SUCCESS_HOSTS = [
    "sts.us-east-2.amazonaws.com",
    "sts.ap-northeast-2.amazonaws.com",
    "sts.ca-central-1.amazonaws.com",
    "sts.eu-west-1.amazonaws.com",
    "sts.sa-east-1.amazonaws.com",
]


def _region_of(url: str, partition: str) -> str:
    """The credential-scope region kubeiam expects for a reference URL's host."""
    host = url.split("://", 1)[-1].split("/", 1)[0].split("?", 1)[0]
    allowed = build_allowed_hosts(
        partition, region=PARTITIONS[partition].default_region
    )
    return region_for_host(allowed, host) or PARTITIONS[partition].default_region


class TestVerifyTokenPreSTSValidations:
    """token_test.go TestVerifyTokenPreSTSValidations, case by case."""

    @pytest.mark.parametrize(("case", "token", "reason"), RAW_CASES)
    def test_token_level(
        self, case: str, token: str, reason: str, canary: LocalServer
    ) -> None:
        """Whole-token checks reject what the reference rejects, offline."""
        assert_rejected(token, reason, canary)

    @pytest.mark.parametrize(
        ("case", "partition", "url", "bare", "completed"),
        URL_CASES,
        ids=[c[0] for c in URL_CASES],
    )
    def test_reference_rejections(
        self,
        case: str,
        partition: str,
        url: str,
        bare: str,
        completed: str,
        canary: LocalServer,
    ) -> None:
        """Rejected bare, and rejected for the reference's own reason once completed."""
        assert_rejected(tok(url), bare, canary, partition=partition)
        region = _region_of(url, partition)
        assert_rejected(
            tok(complete(url, region)), completed, canary, partition=partition
        )

    @pytest.mark.parametrize("host", SUCCESS_HOSTS)
    def test_reference_successes(self, host: str, canary: LocalServer) -> None:
        """Accepted once completed; bare, only the required Version is missing."""
        url = (
            f"https://{host}/?action=GetCallerIdentity"
            f"&x-amz-signedheaders=x-k8s-aws-id&x-amz-date={TIME_STR}&x-amz-expires=60"
        )
        # kubeiam requires Version=2011-06-15 (docs/token-format.md); the reference
        # does not read it. STS itself needs it, so real tokens always carry it.
        assert_rejected(tok(url), "bad_version", canary)
        region = host.split(".")[1]
        allowed = build_allowed_hosts("aws", region=SERVER_REGION)
        call = verify_token(
            tok(complete(url, region)),
            cluster_id=CLUSTER,
            now=NOW,
            allowed_hosts=allowed,
        )
        assert call.region == region
        assert call.url.startswith(f"https://{host}/?action=GetCallerIdentity&")
        assert call.access_key_id == AKID

    def test_reference_valid_token_needs_real_scope(self, canary: LocalServer) -> None:
        """validToken signs scope us-west-2/s3 for sts.amazonaws.com: kubeiam rejects.

        The reference never reads the credential scope; kubeiam requires
        ``<key>/<date>/<host region>/sts/aws4_request`` (docs/token-format.md), and STS
        would refuse this signature anyway.
        """
        url = (
            "https://sts.amazonaws.com/?action=GetCallerIdentity"
            f"&X-Amz-Credential={REF_AKID}%2F20191216%2Fus-west-2%2Fs3%2Faws4_request"
            f"&x-amz-signedheaders=x-k8s-aws-id&x-amz-expires=60&x-amz-date={TIME_STR}"
            "&Version=2011-06-15"
        )
        assert_rejected(tok(complete(url, "us-east-1")), "bad_credential_scope", canary)


# (what the reference lets through, defect applied to a completed token, kubeiam
#  reason, the documented rule). Each is a token the reference accepts.
STRICTER_CASES = [
    (
        "Go's base64 decoder skips CR/LF",
        "crlf",
        "bad_base64",
        "docs/token-format.md: strict alphabet, CR/LF and whitespace included",
    ),
    (
        "Go ignores a #fragment",
        build_url() + "#frag",
        "fragment",
        "docs/token-format.md: no userinfo, port or fragment",
    ),
    (
        "Go splits user@ off the host",
        build_url(host="user@sts.us-west-2.amazonaws.com"),
        "userinfo",
        "docs/token-format.md",
    ),
    (
        "the reference has no lower bound on X-Amz-Date",
        build_url(X_Amz_Date="20261127T120501Z"),
        "future_date",
        "docs/token-format.md: at most 5 minutes in the future",
    ),
    (
        "the reference never reads the credential scope",
        build_url(
            X_Amz_Credential=f"{AKID}%2F{DATE[:8]}%2Fus-east-1%2Fsts%2Faws4_request"
        ),
        "bad_credential_scope",
        "docs/token-format.md: the scope region is the host's",
    ),
    (
        "the reference accepts any list containing x-k8s-aws-id",
        build_url(X_Amz_SignedHeaders="host%3Bx-amz-date%3Bx-k8s-aws-id"),
        "extra_signed_header",
        "docs/token-format.md: the verifier never sends other headers",
    ),
    (
        "the reference never reads X-Amz-Signature",
        build_url(X_Amz_Signature=SIG.upper()),
        "bad_signature_format",
        "docs/token-format.md: 64 lower-case hex characters",
    ),
    (
        "the reference never reads X-Amz-Algorithm",
        build_url(X_Amz_Algorithm="AWS4-HMAC-SHA512"),
        "bad_algorithm",
        "docs/token-format.md",
    ),
]


class TestDocumentedStricterRules:
    """Tokens the reference accepts and kubeiam refuses, each by a documented rule."""

    @pytest.mark.parametrize(
        ("what", "url", "reason", "rule"),
        STRICTER_CASES,
        ids=[c[2] for c in STRICTER_CASES],
    )
    def test_refused(
        self, what: str, url: str, reason: str, rule: str, canary: LocalServer
    ) -> None:
        """Refused offline, with the reason of the documented rule."""
        good = tok(build_url())
        token = good[:40] + "\r\n" + good[40:] if url == "crlf" else tok(url)
        assert_rejected(token, reason, canary)

    @pytest.mark.parametrize(
        ("expires", "date"),
        [
            ("0", DATE),  # Go clients 0.4.0 until PR #753 sent 0
            ("900", DATE),  # the reference's upper bound
            ("60", "20261127T114500Z"),  # exactly 15 minutes old still passes
            ("60", "20261127T120500Z"),  # exactly 5 minutes ahead still passes
        ],
    )
    def test_reference_bounds_still_accepted(self, expires: str, date: str) -> None:
        """X-Amz-Expires 0..900 and the 15-minute age limit, as the reference."""
        allowed = build_allowed_hosts("aws", region=SERVER_REGION)
        url = build_url(X_Amz_Expires=expires, X_Amz_Date=date)
        call = verify_token(
            tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed
        )
        assert call.signed_at == datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC
        )


# ------------------------------------------------------------- security advisories


class TestAdvisories:
    """docs/threat-model.md: each attack is refused offline."""

    @pytest.mark.parametrize(
        "decoy",
        [
            # GHSA-pp3f-98qg-5g75: a decoy key ID for {{AccessKeyID}}
            "x-amz-credential=ASIAVICTIM%2F20261127%2Fus-west-2%2Fsts%2Faws4_request",
            # ... a decoy action the lossy copy would read instead of STS's
            "action=GetCallerIdentity",
            # ... a decoy signed-header list that "binds" the cluster for the verifier
            "x-amz-signedheaders=x-k8s-aws-id",
            "X-AMZ-DATE=" + DATE,
        ],
    )
    def test_cve_2022_2385_case_variant_duplicates(
        self, decoy: str, canary: LocalServer
    ) -> None:
        """A case-variant duplicate of any parameter is rejected with no STS call."""
        url = build_url(X_Amz_SignedHeaders="host%3Bx-k8s-aws-id") + "&" + decoy
        assert_rejected(tok(url), "duplicate_parameter", canary)

    @pytest.mark.parametrize(
        "action", ["AssumeRole", "GetSessionToken", "getcalleridentity"]
    )
    def test_vault_cve_2020_16250_other_actions(
        self, action: str, canary: LocalServer
    ) -> None:
        """Only Action=GetCallerIdentity is presignable (exact value, exact case)."""
        assert_rejected(tok(build_url(Action=action)), "bad_action", canary)

    @pytest.mark.parametrize(
        ("host", "reason"),
        [
            ("evil.com", "host_not_allowed"),
            ("sts.amazonaws.com.evil.com", "host_not_allowed"),
            ("sts.us-west-2.amazonaws.com:443", "port"),
            ("sts.us-west-2.amazonaws.com.", "host_not_allowed"),
            ("STS.US-WEST-2.AMAZONAWS.COM", "host_not_allowed"),
            ("sts.cn-north-1.amazonaws.com.cn", "host_not_allowed"),
            ("sts.amazonaws.com@evil.com", "userinfo"),
        ],
    )
    def test_host_pinning(self, host: str, reason: str, canary: LocalServer) -> None:
        """Foreign, look-alike, ported, dotted, upper-case and wrong-partition hosts."""
        assert_rejected(tok(build_url(host=host)), reason, canary)

    def test_global_host_outside_aws(self, canary: LocalServer) -> None:
        """sts.amazonaws.com is refused by a server of any other partition."""
        url = build_url(host="sts.amazonaws.com", region="us-east-1")
        assert_rejected(tok(url), "host_not_allowed", canary, partition="aws-us-gov")


# --------------------------------------------------- TestSTSEndpoints and friends

# (reference test, partition, host, server region ("" = none configured),
#  reference valid, kubeiam valid, why kubeiam differs ("" when it does not)).
_UNKNOWN_REGION = (
    "docs/token-format.md, decided in hosts.py: in the server's partition "
    "a region label must look like a region (e.g. us-west-2) or be the server's own "
    "region; the reference accepts any label under amazonaws.com"
)
_CROSS_PARTITION = (
    "hosts.py: a region another partition claims by prefix (us-isob-, us-gov-) is "
    "never accepted, even as the server's own region: no cross-partition tokens"
)
HOST_CASES: list[tuple[str, str, str, str, bool, bool, str]] = [
    ("TestSTSEndpoints", "aws", "sts.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws-cn", "sts.amazonaws.com", "", False, False, ""),
    ("TestSTSEndpoints", "aws-us-gov", "sts.amazonaws.com", "", False, False, ""),
    ("TestSTSEndpoints", "aws-iso", "sts.amazonaws.com", "", False, False, ""),
    ("TestSTSEndpoints", "aws-iso-b", "sts.amazonaws.com", "", False, False, ""),
    ("TestSTSEndpoints", "aws-iso-e", "sts.amazonaws.com", "", False, False, ""),
    ("TestSTSEndpoints", "aws-iso-f", "sts.amazonaws.com", "", False, False, ""),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.cn-northwest-1.amazonaws.com.cn",
        "",
        True,
        True,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.cn-north-1.amazonaws.com.cn",
        "",
        True,
        True,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.us-iso-east-1.c2s.ic.gov",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.not-a-region1.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.not-a-region2.amazonaws.com.cn",
        "not-a-region2",
        True,
        True,
        "",
    ),
    ("TestSTSEndpoints", "aws", "sts-fips.us-west-2.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts-fips.us-east-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.us-east-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.us-east-2.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.us-west-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.us-west-2.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.ap-south-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.ap-northeast-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.ap-northeast-2.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.ap-southeast-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.ap-southeast-2.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.ca-central-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.eu-central-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.eu-west-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.eu-west-2.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.eu-west-3.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.eu-north-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.sa-east-1.amazonaws.com", "", True, True, ""),
    ("TestSTSEndpoints", "aws", "sts.amazonaws.com.cn", "", False, False, ""),
    ("TestSTSEndpoints", "aws", "website.amazonaws.com", "", False, False, ""),
    (
        "TestSTSEndpoints",
        "aws",
        "sts.default-region.amazonaws.com",
        "default-region",
        True,
        True,
        "",
    ),
    ("TestSTSEndpoints", "aws-iso", "sts.us-iso-east-1.c2s.ic.gov", "", True, True, ""),
    (
        "TestSTSEndpoints",
        "aws-iso",
        "sts.cn-north-1.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-iso-b",
        "sts.cn-north-1.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-us-gov",
        "sts.us-gov-east-1.amazonaws.com",
        "",
        True,
        True,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts-fips.us-east-1.amazonaws.com",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.us-isob-east-1.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.us-isob-east-1.amazonaws.com.cn",
        "us-isob-east-1",
        True,
        False,
        _CROSS_PARTITION,
    ),
    (
        "TestSTSEndpoints",
        "aws-iso-b",
        "sts.us-isob-east-1.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-iso-b",
        "sts.us-isob-east-1.amazonaws.com.cn",
        "us-isob-east-1",
        False,
        False,
        "",
    ),
    ("TestSTSEndpoints", "aws", "sts.us-west-2.api.aws", "", True, True, ""),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.cn-north-1.api.amazonwebservices.com.cn",
        "",
        True,
        True,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws",
        "sts.cn-north-1.api.amazonwebservices.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws",
        "sts.not-a-region.amazonaws.com",
        "",
        True,
        False,
        _UNKNOWN_REGION,
    ),
    (
        "TestSTSEndpoints",
        "aws",
        "sts.not-a-region.amazonaws.com",
        "not-a-region",
        True,
        True,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws",
        "sts.not-a-region.amazonaws.com",
        "us-west-2",
        True,
        False,
        _UNKNOWN_REGION,
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.not-a-region3.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.not-a-region4.amazonaws.com.cn",
        "not-a-region4",
        True,
        True,
        "",
    ),
    (
        "TestSTSEndpoints",
        "aws-cn",
        "sts.not-a-region5.amazonaws.com.cn",
        "us-west-2",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpointResolution",
        "aws-cn",
        "sts.us-west-2.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpointResolution",
        "aws",
        "sts.us-west-2.amazonaws.com.cn",
        "",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpointResolution",
        "aws",
        "sts.us-west-2.amazonaws.com.cn",
        "us-west-2",
        False,
        False,
        "",
    ),
    (
        "TestSTSEndpointResolution",
        "aws-cn",
        "sts.not-a-region.amazonaws.com",
        "not-a-region",
        False,
        False,
        "",
    ),
    ("TestVerifyHostCaching", "aws", "invalid.amazonaws.com", "", False, False, ""),
    ("TestVerifyHostCaching", "aws", "invalid2.amazonaws.com", "", False, False, ""),
    ("TestGetStsRegion", "aws", "", "", False, False, ""),
    ("TestGetStsRegion", "aws", "sts", "", False, False, ""),
    ("TestGetStsRegion", "aws", "sts.wrongformat", "", False, False, ""),
    (
        "Test_getDefaultHostNameForRegion",
        "aws-iso-e",
        "sts.eu-isoe-west-1.cloud.adc-e.uk",
        "",
        True,
        True,
        "",
    ),
    (
        "Test_getDefaultHostNameForRegion",
        "aws-iso",
        "sts.us-iso-test-1.c2s.ic.gov",
        "",
        True,
        True,
        "",
    ),
    # docs/token-format.md: aws and aws-us-gov share amazonaws.com, so the
    # reference accepts commercial regions under aws-us-gov and the reverse
    (
        "verifyHost (commercial under aws-us-gov)",
        "aws-us-gov",
        "sts.us-east-1.amazonaws.com",
        "",
        True,
        False,
        _CROSS_PARTITION,
    ),
    # docs/token-format.md: the reference accepts us-gov-* under partition aws
    (
        "verifyHost (us-gov under aws)",
        "aws",
        "sts.us-gov-east-1.amazonaws.com",
        "",
        True,
        False,
        _CROSS_PARTITION,
    ),
]


class TestSTSEndpoints:
    """token_test.go TestSTSEndpoints, TestSTSEndpointResolution and host tests."""

    @pytest.mark.parametrize(
        ("ref", "partition", "host", "region", "ref_valid", "valid", "why"),
        HOST_CASES,
        ids=[f"{c[1]}-{c[2] or 'empty'}-{c[3] or 'default'}" for c in HOST_CASES],
    )
    def test_host(
        self,
        ref: str,
        partition: str,
        host: str,
        region: str,
        ref_valid: bool,
        valid: bool,
        why: str,
    ) -> None:
        """The allow-list agrees with the reference except where documented."""
        assert valid == ref_valid or why, "an undocumented difference"
        server_region = region or PARTITIONS[partition].default_region
        allowed = build_allowed_hosts(partition, region=server_region)
        scope = region_for_host(allowed, host)
        assert (scope is not None) is valid
        token_region = scope or "us-east-1"
        token = tok(build_url(host=host, region=token_region))
        if valid:
            call = verify_token(
                token, cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed
            )
            assert call.region == scope
            assert call.url.startswith(f"https://{host}/?")
        else:
            with pytest.raises(MalformedTokenError) as info:
                verify_token(token, cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed)
            assert info.value.reason == "host_not_allowed"

    def test_global_endpoint_is_scoped_to_us_east_1(self) -> None:
        """TestGetStsRegion: sts.amazonaws.com is "global"; its scope is us-east-1."""
        allowed = build_allowed_hosts("aws", region=SERVER_REGION)
        assert region_for_host(allowed, "sts.amazonaws.com") == "us-east-1"
        assert region_for_host(allowed, "sts.eu-central-1.amazonaws.com") == (
            "eu-central-1"
        )

    @pytest.mark.parametrize(
        ("region", "valid"),
        [
            ("us-east-1", True),
            ("invalid.com", False),
            ("@invalid.com/%23", False),
            ("local", True),
            ("9-west-1", True),
            ("us_east_1", False),
            # kubeiam compares exact lower-case hosts, so a region is lower case
            ("US-EAST-1", False),
        ],
    )
    def test_region_validator(self, region: str, valid: bool) -> None:
        """TestRegionValidator: the server's sts.region must be a region label."""
        if valid:
            assert build_allowed_hosts("aws", region=region).extra_region == region
        else:
            with pytest.raises(ConfigError):
                build_allowed_hosts("aws", region=region)

    def test_unknown_partition(self) -> None:
        """TestSTSEndpoints aws-not-a-partition: a configuration error."""
        with pytest.raises(ConfigError):
            build_allowed_hosts("aws-not-a-partition")


# ---------------------------------------------------------- the STS call (outcomes)


class TestVerifySTSOutcomes:
    """token_test.go TestVerifyHTTP*, body and identity tests against a local STS."""

    def test_throttling(self, sts: LocalServer) -> None:
        """TestVerifyHTTPThrottling: a 400 whose body says Throttling is throttling."""
        body = (
            b'{"Error":{"Code":"Throttling","Message":"Rate exceeded",'
            b'"Type":"Sender"},"RequestId":"8c2d3520-24e1-4d5c-ac55-7e226335f447"}'
        )
        sts.respond = reply(400, body)
        with pytest.raises(STSThrottledError) as info:
            call_sts(sts)
        assert info.value.reason == "sts_throttled"

    def test_transport_error(self) -> None:
        """TestVerifyHTTPError: no answer is "STS unavailable", not a rejection.

        The reference returns an STSError (HTTP 403, cached by the API server);
        kubeiam's contract (docs/token-format.md/4) answers unavailable: 200 with
        ``status.error``, never cached.
        """
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        # nothing listens on ``port`` any more
        url = (
            f"http://127.0.0.1:{port}/?"
            + build_url(region=SERVER_REGION).split("?", 1)[1]
        )
        allowed = build_allowed_hosts(
            "aws", [f"http://127.0.0.1:{port}"], region=SERVER_REGION
        )
        call = verify_token(
            tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=allowed
        )
        client = STSClient(timeout=1.0)
        try:
            with pytest.raises(STSUnavailableError) as info:
                client.call_get_caller_identity(call)
        finally:
            client.close()
        assert info.value.reason == "sts_unreachable"

    def test_http_403(self, sts: LocalServer) -> None:
        """TestVerifyHTTP403: a 403 is a rejection (wrong cluster ID, bad signature).

        The reference calls it an STSError; kubeiam answers it like any invalid
        token (docs/token-format.md: 200, authenticated false, no error).
        """
        sts.respond = reply(403, b" ")
        with pytest.raises(STSRejectedError) as info:
            call_sts(sts)
        assert info.value.reason == "sts_rejected"

    def test_no_redirects_followed(self, sts: LocalServer) -> None:
        """TestVerifyNoRedirectsFollowed: a 302 is rejected; the target never hears."""
        target = LocalServer().start()
        try:
            target.respond = reply(
                200,
                b'{"UserId":"AROAIIRR6I5NDJBWMIRQQ:admin-session",'
                b'"Account":"111122223333",'
                b'"Arn":"arn:aws:sts::111122223333:assumed-role/Admin/admin-session"}',
            )
            sts.respond = reply(302, b"", headers=(("Location", target.url),))
            with pytest.raises(STSRejectedError) as info:
                call_sts(sts)
            assert info.value.reason == "sts_redirect"
            assert target.requests == []
            assert len(sts.requests) == 1
        finally:
            target.close()

    def test_body_read_error(self, sts: LocalServer) -> None:
        """TestVerifyBodyReadError: a body cut short is a transport failure.

        Reference: STSError. kubeiam: STS unavailable (a transport failure,
        docs/token-format.md), not a verdict on the token.
        """

        def cut_short(handler: BaseHTTPRequestHandler) -> None:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", "1000")
            handler.end_headers()
            handler.wfile.write(b'{"GetCallerIdentityResponse"')
            handler.close_connection = True

        sts.respond = cut_short
        with pytest.raises(STSUnavailableError) as info:
            call_sts(sts)
        assert info.value.reason == "sts_unreachable"

    @pytest.mark.parametrize("content_type", ["application/json", ""])
    def test_unmarshal_json_error(self, content_type: str, sts: LocalServer) -> None:
        """TestVerifyUnmarshalJSONError: a 200 that is not a result is a rejection."""
        sts.respond = reply(200, b"xxxx", content_type=content_type)
        with pytest.raises(STSRejectedError) as info:
            call_sts(sts)
        assert info.value.reason == "sts_bad_body"

    @pytest.mark.parametrize(
        ("arn", "account", "user_id"),
        [
            # TestVerifyInvalidCanonicalARNError, as written (the account is also bad)
            ("arn", "1000", "userid"),
            # ... with a good account, so the ARN alone decides
            ("arn", "123456789012", "userid"),
            ("arn:aws:s3:::bucket", "123456789012", "AIDAEXAMPLE"),
            ("arn:aws:iam::123456789012:group/Admins", "123456789012", "AGPAEXAMPLE"),
        ],
    )
    def test_invalid_canonical_arn(
        self, arn: str, account: str, user_id: str, sts: LocalServer
    ) -> None:
        """An ARN that does not canonicalize is a rejection (reference: STSError)."""
        sts.respond = reply(200, ref_json(arn, account, user_id))
        with pytest.raises(STSRejectedError) as info:
            call_sts(sts)
        assert info.value.reason == "sts_bad_identity"

    @pytest.mark.parametrize(
        "arn",
        [
            # TestVerifyInvalidUserIDError (current: a role ARN)
            "arn:aws:iam::123456789012:role/Alice",
            # Earlier versions used a user ARN. The current reference keeps a
            # user's whole UserId, colons included, and accepts; kubeiam rejects:
            # a user's UserId is its unique ID (docs/token-format.md).
            "arn:aws:iam::123456789012:user/Alice",
            "arn:aws:sts::123456789012:assumed-role/Alice/session",
        ],
    )
    def test_invalid_user_id(self, arn: str, sts: LocalServer) -> None:
        """A UserId with two colons is malformed, so the answer is rejected."""
        sts.respond = reply(200, ref_json(arn, "123456789012", "not:vailid:userid"))
        with pytest.raises(STSRejectedError) as info:
            call_sts(sts)
        assert info.value.reason == "sts_bad_identity"

    def test_no_session(self, sts: LocalServer) -> None:
        """TestVerifyNoSession: an IAM user; key ID from the token's credential."""
        arn = "arn:aws:iam::123456789012:user/Alice"
        sts.respond = reply(200, ref_json(arn, "123456789012", "Alice"))
        identity = call_sts(sts)
        assert identity == Identity(
            arn=arn,
            canonical_arn=arn,
            account_id="123456789012",
            user_id="Alice",
            session_name="",
            access_key_id=REF_AKID,
        )

    def test_session_name(self, sts: LocalServer) -> None:
        """TestVerifySessionName: UserId <id>:<session> splits into both."""
        arn = "arn:aws:iam::123456789012:role/Alice"
        sts.respond = reply(200, ref_json(arn, "123456789012", "Alice:session-name"))
        identity = call_sts(sts)
        assert identity.user_id == "Alice"
        assert identity.session_name == "session-name"

    def test_canonical_arn(self, sts: LocalServer) -> None:
        """TestVerifyCanonicalARN: an assumed-role session canonicalizes to its role."""
        arn = "arn:aws:sts::123456789012:assumed-role/Alice/extra"
        sts.respond = reply(200, ref_json(arn, "123456789012", "Alice:session-name"))
        identity = call_sts(sts)
        assert identity.arn == arn
        assert identity.canonical_arn == "arn:aws:iam::123456789012:role/Alice"
        assert identity.session_name == "session-name"

    def test_xml_answer_is_accepted(self, sts: LocalServer) -> None:
        """The reference parses JSON only; kubeiam also takes strict XML."""
        body = (
            b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/'
            b'2011-06-15/"><GetCallerIdentityResult>'
            b"<Arn>arn:aws:iam::123456789012:user/Alice</Arn>"
            b"<UserId>AIDAEXAMPLE</UserId><Account>123456789012</Account>"
            b"</GetCallerIdentityResult></GetCallerIdentityResponse>"
        )
        sts.respond = reply(200, body, content_type="text/xml")
        assert call_sts(sts).user_id == "AIDAEXAMPLE"


# token_test.go TestGetIdentityFromSTSResponse: (name, arn, user id, user id kept).
REF_ACCOUNT = "123456789012"
REF_KEY = "AKIAVVVVVVVVVVVAGAVA"
IDENTITY_CASES = [
    ("Root User", "arn:aws:iam::123456789012:root", REF_ACCOUNT, REF_ACCOUNT),
    (
        "User",
        "arn:aws:iam::123456789012:user/Alice",
        "AIDAIYCCCMMMMMMMMGGDA",
        "AIDAIYCCCMMMMMMMMGGDA",
    ),
    # The case "Role" (an iam role ARN with a bare role ID) is refused, as the
    # current reference does ("malformed UserID"): test_role_without_session.
    # commit 9fa86f7d: a federated user keeps its whole UserId (not the root's)
    (
        "Federated User",
        "arn:aws:sts::123456789012:federated-user/Alice",
        "123456789012:Alice",
        "123456789012:Alice",
    ),
]


class TestGetIdentityFromSTSResponse:
    """token_test.go TestGetIdentityFromSTSResponse, through the strict parser."""

    @pytest.mark.parametrize(
        ("name", "arn", "user_id", "kept"),
        IDENTITY_CASES,
        ids=[c[0] for c in IDENTITY_CASES],
    )
    def test_identity(self, name: str, arn: str, user_id: str, kept: str) -> None:
        """ARN, canonical ARN, account, UserId and key ID as the reference sets them."""
        identity = parse_get_caller_identity(
            ref_json(arn, REF_ACCOUNT, user_id),
            content_type="application/json",
            access_key_id=REF_KEY,
        )
        assert identity == Identity(
            arn=arn,
            canonical_arn=arn,
            account_id=REF_ACCOUNT,
            user_id=kept,
            session_name="",
            access_key_id=REF_KEY,
        )

    def test_role_without_session(self) -> None:
        """token_test.go's "Role": ARN type and UserId shape disagree, so refused."""
        with pytest.raises(STSRejectedError) as info:
            parse_get_caller_identity(
                ref_json(
                    "arn:aws:iam::123456789012:role/Alice",
                    REF_ACCOUNT,
                    "AROAZZCCCNNNNNNNNFFFA",
                ),
                content_type="application/json",
                access_key_id=REF_KEY,
            )
        assert info.value.reason == "sts_bad_identity"

    def test_federated_uid_differs_from_root(self) -> None:
        """Advisory 7: a federated user's UserId is not the root's (uid collision)."""
        fed, root = (
            parse_get_caller_identity(
                ref_json(arn, REF_ACCOUNT, uid),
                content_type="application/json",
                access_key_id=REF_KEY,
            )
            for _, arn, uid, _ in (IDENTITY_CASES[-1], IDENTITY_CASES[0])
        )
        assert fed.user_id != root.user_id


# ------------------------------------------------------------------- TestGetWithSTS

# The reference's golden token (token_test.go TestGetWithSTS): presigned by the Go
# SDK v2 for cluster "test-cluster" at 1682640000 (2023-04-28T00:00:00Z), us-west-2.
GOLDEN = (
    "k8s-aws-v1.aHR0cHM6Ly9zdHMudXMtd2VzdC0yLmFtYXpvbmF3cy5jb20vP0FjdGlvbj1HZXRDYWxs"
    "ZXJJZGVudGl0eSZWZXJzaW9uPTIwMTEtMDYtMTUmWC1BbXotQWxnb3JpdGhtPUFXUzQtSE1BQy1TSEE"
    "yNTYmWC1BbXotQ3JlZGVudGlhbD1BU0lBUjJURzQ0VjZBUzNaWkU3QyUyRjIwMjMwNDI4JTJGdXMtd2"
    "VzdC0yJTJGc3RzJTJGYXdzNF9yZXF1ZXN0JlgtQW16LURhdGU9MjAyMzA0MjhUMDAwMDAwWiZYLUFte"
    "i1FeHBpcmVzPTYwJlgtQW16LVNpZ25lZEhlYWRlcnM9aG9zdCUzQngtazhzLWF3cy1pZCZYLUFtei1T"
    "aWduYXR1cmU9ZTIxMWRiYTc3YWJhOWRjNDRiMGI2YmUzOGI4ZWFhZDA5MjU5OWM1MTU3ZjYzMTQ0NDR"
    "jNWI5ZDg1NzQ3ZjVjZQ"
)
GOLDEN_AT = datetime.fromtimestamp(1682640000, UTC)


class TestGetWithSTS:
    """A token the reference client mints passes every kubeiam offline check."""

    def test_golden_token_accepted(self) -> None:
        """At its signing time, on an aws server, the golden token is valid."""
        allowed = build_allowed_hosts("aws", region="us-west-2")
        call = verify_token(
            GOLDEN, cluster_id="test-cluster", now=GOLDEN_AT, allowed_hosts=allowed
        )
        assert call.access_key_id == "ASIAR2TG44V6AS3ZZE7C"
        assert call.region == "us-west-2"
        assert call.expires_at == GOLDEN_AT + timedelta(minutes=15)
        assert call.url.startswith("https://sts.us-west-2.amazonaws.com/?Action=")

    @pytest.mark.parametrize(
        ("partition", "later", "reason"),
        [
            ("aws", timedelta(minutes=15, seconds=1), "expired"),
            ("aws", -timedelta(minutes=5, seconds=1), "future_date"),
            ("aws-cn", timedelta(0), "host_not_allowed"),
        ],
    )
    def test_golden_token_rejected(
        self, partition: str, later: timedelta, reason: str
    ) -> None:
        """Too late, too early (kubeiam's 5-minute skew rule) or the wrong partition."""
        allowed = build_allowed_hosts(
            partition, region=PARTITIONS[partition].default_region
        )
        with pytest.raises(MalformedTokenError) as info:
            verify_token(
                GOLDEN,
                cluster_id="test-cluster",
                now=GOLDEN_AT + later,
                allowed_hosts=allowed,
            )
        assert info.value.reason == reason


# -------------------------------------------------------------------- pkg/arn tests

# (arn_test.go case, input, canonical ARN or None for an error)
ARN_CASES: list[tuple[str, str | None]] = [
    ("NOT AN ARN", None),
    ("arn:aws:iam::123456789012:user/Alice", "arn:aws:iam::123456789012:user/Alice"),
    ("arn:aws:iam::123456789012:role/Users", "arn:aws:iam::123456789012:role/Users"),
    (
        "arn:aws:sts::123456789012:assumed-role/Admin/Session",
        "arn:aws:iam::123456789012:role/Admin",
    ),
    (
        "arn:aws:sts::123456789012:federated-user/Bob",
        "arn:aws:sts::123456789012:federated-user/Bob",
    ),
    ("arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"),
    # everything between the first and last slash is the role (no IAM lookup)
    (
        "arn:aws:sts::123456789012:assumed-role/Org/Team/Admin/Session",
        "arn:aws:iam::123456789012:role/Org/Team/Admin",
    ),
    (
        "arn:aws-iso:iam::123456789012:user/Chris",
        "arn:aws-iso:iam::123456789012:user/Chris",
    ),
    (
        "arn:aws-iso-b:iam::123456789012:user/Chris",
        "arn:aws-iso-b:iam::123456789012:user/Chris",
    ),
    (
        "arn:aws-cn:sts::123456789012:assumed-role/Admin/Session",
        "arn:aws-cn:iam::123456789012:role/Admin",
    ),
    (
        "arn:aws-us-gov:sts::123456789012:assumed-role/Admin/Session",
        "arn:aws-us-gov:iam::123456789012:role/Admin",
    ),
    # arn.go error branches
    ("arn:aws-nk:iam::123456789012:user/Alice", None),  # unrecognized partition
    ("arn:aws:sts::123456789012:assumed-role/Admin", None),  # does not have a role
    ("arn:aws:sts::123456789012:user/Alice", None),  # unrecognized sts resource
    ("arn:aws:iam::123456789012:group/Admins", None),  # unrecognized iam resource
    ("arn:aws:s3:::bucket", None),  # not a valid service for identities
    ("arn", None),  # TestVerifyInvalidCanonicalARNError
]


class TestCanonicalize:
    """arn_test.go TestUserARN (and arn.go's error branches)."""

    @pytest.mark.parametrize(("arn", "canonical"), ARN_CASES)
    def test_canonicalize(self, arn: str, canonical: str | None) -> None:
        """Canonical ARN, or InvalidARNError where the reference errors."""
        if canonical is None:
            with pytest.raises(InvalidARNError):
                canonicalize_arn(arn)
        else:
            assert canonicalize_arn(arn) == canonical

    @pytest.mark.parametrize(
        "arn",
        [
            # kubeiam is stricter than arn.go (docs/configuration.md):
            "arn:aws:iam::1234:user/Alice",  # account is not 12 digits
            "arn:aws:iam:us-east-1:123456789012:user/Alice",  # IAM ARNs have no region
            "arn:aws:iam::123456789012:role/",  # empty role name
        ],
    )
    def test_stricter_shapes(self, arn: str) -> None:
        """Shapes arn.go lets through are not identities to kubeiam."""
        with pytest.raises(InvalidARNError):
            canonicalize_arn(arn)

    @pytest.mark.parametrize(
        ("arn", "stripped"),
        [
            (
                "arn:aws:iam::123456789012:role/team/Deploy",
                "arn:aws:iam::123456789012:role/Deploy",
            ),
            (
                "arn:aws:iam::123456789012:role/aws-reserved/sso.amazonaws.com/"
                "eu-west-1/AWSReservedSSO_Admin_0123456789abcdef",
                "arn:aws:iam::123456789012:role/AWSReservedSSO_Admin_0123456789abcdef",
            ),
            (
                "arn:aws:iam::123456789012:role/Deploy",
                "arn:aws:iam::123456789012:role/Deploy",
            ),
            (
                "arn:aws:iam::123456789012:user/team/alice",
                "arn:aws:iam::123456789012:user/team/alice",
            ),
            ("NOT AN ARN", "NOT AN ARN"),
        ],
    )
    def test_strip_path(self, arn: str, stripped: str) -> None:
        """arn.go StripPath: role paths go, anything else is unchanged."""
        assert strip_role_path(arn) == stripped
