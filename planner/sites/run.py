"""The whole run: load the sites, measure, rank per type, plan the premises."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import settings
from planner.errors import PlannerError
from planner.sites.coverage_sets import coverage_sets
from planner.sites.inputs import (
    AVAILABLE_STATUSES,
    generate_candidates,
    load_candidates,
    load_premises,
    site_table,
)
from planner.sites.labels import site_labels, with_coordinates
from planner.sites.models import GreedyRanking, MaximalCovering, Reallocation
from planner.sites.plan import empty_change, empty_plan, plan_tables
from planner.sites.rules import (
    minimum_floor_areas,
    pool,
    ranked_types,
    suitability,
    type_weights,
)
from planner.sites.tables import (
    OPTIMAL_COLUMNS,
    candidate_layer,
    candidate_rows,
    empty_ranking,
    optimal_row,
    ranking_rows,
)
from planner.timing import Progress, Stopwatch


@dataclass
class SitesResult:
    """Everything :func:`rank_sites` computed, in the area's metric CRS.

    Attributes
    ----------
    sites
        Every candidate site: ``site_id``, ``kind`` (premises | candidate |
        generated), ``name``, ``floor_area_m2``, ``allowed_types``,
        ``suitable_types``, point geometry; in tie-break order.
    ranking
        The greedy ranking (``sites.csv``): ``type_id``, ``scene_id``, ``pool``,
        ``rank``, ``site_id``, ``kind``, ``name``, ``floor_area_m2``,
        ``added_population``, ``cumulative_population``, ``coverage_before``,
        ``cumulative_coverage``, ``communities`` (ids of the communities that
        gain, comma-separated, largest gain first), ``community_gains``
        ("HEL04 +942; HEL06 +734"), point geometry.
    candidates
        The ``candidates`` map layer: one row per ranked (type, site), see
        :func:`~planner.sites.tables.candidate_layer`.
    optimal
        Per type: greedy against the exact maximal-covering solution.
    premises
        The premises as loaded (all statuses), original geometry.
    plan
        The reallocation plan (``reallocation.csv``): one row per (premises, type).
    community_change
        Coverage per community and reallocated type before and after the plan.
    reallocation
        Objective, bound, gap, status and solve time of the plan.
    pool
        One row per (site, type) in the type's pool: standalone population,
        greedy rank, whether the exact solution opens it.
    """

    sites: gpd.GeoDataFrame
    ranking: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    optimal: pd.DataFrame
    premises: gpd.GeoDataFrame | None
    plan: pd.DataFrame
    community_change: pd.DataFrame
    reallocation: dict
    parameters: dict
    timings_s: dict[str, float] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)
    pool: gpd.GeoDataFrame | None = None


def rank_sites(  # noqa: PLR0913 (the keyword options of `planner sites`)
    analysis,
    premises=None,
    *,
    candidates=None,
    types: Sequence[str] | None = None,
    count: int = 5,
    new_sites: str = "auto",
    generate: str = "grid",
    spacing_m: float = 100.0,
    weights=None,
    weighting: str = "type",
    min_floor_area_m2: Mapping[str, float] | None = None,
    reallocate: bool = True,
    max_per_type: int | None = None,
    time_limit_s: float = 60.0,
    progress: Progress | None = None,
    basemap: str | None = None,
) -> SitesResult:
    """Rank candidate sites per facility type and plan the reallocation of premises.

    Parameters
    ----------
    analysis
        The :class:`planner.pipeline.Analysis` of the area (existing facilities fixed).
    premises
        Premises file or GeoDataFrame (see :func:`load_premises`), or an
        already loaded table.
    candidates
        The planner's candidate sites (see :func:`load_candidates`).
    types
        Facility types to rank and reallocate; by default every type premises
        can take (a minimum floor area, or named in an ``allowed_types``).
    count
        Sites to rank per type, and the size of the exact maximal-covering solution.
    new_sites
        ``"auto"``: generated sites join a type's pool only when no premises or
        candidate adds a resident; ``"always"``; ``"never"``.
    generate, spacing_m
        How new sites are generated (:func:`generate_candidates`).
    weights, weighting
        Reallocation weights (:func:`type_weights`).
    min_floor_area_m2
        Minimum floor area per type, replacing the catalogue's.
    reallocate
        Also solve the reallocation plan.
    max_per_type
        At most this many premises per type in the plan (no limit when omitted).
    time_limit_s
        HiGHS time limit per solve.
    progress
        Called with ``(stage, seconds)`` after each stage.
    basemap
        The map's basemap: with a GCJ-02 one (``amap``) the ranking and the
        candidates also get ``lon_gcj02``, ``lat_gcj02``.
    """
    _check_options(new_sites, max_per_type, count)
    clock = Stopwatch(progress)
    run = _Run(analysis, count=count, new_sites=new_sites, time_limit_s=time_limit_s,
               basemap=basemap)
    with clock.stage("sites_load"):
        run.load(premises, candidates, types, generate, spacing_m, min_floor_area_m2)
    with clock.stage("coverage_sets"):
        run.measure()
    with clock.stage("ranking"):
        ranking, pool_table, optimal = run.rank()
        candidate_table = candidate_layer(ranking, pool_table, run.type_names, settings.lang)
    with clock.stage("reallocation"):
        weight_of = type_weights(analysis.catalogue, run.type_ids, weights, weighting)
        if weights is not None and not isinstance(weights, Mapping):
            run.inputs.append(Path(weights))
        plan, change, summary = empty_plan(), empty_change(), {"status": "not run"}
        if reallocate and run.premises is not None:
            plan, change, summary = run.reallocate(weight_of, max_per_type)
    parameters = {
        "types": run.type_ids, "count": count, "new_sites": new_sites, "generate": generate,
        "spacing_m": spacing_m, "weighting": weighting, "type_weights": weight_of,
        "min_floor_area_m2": {t: run.minimum[t] for t in run.type_ids},
        "available_statuses": list(AVAILABLE_STATUSES), "max_per_type": max_per_type,
        "time_limit_s": time_limit_s, "basemap": basemap, "type_names": run.type_names,
    }
    return SitesResult(sites=run.sites, ranking=ranking, candidates=candidate_table,
                       optimal=optimal, premises=run.premises, plan=plan,
                       community_change=change, reallocation=summary, parameters=parameters,
                       timings_s=clock.timings, inputs=run.inputs, pool=pool_table)


def _check_options(new_sites: str, max_per_type: int | None, count: int) -> None:
    if new_sites not in ("auto", "always", "never"):
        message = f"unknown new-sites mode {new_sites!r} (auto, always or never)"
        raise PlannerError(message)
    if max_per_type is not None and max_per_type < 0:
        message = f"the premises per type must be ≥ 0, got {max_per_type}"
        raise PlannerError(message)
    if count < 1:
        message = f"the number of sites must be at least 1, got {count}"
        raise PlannerError(message)


class _Run:
    """The stages of :func:`rank_sites` and what they pass on to each other."""

    def __init__(self, analysis, *, count: int, new_sites: str, time_limit_s: float,
                 basemap: str | None) -> None:
        self.analysis = analysis
        self.basemap = basemap
        self.count = count
        self.new_sites = new_sites
        self.time_limit_s = time_limit_s
        self.inputs: list[Path] = []
        self.premises: gpd.GeoDataFrame | None = None

    def load(self, premises, candidates, types, generate: str, spacing_m: float,
             min_floor_area_m2) -> None:
        """Read the premises and candidates, generate new sites, decide suitability."""
        cat, network = self.analysis.catalogue, self.analysis.network
        if premises is not None:
            if isinstance(premises, gpd.GeoDataFrame) and "available" in premises:
                self.premises = premises.to_crs(network.crs)
            else:
                self.premises = load_premises(premises, network, cat)
                self._note_input(premises)
        if self.premises is not None:
            self.premises = self._labelled(self.premises)
        planned = None
        if candidates is not None:
            planned = load_candidates(candidates, network, cat)
            self._note_input(candidates)
        self.minimum = minimum_floor_areas(cat, min_floor_area_m2)
        self.type_ids = ranked_types(cat, types, self.minimum, (self.premises, planned))
        self.type_names = {t: {"zh": cat.type(t).zh, "en": cat.type(t).en}
                           for t in self.type_ids}
        generated = None
        if self.new_sites != "never":
            generated = generate_candidates(network, method=generate, spacing_m=spacing_m,
                                            features=self.analysis.area.features)
        sites = site_table(self.premises, planned, generated, network)
        places = site_labels(sites, network, self.analysis.communities,
                             self.analysis.area.features)
        self.sites = sites.drop(columns="named").join(places)
        self.suitable, self.need = suitability(
            self.sites["floor_area_m2"].to_numpy(float),
            self.sites["allowed_types"].to_numpy(object), self.type_ids, self.minimum)
        self.sites["suitable_types"] = [
            ",".join(np.asarray(self.type_ids, dtype=object)[row]) for row in self.suitable
        ] if self.type_ids else ""

    def _labelled(self, premises: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """The premises with a ``label``: their name, else street · community."""
        names = premises["name"]
        points = gpd.GeoDataFrame({
            "site_id": premises["premises_id"].astype(str).to_numpy(object),
            "name": names.to_numpy(object),
            "named": (names.notna() & (names.astype(str).str.strip() != "")).to_numpy(bool),
        }, geometry=premises.geometry.representative_point().to_numpy(), crs=premises.crs)
        labels = site_labels(points, self.analysis.network, self.analysis.communities,
                             self.analysis.area.features)
        return premises.assign(label=labels["label"].to_numpy(object))

    def _note_input(self, source) -> None:
        if not isinstance(source, gpd.GeoDataFrame):
            self.inputs.append(Path(source))

    def measure(self) -> None:
        """Coverage sets of every type from one Dijkstra pass."""
        cat, network = self.analysis.catalogue, self.analysis.network
        residences = self.analysis.residences
        thresholds = {t: cat.type(t).threshold_m for t in self.type_ids}
        self.covered = {t: np.nan_to_num(residences[f"dist_{t}"].to_numpy(float), nan=np.inf)
                        <= thresholds[t] for t in self.type_ids}
        self.sets = coverage_sets(
            network, self.sites.geometry, residences, thresholds, covered=self.covered,
            suitable={t: self.suitable[:, c] for c, t in enumerate(self.type_ids)},
            residence_snap=network.snap(residences.geometry))

    def rank(self) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame, pd.DataFrame]:
        """Greedy ranking and exact optimum of every type."""
        cat, crs = self.analysis.catalogue, self.analysis.network.crs
        population = self.analysis.residences["population"].to_numpy(float)
        kind = self.sites["kind"].to_numpy(object)
        rankings, pools, optimal = [], [], []
        for type_id in self.type_ids:  # one ranking per type
            sets = self.sets[type_id]
            pool_name, rows = pool(np.diff(sets.distance.indptr) > 0, kind, self.new_sites)
            matrix = sets.matrix[rows]
            greedy = GreedyRanking(matrix, sets.population, count=self.count).solve()
            exact = MaximalCovering(matrix, sets.population, self.count,
                                    time_limit_s=self.time_limit_s,
                                    start=greedy.order).solve()
            before = float(population[self.covered[type_id]].sum())
            rankings.append(ranking_rows(pool_name, rows, greedy, sets, self.sites,
                                         self.analysis.residences, before, cat))
            pools.append(candidate_rows(type_id, rows, greedy, exact, self.sites))
            optimal.append(optimal_row(type_id, pool_name, rows, greedy, exact, self.sites,
                                       cat, self.count))
        ranking = pd.concat(rankings, ignore_index=True) if rankings else empty_ranking()
        candidate_table = pd.concat(pools, ignore_index=True) if pools \
            else pd.DataFrame(columns=["site_id", "kind", "type_id", "geometry"])
        return (with_coordinates(gpd.GeoDataFrame(ranking, geometry="geometry", crs=crs),
                                 self.basemap),
                gpd.GeoDataFrame(candidate_table, geometry="geometry", crs=crs),
                pd.DataFrame(optimal, columns=OPTIMAL_COLUMNS))

    def reallocate(self, weight_of: Mapping[str, float], max_per_type: int | None):
        """The reallocation plan of the available premises."""
        rows = np.flatnonzero(self.sites["kind"].to_numpy(object) == "premises")
        model = Reallocation([self.sets[t].rows(rows) for t in self.type_ids],
                             self.sites["floor_area_m2"].to_numpy(float)[rows],
                             self.need[rows], [weight_of[t] for t in self.type_ids],
                             max_per_type=max_per_type,
                             time_limit_s=self.time_limit_s).solve()
        return plan_tables(self.analysis, self.premises,
                           self.sites.iloc[rows].reset_index(drop=True), model, self.minimum,
                           weight_of)
