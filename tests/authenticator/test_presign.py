"""authenticator.presign: golden vectors, aws-cli parity, regions, credentials."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import pytest

from authenticator.errors import ConfigError
from authenticator.presign import (
    PresignedToken,
    StaticCredentials,
    default_endpoint_url,
    load_credentials,
    presign_get_caller_identity,
    signing_region_for,
)
from authenticator.token import decode_token, encode_token
from authenticator.wire import CLUSTER_ID_HEADER

ROOT = Path(__file__).resolve().parents[2]
VECTORS = json.loads((ROOT / "tests/data/presign_vectors.json").read_text())["vectors"]
AWS = str(ROOT / ".venv/bin/aws")
NOW = datetime(2026, 11, 27, 5, 0, 0, tzinfo=UTC)
CREDS = StaticCredentials(
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)


def _now(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def _mint(vector: dict[str, str | None]) -> PresignedToken:
    return presign_get_caller_identity(
        credentials=StaticCredentials(
            str(vector["access_key_id"]),
            str(vector["secret_access_key"]),
            vector["session_token"],
        ),
        region=str(vector["region"]),
        cluster_id=str(vector["cluster_id"]),
        now=_now(str(vector["now"])),
        endpoint_url=vector["endpoint_url"],
    )


def _query(url: str) -> dict[str, str]:
    pairs = parse_qsl(urlsplit(url).query, keep_blank_values=True, strict_parsing=True)
    assert len(pairs) == len({k for k, _ in pairs}), "a parameter appears twice"
    return dict(pairs)


class _FixedTimeQueryAuth(botocore.auth.SigV4QueryAuth):  # type: ignore[misc]
    """botocore's bare SigV4 query signer at a given time (no RequestSigner)."""

    def __init__(self, timestamp: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._timestamp = timestamp

    def _modify_request_before_signing(
        self, request: botocore.awsrequest.AWSRequest
    ) -> None:
        request.context["timestamp"] = self._timestamp
        super()._modify_request_before_signing(request)


def _independent_url(vector: dict[str, str | None], scope_region: str) -> str:
    """The same request signed by botocore's SigV4QueryAuth alone."""
    endpoint = vector["endpoint_url"] or default_endpoint_url(str(vector["region"]))
    auth = _FixedTimeQueryAuth(
        _now(str(vector["now"])).strftime("%Y%m%dT%H%M%SZ"),
        credentials=botocore.credentials.Credentials(
            vector["access_key_id"],
            vector["secret_access_key"],
            vector["session_token"],
        ),
        service_name="sts",
        region_name=scope_region,
        expires=60,
    )
    request = botocore.awsrequest.AWSRequest(
        method="GET",
        url=endpoint + "/",
        params={"Action": "GetCallerIdentity", "Version": "2011-06-15"},
        headers={CLUSTER_ID_HEADER: vector["cluster_id"]},
    )
    auth.add_auth(request)
    return str(request.url)


class TestGoldenVectors:
    """Frozen clock and credentials give a byte-exact URL and token."""

    def test_vector_file_covers_the_required_cases(self) -> None:
        """The vectors include session/no-session, regional, global, FIPS and China."""
        names = {v["name"] for v in VECTORS}
        assert any(v["session_token"] for v in VECTORS)
        assert any(not v["session_token"] for v in VECTORS)
        hosts = {urlsplit(v["url"]).hostname for v in VECTORS}
        assert "sts.amazonaws.com" in hosts
        assert any(h and h.startswith("sts-fips.") for h in hosts)
        assert any(h and h.endswith(".amazonaws.com.cn") for h in hosts)
        assert "regional-long-term" in names

    @pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
    def test_url_and_token_are_byte_exact(self, vector: dict[str, str | None]) -> None:
        """presign_get_caller_identity reproduces the stored URL and token exactly."""
        minted = _mint(vector)
        assert minted.url == vector["url"]
        assert minted.token == vector["token"]
        assert minted.token == encode_token(minted.url)
        assert decode_token(minted.token) == minted.url

    @pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
    def test_vector_matches_botocore_signer_alone(
        self, vector: dict[str, str | None]
    ) -> None:
        """Each vector equals botocore's SigV4QueryAuth output for the same request."""
        scope = _query(str(vector["url"]))["X-Amz-Credential"].split("/")[2]
        assert _independent_url(vector, scope) == vector["url"]

    @pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
    def test_query_has_the_token_format(self, vector: dict[str, str | None]) -> None:
        """Signed headers host;x-k8s-aws-id, expires 60, no cluster ID in the URL."""
        url = str(vector["url"])
        query = _query(url)
        assert query["Action"] == "GetCallerIdentity"
        assert query["Version"] == "2011-06-15"
        assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
        assert query["X-Amz-Expires"] == "60"
        assert query["X-Amz-Date"] == _now(str(vector["now"])).strftime(
            "%Y%m%dT%H%M%SZ"
        )
        assert len(query["X-Amz-Signature"]) == 64
        assert ("X-Amz-Security-Token" in query) == bool(vector["session_token"])
        assert str(vector["cluster_id"]) not in url
        assert urlsplit(url).path == "/"


class TestAwscliParity:
    """aws-cli's `aws eks get-token` and kubeiam sign the same bytes."""

    @pytest.mark.parametrize("session_token", [None, "FwoGZXIvYXdzEXAMPLE/tok+en=="])
    def test_token_equals_awscli_at_the_same_second(
        self, tmp_path: Path, session_token: str | None
    ) -> None:
        """Re-signing at awscli's X-Amz-Date gives its token byte for byte."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=CREDS.access_key_id,
            AWS_SECRET_ACCESS_KEY=CREDS.secret_access_key,
            AWS_CONFIG_FILE=str(tmp_path / "none"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"),
            AWS_EC2_METADATA_DISABLED="true",
        )
        if session_token:
            env["AWS_SESSION_TOKEN"] = session_token
        out = subprocess.run(
            [
                AWS,
                "eks",
                "get-token",
                "--cluster-name",
                "my-cluster",
                "--region",
                "us-west-2",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        theirs = json.loads(out.stdout)["status"]["token"]
        query = _query(decode_token(theirs))
        signed_at = datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC
        )
        ours = presign_get_caller_identity(
            credentials=StaticCredentials(
                CREDS.access_key_id, CREDS.secret_access_key, session_token
            ),
            region="us-west-2",
            cluster_id="my-cluster",
            now=signed_at,
        )
        assert ours.token == theirs
        assert query["X-Amz-SignedHeaders"] == "host;x-k8s-aws-id"
        assert query["X-Amz-Expires"] == "60"


class TestSigningRegion:
    """The credential scope follows the STS host the token is aimed at."""

    @pytest.mark.parametrize(
        ("endpoint", "region", "expected"),
        [
            ("https://sts.amazonaws.com", "eu-west-1", "us-east-1"),
            ("https://sts.eu-west-1.amazonaws.com", "us-west-2", "eu-west-1"),
            (
                "https://sts-fips.us-gov-east-1.amazonaws.com",
                "us-east-1",
                "us-gov-east-1",
            ),
            (
                "https://sts.cn-northwest-1.amazonaws.com.cn",
                "us-east-1",
                "cn-northwest-1",
            ),
            ("https://sts.eu-west-1.api.aws", "us-east-1", "eu-west-1"),
            ("http://127.0.0.1:5000", "ap-south-1", "ap-south-1"),
            (
                "https://vpce-0abc.sts.us-west-2.vpce.amazonaws.com",
                "us-west-2",
                "us-west-2",
            ),
            ("https://sts.example.com", "eu-central-1", "eu-central-1"),
        ],
    )
    def test_signing_region_for(
        self, endpoint: str, region: str, expected: str
    ) -> None:
        """AWS hosts impose their own region; other hosts use the configured one."""
        assert signing_region_for(endpoint, region) == expected

    @pytest.mark.parametrize(
        ("region", "fips", "dualstack", "expected"),
        [
            ("us-west-2", False, False, "https://sts.us-west-2.amazonaws.com"),
            ("us-east-1", False, False, "https://sts.us-east-1.amazonaws.com"),
            ("us-west-2", True, False, "https://sts-fips.us-west-2.amazonaws.com"),
            ("eu-west-1", False, True, "https://sts.eu-west-1.api.aws"),
            ("us-east-1", True, True, "https://sts-fips.us-east-1.api.aws"),
            ("cn-north-1", False, False, "https://sts.cn-north-1.amazonaws.com.cn"),
            ("us-iso-east-1", False, False, "https://sts.us-iso-east-1.c2s.ic.gov"),
        ],
    )
    def test_default_endpoint_is_regional(
        self, region: str, fips: bool, dualstack: bool, expected: str
    ) -> None:
        """The default host is the regional one of the region's partition."""
        assert default_endpoint_url(region, fips=fips, dualstack=dualstack) == expected

    @pytest.mark.parametrize("endpoint", [None, "http://127.0.0.1:5000"])
    def test_bad_region_is_a_config_error(self, endpoint: str | None) -> None:
        """A malformed region is refused before anything is signed, any endpoint."""
        with pytest.raises(ConfigError, match="invalid region"):
            presign_get_caller_identity(
                credentials=CREDS,
                region="US_WEST",
                cluster_id="c",
                now=NOW,
                endpoint_url=endpoint,
            )


class TestExpiry:
    """The advertised expiry: signing time + 14 min, bounded by the credentials."""

    def test_long_term_credentials_get_fourteen_minutes(self) -> None:
        """Without a credential expiry, expires_at is signed_at + 14 min."""
        minted = presign_get_caller_identity(
            credentials=CREDS, region="us-west-2", cluster_id="c", now=NOW
        )
        assert minted.signed_at == NOW
        assert minted.expires_at == NOW + timedelta(minutes=14)

    def test_expiring_credentials_bound_the_token(self) -> None:
        """Credentials that expire in 5 min make the token expire then too."""
        creds = StaticCredentials(
            "ASIAX", "secret", "tok", expiration=NOW + timedelta(minutes=5)
        )
        minted = presign_get_caller_identity(
            credentials=creds, region="us-west-2", cluster_id="c", now=NOW
        )
        assert minted.expires_at == NOW + timedelta(minutes=5)

    def test_sub_second_signing_time_is_truncated(self) -> None:
        """X-Amz-Date has second precision and signed_at matches it."""
        minted = presign_get_caller_identity(
            credentials=CREDS,
            region="us-west-2",
            cluster_id="c",
            now=NOW + timedelta(microseconds=999_999),
        )
        assert minted.signed_at == NOW
        assert _query(minted.url)["X-Amz-Date"] == "20261127T050000Z"

    @pytest.mark.parametrize(
        "cluster_id", ["", "a\nb", "a\rb", "tab\t", " padded", "x\x00"]
    )
    def test_unusable_cluster_id_is_refused(self, cluster_id: str) -> None:
        """A token must be bound to a cluster ID that fits in a header value."""
        with pytest.raises(ConfigError):
            presign_get_caller_identity(
                credentials=CREDS, region="us-west-2", cluster_id=cluster_id, now=NOW
            )


class TestSecrets:
    """Secrets stay out of reprs."""

    def test_repr_hides_secret_and_session_token(self) -> None:
        """repr(StaticCredentials) and repr(PresignedToken) carry no secret material."""
        creds = StaticCredentials("ASIAEXAMPLE", "s3cr3t-value", "session-tok3n")
        minted = presign_get_caller_identity(
            credentials=creds, region="us-west-2", cluster_id="c", now=NOW
        )
        text = repr(creds) + repr(minted)
        for secret in (
            "s3cr3t-value",
            "session-tok3n",
            minted.token,
            _query(minted.url)["X-Amz-Signature"],
        ):
            assert secret not in text


class TestLoadCredentials:
    """Credential lookup through botocore's chain."""

    def test_environment_credentials(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """AWS_ACCESS_KEY_ID/SECRET/SESSION_TOKEN are used when no profile is given."""
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "envtoken")
        creds, scoped = load_credentials(profile=None, prompt=lambda _t: "")
        assert (creds.access_key_id, creds.secret_access_key, creds.session_token) == (
            "AKIAENV",
            "envsecret",
            "envtoken",
        )
        assert scoped == {}

    def test_explicit_profile_beats_environment(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        """--profile reads the shared credentials file and ignores AWS_ACCESS_KEY_ID."""
        creds_file = tmp_path / "credentials"
        creds_file.write_text(
            "[dev]\naws_access_key_id = AKIAPROFILE\n"
            "aws_secret_access_key = profsecret\n"
        )
        config = tmp_path / "config"
        config.write_text(
            "[profile dev]\nregion = eu-west-1\n"
            "mfa_serial = arn:aws:iam::111122223333:mfa/me\n"
        )
        monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds_file))
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
        creds, scoped = load_credentials(profile="dev", prompt=lambda _t: "")
        assert creds.access_key_id == "AKIAPROFILE"
        assert creds.session_token is None
        assert scoped.get("mfa_serial") == "arn:aws:iam::111122223333:mfa/me"

    def test_credential_expiry_from_the_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AWS_CREDENTIAL_EXPIRATION becomes the credentials' expiration."""
        expiry = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "envtoken")
        monkeypatch.setenv(
            "AWS_CREDENTIAL_EXPIRATION", expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        creds, _ = load_credentials(profile=None, prompt=lambda _t: "")
        assert creds.expiration == expiry

    def test_expired_credentials_are_a_config_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Credentials that expired already are a one-line error, not a traceback."""
        past = datetime.now(UTC) - timedelta(minutes=5)
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAENV")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret")
        monkeypatch.setenv("AWS_SESSION_TOKEN", "envtoken")
        monkeypatch.setenv(
            "AWS_CREDENTIAL_EXPIRATION", past.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        with pytest.raises(ConfigError, match="expired"):
            load_credentials(profile=None, prompt=lambda _t: "")

    def test_no_credentials_is_a_config_error(self) -> None:
        """With no credentials anywhere, the error says what to set."""
        with pytest.raises(ConfigError, match="no AWS credentials found"):
            load_credentials(profile=None, prompt=lambda _t: "")

    def test_unknown_profile_is_a_config_error(self) -> None:
        """A profile that does not exist is reported, not a traceback."""
        with pytest.raises(ConfigError, match="nope"):
            load_credentials(profile="nope", prompt=lambda _t: "")


def test_presign_module_is_botocore_door() -> None:
    """Importing presign loads botocore (it is the door), importing cache does not."""
    code = (
        "import sys, authenticator.cache, authenticator.exec_credential\n"
        "print('botocore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    assert out.stdout.strip() == "False"
