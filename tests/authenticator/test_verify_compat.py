"""Verifier compatibility with aws-iam-authenticator (issue 14, item 6).

Signed-header names compare ignoring case as in the reference; an STS answer
whose ARN type and UserId shape disagree is refused; config errors name the
whole key path of the bad value; STS's error codes each get their own hint
(issue 14, item 7).
"""

from __future__ import annotations

import pytest

from authenticator.emulator import Credentials, STSEmulator
from authenticator.errors import MalformedTokenError, STSRejectedError
from authenticator.hosts import build_allowed_hosts
from authenticator.sts import parse_get_caller_identity
from authenticator.verify import verify_token
from authenticator.verify_cli import main as verify_main
from tests.authenticator.test_sts import ACCT, json_body
from tests.authenticator.test_verify import CLUSTER, NOW, build_url, presign, tok
from tests.fixtures.sts import presign_url
from webhook.errors import ConfigError
from webhook.settings import parse_settings

ALLOWED = build_allowed_hosts("aws", region="us-west-2")


class TestSignedHeaderCase:
    """X-Amz-SignedHeaders names are HTTP header names: case does not matter."""

    @pytest.mark.parametrize(
        "signed",
        ["host%3BX-K8S-AWS-ID", "HOST%3Bx-k8s-aws-id", "Host%3BX-K8s-Aws-Id"],
    )
    def test_mixed_case_accepted(self, signed: str) -> None:
        """The reference accepts host;X-K8S-AWS-ID; kubeiam too, query unchanged."""
        url = build_url(X_Amz_SignedHeaders=signed)
        call = verify_token(
            tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=ALLOWED
        )
        assert call.url == url  # forwarded byte-identical, the signature covers it

    @pytest.mark.parametrize(
        ("signed", "reason"),
        [
            ("X-K8S-AWS-ID%3BHOST", "extra_signed_header"),
            ("HOST%3BX-K8S-AWS-ID%3BX-AMZ-DATE", "extra_signed_header"),
            ("HOST", "unsigned_cluster_id"),
        ],
    )
    def test_case_does_not_loosen_the_set(self, signed: str, reason: str) -> None:
        """Ignoring case still means exactly host and x-k8s-aws-id, in that order."""
        url = build_url(X_Amz_SignedHeaders=signed)
        with pytest.raises(MalformedTokenError) as info:
            verify_token(tok(url), cluster_id=CLUSTER, now=NOW, allowed_hosts=ALLOWED)
        assert info.value.reason == reason


class TestARNTypeAgreesWithUserId:
    """An STS answer's ARN type and UserId shape must tell the same story."""

    @pytest.mark.parametrize(
        ("arn", "user_id"),
        [
            # an iam::role/ ARN without ROLEID:session
            (f"arn:aws:iam::{ACCT}:role/Deploy", "AROAEXAMPLEROLEID0001"),
            # a user ARN with a role's unique ID
            (f"arn:aws:iam::{ACCT}:user/alice", "AROAEXAMPLEROLEID0001"),
            # a role session with a user's unique ID
            (
                f"arn:aws:sts::{ACCT}:assumed-role/Deploy/alice",
                "AIDAEXAMPLEUSERID0001:alice",
            ),
            (f"arn:aws:iam::{ACCT}:role/Deploy", "AIDAEXAMPLEUSERID0001:alice"),
        ],
    )
    def test_disagreement_refused(self, arn: str, user_id: str) -> None:
        """Each mismatch is sts_bad_identity, never an identity."""
        with pytest.raises(STSRejectedError) as info:
            parse_get_caller_identity(
                json_body(arn, user_id, ACCT),
                content_type="application/json",
                access_key_id="ASIAEXAMPLE",
            )
        assert info.value.reason == "sts_bad_identity"

    def test_role_with_session_accepted(self) -> None:
        """iam::role/ with ROLEID:session is a session of that role."""
        identity = parse_get_caller_identity(
            json_body(f"arn:aws:iam::{ACCT}:role/Deploy", "AROAEXAMPLE01:bob", ACCT),
            content_type="application/json",
            access_key_id="ASIAEXAMPLE",
        )
        assert (identity.user_id, identity.session_name) == ("AROAEXAMPLE01", "bob")

    def test_unknown_prefixes_still_pass(self) -> None:
        """Emulator IDs without an AWS prefix are not judged by prefix."""
        identity = parse_get_caller_identity(
            json_body(f"arn:aws:iam::{ACCT}:user/alice", "abcdef0123456789", ACCT),
            content_type="application/json",
            access_key_id="ASIAEXAMPLE",
        )
        assert identity.user_id == "abcdef0123456789"


class TestConfigKeyPaths:
    """A bad STS setting names its full key path."""

    @pytest.mark.parametrize(
        ("sts", "path", "words"),
        [
            (
                {
                    "extraEndpoints": [
                        "https://sts.example.com",
                        "ftp://sts.example.com",
                    ]
                },
                "sts.extraEndpoints[1]",
                "must use https",
            ),
            (
                {"extraEndpoints": ["http://sts.example.com"]},
                "sts.extraEndpoints[0]",
                "loopback",
            ),
            (
                {"extraEndpoints": ["https://127.0.0.1:5000/path"]},
                "sts.extraEndpoints[0]",
                "no user, path",
            ),
            ({"region": "Mars-1"}, "sts.region", "not a region name"),
        ],
    )
    def test_whole_path(self, sts: dict[str, object], path: str, words: str) -> None:
        """'file: sts.extraEndpoints[1]: ...', not 'file: sts: ...'."""
        with pytest.raises(ConfigError) as info:
            parse_settings({"clusterID": "c", "sts": sts}, where="cfg.yaml")
        message = str(info.value)
        assert message.startswith(f"cfg.yaml: {path}: "), message
        assert words in message


class TestSTSErrorHints:
    """kubeiam verify explains each STS error code (the real emulator answers)."""

    def test_unknown_key_is_not_a_cluster_mismatch(
        self, sts_emulator: STSEmulator, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """InvalidClientTokenId talks about the credentials, not the cluster ID."""
        token = tok(presign(sts_emulator.url, "us-east-1", cluster_id="hints"))
        code = verify_main(["-t", token, "-i", "hints", *_flags(sts_emulator)])
        err = capsys.readouterr().err
        assert code == 1
        assert "InvalidClientTokenId" in err and "access key" in err
        assert "cluster" not in err.split("InvalidClientTokenId", 1)[1]

    def test_wrong_cluster_says_so(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """SignatureDoesNotMatch for a token minted for another cluster ID."""
        url = presign_url(iam_user, endpoint=sts_emulator.url, cluster_id="other")
        code = verify_main(["-t", tok(url), "-i", "hints", *_flags(sts_emulator)])
        err = capsys.readouterr().err
        assert code == 1
        assert "SignatureDoesNotMatch" in err and "another cluster ID" in err


def _flags(sts_emulator: STSEmulator) -> list[str]:
    return ["--sts-endpoint", sts_emulator.url, "--region", "us-east-1"]
