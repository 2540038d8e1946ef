"""``kubeiam demo``: the whole path on embedded defaults, step by step.

The demo is a list of steps (:data:`STEPS`) run in order on one shared
:class:`DemoContext`. Each step is a function ``step(ctx) -> None`` that does one
thing, explains it with ``ctx.say``/``ctx.table`` (human output) and records its
results with ``ctx.record`` (the ``-o json`` summary). Later features add steps
by appending to :data:`STEPS` (or inserting before ``"reject"``), reading what
earlier steps left in the context: the emulator, the credentials, the tokens and
the verified identities.

Nothing here needs an AWS account: STS is the embedded emulator on a free
loopback port, IAM state is moto's.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar
from urllib.parse import parse_qsl, urlsplit

from authenticator.errors import KubeIAMError, TokenError
from authenticator.hosts import AllowedHosts, build_allowed_hosts
from authenticator.identity import Identity
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.sts import STSClient
from authenticator.token import decode_token
from authenticator.verify import verify_token
from kubeiam.demo_paths import step_paths
from kubeiam.demo_policy import step_can_i, step_tiers
from kubeiam.demo_webhook import step_webhook

if TYPE_CHECKING:
    # moto is the optional extra "local": imported when the first step runs.
    from authenticator.emulator import Credentials, STSEmulator

# The demo's defaults: an EKS-like cluster name and the default AWS region.
DEFAULT_CLUSTER_ID = "demo"
DEFAULT_REGION = "us-east-1"
# The cluster a stolen token is replayed against in the rejection step.
OTHER_CLUSTER_ID = "another-cluster"
# Query parameters whose values are secrets: shown elided, never echoed.
_SECRET_PARAMS = frozenset({"X-Amz-Signature", "X-Amz-Security-Token"})
_T = TypeVar("_T")
# What to do when moto (the embedded STS) is not installed.
_MISSING_EXTRA = (
    "the embedded STS needs the 'local' extra: pip install 'kubeiam[local]'"
)

_EPILOG = """\
examples:
  kubeiam demo                        # explained, step by step
  kubeiam demo -o json | jq .identities
  kubeiam demo --cluster-id prod-eu --region eu-west-1
"""


@dataclass
class DemoContext:
    """What the steps share.

    Attributes:
        cluster_id: The cluster the tokens are minted for and verified by.
        region: The STS region (credential scope of the emulator's tokens).
        out: Where human output goes (None with ``-o json``).
        emulator: The embedded STS (started by the first step).
        allowed_hosts: The verifier's allow-list (the emulator as extra endpoint).
        sts: The verifier's STS client.
        credentials: Principal label (``user``, ``role``) -> credentials.
        tokens: Principal label -> token.
        identities: Principal label -> verified identity.
        summary: The ``-o json`` document being built.
        files_dir: Where steps write the files they tell the reader to run.
        conclusions: Step name -> its one-line result, for the closing summary.
        step: The name of the step running now.
    """

    cluster_id: str
    region: str
    out: TextIO | None
    emulator: STSEmulator | None = None
    allowed_hosts: AllowedHosts | None = None
    sts: STSClient | None = None
    credentials: dict[str, Credentials] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    identities: dict[str, Identity] = field(default_factory=dict)
    summary: dict[str, object] = field(default_factory=dict)
    files_dir: Path | None = None
    conclusions: dict[str, str] = field(default_factory=dict)
    step: str = ""

    def conclude(self, text: str) -> None:
        """Set the current step's line in the closing summary."""
        self.conclusions[self.step] = text

    def write_file(self, relative: str, text: str) -> Path:
        """Write a file for the reader under ``files_dir`` and return its path."""
        if self.files_dir is None:
            self.files_dir = Path(tempfile.mkdtemp(prefix="kubeiam-demo-"))
        path = self.files_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def say(self, text: str = "") -> None:
        """Print an indented line of explanation (human output only)."""
        if self.out is not None:
            self.out.write(f"    {text}\n" if text else "\n")

    def table(self, rows: list[tuple[str, ...]]) -> None:
        """Print aligned columns (the first row is the header)."""
        if not rows:
            return
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            cells = zip(row, widths, strict=True)
            self.say("  ".join(cell.ljust(w) for cell, w in cells).rstrip())

    def record(self, key: str, value: object) -> None:
        """Put ``value`` under ``key`` in the ``-o json`` summary."""
        self.summary[key] = value

    def require_emulator(self) -> STSEmulator:
        """Return the started emulator (the first step starts it)."""
        if self.emulator is None:
            raise RuntimeError("the embedded STS is not started")
        return self.emulator

    def now(self) -> datetime:
        """The current time, aware UTC."""
        return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Step:
    """One demo step.

    Attributes:
        name: A short identifier (``sts``, ``iam``, ``mint``, ...).
        title: The heading shown to the user.
        run: Does the work on the context.
    """

    name: str
    title: str
    run: Callable[[DemoContext], None]


def _create_unique(make: Callable[[str], _T], base: str) -> _T:
    """Create an IAM entity named ``base`` (``base-2``, ... if taken: moto's
    state is process-wide) and return what ``make`` returned."""
    for n in range(1, 100):
        try:
            return make(base if n == 1 else f"{base}-{n}")
        except ValueError:
            continue
    raise RuntimeError(f"no free IAM name for {base}")


def step_start_sts(ctx: DemoContext) -> None:
    """Start the embedded STS on a free loopback port; build the verifier's parts."""
    from authenticator.emulator import STSEmulator

    started = time.perf_counter()
    emulator = STSEmulator()
    emulator.start()
    elapsed_ms = 1000 * (time.perf_counter() - started)
    ctx.emulator = emulator
    ctx.allowed_hosts = build_allowed_hosts("aws", [emulator.url], region=ctx.region)
    ctx.sts = STSClient(timeout=5)
    ctx.say(
        f"STS emulator listening on {emulator.url} (started in {elapsed_ms:.0f} ms)"
    )
    ctx.say("IAM users, keys and roles live in moto; presigned GetCallerIdentity")
    ctx.say("calls are checked as AWS STS checks them: the SigV4 signature, the")
    ctx.say("signed cluster header, the session token, the 15-minute window.")
    ctx.say("The verifier accepts AWS's STS hosts plus this extra endpoint, and")
    ctx.say(f"belongs to cluster {ctx.cluster_id!r}.")
    ctx.record("stsEndpoint", emulator.url)
    ctx.record("clusterId", ctx.cluster_id)
    ctx.conclude(f"a local STS started on {emulator.url}")


def step_create_principals(ctx: DemoContext) -> None:
    """Create an IAM user, a role the account trusts, and a session of that role."""
    emulator = ctx.require_emulator()
    user = _create_unique(lambda n: emulator.create_user(n, path="/demo/"), "alice")
    role_arn = _create_unique(
        lambda n: emulator.create_role(n, path="/kubeiam/"), "deployer"
    )
    session = emulator.assume_role(user, role_arn, "alice-session")
    ctx.credentials["user"] = user
    ctx.credentials["role"] = session
    expires = session.expiration.strftime("%H:%M:%SZ") if session.expiration else "-"
    ctx.say(f"In AWS account {user.account_id} (the emulator's account):")
    ctx.say(f"IAM user    {user.arn}")
    ctx.say(f"            long-term access key {user.access_key_id}")
    ctx.say(f"IAM role    {role_arn}  (trust policy: the account)")
    ctx.say("AssumeRole  the user assumes the role as session 'alice-session':")
    ctx.say(f"            temporary key {session.access_key_id} + session token,")
    ctx.say(f"            valid until {expires}")
    ctx.conclude(
        f"alice, an IAM user of account {user.account_id}, and her session of "
        "the role deployer"
    )
    ctx.record(
        "principals",
        {
            "user": {"arn": user.arn, "accessKeyId": user.access_key_id},
            "role": {
                "arn": role_arn,
                "sessionArn": session.arn,
                "accessKeyId": session.access_key_id,
            },
        },
    )


def _mint(ctx: DemoContext, creds: Credentials, cluster_id: str) -> str:
    """Mint a token exactly as ``kubeiam token`` does on a cache miss."""
    minted = presign_get_caller_identity(
        credentials=StaticCredentials(
            access_key_id=creds.access_key_id,
            secret_access_key=creds.secret_access_key,
            session_token=creds.session_token,
            expiration=creds.expiration,
        ),
        region=ctx.region,
        cluster_id=cluster_id,
        now=ctx.now(),
        endpoint_url=ctx.require_emulator().url,
    )
    return minted.token


def step_mint_tokens(ctx: DemoContext) -> None:
    """Mint one token per principal with kubeiam token's presigner."""
    ctx.say("kubeiam token presigns GET /?Action=GetCallerIdentity with botocore,")
    ctx.say(f"signing the header x-k8s-aws-id: {ctx.cluster_id} (its value is NOT in")
    ctx.say("the token: only a verifier that sends the same value gets a match).")
    for label, creds in ctx.credentials.items():
        token = ctx.tokens[label] = _mint(ctx, creds, ctx.cluster_id)
        ctx.say(f"{label:<5} token: {token[:40]}... ({len(token)} characters)")
    ctx.record("tokens", {label: len(t) for label, t in ctx.tokens.items()})
    ctx.conclude(
        f"one token each for alice and her role session, for {ctx.cluster_id!r}"
    )


def step_show_token(ctx: DemoContext) -> None:
    """Decode the role session's token and show its parameters, secrets elided."""
    label = "role" if "role" in ctx.tokens else next(iter(ctx.tokens))
    url = decode_token(ctx.tokens[label])
    parts = urlsplit(url)
    ctx.say(f"k8s-aws-v1. + base64url of a presigned URL ({label} token):")
    ctx.say(f"{parts.scheme}://{parts.netloc}{parts.path}?...")
    rows: list[tuple[str, ...]] = []
    shown: dict[str, str] = {}
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name in _SECRET_PARAMS:
            value = f"<{len(value)} characters, elided>"
        rows.append((f"  {name}", value))
        shown[name] = value
    ctx.table(rows)
    ctx.record("decodedToken", {"principal": label, "parameters": shown})
    ctx.conclude("a token is a presigned STS URL; the cluster ID is signed, not sent")


def step_verify(ctx: DemoContext) -> None:
    """Verify each token: offline checks, then one GetCallerIdentity call."""
    ctx.say(f"Now the verifier of cluster {ctx.cluster_id!r} (the code kubeiam server")
    ctx.say("and kubeiam verify share) checks each token offline: size, prefix,")
    ctx.say("base64url, host allow-list, parameters, dates, credential scope. Only")
    ctx.say("then does it GET the URL from STS, sending its own x-k8s-aws-id.")
    identities = []
    for label, token in ctx.tokens.items():
        started = time.perf_counter()
        identity = _verify(ctx, token, ctx.cluster_id)
        elapsed_ms = 1000 * (time.perf_counter() - started)
        ctx.identities[label] = identity
        fields = identity.to_json()
        identities.append({"principal": label, **fields})
        ctx.say()
        ctx.say(f"{label} token: verified in {elapsed_ms:.1f} ms")
        ctx.table([(f"  {key}", value or '""') for key, value in fields.items()])
    ctx.say()
    account = {i.account_id for i in ctx.identities.values()}
    ctx.say(f"account {', '.join(sorted(account))}; an assumed role's canonical ARN is")
    ctx.say("the role itself (no path), which is what mappings match on.")
    ctx.record("identities", identities)
    ctx.conclude("STS named both identities; the verifier accepted both tokens")


def _verify(ctx: DemoContext, token: str, cluster_id: str) -> Identity:
    if ctx.allowed_hosts is None or ctx.sts is None:
        raise RuntimeError("the verifier is not set up")
    call = verify_token(
        token, cluster_id=cluster_id, now=ctx.now(), allowed_hosts=ctx.allowed_hosts
    )
    return ctx.sts.call_get_caller_identity(call)


def step_reject(ctx: DemoContext) -> None:
    """Replay the user's token against another cluster's verifier: STS refuses it."""
    token = ctx.tokens["user"]
    ctx.say(f"The user's token (minted for {ctx.cluster_id!r}) is presented to a")
    ctx.say(f"verifier for {OTHER_CLUSTER_ID!r}. It passes the offline checks (the")
    ctx.say("cluster ID is not in the token), then STS recomputes the signature with")
    ctx.say(f"x-k8s-aws-id: {OTHER_CLUSTER_ID} and it does not match.")
    rejections = []
    try:
        identity = _verify(ctx, token, OTHER_CLUSTER_ID)
    except TokenError as exc:
        ctx.say(f"-> refused by STS (reason {exc.reason}): {exc}")
        rejections.append(
            {
                "case": "token for another cluster",
                "cluster": OTHER_CLUSTER_ID,
                "error": type(exc).__name__,
                "reason": exc.reason,
                "message": str(exc),
            }
        )
    else:
        raise RuntimeError(f"a replayed token was accepted as {identity.arn}")
    outcomes = ctx.require_emulator().outcomes
    ctx.say(f"STS emulator outcomes so far: {outcomes}")
    ctx.record("rejections", rejections)
    ctx.record("stsOutcomes", outcomes)
    ctx.conclude(f"the same token, replayed against {OTHER_CLUSTER_ID!r}, was refused")


# The demo, in order. Later features append their steps (webhook, policy, ...).
STEPS: list[Step] = [
    Step("sts", "Start the embedded STS", step_start_sts),
    Step(
        "iam", "Create an IAM user, a role, and a role session", step_create_principals
    ),
    Step(
        "mint", "Mint a token for each (the kubeiam token code path)", step_mint_tokens
    ),
    Step("decode", "Look inside a token", step_show_token),
    Step("verify", "Verify the tokens: offline checks, then STS", step_verify),
    Step("reject", "Replay a token against another cluster", step_reject),
    Step(
        "webhook",
        "The webhook: TokenReviews over mTLS, as the API server sends",
        step_webhook,
    ),
    Step("tiers", "Permission tiers of an ECS task (kubeiam policy tiers)", step_tiers),
    Step("can-i", "From the IAM role session to a Kubernetes decision", step_can_i),
    Step("paths", "An access path across IAM and Kubernetes", step_paths),
]


def run_steps(ctx: DemoContext, steps: list[Step]) -> None:
    """Run ``steps`` in order on ``ctx``, numbering them in the human output.

    Args:
        ctx: The shared context.
        steps: The steps to run.
    """
    for number, step in enumerate(steps, start=1):
        if ctx.out is not None:
            ctx.out.write(f"\n[{number}/{len(steps)}] {step.title}\n")
        ctx.step = step.name
        step.run(ctx)
    ctx.record("steps", [step.name for step in steps])
    ctx.record(
        "stepSummaries",
        {step.name: ctx.conclusions.get(step.name, step.title) for step in steps},
    )


def _closing_summary(ctx: DemoContext, steps: list[Step]) -> str:
    """What each step showed, one numbered line each, and where the files are."""
    lines = ["", "What happened:"]
    for number, step in enumerate(steps, start=1):
        lines.append(f"  {number}. {ctx.conclusions.get(step.name, step.title)}")
    if ctx.files_dir is not None:
        lines.append(f"The files to run the commands above are in {ctx.files_dir}")
    return "\n".join(lines) + "\n"


# Who appears in the demo, introduced before the first step.
_CAST = """\
Who is who:
  STS         a local stand-in for AWS STS, started in step 1 (no AWS account)
  alice       an IAM user; she also assumes the IAM role "deployer"
  the client  kubeiam token, which turns credentials into a token
  cluster     the Kubernetes cluster {cluster!r}; its verifier, then its webhook
              (kubeiam server), check tokens; the demo plays its API server
  mallory     an IAM user nobody maps (step 7)
  shop        an ECS cluster in another AWS account (step 8)
"""


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam demo",
        description=(
            "Run the whole kubeiam path on embedded defaults: a local STS, an IAM\n"
            "user and role, tokens minted as `kubeiam token` mints them, verified as\n"
            "the webhook verifies them, and a rejected replay. No AWS account needed."
        ),
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--cluster-id", default=DEFAULT_CLUSTER_ID, help="cluster ID")
    parser.add_argument("--region", default=DEFAULT_REGION, help="STS region")
    parser.add_argument(
        "--files-dir",
        type=Path,
        help="where to write the files the demo's commands read (default: a new "
        "temporary directory, printed at the end)",
    )
    parser.add_argument("-o", "--output", choices=("human", "json"), default="human")
    return parser


# Signals that stop the demo the way Ctrl-C does: every step's clean-up runs
# (the webhook is stopped, its keys removed, the embedded STS closed). Without
# this, SIGTERM or SIGHUP would end the process at once and leave the webhook
# running, still trusting an STS port that anyone could then take.
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def _stop_on_signal(signum: int, frame: object) -> None:
    # One stop is enough: ignore repeats so that they cannot cut the clean-up short.
    for sig in _STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def main(argv: list[str]) -> int:
    """Run ``kubeiam demo``.

    Args:
        argv: Arguments after the subcommand name.

    Returns:
        0 when every step ran, 1 on error, 2 on a usage error.
    """
    args = _build_parser().parse_args(argv)
    human = args.output == "human"
    ctx = DemoContext(
        cluster_id=args.cluster_id,
        region=args.region,
        out=sys.stdout if human else None,
        files_dir=args.files_dir,
    )
    if human:
        sys.stdout.write(
            "kubeiam demo: AWS IAM identities for Kubernetes, end to end\n\n"
        )
        sys.stdout.write(_CAST.format(cluster=args.cluster_id))
    previous = {sig: signal.signal(sig, _stop_on_signal) for sig in _STOP_SIGNALS}
    try:
        run_steps(ctx, STEPS)
    except ImportError as exc:
        sys.stderr.write(f"kubeiam demo: {_MISSING_EXTRA} ({exc.name} is missing)\n")
        return 1
    except (KubeIAMError, RuntimeError, ValueError) as exc:
        sys.stderr.write(f"kubeiam demo: {exc}\n")
        return 1
    finally:
        if ctx.sts is not None:
            ctx.sts.close()
        if ctx.emulator is not None:
            ctx.emulator.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if human:
        sys.stdout.write(_closing_summary(ctx, STEPS))
    else:
        json.dump(ctx.summary, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0
