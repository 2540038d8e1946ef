"""Kubernetes RBAC, evaluated as kube-apiserver does (pure).

Modules: ``model`` the objects, ``evaluator`` the authorizer, ``aggregate``
ClusterRole aggregation, ``load`` reading manifests, ``covers`` the escalation
comparator, ``sar`` SubjectAccessReview specs, ``authz`` the chain the
``/authorize`` webhook answers with; ``cli`` is ``kubeiam policy
can-i|rbac|who-can|covers``. Imports nothing from ``policy.iam``.
"""

from __future__ import annotations

__all__: list[str] = []
