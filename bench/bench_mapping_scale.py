"""Mapping lookups against table size: 100,000 entries vs 1,000, same code, same run.

Each table holds ``mapRoles`` entries for distinct roles (with paths, which
matching ignores) built by :func:`authenticator.mapping.parse_mappings`; the
lookups are :func:`authenticator.mapping.evaluate_mapping` for assumed-role
sessions of roles spread over the whole table (a hit) plus one unmapped role
(a miss, which visits every source). A lookup is an index lookup by canonical
ARN, so the time per lookup should not grow with the table: the row's ratio
is the 1,000-entry time over the 100,000-entry time (1.0 = independent).

A second row does the same with both tables packed
(:class:`authenticator.mapping.PackedEntries`: what ``kubeiam server`` serves
a mapping file of 1 MiB or more from).
"""

from __future__ import annotations

import time

from authenticator.identity import Identity
from authenticator.mapping import (
    MappingSet,
    PackedEntries,
    evaluate_mapping,
    parse_mappings,
)
from bench.common import Row, paired_row

ACCOUNT = "111122223333"
SMALL = 1_000
LARGE = 100_000
LOOKUPS = 2_000
SAMPLES = 9


def _table(size: int) -> MappingSet:
    doc = {
        "mapRoles": [
            {
                "rolearn": f"arn:aws:iam::{ACCOUNT}:role/team-{i % 97}/role-{i}",
                "username": "role-{{SessionName}}",
                "groups": [f"group-{i % 50}"],
            }
            for i in range(size)
        ]
    }
    return parse_mappings(doc, source="file", where=f"{size} entries")


def _identity(role: str) -> Identity:
    return Identity(
        arn=f"arn:aws:sts::{ACCOUNT}:assumed-role/{role}/alice",
        canonical_arn=f"arn:aws:iam::{ACCOUNT}:role/{role}",
        account_id=ACCOUNT,
        user_id="AROAEXAMPLEROLEID0001",
        session_name="alice",
        access_key_id="ASIAEXAMPLE",
    )


def _per_lookup_us(
    large: MappingSet, small: MappingSet
) -> tuple[list[float], list[float]]:
    """Per-lookup times in both tables, samples alternating (shared noise)."""
    runs = []
    for table, size in ((large, LARGE), (small, SMALL)):
        step = max(size // LOOKUPS, 1)
        identities = [_identity(f"role-{i}") for i in range(0, size, step)][:LOOKUPS]
        identities.append(_identity("not-mapped"))
        if evaluate_mapping(identities[0], (table,)).user is None:
            raise RuntimeError("the bench's identities are not mapped: a broken table")
        runs.append(((table,), identities))
    out: tuple[list[float], list[float]] = ([], [])
    for _ in range(SAMPLES):
        for times, (sources, identities) in zip(out, runs, strict=True):
            start = time.perf_counter()
            for identity in identities:
                evaluate_mapping(identity, sources)
            times.append((time.perf_counter() - start) * 1e6 / len(identities))
    return out


def _packed(table: MappingSet) -> MappingSet:
    return MappingSet(
        table.source,
        PackedEntries(PackedEntries.pack(table.roles)),
        PackedEntries(PackedEntries.pack(table.users)),
        table.accounts,
    )


def run() -> list[Row]:
    """Time lookups in a 100,000-entry and a 1,000-entry table."""
    large_table, small_table = _table(LARGE), _table(SMALL)
    large, small = _per_lookup_us(large_table, small_table)
    large_packed, small_packed = _per_lookup_us(
        _packed(large_table), _packed(small_table)
    )
    return [
        paired_row(
            f"mapping lookup (evaluate_mapping), {LARGE:,} mapRoles entries",
            "us/lookup",
            ours=large,
            peer=small,
            peer_name=f"same code, {SMALL:,} entries",
            labels=(f"{LARGE:,} entries", f"{SMALL:,} entries"),
            target="independent of table size (ratio ~1.0)",
        ),
        paired_row(
            f"mapping lookup (evaluate_mapping), {LARGE:,} mapRoles entries "
            "packed (as the server holds a file of 1 MiB or more)",
            "us/lookup",
            ours=large_packed,
            peer=small_packed,
            peer_name=f"same code, {SMALL:,} entries packed",
            labels=(f"{LARGE:,} packed", f"{SMALL:,} packed"),
            target="independent of table size (ratio ~1.0)",
        ),
    ]
