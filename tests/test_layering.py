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
        "authenticator.findings",
        "authenticator.yamlio",
    },
    "kubeconfig": {"kubeconfig", "authenticator"},
    "webhook": {"webhook", "authenticator", "policy"},
    "kubeiam": {"kubeiam", "authenticator", "policy", "webhook", "kubeconfig"},
}

# policy subpackage -> the policy modules it may import (cli modules included):
# RBAC knows nothing of IAM and IAM nothing of RBAC; tiers sit on IAM (and RBAC
# for EKS); access paths on all three. policy.errors is shared by all.
POLICY_LAYERS: dict[str, set[str]] = {
    "policy.iam": {"policy.iam", "policy.errors"},
    "policy.rbac": {"policy.rbac", "policy.errors"},
    "policy.tiers": {"policy.tiers", "policy.iam", "policy.rbac", "policy.errors"},
    "policy.paths": {
        "policy.paths",
        "policy.tiers",
        "policy.iam",
        "policy.rbac",
        "policy.errors",
    },
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
    "kubernetes": {"webhook.sources_kube"},
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


def _within(name: str, prefixes: set[str]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _policy_layer(module: str) -> str | None:
    return next((layer for layer in POLICY_LAYERS if _within(module, {layer})), None)


def _allowed(module: str, imported: str) -> bool:
    pkg = module.split(".")[0]
    top = imported.split(".")[0]
    if top not in PACKAGES:
        return True
    layer = _policy_layer(module)
    if (
        layer is not None
        and top == "policy"
        and imported != "policy"
        and not _within(imported, POLICY_LAYERS[layer])
    ):
        return False
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
        """A module imports only the first-party packages its table row allows."""
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


def _defined_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names


def _declared_all(tree: ast.Module) -> list[str] | None:
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
            assert isinstance(value, ast.List | ast.Tuple), "__all__ is a literal"
            return [
                e.value
                for e in value.elts
                if isinstance(e, ast.Constant) and isinstance(e.value, str)
            ]
    return None


POLICY_MODULES = [(m, p) for m, p in MODULES if m.split(".")[0] == "policy"]


class TestPolicyLayout:
    """policy/ is iam/, rbac/, tiers/ and paths/, each module its own names."""

    def test_rbac_imports_nothing_from_iam(self) -> None:
        """No RBAC module (its CLI included) imports the IAM engine."""
        bad = [
            (module, imported)
            for module, path in POLICY_MODULES
            if module.startswith("policy.rbac")
            for imported in _imports(path)
            if imported == "policy.iam" or imported.startswith("policy.iam.")
        ]
        assert not bad

    def test_every_policy_module_sits_in_an_area(self) -> None:
        """Only the shared errors and the dispatcher live at policy/'s top."""
        top = sorted(
            m for m, _ in POLICY_MODULES if m != "policy" and _policy_layer(m) is None
        )
        assert top == ["policy.cli", "policy.errors"]

    def test_each_area_has_one_cli_module(self) -> None:
        """policy/cli.py dispatches to exactly one CLI module per area."""
        from policy.cli import SUBCOMMANDS

        clis = {m for m, _ in POLICY_MODULES if _is_cli(m) and m != "policy.cli"}
        assert clis == {f"{layer}.cli" for layer in POLICY_LAYERS}
        assert {module for module, _ in SUBCOMMANDS.values()} == clis

    @pytest.mark.parametrize(
        ("module", "path"), POLICY_MODULES, ids=[m for m, _ in POLICY_MODULES]
    )
    def test_all_lists_only_names_defined_here(self, module: str, path: Path) -> None:
        """No module re-exports another's names through a copied ``__all__``."""
        tree = ast.parse(path.read_text(encoding="utf-8"))
        declared = _declared_all(tree)
        if declared is None:
            return
        foreign = sorted(set(declared) - _defined_names(tree))
        assert not foreign, f"{module}.__all__ re-exports {foreign}"


@pytest.mark.parametrize("pkg", PACKAGES)
def test_top_level_packages_come_from_this_repository(pkg: str) -> None:
    """Our packages, not the unrelated PyPI ones of the same name, are imported."""
    mod = importlib.import_module(pkg)
    assert mod.__file__ is not None
    assert Path(mod.__file__).resolve().is_relative_to(ROOT / pkg)
    assert hasattr(mod, "__all__")


# The one home of the finding and severity types every lint and report shares.
FINDINGS_HOME = "authenticator.findings"
SEVERITY_WORDS = {"critical", "high", "medium", "low", "info", "error", "warning"}


def _classes(tree: ast.Module) -> list[ast.ClassDef]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.ClassDef)]


def _is_severity_enum(node: ast.ClassDef) -> bool:
    """A class whose body assigns two or more severity words: a severity scale."""
    words = {
        stmt.value.value.lower()
        for stmt in node.body
        if isinstance(stmt, ast.Assign)
        and isinstance(stmt.value, ast.Constant)
        and isinstance(stmt.value.value, str)
    }
    return len(words & SEVERITY_WORDS) >= 2


def _severity_fields(node: ast.ClassDef) -> list[tuple[str, str]]:
    """``severity``-named class attributes and their annotations."""
    return [
        (stmt.target.id, ast.unparse(stmt.annotation))
        for stmt in node.body
        if isinstance(stmt, ast.AnnAssign)
        and isinstance(stmt.target, ast.Name)
        and "severity" in stmt.target.id.lower()
    ]


class TestOneFindingType:
    """Lint, tiers and paths share one Finding and one Severity (one home)."""

    def test_one_finding_and_one_severity_class(self) -> None:
        """Only authenticator.findings defines a Finding or a severity scale."""
        found = sorted(
            (module, node.name)
            for module, path in MODULES
            for node in _classes(ast.parse(path.read_text(encoding="utf-8")))
            if node.name in ("Finding", "Severity") or _is_severity_enum(node)
        )
        assert found == [(FINDINGS_HOME, "Finding"), (FINDINGS_HOME, "Severity")]

    def test_every_severity_field_is_the_shared_enum(self) -> None:
        """No class carries a severity as a bare string or another type."""
        bad = sorted(
            (module, node.name, name, annotation)
            for module, path in MODULES
            for node in _classes(ast.parse(path.read_text(encoding="utf-8")))
            for name, annotation in _severity_fields(node)
            if annotation != "Severity"
        )
        assert not bad

    def test_the_home_imports_nothing_first_party(self) -> None:
        """Every package may import the home, so it imports none of them."""
        path = ROOT / (FINDINGS_HOME.replace(".", "/") + ".py")
        assert not {i for i in _imports(path) if i.split(".")[0] in PACKAGES}

    def test_every_user_imports_the_one_home(self) -> None:
        """Mapping lint, policy lint, tiers and paths all import the shared types."""
        users = {
            "authenticator.mapping_lint",
            "policy.iam.model",
            "policy.tiers.model",
            "policy.paths.query",
        }
        for module, path in MODULES:
            if module in users:
                assert f"{FINDINGS_HOME}.Severity" in _imports(path) or (
                    f"{FINDINGS_HOME}.Finding" in _imports(path)
                ), module
