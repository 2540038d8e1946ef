"""``kubeiam demo`` reads well to a newcomer (issue 14, item 8).

Actors are introduced before they act, account and cluster changes are said,
the files behind the printed commands exist and the commands work, no Python
class or function names appear, and a closing summary covers every step.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import pytest

from kubeiam.demo import STEPS
from tests.fixtures.executables import KUBEIAM


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One human-output demo run, with its files in a known directory."""
    files = tmp_path_factory.mktemp("demo-files")
    done = subprocess.run(
        [KUBEIAM, "demo", "--files-dir", str(files)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, files


def _commands(out: str) -> list[list[str]]:
    """The `kubeiam ...` commands the output tells the reader to run."""
    joined = re.sub(r" \\\n\s+", " ", out)
    return [
        shlex.split(line.strip())
        for line in joined.splitlines()
        if line.strip().startswith("kubeiam policy ")
    ]


def test_cast_before_the_first_step(run: tuple[str, Path]) -> None:
    """Every actor is named in the introduction, before step 1."""
    out, _ = run
    intro = out.split("[1/")[0]
    for actor in ("STS", "alice", "kubeiam token", "mallory", "shop", "API server"):
        assert actor in intro, actor


def test_account_and_cluster_changes_are_said(run: tuple[str, Path]) -> None:
    """The tier step says the account changes; the can-i step says it comes back."""
    out, _ = run
    tiers = out.split("[8/")[1].split("[9/")[0]
    can_i = out.split("[9/")[1]
    assert "The account changes" in tiers and "111122223333" in tiers
    assert re.search(r"Back to account \d{12} and the Kubernetes cluster", can_i)


def test_no_python_names(run: tuple[str, Path]) -> None:
    """No class names (…Error, …Client) or snake_case function names are shown."""
    out, _ = run
    assert not re.search(r"\b[A-Z][a-z]+(?:[A-Z][a-z]+)*(?:Error|Client)\b", out)
    assert not re.search(r"\b(?:verify_token|step_\w+|call_get_caller_identity)\b", out)


def test_printed_commands_run(run: tuple[str, Path]) -> None:
    """Each printed command reads files that exist and gives the demo's answer."""
    out, files = run
    commands = _commands(out)
    assert [c[2] for c in commands] == ["tiers", "can-i", "paths"]
    for argv in commands:
        for arg in argv:
            if arg.startswith(str(files)):
                assert Path(arg).exists(), arg
        done = subprocess.run(
            [KUBEIAM, *argv[1:]], capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, (argv, done.stderr)
        if argv[2] == "can-i":
            assert done.stdout == "yes\n"
        elif argv[2] == "paths":
            assert "aws-admin" in done.stdout and "[irsa]" in done.stdout
        else:
            assert "KI-H030" in done.stdout  # the worst finding the demo showed


def test_closing_summary_covers_every_step(run: tuple[str, Path]) -> None:
    """'What happened:' has one numbered line per step, and says where files are."""
    out, files = run
    summary = out.split("What happened:\n", 1)[1]
    lines = re.findall(r"^  (\d+)\. (.+)$", summary, re.MULTILINE)
    assert [int(n) for n, _ in lines] == list(range(1, len(STEPS) + 1))
    # These steps say what they showed (a step added later falls back to its title).
    own = {"sts", "iam", "mint", "decode", "verify", "reject", "webhook", "tiers"}
    own.update({"can-i", "paths"})
    for step, (_, text) in zip(STEPS, lines, strict=True):
        if step.name in own:
            assert text != step.title, step.name
    assert f"are in {files}" in summary
