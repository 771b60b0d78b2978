"""A dependency graph drawn as self-contained SVG, without Graphviz.

:mod:`checkpointing.render` uses Graphviz's ``dot`` when it is installed; in a notebook
or on a machine without it, this module draws the same picture itself, so that
``graph(f)`` displays in Jupyter everywhere. The layout is the classic layered one
(Sugiyama): edges that close a cycle (recursion) are set aside, each node's layer is
its longest path from the roots (networkx's topological order), nodes within a layer
are ordered by a few barycenter sweeps to uncross edges, and layers run left to right
like ``rankdir=LR``. The output is one ``<svg>`` element with inline styles: no fonts,
scripts or files outside it.

It knows nothing of checkpointing: it takes boxes (lines of text and a style) and
edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Tuple
from xml.sax.saxutils import escape, quoteattr

__all__ = ["Box", "draw_svg", "layers"]

_CHAR_WIDTH = 6.6  # 11px monospace
_LINE_HEIGHT = 14.0
_PAD_X, _PAD_Y = 8.0, 6.0
_LAYER_GAP, _NODE_GAP, _MARGIN = 48.0, 12.0, 10.0


@dataclass
class Box:
    """One node: its text lines and how it is painted."""

    lines: List[str]
    fill: str = "#ffffff"
    stroke: str = "#5f6368"
    text_color: str = "#202124"
    stroke_width: float = 1.0
    rounded: bool = True
    dashed: bool = False
    tooltip: str = ""
    width: float = field(init=False, default=0.0)
    height: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        longest = max((len(line) for line in self.lines), default=1)
        self.width = longest * _CHAR_WIDTH + 2 * _PAD_X
        self.height = len(self.lines) * _LINE_HEIGHT + 2 * _PAD_Y


def layers(order: Sequence[str], edges: Sequence[Tuple[str, str]]) -> List[List[str]]:
    """The nodes in layers, left to right: each node one layer right of the furthest
    node that uses it, edges closing a cycle ignored. ``order`` (the first one a
    root) decides where a depth-first search starts and breaks ties."""
    import networkx as nx

    dag = nx.DiGraph()
    dag.add_nodes_from(order)
    position = {name: i for i, name in enumerate(order)}
    children: Dict[str, List[str]] = {name: [] for name in order}
    for a, b in edges:
        children[a].append(b)
    # Depth-first from each node in order; an edge to a node still on the stack closes
    # a cycle and stays out of the layering.
    state: Dict[str, int] = {}
    for start in order:
        if start in state:
            continue
        state[start] = 1
        stack = [(start, iter(sorted(children[start], key=position.__getitem__)))]
        while stack:
            node, it = stack[-1]
            child = next(it, None)
            if child is None:
                state[node] = 2
                stack.pop()
            elif state.get(child) == 1:
                continue  # back edge (or a self-loop)
            else:
                dag.add_edge(node, child)
                if child not in state:
                    state[child] = 1
                    stack.append((child, iter(sorted(children[child], key=position.__getitem__))))
    depth: Dict[str, int] = {}
    for node in nx.topological_sort(dag):
        preds = list(dag.predecessors(node))
        depth[node] = 1 + max(depth[p] for p in preds) if preds else 0
    result: List[List[str]] = [[] for _ in range(max(depth.values(), default=-1) + 1)]
    for name in order:
        result[depth[name]].append(name)
    return result


def _uncross(result: List[List[str]], edges: Sequence[Tuple[str, str]], sweeps: int = 4) -> None:
    """Reorder each layer by the mean position of its neighbours in the layer before
    (then after), a few times: the barycenter heuristic."""
    left: Dict[str, List[str]] = {}
    right: Dict[str, List[str]] = {}
    for a, b in edges:
        right.setdefault(a, []).append(b)
        left.setdefault(b, []).append(a)
    for sweep in range(sweeps):
        forward = sweep % 2 == 0
        indices = range(1, len(result)) if forward else range(len(result) - 2, -1, -1)
        neighbours = left if forward else right
        for i in indices:
            fixed = result[i - 1] if forward else result[i + 1]
            where = {name: j for j, name in enumerate(fixed)}
            current = {name: j for j, name in enumerate(result[i])}

            def barycenter(name: str) -> Tuple[float, int]:
                seen = [where[n] for n in neighbours.get(name, ()) if n in where]
                mean = sum(seen) / len(seen) if seen else float(current[name])
                return (mean, current[name])

            result[i].sort(key=barycenter)


def draw_svg(
    boxes: Dict[str, Box], order: Sequence[str], edges: Sequence[Tuple[str, str]], title: str = ""
) -> str:
    """The graph as one ``<svg>`` element: ``boxes`` by name, ``order`` the nodes
    (root first), ``edges`` from user to used."""
    columns = layers(order, edges)
    layer_of = {name: i for i, column in enumerate(columns) for name in column}
    # An edge spanning several layers passes through a point in each layer between,
    # placed and ordered like a node (a "dummy"), so that it runs between boxes.
    routes: Dict[Tuple[str, str], List[str]] = {}
    ordering_edges: List[Tuple[str, str]] = []
    sizes = {name: (boxes[name].width, boxes[name].height) for name in order}
    for a, b in edges:
        if a == b or layer_of[b] <= layer_of[a]:
            continue
        route = [a]
        for i in range(layer_of[a] + 1, layer_of[b]):
            dummy = f"\0{a}\0{b}\0{i}"
            columns[i].append(dummy)
            sizes[dummy] = (0.0, 2.0)
            route.append(dummy)
        route.append(b)
        routes[(a, b)] = route
        ordering_edges.extend(zip(route, route[1:]))
    _uncross(columns, ordering_edges)

    xs: Dict[str, float] = {}
    ys: Dict[str, float] = {}
    heights = [
        sum(sizes[n][1] for n in column) + _NODE_GAP * (len(column) - 1) for column in columns
    ]
    total_height = max(heights, default=0.0)
    x = _MARGIN
    layer_of = {}
    widths: List[float] = []
    for i, column in enumerate(columns):
        y = _MARGIN + (total_height - heights[i]) / 2
        widths.append(max(sizes[n][0] for n in column))
        for name in column:
            xs[name], ys[name] = x, y
            layer_of[name] = i
            y += sizes[name][1] + _NODE_GAP
        x += widths[-1] + _LAYER_GAP
    width = x - _LAYER_GAP + _MARGIN
    height = total_height + 2 * _MARGIN + 24.0  # room for edges looping below

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" '
        f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
        f'font-family="Menlo, Consolas, \'DejaVu Sans Mono\', monospace" font-size="11">',
    ]
    if title:
        out.append(f"<title>{escape(title)}</title>")
    out.append(
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" '
        'fill="#5f6368"/></marker></defs>'
    )
    out.append('<g fill="none" stroke="#5f6368" stroke-width="1">')
    for a, b in edges:
        if (a, b) in routes:
            out.append(_route(boxes, xs, ys, widths, layer_of, routes[(a, b)]))
        else:
            out.append(_edge(boxes, xs, ys, layer_of, a, b))
    out.append("</g>")
    for name in order:
        out.append(_box(boxes[name], xs[name], ys[name]))
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _route(
    boxes: Dict[str, Box],
    xs: Dict[str, float],
    ys: Dict[str, float],
    widths: List[float],
    layer_of: Dict[str, int],
    route: List[str],
) -> str:
    """A forward edge: from the right of its source to the left of its target, through
    the points of the layers it crosses, each segment a horizontal-tangent curve."""
    a, b = route[0], route[-1]
    points = [(xs[a] + boxes[a].width, ys[a] + boxes[a].height / 2)]
    for dummy in route[1:-1]:
        column_width = widths[layer_of[dummy]]
        y = ys[dummy] + 1
        points.append((xs[dummy], y))
        points.append((xs[dummy] + column_width, y))
    points.append((xs[b], ys[b] + boxes[b].height / 2))
    path = f"M {points[0][0]:.1f} {points[0][1]:.1f}"
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        if y0 == y1:
            path += f" L {x1:.1f} {y1:.1f}"
        else:
            bend = (x1 - x0) / 2
            path += f" C {x0 + bend:.1f} {y0:.1f}, {x1 - bend:.1f} {y1:.1f}, {x1:.1f} {y1:.1f}"
    return f'<path d="{path}" marker-end="url(#arrow)"/>'


def _edge(
    boxes: Dict[str, Box],
    xs: Dict[str, float],
    ys: Dict[str, float],
    layer_of: Dict[str, int],
    a: str,
    b: str,
) -> str:
    ba, bb = boxes[a], boxes[b]
    if a == b:  # recursion: a loop on the right side
        x0, y0 = xs[a] + ba.width, ys[a] + ba.height / 2
        path = (
            f"M {x0:.1f} {y0 - 5:.1f} C {x0 + 28:.1f} {y0 - 20:.1f}, "
            f"{x0 + 28:.1f} {y0 + 20:.1f}, {x0:.1f} {y0 + 5:.1f}"
        )
    else:  # an edge back to the left (a cycle): under both boxes
        x0, y0 = xs[a] + ba.width / 2, ys[a] + ba.height
        x1, y1 = xs[b] + bb.width / 2, ys[b] + bb.height
        low = max(y0, y1) + 22
        path = f"M {x0:.1f} {y0:.1f} C {x0:.1f} {low:.1f}, {x1:.1f} {low:.1f}, {x1:.1f} {y1:.1f}"
    return f'<path d="{path}" marker-end="url(#arrow)"/>'


def _box(box: Box, x: float, y: float) -> str:
    radius = ' rx="6" ry="6"' if box.rounded else ""
    dash = ' stroke-dasharray="3 2"' if box.dashed else ""
    parts = ["<g>"]
    if box.tooltip:
        parts.append(f"<title>{escape(box.tooltip)}</title>")
    parts.append(
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{box.width:.1f}" height="{box.height:.1f}"'
        f"{radius} fill={quoteattr(box.fill)} stroke={quoteattr(box.stroke)} "
        f'stroke-width="{box.stroke_width:g}"{dash}/>'
    )
    for i, line in enumerate(box.lines):
        ty = y + _PAD_Y + (i + 1) * _LINE_HEIGHT - 3.5
        weight = ' font-weight="bold"' if i == 1 and len(box.lines) > 1 else ""
        parts.append(
            f'<text x="{x + _PAD_X:.1f}" y="{ty:.1f}" fill={quoteattr(box.text_color)}'
            f'{weight} xml:space="preserve">{escape(line)}</text>'
        )
    parts.append("</g>")
    return "".join(parts)
