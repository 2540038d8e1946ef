"""The import rules of docs/development.md: who imports whom, one door per library."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("kubeiam", "authenticator", "policy", "webhook", "kubeconfig")

# package -> first-party packages its non-cli modules may import (docs/development.md).
ALLOWED_FIRST_PARTY: dict[str, set[str]] = {
    "authenticator": {"authenticator"},
    "policy": {
        "policy",
        "authenticator.arn",
        "authenticator.errors",
        "authenticator.yamlio",
    },
    "kubeconfig": {"kubeconfig", "authenticator"},
    "webhook": {"webhook", "authenticator", "policy"},
    "kubeiam": {"kubeiam", "authenticator", "policy", "webhook", "kubeconfig"},
}

# third-party library -> modules allowed to import it (docs/development.md).
# "cli" means any cli module (cli.py or *_cli.py); "demo" the kubeiam demo.
DOORS: dict[str, set[str]] = {
    "botocore": {
        "authenticator.presign",
        "authenticator.ec2",
        "authenticator.emulator",
        "cli",
    },
    "boto3": {"authenticator.presign", "authenticator.ec2", "cli", "demo"},
    "requests": {"authenticator.sts"},
    "flask": {"webhook", "webhook.views", "webhook.authorize"},
    "kubernetes": {"webhook.sources"},
    "cryptography": {"kubeconfig.certs"},
    "moto": {"authenticator.emulator", "demo"},
    # One strict YAML door for every read and write (duplicate keys, aliases,
    # depth, account IDs as text): docs/development.md.
    "yaml": {"authenticator.yamlio"},
}


def _modules() -> list[tuple[str, Path]]:
    out = []
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            out.append((".".join(parts), path))
    return out


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def _is_cli(module: str) -> bool:
    last = module.rsplit(".", 1)[-1]
    return last == "cli" or last.endswith("_cli")


def _allowed(module: str, imported: str) -> bool:
    pkg = module.split(".")[0]
    top = imported.split(".")[0]
    if top not in PACKAGES:
        return True
    if _is_cli(module):
        return (
            not _is_cli(imported) or imported.split(".")[0] == pkg or pkg == "kubeiam"
        )
    if pkg == "kubeiam":
        return True
    if _is_cli(imported) or top == "kubeiam":
        return False
    allowed = ALLOWED_FIRST_PARTY[pkg]
    return (
        any(imported == a or imported.startswith(a + ".") for a in allowed)
        or top in allowed
    )


MODULES = _modules()


class TestLayering:
    """docs/development.md's import table, checked on every module."""

    @pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
    def test_first_party_imports_follow_the_table(
        self, module: str, path: Path
    ) -> None:
        """A module imports only the first-party packages the layering table allows."""
        bad = sorted(i for i in _imports(path) if not _allowed(module, i))
        assert not bad, f"{module} imports {bad}"

    @pytest.mark.parametrize(("module", "path"), MODULES, ids=[m for m, _ in MODULES])
    def test_libraries_stay_behind_their_door(self, module: str, path: Path) -> None:
        """Third-party libraries are imported only at their door."""
        kinds = {module}
        if _is_cli(module):
            kinds.add("cli")
        if module.startswith("kubeiam.demo"):
            kinds.add("demo")
        bad = []
        for imported in _imports(path):
            top = imported.split(".")[0]
            if top in DOORS and not (DOORS[top] & kinds):
                bad.append(imported)
        assert not bad, f"{module} imports {sorted(set(bad))} outside their door"

    def test_nothing_imports_webhook_or_kubeiam_from_below(self) -> None:
        """No authenticator/policy/kubeconfig module imports webhook or kubeiam."""
        for module, path in MODULES:
            if module.split(".")[0] in ("authenticator", "policy", "kubeconfig"):
                for imported in _imports(path):
                    assert imported.split(".")[0] not in ("webhook", "kubeiam"), (
                        module,
                        imported,
                    )


@pytest.mark.parametrize("pkg", PACKAGES)
def test_top_level_packages_come_from_this_repository(pkg: str) -> None:
    """Our packages, not the unrelated PyPI ones of the same name, are imported."""
    mod = importlib.import_module(pkg)
    assert mod.__file__ is not None
    assert Path(mod.__file__).resolve().is_relative_to(ROOT / pkg)
    assert hasattr(mod, "__all__")
