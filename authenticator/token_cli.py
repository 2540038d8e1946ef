"""``kubeiam token``: the kubectl exec plugin (docs/token-format.md).

kubectl starts this on every command, so the cache-hit path imports only the
standard library, :mod:`authenticator.cache` and
:mod:`authenticator.exec_credential`; botocore is loaded (through
:mod:`authenticator.presign`) only when a token has to be minted. Even the
standard library is rationed: the usual flags are read by
:func:`parse_common_flags` (argparse only for help, errors and odd spellings)
and a usual ``~/.aws/config`` by :func:`~authenticator._startup.read_profile_section`
(configparser only for odd files), so that a hit loads neither ``re`` nor
``argparse``. The shortcuts live in :mod:`authenticator._startup`.

Settings come from, first hit wins:

- cluster ID: ``-i`` > ``clusterID`` of the exec cluster extension;
- role: ``-r`` > ``roleARN`` of the extension;
- region: ``--region`` > extension ``region`` > ``AWS_REGION`` >
  ``AWS_DEFAULT_REGION`` > the profile's ``region`` > ``us-east-1``;
- STS endpoint: ``--sts-endpoint`` > ``AWS_ENDPOINT_URL_STS`` > ``AWS_ENDPOINT_URL``
  (both ignored when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true) > the regional
  host of the region's partition (FIPS / dual-stack from ``AWS_USE_FIPS_ENDPOINT`` /
  ``AWS_USE_DUALSTACK_ENDPOINT`` or the profile's ``use_fips_endpoint`` /
  ``use_dualstack_endpoint``);
- profile: ``--profile`` > ``AWS_DEFAULT_PROFILE`` > ``AWS_PROFILE`` > ``default``
  (botocore's order; the profile is where botocore finds the credentials).
"""

from __future__ import annotations

import os
import sys

from authenticator._startup import (
    UTC,
    FrozenRecord,
    datetime,
    preparse_flags,
    read_profile_section,
)
from authenticator.cache import (
    CachedToken,
    CacheKey,
    TokenCache,
    credentials_fingerprint,
    default_cache_dir,
    home_directory,
    is_fresh,
)
from authenticator.errors import ConfigError, KubeIAMError
from authenticator.exec_credential import (
    ExecInfo,
    parse_exec_info,
    render_exec_credential,
)
from authenticator.wire import EXEC_EXTENSION_NAME

# Type-only names. A cache hit imports nothing it does not run: argparse (with
# re, enum, gettext: ~14 ms), pathlib, urllib.parse, ipaddress, contextlib and
# collections.abc are loaded only on the paths that use them.
TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Mapping

# The region of last resort, as in the reference and aws-cli (docs/token-format.md).
DEFAULT_REGION = "us-east-1"
_PROG = "kubeiam token"
# Help text width (see _HelpFormatter).
_HELP_WIDTH = 88

_EPILOG = f"""\
examples:
  kubeiam token -i my-cluster
  kubeiam token -i my-cluster --region eu-west-1 --profile dev
  kubeiam token -i my-cluster -r arn:aws:iam::111122223333:role/k8s-admin -e ext-id
  kubeiam token -i my-cluster --sts-endpoint http://127.0.0.1:5000   # a local STS
  kubeiam token -i my-cluster --token-only                           # bare token
  kubeiam token --cluster-name my-cluster --role-arn ROLE_ARN   # aws eks get-token's
  kubeiam token -i my-cluster -r ROLE_ARN --forward-session-name  # your session name

Flag names of aws-iam-authenticator (-i, -r, -e, -s, --forward-session-name,
--token-only, --region) and of `aws eks get-token` (--cluster-name, --role-arn,
--region) are accepted, so swapping the command in a kubeconfig is enough
(docs/migrating.md).

kubeconfig (kubectl runs this on every command; name the script by absolute path):
  users:
  - name: me
    user:
      exec:
        apiVersion: client.authentication.k8s.io/v1
        command: /abs/path/to/kubeiam
        args: [token, -i, my-cluster]
        interactiveMode: IfAvailable

With provideClusterInfo: true, -i/-r/--region may instead come from the cluster
extension {EXEC_EXTENSION_NAME}: {{"clusterID": ..., "region": ..., "roleARN": ...}};
flags win.

Tokens are cached per (cluster ID, profile, role, region, endpoint) in
~/.kube/cache/kubeiam (or $KUBEIAM_CACHE_DIR) while at least 60 s of life remain.
The default AssumeRole session name is kubeiam-<unix seconds>.
"""


class TokenSettings(FrozenRecord):
    """Everything a token depends on, resolved from flags, exec info and environment.

    Attributes:
        cluster_id: The value signed as ``x-k8s-aws-id``.
        region: The STS region.
        endpoint_url: The endpoint override (flag or ``AWS_ENDPOINT_URL_STS``), or
            None for the region's own STS host.
        fips: Sign for the FIPS host (when no override).
        dualstack: Sign for the dual-stack host (when no override).
        profile: The profile name in effect.
        profile_flag: ``--profile`` as given (an explicit profile disables env keys).
        role_arn: The role to assume, or None.
        external_id: ``-e``.
        session_name: ``-s``.
        forward_session_name: ``--forward-session-name``: the caller's session
            name becomes the assumed role's.
        env_access_key_id: ``AWS_ACCESS_KEY_ID`` when it will be used.
        api_version: The ExecCredential version to answer in.
        interactive: Whether kubectl handed over stdin (None: not run by kubectl).
    """

    __slots__ = (
        "api_version",
        "cluster_id",
        "dualstack",
        "endpoint_url",
        "env_access_key_id",
        "external_id",
        "fips",
        "forward_session_name",
        "interactive",
        "profile",
        "profile_flag",
        "region",
        "role_arn",
        "session_name",
    )
    api_version: str
    cluster_id: str
    dualstack: bool
    endpoint_url: str | None
    env_access_key_id: str
    external_id: str | None
    fips: bool
    forward_session_name: bool
    interactive: bool | None
    profile: str
    profile_flag: str | None
    region: str
    role_arn: str | None
    session_name: str | None

    def __init__(
        self,
        *,
        cluster_id: str,
        region: str,
        endpoint_url: str | None,
        fips: bool,
        dualstack: bool,
        profile: str,
        profile_flag: str | None,
        role_arn: str | None,
        external_id: str | None,
        session_name: str | None,
        env_access_key_id: str,
        api_version: str,
        interactive: bool | None,
        forward_session_name: bool = False,
    ) -> None:
        self._set(
            cluster_id=cluster_id,
            forward_session_name=forward_session_name,
            region=region,
            endpoint_url=endpoint_url,
            fips=fips,
            dualstack=dualstack,
            profile=profile,
            profile_flag=profile_flag,
            role_arn=role_arn,
            external_id=external_id,
            session_name=session_name,
            env_access_key_id=env_access_key_id,
            api_version=api_version,
            interactive=interactive,
        )

    def _default_endpoint_name(self) -> str:
        # The regional host is a function of (region, fips, dualstack); it is
        # resolved only when minting, so that a hit need not load the partitions.
        return (
            "default"
            + ("+fips" if self.fips else "")
            + ("+dualstack" if self.dualstack else "")
        )

    def cache_key(self, env: Mapping[str, str]) -> CacheKey:
        """Return the token-cache key of these settings.

        Args:
            env: The environment (credential files and variables: see
                :func:`authenticator.cache.credentials_fingerprint`).
        """
        return CacheKey(
            cluster_id=self.cluster_id,
            profile=self.profile,
            role_arn=self.role_arn or "",
            region=self.region,
            endpoint=self.endpoint_url or self._default_endpoint_name(),
            credentials=credentials_fingerprint(env),
            session_name=self.session_name or "",
            external_id=self.external_id or "",
            forward_session_name=self.forward_session_name,
        )


class TokenFlags(FrozenRecord):
    """The command-line flags of ``kubeiam token`` (None / False when not given).

    Attributes:
        cluster_id: ``-i/--cluster-id``.
        role: ``-r/--role``.
        external_id: ``-e/--external-id``.
        session_name: ``-s/--session-name``.
        forward_session_name: ``--forward-session-name``.
        region: ``--region``.
        profile: ``--profile``.
        sts_endpoint: ``--sts-endpoint``.
        token_only: ``--token-only``.
        no_cache: ``--no-cache``.
    """

    __slots__ = (
        "cluster_id",
        "external_id",
        "forward_session_name",
        "no_cache",
        "profile",
        "region",
        "role",
        "session_name",
        "sts_endpoint",
        "token_only",
    )
    cluster_id: str | None
    external_id: str | None
    forward_session_name: bool
    no_cache: bool
    profile: str | None
    region: str | None
    role: str | None
    session_name: str | None
    sts_endpoint: str | None
    token_only: bool

    def __init__(
        self,
        *,
        cluster_id: str | None = None,
        role: str | None = None,
        external_id: str | None = None,
        session_name: str | None = None,
        region: str | None = None,
        profile: str | None = None,
        sts_endpoint: str | None = None,
        token_only: bool = False,
        no_cache: bool = False,
        forward_session_name: bool = False,
    ) -> None:
        self._set(
            cluster_id=cluster_id,
            external_id=external_id,
            forward_session_name=forward_session_name,
            no_cache=no_cache,
            profile=profile,
            region=region,
            role=role,
            session_name=session_name,
            sts_endpoint=sts_endpoint,
            token_only=token_only,
        )

    @classmethod
    def from_namespace(cls, ns: argparse.Namespace) -> TokenFlags:
        """Return the flags of an argparse result of :func:`build_parser`."""
        return cls(**{name: getattr(ns, name) for name in cls.__slots__})


# The flags parse_common_flags understands: option string -> field. Exactly the
# options of build_parser (a test holds the two together).
_VALUE_OPTIONS = {
    "-i": "cluster_id",
    "--cluster-id": "cluster_id",
    "--cluster-name": "cluster_id",  # aws eks get-token
    "-r": "role",
    "--role": "role",
    "--role-arn": "role",  # aws eks get-token
    "-e": "external_id",
    "--external-id": "external_id",
    "-s": "session_name",
    "--session-name": "session_name",
    "--region": "region",
    "--profile": "profile",
    "--sts-endpoint": "sts_endpoint",
}
_SWITCH_OPTIONS = {
    "--token-only": "token_only",
    "--no-cache": "no_cache",
    "--forward-session-name": "forward_session_name",
}


def parse_common_flags(argv: list[str]) -> TokenFlags | None:
    """Parse the usual spellings of the flags without argparse, or give up.

    See :func:`authenticator._startup.preparse_flags`: None (an unusual
    spelling, ``--help``, an error, any failure of the shortcut) means the
    caller runs argparse, whose messages and exit codes are the reference.

    Args:
        argv: Arguments after ``token``.

    Returns:
        The flags, or None when argparse must decide.
    """
    values = preparse_flags(argv, _VALUE_OPTIONS, _SWITCH_OPTIONS)
    if values is None:
        return None
    return TokenFlags(**values)  # type: ignore[arg-type]  # fields and types as above


def build_parser() -> argparse.ArgumentParser:
    """Return the full argparse parser of ``kubeiam token`` (help, errors)."""
    import argparse  # see TYPE_CHECKING above: not on the common path

    class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
        def __init__(self, prog: str) -> None:
            # A fixed width: argparse otherwise imports shutil (~5 ms) to size
            # the terminal each time the parser is built.
            super().__init__(prog, width=_HELP_WIDTH)

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]  # exits, as argparse's does
            self.print_usage(sys.stderr)
            sys.stderr.write(f"{self.prog}: error: {message}\n")
            raise SystemExit(2)

    p = _Parser(
        prog=_PROG,
        description="Mint an EKS-style token and print it as a kubectl ExecCredential.",
        epilog=_EPILOG,
        formatter_class=_HelpFormatter,
    )
    p.add_argument(
        "-i",
        "--cluster-id",
        "--cluster-name",
        help="cluster ID, signed as x-k8s-aws-id (EKS: the cluster name)",
    )
    p.add_argument(
        "-r", "--role", "--role-arn", help="ARN of a role to assume before signing"
    )
    p.add_argument("-e", "--external-id", help="ExternalId for the role assumption")
    p.add_argument(
        "-s", "--session-name", help="RoleSessionName (default kubeiam-<unix seconds>)"
    )
    p.add_argument(
        "--forward-session-name",
        action="store_true",
        help="with -r: use the caller's own session name as the RoleSessionName",
    )
    p.add_argument(
        "--region", help="STS region (default: AWS_REGION, profile, us-east-1)"
    )
    p.add_argument("--profile", help="AWS profile (default: AWS_PROFILE, default)")
    p.add_argument(
        "--sts-endpoint",
        metavar="URL",
        help="sign for this STS endpoint, scheme://host[:port]",
    )
    p.add_argument(
        "--token-only",
        action="store_true",
        help="print the bare token, not an ExecCredential",
    )
    p.add_argument(
        "--no-cache", action="store_true", help="neither read nor write the token cache"
    )
    return p


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


def _load_profile(env: Mapping[str, str], profile: str) -> Mapping[str, str]:
    """Read the profile's section of the shared config file (stdlib, no botocore)."""
    path = os.path.expanduser(
        env.get("AWS_CONFIG_FILE")
        or os.path.join(home_directory(env), ".aws", "config")
    )
    if not os.path.isfile(path):
        return {}
    try:
        with open(path, encoding="utf-8") as handle:
            fast = read_profile_section(handle.read(), profile)
    except (OSError, UnicodeDecodeError):
        fast = None
    if fast is not None:
        return fast
    import configparser  # an unusual file (configparser loads re: ~15 ms)

    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, OSError, UnicodeDecodeError):
        # botocore reports a broken config on the mint path with its own message.
        return {}
    for section in (f"profile {profile}", profile if profile == "default" else ""):
        if section and parser.has_section(section):
            return dict(parser.items(section))
    return {}


def sts_endpoint_from_env(env: Mapping[str, str]) -> tuple[str, str | None]:
    """The STS endpoint the AWS SDKs take from the environment, and its variable.

    ``AWS_ENDPOINT_URL_STS`` first, then the global ``AWS_ENDPOINT_URL``; neither
    when ``AWS_IGNORE_CONFIGURED_ENDPOINT_URLS`` is true (botocore's rules).

    Args:
        env: The environment.

    Returns:
        (variable name, URL), the URL ``None`` when none is set.
    """
    if env.get("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "").strip().lower() == "true":
        return "AWS_ENDPOINT_URL_STS", None
    for name in ("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"):
        if env.get(name):
            return name, env[name]
    return "AWS_ENDPOINT_URL_STS", None


def _parse_endpoint(url: str, source: str) -> str:
    """Validate an STS endpoint override and return ``scheme://host[:port]``."""
    # Only with an override: the one endpoint rule, shared with the server.
    from authenticator.hosts import parse_endpoint

    return parse_endpoint(url, source).url()


def resolve_settings(
    args: TokenFlags, info: ExecInfo, env: Mapping[str, str]
) -> TokenSettings:
    """Combine flags, the exec cluster extension, the environment and the profile.

    Args:
        args: Parsed flags.
        info: Parsed ``KUBERNETES_EXEC_INFO``.
        env: The environment.

    Raises:
        ConfigError: No cluster ID, or a bad region or endpoint.
    """
    ext = info.cluster
    cluster_id = args.cluster_id or (ext.cluster_id if ext else None)
    if not cluster_id:
        raise ConfigError(f"cluster ID not specified: {_missing_cluster_hint(info)}")
    if args.forward_session_name and args.session_name:
        raise ConfigError(
            "--forward-session-name and -s/--session-name exclude each other"
        )
    # botocore's order (configprovider): AWS_DEFAULT_PROFILE, then AWS_PROFILE.
    profile = (
        args.profile
        or env.get("AWS_DEFAULT_PROFILE")
        or env.get("AWS_PROFILE")
        or "default"
    )
    region = (
        args.region
        or (ext.region if ext else None)
        or env.get("AWS_REGION")
        or env.get("AWS_DEFAULT_REGION")
    )
    fips_env, dual_env = (
        env.get("AWS_USE_FIPS_ENDPOINT"),
        env.get("AWS_USE_DUALSTACK_ENDPOINT"),
    )
    endpoint_name, endpoint_env = sts_endpoint_from_env(env)
    need_profile = not region or (
        not args.sts_endpoint
        and not endpoint_env
        and (fips_env is None or dual_env is None)
    )
    prof = _load_profile(env, profile) if need_profile else {}
    region = region or prof.get("region") or DEFAULT_REGION
    endpoint: str | None = None
    if args.sts_endpoint:
        endpoint = _parse_endpoint(args.sts_endpoint, "--sts-endpoint")
    elif endpoint_env:
        endpoint = _parse_endpoint(endpoint_env, endpoint_name)
    fips = _truthy(fips_env if fips_env is not None else prof.get("use_fips_endpoint"))
    dual = _truthy(
        dual_env if dual_env is not None else prof.get("use_dualstack_endpoint")
    )
    env_key = env.get("AWS_ACCESS_KEY_ID", "") if not args.profile else ""
    return TokenSettings(
        cluster_id=cluster_id,
        region=region,
        endpoint_url=endpoint,
        fips=fips and endpoint is None,
        dualstack=dual and endpoint is None,
        profile=profile,
        profile_flag=args.profile,
        role_arn=args.role or (ext.role_arn if ext else None),
        external_id=args.external_id,
        session_name=args.session_name,
        env_access_key_id=env_key,
        api_version=info.api_version,
        interactive=info.interactive,
        forward_session_name=args.forward_session_name,
    )


def _missing_cluster_hint(info: ExecInfo) -> str:
    """Say whether kubectl passed cluster info at all, and what to do."""
    fix = "pass -i/--cluster-id in the exec args (`kubeiam kubeconfig` writes it there)"
    if info.interactive is None:
        return f"not run by kubectl (no KUBERNETES_EXEC_INFO); {fix}"
    if not info.cluster_passed:
        return (
            "kubectl passed no cluster info (provideClusterInfo is not true in the "
            f"exec stanza, or the client does not support it); {fix}"
        )
    return (
        f"kubectl passed cluster info but its {EXEC_EXTENSION_NAME} extension has "
        f"no clusterID; add clusterID there, or {fix}"
    )


class _StdinPrompt:
    """Ask on stderr, read stdin: stdout carries only the ExecCredential."""

    def __init__(self, interactive: bool | None) -> None:
        self._interactive = interactive

    def __call__(self, text: str) -> str:
        if self._interactive is False:
            raise ConfigError(
                "an MFA code is needed but kubectl did not hand over stdin "
                "(set interactiveMode: IfAvailable or Always in the exec stanza)"
            )
        sys.stderr.write(text)
        sys.stderr.flush()
        line = sys.stdin.readline()
        if not line.strip():
            raise ConfigError("no MFA token code read from stdin")
        return line.strip()


def _mint(settings: TokenSettings) -> CachedToken:
    from authenticator import presign  # botocore is loaded from here on only

    endpoint = settings.endpoint_url or presign.default_endpoint_url(
        settings.region, fips=settings.fips, dualstack=settings.dualstack
    )
    prompt = _StdinPrompt(settings.interactive)
    creds, scoped = presign.load_credentials(
        profile=settings.profile_flag, prompt=prompt
    )
    session_name = settings.session_name
    if settings.forward_session_name and settings.role_arn:
        # As the reference: the part after the one ':' of the caller's UserId.
        session_name = presign.caller_session_name(
            creds, region=settings.region, endpoint_url=endpoint
        )
    if settings.role_arn:
        # MFA for -r: the base profile's mfa_serial, unless the profile already
        # used it for its own role (botocore prompted for that one).
        mfa = scoped.get("mfa_serial") if "role_arn" not in scoped else None
        creds = presign.call_assume_role(
            base=creds,
            role_arn=settings.role_arn,
            region=settings.region,
            now=datetime.now(UTC),
            # AssumeRole goes to the override too (a local STS); otherwise botocore
            # picks the host (it honours FIPS / dual-stack settings itself).
            endpoint_url=settings.endpoint_url,
            external_id=settings.external_id,
            session_name=session_name,
            mfa_serial=mfa if isinstance(mfa, str) else None,
            prompt=prompt,
        )
    minted = presign.presign_get_caller_identity(
        credentials=creds,
        region=settings.region,
        cluster_id=settings.cluster_id,
        now=datetime.now(UTC),
        endpoint_url=endpoint,
    )
    return CachedToken(minted.token, minted.signed_at, minted.expires_at)


def _warn(message: str) -> None:
    sys.stderr.write(f"{_PROG}: warning: {message}\n")


def _get_token(
    settings: TokenSettings, *, use_cache: bool, env: Mapping[str, str]
) -> CachedToken:
    if not use_cache:
        return _mint(settings)
    cache = TokenCache(default_cache_dir(env))
    key = settings.cache_key(env)
    try:
        entry = cache.load_token(key)
    except OSError as exc:
        # A cache that is not private (or not usable) is ignored, never fatal.
        _warn(f"not using the token cache: {exc}")
        return _mint(settings)
    if entry is not None and is_fresh(entry, now=datetime.now(UTC)):
        return entry
    return _refresh(settings, cache, key)


def _refresh(settings: TokenSettings, cache: TokenCache, key: CacheKey) -> CachedToken:
    """The miss: take the key's lock, look again, mint and store."""
    import contextlib  # the miss only (botocore follows anyway)

    with contextlib.ExitStack() as stack:
        usable = True
        try:
            stack.enter_context(cache.lock(key))
            # Another kubectl process may have minted while we waited for the lock.
            entry = cache.load_token(key)
            if entry is not None and is_fresh(entry, now=datetime.now(UTC)):
                return entry
        except OSError as exc:
            # A cache that is not private (or not usable) is ignored, never fatal.
            _warn(f"not using the token cache: {exc}")
            usable = False
        entry = _mint(settings)
        if usable:
            try:
                cache.store_token(key, entry)
            except OSError as exc:
                _warn(f"could not write the token cache: {exc}")
        return entry
    raise AssertionError("unreachable: ExitStack does not swallow exceptions")


def main(argv: list[str]) -> int:
    """Run ``kubeiam token``.

    Args:
        argv: Arguments after ``token``.

    Returns:
        0 on success, 1 on error (one line on stderr), 2 on a usage error.
    """
    args = parse_common_flags(argv)
    if args is None:
        try:
            args = TokenFlags.from_namespace(build_parser().parse_args(argv))
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else 2
    env = os.environ
    info = parse_exec_info(env.get("KUBERNETES_EXEC_INFO"))
    for note in info.warnings:
        _warn(note)
    try:
        settings = resolve_settings(args, info, env)
        entry = _get_token(settings, use_cache=not args.no_cache, env=env)
    except KubeIAMError as exc:
        # One line: botocore's messages (e.g. ParamValidationError) span several.
        sys.stderr.write(f"{_PROG}: {' '.join(str(exc).split())}\n")
        return 1
    if args.token_only:
        sys.stdout.write(entry.token + "\n")
    else:
        sys.stdout.write(
            render_exec_credential(
                api_version=settings.api_version,
                token=entry.token,
                expires_at=entry.expires_at,
            )
        )
    sys.stdout.flush()
    return 0
