"""The verified identity of a caller, as STS reported it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Identity:
    """Who signed a token (docs/token-format.md).

    Attributes:
        arn: The raw ARN from STS.
        canonical_arn: assumed-role reduced to ``iam::<acct>:role/<name>``.
        account_id: The 12-digit account, as text.
        user_id: Users/root/federated: the whole UserId; roles: the part before ``:``.
        session_name: Roles: the part after ``:``; otherwise empty.
        access_key_id: From the token's ``X-Amz-Credential``.
    """

    arn: str
    canonical_arn: str
    account_id: str
    user_id: str
    session_name: str
    access_key_id: str

    def to_json(self) -> dict[str, str]:
        """Return the documented field names (``kubeiam verify -o json``).

        Returns:
            A dict with ``arn``, ``canonicalArn``, ``accountId``, ``userId``,
            ``sessionName`` and ``accessKeyId``.
        """
        return {
            "arn": self.arn,
            "canonicalArn": self.canonical_arn,
            "accountId": self.account_id,
            "userId": self.user_id,
            "sessionName": self.session_name,
            "accessKeyId": self.access_key_id,
        }
