"""ECS/EKS permission tiers, answered by the IAM engine (pure).

Modules: ``workloads`` parses task definitions and EKS identities, ``model``
the report types, ``report`` builds a tier report from the probes in
``checks``, ``app``, ``escalation``, ``housekeeping`` and ``rbac``;
``baseline`` compares reports; ``cli`` is ``kubeiam policy tiers``. Sits on
``policy.iam`` (and ``policy.rbac`` for EKS).
"""

from __future__ import annotations

__all__: list[str] = []
