"""Benchmark of site ranking: coverage sets, greedy, exact maximal covering, reallocation.

Run: ``python benchmarks/bench_sites.py`` (a synthetic city: a street lattice of
about 40,000 nodes, 50,000 residences, 1,000 candidate sites) or
``python benchmarks/bench_sites.py --osm FILE`` (the real walking network of an
OSM extract, e.g. a Chinese district, with synthetic residences).
Importable: ``benchmarks.bench_sites.main([...])`` returns the figures as a dict.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import shapely
from pyproj import CRS

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

from planner.access import Access  # noqa: E402
from planner.network import WalkNetwork  # noqa: E402
from planner.sites import (  # noqa: E402
    CoverageSets,
    GreedyRanking,
    MaximalCovering,
    Reallocation,
    site_distances,
    suitability,
)


def street_lattice(n_x: int, n_y: int, spacing_m: float) -> WalkNetwork:
    """A rectangular street lattice (blocks of ``spacing_m``) in a metric CRS."""
    x, y = np.meshgrid(np.arange(n_x) * spacing_m, np.arange(n_y) * spacing_m, indexing="ij")
    index = np.arange(n_x * n_y).reshape(n_x, n_y)
    u = np.r_[index[:-1, :].ravel(), index[:, :-1].ravel()]
    v = np.r_[index[1:, :].ravel(), index[:, 1:].ravel()]
    return WalkNetwork(node_ids=np.arange(n_x * n_y, dtype=np.int64),
                       node_xy=np.column_stack([x.ravel(), y.ravel()]) + 500_000.0,
                       edge_u=u, edge_v=v, edge_length_m=np.full(len(u), float(spacing_m)),
                       crs=CRS.from_epsg(32650))


def osm_network(path: Path) -> WalkNetwork:
    from planner.network import build_network
    from planner.sources import load_area

    if not path.exists():
        raise SystemExit(f"{path} is absent")
    return build_network(load_area(path))


def random_points(network: WalkNetwork, n: int, rng: np.random.Generator) -> np.ndarray:
    """Points scattered near random edges (within 40 m), so that all lie in the area."""
    edge = rng.integers(0, network.n_edges, n)
    t = rng.random(n)
    start, end = network.node_xy[network.edge_u[edge]], network.node_xy[network.edge_v[edge]]
    xy = start + t[:, None] * (end - start) + rng.uniform(-40, 40, size=(n, 2))
    return shapely.points(xy)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--osm", type=Path, default=None,
                        help="an OSM extract whose walking network replaces the lattice")
    parser.add_argument("--side", type=int, default=200, help="lattice nodes per side")
    parser.add_argument("--spacing", type=float, default=50.0, help="lattice block, m")
    parser.add_argument("--residences", type=int, default=50_000)
    parser.add_argument("--candidates", type=int, default=1_000)
    parser.add_argument("--facilities", type=int, default=40, help="existing facilities")
    parser.add_argument("--threshold", type=float, default=500.0, help="metres")
    parser.add_argument("--count", type=int, default=20, help="sites to choose")
    parser.add_argument("--premises", type=int, default=300, help="for the reallocation")
    parser.add_argument("--time-limit", type=float, default=120.0)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    rng = np.random.default_rng(args.seed)
    figures: dict = {}

    began = time.perf_counter()
    network = (street_lattice(args.side, args.side, args.spacing) if args.osm is None
               else osm_network(args.osm))
    homes = random_points(network, args.residences, rng)
    population = rng.integers(1, 120, args.residences).astype(float)
    sites = random_points(network, args.candidates, rng)
    existing = random_points(network, args.facilities, rng)
    figures["network_s"] = time.perf_counter() - began
    print(f"city: {args.osm or 'lattice'}, {network.n_nodes:,} nodes, {network.n_edges:,} edges; "
          f"{args.residences:,} residences, {args.candidates:,} candidates, "
          f"{args.facilities} existing facilities, threshold {args.threshold:g} m")

    began = time.perf_counter()
    home_snap = network.snap(homes)
    access = Access(network, existing, ["t"] * len(existing), {"t": args.threshold}).solve()
    covered = np.nan_to_num(access.point_distances(snap=home_snap)[:, 0],
                            nan=np.inf) <= args.threshold
    figures["existing_s"] = time.perf_counter() - began

    began = time.perf_counter()
    distances = site_distances(network, sites, home_snap, args.threshold)
    sets = CoverageSets.from_distances(distances, args.threshold, population, covered=covered)
    figures["coverage_sets_s"] = time.perf_counter() - began
    figures["incidence_nnz"] = int(sets.distance.nnz)
    figures["demand"] = len(sets.demand)

    began = time.perf_counter()
    greedy = GreedyRanking(sets.matrix, sets.population, count=args.count).solve()
    figures["greedy_s"] = time.perf_counter() - began

    began = time.perf_counter()
    exact = MaximalCovering(sets.matrix, sets.population, args.count,
                            time_limit_s=args.time_limit, start=greedy.order).solve()
    figures["exact_s"] = time.perf_counter() - began
    figures.update(greedy_population=greedy.objective, optimal_population=exact.objective,
                   ratio=greedy.objective / exact.objective if exact.objective else 1.0,
                   mip_gap=exact.mip_gap, status=exact.status, demand_rows=exact.n_groups,
                   bound=exact.bound)

    # the reallocation IP: premises among the candidates, five sized types
    began = time.perf_counter()
    minimum = {"station": 600.0, "centre": 800.0, "health": 120.0, "elderly": 350.0,
               "culture": 250.0}
    thresholds = {"station": 300.0, "centre": 1000.0, "health": 300.0, "elderly": 300.0,
                  "culture": 300.0}
    premises = sites[:args.premises]
    floor_area = rng.choice([150.0, 400.0, 700.0, 1200.0, 2500.0], size=len(premises))
    suitable, need = suitability(floor_area, np.full(len(premises), "", dtype=object),
                                 list(minimum), minimum)
    premises_distances = site_distances(network, premises, home_snap, max(thresholds.values()))
    realloc_sets = [CoverageSets.from_distances(
        premises_distances, thresholds[t], population, covered=covered,
        suitable=suitable[:, column], type_id=t) for column, t in enumerate(minimum)]
    figures["realloc_sets_s"] = time.perf_counter() - began
    began = time.perf_counter()
    plan = Reallocation(realloc_sets, floor_area, need, np.ones(len(minimum)),
                        max_per_type=args.count, time_limit_s=args.time_limit).solve()
    figures["realloc_s"] = time.perf_counter() - began
    figures.update(realloc_status=plan.status, realloc_gap=plan.mip_gap,
                   realloc_assignments=int(plan.assigned.sum()))

    print(f"coverage sets   {figures['coverage_sets_s']:8.3f} s  "
          f"({figures['incidence_nnz']:,} site-residence pairs, {figures['demand']:,} "
          f"uncovered residences in reach; existing coverage {figures['existing_s']:.3f} s)")
    print(f"greedy          {figures['greedy_s']:8.3f} s  ({len(greedy.order)} sites, "
          f"{greedy.objective:,.0f} residents)")
    print(f"exact (HiGHS)   {figures['exact_s']:8.3f} s  ({exact.status}, "
          f"{exact.objective:,.0f} residents, gap {exact.mip_gap:.4%}, "
          f"{exact.n_groups:,} demand rows after merging)")
    print(f"greedy/optimal  {figures['ratio']:8.4f}")
    print(f"reallocation    {figures['realloc_s']:8.3f} s  ({len(premises)} premises × "
          f"{len(minimum)} types, at most {args.count} per type: {plan.status}, "
          f"{figures['realloc_assignments']} assignments, gap {plan.mip_gap:.4%}; "
          f"coverage sets {figures['realloc_sets_s']:.3f} s)")
    return figures


if __name__ == "__main__":
    main()
