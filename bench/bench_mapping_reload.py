"""A 100,000-entry mapping file: load time, server memory, and p99 while it reloads.

- load: :func:`webhook.sources_file.read_mapping_file` on the file as
  ``kubeiam server`` reads it before it forks (read, hash, then YAML, every
  check and the packed index in a child process; the answer mapped here),
  against the 2 s budget of a 100,000-entry table.
- memory: ``kubeiam server`` (gunicorn arbiter + ``WORKERS`` workers) serving
  that file: the PSS of all its processes once ready (the workers share the
  arbiter's packed table) and again after the reloads (each worker then maps
  its own), against a 300 MB budget. The packed tables are mapped from
  unlinked temporary files: PSS counts the pages of them that are resident,
  and the row also shows their whole size.
- reload: wrk drives warm reviews at a steady, moderate rate (``CONNECTIONS``
  connections, each pausing ``PAUSE_MS`` between reviews: the kind of load an
  API server puts on its webhook, not a saturating one) for ``RUN_SECONDS``; in
  the reload runs the file is replaced by another 100,000-entry table one
  second in, and the run counts only if every worker reported the reload
  before wrk stopped. The row is p99 during reloads against p99 without,
  rounds alternating.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.bench_webhook import (
    REPO,
    THREADS_PER_WORKER,
    WORKERS,
    review_body,
    start_emulator,
)
from bench.common import Row, median, paired_row, process_tree

ENTRIES = 100_000
ACCOUNT = "111122223333"
LOAD_BUDGET_S = 2.0
MEMORY_BUDGET_MB = 300.0
LOAD_SAMPLES = 3
CONNECTIONS = 8
PAUSE_MS = 10
RUN_SECONDS = 8
RELOAD_AT_S = 1.0
ROUNDS = 3
P99_TARGET = 2.0
CLUSTER_ID = "bench-cluster"

_LUA = """
wrk.method = "POST"
wrk.path = "/authenticate?timeout=30s"
wrk.headers["Content-Type"] = "application/json"
wrk.body = io.open(os.getenv("KUBEIAM_BENCH_BODY")):read("*a")
local pause = tonumber(os.getenv("KUBEIAM_BENCH_PAUSE_MS"))
function delay()
  return pause
end
"""
_P99 = re.compile(r"^\s*99%\s+([0-9.]+)(us|ms|s)\s*$", re.MULTILINE)
_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def mapping_text(entries: int, version: str, users: list[str]) -> str:
    """A block-style mapping file as people write them: mapRoles, then mapUsers."""
    lines = ["mapRoles:"]
    for i in range(entries):
        lines.append(
            f"  - rolearn: arn:aws:iam::{ACCOUNT}:role/team-{i % 97}/role-{i}\n"
            f"    username: {version}-role-{{{{SessionName}}}}\n"
            f"    groups:\n      - group-{i % 50}"
        )
    lines.append("mapUsers:")
    for i, arn in enumerate(users):
        lines.append(
            f"  - userarn: {arn}\n    username: {version}-bench-{i}\n"
            "    groups: [bench]"
        )
    return "\n".join(lines) + "\n"


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _memory_mb(pid: int) -> tuple[float, float, float]:
    """(PSS, RSS, mapped tables) of a process and its children, in MB.

    PSS counts a page shared by n processes as 1/n in each, so the sum is the
    memory the server really holds; the RSS sum counts shared pages (the
    modules and the table the workers inherit from the arbiter) once per
    process, and is shown for comparison. The last figure is the whole size
    of the distinct packed tables mapped (unlinked temporary files), resident
    or not.
    """
    pss_kb = rss_kb = 0
    tables: dict[str, int] = {}
    for p in process_tree(pid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    pss_kb += int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss_kb += int(line.split()[1])
            for line in Path(f"/proc/{p}/maps").read_text().splitlines():
                fields = line.split(maxsplit=5)
                if len(fields) == 6 and fields[5].endswith("(deleted)"):
                    start, end = (int(x, 16) for x in fields[0].split("-"))
                    tables[f"{fields[3]}:{fields[4]}"] = end - start
    return pss_kb / 1024, rss_kb / 1024, sum(tables.values()) / (1 << 20)


def _load_times(path: Path) -> list[float]:
    from webhook.sources_file import CHILD_PARSE_BYTES, read_mapping_file

    out: list[float] = []
    for _ in range(LOAD_SAMPLES):
        start = time.perf_counter()
        table = read_mapping_file(
            path, max_bytes=1 << 30, child_parse_bytes=CHILD_PARSE_BYTES
        ).mapping_set
        out.append(time.perf_counter() - start)
        if table.entries < ENTRIES:
            raise RuntimeError(f"the table has {table.entries} entries")
        del table
    return out


def run() -> list[Row]:
    """Load, serve and reload a 100,000-entry file; the rows."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make deps-system installs it)")
    from authenticator.presign import StaticCredentials, presign_get_caller_identity
    from tests.fixtures.webhook import (
        WebhookServer,
        free_port,
        launch_server,
        make_pki,
        wait_ready,
        write_config,
    )

    work = Path(tempfile.mkdtemp(prefix="kubeiam-bench-reload-"))
    emulator = start_emulator(None, work / "sts.log")
    server: WebhookServer | None = None
    try:
        users = [arn for arn, _, _ in emulator.users]
        texts = [mapping_text(ENTRIES, f"v{n}", users) for n in (1, 2)]
        mapping_path = work / "mapping.yaml"
        _write(mapping_path, texts[0])
        load = _load_times(mapping_path)

        pki = make_pki(work)
        port = free_port()
        config = write_config(
            work,
            pki=pki,
            port=port,
            mapping_path=mapping_path,
            cluster_id=CLUSTER_ID,
            extra_endpoints=[emulator.url],
            mtls=False,
            workers=WORKERS,
            threads=THREADS_PER_WORKER,
            config={
                "sources": [{"file": {"path": str(mapping_path), "maxBytes": 1 << 30}}]
            },
        )
        started = time.perf_counter()
        server = launch_server(
            config,
            port=port,
            pki=pki,
            mapping_path=mapping_path,
            output_path=work / "server.log",
        )
        process = server.process
        wait_ready(server, timeout=120)
        ready_s = time.perf_counter() - started
        time.sleep(1)  # let every worker finish its first load
        pss_start, rss_start, mapped_start = _memory_mb(process.pid)

        _, key, secret = emulator.users[0]
        token = presign_get_caller_identity(
            credentials=StaticCredentials(key, secret),
            region="us-east-1",
            cluster_id=CLUSTER_ID,
            now=datetime.now(UTC),
            endpoint_url=emulator.url,
        ).token
        body_path = work / "body.json"
        body_path.write_bytes(review_body(token))
        script = work / "steady.lua"
        script.write_text(_LUA)
        env = {
            "KUBEIAM_BENCH_BODY": str(body_path),
            "KUBEIAM_BENCH_PAUSE_MS": str(PAUSE_MS),
        }
        answer = server.review(token).json()
        if not answer.get("status", {}).get("authenticated"):
            raise RuntimeError(f"the bench token is not authenticated: {answer}")

        baseline: list[float] = []
        during: list[float] = []
        reload_s: list[float] = []
        version = 0
        for _ in range(ROUNDS):
            baseline.append(_steady_p99(port, script, env))
            version = 1 - version
            p99, seconds = _p99_with_reload(
                work / "server.log", port, script, env, mapping_path, texts[version]
            )
            during.append(p99)
            reload_s.append(seconds)
        time.sleep(1)
        pss_after, rss_after, mapped_after = _memory_mb(process.pid)
        return [
            paired_row(
                f"mapping file load, {ENTRIES:,} entries, as the server reads it "
                "(read, hash; YAML, checks, packed index in a child process)",
                "s",
                ours=load,
                peer=[LOAD_BUDGET_S],
                peer_name="issue budget",
                target="< 2 s (ratio > 1)",
            ),
            Row(
                name=(
                    f"kubeiam server memory (PSS of arbiter + {WORKERS} workers) "
                    f"serving {ENTRIES:,} entries, at start (ready in {ready_s:.1f} s; "
                    f"RSS sum {rss_start:.0f} MB; packed table mapped: "
                    f"{mapped_start:.0f} MB)"
                ),
                unit="MB",
                ours=pss_start,
                peer=MEMORY_BUDGET_MB,
                peer_name="issue budget",
                target="< 300 MB (ratio > 1)",
            ),
            Row(
                name=(
                    f"kubeiam server memory (PSS) after {ROUNDS} reloads of "
                    f"{ENTRIES:,} entries (RSS sum {rss_after:.0f} MB; packed "
                    f"tables mapped: {mapped_after:.0f} MB)"
                ),
                unit="MB",
                ours=pss_after,
                peer=MEMORY_BUDGET_MB,
                peer_name="issue budget",
                target="< 300 MB (ratio > 1)",
            ),
            paired_row(
                f"webhook p99 while a {ENTRIES:,}-entry file reloads "
                f"({CONNECTIONS} conns, {PAUSE_MS} ms pause; reload took "
                f"{median(reload_s):.1f} s in every worker)",
                "ms",
                ours=during,
                peer=baseline,
                peer_name="same server and load, no reload",
                labels=("during reload", "no reload"),
                target="within 2x of no reload (ratio >= 0.5)",
            ),
        ]
    finally:
        if server is not None:
            with contextlib.suppress(Exception):
                server.stop()
        emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


def _wrk(port: int, script: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            "wrk",
            "-t2",
            f"-c{CONNECTIONS}",
            f"-d{RUN_SECONDS}s",
            "--timeout",
            "10s",
            "--latency",
            "-s",
            str(script),
            f"https://127.0.0.1:{port}/authenticate",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **env},
        cwd=REPO,
    )


def _p99_ms(process: subprocess.Popen[str]) -> float:
    out, _ = process.communicate(timeout=RUN_SECONDS + 60)
    if re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors", out):
        raise RuntimeError(f"wrk saw failures: {out[-600:]}")
    match = _P99.search(out)
    if match is None:
        raise RuntimeError(f"no 99% latency in wrk's output: {out[-600:]}")
    return float(match[1]) * _UNIT_MS[match[2]]


def _steady_p99(port: int, script: Path, env: dict[str, str]) -> float:
    return _p99_ms(_wrk(port, script, env))


def _reloads(log: Path, start: int = 0) -> tuple[int, int]:
    """Mapping loads logged after byte ``start`` of the server's log; its end."""
    with log.open("rb") as fh:
        fh.seek(start)
        data = fh.read()
    return data.count(b"mappings loaded"), start + len(data)


def _p99_with_reload(
    log: Path,
    port: int,
    script: Path,
    env: dict[str, str],
    mapping_path: Path,
    text: str,
) -> tuple[float, float]:
    """p99 of a run with a reload one second in; the reload's duration."""
    _, offset = _reloads(log)
    process = _wrk(port, script, env)
    time.sleep(RELOAD_AT_S)
    written = time.perf_counter()
    _write(mapping_path, text)
    took: list[float] = []

    def watch() -> None:
        seen, end = 0, offset
        while process.poll() is None:
            count, end = _reloads(log, end)
            seen += count
            if seen >= WORKERS:
                took.append(time.perf_counter() - written)
                return
            time.sleep(0.02)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    p99 = _p99_ms(process)
    watcher.join(5)
    if not took:
        raise RuntimeError(
            f"the reload did not finish in every worker within the {RUN_SECONDS} s run"
        )
    return p99, took[0]
