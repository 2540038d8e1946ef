"""The tier-report scenario corpus: each workload through the real CLI.

Every file in tests/data/tiers/corpus cites the AWS documentation behind its
expectation; see its README for the keys. A scenario's inputs are written to
files the way the AWS CLI prints them, ``kubeiam policy tiers -o json`` runs on
them, and its expected findings and non-findings are checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from policy.tiers.cli import main

CORPUS = Path(__file__).resolve().parents[2] / "data" / "tiers" / "corpus"
SCENARIOS = sorted(CORPUS.glob("*.yaml"))
SLR = {
    "RoleName": "AWSServiceRoleForECS",
    "Path": "/aws-service-role/ecs.amazonaws.com/",
    "Arn": "arn:aws:iam::111122223333:role/aws-service-role/ecs.amazonaws.com/"
    "AWSServiceRoleForECS",
    "AssumeRolePolicyDocument": {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "ecs.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    },
}


def _write(tmp: Path, name: str, doc: object) -> str:
    path = tmp / name
    path.write_text(json.dumps(doc), encoding="utf-8")
    return str(path)


def _argv(s: dict[str, Any], tmp: Path) -> list[str]:
    account = dict(s["account"])
    roles = list(account.get("RoleDetailList", []))
    if s.get("serviceLinkedRole", True):
        roles.append(SLR)
    account["RoleDetailList"] = roles
    argv = ["tiers", "--account", _write(tmp, "auth.json", account), "-o", "json"]
    if "taskDefinition" in s:
        argv += ["--task-definition", _write(tmp, "td.json", s["taskDefinition"])]
    if "serviceAccount" in s:
        sa = tmp / "sa.yaml"
        sa.write_text(yaml.safe_dump(s["serviceAccount"]), encoding="utf-8")
        argv += ["--eks-service-account", str(sa)]
    if "podIdentityAssociation" in s:
        argv += [
            "--pod-identity-association",
            _write(tmp, "pia.json", {"association": s["podIdentityAssociation"]}),
        ]
    if "scps" in s:
        argv += ["--scps", _write(tmp, "scps.json", s["scps"])]
    if "services" in s:
        argv += ["--services", _write(tmp, "services.json", s["services"])]
    if "cluster" in s:
        argv += ["--cluster-arn", s["cluster"]]
    for key in s.get("kmsKeys", []):
        argv += ["--kms-key", key]
    for role in s.get("nodeRoles", []):
        argv += ["--node-role", role]
    if "rbac" in s:
        rbac = tmp / "rbac.yaml"
        rbac.write_text(yaml.safe_dump_all(s["rbac"]), encoding="utf-8")
        argv += ["--rbac", str(rbac)]
    for i, (arn, out) in enumerate(s.get("resourcePolicies", {}).items()):
        argv += ["--resource-policy", f"{arn}={_write(tmp, f'rp{i}.json', out)}"]
    return argv


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Every scenario run once: name -> (scenario, report JSON, exit code)."""
    out: dict[str, Any] = {}
    for path in SCENARIOS:
        s = yaml.safe_load(path.read_text(encoding="utf-8"))
        tmp = tmp_path_factory.mktemp(path.stem)
        argv = _argv(s, tmp)
        import contextlib
        import io

        buf = io.StringIO()
        with contextlib.redirect_stdout(buf):
            code = main([*argv, "--fail-on", "critical"])
        out[path.stem] = (s, json.loads(buf.getvalue()), code)
    return out


def test_corpus_size():
    """At least 15 workloads, ECS and EKS, each citing an AWS document."""
    docs = [yaml.safe_load(p.read_text(encoding="utf-8")) for p in SCENARIOS]
    assert len(docs) >= 15
    assert sum("taskDefinition" in d for d in docs) >= 5
    assert sum("serviceAccount" in d for d in docs) >= 5
    assert all(d["doc"].startswith("https://docs.aws.amazon.com/") for d in docs)
    assert all(d.get("expect") or d.get("absent") for d in docs)


@pytest.mark.parametrize("name", [p.stem for p in SCENARIOS])
def test_scenario(results: dict[str, Any], name: str) -> None:
    """Expected findings present (severity, statement), non-findings absent."""
    s, report, code = results[name]
    findings = report["findings"]
    for want in s.get("expect", []):
        hits = [
            f
            for f in findings
            if f["id"] == want["id"]
            and ("subject" not in want or f["subject"] == want["subject"])
        ]
        assert hits, f"{name}: {want['id']} not reported; got " + str(
            [(f["id"], f["subject"]) for f in findings]
        )
        f = hits[0]
        assert f["severity"] == want["severity"], (name, f)
        for key in ("grantedBy", "deniedBy"):
            if key in want:
                assert want[key] in f.get(key, ""), (name, key, f)
        assert f.get("remediation"), (name, f)
    ids = {f["id"] for f in findings}
    subjects = {f["subject"] for f in findings}
    for subject in s.get("absentSubjects", []):
        assert subject not in subjects, (name, subject)
    pairs = {(f["id"], f["subject"]) for f in findings}
    for f in s.get("absentFindings", []):
        assert (f["id"], f["subject"]) not in pairs, (name, f)
    for fid in s.get("absent", []):
        assert fid not in ids, (name, fid, [f for f in findings if f["id"] == fid])
    if s.get("correct"):
        crit = [f for f in findings if f["severity"] == "critical"]
        assert crit == [], (name, crit)
        assert code == 0
    else:
        assert code == (3 if report["summary"]["critical"] else 0)
