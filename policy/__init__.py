"""policy package: IAM policy evaluation, Kubernetes RBAC, tiers and access paths.

Four areas, each a subpackage with one CLI module that ``policy.cli`` dispatches
to: ``policy.iam`` (the IAM engine; ``policy.iam.evaluator.evaluate``),
``policy.rbac`` (kube-apiserver's RBAC authorizer; imports nothing from IAM),
``policy.tiers`` (ECS/EKS permission tiers; sits on IAM and RBAC) and
``policy.paths`` (access paths; sits on all three). ``policy.errors`` is shared.
"""

from __future__ import annotations

__all__: list[str] = []
