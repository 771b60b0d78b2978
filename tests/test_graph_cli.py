"""graph(func) in every format, and the checkpointing command, on a small project.

Golden files in tests/golden/ hold the expected text tree, DOT and Mermaid; to
update them after a deliberate change of the drawing, run this file with
CHECKPOINTING_UPDATE_GOLDEN=1 and review the diff.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

GOLDEN = Path(__file__).resolve().parent / "golden"

FILES = {
    "proj/__init__.py": "",
    "proj/settings.py": "RATE = 2\n",
    "proj/features.py": """
        import math

        from proj.settings import RATE


        def scale(x):
            return x * RATE


        def pick(name):
            return getattr([math][0], name)
        """,
    "proj/model.py": """
        from proj.features import scale


        class Base:
            def bias(self):
                return 1


        class Model(Base):
            def predict(self, x):
                return scale(x) + self.bias()
        """,
    "proj/main.py": """
        from checkpointing import checkpoint
        from proj.features import pick, scale
        from proj.model import Model


        def countdown(n):
            return 0 if n == 0 else countdown(n - 1)


        @checkpoint
        def train(data, fn="floor"):
            print("RAN train")
            model = Model()
            return [pick(fn)(model.predict(x)) + scale(countdown(3)) for x in data]


        if __name__ == "__main__":
            print("RESULT", train([1.5, 2.5]))
        """,
}

DRAW = """
import sys
import checkpointing
from proj.main import train
g = checkpointing.graph(train)
fmt = sys.argv[1]
out = {"text": str, "dot": lambda g: g.to_dot(), "mermaid": lambda g: g.to_mermaid()}[fmt](g)
sys.stdout.write(out.rstrip(chr(10)) + chr(10))
"""


@pytest.fixture
def proj(project):
    for name, text in FILES.items():
        project.write(name, text)
    project.write("draw.py", DRAW)
    return project


def golden(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CHECKPOINTING_UPDATE_GOLDEN") == "1":
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), f"differs from {path}"


def draw(proj, fmt: str) -> str:
    run = proj.run("draw.py", fmt)
    # getattr([math][0], name) in pick(), an object the analysis cannot know, is drawn
    # as a blind spot; drawing does not warn (a call does, once).
    assert "BlindSpotWarning" not in run.stderr, run.stderr
    return run.stdout


@pytest.mark.parametrize(
    "fmt, name", [("text", "graph.txt"), ("dot", "graph.dot"), ("mermaid", "graph.mmd")]
)
def test_golden_drawings(proj, fmt, name) -> None:
    golden(name, draw(proj, fmt))


def test_changed_nodes_are_marked_after_an_edit(proj) -> None:
    proj.run("-m", "proj.main")
    text = FILES["proj/features.py"].replace("x * RATE", "x * RATE + 0")
    proj.write("proj/features.py", text)
    proj.write("proj/settings.py", "RATE = 3\n")
    tree = draw(proj, "text")
    marked = {
        line.lstrip("│├└─ ").split()[1]
        for line in tree.splitlines()
        if "* changed" in line and not line.startswith("*")
    }
    assert marked == {"proj.features:scale", "proj.settings:RATE"}, tree
    assert tree.rstrip().endswith("* changed since the most recent stored entry: 2")
    assert "#f9ab00" in draw(proj, "dot")
    assert "class " in draw(proj, "mermaid") and " changed" in draw(proj, "mermaid")


def test_nx_graph_attributes(proj, monkeypatch) -> None:
    monkeypatch.chdir(proj.root)
    monkeypatch.syspath_prepend(str(proj.root))
    import checkpointing
    from checkpointing.source import INDEX

    INDEX.add_project_path(str(proj.root / "proj" / "main.py"))
    try:
        from proj.main import train

        with warnings.catch_warnings():
            warnings.simplefilter("error", checkpointing.BlindSpotWarning)
            g = checkpointing.graph(train)  # shows the blind spot; no warning
    finally:
        for name in [m for m in sys.modules if m == "proj" or m.startswith("proj.")]:
            del sys.modules[name]
    nodes = g.nx.nodes
    assert nodes["proj.main:train"]["kind"] == "function"
    assert nodes["proj.model:Model"]["kind"] == "class"
    assert nodes["proj.settings:RATE"]["kind"] == "global"
    assert nodes["builtins:getattr"]["kind"] == "external"
    for name in ("proj.main:train", "proj.model:Model", "proj.features:scale"):
        data = nodes[name]
        assert data["qualname"] == name and data["file"].endswith(".py")
        assert isinstance(data["line"], int) and len(data["digest"]) == 32
    assert ("proj.model:Model", "proj.model:Base") in g.nx.edges
    assert ("proj.main:countdown", "proj.main:countdown") in g.nx.edges  # recursion
    assert nodes["proj.features:pick"]["blind_spots"][0][1].startswith("getattr()")
    assert g._repr_markdown_().startswith("```mermaid\nflowchart LR")


def test_svg_and_png(proj) -> None:
    if shutil.which("dot") is None:
        if os.environ.get("CHECKPOINTING_REQUIRE_GRAPHVIZ") == "1":
            pytest.fail("Graphviz's dot is not installed; .ci/run should have installed it")
        pytest.skip("Graphviz is not installed (.ci/run installs it)")
    script = proj.write(
        "save.py",
        DRAW.replace(
            'out = {"text"',
            "g.save(sys.argv[2]); print(g._repr_svg_()[:5]); print(g._repr_html_()[:32]); "
            'out = {"text"',
        ),
    )
    assert script
    run = proj.run("save.py", "text", "out.svg")
    root = ET.parse(proj.root / "out.svg").getroot()
    assert root.tag.endswith("svg")
    texts = "".join(root.itertext())
    assert "proj.main:train" in texts and "proj.model:Model" in texts
    assert run.stdout.startswith("<?xml") or run.stdout.startswith("<svg")
    # In HTML, Graphviz's drawing without its XML prolog.
    assert run.stdout.splitlines()[1] == '<div style="overflow:auto"><svg ', run.stdout
    proj.run("save.py", "text", "out.png")
    assert (proj.root / "out.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_saving_without_graphviz_names_what_to_install(proj) -> None:
    run = proj.run(
        "-c",
        "import os; os.environ['PATH'] = ''\n"
        + DRAW.replace('out = {"text"', 'g.save("x.png"); out = {"text"'),
        "text",
        expect_ok=False,
    )
    assert "needs Graphviz" in run.stderr and "apt-get install graphviz" in run.stderr
    run = proj.run(
        "-c",
        DRAW.replace('out = {"text"', 'g.save("x.pdf"); out = {"text"'),
        "text",
        expect_ok=False,
    )
    assert "cannot save a graph as '.pdf'" in run.stderr


SVG = "{http://www.w3.org/2000/svg}"


def test_without_graphviz_the_package_draws_the_svg(proj) -> None:
    """In Jupyter without Graphviz, the graph displays as SVG the package draws: every
    node a box with its name, every edge a path, the edited node orange and the blind
    spot outlined in red, no box over another, and each edge from left to right
    unless it closes a cycle."""
    proj.run("-m", "proj.main")
    text = FILES["proj/features.py"].replace("x * RATE", "x * RATE + 0")
    proj.write("proj/features.py", text)
    script = DRAW.replace(
        'out = {"text"',
        "import os, json; os.environ['PATH'] = ''\n"
        "g.save('saved.svg')\n"
        "json.dump({'html': g._repr_html_(), 'svg': g._repr_svg_(),\n"
        "           'nodes': list(g.nx.nodes), 'edges': list(g.nx.edges)},\n"
        "          open('out.json', 'w'))\n"
        'out = {"text"',
    )
    proj.write("jupyter.py", script)
    proj.run("jupyter.py", "text")
    out = json.loads((proj.root / "out.json").read_text())
    assert out["html"].startswith('<div style="overflow:auto"><svg ')
    assert (proj.root / "saved.svg").read_text() == out["svg"]
    root = ET.fromstring(out["svg"])
    assert root.tag == SVG + "svg"
    boxes = {}
    for group in root.iter(SVG + "g"):
        rect = group.find(SVG + "rect")
        if rect is None:
            continue
        lines = [t.text for t in group.findall(SVG + "text")]
        boxes[lines[1]] = (lines, rect.attrib)
    assert sorted(boxes) == sorted(out["nodes"])
    paths = root.findall(f"{SVG}g/{SVG}path")
    assert len(paths) == len(out["edges"])
    assert boxes["proj.features:scale"][1]["fill"] == "#f9ab00"
    assert boxes["proj.features:scale"][0][-1] == "changed"
    assert boxes["proj.main:train"][1]["fill"] != "#f9ab00"
    assert boxes["proj.features:pick"][1]["stroke"] == "#d93025"
    assert boxes["proj.settings:RATE"][0][-1] == "= 2"

    def box(name):
        a = boxes[name][1]
        return tuple(float(a[k]) for k in ("x", "y", "width", "height"))

    names = sorted(boxes)
    for i, a in enumerate(names):
        ax, ay, aw, ah = box(a)
        for b in names[i + 1 :]:
            bx, by, bw, bh = box(b)
            assert ax + aw <= bx or bx + bw <= ax or ay + ah <= by or by + bh <= ay, (a, b)
    width = float(root.attrib["width"])
    for name in names:
        x, y, w, h = box(name)
        assert 0 <= x and x + w <= width and 0 <= y and y + h <= float(root.attrib["height"])
    for a, b in out["edges"]:
        if a != b and b != "proj.main:countdown":
            assert box(a)[0] + box(a)[2] < box(b)[0], (a, b)


def test_layers_break_cycles_and_keep_edges_pointing_right() -> None:
    from checkpointing.drawing import layers

    order = ["root", "a", "b", "c", "leaf"]
    edges = [("root", "a"), ("a", "b"), ("b", "a"), ("b", "b"), ("root", "leaf"), ("b", "leaf")]
    edges.append(("root", "c"))
    columns = layers(order, edges)
    layer = {n: i for i, column in enumerate(columns) for n in column}
    assert layer == {"root": 0, "a": 1, "c": 1, "b": 2, "leaf": 3}
    assert sorted(n for column in columns for n in column) == sorted(order)

    from checkpointing.drawing import Box, draw_svg

    svg = draw_svg({n: Box(["function", n]) for n in order}, order, edges, title="t")
    root = ET.fromstring(svg)
    assert len(root.findall(f"{SVG}g/{SVG}path")) == len(edges)
    assert [t.text for t in root.iter(SVG + "text")][1::2] == order


def test_svg_engine_is_checked(monkeypatch) -> None:
    import networkx as nx

    from checkpointing.render import DependencyGraph

    g = nx.DiGraph()
    g.add_node("m:f", kind="function")
    graph = DependencyGraph("m:f", g)
    with pytest.raises(ValueError, match="engine must be"):
        graph.to_svg(engine="dot")
    monkeypatch.setenv("PATH", "")
    assert graph.to_svg().startswith("<svg")
    with pytest.raises(RuntimeError, match="needs Graphviz"):
        graph.to_svg(engine="graphviz")


# -- the command line ------------------------------------------------------------------


def cli(proj, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env.pop("PYTHONHASHSEED", None)
    return subprocess.run(
        [sys.executable, "-m", "checkpointing", *args],
        cwd=proj.root,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_ls_show_and_json(proj) -> None:
    assert "no entries" in cli(proj, "ls").stdout
    proj.run("-m", "proj.main")
    out = cli(proj, "ls")
    assert out.returncode == 0
    assert "proj.main:train" in out.stdout and "1 functions, 1 entries" in out.stdout
    rows = json.loads(cli(proj, "ls", "--json").stdout)
    assert rows[0]["function"] == "proj.main:train" and rows[0]["entries"] == 1
    shown = json.loads(cli(proj, "show", "train", "--json").stdout)
    assert len(shown) == 1 and shown[0]["run_seconds"] >= 0
    assert set(shown[0]["arguments"]) == {"data", "fn"}
    assert cli(proj, "show", "nope").returncode == 1


def test_graph_command_formats(proj) -> None:
    text = cli(proj, "graph", "proj.main:train")
    assert text.returncode == 0 and text.stdout == (GOLDEN / "graph.txt").read_text()
    assert (
        cli(proj, "graph", "proj.main:train", "--format", "dot").stdout
        == (GOLDEN / "graph.dot").read_text()
    )
    assert (
        cli(proj, "graph", "proj.main:train", "--format", "mermaid").stdout
        == (GOLDEN / "graph.mmd").read_text()
    )
    written = cli(proj, "graph", "proj.main:train", "-o", "g.mmd")
    assert (
        written.returncode == 0
        and (proj.root / "g.mmd").read_text() == (GOLDEN / "graph.mmd").read_text()
    )
    data = json.loads(cli(proj, "graph", "proj.main:train", "--json").stdout)
    assert {n["id"] for n in data["nodes"]} >= {"proj.main:train", "proj.model:Model"}
    bad = cli(proj, "graph", "proj.main")
    assert bad.returncode == 2 and "MODULE:FUNCTION" in bad.stderr
    missing = cli(proj, "graph", "proj.main:nothing")
    assert missing.returncode == 2 and "has no 'nothing'" in missing.stderr


def test_why_command(proj) -> None:
    first = cli(proj, "why", "proj.main:train", "[[1.5, 2.5]]")
    assert first.stdout.strip().replace("\\", "/") == (
        "proj.main:train runs: first call\n  not tracked (blind spots): proj/features.py:11 "
        "getattr() with a computed attribute name"
    )
    proj.run("-m", "proj.main")
    hit = cli(proj, "why", "proj.main:train", '{"args": [[1.5, 2.5]]}')
    assert "answered from the cache" in hit.stdout
    proj.write("proj/settings.py", "RATE = 5\n")
    changed = json.loads(cli(proj, "why", "proj.main:train", "[[1.5, 2.5]]", "--json").stdout)
    assert changed["summary"] == "proj.main:train re-runs: global proj.settings:RATE changed"
    assert changed["changes"] == [{"kind": "global", "name": "proj.settings:RATE", "where": None}]
    assert changed["blind_spots"] == [
        "proj/features.py:11 getattr() with a computed attribute name"
    ]
    bad = cli(proj, "why", "proj.main:train", "[1,")
    assert bad.returncode == 2 and "neither JSON nor Python literals" in bad.stderr


def test_clear_asks_unless_yes(proj) -> None:
    proj.run("-m", "proj.main")
    declined = cli(proj, "clear")
    assert declined.returncode == 1 and "pass --yes" in declined.stderr
    assert "delete " in declined.stdout and "proj.main:train" in declined.stdout
    assert "1 entries" in cli(proj, "ls").stdout
    done = cli(proj, "clear", "train", "--yes")
    assert done.returncode == 0 and "deleted 1 entries" in done.stdout
    assert "no entries" in cli(proj, "ls").stdout


def test_prune(proj) -> None:
    for rate in ("2", "3", "4"):
        proj.write("proj/settings.py", f"RATE = {rate}\n")
        proj.run("-m", "proj.main")
    dry = cli(proj, "prune", "--keep-latest", "1", "--dry-run")
    assert dry.returncode == 0 and "would delete 2 entries" in dry.stdout
    assert "3 entries" in cli(proj, "ls").stdout
    assert cli(proj, "prune", "--older-than", "1d", "--yes").stdout.strip() == "nothing to prune"
    assert "deleted 2 entries" in cli(proj, "prune", "--max-size", "2KB", "--yes").stdout
    assert cli(proj, "prune").returncode == 2
    assert cli(proj, "prune", "--max-size", "lots").returncode == 2


def test_verify_finds_and_removes_corrupt_entries(proj) -> None:
    proj.run("-m", "proj.main")
    assert cli(proj, "verify").returncode == 0
    (entry,) = (proj.root / ".checkpointing" / "entries").glob("*.ckpt")
    entry.write_bytes(entry.read_bytes()[:-3])
    report = cli(proj, "verify")
    assert report.returncode == 1 and "1 corrupt" in report.stdout and entry.name in report.stdout
    assert cli(proj, "verify", "--remove").returncode == 0
    assert not entry.exists()


def test_dir_option_and_help_examples(proj) -> None:
    proj.write(
        "other.py",
        "from checkpointing import checkpoint\n\n"
        "@checkpoint(directory='elsewhere')\ndef f():\n    return 1\n\nf()\n",
    )
    proj.run("other.py")
    assert "1 entries" in cli(proj, "ls", "--dir", "elsewhere").stdout
    for command in ("ls", "show", "graph", "why", "clear", "prune", "verify"):
        helped = cli(proj, command, "--help")
        assert helped.returncode == 0 and "Example: checkpointing " + command in helped.stdout
    assert cli(proj, "frobnicate").returncode == 2
