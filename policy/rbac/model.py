"""Kubernetes RBAC objects and request attributes (rbac/v1), as values.

Pure, immutable dataclasses; the evaluator is :mod:`policy.rbac.evaluator`, which
re-exports every name here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = [
    "RBAC_GROUP",
    "SERVICE_ACCOUNT_PREFIX",
    "Attributes",
    "AuthzDecision",
    "Binding",
    "ClusterRole",
    "Grant",
    "LabelSelector",
    "LabelSelectorRequirement",
    "NonResourceAttributes",
    "PolicyRule",
    "RBACResult",
    "ResourceAttributes",
    "Role",
    "RoleRef",
    "Subject",
    "UserInfo",
    "service_account_groups",
    "service_account_username",
]

# The API group of RBAC objects and of User/Group subjects (rbac/v1).
RBAC_GROUP = "rbac.authorization.k8s.io"
# k8s.io/apiserver/pkg/authentication/serviceaccount: ServiceAccountUsernamePrefix.
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


class AuthzDecision(enum.Enum):
    """An authorizer's answer (k8s.io/apiserver authorizer.Decision)."""

    ALLOW = "Allow"
    DENY = "Deny"
    NO_OPINION = "NoOpinion"


@dataclass(frozen=True, slots=True)
class PolicyRule:
    """One ``rules[]`` entry of a Role or ClusterRole (rbac.authorization.k8s.io/v1)."""

    verbs: tuple[str, ...]
    api_groups: tuple[str, ...] = ()
    resources: tuple[str, ...] = ()
    resource_names: tuple[str, ...] = ()
    non_resource_urls: tuple[str, ...] = ()

    def compact(self) -> str:
        """The rule in upstream's ``CompactString`` form (used in escalation messages).

        Returns:
            e.g. ``{APIGroups:[""], Resources:["pods"], Verbs:["get"]}``.
        """
        parts = [
            f"{label}:[{' '.join(_quote(v) for v in values)}]"
            for label, values in (
                ("APIGroups", self.api_groups),
                ("Resources", self.resources),
                ("NonResourceURLs", self.non_resource_urls),
                ("ResourceNames", self.resource_names),
                ("Verbs", self.verbs),
            )
            if values
        ]
        return "{" + ", ".join(parts) + "}"

    def to_json(self) -> dict[str, list[str]]:
        """The rule in Kubernetes' JSON field names, empty lists omitted."""
        out: dict[str, list[str]] = {"verbs": list(self.verbs)}
        for key, values in (
            ("apiGroups", self.api_groups),
            ("resources", self.resources),
            ("resourceNames", self.resource_names),
            ("nonResourceURLs", self.non_resource_urls),
        ):
            if values:
                out[key] = list(values)
        return out


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


@dataclass(frozen=True, slots=True)
class LabelSelectorRequirement:
    """A ``matchExpressions`` entry: operator In, NotIn, Exists or DoesNotExist."""

    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class LabelSelector:
    """A metav1.LabelSelector; the empty selector selects everything."""

    match_labels: tuple[tuple[str, str], ...] = ()
    match_expressions: tuple[LabelSelectorRequirement, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether ``labels`` satisfy every requirement (LabelSelectorAsSelector).

        Args:
            labels: An object's labels.

        Returns:
            True when all matchLabels and matchExpressions hold.
        """
        if any(labels.get(k) != v for k, v in self.match_labels):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and not (present and labels[req.key] in req.values):
                return False
            # NotIn also matches objects that lack the key (labels.Selector semantics).
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


@dataclass(frozen=True, slots=True)
class Role:
    """A namespaced Role."""

    name: str
    namespace: str
    rules: tuple[PolicyRule, ...] = ()


@dataclass(frozen=True, slots=True)
class ClusterRole:
    """A ClusterRole; ``aggregation`` holds its clusterRoleSelectors (or None)."""

    name: str
    rules: tuple[PolicyRule, ...] = ()
    labels: tuple[tuple[str, str], ...] = ()
    aggregation: tuple[LabelSelector, ...] | None = None


@dataclass(frozen=True, slots=True)
class Subject:
    """A binding subject: kind User, Group or ServiceAccount."""

    kind: str
    name: str
    namespace: str = ""
    api_group: str = ""

    def describe(self, binding_namespace: str = "") -> str:
        """The subject as upstream's ``describeSubject`` prints it.

        Args:
            binding_namespace: The RoleBinding's namespace (default for SAs).

        Returns:
            e.g. ``User "alice"`` or ``ServiceAccount "builder/ci"``.
        """
        if self.kind == "ServiceAccount":
            return f'{self.kind} "{self.name}/{self.namespace or binding_namespace}"'
        return f'{self.kind} "{self.name}"'


@dataclass(frozen=True, slots=True)
class RoleRef:
    """A binding's ``roleRef`` (kind Role or ClusterRole)."""

    kind: str
    name: str
    api_group: str = RBAC_GROUP


@dataclass(frozen=True, slots=True)
class Binding:
    """A RoleBinding (``namespace`` set) or a ClusterRoleBinding (it empty)."""

    name: str
    role_ref: RoleRef
    subjects: tuple[Subject, ...] = ()
    namespace: str = ""

    @property
    def kind(self) -> str:
        """``RoleBinding`` or ``ClusterRoleBinding``."""
        return "RoleBinding" if self.namespace else "ClusterRoleBinding"


@dataclass(frozen=True, slots=True)
class UserInfo:
    """The requesting user, as the authenticator (or a SubjectAccessReview) gives it."""

    name: str
    groups: tuple[str, ...] = ()
    uid: str = ""
    extra: tuple[tuple[str, tuple[str, ...]], ...] = ()


@dataclass(frozen=True, slots=True)
class ResourceAttributes:
    """A resource request (SubjectAccessReview ``resourceAttributes``)."""

    verb: str
    resource: str
    group: str = ""
    namespace: str = ""
    subresource: str = ""
    name: str = ""
    version: str = ""


@dataclass(frozen=True, slots=True)
class NonResourceAttributes:
    """A non-resource request (SubjectAccessReview ``nonResourceAttributes``)."""

    verb: str
    path: str


Attributes = ResourceAttributes | NonResourceAttributes
"""A request: resource or non-resource."""


@dataclass(frozen=True, slots=True)
class Grant:
    """Where a rule came from: one binding, its role and the subject that matched."""

    binding: Binding
    subject: Subject

    def describe(self) -> str:
        """Upstream's source description.

        Returns:
            e.g. ``RoleBinding "x/dev" of ClusterRole "y" to User "u"``.
        """
        b = self.binding
        name = f"{b.name}/{b.namespace}" if b.namespace else b.name
        return (
            f'{b.kind} "{name}" of {b.role_ref.kind} "{b.role_ref.name}" '
            f"to {self.subject.describe(b.namespace)}"
        )


@dataclass(frozen=True, slots=True)
class RBACResult:
    """An RBAC decision with its reason (upstream's wording) and resolution errors."""

    decision: AuthzDecision
    reason: str = ""
    grant: Grant | None = None
    errors: tuple[str, ...] = ()

    @property
    def allowed(self) -> bool:
        """Whether the decision is ALLOW."""
        return self.decision is AuthzDecision.ALLOW


def service_account_username(namespace: str, name: str) -> str:
    """The username of a service account (``system:serviceaccount:<ns>:<name>``).

    Args:
        namespace: The service account's namespace.
        name: Its name.

    Returns:
        The username the API server gives its tokens.
    """
    return f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}"


def service_account_groups(namespace: str) -> tuple[str, ...]:
    """The groups a service account's token carries (authentication adds them).

    Args:
        namespace: The service account's namespace.

    Returns:
        ``system:serviceaccounts``, ``system:serviceaccounts:<ns>`` and
        ``system:authenticated``.
    """
    return (
        "system:serviceaccounts",
        f"system:serviceaccounts:{namespace}",
        "system:authenticated",
    )
