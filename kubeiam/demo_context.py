"""What the demo's steps share: the context, the step record and two helpers.

Its own module so that the step modules (``demo_webhook``, ``demo_policy``,
``demo_paths``) and :mod:`kubeiam.demo`, which lists them, import it rather
than each other (no import cycle).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, TypeVar

from authenticator.hosts import AllowedHosts
from authenticator.identity import Identity
from authenticator.presign import StaticCredentials, presign_get_caller_identity
from authenticator.sts import STSClient

if TYPE_CHECKING:
    # moto is the optional extra "local": imported when the first step runs.
    from authenticator.emulator import Credentials, STSEmulator

__all__ = ["DemoContext", "Step", "create_unique", "mint"]

_T = TypeVar("_T")


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


def create_unique(make: Callable[[str], _T], base: str) -> _T:
    """Create an IAM entity named ``base`` (``base-2``, ... if taken: moto's
    state is process-wide) and return what ``make`` returned."""
    for n in range(1, 100):
        try:
            return make(base if n == 1 else f"{base}-{n}")
        except ValueError:
            continue
    raise RuntimeError(f"no free IAM name for {base}")


def mint(ctx: DemoContext, creds: Credentials, cluster_id: str) -> str:
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
