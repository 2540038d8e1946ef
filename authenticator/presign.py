"""Presigning GetCallerIdentity with botocore, and finding the credentials to sign with.

This module is botocore's door on the client side (docs/development.md): it
is imported only after a token-cache miss, never on a cache hit.

The signing core (:func:`presign_get_caller_identity`) is pure: credentials,
region, cluster ID and the signing time come in as arguments. It uses
botocore's own ``RequestSigner`` with a ``before-sign`` hook that adds the
``x-k8s-aws-id`` header, exactly as ``aws eks get-token`` does, so the URL is
byte for byte the one aws-cli would sign at the same second. The loaders
(:func:`load_credentials`, :func:`call_assume_role`) do the I/O.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import botocore.auth
import botocore.awsrequest
import botocore.credentials
import botocore.hooks
import botocore.model
import botocore.signers

from authenticator.errors import ConfigError, STSRejectedError, STSUnavailableError
from authenticator.exec_credential import build_expiration
from authenticator.partitions import REGION_RE, signing_region_for_host, sts_host
from authenticator.token import encode_token
from authenticator.wire import (
    CLUSTER_ID_HEADER,
    PRESIGN_EXPIRES_S,
    STS_ACTION,
    STS_API_VERSION,
)

# The signed operation (docs/token-format.md).
_OPERATION_PARAMS = {"Action": STS_ACTION, "Version": STS_API_VERSION}
# SigV4 query signing ("v4" + botocore's "-query" suffix for presign-url).
_SIGNATURE_VERSION = "v4-query"
# botocore's SigV4 timestamp format (botocore.auth.SIGV4_TIMESTAMP).
_SIGV4_TIMESTAMP = "%Y%m%dT%H%M%SZ"
# Default RoleSessionName for -r; aws-cli uses the constant "EKSGetTokenAuth", the
# Go SDK "aws-go-sdk-<nanos>". Ours names the tool and the second, for CloudTrail.
SESSION_NAME_PREFIX = "kubeiam-"
# The MFA prompt of the reference client (docs/token-format.md).
MFA_PROMPT = "Assume Role MFA token code: "
# User-agent suffix, as the reference appends aws-iam-authenticator/<version>.
_USER_AGENT_EXTRA = "kubeiam"


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    """A frozen set of AWS credentials.

    Attributes:
        access_key_id: The access key ID (``AKIA...`` or ``ASIA...``).
        secret_access_key: The secret key (never printed: ``repr`` hides it).
        session_token: The session token of temporary credentials.
        expiration: When temporary credentials expire (aware), else None.
    """

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)
    expiration: datetime | None = None


@dataclass(frozen=True, slots=True)
class PresignedToken:
    """A minted token.

    Attributes:
        url: The presigned GetCallerIdentity URL (a bearer secret).
        token: ``k8s-aws-v1.`` + base64url of ``url``.
        signed_at: The SigV4 signing time (``X-Amz-Date``), aware UTC.
        expires_at: The advertised expiry: signing time + 14 min, bounded by the
            credentials' expiry.
    """

    url: str = field(repr=False)
    token: str = field(repr=False)
    signed_at: datetime
    expires_at: datetime


def default_endpoint_url(
    region: str, *, fips: bool = False, dualstack: bool = False
) -> str:
    """Return the regional STS endpoint a token is signed for by default.

    Args:
        region: The signing region.
        fips: ``AWS_USE_FIPS_ENDPOINT``.
        dualstack: ``AWS_USE_DUALSTACK_ENDPOINT``.

    Raises:
        ConfigError: Bad region, or no dual-stack domain in its partition.
    """
    return "https://" + sts_host(region, fips=fips, dualstack=dualstack)


def signing_region_for(endpoint_url: str, region: str) -> str:
    """Return the credential-scope region for a token aimed at ``endpoint_url``.

    STS checks that the scope matches the host it received the request on: the
    global host is ``us-east-1``, a regional AWS host its own region
    (docs/token-format.md). Any other host (emulator, VPC endpoint) is signed
    for the configured region.

    Args:
        endpoint_url: ``scheme://host[:port]``.
        region: The configured region.
    """
    host = (urlsplit(endpoint_url).hostname or "").lower()
    return signing_region_for_host(host) or region


class _FixedClockQueryAuth(botocore.auth.SigV4QueryAuth):  # type: ignore[misc]  # botocore is untyped
    """botocore's SigV4 query signer with the signing time as an argument."""

    def __init__(self, *, timestamp: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._timestamp = timestamp

    def _modify_request_before_signing(
        self, request: botocore.awsrequest.AWSRequest
    ) -> None:
        # SigV4Auth.add_auth stamps context["timestamp"] from the wall clock just
        # before this call, and everything after it (scope, X-Amz-Date, string to
        # sign, key derivation) reads it from there. Time is an argument here.
        request.context["timestamp"] = self._timestamp
        super()._modify_request_before_signing(request)


class _RequestSigner(botocore.signers.RequestSigner):  # type: ignore[misc]  # botocore is untyped
    """botocore's RequestSigner whose query signer uses a given signing time."""

    def __init__(self, *, timestamp: str, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self._kubeiam_timestamp = timestamp

    def get_auth_instance(
        self,
        signing_name: str,
        region_name: str,
        signature_version: str | None = None,
        request_credentials: object = None,
        **kwargs: object,
    ) -> _FixedClockQueryAuth:
        if signature_version != _SIGNATURE_VERSION:
            raise ConfigError(f"unexpected signature version {signature_version!r}")
        return _FixedClockQueryAuth(
            timestamp=self._kubeiam_timestamp,
            credentials=self._credentials.get_frozen_credentials(),
            service_name=signing_name,
            region_name=region_name,
            expires=kwargs["expires"],
        )


def _add_cluster_id_header(
    request: botocore.awsrequest.AWSRequest, **_: object
) -> None:
    # aws-cli's before-sign hook: the cluster ID is a signed header, not a parameter.
    request.headers[CLUSTER_ID_HEADER] = request.context[CLUSTER_ID_HEADER]


def presign_get_caller_identity(
    *,
    credentials: StaticCredentials,
    region: str,
    cluster_id: str,
    now: datetime,
    endpoint_url: str | None = None,
) -> PresignedToken:
    """Presign ``GET /?Action=GetCallerIdentity`` and return the token.

    Signed headers are exactly :data:`~authenticator.wire.SIGNED_HEADERS`;
    ``X-Amz-Expires`` is :data:`~authenticator.wire.PRESIGN_EXPIRES_S`.

    Args:
        credentials: The credentials to sign with.
        region: The configured region (the host's own region wins for AWS hosts).
        cluster_id: The value of ``x-k8s-aws-id``.
        now: The signing time (aware); truncated to the second.
        endpoint_url: ``scheme://host[:port]``; default the regional STS host.

    Returns:
        The URL, the token and the signing/expiry times.

    Raises:
        ConfigError: Bad region, or an empty or unprintable cluster ID.
    """
    if not cluster_id:
        raise ConfigError("cluster ID is empty")
    if not cluster_id.isprintable() or cluster_id != cluster_id.strip():
        # It travels as an HTTP header value: no control characters, no padding.
        raise ConfigError(
            f"cluster ID {cluster_id!r} has control or surrounding space characters"
        )
    if not REGION_RE.match(region):
        raise ConfigError(f"invalid region {region!r}")
    endpoint = endpoint_url or default_endpoint_url(region)
    signing_region = signing_region_for(endpoint, region)
    signed_at = now.astimezone(UTC).replace(microsecond=0)
    emitter = botocore.hooks.HierarchicalEmitter()
    emitter.register(f"before-sign.sts.{STS_ACTION}", _add_cluster_id_header)
    signer = _RequestSigner(
        timestamp=signed_at.strftime(_SIGV4_TIMESTAMP),
        service_id=botocore.model.ServiceId("STS"),
        region_name=signing_region,
        signing_name="sts",
        signature_version="v4",
        credentials=botocore.credentials.Credentials(
            credentials.access_key_id,
            credentials.secret_access_key,
            credentials.session_token,
        ),
        event_emitter=emitter,
    )
    # The request dict botocore's query serializer makes for GetCallerIdentity,
    # turned into a GET as generate_presigned_url(HttpMethod="GET") does.
    request_dict: dict[str, object] = {
        "url_path": "/",
        "query_string": "",
        "method": "GET",
        "headers": {},
        "body": dict(_OPERATION_PARAMS),
    }
    botocore.awsrequest.prepare_request_dict(
        request_dict,
        endpoint_url=endpoint.rstrip("/"),
        context={CLUSTER_ID_HEADER: cluster_id},
    )
    url: str = signer.generate_presigned_url(
        request_dict,
        STS_ACTION,
        expires_in=PRESIGN_EXPIRES_S,
        region_name=signing_region,
    )
    return PresignedToken(
        url=url,
        token=encode_token(url),
        signed_at=signed_at,
        expires_at=build_expiration(signed_at, credentials.expiration),
    )


def _botocore_session(profile: str | None) -> Any:  # botocore is untyped
    import botocore.session

    # An explicit profile disables the environment-variable credentials, as in
    # every AWS SDK; AWS_PROFILE alone does not.
    session = botocore.session.Session(profile=profile)
    session.user_agent_extra = _USER_AGENT_EXTRA
    return session


def load_credentials(
    *,
    profile: str | None,
    prompt: Callable[[str], str],
) -> tuple[StaticCredentials, Mapping[str, object]]:
    """Resolve base credentials through botocore's default chain.

    Args:
        profile: ``--profile`` (None: ``AWS_PROFILE`` or the default chain).
        prompt: Reads an MFA code; called with :data:`MFA_PROMPT`.

    Returns:
        The frozen credentials and the profile's settings (for ``mfa_serial``).

    Raises:
        ConfigError: No credentials, unknown profile, or a broken config file.
        STSRejectedError: A profile's own role assumption was refused.
    """
    import botocore.exceptions

    try:
        if profile is None:
            # The default chain starts with the environment variables; when they
            # are set, resolving them directly skips building a botocore Session
            # (~100 ms on every cache miss) and gives the same credentials.
            env_creds = botocore.credentials.EnvProvider().load()
            if env_creds is not None:
                return _freeze(env_creds, env_creds.get_frozen_credentials()), {}
        session = _botocore_session(profile)
        resolver = session.get_component("credential_provider")
        assume = resolver.get_provider("assume-role")
        # botocore asks for MFA codes through getpass on the TTY; the exec-plugin
        # contract wants the reference's prompt on stderr and the code on stdin.
        assume._prompter = lambda _text: prompt(MFA_PROMPT)
        creds = session.get_credentials()
        if creds is None:
            raise ConfigError(
                "no AWS credentials found (set AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY, AWS_PROFILE or --profile)"
            )
        frozen = creds.get_frozen_credentials()
        scoped: Mapping[str, object] = session.get_scoped_config()
    except botocore.exceptions.ClientError as exc:
        raise STSRejectedError(
            "assume_role_denied", f"profile role assumption failed: {exc}"
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise ConfigError(f"AWS credentials: {exc}") from exc
    except RuntimeError as exc:
        # botocore's refresh of credentials that are already expired.
        raise ConfigError(f"AWS credentials are expired: {exc}") from exc
    return _freeze(creds, frozen), scoped


def _freeze(creds: Any, frozen: Any) -> StaticCredentials:  # botocore is untyped
    # botocore keeps a RefreshableCredentials' expiry private; it is the bound on
    # how long a URL signed with it works (docs/token-format.md).
    expiry = getattr(creds, "_expiry_time", None)
    return StaticCredentials(
        access_key_id=frozen.access_key,
        secret_access_key=frozen.secret_key,
        session_token=frozen.token,
        expiration=expiry.astimezone(UTC) if isinstance(expiry, datetime) else None,
    )


def _sts_client(
    base: StaticCredentials, *, region: str, endpoint_url: str | None
) -> Any:  # botocore is untyped
    """A botocore STS client signing with ``base`` (two attempts per call)."""
    import botocore.config

    return _botocore_session(None).create_client(
        "sts",
        region_name=region,
        endpoint_url=endpoint_url,
        aws_access_key_id=base.access_key_id,
        aws_secret_access_key=base.secret_access_key,
        aws_session_token=base.session_token,
        config=botocore.config.Config(retries={"max_attempts": 2}),
    )


def call_assume_role(
    *,
    base: StaticCredentials,
    role_arn: str,
    region: str,
    now: datetime,
    endpoint_url: str | None = None,
    external_id: str | None = None,
    session_name: str | None = None,
    mfa_serial: str | None = None,
    prompt: Callable[[str], str] | None = None,
) -> StaticCredentials:
    """Assume ``role_arn`` with ``base`` and return the role's credentials.

    Args:
        base: The credentials that call AssumeRole.
        role_arn: The role to assume (``-r``).
        region: The STS region.
        now: Used for the default session name ``kubeiam-<unix seconds>``.
        endpoint_url: STS endpoint override (default: botocore's resolution,
            which honours ``AWS_ENDPOINT_URL_STS``, FIPS and dual-stack settings).
        external_id: ``ExternalId`` (``-e``).
        session_name: ``RoleSessionName`` (``-s``).
        mfa_serial: The profile's ``mfa_serial``; a code is then prompted for.
        prompt: Reads the MFA code.

    Returns:
        The temporary credentials, with their expiry.

    Raises:
        STSRejectedError: STS refused the AssumeRole call.
        STSUnavailableError: STS could not be reached.
    """
    import botocore.exceptions

    params: dict[str, object] = {
        "RoleArn": role_arn,
        "RoleSessionName": session_name
        or f"{SESSION_NAME_PREFIX}{int(now.timestamp())}",
    }
    if external_id:
        params["ExternalId"] = external_id
    if mfa_serial:
        if prompt is None:
            raise ConfigError("an MFA code is needed but no prompt is available")
        params["SerialNumber"] = mfa_serial
        params["TokenCode"] = prompt(MFA_PROMPT).strip()
    try:
        client = _sts_client(base, region=region, endpoint_url=endpoint_url)
        answer = client.assume_role(**params)
    except botocore.exceptions.ParamValidationError as exc:
        raise ConfigError(f"AssumeRole {role_arn}: {exc}") from exc
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise STSRejectedError(
            "assume_role_denied", f"AssumeRole {role_arn} refused by STS ({code})"
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise STSUnavailableError(
            "sts_unavailable", f"AssumeRole {role_arn}: {exc}"
        ) from exc
    creds = answer["Credentials"]
    expiration = creds.get("Expiration")
    return StaticCredentials(
        access_key_id=creds["AccessKeyId"],
        secret_access_key=creds["SecretAccessKey"],
        session_token=creds.get("SessionToken"),
        expiration=expiration.astimezone(UTC)
        if isinstance(expiration, datetime)
        else None,
    )


def caller_session_name(
    base: StaticCredentials, *, region: str, endpoint_url: str | None = None
) -> str | None:
    """The session name of the caller, for ``--forward-session-name``.

    As the reference does: GetCallerIdentity with ``base``; when the
    ``UserId`` holds exactly one ``:`` (``AROA...:session``), the part after it.

    Args:
        base: The caller's credentials.
        region: The STS region.
        endpoint_url: STS endpoint override.

    Returns:
        The session name, or None when the caller is not a role session.

    Raises:
        STSRejectedError: STS refused the call.
        STSUnavailableError: STS could not be reached.
    """
    import botocore.exceptions

    try:
        client = _sts_client(base, region=region, endpoint_url=endpoint_url)
        answer = client.get_caller_identity()
    except botocore.exceptions.ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "error")
        raise STSRejectedError(
            "caller_identity_denied",
            f"GetCallerIdentity (for --forward-session-name) refused by STS ({code})",
        ) from exc
    except botocore.exceptions.BotoCoreError as exc:
        raise STSUnavailableError(
            "sts_unavailable", f"GetCallerIdentity (for --forward-session-name): {exc}"
        ) from exc
    parts = str(answer.get("UserId", "")).split(":")
    return parts[1] if len(parts) == 2 and parts[1] else None
