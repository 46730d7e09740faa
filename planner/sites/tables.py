"""The ranking tables of one type: ``sites.csv`` rows and the candidate pool."""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.catalogue import Catalogue
from planner.sites.coverage_sets import CoverageSets
from planner.sites.models import GreedyRanking, MaximalCovering

#: label of residents outside every community in ``community_gains``.
OUTSIDE = "(outside)"

RANKING_COLUMNS = (
    ("type_id", object), ("scene_id", object), ("pool", object), ("rank", int),
    ("site_id", object), ("kind", object), ("name", object), ("label", object),
    ("floor_area_m2", float), ("added_population", float), ("cumulative_population", float),
    ("coverage_before", float), ("cumulative_coverage", float), ("communities", object),
    ("community_gains", object), ("community_id", object), ("community_name", object),
    ("geometry", object))
#: where the site lies, copied from the site table into every ranking row.
SITE_PLACE_COLUMNS = ("community_id", "community_name")


def gains_by_community(residences, demand: np.ndarray, population: np.ndarray
                       ) -> tuple[str, str]:
    """The communities that gain: ``("HEL04,HEL06", "HEL04 +942; HEL06 +734")``.

    The first lists community ids only (comma-separated, largest gain first;
    residents outside every community are left out), the second gives the
    residents each gains, with ``(outside)`` for those outside.
    """
    if len(demand) == 0:
        return "", ""
    community = residences["community_id"].to_numpy(object)[demand]
    community = np.where(pd.isna(community), OUTSIDE, community).astype(str)
    gains = pd.Series(population).groupby(community).sum()
    gains = gains[gains > 0]
    order = sorted(gains.index, key=lambda key: (key == OUTSIDE, -gains[key], key))
    return (",".join(key for key in order if key != OUTSIDE),
            "; ".join(f"{key} +{gains[key]:.0f}" for key in order))


def ranking_rows(pool_name: str, pool: np.ndarray, greedy: GreedyRanking,
                 sets: CoverageSets, sites, residences, covered_before: float,
                 catalogue: Catalogue) -> pd.DataFrame:
    """The ranked sites of the type of ``sets``, with what each adds and where.

    ``covered_before`` is the population the type's existing facilities cover.
    """
    type_id = sets.type_id
    gains = [gains_by_community(residences, sets.demand[newly], sets.population[newly])
             for newly in greedy.newly_covered()]
    chosen = sites.iloc[pool[greedy.order]]
    cumulative = np.cumsum(greedy.added)
    total = float(residences["population"].to_numpy(float).sum())
    return pd.DataFrame({
        "type_id": type_id, "scene_id": catalogue.type(type_id).scene, "pool": pool_name,
        "rank": np.arange(1, len(chosen) + 1),
        "site_id": chosen["site_id"].to_numpy(object), "kind": chosen["kind"].to_numpy(object),
        "name": chosen["name"].to_numpy(object), "label": chosen["label"].to_numpy(object),
        "floor_area_m2": chosen["floor_area_m2"].to_numpy(float),
        "added_population": np.round(greedy.added, 1),
        "cumulative_population": np.round(cumulative, 1),
        "coverage_before": round(covered_before / total, 4) if total else np.nan,
        "cumulative_coverage": np.round((covered_before + cumulative) / total, 4) if total
        else np.nan,
        "communities": [ids for ids, _ in gains],
        "community_gains": [text for _, text in gains],
        **{column: chosen[column].to_numpy() for column in SITE_PLACE_COLUMNS},
        "geometry": chosen.geometry.to_numpy(),
    })


def candidate_rows(type_id: str, pool: np.ndarray, greedy: GreedyRanking,
                   exact: MaximalCovering, sites) -> pd.DataFrame:
    """Every site of the type's pool that reaches someone: alone, greedy rank, optimal."""
    matrix = greedy.matrix
    reach = np.diff(matrix.indptr) > 0
    alone = matrix @ greedy.weights
    rank = np.zeros(len(pool), dtype=np.int64)
    rank[greedy.order] = np.arange(1, len(greedy.order) + 1)
    chosen = sites.iloc[pool[reach]]
    return pd.DataFrame({
        "site_id": chosen["site_id"].to_numpy(object), "kind": chosen["kind"].to_numpy(object),
        "name": chosen["name"].to_numpy(object), "type_id": type_id,
        "floor_area_m2": chosen["floor_area_m2"].to_numpy(float),
        "alone_population": np.round(alone[reach], 1),
        "greedy_rank": pd.array(np.where(rank[reach] > 0, rank[reach], None), dtype="Int64"),
        "optimal": np.isin(np.flatnonzero(reach), exact.selected),
        "geometry": chosen.geometry.to_numpy(),
    })


def optimal_row(type_id: str, pool_name: str, pool: np.ndarray, greedy: GreedyRanking,
                exact: MaximalCovering, sites, catalogue: Catalogue, count: int) -> dict:
    """One row of ``sites_optimal.csv``: greedy against the exact optimum."""
    return {
        "type_id": type_id, "scene_id": catalogue.type(type_id).scene, "pool": pool_name,
        "candidates": int((np.diff(greedy.matrix.indptr) > 0).sum()), "count": count,
        "greedy_sites": len(greedy.order),
        "greedy_population": round(greedy.objective, 1),
        "optimal_population": round(exact.objective, 1),
        "greedy_ratio": round(greedy.objective / exact.objective, 4)
        if exact.objective > 0 else 1.0,
        "mip_gap": round(exact.mip_gap, 6), "status": exact.status,
        "solve_s": round(exact.seconds, 3), "demand_rows": exact.n_groups,
        "optimal_sites": ";".join(sites["site_id"].to_numpy(object)[pool[exact.selected]]
                                  .astype(str)),
    }


OPTIMAL_COLUMNS = ["type_id", "scene_id", "pool", "candidates", "count", "greedy_sites",
                   "greedy_population", "optimal_population", "greedy_ratio", "mip_gap",
                   "status", "solve_s", "demand_rows", "optimal_sites"]


def empty_ranking() -> pd.DataFrame:
    """A ranking without rows, with the columns and dtypes of a full one."""
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in RANKING_COLUMNS})


#: columns of the ``candidates`` map layer, in order (before the geometry).
CANDIDATE_COLUMNS = ["rank", "type_id", "scene_id", "type_name", "site_id", "kind", "label",
                     "name", "community_id", "community_name", "added_population",
                     "cumulative_coverage", "added_by_type", "alone_population", "optimal",
                     "floor_area_m2", "lon", "lat"]


def type_name(type_names: Mapping[str, Mapping[str, str]], type_id: str, lang: str, *,
              short: bool = False) -> str:
    """A type's name in ``lang`` from ``{type_id: {"zh": …, "en": …}}`` (its id if unknown).

    ``short`` keeps the first of the names the catalogue lists ("社区服务站 /
    居委会 / 党群服务中心" → "社区服务站"), for tables and one-line texts.
    """
    names = type_names.get(type_id)
    name = type_id if not names else names["zh" if lang == "zh" else "en"]
    return name.split(" / ")[0].strip() if short else name


def candidate_layer(ranking: gpd.GeoDataFrame, pool: pd.DataFrame,
                    type_names: Mapping[str, Mapping[str, str]], lang: str
                    ) -> gpd.GeoDataFrame:
    """The ``candidates`` map layer: one row per ranked (type, site), best first per type.

    Columns :data:`CANDIDATE_COLUMNS`: ``rank`` (1..n per type),
    ``type_name`` (in ``lang``), ``label`` (what a planner finds the site by),
    ``community_id`` / ``community_name`` (where it lies), ``added_population``
    (residents it newly covers at its rank), ``added_by_type`` (``"幼儿园: +2433;
    托儿所: +2433"``, every type the site is ranked for, short type names), ``alone_population``
    (residents it would cover alone), ``optimal`` (in the exact solution), ``kind``
    (premises | candidate | generated), ``lon``/``lat`` (WGS 84); geometry in
    the ranking's CRS.
    """
    layer = pd.DataFrame(ranking.drop(columns=ranking.geometry.name))
    layer["type_name"] = [type_name(type_names, t, lang) for t in layer["type_id"]]
    short = pd.Series([type_name(type_names, t, lang, short=True) for t in layer["type_id"]],
                      index=layer.index, dtype=object)
    lines = (short + ": +"
             + layer["added_population"].round(0).astype("int64").astype(str))
    added_by_type = lines.groupby(layer["site_id"], sort=False).agg("; ".join)
    layer["added_by_type"] = layer["site_id"].map(added_by_type).astype(object)
    extra = pool.reindex(columns=["site_id", "type_id", "alone_population", "optimal"])
    layer = layer.merge(extra, on=["site_id", "type_id"], how="left")
    layer["rank"] = layer["rank"].astype("int64")
    for column in CANDIDATE_COLUMNS:
        if column not in layer:
            layer[column] = pd.Series(dtype=object)
    return gpd.GeoDataFrame(layer[CANDIDATE_COLUMNS], geometry=ranking.geometry.to_numpy(),
                            crs=ranking.crs)
