"""STS answers: the same canned GetCallerIdentity answers to both verifiers.

The namespace sends ``sts.ap-south-1.amazonaws.com`` to a canned-answer server
(``STSNamespace.replies``, keyed by the token's access key ID), so both servers
get byte-identical answers, well-formed or not: every principal type, odd
UserIds and ARNs, XML, empty and oversized bodies, errors and throttling. Each
answer must give both the same verdict and, where both accept, the same
identity, unless the case is listed in ``docs/token-format.md`` section 8
("STS answers") with its reason; the listed cases must all be observed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from authenticator.presign import StaticCredentials, presign_get_caller_identity
from tests.differential.harness import (
    CLUSTER_ID,
    Server,
    start_go_server,
    start_kubeiam_server,
    user_of,
)
from tests.differential.runner import DOC
from tests.fixtures.stsnamespace import REPLY_HOST, REPLY_REGION, STSNamespace

ACCOUNT = "111122223333"
OTHER = "999988887777"


def _json(
    arn: str | None, user_id: str | None, account: str = ACCOUNT, **extra: Any
) -> bytes:
    result: dict[str, Any] = {"Account": account, **extra}
    if arn is not None:
        result["Arn"] = arn
    if user_id is not None:
        result["UserId"] = user_id
    return json.dumps(
        {
            "GetCallerIdentityResponse": {
                "GetCallerIdentityResult": result,
                "ResponseMetadata": {
                    "RequestId": "c6104cbe-af31-11e0-8154-cbc7ccf896c7"
                },
            }
        }
    ).encode()


_XML = (
    b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
    b"<GetCallerIdentityResult><Arn>arn:aws:iam::111122223333:user/alice</Arn>"
    b"<UserId>AIDAEXAMPLEALICE</UserId><Account>111122223333</Account>"
    b"</GetCallerIdentityResult></GetCallerIdentityResponse>"
)
_JSON = "application/json"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"

REPLIES: dict[str, tuple[int, str, bytes]] = {
    "user": (200, _JSON, _json(USER, "AIDAEXAMPLEALICE")),
    "user-with-path": (
        200,
        _JSON,
        _json(f"arn:aws:iam::{ACCOUNT}:user/ops/alice", "AIDAEXAMPLEALICE"),
    ),
    "assumed-role": (
        200,
        _JSON,
        _json(f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/sess", "AROAEXAMPLEDEV:sess"),
    ),
    "assumed-role-userid-without-session": (
        200,
        _JSON,
        _json(f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/sess", "AROAEXAMPLEDEV"),
    ),
    "assumed-role-userid-two-colons": (
        200,
        _JSON,
        _json(f"arn:aws:sts::{ACCOUNT}:assumed-role/dev/sess", "AROAEXAMPLEDEV:a:b"),
    ),
    "federated-user": (
        200,
        _JSON,
        _json(f"arn:aws:sts::{ACCOUNT}:federated-user/bob", f"{ACCOUNT}:bob"),
    ),
    "root": (200, _JSON, _json(f"arn:aws:iam::{ACCOUNT}:root", ACCOUNT)),
    "account-differs-from-arn": (
        200,
        _JSON,
        _json(USER, "AIDAEXAMPLEALICE", account=OTHER),
    ),
    "arn-not-a-principal": (
        200,
        _JSON,
        _json(f"arn:aws:iam::{ACCOUNT}:group/devs", "AGPAX"),
    ),
    "arn-other-partition": (
        200,
        _JSON,
        _json(f"arn:aws-cn:iam::{ACCOUNT}:user/alice", "AIDAX"),
    ),
    "arn-missing": (200, _JSON, _json(None, "AIDAEXAMPLEALICE")),
    "userid-missing": (200, _JSON, _json(USER, None)),
    "extra-field": (200, _JSON, _json(USER, "AIDAEXAMPLEALICE", Foo="bar")),
    "xml-answer": (200, "text/xml", _XML),
    "empty-200": (200, _JSON, b""),
    "truncated-json": (200, _JSON, _json(USER, "AIDAEXAMPLEALICE")[:40]),
    "oversized-200": (200, _JSON, _json(USER, "AIDAEXAMPLEALICE", Pad="x" * 100_000)),
    "signature-does-not-match": (
        403,
        _JSON,
        b'{"Error":{"Code":"SignatureDoesNotMatch","Message":"no","Type":"Sender"}}',
    ),
    "throttling": (
        400,
        _JSON,
        b'{"Error":{"Code":"Throttling","Message":"Rate exceeded","Type":"Sender"}}',
    ),
    "internal-error": (500, _JSON, b'{"Error":{"Code":"InternalFailure"}}'),
    "redirect": (302, _JSON, b""),
}


def _key(index: int) -> str:
    return f"AKIAREPLY{index:08d}"


def _token(index: int) -> str:
    return presign_get_caller_identity(
        credentials=StaticCredentials(_key(index), "not-checked-by-the-canned-server"),
        region=REPLY_REGION,
        cluster_id=CLUSTER_ID,
        now=datetime.now(UTC),
        endpoint_url=f"https://{REPLY_HOST}",
    ).token


def listed_answers() -> dict[str, str]:
    """``docs/token-format.md`` section 8, "STS answers": case -> why."""
    text = DOC.read_text()
    start = text.index("### STS answers")
    end = text.find("\n## ", start)
    section = text[start : end if end >= 0 else len(text)]
    return {
        m[1]: m[3].strip()
        for m in re.finditer(r"^\| `([a-z0-9-]+)` \| (.+?) \| (.+?) \|$", section, re.M)
    }


@pytest.fixture(scope="module")
def reply_servers(
    sts_namespace: STSNamespace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Server, Server]]:
    for i, name in enumerate(REPLIES):
        sts_namespace.replies[_key(i)] = REPLIES[name]
    mapping = {"mapAccounts": [ACCOUNT, OTHER]}
    go = start_go_server(
        sts_namespace, Path(tmp_path_factory.mktemp("go-replies")), mapping
    )
    try:
        ours = start_kubeiam_server(
            sts_namespace, Path(tmp_path_factory.mktemp("kubeiam-replies")), mapping
        )
    except BaseException:
        go.stop()
        raise
    yield go, ours
    go.stop()
    ours.stop()


def test_same_verdict_and_identity_for_every_answer(
    reply_servers: tuple[Server, Server],
) -> None:
    go, ours = reply_servers
    listed = listed_answers()
    observed: dict[str, str] = {}
    for i, name in enumerate(REPLIES):
        token = _token(i)
        g, k = user_of(go.review(token)), user_of(ours.review(token))
        if g is None and k is None:
            continue
        if g is not None and k is not None:
            same = all(
                g.get(f) == k.get(f) for f in ("username", "uid", "extra")
            ) and sorted(g.get("groups") or []) == sorted(k.get("groups") or [])
            if same:
                continue
            observed[name] = f"identities differ: Go {g} kubeiam {k}"
        else:
            observed[name] = (
                f"Go accepts: {g is not None}, kubeiam accepts: {k is not None}"
            )
    print("\n".join(f"{n}: {d}" for n, d in observed.items()))
    unlisted = {n: d for n, d in observed.items() if n not in listed}
    assert not unlisted, unlisted
    assert set(listed) == set(observed), set(listed) ^ set(observed)
