"""``checkpointing.graph(func)``: what a function's key depends on, for people.

This module owns the pictures: a text tree for the terminal, DOT and Mermaid for
documents, SVG (drawn by Graphviz when it is installed, else by
:mod:`checkpointing.drawing`), PNG through Graphviz, and the Jupyter display, which
needs no Graphviz. The graph comes from a
fresh analysis (:mod:`checkpointing.depgraph`); nodes that changed since the
function's most recent stored entry are marked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from typing import Any, Callable, Dict, List, Optional, Set

from .analysis.resolve import qualname_of, unwrap
from .source import display_path

__all__ = ["DependencyGraph", "graph"]

FUNCTION, METHOD, CLASS, GLOBAL, CLOSURE, EXTERNAL = (
    "function",
    "method",
    "class",
    "global",
    "closure",
    "external",
)

_DOT_STYLE: Dict[str, Dict[str, str]] = {
    FUNCTION: {"shape": "box", "style": "rounded,filled", "fillcolor": "#e8f0fe"},
    METHOD: {"shape": "box", "style": "rounded,filled", "fillcolor": "#e8f0fe"},
    CLASS: {"shape": "box3d", "style": "filled", "fillcolor": "#e6f4ea"},
    GLOBAL: {"shape": "ellipse", "style": "filled", "fillcolor": "#fef7e0"},
    CLOSURE: {"shape": "ellipse", "style": "filled", "fillcolor": "#fef7e0"},
    EXTERNAL: {"shape": "plaintext", "fontcolor": "#5f6368"},
}
_CHANGED_FILL = "#f9ab00"
_INSTALL_GRAPHVIZ = (
    "install Graphviz (apt-get install graphviz, brew install graphviz or "
    "conda install graphviz) so that its `dot` program is on PATH, or save "
    "as .dot or .mmd"
)


class DependencyGraph:
    """The dependency graph of one function; ``print()`` it, save it, or display it.

    Attributes:
        root: the qualified name of the function (``pkg.mod:func``).
        nx: the :class:`networkx.DiGraph`; nodes are qualified names with attributes
            ``kind`` (function, method, class, global, closure, external),
            ``qualname``, ``file``, ``line``, ``digest``, ``changed`` and
            ``blind_spots`` (``[(line, what), ...]``); edges point from user to used.
    """

    def __init__(self, root: str, nx_graph: Any) -> None:
        self.root = root
        self.nx = nx_graph

    # -- text ---------------------------------------------------------------------------
    def __str__(self) -> str:
        lines: List[str] = []
        seen: Set[str] = set()

        def walk(name: str, prefix: str, connector: str, child_prefix: str) -> None:
            lines.append(prefix + connector + self._label(name, name in seen))
            if name in seen:
                return
            seen.add(name)
            data = self.nx.nodes[name]
            for line, what in data.get("blind_spots", ()):
                at = f"line {line}: " if line else ""
                lines.append(prefix + child_prefix + f"  ! blind spot, {at}{what}")
            children = sorted(self.nx.successors(name), key=self._order)
            for i, child in enumerate(children):
                last = i == len(children) - 1
                walk(
                    child,
                    prefix + child_prefix,
                    "└── " if last else "├── ",
                    "    " if last else "│   ",
                )

        walk(self.root, "", "", "")
        changed = [n for n, d in self.nx.nodes(data=True) if d.get("changed")]
        if changed:
            lines.append(f"* changed since the most recent stored entry: {len(changed)}")
        return "\n".join(lines)

    def _order(self, name: str) -> Any:
        rank = {FUNCTION: 0, METHOD: 0, CLASS: 1, GLOBAL: 2, CLOSURE: 2, EXTERNAL: 3}
        return (rank.get(self.nx.nodes[name].get("kind"), 4), name)

    def _label(self, name: str, repeated: bool) -> str:
        data = self.nx.nodes[name]
        kind = data.get("kind", "?")
        text = f"{kind} {name}"
        if data.get("file"):
            where = display_path(data["file"])
            text += f"  ({where}:{data['line']})" if data.get("line") else f"  ({where})"
        if data.get("value") is not None:
            text += f" = {data['value']}"
        if data.get("arguments"):
            text += f"  [class of argument {', '.join(data['arguments'])}]"
        if data.get("changed"):
            text += "  * changed"
        if repeated:
            text += "  (see above)"
        return text

    def __repr__(self) -> str:
        return (
            f"<DependencyGraph of {self.root}: {self.nx.number_of_nodes()} nodes, "
            f"{self.nx.number_of_edges()} edges>"
        )

    # -- DOT and Mermaid --------------------------------------------------------------------
    def to_dot(self) -> str:
        """The graph in Graphviz's DOT language."""
        ids = {name: f"n{i}" for i, name in enumerate(self._names())}
        out = [
            "digraph checkpointing {",
            "  rankdir=LR;",
            '  node [fontname="Helvetica", fontsize=11];',
            '  edge [color="#5f6368"];',
        ]
        for name in self._names():
            data = self.nx.nodes[name]
            attributes = {
                "label": "\n".join(self._lines(name)),
                **_DOT_STYLE.get(data.get("kind"), {}),
            }
            if data.get("changed"):
                attributes["style"] = (
                    "filled" if "rounded" not in attributes.get("style", "") else "rounded,filled"
                )
                attributes["fillcolor"] = _CHANGED_FILL
            if data.get("blind_spots"):
                attributes.update(color="#d93025", penwidth="2")
            rendered = ", ".join(f'{k}="{_dot_escape(v)}"' for k, v in attributes.items())
            out.append(f"  {ids[name]} [{rendered}];")
        for a, b in self._edges(ids):
            out.append(f"  {ids[a]} -> {ids[b]};")
        out.append("}")
        return "\n".join(out) + "\n"

    def to_mermaid(self) -> str:
        """The graph as a Mermaid flowchart (rendered by GitHub and JupyterLab)."""
        ids = {name: f"n{i}" for i, name in enumerate(self._names())}
        out = ["flowchart LR"]
        for name in self._names():
            data = self.nx.nodes[name]
            label = "<br/>".join(_mermaid_escape(line) for line in self._lines(name))
            shape = ("([", "])") if data.get("kind") in (GLOBAL, CLOSURE) else ("[", "]")
            out.append(f'    {ids[name]}{shape[0]}"{label}"{shape[1]}')
        for a, b in self._edges(ids):
            out.append(f"    {ids[a]} --> {ids[b]}")
        out.append("    classDef external fill:#ffffff,stroke:#bdc1c6,color:#5f6368")
        out.append(f"    classDef changed fill:{_CHANGED_FILL},stroke:#b06000")
        out.append("    classDef blind stroke:#d93025,stroke-width:2px")
        for cls, test in (
            ("external", lambda d: d.get("kind") == EXTERNAL),
            ("changed", lambda d: d.get("changed")),
            ("blind", lambda d: d.get("blind_spots")),
        ):
            members = [ids[n] for n in self._names() if test(self.nx.nodes[n])]
            if members:
                out.append(f"    class {','.join(members)} {cls}")
        return "\n".join(out) + "\n"

    def _edges(self, ids: Dict[str, str]) -> List[Any]:
        return sorted(self.nx.edges(), key=lambda e: (int(ids[e[0]][1:]), int(ids[e[1]][1:])))

    def _names(self) -> List[str]:
        """Nodes in a stable order: the root first, then depth-first."""
        order: List[str] = []
        seen: Set[str] = set()

        def walk(name: str) -> None:
            if name in seen:
                return
            seen.add(name)
            order.append(name)
            for child in sorted(self.nx.successors(name), key=self._order):
                walk(child)

        walk(self.root)
        order.extend(sorted(n for n in self.nx.nodes if n not in seen))
        return order

    def _lines(self, name: str) -> List[str]:
        data = self.nx.nodes[name]
        lines = [f"{data.get('kind', '?')}", name]
        if data.get("file"):
            where = display_path(data["file"])
            lines.append(f"{where}:{data['line']}" if data.get("line") else where)
        if data.get("value") is not None:
            lines.append(f"= {data['value']}")
        if data.get("arguments"):
            lines.append(f"class of argument {', '.join(data['arguments'])}")
        if data.get("changed"):
            lines.append("changed")
        return lines

    # -- files and notebooks ------------------------------------------------------------------
    def save(self, path: "str | os.PathLike[str]") -> str:
        """Write the graph to ``path``, in the format its suffix names: ``.dot``,
        ``.mmd``, ``.txt``, ``.svg`` (Graphviz's drawing when it is installed, else the
        package's own) or ``.png`` (needs Graphviz)."""
        path = os.fspath(path)
        suffix = os.path.splitext(path)[1].lower()
        writers: Dict[str, Callable[[], Any]] = {
            ".dot": self.to_dot,
            ".gv": self.to_dot,
            ".mmd": self.to_mermaid,
            ".txt": lambda: str(self) + "\n",
            ".svg": self.to_svg,
            ".png": lambda: self._graphviz("png"),
        }
        writer = writers.get(suffix)
        if writer is None:
            raise ValueError(
                f"cannot save a graph as {suffix or 'a file without suffix'!r}; "
                f"use one of {', '.join(sorted(writers))}"
            )
        data = writer()
        mode = "wb" if isinstance(data, bytes) else "w"
        with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as handle:
            handle.write(data)
        return path

    def to_svg(self, engine: str = "auto") -> str:
        """The graph as SVG text.

        ``engine``: ``"graphviz"`` (needs its ``dot`` program), ``"builtin"`` (drawn by
        this package: a layered layout, self-contained, no Graphviz needed) or
        ``"auto"``, Graphviz when ``dot`` is on PATH, else the built-in drawing.
        """
        if engine not in ("auto", "graphviz", "builtin"):
            raise ValueError(f"engine must be 'auto', 'graphviz' or 'builtin', not {engine!r}")
        if engine == "builtin" or (engine == "auto" and shutil.which("dot") is None):
            return self._builtin_svg()
        return self._graphviz("svg").decode("utf-8")

    def _builtin_svg(self) -> str:
        from .drawing import Box, draw_svg

        boxes: Dict[str, Box] = {}
        for name in self._names():
            data = self.nx.nodes[name]
            kind = data.get("kind")
            style = _DOT_STYLE.get(kind, {})
            box = Box(
                self._lines(name),
                fill=style.get("fillcolor", "#ffffff"),
                stroke="#bdc1c6" if kind == EXTERNAL else "#5f6368",
                text_color=style.get("fontcolor", "#202124"),
                rounded=kind != CLASS,
                dashed=kind == EXTERNAL,
                tooltip=self._label(name, False),
            )
            if data.get("changed"):
                box.fill = _CHANGED_FILL
            if data.get("blind_spots"):
                box.stroke, box.stroke_width = "#d93025", 2.0
                box.tooltip += "".join(
                    f"\n! blind spot, line {line}: {what}" if line else f"\n! blind spot: {what}"
                    for line, what in data["blind_spots"]
                )
            boxes[name] = box
        ids = {name: f"n{i}" for i, name in enumerate(self._names())}
        edges = [(a, b) for a, b in self._edges(ids)]
        return draw_svg(boxes, self._names(), edges, title=f"dependencies of {self.root}")

    def _graphviz(self, fmt: str) -> bytes:
        dot = shutil.which("dot")
        if dot is None:
            raise RuntimeError(
                f"drawing a graph as {fmt.upper()} needs Graphviz: {_INSTALL_GRAPHVIZ}"
            )
        proc = subprocess.run(
            [dot, f"-T{fmt}"], input=self.to_dot().encode(), capture_output=True, check=False
        )
        if proc.returncode != 0:
            raise RuntimeError(f"Graphviz failed: {proc.stderr.decode(errors='replace')}")
        return proc.stdout

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_html_(self) -> str:
        # Jupyter shows HTML before SVG and Markdown: the drawing, inline, with the
        # XML prolog Graphviz writes left out (it is not valid inside HTML).
        svg = self.to_svg()
        start = svg.find("<svg")
        return '<div style="overflow:auto">' + svg[max(start, 0) :] + "</div>"

    def _repr_markdown_(self) -> str:
        return "```mermaid\n" + self.to_mermaid() + "```\n"


def _dot_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid_escape(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace('"', "#quot;").replace("<", "&lt;").replace(">", "&gt;")
    )


def _value_text(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = f"<{type(value).__name__}>"
    return text if len(text) <= 40 else text[:37] + "..."


def graph(func: Callable[..., Any], *args: Any, **kwargs: Any) -> DependencyGraph:
    """What ``func``'s key depends on: the definitions, globals and external names it
    reaches, as a :class:`DependencyGraph`.

    ``func`` may be decorated with :func:`checkpoint` or not. Nodes that changed since
    its most recent stored entry are marked (decorated functions only)::

        >>> print(checkpointing.graph(train))
        function proj.main:train  (proj/main.py:9)
        ├── function proj.features:scale  (proj/features.py:1)  * changed
        └── global proj.settings:RATE  (proj/settings.py) = 1

    Given the arguments of a call (``graph(length, v)``), it also shows the classes
    of your project among them (their code is in the key of that call), each with
    the methods defined in its body and what they reach.

    .. versionchanged:: 2.0 accepts the arguments of a call.
    """
    import inspect

    import networkx as nx

    from .depgraph import build_plan, member_digests
    from .identify import argument_classes

    decorator = getattr(func, "checkpoint", None)
    original = unwrap(func)
    if (
        not callable(original)
        or not hasattr(original, "__code__")
        and not isinstance(original, type)
    ):
        raise TypeError(f"graph() takes a function or a class, not {type(func).__name__}")
    arguments: Dict[str, Any] = {}
    if args or kwargs:
        try:
            arguments = dict(inspect.signature(original).bind(*args, **kwargs).arguments)
        except TypeError as exc:
            raise TypeError(
                f"graph({qualname_of(original)}, ...): the arguments do not fit "
                f"its signature ({exc}); pass them as in a call"
            ) from None
    plan = build_plan(original, warn=False)  # shows the blind spots itself
    previous = _latest_fingerprint(decorator, original) or {}
    g = nx.DiGraph()
    _add_plan(g, plan, previous.get("nodes", {}), previous.get("globals", {}), bool(previous))
    root = qualname_of(original)
    before_code = previous.get("argument_code", {})
    for name, value in arguments.items():
        for cls in argument_classes([value]):
            cls_plan = build_plan(cls)
            _add_plan(g, cls_plan, before_code, {}, False)
            node = qualname_of(cls)
            g.nodes[node].setdefault("arguments", []).append(name)
            g.add_edge(root, node)
            for method, (digest, filename, line) in member_digests(cls).items():
                if method not in g:
                    before = before_code.get(method)
                    g.add_node(
                        method,
                        kind=METHOD,
                        qualname=method,
                        file=filename,
                        line=line,
                        digest=digest,
                        changed=bool(before) and before[0] != digest,
                        blind_spots=[],
                    )
                g.add_edge(node, method)
    return DependencyGraph(root, g)


def _add_plan(
    g: Any,
    plan: Any,
    before_nodes: Dict[str, Any],
    before_globals: Dict[str, Any],
    mark_globals: bool,
) -> None:
    """Add the definitions, values and external names of ``plan`` to ``g``, marking
    what differs from the digests of the most recent entry."""
    for node in plan.nodes:
        if node.qualname in g:
            continue
        kind = node.kind
        if kind == FUNCTION and _is_method(node.qualname):
            kind = METHOD
        before = before_nodes.get(node.qualname)
        g.add_node(
            node.qualname,
            kind=kind,
            qualname=node.qualname,
            file=node.filename,
            line=node.lineno,
            digest=node.digest.hex(),
            changed=bool(before) and before[0] != node.digest.hex(),
            blind_spots=list(node.blind_spots),
        )
    values = plan.read_values()
    now_globals = plan.slot_digests() if mark_globals else {}
    for slot, value in zip(plan.slots, values):
        if slot.qualname in g:
            continue
        kind = CLOSURE if slot.cell is not None else GLOBAL
        module_file = _module_file(slot.qualname)
        g.add_node(
            slot.qualname,
            kind=kind,
            qualname=slot.qualname,
            file=module_file,
            line=None,
            digest=now_globals.get(slot.qualname),
            value=_value_text(value),
            changed=slot.qualname in before_globals
            and before_globals[slot.qualname] != now_globals.get(slot.qualname),
            blind_spots=[],
        )
    for node in plan.nodes:
        for child in node.edges:
            g.add_edge(node.qualname, plan.nodes[child].qualname)
        for index in node.slots:
            g.add_edge(node.qualname, plan.slots[index].qualname)
        for name in node.externals:
            if name not in g:
                g.add_node(
                    name,
                    kind=EXTERNAL,
                    qualname=name,
                    file=None,
                    line=None,
                    digest=None,
                    changed=False,
                    blind_spots=[],
                )
            g.add_edge(node.qualname, name)


def _is_method(qualname: str) -> bool:
    path = qualname.partition(":")[2].split(".")
    return len(path) > 1 and path[-2] != "<locals>"


def _module_file(qualname: str) -> Optional[str]:
    import sys

    module = sys.modules.get(qualname.partition(":")[0])
    return getattr(module, "__file__", None)


def _latest_fingerprint(decorator: Any, func: Any) -> Optional[Dict[str, Any]]:
    if decorator is None:
        return None
    from .identify import qualified_name

    try:
        history = decorator.cache.history(qualified_name(func))
    except Exception:
        return None
    return history[-1] if history else None
