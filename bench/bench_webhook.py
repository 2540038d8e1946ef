"""The webhook under gunicorn, driven by wrk: warm reviews/s vs a bare Flask echo; cold.

Every server is a real process started with the *same* gunicorn options
(``webhook.server_cli.build_gunicorn_options``: the GuardedThreadWorker,
``WORKERS`` x ``THREADS_PER_WORKER``, TLS, keep-alive, JSON access log) from
the same kind of config file. The client is wrk (a native load tool; loopback
only, a fixed duration): wrk cannot present a client certificate, so these
servers run TLS without ``clientCAFile`` (server TLS is the same on every side).

- warm: every wrk connection re-sends one token, so each review after the first
  is a verification-cache hit; against the echo app (parse the JSON body,
  answer a TokenReview-shaped JSON: the floor any Flask TokenReview server
  pays) at 16, 32 and 64 connections, rounds alternating echo / webhook.
- cold: every review carries a new token (distinct signing times), so each one
  is an STS call to the embedded STS emulator; this tree against the code of
  :data:`BASE_COMMIT` (the tree before issue 15's cold-path work, extracted
  with ``git archive``, run in the same venv) on the *same* emulator, rounds
  alternating. Plus p50/p99 of sequential cold and warm reviews.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import Row, median, paired_row, process_tree

if TYPE_CHECKING:
    from tests.fixtures.webhook import PKI, WebhookServer

REPO = Path(__file__).resolve().parent.parent
# gunicorn settings of the comparison (docs/operations.md: "start with workers: 2,
# threads: 16").
WORKERS = 2
THREADS_PER_WORKER = 16
# wrk: connections per warm run, seconds per run, rounds per server and count.
WARM_CONNECTIONS = (16, 32, 64)
WARM_SECONDS = 4
ROUNDS = 2
WRK_THREADS = 2
# Cold: connections, seconds per run and fresh tokens minted for each run (a run
# that needs more fails loudly rather than turning into cache hits).
COLD_CONNECTIONS = 16
COLD_SECONDS = 3
COLD_TOKENS = 8000
COLD_USERS = 16
# Sequential latency samples.
LATENCY_REVIEWS = 200
CLUSTER_ID = "bench-cluster"
WARM_TARGET = 0.85
COLD_TARGET = 2.0
# The "before" of the cold row: main before issue 15 (kept-alive STS connections,
# cheaper URL handling, the emulator's keep-alive). KUBEIAM_BENCH_BASE overrides.
BASE_COMMIT = "45a58074ebffa4f20431b53d931e826a0ffff698"

_WARM_LUA = """
wrk.method = "POST"
wrk.path = "/authenticate?timeout=30s"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json, */*"
wrk.body = io.open(os.getenv("KUBEIAM_BENCH_BODY")):read("*a")
"""

# Each wrk thread takes every WRK_THREADS-th body of the file, each body once;
# past the end it asks for a path that does not exist (a non-2xx the bench
# refuses), so a run never turns into cache hits unnoticed.
_COLD_LUA = """
local n = 0
function setup(thread)
  thread:set("offset", n)
  n = n + 1
end
function init(args)
  bodies = {}
  for line in io.lines(os.getenv("KUBEIAM_BENCH_BODIES")) do
    bodies[#bodies + 1] = line
  end
  step = tonumber(os.getenv("KUBEIAM_BENCH_STEP"))
  index = offset + 1
  headers = {["Content-Type"] = "application/json"}
end
function request()
  local i = index
  index = index + step
  if i > #bodies then
    return wrk.format("POST", "/tokens-exhausted", headers, "{}")
  end
  return wrk.format("POST", "/authenticate?timeout=30s", headers, bodies[i])
end
"""


def echo_app() -> object:
    """A bare Flask app: parse the JSON body, answer a TokenReview-shaped JSON."""
    from flask import Flask, Response, request

    app = Flask("echo")

    @app.post("/authenticate")
    def authenticate() -> Response:
        doc = json.loads(request.get_data())
        body = {
            "apiVersion": doc.get("apiVersion"),
            "kind": "TokenReview",
            "status": {"authenticated": True, "user": {"username": "echo"}},
        }
        return Response(json.dumps(body), mimetype="application/json")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    return app


def serve_echo(config: str) -> int:
    """Run :func:`echo_app` under the webhook's gunicorn options for ``config``."""
    from webhook.server_cli import build_gunicorn_options, run_gunicorn
    from webhook.settings import load_settings

    settings = load_settings(Path(config))
    return run_gunicorn(build_gunicorn_options(settings), echo_app)


def _context(pki: PKI) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(pki.ca_file))


def review_body(token: str) -> bytes:
    from tests.fixtures.webhook import tokenreview

    return json.dumps(tokenreview(token), separators=(",", ":")).encode()


_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, */*"}


def _post(conn: http.client.HTTPSConnection, body: bytes) -> bytes:
    conn.request("POST", "/authenticate?timeout=30s", body, _HEADERS)
    resp = conn.getresponse()
    data = resp.read()
    if resp.status != 200:
        raise RuntimeError(f"unexpected {resp.status}: {data[:200]!r}")
    return data


def _latencies(port: int, ctx: ssl.SSLContext, bodies: Sequence[bytes]) -> list[float]:
    """Milliseconds per review, one connection, sequential."""
    conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=60)
    out: list[float] = []
    try:
        for body in bodies:
            start = time.perf_counter()
            data = _post(conn, body)
            out.append((time.perf_counter() - start) * 1000)
            if b'"authenticated":true' not in data:
                raise RuntimeError(f"cold review not authenticated: {data[:200]!r}")
    finally:
        conn.close()
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def _start_echo(config: Path, log: Path) -> subprocess.Popen[bytes]:
    from tests.fixtures.webhook import server_env

    code = (
        "import sys; from bench.bench_webhook import serve_echo; "
        "sys.exit(serve_echo(sys.argv[1]))"
    )
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-c", code, str(config)],
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**server_env(), "PYTHONPATH": str(REPO)},
            start_new_session=True,
        )


def _wrk(
    port: int, script: Path, connections: int, seconds: int, env: dict[str, str]
) -> float:
    """Run wrk against 127.0.0.1:port; return requests/s (all answered 2xx)."""
    out = subprocess.run(
        [
            "wrk",
            f"-t{min(WRK_THREADS, connections)}",
            f"-c{connections}",
            f"-d{seconds}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            f"https://127.0.0.1:{port}/authenticate",
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
        env={**os.environ, **env},
    ).stdout
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: (.*)", out)
    if bad or errors:
        raise RuntimeError(f"wrk saw failures: {out[-600:]}")
    match = re.search(r"Requests/sec:\s+([0-9.]+)", out)
    if not match:
        raise RuntimeError(f"no Requests/sec in wrk's output: {out[-600:]}")
    return float(match[1])


def start_server(
    config: Path, log: Path, *, tree: Path | None = None
) -> subprocess.Popen[bytes]:
    """``kubeiam server`` from this tree, or from ``tree`` (same venv)."""
    from tests.fixtures.webhook import server_env

    env = server_env()
    cwd = REPO
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
        cwd = tree
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "kubeiam", "server", "--config", str(config)],
            cwd=cwd,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )


def _base_tree(work: Path) -> Path | None:
    """The base commit's tree (``git archive``), or None when git cannot give it."""
    commit = os.environ.get("KUBEIAM_BENCH_BASE", BASE_COMMIT)
    tree = work / "base"
    tree.mkdir()
    try:
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", "--format=tar", commit],
            capture_output=True,
            check=True,
            timeout=120,
        ).stdout
        subprocess.run(
            ["tar", "-x", "-C", str(tree)], input=archive, check=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError) as exc:
        print(f"bench_webhook: no base tree ({exc}); cold row without before")
        return None
    return tree


# The embedded STS in its own process (this tree's or the base tree's code):
# prints its URL and users as one JSON line, serves until stdin closes.
_EMULATOR_CODE = """
import json, sys
from authenticator.emulator import STSEmulator
sts = STSEmulator()
sts.start()
users = [sts.create_user(f"bench-user-{i}") for i in range(int(sys.argv[1]))]
doc = {"url": sts.url, "users": [[u.arn, u.access_key_id, u.secret_access_key]
                                 for u in users]}
print(json.dumps(doc), flush=True)
sys.stdin.read()
sts.stop()
"""


@dataclass
class _Emulator:
    process: subprocess.Popen[bytes]
    url: str
    users: list[tuple[str, str, str]]

    def stop(self) -> None:
        if self.process.stdin is not None:
            with contextlib.suppress(OSError):
                self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_emulator(tree: Path | None, log: Path) -> _Emulator:
    from tests.fixtures.webhook import server_env

    env = server_env()
    if tree is not None:
        env["PYTHONPATH"] = str(tree)
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-c", _EMULATOR_CODE, str(COLD_USERS)],
            cwd=tree or REPO,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            env=env,
            start_new_session=True,
        )
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line:
        process.kill()
        raise RuntimeError(f"the STS emulator did not start: {log.read_text()[-500:]}")
    doc = json.loads(line)
    users = [(str(a), str(k), str(sk)) for a, k, sk in doc["users"]]
    return _Emulator(process, str(doc["url"]), users)


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its children (gunicorn's workers)."""
    ticks = 0
    for p in process_tree(pid):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def run() -> list[Row]:
    """Measure the webhook against the bare echo and its base commit; the rows."""
    if shutil.which("wrk") is None:
        raise RuntimeError("wrk is not installed (make deps-system installs it)")
    from authenticator.presign import StaticCredentials, presign_get_caller_identity
    from tests.fixtures.webhook import (
        WebhookServer,
        free_port,
        make_pki,
        wait_ready,
        write_config,
    )

    work = Path(tempfile.mkdtemp(prefix="kubeiam-bench-webhook-"))
    base_tree = _base_tree(work)
    servers: dict[str, WebhookServer] = {}
    emulators: dict[str, _Emulator] = {}
    try:
        emulators["new"] = start_emulator(None, work / "sts-new.log")
        if base_tree is not None:
            emulators["base"] = start_emulator(base_tree, work / "sts-base.log")
        # Both emulators name the same users (moto's default account), so one
        # mapping serves every server; distinct tokens differ by signer and
        # signing second (a token is valid for 15 minutes).
        arns = {arn for e in emulators.values() for arn, _, _ in e.users}
        mapping = {
            "mapUsers": [
                {"userarn": arn, "username": f"bench-{i}", "groups": ["bench"]}
                for i, arn in enumerate(sorted(arns))
            ]
        }
        pki = make_pki(work)
        mapping_path = work / "mapping.yaml"
        mapping_path.write_text(json.dumps(mapping))
        kinds: dict[str, tuple[Path | None, bool]] = {
            "webhook": (None, False),
            "echo": (None, True),
        }
        if base_tree is not None:
            kinds["base"] = (base_tree, False)
        for name, (tree, is_echo) in kinds.items():
            directory = work / f"server-{name}"
            directory.mkdir()
            port = free_port()
            config = write_config(
                directory,
                pki=pki,
                port=port,
                mapping_path=mapping_path,
                cluster_id=CLUSTER_ID,
                extra_endpoints=[e.url for e in emulators.values()],
                mtls=False,
                workers=WORKERS,
                threads=THREADS_PER_WORKER,
            )
            log = directory / "server.log"
            process = (
                _start_echo(config, log)
                if is_echo
                else start_server(config, log, tree=tree)
            )
            servers[name] = WebhookServer(
                url=f"https://127.0.0.1:{port}",
                pki=pki,
                config_path=config,
                mapping_path=mapping_path,
                output_path=log,
                process=process,
            )
        for server in servers.values():
            wait_ready(server)
        now = datetime.now(UTC)
        minters: dict[str, Callable[[], bytes]] = {}
        for name, emulator in emulators.items():
            signers = [StaticCredentials(k, sk) for _, k, sk in emulator.users]
            counter = iter(range(len(signers) * 600))

            def mint(
                signers: list[StaticCredentials] = signers,
                counter: Iterator[int] = counter,
                url: str = emulator.url,
            ) -> bytes:
                i = next(counter)
                token = presign_get_caller_identity(
                    credentials=signers[i % len(signers)],
                    region="us-east-1",
                    cluster_id=CLUSTER_ID,
                    now=now - timedelta(seconds=i // len(signers)),
                    endpoint_url=url,
                ).token
                return review_body(token)

            minters[name] = mint
        return _measure(work, servers, minters)
    finally:
        for server in servers.values():
            with contextlib.suppress(Exception):
                server.stop()
        for emulator in emulators.values():
            emulator.stop()
        shutil.rmtree(work, ignore_errors=True)


def _cold(port: int, pid: int, script: Path, bodies: Path) -> tuple[float, float]:
    """One cold wrk run: (reviews/s, server CPU ms per review)."""
    env = {
        "KUBEIAM_BENCH_BODIES": str(bodies),
        "KUBEIAM_BENCH_STEP": str(min(WRK_THREADS, COLD_CONNECTIONS)),
    }
    cpu = _cpu_seconds(pid)
    rps = _wrk(port, script, COLD_CONNECTIONS, COLD_SECONDS, env)
    cpu = _cpu_seconds(pid) - cpu
    return rps, 1000 * cpu / (rps * COLD_SECONDS)


def _measure(
    work: Path,
    servers: dict[str, WebhookServer],
    minters: dict[str, Callable[[], bytes]],
) -> list[Row]:
    mint = minters["new"]
    ports = {name: int(s.url.rsplit(":", 1)[1]) for name, s in servers.items()}
    warm_lua = work / "warm.lua"
    warm_lua.write_text(_WARM_LUA)
    cold_lua = work / "cold.lua"
    cold_lua.write_text(_COLD_LUA)
    warm_body = work / "warm.json"
    warm_body.write_bytes(mint())
    rows: list[Row] = []
    warm_env = {"KUBEIAM_BENCH_BODY": str(warm_body)}
    label = f"gunicorn GuardedThreadWorker {WORKERS}x{THREADS_PER_WORKER}, TLS, wrk"
    for connections in WARM_CONNECTIONS:
        echo_rps: list[float] = []
        hook_rps: list[float] = []
        for _ in range(ROUNDS):
            echo_rps.append(
                _wrk(ports["echo"], warm_lua, connections, WARM_SECONDS, warm_env)
            )
            hook_rps.append(
                _wrk(ports["webhook"], warm_lua, connections, WARM_SECONDS, warm_env)
            )
        ratio = median(hook_rps) / median(echo_rps)
        rows.append(
            paired_row(
                f"webhook TokenReview/s, warm cache, {connections} connections "
                f"({label})",
                "reviews/s",
                ours=hook_rps,
                peer=echo_rps,
                peer_name="bare Flask JSON echo, same gunicorn",
                labels=(f"kubeiam c{connections}", f"echo c{connections}"),
                higher_is_better=True,
                target=f">= {WARM_TARGET:.0%} of echo (got {ratio:.0%})",
            )
        )
    if "base" in ports:
        rows += _cold_rows(work, servers, minters, cold_lua, label)
    ctx = _context(servers["webhook"].pki)
    cold = _latencies(ports["webhook"], ctx, [mint() for _ in range(LATENCY_REVIEWS)])
    warm = _latencies(ports["webhook"], ctx, [warm_body.read_bytes()] * LATENCY_REVIEWS)
    rows += [
        Row(
            name="webhook latency p50, cold (new token, embedded STS called)",
            unit="ms",
            ours=_percentile(cold, 0.50),
            peer=None,
            ours_min=min(cold),
            ours_max=max(cold),
            samples={"cold": cold},
        ),
        Row(
            name="webhook latency p99, cold (new token, embedded STS called)",
            unit="ms",
            ours=_percentile(cold, 0.99),
            peer=None,
        ),
        Row(
            name="webhook latency p50, warm (cache hit), sequential",
            unit="ms",
            ours=_percentile(warm, 0.50),
            peer=None,
            ours_min=min(warm),
            ours_max=max(warm),
            samples={"warm": warm},
        ),
    ]
    return rows


def _cold_rows(
    work: Path,
    servers: dict[str, WebhookServer],
    minters: dict[str, Callable[[], bytes]],
    script: Path,
    label: str,
) -> list[Row]:
    """Cold reviews/s, this tree against the base commit, two ways.

    Same emulator: both servers call this tree's emulator (the server-side
    gain alone). Each its own: the base server calls the base tree's emulator
    (today's whole setup, connection-per-call emulator included).
    """
    port = {name: int(s.url.rsplit(":", 1)[1]) for name, s in servers.items()}
    pid = {name: s.process.pid for name, s in servers.items()}
    samples: dict[str, list[float]] = {
        k: [] for k in ("new", "base_same", "base_own", "cpu_new", "cpu_base")
    }
    for r in range(ROUNDS):
        bodies = {}
        for name, mint in minters.items():
            bodies[name] = work / f"cold-{name}-{r}.jsonl"
            lines = b"\n".join(mint() for _ in range(COLD_TOKENS))
            bodies[name].write_bytes(lines + b"\n")
        rps, cpu = _cold(port["webhook"], pid["webhook"], script, bodies["new"])
        samples["new"].append(rps)
        samples["cpu_new"].append(cpu)
        rps, cpu = _cold(port["base"], pid["base"], script, bodies["new"])
        samples["base_same"].append(rps)
        samples["cpu_base"].append(cpu)
        if "base" in bodies:
            rps, _ = _cold(port["base"], pid["base"], script, bodies["base"])
            samples["base_own"].append(rps)
    base = BASE_COMMIT[:8]
    rows = [
        paired_row(
            f"webhook cold TokenReview/s (new token each), same STS emulator, "
            f"{COLD_CONNECTIONS} connections ({label})",
            "reviews/s",
            ours=samples["new"],
            peer=samples["base_same"],
            peer_name=f"same server at {base} (before issue 15), same emulator",
            labels=("kubeiam cold", "before cold"),
            higher_is_better=True,
            target=f">= {COLD_TARGET:g}x before "
            f"(got {median(samples['new']) / median(samples['base_same']):.2f}x)",
        ),
        paired_row(
            "webhook server CPU per cold review (gunicorn arbiter + workers)",
            "ms",
            ours=samples["cpu_new"],
            peer=samples["cpu_base"],
            peer_name=f"same server at {base}, same emulator",
            labels=("kubeiam cpu", "before cpu"),
        ),
    ]
    if samples["base_own"]:
        ratio = median(samples["new"]) / median(samples["base_own"])
        rows.append(
            paired_row(
                "webhook cold TokenReview/s, each with its own tree's STS emulator "
                "(today's setup: the emulator closed every connection)",
                "reviews/s",
                ours=samples["new"],
                peer=samples["base_own"],
                peer_name=f"server and emulator at {base}",
                labels=("kubeiam cold", "before+emulator cold"),
                higher_is_better=True,
                target=f">= {COLD_TARGET:g}x before (got {ratio:.2f}x)",
            )
        )
    return rows
