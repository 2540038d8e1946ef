"""Access paths: the scenario corpus, properties, queries and the CLI."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.paths.cli import main
from policy.paths.model import parse_target
from policy.paths.query import (
    find_findings,
    reachable,
    resolve_source,
    shortest_path,
    who_can_reach,
)
from tests.policy.paths.paths_corpus import (
    ACCOUNT,
    account_details,
    build_graph,
    load_scenarios,
)

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
        """A Deny of * on the source never adds a path nor shortens one."""
        before = _path_kinds(sc)
        after = _path_kinds(_deny_all_for(sc, sc["from"]))
        assert after is None or (before is not None and len(after) >= len(before))
        if before is not None and before[0].startswith("iam:"):
            assert after is None  # the IAM-decided first step is denied

    @pytest.mark.parametrize("sc", SCENARIOS, ids=[s["name"] for s in SCENARIOS])
    def test_explicit_deny_in_scp_never_adds_a_path(self, sc: dict[str, Any]) -> None:
        """An SCP denying one more action never adds a path nor shortens one."""
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
                    [
                        {
                            "Effect": "Allow",
                            "Action": "s3:ListAllMyBuckets",
                            "Resource": "*",
                        }
                    ],
                ]
        before, after = _path_kinds(sc), _path_kinds(more)
        if before is not None:
            assert after is not None and len(after) <= len(before)


def _scenario(name: str) -> dict[str, Any]:
    return next(s for s in SCENARIOS if s["name"] == name)


@pytest.fixture(scope="module")
def cross_border(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The cross-border scenario written as the files the CLI reads."""

    sc = _scenario("cross-border-dev-role-to-aws-admin-through-pod")
    d = tmp_path_factory.mktemp("paths")
    (d / "auth.json").write_text(json.dumps(account_details(sc["account"])))
    (d / "k8s").mkdir()
    (d / "k8s" / "objects.yaml").write_text(yaml.safe_dump_all(sc["k8s"]))
    aws_auth = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": "aws-auth", "namespace": "kube-system"},
        "data": {"mapRoles": yaml.safe_dump(sc["map_roles"])},
    }
    (d / "aws-auth.yaml").write_text(yaml.safe_dump(aws_auth))
    return {"dir": d}


def _args(files: dict[str, Path], *query: str) -> list[str]:
    d = files["dir"]
    return [
        "paths",
        "--account",
        str(d / "auth.json"),
        "--mapping",
        str(d / "aws-auth.yaml"),
        "--k8s",
        str(d / "k8s"),
        *query,
    ]


class TestCLI:
    """kubeiam policy paths: queries and output formats."""

    def test_text_path_names_every_step_and_its_evidence(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--from/--to prints each step with the statement or binding behind it."""
        code = main(_args(cross_border, "--from", "role/dev", "--to", "aws-admin"))
        out = capsys.readouterr().out
        assert code == 0
        assert "[mapping]" in out and "[create-pod]" in out and "[irsa]" in out
        assert 'RoleBinding "devs-deploy/prod" of Role "deploy"' in out
        assert "AdministratorAccess" in out

    def test_json_no_path_exits_one(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A target nobody reaches gives an empty JSON list and exit 1."""
        code = main(
            _args(
                cross_border,
                "--from",
                "sa:prod/app",
                "--to",
                "k8s:delete:nodes",
                "-o",
                "json",
            )
        )
        body = json.loads(capsys.readouterr().out)
        assert code == 1 and body["paths"] == []

    def test_who_can_reach_and_findings(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """who-can-reach lists the dev role; findings rank it (it is no admin)."""
        assert (
            main(_args(cross_border, "--who-can-reach", "aws-admin", "-o", "json")) == 0
        )
        body = json.loads(capsys.readouterr().out)
        sources = {p["from"] for p in body["paths"]}
        assert f"arn:aws:iam::{ACCOUNT}:role/dev" in sources
        assert main(_args(cross_border, "--findings", "-o", "json")) == 0
        findings = json.loads(capsys.readouterr().out)["findings"]
        ids = [f["principal"]["id"] for f in findings]
        assert f"arn:aws:iam::{ACCOUNT}:role/dev" in ids
        assert f"arn:aws:iam::{ACCOUNT}:role/appadmin" not in ids
        assert [len(f["path"]["steps"]) for f in findings] == sorted(
            len(f["path"]["steps"]) for f in findings
        )

    def test_reachable_lists_the_pod_sa(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--reachable from the dev role includes the prod ServiceAccount."""
        assert (
            main(_args(cross_border, "--from", "role/dev", "--reachable", "-o", "json"))
            == 0
        )
        targets = {p["to"] for p in json.loads(capsys.readouterr().out)["paths"]}
        assert "k8s:sa:prod/app" in targets

    def test_dot_highlights_the_path(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """-o dot draws the path with highlighted edges."""
        assert (
            main(
                _args(
                    cross_border, "--from", "role/dev", "--to", "aws-admin", "-o", "dot"
                )
            )
            == 0
        )
        dot = capsys.readouterr().out
        assert dot.startswith("digraph access_paths {")
        assert dot.count("penwidth=2.5") >= 2 * 4  # 5 nodes and 4 edges highlighted

    def test_svg_written_by_graphviz(self, cross_border: dict[str, Path]) -> None:
        """-o svg --write produces an SVG document with the path's nodes."""
        out = cross_border["dir"] / "path.svg"
        code = main(
            _args(
                cross_border,
                "--from",
                "role/dev",
                "--to",
                "aws-admin",
                "-o",
                "svg",
                "--write",
                str(out),
            )
        )
        svg = out.read_text()
        assert code == 0 and "<svg" in svg and "appadmin" in svg

    def test_unknown_source_is_a_clear_error(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """--from naming nothing fails on stderr with exit 1 and no stdout."""
        code = main(
            _args(cross_border, "--from", "role/nobody", "--to", "cluster-admin")
        )
        captured = capsys.readouterr()
        assert code == 1 and captured.out == ""
        assert "no IAM role named 'nobody'" in captured.err

    def test_bad_target_is_a_clear_error(
        self, cross_border: dict[str, Path], capsys: pytest.CaptureFixture[str]
    ) -> None:
        """A malformed target names the accepted forms."""
        code = main(_args(cross_border, "--from", "role/dev", "--to", "aws:nonsense"))
        assert code == 1 and "aws:SERVICE:ACTION" in capsys.readouterr().err


class TestQueries:
    """Query functions on a corpus graph."""

    def test_reachable_paths_are_shortest_and_chained(self) -> None:
        """Every reachable path starts at the source and chains edge to edge."""
        graph = build_graph(_scenario("role-chain-two-hops"))
        source = resolve_source(graph, "user/alice")
        paths = reachable(graph, source)
        assert paths and all(p.source == source for p in paths)
        for p in paths:
            assert all(
                a.dst == b.src for a, b in zip(p.edges, p.edges[1:], strict=False)
            )

    def test_who_can_reach_role(self) -> None:
        """who_can_reach(role/admin) finds alice (2 steps) and ops (1 step)."""
        graph = build_graph(_scenario("role-chain-two-hops"))
        target = parse_target("role/admin", known=frozenset(graph.nodes))
        hops = {
            p.source.rsplit("/", 1)[-1]: len(p.edges)
            for p in who_can_reach(graph, target)
        }
        assert hops == {"alice": 2, "ops": 1}

    def test_findings_exclude_admins(self) -> None:
        """The admin role is no finding; alice (via ops) is, ranked by steps."""
        graph = build_graph(_scenario("role-chain-two-hops"))
        names = [f.principal.label for f in find_findings(graph)]
        assert "role admin" not in names and "user alice" in names


class TestDemoStep:
    """The demo's paths step prints the cross-border path and writes its picture."""

    def test_demo_step_prints_path_and_writes_svg(self) -> None:
        """Four steps (mapping, create-pod, irsa, grants) and an SVG on disk."""
        import io

        from kubeiam.demo import DemoContext
        from kubeiam.demo_paths import step_paths

        out = io.StringIO()
        ctx = DemoContext("demo", "us-east-1", out)
        step_paths(ctx)
        text = out.getvalue()
        assert "[mapping]" in text and "[create-pod]" in text and "[irsa]" in text
        recorded = ctx.summary["paths"]
        assert isinstance(recorded, dict)
        kinds = [s["kind"] for s in recorded["path"]["steps"]]
        assert kinds == ["mapping", "create-pod", "irsa", "grants"]
        assert "<svg" in Path(recorded["picture"]).read_text()
