"""`kubeiam token`: flags, exec info, endpoints, output, errors, imports, roles, MFA."""

from __future__ import annotations

import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from authenticator.emulator import Credentials, STSEmulator
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token
from authenticator.token_cli import (
    _SWITCH_OPTIONS,
    _VALUE_OPTIONS,
    TokenFlags,
    build_parser,
    main,
    parse_common_flags,
)
from tests.fixtures.executables import KUBEIAM
from tests.fixtures.sts import get_caller_identity, unique_name

ROOT = Path(__file__).resolve().parents[2]
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"


@pytest.fixture
def static_creds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake long-term credentials in the environment."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _query(url: str) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(url).query, strict_parsing=True))


def _signed_for(
    token: str,
    cluster_id: str,
    *,
    secret: str = SECRET,
    session_token: str | None = None,
) -> bool:
    """Whether ``token`` signs ``cluster_id`` (re-sign at its own time and compare)."""
    url = decode_token(token)
    query = _query(url)
    akid, _, region, _, _ = query["X-Amz-Credential"].split("/")
    parts = urlsplit(url)
    again = presign_get_caller_identity(
        credentials=StaticCredentials(akid, secret, session_token),
        region=region,
        cluster_id=cluster_id,
        now=datetime.strptime(query["X-Amz-Date"], "%Y%m%dT%H%M%SZ").replace(
            tzinfo=UTC
        ),
        endpoint_url=f"{parts.scheme}://{parts.netloc}",
    )
    return again.token == token


def _exec_info(
    version: str, config: dict[str, str] | None = None, interactive: bool = False
) -> str:
    spec: dict[str, object] = {"interactive": interactive}
    if config is not None:
        spec["cluster"] = {"server": "https://127.0.0.1:6443", "config": config}
    return json.dumps({"kind": "ExecCredential", "apiVersion": version, "spec": spec})


@pytest.mark.usefixtures("static_creds")
class TestOutput:
    """What kubectl reads on stdout."""

    def test_default_is_v1beta1_exec_credential(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """Without KUBERNETES_EXEC_INFO: a v1beta1 ExecCredential expiring in 14 min."""
        before = datetime.now(UTC).replace(microsecond=0)
        code, out, err = _run(capsys, "-i", "my-cluster", "--region", "us-west-2")
        assert (code, err) == (0, "")
        doc = json.loads(out)
        assert doc["apiVersion"] == V1BETA1
        assert doc["kind"] == "ExecCredential"
        expires = datetime.strptime(
            doc["status"]["expirationTimestamp"], "%Y-%m-%dT%H:%M:%SZ"
        ).replace(tzinfo=UTC)
        assert (
            before + timedelta(minutes=14)
            <= expires
            <= datetime.now(UTC) + timedelta(minutes=14)
        )
        assert _signed_for(doc["status"]["token"], "my-cluster")

    @pytest.mark.parametrize("version", [V1, V1BETA1])
    def test_api_version_is_echoed(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        version: str,
    ) -> None:
        """The answer uses KUBERNETES_EXEC_INFO's apiVersion."""
        monkeypatch.setenv("KUBERNETES_EXEC_INFO", _exec_info(version))
        code, out, _ = _run(capsys, "-i", "c")
        assert code == 0
        assert json.loads(out)["apiVersion"] == version

    def test_unknown_api_version_falls_back_with_warning(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """v1alpha1 is answered in v1beta1 with a warning on stderr."""
        monkeypatch.setenv(
            "KUBERNETES_EXEC_INFO", _exec_info("client.authentication.k8s.io/v1alpha1")
        )
        code, out, err = _run(capsys, "-i", "c")
        assert code == 0
        assert json.loads(out)["apiVersion"] == V1BETA1
        assert "warning" in err

    def test_expiry_is_bounded_by_the_credentials(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Credentials expiring in 5 min make the ExecCredential expire then."""
        expiry = (datetime.now(UTC) + timedelta(minutes=5)).replace(microsecond=0)
        monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
        monkeypatch.setenv(
            "AWS_CREDENTIAL_EXPIRATION", expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        )
        code, out, _ = _run(capsys, "-i", "c", "--region", "us-west-2")
        assert code == 0
        assert json.loads(out)["status"]["expirationTimestamp"] == expiry.strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        # The cached copy keeps the same bound.
        _, again, _ = _run(capsys, "-i", "c", "--region", "us-west-2")
        assert json.loads(again) == json.loads(out)

    def test_token_only(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--token-only prints the bare token and a newline."""
        code, out, _ = _run(capsys, "-i", "c", "--token-only")
        assert code == 0
        assert out.startswith("k8s-aws-v1.")
        assert out.count("\n") == 1
        assert _signed_for(out.strip(), "c")

    def test_cache_hit_returns_the_same_token(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A second call within the token's life returns the cached token."""
        _, first, _ = _run(capsys, "-i", "c", "--region", "eu-west-1")
        _, second, _ = _run(capsys, "-i", "c", "--region", "eu-west-1")
        assert json.loads(first) == json.loads(second)
        _, other, _ = _run(capsys, "-i", "c", "--region", "eu-west-2")
        assert (
            json.loads(other)["status"]["token"] != json.loads(first)["status"]["token"]
        )


@pytest.mark.usefixtures("static_creds")
class TestClusterInfo:
    """Cluster ID, region and role from the exec cluster extension; flags win."""

    def test_extension_supplies_cluster_id_and_region(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """With provideClusterInfo, clusterID and region come from the extension."""
        monkeypatch.setenv(
            "KUBERNETES_EXEC_INFO",
            _exec_info(V1, {"clusterID": "ext-cluster", "region": "eu-west-1"}),
        )
        code, out, _ = _run(capsys)
        assert code == 0
        token = json.loads(out)["status"]["token"]
        assert urlsplit(decode_token(token)).hostname == "sts.eu-west-1.amazonaws.com"
        assert _signed_for(token, "ext-cluster")

    def test_flags_win_over_extension(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """-i and --region override the extension's clusterID and region."""
        monkeypatch.setenv(
            "KUBERNETES_EXEC_INFO",
            _exec_info(V1, {"clusterID": "ext", "region": "eu-west-1"}),
        )
        code, out, _ = _run(capsys, "-i", "flag-cluster", "--region", "ap-south-1")
        assert code == 0
        token = json.loads(out)["status"]["token"]
        assert urlsplit(decode_token(token)).hostname == "sts.ap-south-1.amazonaws.com"
        assert _signed_for(token, "flag-cluster")
        assert not _signed_for(token, "ext")

    def test_missing_cluster_id(self, capsys: pytest.CaptureFixture[str]) -> None:
        """No -i and no extension: one line on stderr, exit 1, nothing on stdout."""
        code, out, err = _run(capsys)
        assert code == 1
        assert out == ""
        assert err.startswith("kubeiam token: cluster ID not specified: not run by")
        assert err.count("\n") == 1


@pytest.mark.usefixtures("static_creds")
class TestRegionAndEndpoint:
    """The region chain, partitions, FIPS, dual-stack and endpoint overrides."""

    def _host_and_scope(self, out: str) -> tuple[str, str]:
        url = decode_token(json.loads(out)["status"]["token"])
        return str(urlsplit(url).netloc), _query(url)["X-Amz-Credential"].split("/")[2]

    @pytest.mark.parametrize(
        ("env", "profile_region", "expected"),
        [
            (
                {"AWS_REGION": "eu-north-1", "AWS_DEFAULT_REGION": "eu-west-3"},
                "ap-east-1",
                "eu-north-1",
            ),
            ({"AWS_DEFAULT_REGION": "eu-west-3"}, "ap-east-1", "eu-west-3"),
            ({}, "ap-east-1", "ap-east-1"),
            ({}, None, "us-east-1"),
        ],
    )
    def test_region_chain(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        env: dict[str, str],
        profile_region: str | None,
        expected: str,
    ) -> None:
        """AWS_REGION > AWS_DEFAULT_REGION > profile region > us-east-1."""
        config = tmp_path / "config"
        config.write_text(
            f"[default]\nregion = {profile_region}\n" if profile_region else ""
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        code, out, _ = _run(capsys, "-i", "c")
        assert code == 0
        assert self._host_and_scope(out) == (f"sts.{expected}.amazonaws.com", expected)

    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"AWS_PROFILE": "dev"}, "ca-central-1"),
            ({"AWS_PROFILE": "other", "AWS_DEFAULT_PROFILE": "dev"}, "ca-central-1"),
            ({"AWS_PROFILE": "missing"}, "us-east-1"),
        ],
    )
    def test_named_profile_region(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
        env: dict[str, str],
        expected: str,
    ) -> None:
        """The profile botocore picks (AWS_DEFAULT_PROFILE first) gives the region."""
        config = tmp_path / "config"
        config.write_text(
            "[default]\nregion = us-west-1\n[profile dev]\nregion = ca-central-1\n"
            "[profile other]\nregion = sa-east-1\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        code, out, _ = _run(capsys, "-i", "c")
        assert code == 0
        assert self._host_and_scope(out) == (f"sts.{expected}.amazonaws.com", expected)

    @pytest.mark.parametrize(
        ("env", "region", "host"),
        [
            (
                {"AWS_USE_FIPS_ENDPOINT": "true"},
                "us-west-2",
                "sts-fips.us-west-2.amazonaws.com",
            ),
            (
                {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
                "eu-west-1",
                "sts.eu-west-1.api.aws",
            ),
            (
                {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
                "us-east-2",
                "sts-fips.us-east-2.api.aws",
            ),
            ({}, "cn-north-1", "sts.cn-north-1.amazonaws.com.cn"),
            # GovCloud's regular STS host is its FIPS endpoint (STS's endpoint
            # rules in botocore and the Go SDK): no sts-fips host there.
            (
                {"AWS_USE_FIPS_ENDPOINT": "true"},
                "us-gov-west-1",
                "sts.us-gov-west-1.amazonaws.com",
            ),
            (
                {"AWS_USE_FIPS_ENDPOINT": "true", "AWS_USE_DUALSTACK_ENDPOINT": "true"},
                "us-gov-east-1",
                "sts-fips.us-gov-east-1.api.aws",
            ),
            (
                {"AWS_USE_DUALSTACK_ENDPOINT": "true"},
                "us-iso-east-1",
                "sts.us-iso-east-1.api.aws.ic.gov",
            ),
        ],
    )
    def test_partition_fips_and_dualstack_hosts(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        env: dict[str, str],
        region: str,
        host: str,
    ) -> None:
        """FIPS/dual-stack settings and the partition pick the signed host."""
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        code, out, _ = _run(capsys, "-i", "c", "--region", region)
        assert code == 0
        assert self._host_and_scope(out) == (host, region)

    def test_fips_from_profile(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path,
    ) -> None:
        """use_fips_endpoint in the profile selects the FIPS host."""
        config = tmp_path / "config"
        config.write_text("[default]\nuse_fips_endpoint = true\n")
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        code, out, _ = _run(capsys, "-i", "c", "--region", "us-east-1")
        assert code == 0
        assert self._host_and_scope(out)[0] == "sts-fips.us-east-1.amazonaws.com"

    @pytest.mark.parametrize(
        ("endpoint", "netloc", "scope"),
        [
            ("http://127.0.0.1:5000", "127.0.0.1:5000", "us-west-2"),
            ("https://sts.amazonaws.com/", "sts.amazonaws.com", "us-east-1"),
            (
                "https://STS.EU-WEST-1.AMAZONAWS.COM",
                "sts.eu-west-1.amazonaws.com",
                "eu-west-1",
            ),
            (
                "https://vpce-1.sts.us-west-2.vpce.amazonaws.com:443",
                "vpce-1.sts.us-west-2.vpce.amazonaws.com:443",
                "us-west-2",
            ),
            ("http://[::1]:8080", "[::1]:8080", "us-west-2"),
        ],
    )
    def test_sts_endpoint_flag(
        self, capsys: pytest.CaptureFixture[str], endpoint: str, netloc: str, scope: str
    ) -> None:
        """--sts-endpoint's scheme, host and port are used verbatim."""
        code, out, err = _run(
            capsys, "-i", "c", "--region", "us-west-2", "--sts-endpoint", endpoint
        )
        assert code == 0, err
        assert self._host_and_scope(out) == (netloc, scope)

    def test_endpoint_from_environment(
        self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """AWS_ENDPOINT_URL_STS is honoured when no flag is given."""
        monkeypatch.setenv("AWS_ENDPOINT_URL_STS", "http://127.0.0.1:4566")
        code, out, _ = _run(capsys, "-i", "c", "--region", "us-west-2")
        assert code == 0
        assert self._host_and_scope(out)[0] == "127.0.0.1:4566"

    @pytest.mark.parametrize(
        "endpoint",
        [
            "http://sts.example.com",
            "http://localhost:4566",
            " https://sts.amazonaws.com",
            "ftp://127.0.0.1",
            "https://sts.amazonaws.com/path",
            "https://user:pw@sts.amazonaws.com",
            "https://sts.amazonaws.com/?x=1",
            "https://sts.amazonaws.com:99999",
            "sts.amazonaws.com",
        ],
    )
    def test_bad_endpoints_are_refused(
        self, capsys: pytest.CaptureFixture[str], endpoint: str
    ) -> None:
        """Anything but scheme://host[:port] (plain http only on loopback) is exit 1."""
        code, out, err = _run(capsys, "-i", "c", "--sts-endpoint", endpoint)
        assert (code, out) == (1, "")
        assert err.startswith("kubeiam token: --sts-endpoint:")

    def test_bad_region_is_one_line(self, capsys: pytest.CaptureFixture[str]) -> None:
        """A malformed region is a one-line error."""
        code, _, err = _run(capsys, "-i", "c", "--region", "Not_A_Region")
        assert code == 1
        assert err == "kubeiam token: invalid region 'Not_A_Region'\n"


class TestUsage:
    """Help and usage errors."""

    def test_help_has_examples(self, capsys: pytest.CaptureFixture[str]) -> None:
        """--help exits 0 and shows examples."""
        code, out, _ = _run(capsys, "--help")
        assert code == 0
        assert "examples:" in out
        assert "kubeiam token -i my-cluster" in out

    def test_unknown_flag_is_usage_error(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An unknown flag is exit 2."""
        code, out, err = _run(capsys, "-i", "c", "--bogus")
        assert (code, out) == (2, "")
        assert "unrecognized arguments: --bogus" in err

    def test_no_credentials(self, capsys: pytest.CaptureFixture[str]) -> None:
        """Without credentials: one line, exit 1."""
        code, out, err = _run(capsys, "-i", "c", "--no-cache")
        assert (code, out) == (1, "")
        assert err.startswith("kubeiam token: no AWS credentials found")
        assert err.count("\n") == 1


_ALL_FLAGS = [
    "-i",
    "c",
    "-r",
    "arn:aws:iam::111122223333:role/r",
    "-e",
    "ext",
    "-s",
    "sess",
    "--region",
    "eu-west-1",
    "--profile",
    "dev",
    "--sts-endpoint",
    "http://127.0.0.1:5000",
    "--token-only",
    "--no-cache",
]
# Spellings the pre-parser reads itself (and must read as argparse does).
_FAST_FORMS = [
    [],
    ["-i", "c"],
    ["--cluster-id", "c"],
    ["--cluster-id=c"],
    ["-ic"],
    ["-i=c"],
    ["-i="],
    ["-i", ""],
    ["-ia=b"],
    ["--region=us=1"],
    ["--region="],
    ["-i", "a b", "--profile", "é"],
    _ALL_FLAGS,
    ["--cluster-id=c", "--role=r", "--external-id=e", "--session-name=s"],
    ["--region=r", "--profile=p", "--sts-endpoint=http://127.0.0.1:1"],
    ["--role", "r", "--external-id", "e", "--session-name", "s"],
    ["-rR", "-eE", "-sS", "-r=R2"],
    ["-i", "a", "-i", "b"],
    ["-i", "a", "--cluster-id=b", "-ic"],
    ["--token-only", "--token-only", "--no-cache", "--no-cache"],
    ["--region", "x", "--region", "y", "--profile=p", "--profile", "q"],
]
# Spellings left to argparse: help, errors, `--`, abbreviations, odd values.
_FALLBACK_FORMS = [
    ["--help"],
    ["-h"],
    ["-i", "c", "-h"],
    ["-i"],
    ["--region"],
    ["--"],
    ["-i", "c", "--"],
    ["--", "-i", "c"],
    ["--clu", "c"],
    ["--cluster=c"],
    ["--reg=x"],
    ["--r", "x"],
    ["-x"],
    ["-tc"],
    ["-hi"],
    ["-i", "c", "extra"],
    ["extra"],
    [""],
    ["-"],
    ["--token-only=yes"],
    ["--no-cache="],
    ["--bogus"],
    ["--bogus=1"],
    ["-i", "-5"],
    ["-i", "-"],
    ["-i", "--region"],
    ["-i", "-x"],
    ["--region=-x"],
    ["-i-x"],
    ["-i", "c", "--region", "--profile", "p"],
]


def _argparse(argv: list[str]) -> TokenFlags | int:
    """What the full argparse parser makes of argv: the flags or the exit code."""
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(err):
            return TokenFlags.from_namespace(build_parser().parse_args(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2


class TestProfileReader:
    """The profile reader through the command."""

    def test_profile_region_through_the_command(
        self,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """The region of a profile in a usual config file is signed for."""
        config = tmp_path / "config"
        config.write_text(
            "[default]\nregion = us-east-2\n[profile dev]\nregion = eu-north-1\n"
        )
        monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
        monkeypatch.setenv("AWS_PROFILE", "dev")
        code, out, _ = _run(capsys, "-i", "c", "--token-only", "--no-cache")
        assert code == 0
        assert "sts.eu-north-1.amazonaws.com" in decode_token(out.strip())


class TestPreParser:
    """The argparse-free flag reader agrees with argparse or defers to it."""

    @pytest.mark.parametrize("argv", _FAST_FORMS, ids=repr)
    def test_common_forms_match_argparse(self, argv: list[str]) -> None:
        """Each usual spelling is read without argparse, as argparse reads it."""
        fast = parse_common_flags(list(argv))
        assert fast is not None
        assert fast == _argparse(list(argv))

    @pytest.mark.parametrize("argv", _FALLBACK_FORMS, ids=repr)
    def test_other_forms_fall_back(self, argv: list[str]) -> None:
        """Help, `--`, abbreviations, unknown flags and dash values go to argparse."""
        assert parse_common_flags(list(argv)) is None

    def test_every_parser_option_is_known(self) -> None:
        """The pre-parser knows every option string of the argparse parser."""
        parser = build_parser()
        options = {
            opt
            for action in parser._actions
            for opt in action.option_strings
            if opt not in ("-h", "--help")
        }
        assert options == set(_VALUE_OPTIONS) | set(_SWITCH_OPTIONS)
        for action in parser._actions:
            for opt in action.option_strings:
                if opt in _VALUE_OPTIONS:
                    assert _VALUE_OPTIONS[opt] == action.dest
                elif opt in _SWITCH_OPTIONS:
                    assert _SWITCH_OPTIONS[opt] == action.dest

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    *_ALL_FLAGS,
                    "--cluster-id",
                    "--role",
                    "-ix",
                    "-i=y",
                    "--region=z",
                    "--token-only=1",
                    "--",
                    "-",
                    "-h",
                    "--clu",
                    "",
                    "-5",
                    "v=w",
                ]
            ),
            max_size=8,
        )
    )
    def test_random_argv_agrees_with_argparse(self, argv: list[str]) -> None:
        """On random argv the pre-parser either defers or matches argparse."""
        fast = parse_common_flags(list(argv))
        if fast is not None:
            assert fast == _argparse(list(argv))

    def test_fallback_keeps_argparse_messages(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A bad flag still gets argparse's usage line and exit 2."""
        code, out, err = _run(capsys, "-i")
        assert (code, out) == (2, "")
        assert err.startswith("usage: kubeiam token")
        assert err.endswith(
            "kubeiam token: error: argument -i/--cluster-id/--cluster-name: "
            "expected one argument\n"
        )


class TestStartUp:
    """A cache hit loads neither boto3 nor botocore."""

    def test_hit_imports_no_botocore(self, tmp_path: Path) -> None:
        """The miss loads botocore; the hit after it loads neither it nor boto3."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=AKID,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            KUBEIAM_CACHE_DIR=str(tmp_path / "cache"),
        )
        wrapper = (
            "import sys\nfrom kubeiam.cli import main\n"
            "code = main(['token', '-i', 'c', '--region', 'us-west-2'])\n"
            "heavy = sorted({m.split('.')[0] for m in sys.modules}\n"
            "               & {'botocore', 'boto3', 'flask', 'requests', 'policy'})\n"
            "print(code, ','.join(heavy), file=sys.stderr)\n"
        )
        miss = subprocess.run(
            [sys.executable, "-c", wrapper],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        hit = subprocess.run(
            [sys.executable, "-c", wrapper],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        assert miss.stderr.strip() == "0 botocore"
        assert hit.stderr.strip() == "0"
        assert json.loads(hit.stdout) == json.loads(miss.stdout)

    def test_hit_imports_no_argparse(self, tmp_path: Path) -> None:
        """A hit reading ~/.aws/config loads no argparse, configparser, re or json."""
        config = tmp_path / "config"
        config.write_text("[default]\nregion = us-west-2\ncli_pager =\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=AKID,
            AWS_SECRET_ACCESS_KEY=SECRET,
            AWS_CONFIG_FILE=str(config),
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            KUBEIAM_CACHE_DIR=str(tmp_path / "cache"),
        )
        wrapper = (
            "import sys\nfrom kubeiam.cli import main\n"
            "code = main(['token', '-i', 'c'])\n"
            "avoid = {'argparse', 'pathlib', 'contextlib', 'urllib', 'ipaddress',\n"
            "         'gettext', 'importlib.util', 'fnmatch', 're', 'json', 'enum',\n"
            "         'datetime', 'collections', 'typing', 'configparser',\n"
            "         'botocore'}\n"
            "print(code, ','.join(sorted(avoid & set(sys.modules))), file=sys.stderr)\n"
        )
        argv = [sys.executable, "-c", wrapper]
        miss = subprocess.run(argv, env=env, capture_output=True, text=True)
        hit = subprocess.run(argv, env=env, capture_output=True, text=True)
        assert miss.stderr.split()[0] == "0"
        assert "botocore" in miss.stderr
        assert hit.stderr.strip() == "0"
        assert json.loads(hit.stdout) == json.loads(miss.stdout)

    def test_hit_through_the_installed_script(self, tmp_path: Path) -> None:
        """`python -X importtime .venv/bin/kubeiam token` on a hit lists no botocore."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ACCESS_KEY_ID=AKID,
            AWS_SECRET_ACCESS_KEY=SECRET,
            KUBEIAM_CACHE_DIR=str(tmp_path / "c"),
        )
        argv = [
            sys.executable,
            "-X",
            "importtime",
            KUBEIAM,
            "token",
            "-i",
            "c",
            "--region",
            "us-west-2",
        ]
        subprocess.run(argv, env=env, capture_output=True, check=True)
        hit = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
        imported = {
            line.rsplit("|", 1)[-1].strip()
            for line in hit.stderr.splitlines()
            if "|" in line
        }
        assert "authenticator.cache" in imported
        assert not {m for m in imported if m.split(".")[0] in ("botocore", "boto3")}
        # Beyond a bare interpreter of the same venv, the script and a hit load
        # only kubeiam's own modules and C-level stdlib ones: no `re`, `enum`,
        # `functools` or `collections` (an entry-point launcher imports re).
        bare = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "pass"],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        floor = {
            line.rsplit("|", 1)[-1].strip()
            for line in bare.stderr.splitlines()
            if "|" in line
        }
        extra = {
            m
            for m in imported - floor
            if m.split(".")[0] not in ("kubeiam", "authenticator")
        }
        assert extra <= {"__future__", "_datetime", "_json", "_blake2", "errno"}


_ACCESS_DENIED = (
    b'<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    b"<Error><Type>Sender</Type><Code>AccessDenied</Code>"
    b"<Message>not authorized to perform sts:AssumeRole</Message></Error>"
    b"<RequestId>00000000-0000-0000-0000-000000000000</RequestId></ErrorResponse>"
)


class _RefusingHandler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.send_response(403)
        self.send_header("Content-Type", "text/xml")
        self.send_header("Content-Length", str(len(_ACCESS_DENIED)))
        self.end_headers()
        self.wfile.write(_ACCESS_DENIED)


@pytest.fixture
def refusing_sts() -> Iterator[str]:
    """An STS that refuses every AssumeRole with 403 AccessDenied."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _RefusingHandler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _emulator_env(monkeypatch: pytest.MonkeyPatch, creds: Credentials) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", creds.access_key_id)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", creds.secret_access_key)


class TestRoleAssumption:
    """-r/-e/-s against the embedded STS."""

    def test_role_is_assumed_and_token_carries_the_session(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
    ) -> None:
        """The token is signed with the role session's credentials and STS says so."""
        role_arn = sts_emulator.create_role(unique_name("role"))
        _emulator_env(monkeypatch, iam_user)
        code, out, err = _run(
            capsys,
            "-i",
            "c1",
            "-r",
            role_arn,
            "-s",
            "alice-laptop",
            "-e",
            "ext-123",
            "--region",
            "us-east-1",
            "--sts-endpoint",
            sts_emulator.url,
        )
        assert code == 0, err
        url = decode_token(json.loads(out)["status"]["token"])
        query = _query(url)
        assert query["X-Amz-Credential"].startswith("ASIA")
        assert query["X-Amz-Credential"].split("/")[0] != iam_user.access_key_id
        assert "X-Amz-Security-Token" in query
        answer = get_caller_identity(url, "c1")
        assert answer.status_code == 200, answer.text
        result = answer.json()["GetCallerIdentityResponse"]["GetCallerIdentityResult"]
        role_name = role_arn.rsplit("/", 1)[-1]
        assert result["Arn"].endswith(f":assumed-role/{role_name}/alice-laptop")
        assert get_caller_identity(url, "another-cluster").status_code == 403

    def test_default_session_name_and_role_from_extension(
        self,
        capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch,
        sts_emulator: STSEmulator,
        iam_user: Credentials,
    ) -> None:
        """roleARN from the extension is assumed; session name kubeiam-<unix secs>."""
        role_arn = sts_emulator.create_role(unique_name("role"))
        _emulator_env(monkeypatch, iam_user)
        monkeypatch.setenv(
            "KUBERNETES_EXEC_INFO",
            _exec_info(V1, {"clusterID": "c2", "roleARN": role_arn}),
        )
        before = int(datetime.now(UTC).timestamp())
        code, out, err = _run(
            capsys, "--region", "us-east-1", "--sts-endpoint", sts_emulator.url
        )
        assert code == 0, err
        url = decode_token(json.loads(out)["status"]["token"])
        result = get_caller_identity(url, "c2").json()["GetCallerIdentityResponse"][
            "GetCallerIdentityResult"
        ]
        session = result["Arn"].rsplit("/", 1)[-1]
        assert session.startswith("kubeiam-")
        assert before - 1 <= int(session.removeprefix("kubeiam-")) <= before + 60

    @pytest.mark.usefixtures("static_creds")
    def test_refused_role_is_one_line(
        self, capsys: pytest.CaptureFixture[str], refusing_sts: str
    ) -> None:
        """An AssumeRole that STS answers 403 AccessDenied is exit 1 with one line."""
        code, out, err = _run(
            capsys,
            "-i",
            "c",
            "-r",
            "arn:aws:iam::123456789012:role/none",
            "--region",
            "us-east-1",
            "--sts-endpoint",
            refusing_sts,
            "--no-cache",
        )
        assert (code, out) == (1, "")
        assert err == (
            "kubeiam token: AssumeRole arn:aws:iam::123456789012:role/none "
            "refused by STS (AccessDenied)\n"
        )

    @pytest.mark.usefixtures("static_creds")
    def test_malformed_role_is_one_line(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-r that botocore refuses (multi-line message) is exit 1 with one line."""
        code, out, err = _run(
            capsys, "-i", "c", "-r", "notanarn", "--region", "us-east-1", "--no-cache"
        )
        assert (code, out) == (1, "")
        assert err.startswith("kubeiam token: AssumeRole notanarn: ")
        assert "RoleArn" in err
        assert err.count("\n") == 1

    @pytest.mark.usefixtures("static_creds")
    def test_unreachable_sts_is_one_line(
        self, capsys: pytest.CaptureFixture[str]
    ) -> None:
        """An STS that cannot be reached is exit 1 with one line."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        code, out, err = _run(
            capsys,
            "-i",
            "c",
            "-r",
            "arn:aws:iam::123456789012:role/none",
            "--region",
            "us-east-1",
            "--sts-endpoint",
            f"http://127.0.0.1:{port}",
            "--no-cache",
        )
        assert (code, out) == (1, "")
        assert err.startswith(
            "kubeiam token: AssumeRole arn:aws:iam::123456789012:role/none: "
        )
        assert err.count("\n") == 1


class TestMFA:
    """MFA codes are prompted on stderr and read from stdin; stdout is pure JSON."""

    def _write_profile(
        self, tmp_path: Path, creds: Credentials, body: str
    ) -> dict[str, str]:
        (tmp_path / "credentials").write_text(
            f"[base]\naws_access_key_id = {creds.access_key_id}\n"
            f"aws_secret_access_key = {creds.secret_access_key}\n"
        )
        (tmp_path / "config").write_text(body)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_CONFIG_FILE=str(tmp_path / "config"),
            AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "credentials"),
            AWS_EC2_METADATA_DISABLED="true",
            KUBEIAM_CACHE_DIR=str(tmp_path / "cache"),
        )
        env.pop("KUBERNETES_EXEC_INFO", None)
        return env

    def test_profile_role_with_mfa_serial_prompts_on_stderr(
        self, tmp_path: Path, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """A role profile with mfa_serial prompts for the code on stderr."""
        role_arn = sts_emulator.create_role(unique_name("role"))
        env = self._write_profile(
            tmp_path,
            iam_user,
            f"[profile base]\nregion = us-east-1\n"
            f"[profile admin]\nrole_arn = {role_arn}\nsource_profile = base\n"
            f"mfa_serial = arn:aws:iam::{iam_user.account_id}:mfa/me\n"
            "region = us-east-1\n",
        )
        env["AWS_ENDPOINT_URL_STS"] = sts_emulator.url
        result = subprocess.run(
            [KUBEIAM, "token", "-i", "c", "--profile", "admin"],
            env=env,
            input="123456\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == "Assume Role MFA token code: "
        url = decode_token(json.loads(result.stdout)["status"]["token"])
        arn = get_caller_identity(url, "c").json()["GetCallerIdentityResponse"][
            "GetCallerIdentityResult"
        ]["Arn"]
        assert f":assumed-role/{role_arn.rsplit('/', 1)[-1]}/" in arn

    def test_role_flag_with_base_profile_mfa_serial(
        self, tmp_path: Path, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """-r with a profile that has mfa_serial prompts once and assumes the role."""
        role_arn = sts_emulator.create_role(unique_name("role"))
        env = self._write_profile(
            tmp_path,
            iam_user,
            f"[profile base]\nmfa_serial = arn:aws:iam::{iam_user.account_id}:mfa/me\n",
        )
        result = subprocess.run(
            [
                KUBEIAM,
                "token",
                "-i",
                "c",
                "--profile",
                "base",
                "-r",
                role_arn,
                "--region",
                "us-east-1",
                "--sts-endpoint",
                sts_emulator.url,
            ],
            env=env,
            input="654321\n",
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        assert result.stderr == "Assume Role MFA token code: "
        assert json.loads(result.stdout)["kind"] == "ExecCredential"

    def test_mfa_without_stdin_from_kubectl_fails_cleanly(
        self, tmp_path: Path, sts_emulator: STSEmulator, iam_user: Credentials
    ) -> None:
        """When kubectl says stdin is not interactive, MFA is an error, not a hang."""
        role_arn = sts_emulator.create_role(unique_name("role"))
        env = self._write_profile(
            tmp_path,
            iam_user,
            f"[profile base]\nmfa_serial = arn:aws:iam::{iam_user.account_id}:mfa/me\n",
        )
        env["KUBERNETES_EXEC_INFO"] = _exec_info(V1, interactive=False)
        result = subprocess.run(
            [
                KUBEIAM,
                "token",
                "-i",
                "c",
                "--profile",
                "base",
                "-r",
                role_arn,
                "--region",
                "us-east-1",
                "--sts-endpoint",
                sts_emulator.url,
            ],
            env=env,
            input="",
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert result.returncode == 1
        assert result.stdout == ""
        assert "MFA code is needed but kubectl did not hand over stdin" in result.stderr
