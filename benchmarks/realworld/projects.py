"""The real codebases of the suite: pinned sdists, their drivers and their edits.

Each edit replaces ``old`` (which must occur exactly once in ``file``) with ``new``.
``logic`` edits change code that the driver's calls execute (the runner checks the
first changed line is executed by an undecorated, traced run); ``cosmetic`` edits
change comments, docstrings or layout of executed code; ``unreached`` edits change
code that no call executes and that nothing the calls reach refers to.
"""

from typing import Any, Dict, List

Edit = Dict[str, str]


def _edit(kind: str, file: str, old: str, new: str, note: str) -> Edit:
    return {"kind": kind, "file": file, "old": old, "new": new, "note": note}


TABULATE_EDITS: List[Edit] = [
    _edit(
        "logic",
        "tabulate/__init__.py",
        'return "|" + "|".join(segments) + "|"',
        'return "|" + "+".join(segments) + "|"',
        "_pipe_line_with_colons joins with +",
    ),
    _edit(
        "logic",
        "tabulate/__init__.py",
        'fmt = "{0:>%ds}" % width',
        'fmt = "{0:>%ds}" % (width + 1)',
        "_padleft pads one more",
    ),
    _edit(
        "logic",
        "tabulate/__init__.py",
        'alignment = {"left": "l", "right": "r", "center": "c", "decimal": "r"}',
        'alignment = {"left": "l", "right": "r", "center": "c", "decimal": "R"}',
        "_latex_line_begin_tabular: decimal is R",
    ),
    _edit(
        "cosmetic",
        "tabulate/__init__.py",
        '"""Flush right.',
        '"""Flush right (pad on the left).',
        "docstring of _padleft",
    ),
    _edit(
        "cosmetic",
        "tabulate/__init__.py",
        "    begin, sep, end = rowfmt\n",
        "    begin, sep, end = rowfmt  # the three parts of a row\n",
        "comment in _build_simple_row",
    ),
    _edit(
        "cosmetic",
        "tabulate/__init__.py",
        "return (begin + sep.join(padded_cells) + end).rstrip()",
        "return (begin+sep.join(padded_cells)+end).rstrip( )",
        "layout of _build_simple_row",
    ),
    _edit(
        "unreached",
        "tabulate/__init__.py",
        "    table = [re.split(sep, r.rstrip()) for r in rows if r.strip()]",
        "    table = [re.split(sep, r.strip()) for r in rows if r.strip()]",
        "_pprint_file (the command line)",
    ),
]

MARKDOWN_EDITS: List[Edit] = [
    _edit(
        "logic",
        "markdown/extensions/tables.py",
        "            tag = 'th'",
        "            tag = 'td'",
        "tables extension (loaded by name): header cells",
    ),
    _edit(
        "logic",
        "markdown/extensions/toc.py",
        "value = re.sub(r'[^\\w\\s-]', '', value).strip().lower()",
        "value = re.sub(r'[^\\w\\s-]', '', value).strip()",
        "toc extension (loaded by name): slugify keeps case",
    ),
    _edit(
        "logic",
        "markdown/extensions/footnotes.py",
        "            return 'fn{}{}'.format(self.get_separator(), id)",
        "            return 'note{}{}'.format(self.get_separator(), id)",
        "footnotes extension (loaded by name): footnote ids",
    ),
    _edit(
        "logic",
        "markdown/serializers.py",
        "            text = RE_AMP.sub('&amp;', text)\n        if \"<\" in text:\n"
        '            text = text.replace("<", "&lt;")\n        if ">" in text:\n'
        '            text = text.replace(">", "&gt;")\n        return text',
        "            text = RE_AMP.sub('&#38;', text)\n        if \"<\" in text:\n"
        '            text = text.replace("<", "&lt;")\n        if ">" in text:\n'
        '            text = text.replace(">", "&gt;")\n        return text',
        "core serializer: & escaped as &#38;",
    ),
    _edit(
        "cosmetic",
        "markdown/extensions/toc.py",
        '""" Slugify a string, to make it URL friendly. """',
        '""" Slugify a string so that it can be part of a URL. """',
        "docstring of slugify",
    ),
    _edit(
        "cosmetic",
        "markdown/extensions/tables.py",
        "        tag = 'td'\n        if parent.tag == 'thead':",
        "        tag = 'td'  # body cells\n        if parent.tag == 'thead':",
        "comment in the tables extension",
    ),
    _edit(
        "cosmetic",
        "markdown/serializers.py",
        "def _escape_cdata(text) -> str:\n    # escape character data\n",
        "def _escape_cdata(text) -> str:\n    # escape character data\n\n",
        "blank line in the core serializer",
    ),
    _edit(
        "unreached",
        "markdown/extensions/abbr.py",
        "        abbr.set('title', self.title)",
        "        abbr.set('title', self.title.upper())",
        "abbr extension (never loaded)",
    ),
    _edit(
        "unreached",
        "markdown/__main__.py",
        "def parse_options(args=None, values=None):",
        "def parse_options(args=None, values=()):",
        "command line options",
    ),
]

NETWORKX_EDITS: List[Edit] = [
    _edit(
        "logic",
        "networkx/algorithms/shortest_paths/unweighted.py",
        "    nextlevel = firstlevel\n    level = 0\n    n = len(adj)",
        "    nextlevel = firstlevel\n    level = 1\n    n = len(adj)",
        "_single_shortest_path_length starts at level 1",
    ),
    _edit(
        "logic",
        "networkx/algorithms/centrality/betweenness.py",
        "scale = 1 / ((n - 1) * (n - 2))",
        "scale = 2 / ((n - 1) * (n - 2))",
        "_rescale doubles",
    ),
    _edit(
        "logic",
        "networkx/algorithms/centrality/betweenness.py",
        "            betweenness[w] += delta[w]\n    return betweenness, delta\n\n\n"
        "def _accumulate_endpoints",
        "            betweenness[w] += 2 * delta[w]\n    return betweenness, delta\n\n\n"
        "def _accumulate_endpoints",
        "_accumulate_basic doubles",
    ),
    _edit(
        "logic",
        "networkx/algorithms/components/connected.py",
        "    adj = G._adj\n    n = len(adj)\n    seen = {source}",
        "    adj = G._adj\n    n = len(adj)\n    seen = {source, -1}",
        "_plain_bfs adds a node",
    ),
    _edit(
        "cosmetic",
        "networkx/algorithms/centrality/betweenness.py",
        "scale = 1 / ((n - 1) * (n - 2))",
        "scale = 1 / ((n - 1) * (n - 2))  # pairs of other nodes",
        "comment in _rescale",
    ),
    _edit(
        "cosmetic",
        "networkx/algorithms/components/connected.py",
        '"""A fast BFS node generator"""',
        '"""A fast breadth-first search."""',
        "docstring of _plain_bfs",
    ),
    _edit(
        "cosmetic",
        "networkx/algorithms/centrality/betweenness.py",
        "            betweenness[w] += delta[w]\n    return betweenness, delta\n\n\n"
        "def _accumulate_endpoints",
        "            betweenness[w] += (delta[w])\n    return betweenness, delta\n\n\n"
        "def _accumulate_endpoints",
        "layout of _accumulate_basic",
    ),
    _edit(
        "unreached",
        "networkx/algorithms/centrality/betweenness.py",
        "            c = sigma[v] * coeff\n            if (v, w) not in betweenness:",
        "            c = sigma[v] * coeff * 2\n            if (v, w) not in betweenness:",
        "_accumulate_edges (edge betweenness only)",
    ),
    _edit(
        "unreached",
        "networkx/algorithms/cycles.py",
        "def find_cycle(G, source=None, orientation=None):",
        'def find_cycle(G, source=None, orientation="original"):',
        "find_cycle default",
    ),
]

PROJECTS: Dict[str, Dict[str, Any]] = {
    "tabulate": {
        "requirement": "tabulate==0.9.0",
        "archive": "tabulate-0.9.0.tar.gz",
        "sha256": "0095b12bf5966de529c0feb1fa08671671b3368eec77d7ef7ab114be2c068b3c",
        "package": "tabulate",
        "driver": "tabulate_driver.py",
        "edits": TABULATE_EDITS,
    },
    "markdown": {
        "requirement": "markdown==3.5.2",
        "archive": "Markdown-3.5.2.tar.gz",
        "sha256": "e1ac7b3dc550ee80e602e71c1d168002f062e49f1b11e26a36264dafd4df2ef8",
        "package": "markdown",
        "driver": "markdown_driver.py",
        "edits": MARKDOWN_EDITS,
    },
    "networkx": {
        "requirement": "networkx==3.2.1",
        "archive": "networkx-3.2.1.tar.gz",
        "sha256": "9f1bb5cf3409bf324e0a722c20bdb4c20ee39bf1c30ce8ae499c8502b0b5e0c6",
        "package": "networkx",
        "driver": "networkx_driver.py",
        "edits": NETWORKX_EDITS,
    },
}
