"""Layout of a pipeline run's DAG as SVG: steps in columns by depth, edges as curves.

Pure: takes the steps' names, parents and states, returns coordinates (as strings, like
``charts``) for the template to draw. A step's column is one more than its deepest parent;
within a column, steps sit near the middle of their parents, which keeps edges short.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Three lines in a node (name, job type, state), so a long job type (``app.jobs.Something``)
# never runs into the state text; names are cut to what the width holds.
NODE_W, NODE_H = 176, 72
GAP_X, GAP_Y, PAD = 56, 20, 8
NAME_CHARS = 18  #: of a step's name (13 px monospace) beside its status dot
TYPE_CHARS = 21  #: of a job type (11 px; up to 7 px a letter): its end tells types apart


@dataclass
class Graph:
    width: int
    height: int
    node_w: int = NODE_W
    node_h: int = NODE_H
    nodes: list[dict[str, Any]] = field(default_factory=list)
    edges: list[dict[str, Any]] = field(default_factory=list)


def layout(
    order: list[str], parents: dict[str, tuple[str, ...]], info: dict[str, dict[str, Any]]
) -> Graph:
    """``order`` is topological; ``info`` holds what each node shows (status, label, ...)."""
    depth: dict[str, int] = {}
    for name in order:
        depth[name] = 1 + max((depth[p] for p in parents.get(name, ())), default=-1)
    columns: list[list[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    row: dict[str, float] = {}
    for name in order:
        columns[depth[name]].append(name)
    for col in columns:
        # Sort by the mean row of the parents (a barycenter pass): fewer crossings.
        col.sort(key=lambda n: _mean([row[p] for p in parents.get(n, ())], default=len(row)))
        for i, name in enumerate(col):
            row[name] = i
    tallest = max((len(c) for c in columns), default=0)
    height = PAD * 2 + tallest * NODE_H + max(tallest - 1, 0) * GAP_Y
    width = PAD * 2 + len(columns) * NODE_W + max(len(columns) - 1, 0) * GAP_X
    pos: dict[str, tuple[float, float]] = {}
    for c, col in enumerate(columns):
        offset = (tallest - len(col)) * (NODE_H + GAP_Y) / 2  # centre short columns
        for i, name in enumerate(col):
            pos[name] = (PAD + c * (NODE_W + GAP_X), PAD + offset + i * (NODE_H + GAP_Y))
    graph = Graph(width=width, height=height)
    for name in order:
        x, y = pos[name]
        node = {"name": name, "x": _n(x), "y": _n(y), **info.get(name, {})}
        node["name_label"] = _head(name, NAME_CHARS)
        node["type_label"] = _tail(str(node.get("job_type", "")), TYPE_CHARS)
        graph.nodes.append(node)
        for parent in parents.get(name, ()):
            px, py = pos[parent]
            x1, y1, x2, y2 = px + NODE_W, py + NODE_H / 2, x, y + NODE_H / 2
            mid = (x1 + x2) / 2
            d = f"M{_n(x1)},{_n(y1)} C{_n(mid)},{_n(y1)} {_n(mid)},{_n(y2)} {_n(x2)},{_n(y2)}"
            done = info.get(parent, {}).get("status") == "succeeded"
            graph.edges.append({"d": d, "from": parent, "to": name, "done": done})
    return graph


def _head(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _tail(text: str, limit: int) -> str:
    """``…jobs.Something``: the end of a dotted name says more than its start."""
    return text if len(text) <= limit else "…" + text[-(limit - 1) :]


def _mean(values: list[float], default: float) -> float:
    return sum(values) / len(values) if values else default


def _n(value: float) -> str:
    return f"{value:.1f}"
