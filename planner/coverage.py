"""Residences, population, communities and coverage.

Residences are residential buildings. Their population is estimated from
floor area (footprint × storeys) divided by the floor area per person, unless
the planner gives a population layer. Communities come from the planner's
boundary layer, else from OSM boundaries inside the area, else from a regular
grid, and the choice is recorded in every output (``community_source``).

Coverage of a facility type in a community is the share of its population
whose walking distance to the nearest facility of that type is within the
type's threshold. A scene's score is the mean coverage of its types; the
overall score is the mean of the scene scores (every scene weighs the same,
whatever its number of types).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import shapely

from planner import settings
from planner.catalogue_model import (
    NAME_KEYS,
    Catalogue,
    ResidenceRules,
    TagTable,
    any_rule,
    tag_number,
)
from planner.classification import name_lines
from planner.columns import find_column
from planner.errors import PlannerError

# the network-quality measures live in planner.network_quality; the pipeline imports
# them from here
from planner.network_quality import POLYGON_TYPE_IDS
from planner.network_quality import community_detour_index as community_detour_index
from planner.network_quality import compounds_without_paths as compounds_without_paths

log = logging.getLogger(__name__)

POPULATION_COLUMNS = ("population", "pop", "residents", "人口", "常住人口", "人口数")
ID_COLUMNS = ("community_id", "community_", "id", "code", "社区编码", "编码", "编号")
NAME_COLUMNS = ("name", "community", "名称", "社区名称", "社区")
#: Why a building selected by ``[residences] building_tags`` is not a home.
NON_HOME_REASONS = ("non_home_tags", "non_home_names", "precinct")
#: Residences per block when coverage turns (residence × type) into (type × residence).
_COVERAGE_BLOCK_ROWS = 8192


# --------------------------------------------------------------------------- residences


def residences_from_buildings(
    features: gpd.GeoDataFrame,
    *,
    floor_area_per_person_m2: float | None = None,
    default_storeys: int | None = None,
    rules: ResidenceRules | None = None,
    quality: dict | None = None,
) -> gpd.GeoDataFrame:
    """Buildings that are homes, with an estimated population.

    The rules are data, the ``[residences]`` table of the catalogue
    (:class:`planner.catalogue.ResidenceRules`): a building its
    ``building_tags`` select (``building=residential``/``apartments``/... or
    the generic ``building=yes``) is a home unless it carries a use tag
    (``amenity``, ``office``, ``building=university`` ...), has a non-home name
    (教学楼, 学院, 食堂, 礼堂, 医院, 办公楼 ...) or stands inside a
    non-residential precinct (campus, school, hospital grounds; ``landuse``
    education, military, commercial ...). A housing name (宿舍, 公寓, 家属楼
    ...) always makes it a home; a housing tag (``building=dormitory``,
    ``apartments`` ...) does too, except against a non-home name (a
    学生发展中心 or a 附属中学 mapped as ``building=house`` is no home). Footprints under
    :data:`planner.settings.min_residence_footprint_m2` are sheds, not homes.

    Parameters
    ----------
    features
        The area's features (:attr:`planner.sources.Area.features`).
    floor_area_per_person_m2, default_storeys
        Population estimate parameters (see :mod:`planner.settings`).
    rules
        The residence rules; the packaged catalogue's when omitted.
    quality
        When given, filled with ``excluded_non_homes`` (buildings left out per
        reason of :data:`NON_HOME_REASONS`).

    Returns
    -------
    geopandas.GeoDataFrame
        ``residence_id``, ``population``, ``floor_area_m2``, ``storeys``,
        ``storeys_source`` (levels | height | default), ``building`` (the tag
        value), ``source`` and the point geometry used for routing.
    """
    if rules is None:
        from planner.catalogue import load_catalogue

        rules = load_catalogue().residences
    per_person = floor_area_per_person_m2 or settings.floor_area_per_person_m2
    storeys_default = default_storeys or settings.default_storeys
    if "building" not in features.columns:
        return _empty_residences(features.crs)
    geometry = features.geometry.to_numpy()
    is_polygon = np.isin(shapely.get_type_id(geometry), POLYGON_TYPE_IDS)
    # one table for every rule: each tag column is factorised once
    tags = TagTable(features)
    # only buildings the rules select with a home's footprint can be homes or count
    # as excluded ones: everything below looks at those rows of ``features`` alone
    rows = np.flatnonzero(is_polygon & any_rule(rules.building_tags, tags))
    footprint = shapely.area(geometry[rows])
    big = np.flatnonzero(footprint >= settings.min_residence_footprint_m2)
    rows, footprint = rows.take(big), footprint.take(big)
    points = shapely.point_on_surface(geometry[rows])
    reasons = _non_home_reasons(features, rows, points, tags, is_polygon, rules)
    if quality is not None:
        quality["excluded_non_homes"] = {
            "buildings": int((reasons != "").sum()),
            "by_reason": {reason: int((reasons == reason).sum()) for reason in NON_HOME_REASONS}}
    home = np.flatnonzero(reasons == "")
    rows, footprint = rows.take(home), footprint.take(home)
    storey_columns = [key for key in ("building:levels", "height") if key in features.columns]
    storeys, storeys_source = _storeys_with_source(features[storey_columns].iloc[rows],
                                                   storeys_default)
    floor_area = footprint * storeys
    return gpd.GeoDataFrame({
        "residence_id": _residence_ids(features, rows),
        "population": np.round(floor_area / per_person, 1),
        "floor_area_m2": np.round(floor_area, 1),
        "storeys": storeys,
        "storeys_source": storeys_source,
        "building": features["building"].iloc[rows].to_numpy(dtype=object),
        "source": "estimate",
    }, geometry=points.take(home), crs=features.crs)


def _residence_ids(features: pd.DataFrame, rows: np.ndarray) -> np.ndarray:
    """``r`` + the OSM type's initial + the OSM id, for the given rows."""
    return ("r" + features["osm_type"].iloc[rows].astype(str).str[0]
            + features["osm_id"].iloc[rows].astype(str)).to_numpy()


def _non_home_reasons(features: gpd.GeoDataFrame, rows: np.ndarray, points: np.ndarray,
                      tags: TagTable, is_polygon: np.ndarray,
                      rules: ResidenceRules) -> np.ndarray:
    """Per row of ``features`` given: why it is not a home (see :data:`NON_HOME_REASONS`), or ""."""
    housing_tag = any_rule(rules.housing_tags, tags)[rows]
    named = _name_matcher(features, rows)
    housing_name = named(rules.housing_names)
    by_tags = any_rule(rules.non_home_tags, tags)[rows]
    by_name = named(rules.non_home_names)
    by_weak_name = named(rules.weak_non_home_names)
    in_precinct = np.zeros(len(rows), dtype=bool)
    open_rows = np.flatnonzero(~housing_name & ~by_name & ~housing_tag & ~by_weak_name
                               & ~by_tags)
    precincts = features.geometry.to_numpy()[is_polygon & any_rule(rules.precinct_tags, tags)]
    if len(open_rows) and len(precincts):
        # as geopandas' sjoin "within": the points' tree queried with "contains"
        # (prepared precincts), which GEOS answers exactly as "within"
        tree = shapely.STRtree(points.take(open_rows))
        inside = tree.query(precincts, predicate="contains")[1]
        in_precinct[open_rows[np.unique(inside)]] = True
    # a housing name beats a non-home name (学生食堂 mapped as building=house is no
    # home), which beats a housing tag, which beats the weak names (XX大厦 tagged
    # apartments is a home), use tags and precincts
    return np.select([housing_name, by_name, housing_tag, by_weak_name, by_tags, in_precinct],
                     ["", "non_home_names", "", "non_home_names", "non_home_tags", "precinct"],
                     "").astype(object)


def _name_matcher(features: pd.DataFrame, rows: np.ndarray):
    """``named(patterns)``: per row given, whether its :func:`name_lines` contain one.

    Exactly ``name_lines(...).str.contains("|".join(patterns))``, but the
    patterns run on the few named rows only: the nameless ones share one blank
    line, tested once.
    """
    keys = [key for key in NAME_KEYS if key in features.columns]
    has_name = np.zeros(len(rows), dtype=bool)
    for key in keys:
        has_name |= features[key].notna().to_numpy(dtype=bool)[rows]
    named_rows = np.flatnonzero(has_name)
    lines = name_lines(features[keys].iloc[rows.take(named_rows)])
    # the line name_lines gives a feature without names
    blank = pd.Series(["\n" * (len(NAME_KEYS) - 1)], dtype=lines.dtype)

    def named(patterns: tuple[str, ...]) -> np.ndarray:
        if not patterns:
            return np.zeros(len(rows), dtype=bool)
        pattern = "|".join(patterns)
        mask = np.full(len(rows), bool(blank.str.contains(pattern, regex=True).iloc[0]))
        mask[named_rows] = lines.str.contains(pattern, regex=True).to_numpy(dtype=bool)
        return mask

    return named


def building_storeys(buildings: pd.DataFrame, default: int) -> np.ndarray:
    """Storeys: ``building:levels``, else ``height`` / storey height, else ``default``."""
    return _storeys_with_source(buildings, default)[0]


def _storeys_with_source(buildings: pd.DataFrame, default: int) -> tuple[np.ndarray, np.ndarray]:
    """Storeys and where they come from: ``levels``, ``height`` or ``default``."""
    def number(column: str) -> pd.Series:
        if column not in buildings.columns:
            return pd.Series(np.nan, index=buildings.index)
        return tag_number(buildings[column], r"(\d+(?:\.\d+)?)")

    levels = number("building:levels")
    from_height = np.floor(number("height") / settings.storey_height_m)
    storeys = levels.where(levels > 0, from_height.where(from_height > 0, default))
    source = np.select([(levels > 0).fillna(False).to_numpy(dtype=bool),
                        (from_height > 0).fillna(False).to_numpy(dtype=bool)],
                       ["levels", "height"], "default").astype(object)
    return storeys.clip(lower=1).to_numpy(dtype=float), source


def _empty_residences(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"residence_id": [], "population": [], "floor_area_m2": [],
                             "storeys": [], "storeys_source": [], "building": [],
                             "source": []}, geometry=[], crs=crs)


def apply_population_layer(residences: gpd.GeoDataFrame, layer: gpd.GeoDataFrame,
                           *, path=None, column: str | None = None) -> gpd.GeoDataFrame:
    """Replace estimated populations by the planner's population layer.

    Points become the residences themselves. Polygons (census blocks, grid
    cells) share their population among the residences inside them in
    proportion to floor area; a polygon with no residence inside becomes one
    residence at its representative point.
    """
    column = column or find_column(layer, POPULATION_COLUMNS)
    if column is None:
        msg = (
            f"the population layer has no population column (one of "
            f"{', '.join(POPULATION_COLUMNS)})"
        )
        raise PlannerError(
            msg, path)
    population = pd.to_numeric(layer[column], errors="coerce")
    if population.isna().all():
        msg = f"the population column {column!r} holds no numbers"
        raise PlannerError(msg, path)
    layer = layer.assign(_population=population.fillna(0.0).clip(lower=0.0))
    layer = layer.to_crs(residences.crs)
    if layer.geometry.geom_type.isin(["Point", "MultiPoint"]).all():
        points = layer.geometry.representative_point()
        return gpd.GeoDataFrame({
            "residence_id": [f"p{index}" for index in range(len(layer))],
            "population": layer["_population"].to_numpy(),
            "floor_area_m2": np.nan, "storeys": np.nan, "source": "population layer",
        }, geometry=points.to_numpy(), crs=residences.crs)
    zones = layer[["_population", "geometry"]].reset_index(drop=True)
    zones["zone"] = np.arange(len(zones))
    joined = gpd.sjoin(residences, zones, predicate="within", how="left")
    joined = joined[~joined.index.duplicated()]
    weight = joined["floor_area_m2"].fillna(1.0).to_numpy()
    zone = joined["zone"].to_numpy()
    has_zone = ~pd.isna(zone)
    zone_index = zone[has_zone].astype(int)
    weight_sum = np.bincount(zone_index, weights=weight[has_zone], minlength=len(zones))
    share = weight[has_zone] / weight_sum[zone_index]
    new_population = np.zeros(len(residences))
    new_population[has_zone] = share * zones["_population"].to_numpy()[zone_index]
    updated = residences.copy()
    updated["population"] = np.round(new_population, 2)
    updated["source"] = np.where(has_zone, "population layer", "outside population layer")
    empty = zones[weight_sum == 0]
    if len(empty):
        extra = gpd.GeoDataFrame({
            "residence_id": [f"z{index}" for index in empty["zone"]],
            "population": empty["_population"].to_numpy(), "floor_area_m2": np.nan,
            "storeys": np.nan, "source": "population layer (no building)",
        }, geometry=empty.geometry.representative_point().to_numpy(), crs=residences.crs)
        updated = pd.concat([updated, extra], ignore_index=True)
    return gpd.GeoDataFrame(updated, geometry="geometry", crs=residences.crs)


# --------------------------------------------------------------------------- communities


def prepare_communities(layer: gpd.GeoDataFrame, *, path=None,
                        source: str = "user") -> gpd.GeoDataFrame:
    """Normalise a boundary layer to ``community_id``, ``name``, polygon geometry."""
    polygons = layer[layer.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    if len(polygons) == 0:
        msg = "the communities layer has no polygons"
        raise PlannerError(msg, path)
    id_column = find_column(polygons, ID_COLUMNS)
    name_column = find_column(polygons, NAME_COLUMNS)
    ids = (polygons[id_column].astype(str) if id_column
           else pd.Series([f"C{index + 1:03d}" for index in range(len(polygons))],
                          index=polygons.index))
    if ids.duplicated().any():
        msg = f"the communities layer repeats ids in column {id_column!r}"
        raise PlannerError(msg, path)
    names = polygons[name_column].astype(str) if name_column else ids
    return gpd.GeoDataFrame({"community_id": ids.to_numpy(), "name": names.to_numpy(),
                             "community_source": source},
                            geometry=shapely.make_valid(polygons.geometry.to_numpy()),
                            crs=polygons.crs).reset_index(drop=True)


def osm_communities(features: gpd.GeoDataFrame, extent) -> gpd.GeoDataFrame | None:
    """Neighbourhood-scale OSM boundaries (admin_level 9–10, place=neighbourhood/quarter)."""
    polygons = features[features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    admin = pd.Series(False, index=polygons.index)
    if "boundary" in polygons and "admin_level" in polygons:
        admin = polygons["boundary"].eq("administrative") & polygons["admin_level"].isin(
            ["9", "10"])
    if "place" in polygons:
        admin |= polygons["place"].isin(["neighbourhood", "quarter"])
    chosen = polygons[admin & polygons.intersects(extent)]
    if len(chosen) == 0:
        return None
    chosen = chosen.assign(community_id=("osm" + chosen["osm_type"].astype(str).str[0]
                                         + chosen["osm_id"].astype(str)))
    chosen = chosen.assign(name=chosen["name"].fillna(chosen["community_id"]))
    return gpd.GeoDataFrame({"community_id": chosen["community_id"].to_numpy(),
                             "name": chosen["name"].to_numpy(), "community_source": "osm"},
                            geometry=chosen.geometry.to_numpy(), crs=features.crs
                            ).reset_index(drop=True)


def grid_communities(points: gpd.GeoSeries, cell_m: float | None = None) -> gpd.GeoDataFrame:
    """Square cells covering the points, labelled as a grid (not real communities)."""
    cell = cell_m or settings.grid_cell_m
    xy = shapely.get_coordinates(points.to_numpy())
    origin = np.floor(xy.min(axis=0) / cell) * cell
    cells = _unique_rows(np.floor((xy - origin) / cell).astype(np.int64))
    lower = origin + cells * cell
    boxes = shapely.box(lower[:, 0], lower[:, 1], lower[:, 0] + cell, lower[:, 1] + cell)
    ids = [f"G{row:03d}_{col:03d}" for col, row in cells.tolist()]
    label = "网格" if settings.lang == "zh" else "grid"
    return gpd.GeoDataFrame({"community_id": ids,
                             "name": [f"{label} {identifier[1:]}" for identifier in ids],
                             "community_source": "grid"}, geometry=boxes, crs=points.crs)


def _unique_rows(cells: np.ndarray) -> np.ndarray:
    """``np.unique(cells, axis=0)`` for ``(n, 2)`` integers, through one integer key.

    The key (column, then row, offset to start at 0) orders as the rows do, and
    a plain unique of it is many times faster than the structured one of
    ``axis=0``; the structured one stays for spans the key cannot hold.
    """
    if not len(cells):
        return np.unique(cells, axis=0)
    low = cells.min(axis=0)
    # spans in Python integers: the difference of two int64 may overflow
    width = int(cells[:, 1].max()) - int(low[1]) + 1
    if (int(cells[:, 0].max()) - int(low[0]) + 1) * width >= 2**62:
        return np.unique(cells, axis=0)
    key = np.unique((cells[:, 0] - low[0]) * width + (cells[:, 1] - low[1]))
    return np.column_stack([key // width + low[0], key % width + low[1]])


def assign_communities(residences: gpd.GeoDataFrame,
                       communities: gpd.GeoDataFrame) -> np.ndarray:
    """Community id of each residence (None outside every community).

    A residence inside overlapping communities goes to the first in layer order.
    """
    # as geopandas' sjoin "within": the homes' tree queried with "contains"
    # (prepared communities), without the frames a join builds
    community, home = shapely.STRtree(residences.geometry.to_numpy()).query(
        communities.geometry.to_numpy(), predicate="contains")
    first = np.full(len(residences), len(communities))
    np.minimum.at(first, home, community)
    ids = np.append(communities["community_id"].to_numpy(dtype=object), None)
    values = ids[first]
    return np.where(pd.isna(values), None, values)


# --------------------------------------------------------------------------- coverage


def community_coverage(residences: gpd.GeoDataFrame, distance_m: np.ndarray,
                       catalogue: Catalogue, communities: gpd.GeoDataFrame,
                       facilities_in_area: Sequence[int] | np.ndarray | None = None,
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Coverage per community and facility type, scene scores and overall score.

    Parameters
    ----------
    residences
        With ``community_id`` and ``population``.
    distance_m
        ``(n_residences, n_types)`` walking distances in catalogue type order,
        exactly as published (coverage counts ``distance ≤ threshold``).
    catalogue
        The catalogue (thresholds, scenes).
    communities
        ``community_id``, ``name``, geometry.
    facilities_in_area
        Distinct facilities of each type found in the area (catalogue order);
        a type with none has no data, which is not the same as a gap. Every
        type counts as having data when omitted.

    Returns
    -------
    (communities, summary)
        The communities with ``population``, ``cov_<type>``, ``score_<scene>``,
        ``score`` (over all types), ``score_data`` (over the types with data
        only), ``n_types`` and ``n_types_data`` (how many types each score was
        computed over), ``missing_types`` (types with data that no resident
        reaches, comma-separated) and ``no_data_types`` (how many types have no
        data); and the long table written as ``summary.csv`` (one row per
        community × type, with ``facilities_in_area``).
    """
    type_ids = catalogue.type_ids
    n_types = len(type_ids)
    found = (np.ones(n_types, dtype=np.int64) if facilities_in_area is None
             else np.asarray(facilities_in_area, dtype=np.int64))
    has_data = found > 0
    thresholds = np.array([catalogue.type(type_id).threshold_m for type_id in type_ids])
    pop_total, covered_pop = _covered_population(residences, distance_m, thresholds,
                                                 communities)
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(pop_total[:, None] > 0, covered_pop / pop_total[:, None], np.nan)
    result = communities.copy()
    result["population"] = np.round(pop_total, 1)
    cov_columns = {f"cov_{type_id}": np.round(coverage[:, column], 4)
                   for column, type_id in enumerate(type_ids)}
    scene_of = np.array([catalogue.type(type_id).scene for type_id in type_ids], dtype=object)
    scene_scores = {f"score_{scene.id}": _scene_score(coverage, scene_of == scene.id)
                    for scene in catalogue.scenes}
    data_scenes = [_scene_score(coverage, (scene_of == scene.id) & has_data)
                   for scene in catalogue.scenes]
    valid = ~np.isnan(coverage)
    result = pd.concat([result, pd.DataFrame(cov_columns, index=result.index),
                        pd.DataFrame(scene_scores, index=result.index)], axis=1)
    result["score"] = _mean_of_scenes(list(scene_scores.values()), len(communities))
    result["score_data"] = _mean_of_scenes(data_scenes, len(communities))
    result["n_types"] = valid.sum(axis=1).astype(np.int64)
    result["n_types_data"] = (valid & has_data[None, :]).sum(axis=1).astype(np.int64)
    result["missing_types"] = _missing_types(coverage, has_data, type_ids)
    result["no_data_types"] = int((~has_data).sum())
    n_communities = len(communities)
    community_row = np.repeat(np.arange(n_communities), n_types)
    type_column = np.tile(np.arange(n_types), n_communities)
    summary = pd.DataFrame({
        "community_id": _string_column(communities["community_id"].to_numpy(), community_row),
        "scene_id": _string_column(scene_of, type_column),
        "type_id": _string_column(np.array(type_ids, dtype=object), type_column),
        "threshold_m": np.tile(thresholds, n_communities),
        "population": np.repeat(np.round(pop_total, 1), n_types),
        "covered_population": np.round(covered_pop.ravel(), 1),
        "coverage": np.round(coverage.ravel(), 4),
        "facilities_in_area": np.tile(found, n_communities),
        "community_source": _string_column(communities["community_source"].to_numpy(),
                                           community_row),
    })
    return gpd.GeoDataFrame(result, geometry="geometry", crs=communities.crs), summary


def _missing_types(coverage: np.ndarray, has_data: np.ndarray,
                   type_ids: Sequence[str]) -> list[str]:
    """Per community: the types with data no resident reaches, comma-separated."""
    rows, columns = np.nonzero((coverage == 0) & has_data)
    names = [type_ids[column] for column in columns.tolist()]
    bounds = np.searchsorted(rows, np.arange(len(coverage) + 1)).tolist()
    return [",".join(names[begin:end]) for begin, end in itertools.pairwise(bounds)]


def _string_column(values: np.ndarray,
                   codes: np.ndarray) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """``values[codes]`` as pandas stores a column of these strings, built the quick way.

    Where pandas keeps strings in Arrow, the repeated table is taken in Arrow
    (an Arrow string array per element is what pandas would build, slowly,
    from Python strings); otherwise, or when some value is no string, the
    object array itself.
    """
    dtype = pd.Series(np.array(["x"], dtype=object)).dtype
    arrow = isinstance(dtype, pd.StringDtype) and dtype.storage == "pyarrow"
    if not arrow or not all(isinstance(value, str) for value in values):
        return values[codes]
    return pd.array(pa.array(values, type=pa.large_string()).take(codes), dtype=dtype)


def _covered_population(residences: gpd.GeoDataFrame, distance_m: np.ndarray,
                        thresholds: np.ndarray, communities: gpd.GeoDataFrame,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Population per community, and covered population per community × type."""
    community_index = pd.Index(communities["community_id"]).get_indexer(
        residences["community_id"])
    inside = np.flatnonzero(community_index >= 0)
    n_communities, n_types = len(communities), len(thresholds)
    population = residences["population"].to_numpy(float)
    if len(inside) < len(population):
        community_index, population = community_index[inside], population[inside]
        distance_m = distance_m[inside]
    pop_total = np.bincount(community_index, weights=population, minlength=n_communities)
    covered = _covered_by_type(distance_m, thresholds)
    covered_pop = np.empty((n_communities, n_types))
    weight = np.empty(len(population))
    for column in range(n_types):
        np.multiply(population, covered[column], out=weight)
        covered_pop[:, column] = np.bincount(community_index, weights=weight,
                                             minlength=n_communities)
    return pop_total, covered_pop


def _covered_by_type(distance_m: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """``(n_types, n_residences)``: ``nan_to_num(distance, nan=inf) <= threshold``.

    Transposed so each type's row is contiguous for the sums by community, a
    block of residences at a time (a strided transpose of the whole would miss
    the cache at every element). The plain comparison equals nan_to_num's
    except for thresholds of inf or the largest float, which take its way.
    """
    covered = np.empty((len(thresholds), len(distance_m)), dtype=bool)
    odd = np.flatnonzero(~(thresholds < np.finfo(float).max))
    for begin in range(0, len(distance_m), _COVERAGE_BLOCK_ROWS):
        block = distance_m[begin:begin + _COVERAGE_BLOCK_ROWS]
        part = block <= thresholds
        if len(odd):
            part[:, odd] = np.nan_to_num(block[:, odd], nan=np.inf) <= thresholds[odd]
        covered[:, begin:begin + _COVERAGE_BLOCK_ROWS] = part.T
    return covered


def _scene_score(coverage: np.ndarray, columns: np.ndarray) -> np.ndarray:
    """Mean coverage over the chosen type columns, per community (NaN when none)."""
    if not columns.any() or not len(coverage):
        return np.full(len(coverage), np.nan)
    chosen = coverage[:, columns]
    valid = ~np.isnan(chosen)
    total = np.where(valid, chosen, 0.0).sum(axis=1)
    count = valid.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.round(np.where(count > 0, total / count, np.nan), 4)


def _mean_of_scenes(scores: list[np.ndarray], n_communities: int) -> np.ndarray:
    """Overall score: the mean of the scene scores a community has (every scene weighs 1)."""
    if not scores or not n_communities:
        return np.full(n_communities, np.nan)
    return _scene_score(np.column_stack(scores), np.ones(len(scores), dtype=bool))


def type_status(catalogue: Catalogue, facilities: pd.DataFrame) -> pd.DataFrame:
    """Data status per type: distinct facilities found in the area, and whether any is.

    Parameters
    ----------
    catalogue
        The catalogue (type order).
    facilities
        One row per (facility, type), OSM and the planner's lists.

    Returns
    -------
    pandas.DataFrame
        Indexed by ``type_id`` in catalogue order: ``facilities_in_area`` (int)
        and ``has_data`` (bool; False means no data, not no provision).
    """
    counts = facilities.groupby("type_id")["facility_id"].nunique() if len(facilities) \
        else pd.Series(dtype=np.int64)
    found = counts.reindex(catalogue.type_ids).fillna(0).astype(np.int64)
    frame = pd.DataFrame({"facilities_in_area": found.to_numpy(),
                          "has_data": found.to_numpy() > 0},
                         index=pd.Index(catalogue.type_ids, name="type_id"))
    return frame
