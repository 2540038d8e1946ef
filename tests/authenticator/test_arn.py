"""ARN parsing, canonicalization and role-path stripping (docs/token-format.md)."""

from __future__ import annotations

import pytest

from authenticator.arn import ARN, canonicalize_arn, parse_arn, strip_role_path
from authenticator.errors import InvalidARNError

ACCT = "123456789012"


class TestParse:
    """parse_arn splits the six sections of any ARN."""

    @pytest.mark.parametrize(
        ("arn", "expected"),
        [
            (
                f"arn:aws:iam::{ACCT}:user/Alice",
                ARN("aws", "iam", "", ACCT, "user/Alice"),
            ),
            (
                "arn:aws:s3:::bucket/key:with:colons",
                ARN("aws", "s3", "", "", "bucket/key:with:colons"),
            ),
            (
                f"arn:aws-cn:ec2:cn-north-1:{ACCT}:instance/i-1",
                ARN("aws-cn", "ec2", "cn-north-1", ACCT, "instance/i-1"),
            ),
        ],
    )
    def test_parse(self, arn: str, expected: ARN) -> None:
        """Sections are split on the first five colons and round-trip with str()."""
        assert parse_arn(arn) == expected
        assert str(parse_arn(arn)) == arn

    @pytest.mark.parametrize(
        "arn",
        [
            "NOT AN ARN",
            "arn",
            "arn:aws:iam::123",
            "urn:aws:iam::1:user/x",
            "arn::iam::1:user/x",
            "arn:aws:::1:user/x",
            "arn:aws:iam::1:",
            "",
        ],
    )
    def test_invalid(self, arn: str) -> None:
        """No prefix, fewer than six sections, or an empty part: invalid."""
        with pytest.raises(InvalidARNError):
            parse_arn(arn)


class TestCanonicalize:
    """canonicalize_arn follows the reference, with stricter shapes."""

    @pytest.mark.parametrize(
        ("arn", "expected"),
        [
            (f"arn:aws:iam::{ACCT}:user/Alice", f"arn:aws:iam::{ACCT}:user/Alice"),
            (
                f"arn:aws:iam::{ACCT}:user/path/to/Alice",
                f"arn:aws:iam::{ACCT}:user/path/to/Alice",
            ),
            (f"arn:aws:iam::{ACCT}:role/Users", f"arn:aws:iam::{ACCT}:role/Users"),
            (
                f"arn:aws:iam::{ACCT}:role/team/Deploy",
                f"arn:aws:iam::{ACCT}:role/team/Deploy",
            ),
            (f"arn:aws:iam::{ACCT}:root", f"arn:aws:iam::{ACCT}:root"),
            (
                f"arn:aws:sts::{ACCT}:assumed-role/Admin/Session",
                f"arn:aws:iam::{ACCT}:role/Admin",
            ),
            (
                f"arn:aws:sts::{ACCT}:assumed-role/Admin/i-0123456789abcdef0",
                f"arn:aws:iam::{ACCT}:role/Admin",
            ),
            (
                f"arn:aws:sts::{ACCT}:assumed-role/AWSReservedSSO_Admin_0123abcd/alice@example.com",
                f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_Admin_0123abcd",
            ),
            (
                f"arn:aws:sts::{ACCT}:assumed-role/a/b/session",
                f"arn:aws:iam::{ACCT}:role/a/b",
            ),
            (
                f"arn:aws:sts::{ACCT}:federated-user/Bob",
                f"arn:aws:sts::{ACCT}:federated-user/Bob",
            ),
            (
                f"arn:aws-cn:sts::{ACCT}:assumed-role/R/s",
                f"arn:aws-cn:iam::{ACCT}:role/R",
            ),
            (
                f"arn:aws-us-gov:iam::{ACCT}:user/u",
                f"arn:aws-us-gov:iam::{ACCT}:user/u",
            ),
            (
                f"arn:aws-iso-f:sts::{ACCT}:assumed-role/R/s",
                f"arn:aws-iso-f:iam::{ACCT}:role/R",
            ),
            (f"arn:aws-eusc:iam::{ACCT}:root", f"arn:aws-eusc:iam::{ACCT}:root"),
            (
                f"arn:aws:sts::{ACCT}:assumed-role/admin/session",
                f"arn:aws:iam::{ACCT}:role/admin",
            ),
        ],
    )
    def test_canonical(self, arn: str, expected: str) -> None:
        """Identities keep their form; sessions become their role."""
        assert canonicalize_arn(arn) == expected

    @pytest.mark.parametrize(
        "arn",
        [
            "NOT AN ARN",
            "arn",
            f"arn:aws-not-a-partition:iam::{ACCT}:user/Alice",
            f"arn:AWS:iam::{ACCT}:user/Alice",
            f"arn:aws:s3::{ACCT}:bucket",
            f"arn:aws:ec2:us-east-1:{ACCT}:instance/i-1",
            f"arn:aws:iam:us-east-1:{ACCT}:user/Alice",
            "arn:aws:iam::1000:user/Alice",
            "arn:aws:iam:::user/Alice",
            f"arn:aws:iam::{ACCT}:group/Admins",
            f"arn:aws:iam::{ACCT}:policy/P",
            f"arn:aws:iam::{ACCT}:user",
            f"arn:aws:iam::{ACCT}:user/",
            f"arn:aws:iam::{ACCT}:role",
            f"arn:aws:iam::{ACCT}:role//Admin",
            f"arn:aws:iam::{ACCT}:root/x",
            f"arn:aws:sts::{ACCT}:assumed-role/Admin",
            f"arn:aws:sts::{ACCT}:assumed-role/Admin/",
            f"arn:aws:sts::{ACCT}:assumed-role//session",
            f"arn:aws:sts::{ACCT}:federated-user/",
            f"arn:aws:sts::{ACCT}:federated-user/a/b",
            f"arn:aws:sts::{ACCT}:user/Alice",
            f"arn:aws:iam::{ACCT}:user/Al ice",
            f"arn:aws:iam::{ACCT}:user/Alice\n",
        ],
    )
    def test_invalid(self, arn: str) -> None:
        """Non-identities, bad partitions, regions, accounts and shapes fail."""
        with pytest.raises(InvalidARNError):
            canonicalize_arn(arn)


class TestStripRolePath:
    """strip_role_path drops IAM role paths only."""

    @pytest.mark.parametrize(
        ("arn", "expected"),
        [
            (
                f"arn:aws:iam::{ACCT}:role/team/Deploy",
                f"arn:aws:iam::{ACCT}:role/Deploy",
            ),
            (
                f"arn:aws:iam::{ACCT}:role/aws-reserved/sso.amazonaws.com/us-east-1/AWSReservedSSO_A_1",
                f"arn:aws:iam::{ACCT}:role/AWSReservedSSO_A_1",
            ),
            (f"arn:aws:iam::{ACCT}:role/Deploy", f"arn:aws:iam::{ACCT}:role/Deploy"),
            (
                f"arn:aws:iam::{ACCT}:user/path/Alice",
                f"arn:aws:iam::{ACCT}:user/path/Alice",
            ),
            (
                f"arn:aws:sts::{ACCT}:assumed-role/R/s",
                f"arn:aws:sts::{ACCT}:assumed-role/R/s",
            ),
            ("not an arn", "not an arn"),
            (f"arn:aws-cn:iam::{ACCT}:role/a/b/c", f"arn:aws-cn:iam::{ACCT}:role/c"),
        ],
    )
    def test_strip(self, arn: str, expected: str) -> None:
        """role/<path>/<name> becomes role/<name>; anything else is unchanged."""
        assert strip_role_path(arn) == expected
