"""Read RBAC objects from YAML/JSON files and directories, with validation.

``parse_rbac_documents`` is pure (documents in, objects out);
``load_rbac_paths`` does the file I/O. Files may hold several YAML documents,
``List`` objects (``kind: List`` or ``RoleList`` ... with ``items``), and other
kinds (Deployments, ConfigMaps ...), which are skipped. Directories are read
recursively in name order (``*.yaml``, ``*.yml``, ``*.json``).

RBAC objects are validated as the API server validates them on create
(``pkg/apis/rbac/validation``); a failure raises ``InvalidPolicyError`` whose
location reads ``FILE[DOCUMENT]/field/path``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from policy.errors import InvalidPolicyError, describe_parse_error
from policy.rbac.aggregate import build_rbac_policy
from policy.rbac.evaluator import RBACPolicy
from policy.rbac.model import (
    RBAC_GROUP,
    Binding,
    ClusterRole,
    LabelSelector,
    LabelSelectorRequirement,
    PolicyRule,
    Role,
    RoleRef,
    Subject,
)

__all__ = ["RBACObjects", "load_rbac_paths", "parse_rbac_documents", "parse_rule"]

# apiVersions the API server has served for RBAC objects.
_RBAC_VERSIONS = frozenset(f"{RBAC_GROUP}/{v}" for v in ("v1", "v1beta1", "v1alpha1"))
_KINDS = frozenset({"Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"})
# metav1.LabelSelectorOperator values.
_OPERATORS = frozenset({"In", "NotIn", "Exists", "DoesNotExist"})
# kubectl's namespace when a manifest has none and no -n is given.
DEFAULT_NAMESPACE = "default"
_SUFFIXES = (".yaml", ".yml", ".json")


@dataclass(slots=True)
class RBACObjects:
    """Parsed RBAC objects, in file order."""

    roles: list[Role] = field(default_factory=list)
    cluster_roles: list[ClusterRole] = field(default_factory=list)
    bindings: list[Binding] = field(default_factory=list)

    def extend(self, other: RBACObjects) -> None:
        """Append another set of objects.

        Args:
            other: Objects to add.
        """
        self.roles.extend(other.roles)
        self.cluster_roles.extend(other.cluster_roles)
        self.bindings.extend(other.bindings)

    def policy(self) -> RBACPolicy:
        """Build the indexed policy (aggregation applied).

        Returns:
            The policy.
        """
        return build_rbac_policy(self.roles, self.cluster_roles, self.bindings)


class _Where:
    """Error location helper: ``source`` is ``FILE[DOC]``."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, pointer: str, message: str) -> InvalidPolicyError:
        return InvalidPolicyError(message, pointer=pointer, policy=self.source)


def _strings(value: object, where: _Where, pointer: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise where.fail(pointer, "must be a list of strings")
    return tuple(value)


def _mapping(value: object, where: _Where, pointer: str) -> Mapping[str, object]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise where.fail(pointer, "must be an object")
    return value


def _text(value: object, where: _Where, pointer: str, *, required: bool = True) -> str:
    if value is None or value == "":
        if required:
            raise where.fail(pointer, "is required")
        return ""
    if not isinstance(value, str):
        raise where.fail(pointer, "must be a string")
    return value


def parse_rule(
    raw: object, *, namespaced: bool, where: _Where | None = None, pointer: str = ""
) -> PolicyRule:
    """Parse and validate one PolicyRule (``ValidatePolicyRule``).

    Args:
        raw: The rule object.
        namespaced: True for a Role (non-resource URLs are not allowed there).
        where: Error location (internal).
        pointer: The rule's path in the document.

    Returns:
        The rule.

    Raises:
        InvalidPolicyError: The rule is malformed.
    """
    where = where or _Where("rule")
    m = _mapping(raw, where, pointer)
    rule = PolicyRule(
        verbs=_strings(m.get("verbs"), where, f"{pointer}/verbs"),
        api_groups=_strings(m.get("apiGroups"), where, f"{pointer}/apiGroups"),
        resources=_strings(m.get("resources"), where, f"{pointer}/resources"),
        resource_names=_strings(
            m.get("resourceNames"), where, f"{pointer}/resourceNames"
        ),
        non_resource_urls=_strings(
            m.get("nonResourceURLs"), where, f"{pointer}/nonResourceURLs"
        ),
    )
    if not rule.verbs:
        raise where.fail(f"{pointer}/verbs", "verbs must contain at least one value")
    if rule.non_resource_urls:
        if namespaced:
            raise where.fail(
                f"{pointer}/nonResourceURLs",
                "namespaced rules cannot apply to non-resource URLs",
            )
        if rule.api_groups or rule.resources or rule.resource_names:
            raise where.fail(
                f"{pointer}/nonResourceURLs",
                "rules cannot apply to both regular resources and non-resource URLs",
            )
        return rule
    if not rule.api_groups:
        raise where.fail(
            f"{pointer}/apiGroups", "resource rules must supply at least one api group"
        )
    if not rule.resources:
        raise where.fail(
            f"{pointer}/resources", "resource rules must supply at least one resource"
        )
    return rule


def _selector(raw: object, where: _Where, pointer: str) -> LabelSelector:
    m = _mapping(raw, where, pointer)
    labels = _mapping(m.get("matchLabels"), where, f"{pointer}/matchLabels")
    pairs = tuple(
        (str(k), _text(v, where, f"{pointer}/matchLabels/{k}"))
        for k, v in labels.items()
    )
    exprs: list[LabelSelectorRequirement] = []
    raw_exprs = m.get("matchExpressions") or []
    if not isinstance(raw_exprs, list):
        raise where.fail(f"{pointer}/matchExpressions", "must be a list")
    for i, e in enumerate(raw_exprs):
        p = f"{pointer}/matchExpressions/{i}"
        em = _mapping(e, where, p)
        op = _text(em.get("operator"), where, f"{p}/operator")
        values = _strings(em.get("values"), where, f"{p}/values")
        if op not in _OPERATORS:
            raise where.fail(
                f"{p}/operator", f"{op!r} is not a valid label selector operator"
            )
        if op in ("In", "NotIn") and not values:
            raise where.fail(
                f"{p}/values", "must be specified when operator is In or NotIn"
            )
        if op in ("Exists", "DoesNotExist") and values:
            raise where.fail(
                f"{p}/values",
                "may not be specified when operator is Exists or DoesNotExist",
            )
        exprs.append(
            LabelSelectorRequirement(
                _text(em.get("key"), where, f"{p}/key"), op, values
            )
        )
    return LabelSelector(pairs, tuple(exprs))


def _subjects(raw: object, where: _Where, *, namespaced: bool) -> tuple[Subject, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise where.fail("/subjects", "must be a list")
    out: list[Subject] = []
    for i, s in enumerate(raw):
        p = f"/subjects/{i}"
        m = _mapping(s, where, p)
        kind = _text(m.get("kind"), where, f"{p}/kind")
        name = _text(m.get("name"), where, f"{p}/name")
        ns = _text(m.get("namespace"), where, f"{p}/namespace", required=False)
        group = _text(m.get("apiGroup"), where, f"{p}/apiGroup", required=False)
        if kind in ("User", "Group"):
            # v1 defaulting: User/Group subjects get apiGroup rbac.authorization.k8s.io.
            group = group or RBAC_GROUP
            if group != RBAC_GROUP:
                raise where.fail(
                    f"{p}/apiGroup", f"must be {RBAC_GROUP!r} for kind {kind}"
                )
        elif kind == "ServiceAccount":
            if group:
                raise where.fail(
                    f"{p}/apiGroup", "must be empty for kind ServiceAccount"
                )
            if not namespaced and not ns:
                raise where.fail(
                    f"{p}/namespace", "is required for a ServiceAccount subject"
                )
        else:
            raise where.fail(
                f"{p}/kind", f"{kind!r} is not User, Group or ServiceAccount"
            )
        out.append(Subject(kind, name, ns, group))
    return tuple(out)


def _object(
    doc: Mapping[str, object], where: _Where, default_namespace: str
) -> RBACObjects:
    kind = doc.get("kind")
    out = RBACObjects()
    meta = _mapping(doc.get("metadata"), where, "/metadata")
    name = _text(meta.get("name"), where, "/metadata/name")
    namespaced = kind in ("Role", "RoleBinding")
    namespace = ""
    if namespaced:
        namespace = _text(
            meta.get("namespace"), where, "/metadata/namespace", required=False
        )
        namespace = namespace or default_namespace
    if kind in ("Role", "ClusterRole"):
        raw_rules = doc.get("rules") or []
        if not isinstance(raw_rules, list):
            raise where.fail("/rules", "must be a list")
        rules = tuple(
            parse_rule(r, namespaced=namespaced, where=where, pointer=f"/rules/{i}")
            for i, r in enumerate(raw_rules)
        )
        if kind == "Role":
            out.roles.append(Role(name, namespace, rules))
            return out
        labels = _mapping(meta.get("labels"), where, "/metadata/labels")
        aggregation = None
        if doc.get("aggregationRule") is not None:
            agg = _mapping(doc.get("aggregationRule"), where, "/aggregationRule")
            sels = agg.get("clusterRoleSelectors") or []
            if not isinstance(sels, list):
                raise where.fail(
                    "/aggregationRule/clusterRoleSelectors", "must be a list"
                )
            aggregation = tuple(
                _selector(s, where, f"/aggregationRule/clusterRoleSelectors/{i}")
                for i, s in enumerate(sels)
            )
        pairs = tuple((str(k), str(v)) for k, v in labels.items())
        out.cluster_roles.append(ClusterRole(name, rules, pairs, aggregation))
        return out
    ref = _mapping(doc.get("roleRef"), where, "/roleRef")
    ref_kind = _text(ref.get("kind"), where, "/roleRef/kind")
    allowed = ("Role", "ClusterRole") if namespaced else ("ClusterRole",)
    if ref_kind not in allowed:
        raise where.fail(
            "/roleRef/kind", f"{kind} may only reference {' or '.join(allowed)}"
        )
    if _text(ref.get("apiGroup"), where, "/roleRef/apiGroup") != RBAC_GROUP:
        raise where.fail("/roleRef/apiGroup", f"must be {RBAC_GROUP!r}")
    role_ref = RoleRef(ref_kind, _text(ref.get("name"), where, "/roleRef/name"))
    subjects = _subjects(doc.get("subjects"), where, namespaced=namespaced)
    out.bindings.append(Binding(name, role_ref, subjects, namespace))
    return out


def _flatten(
    doc: object, where: _Where, pointer: str
) -> Iterator[tuple[Mapping[str, object], _Where]]:
    if doc is None:
        return
    if not isinstance(doc, Mapping):
        raise where.fail(pointer, "a document must be an object")
    kind = doc.get("kind")
    if isinstance(kind, str) and kind.endswith("List") and "items" in doc:
        items = doc.get("items") or []
        if not isinstance(items, list):
            raise where.fail(f"{pointer}/items", "must be a list")
        for i, item in enumerate(items):
            yield from _flatten(item, where, f"{pointer}/items/{i}")
        return
    yield doc, _Where(where.source + pointer) if pointer else where


def parse_rbac_documents(
    documents: Iterable[tuple[str, object]],
    *,
    default_namespace: str = DEFAULT_NAMESPACE,
) -> RBACObjects:
    """Turn parsed documents into RBAC objects, validating each.

    Args:
        documents: ``(source, document)`` pairs; source names the place for
            errors, e.g. ``rbac/dev.yaml[2]``.
        default_namespace: Namespace of a Role/RoleBinding that names none.

    Returns:
        The objects; documents of other kinds are skipped.

    Raises:
        InvalidPolicyError: An RBAC object fails validation.
    """
    out = RBACObjects()
    seen: dict[tuple[str, str, str], str] = {}
    for source, doc in documents:
        for obj, where in _flatten(doc, _Where(source), ""):
            if obj.get("kind") not in _KINDS:
                continue
            version = obj.get("apiVersion")
            if version not in _RBAC_VERSIONS:
                raise where.fail(
                    "/apiVersion", f"{version!r} is not an RBAC apiVersion"
                )
            parsed = _object(obj, where, default_namespace)
            # The API server keeps one object per kind/namespace/name; a second
            # definition in the files is a mistake, not an override.
            names = [("Role", r.namespace, r.name) for r in parsed.roles]
            names += [("ClusterRole", "", c.name) for c in parsed.cluster_roles]
            names += [(b.kind, b.namespace, b.name) for b in parsed.bindings]
            for key in names:
                if key in seen:
                    shown = "/".join(k for k in key[1:] if k)
                    raise where.fail(
                        "/metadata/name",
                        f"duplicate {key[0]} {shown!r} (first defined in {seen[key]})",
                    )
                seen[key] = where.source
            out.extend(parsed)
    return out


def _files(paths: Sequence[Path]) -> Iterator[Path]:
    for path in paths:
        if path.is_dir():
            yield from sorted(
                p for p in path.rglob("*") if p.is_file() and p.suffix in _SUFFIXES
            )
        else:
            yield path


def _read_documents(path: Path) -> list[tuple[str, object]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidPolicyError(describe_parse_error(exc), policy=str(path)) from exc
    try:
        if path.suffix == ".json":
            return [(f"{path}[0]", json.loads(text))]
        return [(f"{path}[{i}]", d) for i, d in enumerate(yaml.safe_load_all(text))]
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        raise InvalidPolicyError(
            f"not valid YAML/JSON: {describe_parse_error(exc)}", policy=str(path)
        ) from exc


def load_rbac_paths(
    paths: Sequence[Path], *, default_namespace: str = DEFAULT_NAMESPACE
) -> RBACObjects:
    """Read RBAC objects from files and directories.

    Args:
        paths: Files or directories.
        default_namespace: Namespace of a Role/RoleBinding that names none.

    Returns:
        The objects, in path order.

    Raises:
        InvalidPolicyError: A file cannot be read or parsed, or an object is invalid.
    """
    docs: list[tuple[str, object]] = []
    for path in _files(paths):
        docs.extend(_read_documents(path))
    return parse_rbac_documents(docs, default_namespace=default_namespace)
