"""The embedded STS answers presigned GetCallerIdentity calls as AWS STS does."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import boto3
import pytest

from authenticator.emulator import Credentials, STSEmulator, is_presigned_sts_query
from authenticator.emulator_cli import main as emulator_main
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import (
    assume_role,
    get_caller_identity,
    presign_url,
    unique_name,
)

CLUSTER = "cluster-a"
NS = "{https://sts.amazonaws.com/doc/2011-06-15/}"


def _sign(emulator: STSEmulator, creds: Credentials, **kwargs: object) -> str:
    return presign_url(creds, endpoint=emulator.url, cluster_id=CLUSTER, **kwargs)  # type: ignore[arg-type]


def _edit_query(url: str, edit: dict[str, str | None]) -> str:
    """Return ``url`` with query parameters replaced (None removes one)."""
    parts = urlsplit(url)
    pairs = [(k, v) for k, v in parse_qsl(parts.query) if k not in edit]
    pairs += [(k, v) for k, v in edit.items() if v is not None]
    return urlunsplit(parts._replace(query=urlencode(pairs)))


def _error(response: object) -> tuple[int, str, str]:
    """Return (status, code, message) of a JSON STS error answer."""
    body = response.json()  # type: ignore[attr-defined]
    assert set(body) == {"Error", "RequestId"}
    assert body["Error"]["Type"] == "Sender"
    return response.status_code, body["Error"]["Code"], body["Error"]["Message"]  # type: ignore[attr-defined]


def _boto3(
    emulator: STSEmulator, service: str, creds: Credentials | None = None
) -> object:
    return boto3.client(
        service,
        endpoint_url=emulator.url,
        region_name="us-east-1",
        aws_access_key_id=creds.access_key_id if creds else "testing",
        aws_secret_access_key=creds.secret_access_key if creds else "testing",
        aws_session_token=creds.session_token if creds else None,
    )


class TestGetCallerIdentity:
    """A correctly presigned call comes back as the signer's identity."""

    def test_iam_user_in_json(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Long-term keys give the user's ARN, AIDA UserId and account (AWS JSON)."""
        response = get_caller_identity(_sign(sts_emulator, iam_user), CLUSTER)
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        body = response.json()
        result = body["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        assert result == {
            "Account": iam_user.account_id,
            "Arn": iam_user.arn,
            "UserId": iam_user.user_id,
        }
        assert iam_user.user_id.startswith("AIDA") and len(iam_user.user_id) == 21
        name = iam_user.arn.rsplit("/", 1)[1]
        assert iam_user.arn == f"arn:aws:iam::{iam_user.account_id}:user/{name}"
        request_id = body["GetCallerIdentityResponse"]["ResponseMetadata"]["RequestId"]
        assert request_id == response.headers["x-amzn-RequestId"]

    def test_iam_user_in_xml(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Without Accept: application/json the answer is STS's namespaced XML."""
        response = get_caller_identity(
            _sign(sts_emulator, iam_user), CLUSTER, accept_json=False
        )
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "text/xml"
        root = ET.fromstring(response.content)
        assert root.tag == f"{NS}GetCallerIdentityResponse"
        result = root.find(f"{NS}GetCallerIdentityResult")
        assert result is not None
        assert [child.tag for child in result] == [
            f"{NS}Arn",
            f"{NS}UserId",
            f"{NS}Account",
        ]
        assert result.findtext(f"{NS}Arn") == iam_user.arn
        assert result.findtext(f"{NS}UserId") == iam_user.user_id
        assert result.findtext(f"{NS}Account") == iam_user.account_id
        assert root.findtext(f"{NS}ResponseMetadata/{NS}RequestId")

    def test_user_path_is_in_the_arn(self, sts_emulator: STSEmulator) -> None:
        """An IAM user's path appears in its ARN, as at AWS."""
        name = unique_name("pathed")
        creds = sts_emulator.create_user(name, path="/team/ops/")
        result = get_caller_identity(_sign(sts_emulator, creds), CLUSTER).json()
        arn = result["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"]
        assert arn == f"arn:aws:iam::{creds.account_id}:user/team/ops/{name}"

    def test_assumed_role_session(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Temporary keys give the assumed-role ARN (no path) and AROA...:session."""
        role_name = unique_name("deploy")
        role_arn = sts_emulator.create_role(role_name, path="/team/")
        temp = assume_role(
            sts_emulator, iam_user, role_arn, session_name="alice@example.com"
        )
        assert temp.session_token and temp.expiration is not None
        response = get_caller_identity(_sign(sts_emulator, temp), CLUSTER)
        assert response.status_code == 200
        result = response.json()["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        assert result["Arn"] == (
            f"arn:aws:sts::{temp.account_id}:assumed-role/{role_name}/alice@example.com"
        )
        role_id, session = result["UserId"].split(":")
        assert role_id.startswith("AROA") and session == "alice@example.com"

    def test_signed_14_minutes_ago_still_works(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A URL works for 15 minutes after X-Amz-Date, whatever X-Amz-Expires says."""
        signed_at = datetime.now(UTC) - timedelta(minutes=14)
        response = get_caller_identity(
            _sign(sts_emulator, iam_user, signed_at=signed_at), CLUSTER
        )
        assert response.status_code == 200

    def test_expires_zero_is_accepted(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """X-Amz-Expires=0 (Go clients 2018-2024) does not shorten the window."""
        url = _sign(sts_emulator, iam_user, expires=0)
        assert "X-Amz-Expires=0" in url
        assert get_caller_identity(url, CLUSTER).status_code == 200


class TestRejections:
    """Everything AWS refuses, the emulator refuses with AWS's status and code."""

    def test_tampered_signature(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A changed signature gives 403 SignatureDoesNotMatch."""
        url = _sign(sts_emulator, iam_user)
        sig = dict(parse_qsl(urlsplit(url).query))["X-Amz-Signature"]
        flipped = sig[:-1] + ("0" if sig[-1] != "0" else "1")
        status, code, _ = _error(
            get_caller_identity(_edit_query(url, {"X-Amz-Signature": flipped}), CLUSTER)
        )
        assert (status, code) == (403, "SignatureDoesNotMatch")

    def test_wrong_cluster_id(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Another cluster's verifier sends another x-k8s-aws-id: signature broken."""
        status, code, message = _error(
            get_caller_identity(_sign(sts_emulator, iam_user), "cluster-b")
        )
        assert (status, code) == (403, "SignatureDoesNotMatch")
        assert message.startswith("The request signature we calculated does not match")

    def test_missing_cluster_header(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A signed header that is not sent breaks the signature."""
        status, code, _ = _error(
            get_caller_identity(_sign(sts_emulator, iam_user), None)
        )
        assert (status, code) == (403, "SignatureDoesNotMatch")

    def test_expired(self, sts_emulator: STSEmulator, iam_user: Credentials) -> None:
        """A URL signed more than 15 minutes ago: 403 'Signature expired'."""
        signed_at = datetime.now(UTC) - timedelta(minutes=16)
        status, code, message = _error(
            get_caller_identity(
                _sign(sts_emulator, iam_user, signed_at=signed_at), CLUSTER
            )
        )
        assert (status, code) == (403, "SignatureDoesNotMatch")
        assert message.startswith(
            f"Signature expired: {signed_at:%Y%m%dT%H%M%SZ} is now earlier than"
        )
        assert message.endswith("- 15 min.)")

    def test_not_yet_current(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Signed over 15 minutes in the future: 403 'Signature not yet current'."""
        signed_at = datetime.now(UTC) + timedelta(minutes=16)
        status, code, message = _error(
            get_caller_identity(
                _sign(sts_emulator, iam_user, signed_at=signed_at), CLUSTER
            )
        )
        assert (status, code) == (403, "SignatureDoesNotMatch")
        assert message.startswith("Signature not yet current:")

    def test_unknown_key(self, sts_emulator: STSEmulator) -> None:
        """Keys the emulator never issued: 403 InvalidClientTokenId."""
        stranger = Credentials(
            access_key_id="AKIAIOSFODNN7EXAMPLE",
            secret_access_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            arn="",
            user_id="",
            account_id="",
        )
        status, code, message = _error(
            get_caller_identity(_sign(sts_emulator, stranger), CLUSTER)
        )
        assert (status, code) == (403, "InvalidClientTokenId")
        assert message == "The security token included in the request is invalid."

    def test_wrong_secret(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A known key signed with the wrong secret: 403 SignatureDoesNotMatch."""
        forged = Credentials(
            access_key_id=iam_user.access_key_id,
            secret_access_key="x" * 40,
            arn="",
            user_id="",
            account_id="",
        )
        status, code, _ = _error(
            get_caller_identity(_sign(sts_emulator, forged), CLUSTER)
        )
        assert (status, code) == (403, "SignatureDoesNotMatch")

    def test_inactive_key(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A key deactivated through IAM stops working: 403 InvalidClientTokenId."""
        user_name = iam_user.arn.rsplit("/", 1)[1]
        # An IAM write over HTTP: only an emulator started to allow them takes it.
        with STSEmulator(allow_iam_writes=True) as admin:
            _boto3(admin, "iam").update_access_key(  # type: ignore[attr-defined]
                UserName=user_name,
                AccessKeyId=iam_user.access_key_id,
                Status="Inactive",
            )
        status, code, _ = _error(
            get_caller_identity(_sign(sts_emulator, iam_user), CLUSTER)
        )
        assert (status, code) == (403, "InvalidClientTokenId")

    def test_session_token_missing(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Temporary keys without their session token: 403 InvalidClientTokenId."""
        temp = assume_role(sts_emulator, iam_user)
        without = Credentials(
            access_key_id=temp.access_key_id,
            secret_access_key=temp.secret_access_key,
            arn="",
            user_id="",
            account_id="",
        )
        status, code, _ = _error(
            get_caller_identity(_sign(sts_emulator, without), CLUSTER)
        )
        assert (status, code) == (403, "InvalidClientTokenId")

    def test_session_expired(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A URL signed with temporary credentials dies with them: 403 ExpiredToken."""
        temp = assume_role(sts_emulator, iam_user)
        url = _sign(sts_emulator, temp)
        assert get_caller_identity(url, CLUSTER).status_code == 200
        sts_emulator.expire_session(temp)
        status, code, _ = _error(get_caller_identity(url, CLUSTER))
        assert (status, code) == (403, "ExpiredToken")

    @pytest.mark.parametrize(
        ("edit", "status", "code"),
        [
            ({"Action": "AssumeRole"}, 400, "InvalidAction"),
            ({"Action": None}, 400, "MissingAction"),
            ({"Version": "2011-06-14"}, 400, "InvalidAction"),
            ({"X-Amz-Signature": None}, 400, "IncompleteSignature"),
            ({"X-Amz-Algorithm": "AWS4-HMAC-SHA512"}, 400, "IncompleteSignature"),
            ({"X-Amz-Date": "2024-01-01T00:00:00Z"}, 400, "IncompleteSignature"),
            ({"X-Amz-SignedHeaders": "x-k8s-aws-id"}, 400, "IncompleteSignature"),
            ({"X-Amz-Expires": "soon"}, 400, "IncompleteSignature"),
            (
                {"X-Amz-Credential": "AKIA/20240101/us-east-1/sts"},
                400,
                "IncompleteSignature",
            ),
            ({"X-Amz-Expires": "900"}, 403, "SignatureDoesNotMatch"),
            ({"Extra": "1"}, 403, "SignatureDoesNotMatch"),
        ],
        ids=lambda v: str(v),
    )
    def test_altered_query(
        self,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
        edit: dict[str, str | None],
        status: int,
        code: str,
    ) -> None:
        """Malformed queries: 400; a changed signed parameter breaks the signature."""
        url = _edit_query(_sign(sts_emulator, iam_user), edit)
        assert _error(get_caller_identity(url, CLUSTER))[:2] == (status, code)

    def test_scope_date_must_match(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """The credential scope's date must be X-Amz-Date's day."""
        url = _sign(sts_emulator, iam_user)
        query = dict(parse_qsl(urlsplit(url).query))
        scope = query["X-Amz-Credential"].split("/")
        scope[1] = "20200101"
        response = get_caller_identity(
            _edit_query(url, {"X-Amz-Credential": "/".join(scope)}), CLUSTER
        )
        status, code, message = _error(response)
        assert (status, code) == (403, "SignatureDoesNotMatch")
        assert "Date in Credential scope does not match" in message

    def test_duplicate_parameter(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A parameter given twice is refused before anything else."""
        url = _sign(sts_emulator, iam_user) + "&Action=GetCallerIdentity"
        assert _error(get_caller_identity(url, CLUSTER))[:2] == (
            400,
            "MalformedQueryString",
        )

    def test_extra_signed_header_not_sent(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Signing a header the verifier never sends (eksctl #7486) is refused."""
        url = _sign(
            sts_emulator, iam_user, extra_headers={"amz-sdk-request": "attempt=1"}
        )
        assert (
            "amz-sdk-request"
            in dict(parse_qsl(urlsplit(url).query))["X-Amz-SignedHeaders"]
        )
        assert _error(get_caller_identity(url, CLUSTER))[:2] == (
            403,
            "SignatureDoesNotMatch",
        )

    def test_error_in_xml(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """Without Accept: application/json errors come as AWS's XML ErrorResponse."""
        response = get_caller_identity(
            _sign(sts_emulator, iam_user), "other", accept_json=False
        )
        assert response.status_code == 403
        root = ET.fromstring(response.content)
        assert root.tag == f"{NS}ErrorResponse"
        assert root.findtext(f"{NS}Error/{NS}Code") == "SignatureDoesNotMatch"
        assert root.findtext(f"{NS}Error/{NS}Type") == "Sender"
        assert root.findtext(f"{NS}RequestId")


class TestMotoPassThrough:
    """Everything that is not a presigned STS call reaches moto unchanged."""

    def test_iam_writes_over_http_are_refused_by_default(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """CreateUser over HTTP: AccessDenied, nothing created; reads still work."""
        from botocore.exceptions import ClientError

        iam = _boto3(sts_emulator, "iam", iam_user)
        name = unique_name("intruder")
        with pytest.raises(ClientError) as refused:
            iam.create_user(UserName=name)  # type: ignore[attr-defined]
        assert refused.value.response["Error"]["Code"] == "AccessDenied"
        assert "--allow-remote-iam-writes" in str(refused.value)
        with pytest.raises(ClientError) as missing:
            iam.get_user(UserName=name)  # type: ignore[attr-defined]
        assert missing.value.response["Error"]["Code"] == "NoSuchEntity"
        names = [u["UserName"] for u in iam.list_users()["Users"]]  # type: ignore[attr-defined]
        assert name not in names
        # Unsigned, as curl would send it: refused too.
        import requests

        answer = requests.post(
            sts_emulator.url,
            data={"Action": "CreateAccessKey", "UserName": iam_user.arn.split("/")[-1]},
            timeout=10,
        )
        assert answer.status_code == 403

    @pytest.mark.parametrize(
        ("query", "body", "authorization", "expected"),
        [
            ("", b"Action=CreateUser&UserName=x", "", "CreateUser"),
            ("Action=PutRolePolicy", b"", "", "PutRolePolicy"),
            (
                "",
                b"Action=AttachUserPolicy",
                "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/iam/aws4_request",
                "AttachUserPolicy",
            ),
            (
                "",
                b"Action=AssumeRole",
                "AWS4-HMAC-SHA256 Credential=AKIA/20260101/us-east-1/sts/aws4_request",
                None,
            ),
            ("", b"Action=GetCallerIdentity", "", None),
            ("", b"Action=ListUsers", "", None),
            ("", b"Action=GetUser", "", None),
            ("", b"", "", None),
        ],
    )
    def test_iam_write_classification(
        self, query: str, body: bytes, authorization: str, expected: str | None
    ) -> None:
        """STS actions and IAM reads pass; any other IAM action is a write."""
        from authenticator.emulator_protocol import iam_write_action

        assert iam_write_action(query, body, authorization) == expected

    def test_iam_create_user_and_key_then_verify(self) -> None:
        """With allow_iam_writes, a user and key made over IAM sign accepted tokens."""
        with STSEmulator(allow_iam_writes=True) as sts_emulator:
            self._create_and_verify(sts_emulator)

    def _create_and_verify(self, sts_emulator: STSEmulator) -> None:
        iam = _boto3(sts_emulator, "iam")
        name = unique_name("boto")
        user = iam.create_user(UserName=name)["User"]  # type: ignore[attr-defined]
        key = iam.create_access_key(UserName=name)["AccessKey"]  # type: ignore[attr-defined]
        creds = Credentials(
            access_key_id=key["AccessKeyId"],
            secret_access_key=key["SecretAccessKey"],
            arn=user["Arn"],
            user_id="",
            account_id="",
        )
        result = get_caller_identity(_sign(sts_emulator, creds), CLUSTER).json()
        identity = result["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        assert identity["Arn"] == user["Arn"]
        # IAM's GetUser agrees with STS on the (AWS-shaped) UserId.
        fetched = iam.get_user(UserName=name)["User"]  # type: ignore[attr-defined]
        assert fetched["UserId"] == identity["UserId"]

    def test_assume_role_over_http(
        self, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """AssumeRole through boto3 against the emulator gives working keys."""
        role_arn = sts_emulator.create_role(unique_name("http-role"))
        sts = _boto3(sts_emulator, "sts", iam_user)
        answer = sts.assume_role(RoleArn=role_arn, RoleSessionName="over-http")  # type: ignore[attr-defined]
        raw = answer["Credentials"]
        temp = Credentials(
            access_key_id=raw["AccessKeyId"],
            secret_access_key=raw["SecretAccessKey"],
            session_token=raw["SessionToken"],
            arn="",
            user_id="",
            account_id="",
        )
        result = get_caller_identity(_sign(sts_emulator, temp), CLUSTER).json()
        arn = result["GetCallerIdentityResponse"]["GetCallerIdentityResult"]["Arn"]
        assert arn == answer["AssumedRoleUser"]["Arn"]
        assert arn.endswith("/over-http")

    def test_counters(self, sts_emulator: STSEmulator, iam_user: Credentials) -> None:
        """requests_total counts all requests, outcomes presigned calls by result."""
        before_total, before = sts_emulator.requests_total, sts_emulator.outcomes
        url = _sign(sts_emulator, iam_user)
        get_caller_identity(url, CLUSTER)
        get_caller_identity(url, "other")
        _boto3(sts_emulator, "iam").list_users()  # type: ignore[attr-defined]
        after = sts_emulator.outcomes
        assert sts_emulator.requests_total == before_total + 3
        assert after.get("OK", 0) == before.get("OK", 0) + 1
        assert (
            after["SignatureDoesNotMatch"] == before.get("SignatureDoesNotMatch", 0) + 1
        )
        assert sts_emulator.presigned_total == sum(after.values())


class TestLifecycle:
    """Start, stop, ports and the query detector."""

    def test_start_is_fast_and_stop_frees_the_port(self) -> None:
        """A new emulator starts in well under a second and frees its port on stop."""
        started = time.perf_counter()
        with STSEmulator() as emulator:
            elapsed = time.perf_counter() - started
            port = emulator.port
            assert emulator.url == f"http://127.0.0.1:{port}"
        assert elapsed < 0.5
        with STSEmulator(port=port) as again:
            assert again.port == port

    def test_verbose_log_has_no_query(
        self, iam_user: Credentials, capfd: pytest.CaptureFixture[str]
    ) -> None:
        """The request log shows method, path and status, never the signed query."""
        with STSEmulator(verbose=True) as emulator:
            url = _sign(emulator, iam_user)
            assert get_caller_identity(url, CLUSTER).status_code == 200
        err = capfd.readouterr().err
        assert "GET / 200" in err
        assert "X-Amz-" not in err and "Action=" not in err

    def test_port_needs_start(self) -> None:
        """Asking for the port of a stopped emulator is an error, not a guess."""
        with pytest.raises(RuntimeError):
            _ = STSEmulator().port

    def test_duplicate_user_is_a_value_error(self, sts_emulator: STSEmulator) -> None:
        """Creating an existing user raises ValueError with moto's reason."""
        name = unique_name("dup")
        sts_emulator.create_user(name)
        with pytest.raises(ValueError, match="already exists"):
            sts_emulator.create_user(name)

    def test_assume_role_needs_known_credentials(
        self, sts_emulator: STSEmulator
    ) -> None:
        """The convenience AssumeRole refuses credentials the emulator never issued."""
        stranger = Credentials(
            access_key_id="AKIAEXAMPLE",
            secret_access_key="s",
            arn="",
            user_id="",
            account_id="",
        )
        with pytest.raises(ValueError, match="unknown"):
            sts_emulator.assume_role(
                stranger, sts_emulator.create_role(unique_name("r")), "s"
            )

    @pytest.mark.parametrize(
        ("query", "expected"),
        [
            ("X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fsts%2Faws4_request", True),
            ("x-amz-credential=AKIA/20240101/us-east-1/sts/aws4_request", True),
            ("X-Amz-Credential=AKIA%2F20240101%2Fus-east-1%2Fs3%2Faws4_request", False),
            ("Action=GetCallerIdentity", False),
            ("", False),
        ],
    )
    def test_presigned_query_detection(self, query: str, expected: bool) -> None:
        """Only an sts-scoped X-Amz-Credential goes to the signature checker."""
        assert is_presigned_sts_query(query) is expected


class TestCLI:
    """``kubeiam sts-emulator``."""

    def test_runs_prints_exports_and_stops_on_sigterm(self, tmp_path: Path) -> None:
        """It serves, prints endpoint and keys as exports, exits 0 on SIGTERM."""
        proc = subprocess.Popen(
            [
                KUBEIAM,
                "sts-emulator",
                "--port",
                "0",
                "--create-user",
                unique_name("cli"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            assert proc.stdout is not None
            lines = [proc.stdout.readline() for _ in range(6)]
            exports = dict(
                line.removeprefix("export ").strip().split("=", 1)
                for line in lines
                if line.startswith("export ")
            )
            assert set(exports) == {
                "AWS_ENDPOINT_URL_STS",
                "AWS_ACCESS_KEY_ID",
                "AWS_SECRET_ACCESS_KEY",
            }
            assert lines[0].strip().endswith(exports["AWS_ENDPOINT_URL_STS"])
            creds = Credentials(
                access_key_id=exports["AWS_ACCESS_KEY_ID"],
                secret_access_key=exports["AWS_SECRET_ACCESS_KEY"].strip("'"),
                arn="",
                user_id="",
                account_id="",
            )
            url = presign_url(
                creds, endpoint=exports["AWS_ENDPOINT_URL_STS"], cluster_id=CLUSTER
            )
            assert get_caller_identity(url, CLUSTER).status_code == 200
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=10) == 0

    def test_refuses_non_loopback(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A non-loopback --host needs --i-know-this-is-insecure."""
        assert emulator_main(["--host", "0.0.0.0"]) == 1
        assert "--i-know-this-is-insecure" in capsys.readouterr().err

    def test_busy_port_is_one_clear_error(
        self, sts_emulator: STSEmulator, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A port in use gives exit 1 and one line on stderr."""
        assert emulator_main(["--port", str(sts_emulator.port)]) == 1
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "cannot listen" in err

    def test_help_says_it_is_a_toy(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help explains it is a local toy and shows examples."""
        with pytest.raises(SystemExit) as exit_info:
            emulator_main(["--help"])
        assert exit_info.value.code == 0
        out = capsys.readouterr().out
        assert "LOCAL TOY" in out and "examples:" in out
