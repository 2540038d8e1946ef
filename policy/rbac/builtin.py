"""The RBAC objects every cluster has: Kubernetes 1.36's bootstrap policy.

``view``, ``edit``, ``admin``, ``cluster-admin``, the ``system:*`` roles, the
controller roles, and their bindings (``cluster-admin`` to ``system:masters``,
``system:basic-user`` and ``system:discovery`` to ``system:authenticated``, ...),
read from the API server's own golden files in :mod:`policy.rbac.bootstrap`.

``kubeiam policy can-i | rbac | who-can | covers`` add them to the files they are
given, as a real cluster would, unless told not to (``--no-builtin-roles``). An
object the files define too (same kind, namespace and name) is taken from the
files: a dump of a cluster (``kubectl get clusterroles -o yaml``) shows what
that cluster really holds, e.g. a role with auto-update switched off.
"""

from __future__ import annotations

import functools
from importlib import resources

from authenticator.yamlio import load_yaml
from policy.rbac.load import RBACObjects, parse_rbac_documents

# The Kubernetes release the objects come from.
KUBERNETES_VERSION = "1.36.3"
_FILES = (
    "cluster-roles.yaml",
    "cluster-role-bindings.yaml",
    "controller-roles.yaml",
    "controller-role-bindings.yaml",
    "namespace-roles.yaml",
    "namespace-role-bindings.yaml",
)


@functools.cache
def builtin_objects() -> RBACObjects:
    """Parse the bootstrap policy (once per process).

    Returns:
        The built-in roles, cluster roles and bindings.
    """
    base = resources.files("policy.rbac.bootstrap")
    docs: list[tuple[str, object]] = []
    for name in _FILES:
        text = (base / name).read_text(encoding="utf-8")
        docs.append((f"<built-in {name}>", load_yaml(text)))
    return parse_rbac_documents(docs)


def with_builtin(objects: RBACObjects) -> RBACObjects:
    """The given objects plus every built-in one they do not redefine.

    Args:
        objects: Objects read from the user's files.

    Returns:
        A new set: the built-in objects first, then the user's.
    """
    builtin = builtin_objects()
    roles = {(r.namespace, r.name) for r in objects.roles}
    cluster_roles = {c.name for c in objects.cluster_roles}
    bindings = {(b.kind, b.namespace, b.name) for b in objects.bindings}
    out = RBACObjects(
        roles=[r for r in builtin.roles if (r.namespace, r.name) not in roles],
        cluster_roles=[c for c in builtin.cluster_roles if c.name not in cluster_roles],
        bindings=[
            b for b in builtin.bindings if (b.kind, b.namespace, b.name) not in bindings
        ],
    )
    out.extend(objects)
    return out
