"""Access paths across IAM and Kubernetes (pure).

Modules: ``model`` nodes, edges and targets, ``iam`` and ``k8s`` the edges
each side contributes, ``graph`` the access graph, ``query`` shortest paths,
reachability and findings, ``render`` text and DOT; ``cli`` is ``kubeiam
policy paths``. Sits on ``policy.iam``, ``policy.rbac`` and ``policy.tiers``.
"""

from __future__ import annotations

__all__: list[str] = []
