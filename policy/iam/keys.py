"""Condition-key metadata: which keys are single- or multi-valued (data, pure).

From the IAM User Guide (**AWS global condition context keys**: "Value type:
Multivalued") and the Service Authorization Reference (``ArrayOf...`` types)
for the ECS and EKS keys kubeiam's tier reports use. Keys not listed are
unknown: nothing is checked for them.
"""

from __future__ import annotations

__all__ = ["is_multi_valued", "is_single_valued"]

# Multivalued keys (lower case): global keys, then ECS/EKS ArrayOf* keys.
MULTI_VALUED = frozenset(
    {
        "aws:tagkeys",
        "aws:calledvia",
        "aws:principalorgpaths",
        "aws:principalservicenameslist",
        "ecs:capacity-provider",
        "ecs:subnet",
        "eks:kubernetesgroups",
        "eks:namespaces",
    }
)
# Single-valued global keys (lower case) and single-valued key prefixes.
SINGLE_VALUED = frozenset(
    {
        "aws:calledviafirst",
        "aws:calledvialast",
        "aws:currenttime",
        "aws:epochtime",
        "aws:multifactorauthage",
        "aws:multifactorauthpresent",
        "aws:principalaccount",
        "aws:principalarn",
        "aws:principalisawsservice",
        "aws:principalorgid",
        "aws:principalservicename",
        "aws:principaltype",
        "aws:requestedregion",
        "aws:resourceaccount",
        "aws:resourceorgid",
        "aws:securetransport",
        "aws:sourceaccount",
        "aws:sourcearn",
        "aws:sourceip",
        "aws:sourcevpc",
        "aws:sourcevpce",
        "aws:tokenissuetime",
        "aws:userid",
        "aws:username",
        "aws:viaawsservice",
        "aws:vpcsourceip",
        "sts:externalid",
        "sts:rolesessionname",
        "iam:passedtoservice",
        "ecs:cluster",
    }
)
# A tag key holds one value (Single-valued vs. multivalued context keys).
SINGLE_VALUED_PREFIXES = ("aws:principaltag/", "aws:resourcetag/", "aws:requesttag/")


def is_multi_valued(key: str) -> bool:
    """Whether a condition key is documented as multivalued.

    Args:
        key: The key, any case.

    Returns:
        True for known multivalued keys.
    """
    return key.lower() in MULTI_VALUED


def is_single_valued(key: str) -> bool:
    """Whether a condition key is documented as single-valued.

    Args:
        key: The key, any case.

    Returns:
        True for known single-valued keys and tag keys.
    """
    low = key.lower()
    return low in SINGLE_VALUED or low.startswith(SINGLE_VALUED_PREFIXES)
