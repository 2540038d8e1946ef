"""Access paths as text, JSON-ready dicts and Graphviz DOT (pure)."""

from __future__ import annotations

from collections.abc import Sequence

from policy.paths.graph import AccessGraph
from policy.paths.model import Node, NodeKind, Path
from policy.paths.query import PathFinding

__all__ = ["render_dot", "render_findings", "render_paths"]

# Node styles by kind: (shape, fill colour); IAM orange, Kubernetes blue.
_STYLE: dict[NodeKind, tuple[str, str]] = {
    NodeKind.IAM_USER: ("box", "#fde2c4"),
    NodeKind.IAM_ROLE: ("box", "#fbd38d"),
    NodeKind.IAM_ESCALATED: ("box", "#f6ad55"),
    NodeKind.K8S_USER: ("ellipse", "#bee3f8"),
    NodeKind.K8S_SERVICE_ACCOUNT: ("ellipse", "#90cdf4"),
    NodeKind.CAPABILITY: ("doubleoctagon", "#feb2b2"),
}
_HIGHLIGHT = "#c53030"


def _label(graph: AccessGraph, node_id: str) -> str:
    node = graph.nodes.get(node_id)
    if node is None or node.kind is NodeKind.CAPABILITY:
        return node_id
    if node.kind.is_iam:
        return f"{node.label} ({node.account})"
    return node.id.removeprefix("k8s:").replace("user:", "user ").replace("sa:", "sa ")


def render_paths(graph: AccessGraph, paths: Sequence[Path], *, title: str) -> str:
    """Paths as numbered steps, each with its reason and evidence.

    Args:
        graph: The graph (for labels).
        paths: The paths.
        title: The first line.

    Returns:
        The text.
    """
    lines = [title]
    if not paths:
        lines.append("  no path")
    for n, path in enumerate(paths, 1):
        hops = len(path.edges)
        lines.append("")
        lines.append(
            f"path {n}: {_label(graph, path.source)} -> {_label(graph, path.target)} "
            f"({hops} step{'s' if hops != 1 else ''})"
        )
        for i, edge in enumerate(path.edges, 1):
            lines.append(
                f"  {i}. {_label(graph, edge.src)} => {_label(graph, edge.dst)}"
                f"  [{edge.kind.value}]"
            )
            lines.append(f"       {edge.reason}")
            lines += [f"       - {ev}" for ev in edge.evidence]
    return "\n".join(lines) + "\n"


def render_findings(graph: AccessGraph, findings: Sequence[PathFinding]) -> str:
    """Findings, ranked, one line each plus the path.

    Args:
        graph: The graph (for labels).
        findings: Ranked findings.

    Returns:
        The text.
    """
    lines = [f"kubeiam paths: {len(findings)} finding(s)"]
    for n, f in enumerate(findings, 1):
        chain = " -> ".join(_label(graph, x) for x in f.path.nodes)
        lines.append(
            f"{n:>3}. [{f.severity.value}] {_label(graph, f.principal.id)} can reach "
            f"{f.target} in {len(f.path.edges)} steps"
        )
        lines.append(f"       {chain}")
        lines += [
            f"       {i}. [{e.kind.value}] {e.reason}"
            for i, e in enumerate(f.path.edges, 1)
        ]
    return "\n".join(lines) + "\n"


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _node_line(graph: AccessGraph, node: Node, highlight: bool) -> str:
    shape, fill = _STYLE[node.kind]
    extra = f', color="{_HIGHLIGHT}", penwidth=2.5' if highlight else ""
    return (
        f"  {_quote(node.id)} [label={_quote(_label(graph, node.id))}, shape={shape}, "
        f'style=filled, fillcolor="{fill}"{extra}];'
    )


def render_dot(
    graph: AccessGraph,
    paths: Sequence[Path],
    *,
    highlight: Path | None = None,
    title: str = "",
) -> str:
    """The union of some paths as a Graphviz digraph, one path highlighted.

    Args:
        graph: The graph (for node kinds and labels).
        paths: The paths to draw.
        highlight: The path drawn in red (default: the first).
        title: A graph label.

    Returns:
        DOT text (left to right; IAM nodes boxes, Kubernetes ellipses).
    """
    chosen = highlight or (paths[0] if paths else None)
    hot_edges = {(e.src, e.dst, e.kind) for e in chosen.edges} if chosen else set()
    hot_nodes = set(chosen.nodes) if chosen else set()
    lines = [
        "digraph access_paths {",
        "  rankdir=LR;",
        '  graph [fontname="Helvetica", fontsize=11, nodesep=0.3, ranksep=0.6'
        + (f", label={_quote(title)}, labelloc=t" if title else "")
        + "];",
        '  node [fontname="Helvetica", fontsize=10];',
        '  edge [fontname="Helvetica", fontsize=9, color="#718096"];',
    ]
    seen_nodes: set[str] = set()
    seen_edges: set[tuple[str, str, str]] = set()
    body: list[str] = []
    for path in paths:
        for edge in path.edges:
            for node_id in (edge.src, edge.dst):
                if node_id not in seen_nodes:
                    seen_nodes.add(node_id)
                    node = graph.node(node_id)
                    lines.append(_node_line(graph, node, node_id in hot_nodes))
            key = (edge.src, edge.dst, edge.kind.value)
            if key in seen_edges:
                continue
            seen_edges.add(key)
            hot = (edge.src, edge.dst, edge.kind) in hot_edges
            style = f', color="{_HIGHLIGHT}", penwidth=2.5' if hot else ""
            body.append(
                f"  {_quote(edge.src)} -> {_quote(edge.dst)} "
                f"[label={_quote(edge.kind.value)}, tooltip={_quote(edge.reason)}"
                f"{style}];"
            )
    return "\n".join([*lines, *body, "}"]) + "\n"
