"""Keys on a large real codebase do not depend on the order of the calls.

The installed networkx (a dependency of checkpointing, so present wherever the tests
run) is copied into the project folder, where it is the user's own code: about 300
modules and a registry of some 750 dispatchers that read the registry themselves,
which every function below reaches. What one key computation digests (the registry,
the cycle of definitions it belongs to) is offered to the next while nothing it read
changed; an offer taken wrongly makes a key depend on which function asked first.
Each function's key must be the one it gets alone, in a new process or the same one.
"""

from __future__ import annotations

import shutil

import networkx

DRIVER = """
    import sys
    import networkx as nx
    from checkpointing import checkpoint

    @checkpoint
    def path_lengths(n, m, seed):
        print("RAN path_lengths")
        G = nx.gnm_random_graph(n, m, seed=seed)
        lengths = dict(nx.all_pairs_shortest_path_length(G))
        return sum(sum(d.values()) for d in lengths.values())

    @checkpoint
    def components(G):
        print("RAN components")
        return sorted(len(c) for c in nx.connected_components(G))

    @checkpoint
    def betweenness(n, m, seed):
        print("RAN betweenness")
        G = nx.gnm_random_graph(n, m, seed=seed)
        return sorted(round(v, 9) for v in nx.betweenness_centrality(G).values())

    CALLS = {
        "p": lambda: path_lengths(40, 90, 1),
        "c": lambda: components(nx.petersen_graph()),
        "b": lambda: betweenness(30, 60, 2),
    }
    for name in sys.argv[1]:
        print("RESULT", name, CALLS[name]())
"""


def test_keys_of_networkx_as_project_code_do_not_depend_on_the_order_of_calls(
    project,
) -> None:
    shutil.copytree(
        networkx.__path__[0],
        project.root / "networkx",
        ignore=shutil.ignore_patterns("tests", "__pycache__"),
    )
    project.write("main.py", DRIVER)
    first = project.run("main.py", "b")  # alone: analysis made and stored
    assert first.ran == ["betweenness"], first
    second = project.run("main.py", "pcb")  # after the two others, in a new process
    assert second.ran == ["path_lengths", "components"], second
    assert second.results[2] == first.results[0]
    third = project.run("main.py", "cbpbc")  # another order: all hits
    assert third.ran == [], third
    assert sorted(set(third.results)) == sorted(second.results)
