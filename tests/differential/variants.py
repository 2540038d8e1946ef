"""Generated token variants for the verifier differential.

A variant is a presigned GetCallerIdentity URL built from parts (host, query
pairs, signing time and region, identity), **signed for real** with botocore's
SigV4 over exactly the pairs it carries (so STS accepts it whenever the pairs
make sense to STS), then optionally bent after signing (URL text, encodings,
base64 forms). Every variant names its category and the mutations applied, so
a disagreement can be traced back to one rule.

Categories: ``valid``, ``cve-2022-2385`` (duplicate and case-folded
parameters), ``host``, ``date``, ``expires``, ``parameter`` (names, values,
unknown and missing parameters), ``encoding`` (query and URL text),
``base64`` (token forms), ``scope`` (credential scope and algorithm).
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from botocore.auth import SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials as BotocoreCredentials

from authenticator.emulator import Credentials

PREFIX = "k8s-aws-v1."
CLUSTER_HEADER = "x-k8s-aws-id"
_DATE = "%Y%m%dT%H%M%SZ"


@dataclass(frozen=True)
class Spec:
    """The parts of one presigned URL, before signing."""

    creds: Credentials
    cluster_id: str
    now: datetime
    host: str = "sts.us-east-1.amazonaws.com"
    region: str = "us-east-1"
    offset: timedelta = timedelta(0)
    expires: str = "60"
    signed_headers: str = "host;x-k8s-aws-id"
    # (name, value) pairs replacing or adding to the standard ones (None removes).
    overrides: tuple[tuple[str, str | None], ...] = ()
    extra: tuple[tuple[str, str], ...] = ()
    # Text edits after signing: functions of (url) -> url, and of (token) -> token.
    url_edits: tuple[Callable[[str], str], ...] = ()
    token_edits: tuple[Callable[[str], str], ...] = ()
    sign_host: str | None = None


@dataclass(frozen=True)
class Variant:
    """A token and what made it."""

    token: str
    category: str
    labels: tuple[str, ...]
    url: str = field(repr=False, default="")


def _pairs(spec: Spec) -> list[tuple[str, str]]:
    signed_at = spec.now + spec.offset
    date = signed_at.strftime(_DATE)
    standard: list[tuple[str, str | None]] = [
        ("Action", "GetCallerIdentity"),
        ("Version", "2011-06-15"),
        ("X-Amz-Algorithm", "AWS4-HMAC-SHA256"),
        (
            "X-Amz-Credential",
            f"{spec.creds.access_key_id}/{date[:8]}/{spec.region}/sts/aws4_request",
        ),
        ("X-Amz-Date", date),
        ("X-Amz-Expires", spec.expires),
        ("X-Amz-SignedHeaders", spec.signed_headers),
    ]
    if spec.creds.session_token:
        standard.append(("X-Amz-Security-Token", spec.creds.session_token))
    overrides = dict(spec.overrides)
    out: list[tuple[str, str]] = []
    for name, value in standard:
        if name in overrides:
            value = overrides.pop(name)
        if value is not None:
            out.append((name, value))
    out.extend((k, v) for k, v in overrides.items() if v is not None)
    out.extend(spec.extra)
    return out


def _signature(spec: Spec, pairs: list[tuple[str, str]]) -> str:
    """SigV4 over exactly ``pairs`` (botocore), as STS recomputes it."""
    date = (spec.now + spec.offset).strftime(_DATE)
    host = spec.sign_host or spec.host
    request = AWSRequest(
        method="GET",
        url=f"https://{host}/",
        headers={CLUSTER_HEADER: spec.cluster_id},
        params=pairs,
    )
    request.context["timestamp"] = date
    auth = SigV4QueryAuth(
        BotocoreCredentials(
            spec.creds.access_key_id,
            spec.creds.secret_access_key,
            spec.creds.session_token,
        ),
        "sts",
        spec.region,
    )
    canonical = auth.canonical_request(request)
    return str(auth.signature(auth.string_to_sign(request, canonical), request))


def _quote(text: str) -> str:
    return quote(text, safe="-_.~")


def build(spec: Spec) -> tuple[str, str]:
    """Sign ``spec`` and apply its edits: ``(url, token)``."""
    pairs = _pairs(spec)
    signature = _signature(spec, pairs)
    query = "&".join(
        f"{_quote(k)}={_quote(v)}" for k, v in [*pairs, ("X-Amz-Signature", signature)]
    )
    url = f"https://{spec.host}/?{query}"
    for edit in spec.url_edits:
        url = edit(url)
    token = PREFIX + base64.urlsafe_b64encode(url.encode()).decode().rstrip("=")
    for tedit in spec.token_edits:
        token = tedit(token)
    return url, token


# --- mutations: name -> (category, Spec -> Spec) ------------------------------------

Mutation = Callable[[Spec], Spec]


def _over(**kv: str | None) -> Mutation:
    def apply(spec: Spec) -> Spec:
        pairs = tuple((k.replace("_", "-"), v) for k, v in kv.items())
        return replace(spec, overrides=spec.overrides + pairs)

    return apply


def _set(name: str, value: str | None) -> Mutation:
    return lambda spec: replace(spec, overrides=(*spec.overrides, (name, value)))


def _extra(name: str, value: str) -> Mutation:
    return lambda spec: replace(spec, extra=(*spec.extra, (name, value)))


def _url(fn: Callable[[str], str]) -> Mutation:
    return lambda spec: replace(spec, url_edits=(*spec.url_edits, fn))


def _tok(fn: Callable[[str], str]) -> Mutation:
    return lambda spec: replace(spec, token_edits=(*spec.token_edits, fn))


def _host(host: str, region: str) -> Mutation:
    return lambda spec: replace(spec, host=host, region=region)


def _offset(minutes: float) -> Mutation:
    return lambda spec: replace(spec, offset=timedelta(minutes=minutes))


def _lower_names(spec: Spec) -> Spec:
    pairs = _pairs(spec)
    names = {k for k, _ in pairs}
    return replace(
        spec,
        overrides=tuple((k, None) for k in names)
        + tuple((k.lower(), v) for k, v in pairs),
    )


def _reb64(std: bool = False, pad: bool = False) -> Callable[[str], str]:
    def edit(token: str) -> str:
        body = token[len(PREFIX) :]
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except ValueError:  # an earlier edit broke it already: leave it broken
            return token
        enc = base64.b64encode(raw) if std else base64.urlsafe_b64encode(raw)
        text = enc.decode()
        return PREFIX + (text if pad else text.rstrip("="))

    return edit


def _replace_once(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new, 1)


def _lower_escapes(url: str) -> str:
    out = []
    i = 0
    while i < len(url):
        if url[i] == "%" and i + 2 < len(url):
            out.append(url[i : i + 3].lower())
            i += 3
        else:
            out.append(url[i])
            i += 1
    return "".join(out)


MUTATIONS: dict[str, tuple[str, Mutation]] = {
    # CVE-2022-2385: a second, case-folded copy of a parameter.
    "dup-action-lower": ("cve-2022-2385", _extra("action", "GetCallerIdentity")),
    "dup-action-assume": ("cve-2022-2385", _extra("ACTION", "AssumeRole")),
    "dup-signedheaders-lower": ("cve-2022-2385", _extra("x-amz-signedheaders", "host")),
    "dup-date-lower": ("cve-2022-2385", _extra("x-amz-date", "20200101T000000Z")),
    "dup-action-exact": ("cve-2022-2385", _extra("Action", "GetCallerIdentity")),
    "dup-expires-mixed": ("cve-2022-2385", _extra("X-AMZ-EXPIRES", "60")),
    "names-lowercase": ("cve-2022-2385", _lower_names),
    # hosts (signed for that host and its region)
    "host-global": ("host", _host("sts.amazonaws.com", "us-east-1")),
    "host-us-west-2": ("host", _host("sts.us-west-2.amazonaws.com", "us-west-2")),
    "host-eu-west-1": ("host", _host("sts.eu-west-1.amazonaws.com", "eu-west-1")),
    "host-fips": ("host", _host("sts-fips.us-east-1.amazonaws.com", "us-east-1")),
    "host-dualstack": ("host", _host("sts.us-east-1.api.aws", "us-east-1")),
    "host-evil": (
        "host",
        _host("sts.us-east-1.amazonaws.com.evil.example", "us-east-1"),
    ),
    "host-ip": ("host", _host("127.0.0.1", "us-east-1")),
    "host-upper": ("host", _url(_replace_once("sts.", "STS."))),
    "host-trailing-dot": (
        "host",
        _url(_replace_once("amazonaws.com/", "amazonaws.com./")),
    ),
    "host-port-443": (
        "host",
        _url(_replace_once("amazonaws.com/", "amazonaws.com:443/")),
    ),
    "host-userinfo": ("host", _url(_replace_once("https://", "https://user@"))),
    "host-region-mismatch": (
        "host",
        lambda s: replace(s, host="sts.us-west-2.amazonaws.com", region="us-east-1"),
    ),
    "scheme-upper": ("host", _url(_replace_once("https://", "HTTPS://"))),
    "scheme-http": ("host", _url(_replace_once("https://", "http://"))),
    "path-double": ("host", _url(_replace_once("/?", "//?"))),
    "path-empty": ("host", _url(_replace_once("/?", "?"))),
    "path-other": ("host", _url(_replace_once("/?", "/x?"))),
    "fragment": ("host", _url(lambda u: u + "#frag")),
    # dates (re-signed at that time)
    "date-now-14m": ("date", _offset(-14)),
    "date-now-16m": ("date", _offset(-16)),
    "date-now-60m": ("date", _offset(-60)),
    "date-future-3m": ("date", _offset(3)),
    "date-future-10m": ("date", _offset(10)),
    "date-future-20m": ("date", _offset(20)),
    "date-iso-form": ("date", _url(lambda u: u)),  # replaced below
    "date-missing": ("date", _set("X-Amz-Date", None)),
    "date-empty": ("date", _set("X-Amz-Date", "")),
    # expiries (signed)
    "expires-0": ("expires", lambda s: replace(s, expires="0")),
    "expires-900": ("expires", lambda s: replace(s, expires="900")),
    "expires-901": ("expires", lambda s: replace(s, expires="901")),
    "expires-neg": ("expires", lambda s: replace(s, expires="-1")),
    "expires-plus": ("expires", lambda s: replace(s, expires="+60")),
    "expires-leading-zero": ("expires", lambda s: replace(s, expires="060")),
    "expires-text": ("expires", lambda s: replace(s, expires="sixty")),
    "expires-huge": ("expires", lambda s: replace(s, expires="99999999999")),
    "expires-missing": ("expires", _set("X-Amz-Expires", None)),
    # parameters
    "action-lower": ("parameter", _set("Action", "getcalleridentity")),
    "action-assume": ("parameter", _set("Action", "AssumeRole")),
    "action-missing": ("parameter", _set("Action", None)),
    "version-other": ("parameter", _set("Version", "2011-06-16")),
    "version-missing": ("parameter", _set("Version", None)),
    "unknown-param": ("parameter", _extra("Foo", "bar")),
    "unknown-param-amz": ("parameter", _extra("X-Amz-Foo", "bar")),
    "signedheaders-host-only": (
        "parameter",
        lambda s: replace(s, signed_headers="host"),
    ),
    "signedheaders-upper": (
        "parameter",
        lambda s: replace(s, signed_headers="host;X-K8S-AWS-ID"),
    ),
    "signedheaders-reordered": (
        "parameter",
        lambda s: replace(s, signed_headers="x-k8s-aws-id;host"),
    ),
    "signedheaders-missing": ("parameter", _set("X-Amz-SignedHeaders", None)),
    "security-token-empty": ("parameter", _set("X-Amz-Security-Token", "")),
    "signature-upper": ("parameter", _url(lambda u: u[:-64] + u[-64:].upper())),
    "signature-short": ("parameter", _url(lambda u: u[:-2])),
    "signature-zero": ("parameter", _url(lambda u: u[:-64] + "0" * 64)),
    # credential scope and algorithm
    "scope-region-other": (
        "scope",
        _url(_replace_once("%2Fus-east-1%2F", "%2Fus-west-2%2F")),
    ),
    "scope-service-other": ("scope", _url(_replace_once("%2Fsts%2F", "%2Fiam%2F"))),
    "scope-date-other": ("scope", _url(_replace_once("%2F20", "%2F19"))),
    "scope-missing": ("scope", _set("X-Amz-Credential", None)),
    "algorithm-other": ("scope", _set("X-Amz-Algorithm", "AWS4-HMAC-SHA512")),
    "algorithm-missing": ("scope", _set("X-Amz-Algorithm", None)),
    # query and URL encodings
    "escapes-lowercase": ("encoding", _url(_lower_escapes)),
    "escape-name": ("encoding", _url(_replace_once("X-Amz-Date=", "X-Amz-%44ate="))),
    "semicolon": ("encoding", _url(_replace_once("&Version=", ";Version="))),
    "empty-pair": ("encoding", _url(_replace_once("&Version=", "&&Version="))),
    "bad-escape": (
        "encoding",
        _url(lambda u: u.replace("&Version=", "&Version=%zz", 1)),
    ),
    "plus-for-space": ("encoding", _url(_replace_once("%2F", "+"))),
    "slash-unescaped": ("encoding", _url(_replace_once("%2F", "/"))),
    "non-ascii": (
        "encoding",
        _url(lambda u: u.replace("&Version=", "&Version=\u00e9", 1)),
    ),
    "control-char": (
        "encoding",
        _url(lambda u: u.replace("&Version=", "&Version=\t", 1)),
    ),
    "space-in-url": (
        "encoding",
        _url(lambda u: u.replace("&Version=", "& Version=", 1)),
    ),
    # token forms
    "b64-padded": ("base64", _tok(_reb64(pad=True))),
    "b64-standard": ("base64", _tok(_reb64(std=True))),
    "b64-standard-padded": ("base64", _tok(_reb64(std=True, pad=True))),
    "prefix-upper": ("base64", _tok(lambda t: "K8S-AWS-V1." + t[len(PREFIX) :])),
    "prefix-missing": ("base64", _tok(lambda t: t[len(PREFIX) :])),
    "token-newline": ("base64", _tok(lambda t: t + "\n")),
    "token-space": ("base64", _tok(lambda t: t[:40] + " " + t[40:])),
    "token-truncated": ("base64", _tok(lambda t: t[:-1])),
    "token-huge": ("base64", _tok(lambda t: t + "A" * 4100)),
}
# An ISO-8601 extended date (signed as such: a format the SigV4 date is not).
MUTATIONS["date-iso-form"] = (
    "date",
    lambda s: replace(
        s,
        overrides=(
            *s.overrides,
            ("X-Amz-Date", (s.now + s.offset).strftime("%Y-%m-%dT%H:%M:%SZ")),
        ),
    ),
)


def generate(
    identities: Sequence[Credentials],
    *,
    cluster_id: str,
    count: int,
    seed: int,
    now: datetime | None = None,
    anchors: bool = True,
) -> list[Variant]:
    """At least ``count`` variants: the anchors, then random combinations.

    The anchors (each mutation alone, and the unmodified token, for every
    identity) are always all included when ``anchors`` is set, so every rule is
    exercised whatever the count; random combinations of up to three
    mutations fill up to ``count``.
    """
    rng = random.Random(seed)
    when = (now or datetime.now(UTC)).replace(microsecond=0)
    names = sorted(MUTATIONS)
    out: list[Variant] = []

    def make(creds: Credentials, chosen: Sequence[str]) -> Variant:
        spec = Spec(creds=creds, cluster_id=cluster_id, now=when)
        for name in chosen:
            spec = MUTATIONS[name][1](spec)
        url, token = build(spec)
        category = MUTATIONS[chosen[0]][0] if chosen else "valid"
        return Variant(token=token, category=category, labels=tuple(chosen), url=url)

    if anchors:
        for creds in identities:
            out.append(make(creds, []))
            out.extend(make(creds, [name]) for name in names)
    while len(out) < count:
        creds = rng.choice(list(identities))
        k = rng.choice((0, 1, 1, 2, 2, 3))
        out.append(make(creds, rng.sample(names, k)))
    return out
