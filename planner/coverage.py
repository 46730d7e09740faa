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

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.catalogue import Catalogue
from planner.errors import PlannerError

log = logging.getLogger(__name__)

#: building values that are homes.
RESIDENTIAL_BUILDINGS = frozenset({
    "residential", "apartments", "house", "detached", "semidetached_house", "terrace",
    "dormitory", "bungalow", "farm", "cabin", "static_caravan", "houseboat", "stilt_house",
})
#: building values that may be homes: counted unless a use tag or the land use says otherwise.
AMBIGUOUS_BUILDINGS = frozenset({"yes", "block", "building"})
#: keys whose presence marks an ambiguous building as non-residential.
NON_RESIDENTIAL_KEYS = ("amenity", "shop", "office", "tourism", "leisure", "healthcare", "craft")
NON_RESIDENTIAL_LANDUSE = frozenset({
    "commercial", "industrial", "retail", "railway", "military", "religious", "education",
    "construction", "cemetery", "garages", "institutional", "port", "civic", "depot",
    "university", "school", "hospital", "quarry", "landfill", "brownfield",
})
POPULATION_COLUMNS = ("population", "pop", "residents", "人口", "常住人口", "人口数")
ID_COLUMNS = ("community_id", "community_", "id", "code", "社区编码", "编码", "编号")
NAME_COLUMNS = ("name", "community", "名称", "社区名称", "社区")


# --------------------------------------------------------------------------- residences


def residences_from_buildings(
    features: gpd.GeoDataFrame,
    *,
    floor_area_per_person_m2: float | None = None,
    default_storeys: int | None = None,
) -> gpd.GeoDataFrame:
    """Residential buildings with an estimated population.

    A building counts as a home when its ``building`` value is residential
    (``apartments``, ``house``, ``dormitory`` ...), or when it is the generic
    ``building=yes``/``block`` with no use tag (``amenity``, ``shop``, ``office``
    ...) and does not stand on non-residential land use (commercial, industrial,
    education ...). Footprints under
    :data:`planner.settings.min_residence_footprint_m2` are sheds, not homes.

    Returns
    -------
    geopandas.GeoDataFrame
        ``residence_id``, ``population``, ``floor_area_m2``, ``storeys``,
        ``source`` and the point geometry used for routing.
    """
    per_person = floor_area_per_person_m2 or settings.floor_area_per_person_m2
    storeys_default = default_storeys or settings.default_storeys
    if "building" not in features.columns:
        return _empty_residences(features.crs)
    polygons = features[features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    building = polygons["building"]
    homes = building.isin(RESIDENTIAL_BUILDINGS)
    ambiguous = building.isin(AMBIGUOUS_BUILDINGS)
    for key in NON_RESIDENTIAL_KEYS:
        if key in polygons.columns:
            ambiguous &= polygons[key].isna()
    if ambiguous.any() and "landuse" in features.columns:
        landuse = features[features["landuse"].isin(NON_RESIDENTIAL_LANDUSE)
                           & features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
        if len(landuse):
            points = polygons.geometry[ambiguous].representative_point()
            inside = gpd.sjoin(gpd.GeoDataFrame(geometry=points, crs=features.crs),
                               landuse[["geometry"]], predicate="within", how="inner")
            ambiguous.loc[inside.index.unique()] = False
    chosen = polygons[homes | ambiguous]
    footprint = chosen.geometry.area.to_numpy()
    chosen = chosen[footprint >= settings.min_residence_footprint_m2]
    footprint = chosen.geometry.area.to_numpy()
    storeys = building_storeys(chosen, storeys_default)
    floor_area = footprint * storeys
    residences = gpd.GeoDataFrame({
        "residence_id": ("r" + chosen["osm_type"].astype(str).str[0]
                         + chosen["osm_id"].astype(str)).to_numpy(),
        "population": np.round(floor_area / per_person, 1),
        "floor_area_m2": np.round(floor_area, 1),
        "storeys": storeys,
        "source": "estimate",
    }, geometry=chosen.geometry.representative_point().to_numpy(), crs=features.crs)
    return residences.reset_index(drop=True)


def building_storeys(buildings: pd.DataFrame, default: int) -> np.ndarray:
    """Storeys: ``building:levels``, else ``height`` / storey height, else ``default``."""
    def number(column: str) -> pd.Series:
        if column not in buildings.columns:
            return pd.Series(np.nan, index=buildings.index)
        text = buildings[column].astype("string").str.extract(r"(\d+(?:\.\d+)?)")[0]
        return pd.to_numeric(text, errors="coerce")

    levels = number("building:levels")
    from_height = np.floor(number("height") / settings.storey_height_m)
    storeys = levels.where(levels > 0, from_height.where(from_height > 0, default))
    return storeys.clip(lower=1).to_numpy(dtype=float)


def _empty_residences(crs) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"residence_id": [], "population": [], "floor_area_m2": [],
                             "storeys": [], "source": []}, geometry=[], crs=crs)


def apply_population_layer(residences: gpd.GeoDataFrame, layer: gpd.GeoDataFrame,
                           *, path=None, column: str | None = None) -> gpd.GeoDataFrame:
    """Replace estimated populations by the planner's population layer.

    Points become the residences themselves. Polygons (census blocks, grid
    cells) share their population among the residences inside them in
    proportion to floor area; a polygon with no residence inside becomes one
    residence at its representative point.
    """
    column = column or _find_column(layer, POPULATION_COLUMNS)
    if column is None:
        raise PlannerError(
            f"the population layer has no population column (one of "
            f"{', '.join(POPULATION_COLUMNS)})", path)
    population = pd.to_numeric(layer[column], errors="coerce")
    if population.isna().all():
        raise PlannerError(f"the population column {column!r} holds no numbers", path)
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
        raise PlannerError("the communities layer has no polygons", path)
    id_column = _find_column(polygons, ID_COLUMNS)
    name_column = _find_column(polygons, NAME_COLUMNS)
    ids = (polygons[id_column].astype(str) if id_column
           else pd.Series([f"C{index + 1:03d}" for index in range(len(polygons))],
                          index=polygons.index))
    if ids.duplicated().any():
        raise PlannerError(f"the communities layer repeats ids in column {id_column!r}", path)
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
    return gpd.GeoDataFrame({"community_id": ids,
                             "name": [f"网格 grid {identifier[1:]}" for identifier in ids],
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


def _find_column(frame: pd.DataFrame, candidates) -> str | None:
    lowered = {str(column).strip().lower(): column for column in frame.columns
               if column != frame.geometry.name}
    for candidate in candidates:
        if candidate in lowered:
            return lowered[candidate]
    return None


# --------------------------------------------------------------------------- coverage


def community_coverage(residences: gpd.GeoDataFrame, distance_m: np.ndarray,
                       catalogue: Catalogue, communities: gpd.GeoDataFrame,
                       ) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """Coverage per community and facility type, scene scores and overall score.

    Parameters
    ----------
    residences
        With ``community_id`` and ``population``.
    distance_m
        ``(n_residences, n_types)`` walking distances in catalogue type order.
    catalogue
        The catalogue (thresholds, scenes).
    communities
        ``community_id``, ``name``, geometry.

    Returns
    -------
    (communities, summary)
        The communities with ``population``, ``cov_<type>``, ``score_<scene>``,
        ``score`` and ``missing_types`` (types no resident can reach); and the
        long table of DESIGN.md's ``summary.csv``.
    """
    type_ids = catalogue.type_ids
    thresholds = np.array([catalogue.type(type_id).threshold_m for type_id in type_ids])
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
                    minlength=n_communities) for column in range(len(type_ids))], axis=1) \
        if len(type_ids) else np.zeros((n_communities, 0))
    with np.errstate(invalid="ignore", divide="ignore"):
        coverage = np.where(pop_total[:, None] > 0, covered_pop / pop_total[:, None], np.nan)
    result = communities.copy()
    result["population"] = np.round(pop_total, 1)
    cov_columns = {f"cov_{type_id}": np.round(coverage[:, column], 4)
                   for column, type_id in enumerate(type_ids)}
    scene_scores = {}
    for scene in catalogue.scenes:
        columns = [column for column, type_id in enumerate(type_ids)
                   if catalogue.type(type_id).scene == scene.id]
        with np.errstate(invalid="ignore"):
            scene_scores[f"score_{scene.id}"] = (np.round(np.nanmean(coverage[:, columns], axis=1),
                                                          4) if columns and len(coverage)
                                                 else np.full(n_communities, np.nan))
    score_matrix = np.column_stack(list(scene_scores.values())) if scene_scores else None
    overall = np.full(n_communities, np.nan)
    if score_matrix is not None and score_matrix.size:
        has_any = ~np.isnan(score_matrix).all(axis=1)
        overall[has_any] = np.round(np.nanmean(score_matrix[has_any], axis=1), 4)
    missing = [",".join(type_ids[column] for column in np.flatnonzero(row == 0))
               for row in coverage]
    result = pd.concat([result, pd.DataFrame(cov_columns, index=result.index),
                        pd.DataFrame(scene_scores, index=result.index)], axis=1)
    result["score"] = overall
    result["missing_types"] = missing
    summary = pd.DataFrame({
        "community_id": np.repeat(communities["community_id"].to_numpy(), len(type_ids)),
        "scene_id": np.tile([catalogue.type(t).scene for t in type_ids], n_communities),
        "type_id": np.tile(type_ids, n_communities),
        "threshold_m": np.tile(thresholds, n_communities),
        "population": np.repeat(np.round(pop_total, 1), len(type_ids)),
        "covered_population": np.round(covered_pop.ravel(), 1),
        "coverage": np.round(coverage.ravel(), 4),
        "community_source": np.repeat(communities["community_source"].to_numpy(),
                                      len(type_ids)),
    })
    return gpd.GeoDataFrame(result, geometry="geometry", crs=communities.crs), summary

