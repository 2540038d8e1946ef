"""Access paths: the scenario corpus, properties, queries and the CLI."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from policy.paths import (
    find_findings,
    reachable,
    resolve_source,
    shortest_path,
    who_can_reach,
)
from policy.paths_cli import main
from policy.paths_model import parse_target
from tests.policy.paths_corpus import ACCOUNT, account_details, build_graph, load_scenarios

SCENARIOS = load_scenarios()


def _path_kinds(sc: dict[str, Any]) -> list[str] | None:
    graph = build_graph(sc)
    source = resolve_source(graph, sc["from"])
    target = parse_target(sc["to"], known=frozenset(graph.nodes))
    path = shortest_path(graph, source, target)
    return None if path is None else [e.kind.value for e in path.edges]


class TestCorpus:
    """Each scenario's shortest path has the expected steps, or there is none."""

    def test_corpus_is_large_and_cited(self) -> None:
        """At least 40 scenarios, each citing its source, with both outcomes present."""
        assert len(SCENARIOS) >= 40
        assert all(str(sc.get("source", "")).startswith("https://") for sc in SCENARIOS)
        assert len({sc["name"] for sc in SCENARIOS}) == len(SCENARIOS)
        assert sum(sc["expect"] == "none" for sc in SCENARIOS) >= 10

    @pytest.mark.parametrize("sc", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
    def test_scenario(self, sc: dict[str, Any]) -> None:
        """The engines find exactly the documented path (or no path)."""
        expected = None if sc["expect"] == "none" else list(sc["expect"])
        assert _path_kinds(sc) == expected


def _deny_all_for(sc: dict[str, Any], user_or_role: str) -> dict[str, Any]:
    """The scenario with an explicit Deny of every action added to one principal."""
    out = copy.deepcopy(sc)
    kind, name = user_or_role.split("/", 1)
    entity = out["account"][f"{kind}s"][name]
    entity["policies"] = [
        *entity.get("policies", []),
        [{"Effect": "Deny", "Action": "*", "Resource": "*"}],
    ]
    return out


_IAM_POSITIVE = [
    sc
    for sc in SCENARIOS
    if sc["expect"] != "none" and str(sc["from"]).startswith(("user/", "role/"))
]


class TestProperties:
    """Deny never adds a path; paths are monotone in granted permissions."""

    @pytest.mark.parametrize(
        "sc", _IAM_POSITIVE, ids=[s["name"] for s in _IAM_POSITIVE]
    )
    def test_deny_everything_on_the_source_never_adds_steps(
        self, sc: dict[str, Any]
    ) -> None:
        """A Deny of * on the source removes its IAM-decided first step or keeps the path."""
        before = _path_kinds(sc)
        after = _path_kinds(_deny_all_for(sc, sc["from"]))
        assert after is None or (before is not None and len(after) >= len(before))
        iam_first = before is not None and before[0] not in (
            "mapping",
            "access-entry",
        )
        if iam_first and before != ["sts:AssumeRole", "grants"] or before == [
            "edit-policy",
            "grants",
        ]:
            assert after is None

    @pytest.mark.parametrize("sc", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
    def test_explicit_deny_in_scp_never_adds_a_path(self, sc: dict[str, Any]) -> None:
        """An SCP that denies an extra action keeps every no-path scenario at no path."""
        denied = copy.deepcopy(sc)
        deny = {"Effect": "Deny", "Action": "s3:DeleteBucket", "Resource": "*"}
        if "scps" in denied:
            denied["scps"][0]["Statement"].append(deny)
        else:
            allow = {"Effect": "Allow", "Action": "*", "Resource": "*"}
            denied["scps"] = [{"Version": "2012-10-17", "Statement": [allow, deny]}]
        before, after = _path_kinds(sc), _path_kinds(denied)
        if before is None:
            assert after is None
        else:
            assert after is None or len(after) >= len(before)

    @pytest.mark.parametrize("sc", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
    def test_granting_more_never_removes_a_path(self, sc: dict[str, Any]) -> None:
        """Adding an unrelated Allow to every user and role keeps every path."""
        more = copy.deepcopy(sc)
        for kind in ("users", "roles"):
            for entity in (more.get("account", {}).get(kind) or {}).values():
                entity["policies"] = [
                    *entity.get("policies", []),
                    [{"Effect": "Allow", "Action": "s3:ListAllMyBuckets", "Resource": "*"}],
                ]
        before, after = _path_kinds(sc), _path_kinds(more)
        if before is not None:
            assert after is not None and len(after) <= len(before)
