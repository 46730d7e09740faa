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

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.catalogue_model import Catalogue, ResidenceRules, any_rule, tag_number
from planner.classification import name_lines
from planner.columns import find_column
from planner.errors import PlannerError

if TYPE_CHECKING:
    from planner.network import WalkNetwork

log = logging.getLogger(__name__)

POPULATION_COLUMNS = ("population", "pop", "residents", "人口", "常住人口", "人口数")
ID_COLUMNS = ("community_id", "community_", "id", "code", "社区编码", "编码", "编号")
NAME_COLUMNS = ("name", "community", "名称", "社区名称", "社区")
#: Why a building selected by ``[residences] building_tags`` is not a home.
NON_HOME_REASONS = ("non_home_tags", "non_home_names", "precinct")


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
    polygons = features[features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    reasons = _non_home_reasons(features, polygons, rules)
    candidate = any_rule(rules.building_tags, polygons)
    if quality is not None:
        footprint_ok = polygons.geometry.area.to_numpy() >= settings.min_residence_footprint_m2
        excluded = candidate & footprint_ok & (reasons != "")
        quality["excluded_non_homes"] = {
            "buildings": int(excluded.sum()),
            "by_reason": {reason: int((excluded & (reasons == reason)).sum())
                          for reason in NON_HOME_REASONS}}
    chosen = polygons[candidate & (reasons == "")]
    footprint = chosen.geometry.area.to_numpy()
    chosen = chosen[footprint >= settings.min_residence_footprint_m2]
    footprint = chosen.geometry.area.to_numpy()
    storeys, storeys_source = _storeys_with_source(chosen, storeys_default)
    floor_area = footprint * storeys
    residences = gpd.GeoDataFrame({
        "residence_id": ("r" + chosen["osm_type"].astype(str).str[0]
                         + chosen["osm_id"].astype(str)).to_numpy(),
        "population": np.round(floor_area / per_person, 1),
        "floor_area_m2": np.round(floor_area, 1),
        "storeys": storeys,
        "storeys_source": storeys_source,
        "building": chosen["building"].to_numpy(dtype=object),
        "source": "estimate",
    }, geometry=chosen.geometry.representative_point().to_numpy(), crs=features.crs)
    return residences.reset_index(drop=True)


def _non_home_reasons(features: gpd.GeoDataFrame, polygons: gpd.GeoDataFrame,
                      rules: ResidenceRules) -> np.ndarray:
    """Per polygon: why it is not a home (first of :data:`NON_HOME_REASONS`), or ""."""
    housing_tag = any_rule(rules.housing_tags, polygons)
    names = name_lines(polygons)

    def named(patterns: tuple[str, ...]) -> np.ndarray:
        if not patterns:
            return np.zeros(len(polygons), dtype=bool)
        return names.str.contains("|".join(patterns), regex=True).to_numpy(dtype=bool)

    housing_name = named(rules.housing_names)
    by_tags = any_rule(rules.non_home_tags, polygons)
    by_name = named(rules.non_home_names)
    by_weak_name = named(rules.weak_non_home_names)
    in_precinct = np.zeros(len(polygons), dtype=bool)
    open_rows = np.flatnonzero(~housing_name & ~by_name & ~housing_tag & ~by_weak_name
                               & ~by_tags)
    precincts = features[any_rule(rules.precinct_tags, features)
                         & features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
                         .to_numpy()]
    if len(open_rows) and len(precincts):
        points = gpd.GeoDataFrame(
            geometry=polygons.geometry.iloc[open_rows].representative_point().to_numpy(),
            crs=features.crs)
        inside = gpd.sjoin(points, precincts[["geometry"]], predicate="within", how="inner")
        in_precinct[open_rows[np.unique(inside.index.to_numpy())]] = True
    # a housing name beats a non-home name (学生食堂 mapped as building=house is no
    # home), which beats a housing tag, which beats the weak names (XX大厦 tagged
    # apartments is a home), use tags and precincts
    return np.select([housing_name, by_name, housing_tag, by_weak_name, by_tags, in_precinct],
                     ["", "non_home_names", "", "non_home_names", "non_home_tags", "precinct"],
                     "").astype(object)


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
    cells = np.unique(np.floor((xy - origin) / cell).astype(np.int64), axis=0)
    lower = origin + cells * cell
    boxes = shapely.box(lower[:, 0], lower[:, 1], lower[:, 0] + cell, lower[:, 1] + cell)
    ids = [f"G{row:03d}_{col:03d}" for col, row in cells]
    label = "网格" if settings.lang == "zh" else "grid"
    return gpd.GeoDataFrame({"community_id": ids,
                             "name": [f"{label} {identifier[1:]}" for identifier in ids],
                             "community_source": "grid"}, geometry=boxes, crs=points.crs)


def assign_communities(residences: gpd.GeoDataFrame,
                       communities: gpd.GeoDataFrame) -> np.ndarray:
    """Community id of each residence (None outside every community).

    A residence inside overlapping communities goes to the first in layer order.
    """
    joined = gpd.sjoin(residences[["geometry"]], communities[["community_id", "geometry"]],
                       predicate="within", how="left")
    joined = joined[~joined.index.duplicated()]
    values = joined["community_id"].reindex(residences.index).to_numpy(dtype=object)
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
    result["missing_types"] = [
        ",".join(type_ids[column] for column in np.flatnonzero((row == 0) & has_data))
        for row in coverage]
    result["no_data_types"] = int((~has_data).sum())
    n_communities = len(communities)
    summary = pd.DataFrame({
        "community_id": np.repeat(communities["community_id"].to_numpy(), n_types),
        "scene_id": np.tile(scene_of, n_communities),
        "type_id": np.tile(type_ids, n_communities),
        "threshold_m": np.tile(thresholds, n_communities),
        "population": np.repeat(np.round(pop_total, 1), n_types),
        "covered_population": np.round(covered_pop.ravel(), 1),
        "coverage": np.round(coverage.ravel(), 4),
        "facilities_in_area": np.tile(found, n_communities),
        "community_source": np.repeat(communities["community_source"].to_numpy(), n_types),
    })
    return gpd.GeoDataFrame(result, geometry="geometry", crs=communities.crs), summary


def _covered_population(residences: gpd.GeoDataFrame, distance_m: np.ndarray,
                        thresholds: np.ndarray, communities: gpd.GeoDataFrame,
                        ) -> tuple[np.ndarray, np.ndarray]:
    """Population per community, and covered population per community × type."""
    covered = np.nan_to_num(distance_m, nan=np.inf) <= thresholds[None, :]
    community_index = pd.Index(communities["community_id"]).get_indexer(
        residences["community_id"].to_numpy(dtype=object))
    inside = community_index >= 0
    n_communities = len(communities)
    population = residences["population"].to_numpy(float)
    pop_total = np.bincount(community_index[inside], weights=population[inside],
                            minlength=n_communities)
    covered_pop = np.stack([
        np.bincount(community_index[inside], weights=(population * covered[:, column])[inside],
                    minlength=n_communities) for column in range(len(thresholds))], axis=1) \
        if len(thresholds) else np.zeros((n_communities, 0))
    return pop_total, covered_pop


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


# --------------------------------------------------------------------------- network quality


def community_detour_index(residences: gpd.GeoDataFrame, distance_m: np.ndarray,
                           nearest: np.ndarray, facility_points,
                           communities: gpd.GeoDataFrame,
                           min_straight_m: float | None = None) -> np.ndarray:
    """Median detour index per community: network ÷ straight-line distance.

    Computed over the (residence, facility reached) pairs of every type, on
    the pairs at least ``min_straight_m`` apart in a straight line (short legs,
    where the walk to the edge dominates, would swamp the measure). A high
    value shows where the walk is long for its distance: barriers (fences,
    rivers, dual carriageways without crossings) or missing paths.

    Parameters
    ----------
    residences
        With ``community_id`` and point geometry.
    distance_m
        ``(n_residences, n_types)`` network distances (as published).
    nearest
        ``(n_residences, n_types)`` index of the facility reached (-1: none),
        from :meth:`planner.access.Access.nearest_facilities`.
    facility_points
        The facility points the indices refer to.
    communities
        ``community_id`` in output order.
    min_straight_m
        :data:`planner.settings.detour_min_straight_m` when omitted.

    Returns
    -------
    numpy.ndarray
        One value per community, rounded to 0.01; NaN where no pair qualifies.
    """
    minimum = settings.detour_min_straight_m if min_straight_m is None else min_straight_m
    points = np.asarray(getattr(facility_points, "values", facility_points), dtype=object)
    result = np.full(len(communities), np.nan)
    home_code, uniques = pd.factorize(residences["community_id"].to_numpy(dtype=object))
    # homes grouped by community (as groupby: no unnamed group): the pairs below
    # then come out grouped too, and no sort over all pairs is needed
    homes = np.flatnonzero(home_code >= 0)
    homes = homes[np.argsort(home_code[homes], kind="stable")]
    facility = nearest[homes]
    reached = facility >= 0
    if not reached.any():
        return result
    # whole (home × type) blocks: each home's coordinates broadcast along its row,
    # and each facility's gathered from one small table
    home_xy = shapely.get_coordinates(residences.geometry.to_numpy())[homes]
    facility_xy = shapely.get_coordinates(points)
    facility_x, facility_y = facility_xy[:, 0].copy(), facility_xy[:, 1].copy()
    straight = np.hypot(facility_x[facility] - home_xy[:, :1],
                        facility_y[facility] - home_xy[:, 1:])
    network = distance_m[homes]
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = network / straight
    keep = reached & (straight >= minimum) & np.isfinite(network) & ~np.isnan(ratio)
    if not keep.any():
        return result
    # row-major order keeps the pairs grouped by community
    code = np.repeat(home_code[homes], keep.sum(axis=1))
    ratio = ratio[keep]
    ratio = _sorted_in_groups(code, ratio)
    count = np.bincount(code, minlength=len(uniques))
    start = np.cumsum(count) - count
    median = np.full(len(uniques), np.nan)
    has = np.flatnonzero(count)
    median[has] = (ratio[start[has] + (count[has] - 1) // 2]
                   + ratio[start[has] + count[has] // 2]) / 2
    position = pd.Index(uniques).get_indexer(communities["community_id"].to_numpy(dtype=object))
    result = np.where(position >= 0, median[np.maximum(position, 0)], np.nan)
    return np.round(result, 2)


def _sorted_in_groups(code: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` (≥ 0, no NaN) sorted within the runs of ascending integer ``code``.

    A non-negative float orders as its bit pattern, so the code goes in the
    high bits of one unsigned key and the value's bits (less the smallest)
    in the low ones: one plain sort of the keys, many times faster than an
    argsort of the values, and exact. When both do not fit in 64 bits the
    codes are taken a batch at a time.
    """
    bits = value.view(np.uint64)
    low = bits.min()
    bits = bits - low
    span = int(bits.max()).bit_length()
    per_batch = 1 << min(64 - span, 62)
    result = np.empty_like(value)
    firsts = np.arange(code[0], code[-1] + 1, per_batch)
    bounds = np.r_[np.searchsorted(code, firsts), len(code)]
    for first, begin, end in zip(firsts, bounds[:-1], bounds[1:], strict=True):
        key = ((code[begin:end] - first).astype(np.uint64) << np.uint64(span)) | bits[begin:end]
        key.sort()
        result[begin:end] = ((key & np.uint64((1 << span) - 1)) + low).view(np.float64)
    return result


def compounds_without_paths(features: gpd.GeoDataFrame, residences: gpd.GeoDataFrame,
                            network: WalkNetwork) -> np.ndarray:
    """Residences in a residential compound with no walkable way mapped inside.

    A compound is a ``landuse=residential`` polygon; it has no paths when no
    network edge has its midpoint inside. Distances from such homes start at
    the compound's edge, so thin network data shows up where it is.

    Returns
    -------
    numpy.ndarray
        Per residence: the compound's index in ``features`` (-1 when the
        residence is in no compound without paths).
    """
    result = np.full(len(residences), -1, dtype=np.int64)
    if "landuse" not in features.columns or not len(residences):
        return result
    compounds = features[features["landuse"].eq("residential").to_numpy(dtype=bool)
                         & features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])
                         .to_numpy()]
    if not len(compounds):
        return result
    compounds = gpd.GeoDataFrame({"compound": np.arange(len(compounds))},
                                 geometry=compounds.geometry.to_numpy(), crs=features.crs)
    # the midpoint of each segment u → v, as GEOS interpolates it, without
    # building a LineString per edge (a city has a million)
    start = network.node_xy[network.edge_u]
    midpoints = gpd.GeoDataFrame(geometry=shapely.points(
        start + 0.5 * (network.node_xy[network.edge_v] - start)), crs=features.crs)
    with_paths = gpd.sjoin(midpoints, compounds, predicate="within", how="inner")["compound"]
    homes = gpd.sjoin(residences[["geometry"]].reset_index(drop=True), compounds,
                      predicate="within", how="inner")
    homes = homes[~homes.index.duplicated()]
    homes = homes[~homes["compound"].isin(with_paths.unique())]
    result[homes.index.to_numpy()] = homes["compound"].to_numpy()
    return result
