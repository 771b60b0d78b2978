"""networkx 3.2.1 (358 modules): graph algorithms; one call takes a Graph argument."""

import networkx as nx
from rw_harness import cache, main, ran


@cache
def path_lengths(n, m, seed):
    ran("path_lengths")
    G = nx.gnm_random_graph(n, m, seed=seed)
    lengths = dict(nx.all_pairs_shortest_path_length(G))
    return sum(sum(d.values()) for d in lengths.values())


@cache
def components(G):
    ran("components")
    sizes = sorted(len(c) for c in nx.connected_components(G))
    return sizes, max(d for _, d in G.degree), G.number_of_edges()


@cache
def betweenness(n, m, seed):
    ran("betweenness")
    G = nx.gnm_random_graph(n, m, seed=seed)
    return sorted(round(v, 9) for v in nx.betweenness_centrality(G).values())


def graph():
    G = nx.Graph()
    G.add_edges_from([(i, (i * 7 + 3) % 40) for i in range(40) if i % 5])
    return G


if __name__ == "__main__":
    G = graph()
    main(
        [
            ("path_lengths", path_lengths, (60, 150, 1)),
            ("components", components, (G,)),
            ("betweenness", betweenness, (40, 90, 2)),
        ]
    )
