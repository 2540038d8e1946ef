"""Load and soak: concurrent TokenReviews while the mapping file is rewritten (issue 7).

``kubeiam server`` under gunicorn (two workers, four threads each, mTLS) with
the ``fault_sts`` stand-in as its STS. Eight client threads, each with its own
keep-alive session, send a mix of valid tokens of two mapped identities,
tokens of an unmapped identity, and invalid tokens (garbage, expired, a
duplicated parameter, STS refusals) for a bounded time, while another thread
rewrites the mapping file every second: alternately two different documents
(a plain mapping file and an aws-auth ConfigMap) that map both identities to
the same users, and now and then an invalid file that must be ignored.

Properties: zero wrong answers, zero statuses outside docs/operations.md, every
mapping write seen by the server (reload metrics), and memory flat: the
resident set of the server's process tree (``/proc/<pid>/status`` VmRSS) is
reported at start, after warm-up and at the end, and may not grow by more than
:data:`RSS_GROWTH_LIMIT_KIB` after warm-up. The 12 s run is part of ``make
test``; the 60 s run is the soak (``make soak``, marker ``slow``).
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
import yaml

from authenticator.emulator import STSEmulator
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.token import decode_token, encode_token
from tests.fixtures.faultsts import ACCOUNT, FaultSTS, fault_key
from tests.fixtures.webhook import (
    DEFAULT_CLUSTER_ID,
    TOKENREVIEW_V1,
    TOKENREVIEW_V1BETA1,
    WebhookServer,
    tokenreview,
)

CLIENT_THREADS = 8
# Tokens minted per identity; the first use of each misses the verification cache.
TOKENS_PER_IDENTITY = 120
# Memory may not grow more than this after warm-up (generous: two workers).
RSS_GROWTH_LIMIT_KIB = 64 * 1024
REWRITE_EVERY_S = 1.0
# Every INVALID_EVERY-th rewrite is a broken file (ignored by the server).
INVALID_EVERY = 4


@dataclass(frozen=True)
class Person:
    """A mapped identity of the stand-in STS (the user is named after the key)."""

    key: str
    username: str
    groups: tuple[str, ...]

    @property
    def arn(self) -> str:
        """The IAM user ARN the stand-in reports for this key."""
        return f"arn:aws:iam::{ACCOUNT}:user/fault-{self.key[9:].rstrip('X').lower()}"

    @property
    def uid(self) -> str:
        """The uid docs/operations.md requires."""
        return f"aws-iam-authenticator:{ACCOUNT}:AIDA{self.key[4:20]}"


ALICE = Person("AKIAFAULTOKALICEXXXX", "alice", ("devs",))
BOB = Person("AKIAFAULTOKBOBXXXXXX", "bob", ("ops", "devs"))
EVE_KEY = "AKIAFAULTOKEVEXXXXXX"  # valid at STS, in no mapping


def plain_mapping() -> dict[str, object]:
    """Mapping A: a plain mapUsers document."""
    return {
        "mapUsers": [
            {"userarn": p.arn, "username": p.username, "groups": list(p.groups)}
            for p in (ALICE, BOB)
        ]
    }


def configmap_mapping() -> str:
    """Mapping B: an aws-auth ConfigMap with the same users, plus an unrelated role."""
    users = [
        {"userARN": p.arn, "UserName": p.username, "Groups": list(p.groups)}
        for p in (BOB, ALICE)
    ]
    roles = [{"rolearn": f"arn:aws:iam::{ACCOUNT}:role/Unused", "username": "unused"}]
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "aws-auth", "namespace": "kube-system"},
            "data": {
                "mapUsers": yaml.safe_dump(users),
                "mapRoles": yaml.safe_dump(roles),
            },
        }
    )


INVALID_MAPPINGS = [
    "mapUsers: [",
    yaml.safe_dump({"mapUsers": [{"userarn": "not-an-arn", "username": "x"}]}),
    yaml.safe_dump({"mapUsers": [{"userarn": ALICE.arn}]}),
    "mapUsers:\n- userarn: a\n  userarn: b\n",
]


# --------------------------------------------------------------------------- memory


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants (from /proc/<pid>/stat parent IDs)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # pid (comm) state ppid ...: comm may hold spaces, so split after ')'.
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    tree, frontier = [root], [root]
    while frontier:
        children = [pid for pid, ppid in parents.items() if ppid in frontier]
        tree += children
        frontier = children
    return tree


def rss_kib(pid: int) -> int:
    """VmRSS of one process in KiB (0 when it is gone)."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_rss(root: int) -> dict[int, int]:
    """VmRSS (KiB) of every process of the server's tree."""
    return {pid: rss_kib(pid) for pid in process_tree(root)}


# --------------------------------------------------------------------------- traffic


def mint(
    fault_sts: FaultSTS, key: str, *, at: datetime | None = None, secret: str = ""
) -> str:
    """A token for the stand-in with access key ``key`` (a fresh secret each time)."""
    return presign_get_caller_identity(
        credentials=StaticCredentials(key, secret or uuid.uuid4().hex),
        region="us-east-1",
        cluster_id=DEFAULT_CLUSTER_ID,
        now=at or datetime.now(UTC),
        endpoint_url=fault_sts.url,
    ).token


def duplicated_parameter(token: str) -> str:
    """The token with ``Action`` given twice (refused offline, CVE-2022-2385)."""
    return encode_token(decode_token(token) + "&action=GetCallerIdentity")


@dataclass(frozen=True)
class Case:
    """One request of the mix and the answer it must get."""

    kind: str  # "mapped", "unmapped" or "invalid"
    token: str
    person: Person | None = None


def build_cases(fault_sts: FaultSTS) -> dict[str, list[Case]]:
    """The token pools, by kind."""
    mapped = [
        Case("mapped", mint(fault_sts, p.key), p)
        for p in (ALICE, BOB)
        for _ in range(TOKENS_PER_IDENTITY)
    ]
    unmapped = [
        Case("unmapped", mint(fault_sts, EVE_KEY)) for _ in range(TOKENS_PER_IDENTITY)
    ]
    old = datetime.now(UTC) - timedelta(minutes=20)
    invalid = [
        Case("invalid", "k8s-aws-v1.bm90LWEtdXJs"),
        Case("invalid", "not-a-token"),
        Case("invalid", ""),
        Case("invalid", mint(fault_sts, ALICE.key, at=old)),
        Case("invalid", duplicated_parameter(mint(fault_sts, ALICE.key))),
        *[Case("invalid", mint(fault_sts, fault_key("deny"))) for _ in range(20)],
    ]
    return {"mapped": mapped, "unmapped": unmapped, "invalid": invalid}


def judge(case: Case, status: int, body: dict[str, object]) -> str | None:
    """What is wrong with an answer, or None when it is the documented answer."""
    if status != 200:
        return f"status {status}"
    review = body.get("status")
    if not isinstance(review, dict):
        return "no status"
    if case.kind == "mapped":
        assert case.person is not None
        user = review.get("user")
        expected = {
            "username": case.person.username,
            "uid": case.person.uid,
            "groups": list(case.person.groups),
        }
        if review.get("authenticated") is not True or not isinstance(user, dict):
            return f"{case.person.username} not authenticated: {review}"
        got = {k: user.get(k) for k in expected}
        if got != expected:
            return f"wrong user {got} != {expected}"
        extra = user.get("extra")
        if not isinstance(extra, dict) or extra.get("arn") != [case.person.arn]:
            return f"wrong extra {extra}"
        return None
    if review.get("authenticated") is not False or review.get("user") not in ({}, None):
        return f"{case.kind} token authenticated: {review}"
    error = review.get("error")
    if case.kind == "unmapped":
        return None if isinstance(error, str) and "not mapped" in error else str(review)
    return None if error is None else f"invalid token answered with error {error}"


@dataclass
class Tally:
    """What the client threads saw (guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    answers: Counter[str] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def add(self, kind: str, problem: str | None, seconds: float) -> None:
        """Record one answer."""
        with self.lock:
            self.answers[kind] += 1
            self.latencies.append(seconds)
            if problem is not None:
                self.wrong.append(f"{kind}: {problem}")


def client_loop(
    server: WebhookServer,
    cases: dict[str, list[Case]],
    deadline: float,
    tally: Tally,
    seed: int,
) -> None:
    """Send reviews over one keep-alive mTLS session until the deadline."""
    rng = random.Random(seed)  # a reproducible traffic mix, not a secret
    kinds = ["mapped"] * 5 + ["unmapped"] * 2 + ["invalid"] * 3
    with requests.Session() as session:
        while time.monotonic() < deadline:
            case = rng.choice(cases[rng.choice(kinds)])
            version = rng.choice([TOKENREVIEW_V1, TOKENREVIEW_V1BETA1])
            start = time.monotonic()
            try:
                resp = session.post(
                    server.url + "/authenticate?timeout=30s",
                    data=json.dumps(tokenreview(case.token, version)),
                    headers={"Content-Type": "application/json"},
                    # Per request: requests lets REQUESTS_CA_BUNDLE override a
                    # session-level verify.
                    verify=str(server.pki.ca_file),
                    cert=server.pki.client,
                    timeout=30,
                )
                body = resp.json()
                problem = judge(case, resp.status_code, body)
                if problem is None and body.get("apiVersion") != version:
                    problem = f"answered in {body.get('apiVersion')}"
            except (requests.RequestException, ValueError) as exc:
                problem = f"transport: {type(exc).__name__}: {exc}"
            tally.add(case.kind, problem, time.monotonic() - start)


def rewrite_loop(
    server: WebhookServer, stop: threading.Event, writes: Counter[str]
) -> None:
    """Rewrite the mapping file every second: B, A, B, then a broken one, ..."""
    n = 0
    while not stop.wait(REWRITE_EVERY_S):
        n += 1
        if n % INVALID_EVERY == 0:
            server.write_mapping(
                INVALID_MAPPINGS[(n // INVALID_EVERY) % len(INVALID_MAPPINGS)]
            )
            writes["invalid"] += 1
        elif n % 2:
            server.write_mapping(configmap_mapping())
            writes["configmap"] += 1
        else:
            server.write_mapping(plain_mapping())
            writes["plain"] += 1


def reload_counts(metrics: str) -> Counter[str]:
    """``kubeiam_mapping_reloads_total`` summed by result label."""
    counts: Counter[str] = Counter()
    for row in metrics.splitlines():
        if row.startswith("kubeiam_mapping_reloads_total{"):
            labels, _, value = row.partition("} ")
            result = labels.split('result="', 1)[1].split('"', 1)[0]
            counts[result] += int(float(value))
    return counts


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def server(
    webhook_factory: Callable[..., WebhookServer],
    fault_sts: FaultSTS,
    sts_emulator: STSEmulator,
) -> WebhookServer:
    """kubeiam server, two workers, the stand-in as STS, mapping A loaded."""
    return webhook_factory(
        plain_mapping(),
        workers=2,
        threads=4,
        config={
            "sts": {
                "region": "us-east-1",
                "timeoutSeconds": 5,
                "extraEndpoints": [sts_emulator.url, fault_sts.url],
            }
        },
    )


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


class TestLoad:
    """Concurrent reviews under mapping churn: right answers, flat memory."""

    @pytest.mark.parametrize(
        "seconds",
        [
            pytest.param(12, id="12s"),
            pytest.param(60, id="soak-60s", marks=pytest.mark.slow),
        ],
    )
    def test_mixed_reviews_while_mappings_change(
        self,
        server: WebhookServer,
        fault_sts: FaultSTS,
        seconds: int,
        capsys: pytest.CaptureFixture[str],
    ) -> None:
        """Zero wrong answers, zero undocumented statuses, RSS flat after warm-up."""
        cases = build_cases(fault_sts)
        rss_start = tree_rss(server.process.pid)
        warm = Tally()
        client_loop(server, cases, time.monotonic() + 1.5, warm, seed=0)
        rss_warm = tree_rss(server.process.pid)
        reloads_before = reload_counts(server.metrics())

        tally, writes, stop = Tally(), Counter[str](), threading.Event()
        deadline = time.monotonic() + seconds
        clients = [
            threading.Thread(
                target=client_loop, args=(server, cases, deadline, tally, seed)
            )
            for seed in range(1, CLIENT_THREADS + 1)
        ]
        writer = threading.Thread(target=rewrite_loop, args=(server, stop, writes))
        writer.start()
        for thread in clients:
            thread.start()
        for thread in clients:
            thread.join(seconds + 60)
        stop.set()
        writer.join(10)
        time.sleep(1.0)  # let the last write settle before reading the metrics
        reloads = reload_counts(server.metrics()) - reloads_before
        rss_end = tree_rss(server.process.pid)

        total = sum(tally.answers.values())
        growth = sum(rss_end.values()) - sum(rss_warm.values())
        p50 = _percentile(tally.latencies, 0.5) * 1000
        p99 = _percentile(tally.latencies, 0.99) * 1000
        kib = [sum(r.values()) for r in (rss_start, rss_warm, rss_end)]
        with capsys.disabled():
            print(
                f"\nload {seconds}s: {total} reviews {dict(tally.answers)}, "
                f"{total / seconds:.0f}/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms; "
                f"mapping writes {dict(writes)}, reloads {dict(reloads)}; "
                f"RSS KiB start {kib[0]} warm {kib[1]} end {kib[2]} "
                f"(per process at the end: {rss_end})"
            )
        assert warm.wrong == []
        assert tally.wrong == [], tally.wrong[:10]
        assert all(
            tally.answers[kind] > 0 for kind in ("mapped", "unmapped", "invalid")
        )
        assert total >= seconds * 10, "the server answered too few reviews"
        # Both workers saw every change (the metrics add up the two workers); the
        # margin allows for the last write not being picked up yet.
        assert writes["invalid"] > 0
        assert reloads["success"] >= 2 * (writes["configmap"] + writes["plain"]) - 2
        assert reloads["error"] >= 2 * writes["invalid"] - 2
        assert server.process.poll() is None
        assert len(rss_end) >= 3, rss_end  # the arbiter and both workers are alive
        assert growth < RSS_GROWTH_LIMIT_KIB, (rss_warm, rss_end)

    def test_rss_of_the_process_tree_is_readable(self, server: WebhookServer) -> None:
        """The memory probe sees the arbiter and its two workers with a resident set."""
        rss = tree_rss(server.process.pid)
        assert server.process.pid in rss
        assert len(rss) >= 3
        assert all(value > 1000 for value in rss.values()), rss
        assert os.getpid() not in rss
