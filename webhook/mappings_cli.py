"""``kubeiam mappings validate|show|lint``: check mapping files before they are served.

Each FILE is a server config (its inline mappings, then the files its
``sources:`` name, with its ``reservedPrefixes``), a plain mapping file
(``mapRoles``/``mapUsers``/``mapAccounts``), an aws-auth ConfigMap
(``kind: ConfigMap``) or IAMIdentityMapping objects. Files are sources in the
order given. The ConfigMap and CRD sources of a server config live in the
cluster and are not read here.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from authenticator.errors import ConfigError
from authenticator.findings import Severity
from authenticator.mapping import (
    MappingProblem,
    MappingSet,
    inspect_mapping_text,
    parse_yaml_text,
)
from authenticator.mapping_lint import (
    TrustSummary,
    build_effective_table,
    finding_json,
    lint_mappings,
    trust_documents,
)
from authenticator.mapping_model import (
    DEFAULT_RESERVED_GROUP_PREFIXES,
    with_group_prefixes,
)
from policy.errors import InvalidPolicyError
from policy.iam.trust import who_can_assume
from webhook.settings_compat import (
    is_authenticator_config,
    translate_authenticator_config,
)

# Top-level keys that only a server config has (SPEC section 5).
_SERVER_KEYS = frozenset(
    {
        "clusterID",
        "sources",
        "server",
        "sts",
        "cache",
        "reservedPrefixes",
        "reservedGroupPrefixes",
    }
)
_MAX_BYTES = 4 * 1024 * 1024

_EPILOG = """examples:
  kubeiam mappings validate /etc/kubeiam/config.yaml
  kubectl -n kube-system get cm aws-auth -o yaml > aws-auth.yaml
  kubeiam mappings validate aws-auth.yaml
  kubeiam mappings show config.yaml aws-auth.yaml -o json
  aws iam get-account-authorization-details --filter Role > auth.json
  kubeiam mappings lint aws-auth.yaml --trust-policies auth.json --fail-on medium

exit codes: 0 ok, 1 problems (validate) or findings at --fail-on or above (lint),
2 usage."""


@dataclass
class _Loaded:
    """Everything read from the command line's files."""

    sets: list[MappingSet] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    problems: list[MappingProblem] = field(default_factory=list)
    numeric: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(
        self,
        text: str,
        *,
        source: str,
        where: str,
        reserved: Sequence[str],
        label: str = "",
        groups: Sequence[str] = (),
    ) -> None:
        report = inspect_mapping_text(
            text, source=source, where=where, reserved_prefixes=reserved
        )
        self.sets.append(with_group_prefixes(report.mapping_set, groups))
        self.labels.append(label or f"{where}: ")
        self.problems.extend(report.problems)
        self.numeric.extend(report.numeric_accounts)


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from exc
    if len(data) > _MAX_BYTES:
        raise ConfigError(f"{path}: larger than {_MAX_BYTES} bytes")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text") from exc


def _load(files: Sequence[str], extra_reserved: Sequence[str]) -> _Loaded:
    loaded = _Loaded()
    for name in files:
        path = Path(name)
        text = _read(path)
        try:
            docs = parse_yaml_text(text)
        except ConfigError as exc:
            loaded.problems.append(MappingProblem(f"{name}: (file)", str(exc)))
            continue
        doc = docs[0] if len(docs) == 1 else None
        if isinstance(doc, dict) and is_authenticator_config(doc):
            # aws-iam-authenticator's server config: read what the server reads.
            try:
                doc = translate_authenticator_config(
                    doc,
                    fail=lambda key, why: ConfigError(f"{key}: {why}"),
                    exists=lambda _name: True,
                )
            except ConfigError as exc:
                loaded.problems.append(MappingProblem(name, str(exc)))
                continue
            keys = ("mapRoles", "mapUsers", "mapAccounts")
            text = json.dumps({k: doc[k] for k in keys if k in doc})
        if isinstance(doc, Mapping) and _SERVER_KEYS & set(doc):
            _load_server_config(loaded, path, doc, text, extra_reserved)
        else:
            is_cm = isinstance(doc, Mapping) and doc.get("kind") == "ConfigMap"
            # IAMIdentityMapping objects are what the crd source serves: lint
            # them with its default reserved group prefixes.
            is_crd = bool(docs) and all(
                isinstance(d, Mapping) and d.get("kind") == "IAMIdentityMapping"
                for d in docs
            )
            kind = "configMap" if is_cm else "crd" if is_crd else "file"
            loaded.add(
                text,
                source=kind,
                where=name,
                reserved=extra_reserved,
                label=f"{name}: data." if is_cm else "",
                groups=DEFAULT_RESERVED_GROUP_PREFIXES.get(kind, ()),
            )
    return loaded


def _load_server_config(
    loaded: _Loaded,
    path: Path,
    doc: Mapping[str, object],
    text: str,
    extra: Sequence[str],
) -> None:
    reserved: dict[str, tuple[str, ...]] = {}
    groups: dict[str, tuple[str, ...]] = {}
    for key, table in (
        ("reservedPrefixes", reserved),
        ("reservedGroupPrefixes", groups),
    ):
        reserved_doc = doc.get(key)
        if isinstance(reserved_doc, Mapping):
            for kind, prefixes in reserved_doc.items():
                if isinstance(prefixes, list):
                    table[str(kind)] = tuple(str(p) for p in prefixes)
    if any(key in doc for key in ("mapRoles", "mapUsers", "mapAccounts")):
        loaded.add(
            text,
            source="inline",
            where=str(path),
            reserved=(*reserved.get("inline", ()), *extra),
            groups=groups.get("inline", ()),
        )
    sources = doc.get("sources")
    for i, item in enumerate(sources if isinstance(sources, list) else []):
        if not isinstance(item, Mapping) or len(item) != 1:
            loaded.problems.append(
                MappingProblem(f"{path}: sources[{i}]", "must name one source")
            )
            continue
        kind, body = next(iter(item.items()))
        if kind != "file":
            loaded.notes.append(
                f"{path}: sources[{i}].{kind} is read from the cluster, not checked "
                "here"
            )
            continue
        file_name = body.get("path") if isinstance(body, Mapping) else None
        if not isinstance(file_name, str):
            loaded.problems.append(
                MappingProblem(f"{path}: sources[{i}].file.path", "is required")
            )
            continue
        target = path.parent / file_name
        try:
            file_text = _read(target)
        except ConfigError as exc:
            loaded.problems.append(
                MappingProblem(f"{path}: sources[{i}].file.path", str(exc))
            )
            continue
        loaded.add(
            file_text,
            source="file",
            where=str(target),
            reserved=(*reserved.get("file", ()), *extra),
            groups=groups.get("file", ()),
        )


def _validate(args: argparse.Namespace, loaded: _Loaded) -> int:
    entries = sum(s.entries for s in loaded.sets)
    if args.output == "json":
        _print_json(
            {
                "valid": not loaded.problems,
                "entries": entries,
                "problems": [
                    {"where": p.where, "message": p.message} for p in loaded.problems
                ],
                "notes": loaded.notes,
            }
        )
    else:
        for problem in loaded.problems:
            sys.stdout.write(f"{problem.where}: {problem.message}\n")
        for note in loaded.notes:
            sys.stdout.write(f"note: {note}\n")
        if not loaded.problems:
            sys.stdout.write(f"OK: {entries} entries in {len(loaded.sets)} source(s)\n")
    if loaded.problems:
        count = len(loaded.problems)
        sys.stderr.write(
            f"kubeiam mappings: {count} problem{'s' if count != 1 else ''}\n"
        )
        return 1
    return 0


def _show(args: argparse.Namespace, loaded: _Loaded) -> int:
    rows = build_effective_table(loaded.sets, loaded.labels)
    if args.output == "json":
        _print_json([row.to_json() for row in rows])
    else:
        table = [("SOURCE", "KIND", "ARN", "USERNAME", "GROUPS", "SHADOWED-BY")]
        table += [
            (
                r.source,
                r.kind,
                r.arn,
                r.username,
                ",".join(r.groups) or "-",
                r.shadowed_by or "-",
            )
            for r in rows
        ]
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        for row in table:
            sys.stdout.write(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
                + "\n"
            )
    for note in loaded.notes:
        sys.stderr.write(f"note: {note}\n")
    if loaded.problems:
        count = len(loaded.problems)
        sys.stderr.write(
            f"kubeiam mappings: {count} problem{'s' if count != 1 else ''} "
            "(entries with problems are left out; run validate)\n"
        )
        return 1
    return 0


def trust_summaries(doc: object, source: str = "") -> dict[str, TrustSummary]:
    """Ask the IAM engine who may assume each role whose trust policy is given.

    Args:
        doc: ``get-account-authorization-details`` output, a list of
            ``{"Arn", "AssumeRolePolicyDocument"}`` or ARN -> trust policy.
        source: The file, for errors.

    Returns:
        Role match key -> who may assume it.

    Raises:
        ConfigError: A trust policy the IAM engine refuses.
    """
    out: dict[str, TrustSummary] = {}
    for key, (arn, document) in trust_documents(doc).items():
        try:
            if not isinstance(document, Mapping):
                raise InvalidPolicyError("the trust policy must be a JSON object")
            answer = who_can_assume(arn, document)
        except InvalidPolicyError as exc:
            where = f"{source}: " if source else ""
            raise ConfigError(f"{where}trust policy of {arn}: {exc}") from exc
        out[key] = TrustSummary(
            answer.people,
            answer.services,
            tuple(f"{p} (if {', '.join(keys)})" for p, keys in answer.conditional),
        )
    return out


def _lint(args: argparse.Namespace, loaded: _Loaded) -> int:
    trust: dict[str, TrustSummary] | None = None
    if args.trust_policies:
        try:
            doc = json.loads(_read(Path(args.trust_policies)))
        except ValueError as exc:
            raise ConfigError(f"{args.trust_policies}: not JSON: {exc}") from exc
        trust = trust_summaries(doc, args.trust_policies)
    findings = lint_mappings(
        loaded.sets,
        labels=loaded.labels,
        problems=loaded.problems,
        numeric_accounts=loaded.numeric,
        trust=trust,
    )
    if args.output == "json":
        _print_json([finding_json(f) for f in findings])
    else:
        for f in findings:
            sys.stdout.write(
                f"{f.severity.value.upper():6}  {f.code:22}  {f.where}: {f.message}\n"
            )
        for note in loaded.notes:
            sys.stdout.write(f"note: {note}\n")
        if not findings:
            sys.stdout.write("no findings\n")
    if args.fail_on == "never":
        return 0
    threshold = Severity(args.fail_on)
    failing = [f for f in findings if f.severity.at_least(threshold)]
    if failing:
        count = len(failing)
        sys.stderr.write(
            f"kubeiam mappings: {count} finding{'s' if count != 1 else ''} "
            f"at {args.fail_on} or above\n"
        )
        return 1
    return 0


def _print_json(value: object) -> None:
    sys.stdout.write(json.dumps(value, indent=2) + "\n")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubeiam mappings",
        description="Validate, show and lint IAM -> Kubernetes mappings.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_EPILOG,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    helps = {
        "validate": "exit 1 listing every problem and where it is",
        "show": "the effective table after precedence",
        "lint": "findings a security reviewer wants, with a severity",
    }
    for name, help_text in helps.items():
        cmd = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=_EPILOG,
        )
        cmd.add_argument(
            "files", nargs="+", metavar="FILE", help="mapping files, in order"
        )
        cmd.add_argument("-o", "--output", choices=("text", "json"), default="text")
        cmd.add_argument(
            "--reserved-prefix",
            action="append",
            default=[],
            metavar="PREFIX",
            help="treat PREFIX as reserved for every file (repeatable)",
        )
        if name == "lint":
            cmd.add_argument(
                "--trust-policies",
                metavar="JSON",
                help="role trust policies (aws iam get-account-authorization-details)",
            )
            cmd.add_argument(
                "--fail-on",
                choices=(*(s.value for s in Severity), "never"),
                default="high",
                help="exit 1 when a finding is at least this severe (default: high)",
            )
    return parser


def main(argv: list[str]) -> int:
    """Run ``kubeiam mappings``.

    Args:
        argv: Arguments after ``mappings`` (``validate FILE...`` and so on).

    Returns:
        The exit code: 0 ok, 1 problems or failing findings, 2 usage.
    """
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        loaded = _load(args.files, tuple(args.reserved_prefix))
        if args.command == "validate":
            return _validate(args, loaded)
        if args.command == "show":
            return _show(args, loaded)
        return _lint(args, loaded)
    except ConfigError as exc:
        sys.stderr.write(f"kubeiam mappings: {exc}\n")
        return 1
