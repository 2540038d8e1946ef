"""The verifier differential: generated tokens through both servers.

:func:`run_verifier_differential` sends every variant (in chunks, each chunk
generated just before it is sent, so date-relative variants never drift over a
15-minute edge) to aws-iam-authenticator's server and to kubeiam's, and records
each side's allow/deny plus kubeiam's offline reason code (``verify_token`` run
in-process on the same token, for classification only: the verdicts are the
servers'). :func:`classify` checks every disagreement against the written list
of deliberate stricter rules in ``docs/token-format.md``.

``python -m tests.differential.runner --count 10000`` (``make differential``) is
the large run; the test suite runs a fixed seed and a bounded count.
"""

from __future__ import annotations

import collections
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from authenticator.emulator import Credentials
from authenticator.errors import MalformedTokenError
from authenticator.hosts import build_allowed_hosts
from authenticator.verify import verify_token
from tests.differential.harness import CLUSTER_ID, Server, user_of
from tests.differential.variants import Variant, generate

DOC = Path(__file__).resolve().parents[2] / "docs" / "token-format.md"
STRICTER_HEADING = "## 8. Deliberately stricter than aws-iam-authenticator"
CHUNK = 200
_ALLOWED = build_allowed_hosts("aws", region="us-east-1")


@dataclass(frozen=True)
class Outcome:
    """Both verdicts on one variant."""

    variant: Variant
    go_ok: bool
    kubeiam_ok: bool
    reason: str | None  # kubeiam's offline reason, None when the offline checks pass
    go_user: dict[str, object] | None
    kubeiam_user: dict[str, object] | None

    @property
    def agree(self) -> bool:
        return self.go_ok == self.kubeiam_ok


def offline_reason(token: str, now: datetime) -> str | None:
    """kubeiam's offline verdict on ``token`` (None: every offline check passes)."""
    try:
        verify_token(token, cluster_id=CLUSTER_ID, now=now, allowed_hosts=_ALLOWED)
    except MalformedTokenError as exc:
        return exc.reason
    return None


def run_verifier_differential(
    go: Server,
    kubeiam: Server,
    identities: Sequence[Credentials],
    *,
    count: int,
    seed: int,
) -> list[Outcome]:
    """Send ``count`` variants to both servers; return every outcome."""
    outcomes: list[Outcome] = []
    index = 0
    while len(outcomes) < count:
        now = datetime.now(UTC)
        batch = generate(
            identities,
            cluster_id=CLUSTER_ID,
            count=min(CHUNK, count - len(outcomes)),
            seed=seed * 100_003 + index,
            now=now,
            anchors=index == 0,
        )
        tokens = [v.token for v in batch]
        go_reviews = go.review_many(tokens)
        kubeiam_reviews = kubeiam.review_many(tokens)
        for variant, g, k in zip(batch, go_reviews, kubeiam_reviews, strict=True):
            g_user, k_user = user_of(g), user_of(k)
            outcomes.append(
                Outcome(
                    variant=variant,
                    go_ok=g_user is not None,
                    kubeiam_ok=k_user is not None,
                    reason=offline_reason(variant.token, now),
                    go_user=g_user,
                    kubeiam_user=k_user,
                )
            )
        index += 1
    return outcomes


def stricter_rules(doc: Path = DOC) -> dict[str, str]:
    """The written list: reason code -> why, from ``docs/token-format.md`` section 8."""
    text = doc.read_text()
    start = text.index(STRICTER_HEADING)
    end = text.find("\n## ", start + 1)
    section = text[start : end if end >= 0 else len(text)]
    rules: dict[str, str] = {}
    for match in re.finditer(
        r"^\| `([a-z0-9_]+)` \| (.+?) \| (.+?) \|$", section, re.M
    ):
        rules[match[1]] = match[3].strip()
    return rules


@dataclass
class Report:
    """Counts and the disagreements nobody wrote down."""

    total: int
    agree_accept: int
    agree_reject: int
    stricter: collections.Counter[str]  # kubeiam denies, Go allows, by reason
    by_category: dict[str, collections.Counter[str]]
    unlisted: list[Outcome]
    identity_mismatch: list[Outcome]


def classify(outcomes: Sequence[Outcome], rules: dict[str, str]) -> Report:
    """Sort every outcome; a disagreement off the written list is ``unlisted``."""
    stricter: collections.Counter[str] = collections.Counter()
    by_category: dict[str, collections.Counter[str]] = collections.defaultdict(
        collections.Counter
    )
    unlisted: list[Outcome] = []
    mismatch: list[Outcome] = []
    accept = reject = 0
    for o in outcomes:
        cat = by_category[o.variant.category]
        if o.agree:
            key = "both accept" if o.go_ok else "both reject"
            cat[key] += 1
            if o.go_ok:
                accept += 1
                if _comparable(o.go_user) != _comparable(o.kubeiam_user):
                    mismatch.append(o)
            else:
                reject += 1
            continue
        if o.go_ok and not o.kubeiam_ok and o.reason in rules:
            stricter[o.reason] += 1
            cat[f"kubeiam stricter: {o.reason}"] += 1
            continue
        side = "only kubeiam accepts" if o.kubeiam_ok else "only Go accepts"
        cat[f"UNLISTED {side} ({o.reason})"] += 1
        unlisted.append(o)
    return Report(
        total=len(outcomes),
        agree_accept=accept,
        agree_reject=reject,
        stricter=stricter,
        by_category=dict(by_category),
        unlisted=unlisted,
        identity_mismatch=mismatch,
    )


def _comparable(user: dict[str, object] | None) -> tuple[object, ...] | None:
    if user is None:
        return None
    groups = user.get("groups")
    names = sorted(str(g) for g in groups) if isinstance(groups, list) else []
    return (user.get("username"), user.get("uid"), tuple(names))


def describe(report: Report) -> str:
    """A human table of the report."""
    lines = [
        f"variants: {report.total}; both accept {report.agree_accept}, "
        f"both reject {report.agree_reject}, "
        f"kubeiam stricter (listed) {sum(report.stricter.values())}, "
        f"unlisted {len(report.unlisted)}, "
        f"identity mismatches {len(report.identity_mismatch)}",
        "",
        "| category | outcome | count |",
        "| --- | --- | --- |",
    ]
    for category in sorted(report.by_category):
        for key, n in sorted(report.by_category[category].items()):
            lines.append(f"| {category} | {key} | {n} |")
    for o in report.unlisted[:20]:
        lines.append(
            f"UNLISTED: {o.variant.category} {o.variant.labels} go={o.go_ok} "
            f"kubeiam={o.kubeiam_ok} reason={o.reason}"
        )
    return "\n".join(lines)
