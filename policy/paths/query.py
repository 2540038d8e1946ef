"""Access-path queries over :class:`policy.paths.graph.AccessGraph` (pure).

* :func:`shortest_path`: ``--from P --to T``, breadth first, so the fewest steps;
* :func:`reachable`: ``--from P --reachable``, a shortest path to every node;
* :func:`who_can_reach`: ``--who-can-reach T``, one shortest path per principal;
* :func:`find_findings`: ``--findings``, every principal that can reach
  ``cluster-admin`` or an ``aws-admin:<account>`` node without being one, ranked.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from authenticator.findings import Severity
from policy.errors import InvalidPolicyError
from policy.paths.graph import AccessGraph
from policy.paths.model import (
    AWS_ADMIN_PREFIX,
    CLUSTER_ADMIN,
    Edge,
    Node,
    NodeKind,
    Path,
    Target,
    TargetKind,
    parse_target,
)

__all__ = [
    "PathFinding",
    "find_findings",
    "reachable",
    "resolve_source",
    "shortest_path",
    "who_can_reach",
]

# Sources of who-can-reach and findings: the identities a person or workload has.
_SOURCE_KINDS = (
    NodeKind.IAM_USER,
    NodeKind.IAM_ROLE,
    NodeKind.K8S_USER,
    NodeKind.K8S_SERVICE_ACCOUNT,
)


def _walk(path: dict[str, Edge | None], end: str) -> tuple[Edge, ...]:
    out: list[Edge] = []
    cur = path[end]
    while cur is not None:
        out.append(cur)
        cur = path[cur.src]
    return tuple(reversed(out))


def shortest_path(graph: AccessGraph, source: str, target: Target) -> Path | None:
    """A shortest path from a node to a target.

    Args:
        graph: The graph.
        source: The start node id.
        target: The target.

    Returns:
        The path (each step with its reason), or None when there is none.
    """
    graph.node(source)
    prev: dict[str, Edge | None] = {source: None}
    queue = deque([source])
    while queue:
        node_id = queue.popleft()
        if graph.is_target(node_id, target):
            if node_id != source:
                return Path(_walk(prev, node_id))
            continue
        final = graph.target_edge(node_id, target)
        if final is not None:
            return Path((*_walk(prev, node_id), final))
        for edge in graph.edges_from(node_id):
            if edge.dst not in prev:
                prev[edge.dst] = edge
                queue.append(edge.dst)
    return None


def reachable(graph: AccessGraph, source: str) -> list[Path]:
    """A shortest path to every node reachable from ``source``.

    Args:
        graph: The graph.
        source: The start node id.

    Returns:
        Paths, nearest first.
    """
    graph.node(source)
    prev: dict[str, Edge | None] = {source: None}
    order: list[str] = []
    queue = deque([source])
    while queue:
        node_id = queue.popleft()
        for edge in graph.edges_from(node_id):
            if edge.dst not in prev:
                prev[edge.dst] = edge
                order.append(edge.dst)
                queue.append(edge.dst)
    return [Path(_walk(prev, n)) for n in order]


def _backwards(
    graph: AccessGraph, goals: Iterable[tuple[str, Edge | None]]
) -> dict[str, Edge | None]:
    """Multi-source reverse BFS: node -> its first edge toward the nearest goal."""
    incoming: dict[str, list[Edge]] = {}
    for edge in graph.all_edges():
        incoming.setdefault(edge.dst, []).append(edge)
    nxt: dict[str, Edge | None] = {}
    queue: deque[str] = deque()
    for node_id, final in goals:
        if node_id not in nxt:
            nxt[node_id] = final
            queue.append(node_id)
    while queue:
        node_id = queue.popleft()
        for edge in incoming.get(node_id, ()):
            if edge.src not in nxt:
                nxt[edge.src] = edge
                queue.append(edge.src)
    return nxt


def _forward(nxt: dict[str, Edge | None], start: str) -> tuple[Edge, ...]:
    out: list[Edge] = []
    cur = nxt[start]
    while cur is not None:
        out.append(cur)
        cur = nxt.get(cur.dst)
    return tuple(out)


def who_can_reach(graph: AccessGraph, target: Target) -> list[Path]:
    """One shortest path for every principal that can reach ``target``.

    Args:
        graph: The graph.
        target: The target.

    Returns:
        Paths, fewest steps first.
    """
    list(graph.all_edges())
    goals: list[tuple[str, Edge | None]] = []
    for node_id in list(graph.nodes):
        if graph.is_target(node_id, target):
            goals.append((node_id, None))
            continue
        final = graph.target_edge(node_id, target)
        if final is not None:
            goals.append((node_id, final))
    nxt = _backwards(graph, goals)
    paths = [
        Path(_forward(nxt, n))
        for n in nxt
        if graph.node(n).kind in _SOURCE_KINDS and nxt[n] is not None
    ]
    return sorted(paths, key=lambda p: (len(p.edges), p.source))


@dataclass(frozen=True, slots=True)
class PathFinding:
    """A principal that can reach an administrator without being one.

    Attributes:
        principal: The node.
        target: ``cluster-admin`` or ``aws-admin:<account>``.
        path: The shortest path.
        severity: critical (2 steps), high (3-4), medium (more).
    """

    principal: Node
    target: str
    path: Path
    severity: Severity

    def to_json(self) -> dict[str, object]:
        """A JSON-ready dict."""
        return {
            "principal": self.principal.to_json(),
            "target": self.target,
            "severity": self.severity.value,
            "path": self.path.to_json(),
        }


def _admin_nodes(graph: AccessGraph) -> list[str]:
    return [
        n for n in graph.nodes if n == CLUSTER_ADMIN or n.startswith(AWS_ADMIN_PREFIX)
    ]


def find_findings(graph: AccessGraph) -> list[PathFinding]:
    """Every principal that can reach an administrator without being one, ranked.

    A principal is an administrator when one edge takes it to ``cluster-admin``
    or ``aws-admin:<account>`` (it is allowed everything, is in
    ``system:masters``, or has a direct escalation primitive such as ``bind``);
    it is a finding when the shortest such path takes two or more steps.

    Args:
        graph: The graph.

    Returns:
        Findings: fewest steps first, then IAM before Kubernetes, then by id.
    """
    list(graph.all_edges())
    nxt = _backwards(graph, ((n, None) for n in _admin_nodes(graph)))
    out: list[PathFinding] = []
    for node_id, first in nxt.items():
        node = graph.node(node_id)
        if first is None or node.kind not in _SOURCE_KINDS:
            continue
        path = Path(_forward(nxt, node_id))
        if len(path.edges) < 2:
            continue
        hops = len(path.edges)
        severity = (
            Severity.CRITICAL
            if hops == 2
            else Severity.HIGH
            if hops <= 4
            else Severity.MEDIUM
        )
        out.append(PathFinding(node, path.target, path, severity))
    out.sort(
        key=lambda f: (
            len(f.path.edges),
            0 if f.principal.kind.is_iam else 1,
            f.principal.id,
        )
    )
    return out


def resolve_source(graph: AccessGraph, spec: str) -> str:
    """The node id a ``--from`` argument names.

    Args:
        graph: The graph.
        spec: An ARN, ``role/NAME``, ``user/NAME``, ``sa:NS/NAME`` or
            ``k8s-user:NAME``.

    Returns:
        The node id.

    Raises:
        InvalidPolicyError: It names no node of the graph.
    """
    target = parse_target(spec, known=frozenset(graph.nodes))
    if target.kind is not TargetKind.NODE or target.value not in graph.nodes:
        raise InvalidPolicyError(
            f"--from {spec!r} names no principal of the inputs", policy="paths"
        )
    return target.value
