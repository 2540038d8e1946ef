"""SubjectAccessReview bodies: parsing requests and building answers (pure).

``authorization.k8s.io/v1`` and ``v1beta1`` are field-identical except that
v1beta1 spells the group list ``group`` (singular) and v1 ``groups``
(docs/rbac-and-tiers.md). The answer carries ``status.allowed`` (always),
``status.denied`` (only when true), ``status.reason`` and
``status.evaluationError``; kube-apiserver reads them as (the Kubernetes docs, Webhook
Mode):

| allowed | denied | decision |
| --- | --- | --- |
| true | false | Allow |
| false | true | Deny (the chain stops) |
| false | false | NoOpinion (the next authorizer decides) |

Label and field selectors (1.31+) only narrow a request, so ignoring them is
safe; ``rawSelector`` is never parsed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from policy.errors import InvalidPolicyError
from policy.rbac.model import (
    Attributes,
    AuthzDecision,
    NonResourceAttributes,
    ResourceAttributes,
    UserInfo,
)

__all__ = [
    "SAR_KIND",
    "SAR_VERSIONS",
    "SubjectAccessReview",
    "build_sar_response",
    "parse_sar_spec",
    "parse_subject_access_review",
]

SAR_KIND = "SubjectAccessReview"
# apiVersion -> the key of the group list in ``spec`` (docs/rbac-and-tiers.md).
SAR_VERSIONS: dict[str, str] = {
    "authorization.k8s.io/v1": "groups",
    "authorization.k8s.io/v1beta1": "group",
}
_RESOURCE_FIELDS = (
    "namespace",
    "verb",
    "group",
    "version",
    "resource",
    "subresource",
    "name",
)


@dataclass(frozen=True, slots=True)
class SubjectAccessReview:
    """A parsed review: who asks to do what, and the apiVersion to answer in."""

    api_version: str
    user: UserInfo
    attributes: Attributes


def _fail(pointer: str, message: str) -> InvalidPolicyError:
    return InvalidPolicyError(message, pointer=pointer, policy=SAR_KIND)


def _str(m: Mapping[str, object], key: str, pointer: str) -> str:
    value = m.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise _fail(f"{pointer}/{key}", "must be a string")
    return value


def _str_list(value: object, pointer: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _fail(pointer, "must be a list of strings")
    return tuple(value)


def parse_sar_spec(
    spec: object, *, groups_key: str = "groups"
) -> tuple[UserInfo, Attributes]:
    """Parse a SubjectAccessReview ``spec``.

    Args:
        spec: The ``spec`` object.
        groups_key: ``groups`` (v1) or ``group`` (v1beta1). For batch files pass
            ``"*"`` to accept either spelling.

    Returns:
        The user and the request attributes.

    Raises:
        InvalidPolicyError: The spec is malformed or has neither or both of
            ``resourceAttributes`` and ``nonResourceAttributes``.
    """
    if not isinstance(spec, Mapping):
        raise _fail("/spec", "must be an object")
    if groups_key == "*":
        groups_key = "group" if "group" in spec and "groups" not in spec else "groups"
    extra_raw = spec.get("extra") or {}
    if not isinstance(extra_raw, Mapping):
        raise _fail("/spec/extra", "must be an object of string lists")
    extra = tuple(
        (str(k), _str_list(v, f"/spec/extra/{k}")) for k, v in sorted(extra_raw.items())
    )
    user = UserInfo(
        name=_str(spec, "user", "/spec"),
        groups=_str_list(spec.get(groups_key), f"/spec/{groups_key}"),
        uid=_str(spec, "uid", "/spec"),
        extra=extra,
    )
    res, non = spec.get("resourceAttributes"), spec.get("nonResourceAttributes")
    if (res is None) == (non is None):
        raise _fail(
            "/spec", "needs exactly one of resourceAttributes and nonResourceAttributes"
        )
    if non is not None:
        if not isinstance(non, Mapping):
            raise _fail("/spec/nonResourceAttributes", "must be an object")
        p = "/spec/nonResourceAttributes"
        return user, NonResourceAttributes(_str(non, "verb", p), _str(non, "path", p))
    if not isinstance(res, Mapping):
        raise _fail("/spec/resourceAttributes", "must be an object")
    f = {k: _str(res, k, "/spec/resourceAttributes") for k in _RESOURCE_FIELDS}
    attrs = ResourceAttributes(
        verb=f["verb"],
        resource=f["resource"],
        group=f["group"],
        namespace=f["namespace"],
        subresource=f["subresource"],
        name=f["name"],
        version=f["version"],
    )
    return user, attrs


def parse_subject_access_review(body: object) -> SubjectAccessReview:
    """Parse a whole SubjectAccessReview as kube-apiserver sends it.

    Args:
        body: The decoded JSON body.

    Returns:
        The review.

    Raises:
        InvalidPolicyError: Not a SubjectAccessReview of a supported apiVersion.
    """
    if not isinstance(body, Mapping):
        raise _fail("", "body must be a JSON object")
    version = body.get("apiVersion")
    if not isinstance(version, str) or version not in SAR_VERSIONS:
        raise _fail("/apiVersion", f"unsupported apiVersion {version!r}")
    if body.get("kind") != SAR_KIND:
        raise _fail("/kind", f"must be {SAR_KIND}")
    user, attrs = parse_sar_spec(body.get("spec"), groups_key=SAR_VERSIONS[version])
    return SubjectAccessReview(version, user, attrs)


def build_sar_response(
    api_version: str,
    decision: AuthzDecision,
    *,
    reason: str = "",
    evaluation_error: str = "",
) -> dict[str, object]:
    """The answer kube-apiserver expects for a decision.

    Args:
        api_version: The request's apiVersion (answered in kind).
        decision: ALLOW, DENY or NO_OPINION.
        reason: Shown in the 403 message and the audit log.
        evaluation_error: Informational (e.g. a dangling roleRef).

    Returns:
        ``{"apiVersion", "kind", "status": {...}}``.
    """
    status: dict[str, object] = {"allowed": decision is AuthzDecision.ALLOW}
    if decision is AuthzDecision.DENY:
        status["denied"] = True
    if reason:
        status["reason"] = reason
    if evaluation_error:
        status["evaluationError"] = evaluation_error
    return {"apiVersion": api_version, "kind": SAR_KIND, "status": status}
