"""Coverage-guided fuzzing (atheris) of the token path and TokenReview parsing.

For long local runs; not part of the test suite (the hypothesis fuzzers in
``tests/fuzz`` are) and not loaded by ``python -m bench`` (which runs only
``bench_*.py``). See docs/fuzzing.md.

Run::

    make fuzz-atheris                                    # installs atheris, 300 s
    .venv/bin/python bench/fuzz_atheris.py -max_total_time=3600 corpus/
    .venv/bin/python bench/fuzz_atheris.py -runs=20000   # a quick smoke run

Every input picks one target with its first byte:

0. ``decode_token`` on the input as text;
1. ``verify_token`` on the input as a token;
2. ``verify_token`` on ``k8s-aws-v1.`` + base64url(input): the URL is fuzzed;
3. ``verify_token`` on a real presigned URL edited by the input (parameters
   duplicated, renamed, re-valued, dropped; host, scheme, path replaced);
4. ``parse_review`` on the input as a request body.

A crash is any exception other than the documented ones
(``MalformedTokenError``, ``InvalidReviewError``), or a token ``verify_token``
accepts whose URL breaks a rule (a parameter twice ignoring case, an unknown
parameter, another host, path or scheme). libFuzzer writes the input to
``crash-<sha1>``; replay it with ``bench/fuzz_atheris.py crash-<sha1>``.
"""

from __future__ import annotations

import base64
import sys
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import atheris  # type: ignore[import-untyped,import-not-found,unused-ignore]  # no types; installed only by make fuzz-atheris

# Only kubeiam's own modules get coverage instrumentation (botocore and Flask
# would take minutes to instrument and add nothing).
with atheris.instrument_imports(include=["authenticator", "webhook"]):
    from authenticator.errors import MalformedTokenError
    from authenticator.hosts import build_allowed_hosts
    from authenticator.presign import StaticCredentials, presign_get_caller_identity
    from authenticator.token import decode_token, encode_token
    from authenticator.verify import ALLOWED_PARAMETERS, verify_token
    from authenticator.wire import TOKEN_PREFIX
    from webhook.errors import InvalidReviewError
    from webhook.tokenreview import parse_review

NOW = datetime(2026, 11, 27, 8, 0, 0, tzinfo=UTC)
CLUSTER = "fuzz-cluster"
REGION = "us-west-2"
# A loopback extra endpoint (nothing is ever sent: only the offline checks run).
EXTRA_ENDPOINT = "http://127.0.0.1:9"
ALLOWED = build_allowed_hosts("aws", [EXTRA_ENDPOINT], region=REGION)
# Hosts a token signed for REGION may name, and the extra endpoint.
GOOD_NETLOCS = frozenset(
    [
        f"{p}.{REGION}.{d}"
        for p in ("sts", "sts-fips")
        for d in ("amazonaws.com", "api.aws")
    ]
    + ["127.0.0.1:9"]
)
HOSTS = [
    "sts.us-west-2.amazonaws.com",
    "STS.us-west-2.amazonaws.com",
    "sts.amazonaws.com",
    "sts.us-west-2.amazonaws.com.evil.example",
    "sts.us-west-2.amazonaws.com:443",
    "user@sts.us-west-2.amazonaws.com",
    "127.0.0.1:9",
    "127.0.0.1:10",
    "[::1]:9",
]


def _seed_url(endpoint: str | None) -> str:
    creds = StaticCredentials("AKIAFUZZFUZZFUZZFUZZ", "secret", "session/token+=")
    return presign_get_caller_identity(
        credentials=creds,
        region=REGION,
        cluster_id=CLUSTER,
        now=NOW - timedelta(minutes=1),
        endpoint_url=endpoint,
    ).url


SEEDS = [_seed_url(None), _seed_url(EXTRA_ENDPOINT)]


def _check_accepted(url: str) -> None:
    """An accepted URL must satisfy every rule; raise (a crash) otherwise."""
    parts = urlsplit(url)
    names = [p.partition("=")[0].lower() for p in parts.query.split("&")]
    if len(names) != len(set(names)):
        raise AssertionError(f"accepted a duplicated parameter: {url}")
    if not set(names) <= set(ALLOWED_PARAMETERS):
        raise AssertionError(f"accepted an unknown parameter: {url}")
    if parts.netloc not in GOOD_NETLOCS or parts.path != "/" or "#" in url:
        raise AssertionError(f"accepted a foreign location: {url}")
    if parts.scheme.lower() != ("http" if parts.netloc == "127.0.0.1:9" else "https"):
        raise AssertionError(f"accepted scheme {parts.scheme}: {url}")


def _verify(token: str) -> None:
    try:
        call = verify_token(token, cluster_id=CLUSTER, now=NOW, allowed_hosts=ALLOWED)
    except MalformedTokenError:
        return
    _check_accepted(decode_token(token))
    if not call.url.endswith(urlsplit(decode_token(token)).query):
        raise AssertionError("the STS call does not carry the token's query")


def _edited_url(fdp: atheris.FuzzedDataProvider) -> str:
    url = SEEDS[fdp.ConsumeIntInRange(0, len(SEEDS) - 1)]
    head, _, query = url.partition("?")
    scheme, _, rest = head.partition("://")
    netloc = rest.rstrip("/")
    path = "/"
    pairs = [p.partition("=")[::2] for p in query.split("&")]
    for _ in range(fdp.ConsumeIntInRange(1, 4)):
        op = fdp.ConsumeIntInRange(0, 7)
        i = fdp.ConsumeIntInRange(0, max(0, len(pairs) - 1))
        if op == 0 and pairs:  # duplicate, maybe in another case
            name, value = pairs[i]
            if fdp.ConsumeBool():
                name = name.swapcase()
            pairs.insert(fdp.ConsumeIntInRange(0, len(pairs)), (name, value))
        elif op == 1 and pairs:  # new value
            pairs[i] = (pairs[i][0], fdp.ConsumeUnicodeNoSurrogates(24))
        elif op == 2:  # new name
            pairs.append(
                (fdp.ConsumeUnicodeNoSurrogates(12), fdp.ConsumeUnicodeNoSurrogates(8))
            )
        elif op == 3 and pairs:
            pairs.pop(i)
        elif op == 4:
            netloc = (
                fdp.PickValueInList(HOSTS)
                if fdp.ConsumeBool()
                else fdp.ConsumeUnicodeNoSurrogates(30)
            )
        elif op == 5:
            scheme = fdp.PickValueInList(["https", "http", "HTTPS", "ftp", ""])
        elif op == 6:
            path = fdp.PickValueInList(["", "//", "/a", "/%2F", "/."])
        elif pairs:  # rename (case or text)
            pairs[i] = (fdp.ConsumeUnicodeNoSurrogates(12), pairs[i][1])
    joined = "&".join(f"{n}={v}" for n, v in pairs)
    return f"{scheme}://{netloc}{path}?{joined}"


def test_one_input(data: bytes) -> None:
    """libFuzzer's entry point: run one input through the target it selects."""
    if not data:
        return
    target, rest = data[0] % 5, data[1:]
    fdp = atheris.FuzzedDataProvider(rest)
    if target == 0:
        try:
            decode_token(fdp.ConsumeUnicode(len(rest)))
        except MalformedTokenError:
            return
    elif target == 1:
        _verify(fdp.ConsumeUnicode(len(rest)))
    elif target == 2:
        _verify(TOKEN_PREFIX + base64.urlsafe_b64encode(rest).decode().rstrip("="))
    elif target == 3:
        _verify(encode_token(_edited_url(fdp)))
    else:
        try:
            parse_review(rest)
        except InvalidReviewError:
            return


def main(argv: list[str]) -> None:
    """Run libFuzzer with ``argv`` (its flags and corpus directories)."""
    atheris.Setup(argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
