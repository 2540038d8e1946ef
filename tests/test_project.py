"""Project-wide rules: test selection, type-checked trees, self-contained docs."""

from __future__ import annotations

import ast
import re
import subprocess
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def _tracked_files() -> list[Path]:
    out = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [ROOT / name for name in out.splitlines() if (ROOT / name).is_file()]


def test_bare_pytest_deselects_the_soak() -> None:
    """addopts carry -m 'not slow'; `make soak` passes -m slow, which wins."""
    addopts = PYPROJECT["tool"]["pytest"]["ini_options"]["addopts"]
    assert addopts[addopts.index("-m") + 1] == "not slow"
    soak = (ROOT / "Makefile").read_text(encoding="utf-8").split("\nsoak:")[1]
    assert "-m slow" in soak.split("\n\n")[0]


def test_mypy_covers_bench() -> None:
    """bench/ is type-checked like the packages and the tests."""
    files = PYPROJECT["tool"]["mypy"]["files"]
    assert {"bench", "tests", "kubeiam", "authenticator", "webhook"} <= set(files)


def test_no_test_module_imports_another_test_module() -> None:
    """Shared helpers live in tests/fixtures/, not in another test_*.py."""
    bad = []
    for path in sorted((ROOT / "tests").rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.rsplit(".", 1)[-1].startswith("test_")
            ):
                bad.append(f"{path.relative_to(ROOT)}: {node.module}")
    assert not bad


def test_one_path_to_the_kubeiam_executable() -> None:
    """Only tests/fixtures/executables.py spells out where `kubeiam` lives."""
    pattern = re.compile(
        r'/ "\.venv/bin/kubeiam"|"\.venv" / "bin" / "kubeiam"'
        r'|executable\)\.with_name\("kubeiam"\)|BIN / "kubeiam"'
    )
    bad = [
        str(path.relative_to(ROOT))
        for path in sorted((ROOT / "tests").rglob("*.py"))
        if path.name not in ("executables.py", "test_project.py")
        and pattern.search(path.read_text(encoding="utf-8"))
    ]
    assert not bad


def test_nothing_points_outside_the_repository() -> None:
    """A clone has no SPEC.md, STYLE.md, ../shared or the internal reference files.

    Nothing may send readers to ``authentication.md``, ``kubernetes.md``,
    ``iam.md`` or ``shared/reference``: each rule is stated in docs/ or cited
    from its public upstream page.
    """
    pattern = re.compile(
        r"\bSPEC\b|\bSTYLE\b|STYLE\.md|SPEC\.md|\.\./shared|shared/reference"
        r"|\b(?:authentication|kubernetes|iam)\.md\b|\bk8s §"
    )
    bad = []
    for path in _tracked_files():
        if path == Path(__file__) or path.suffix in {".png", ".svg", ".der", ".gz"}:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        bad += [
            f"{path.relative_to(ROOT)}:{i}"
            for i, line in enumerate(text.splitlines(), 1)
            if pattern.search(line)
        ]
    assert not bad, bad[:20]


def test_demo_steps_do_not_import_the_demo() -> None:
    """The step modules import demo_context, never kubeiam.demo (no cycle)."""
    for path in sorted((ROOT / "kubeiam").glob("demo_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imported = {
            node.module
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.module
        }
        assert "kubeiam.demo" not in imported, path.name


def test_the_webhook_port_is_written_once() -> None:
    """21362 lives in authenticator.wire; every other product module imports it."""
    packages = ("kubeiam", "authenticator", "policy", "webhook", "kubeconfig", "bench")
    bad = [
        str(path.relative_to(ROOT))
        for pkg in packages
        for path in sorted((ROOT / pkg).rglob("*.py"))
        if "21362" in path.read_text(encoding="utf-8")
    ]
    assert bad == ["authenticator/wire.py"]
