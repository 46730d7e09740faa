"""The coverage analysis end to end: ``analyze()`` is what ``planner analyze`` runs.

sources → catalogue → network → access → coverage; :mod:`planner.outputs`
then writes the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from planner import settings
from planner.access import Access
from planner.catalogue import Catalogue, classify, load_catalogue
from planner.coverage import (
    apply_population_layer,
    assign_communities,
    community_coverage,
    grid_communities,
    osm_communities,
    prepare_communities,
    residences_from_buildings,
)
from planner.errors import PlannerError
from planner.facility_lists import merge_with_osm, name_conflicts, read_facility_list
from planner.network import WalkNetwork, build_network
from planner.sources import Area, download_area, load_area, read_layer
from planner.tiling import tiled_point_distances

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]


@dataclass
class Analysis:
    """Everything a coverage run computed, in the area's metric CRS.

    Attributes
    ----------
    area, catalogue, network, access
        The inputs and engines, kept for maps and site ranking.
    facilities
        One row per (facility, type).
    residences
        ``residence_id``, ``community_id``, ``population``, ``dist_<type>`` ...
    communities
        ``community_id``, ``name``, ``population``, ``cov_<type>``, ``score_<scene>``, ``score``.
    summary
        One row per community × facility type.
    """

    area: Area
    catalogue: Catalogue
    network: WalkNetwork
    access: Access
    facilities: gpd.GeoDataFrame
    residences: gpd.GeoDataFrame
    communities: gpd.GeoDataFrame
    summary: pd.DataFrame
    parameters: dict
    inputs: list[Path] = field(default_factory=list)
    timings_s: dict[str, float] = field(default_factory=dict)
    name_conflicts: pd.DataFrame | None = None

    @property
    def distance_columns(self) -> list[str]:
        return [f"dist_{type_id}" for type_id in self.catalogue.type_ids]

    def residence_distances(self) -> np.ndarray:
        return self.residences[self.distance_columns].to_numpy(float)


class _Stopwatch:
    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.timings: dict[str, float] = {}

    def run(self, stage: str, function, *args, **kwargs):
        start = time.perf_counter()
        value = function(*args, **kwargs)
        self.timings[stage] = round(time.perf_counter() - start, 4)
        if self.progress is not None:
            self.progress(stage, self.timings[stage])
        return value


def analyze(
    source: str | Path | Area | None = None,
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    communities: str | Path | gpd.GeoDataFrame | None = None,
    population: str | Path | gpd.GeoDataFrame | None = None,
    catalogue: str | Path | Catalogue | None = None,
    facility_lists: Sequence[str | Path] = (),
    facilities_crs: str = "wgs84",
    walk_speed_m_per_s: float | None = None,
    crs: str | CRS | None = None,
    floor_area_per_person_m2: float | None = None,
    default_storeys: int | None = None,
    tile_m: float | None = None,
    progress: Progress | None = None,
) -> Analysis:
    """Run the coverage analysis of one area.

    Parameters
    ----------
    source
        An OSM file (``.osm.pbf``, ``.osm``, ``.osm.bz2``) or an :class:`Area`;
        or leave it out and give ``place`` or ``bbox`` to download.
    place, bbox
        Download the area through osmnx instead (``bbox`` is west, south, east, north).
    communities
        Community boundaries (file or GeoDataFrame); OSM boundaries or a grid when omitted.
    population
        Population points or polygons overriding the building-based estimate.
    catalogue
        A catalogue file or object; the packaged one when omitted.
    facility_lists
        The planner's facility lists (CSV, XLSX, GeoJSON, GeoPackage), merged
        with the OSM facilities (see :mod:`planner.facility_lists`).
    facilities_crs
        Datum of the lists' coordinates: ``wgs84``, ``gcj02`` (Amap) or ``bd09`` (Baidu).
    walk_speed_m_per_s
        Converts distances to minutes in the outputs; :data:`settings.walk_speed_m_per_s`.
    crs
        Metric CRS to compute in; local UTM when omitted.
    floor_area_per_person_m2, default_storeys
        Population estimate parameters (see :mod:`planner.settings`).
    tile_m
        Solve distances tile by tile (squares of this side, metres) to bound
        memory on a whole city; the result is the same (see :mod:`planner.tiling`).
    progress
        Called with ``(stage, seconds)`` after each stage.
    """
    clock = _Stopwatch(progress)
    inputs: list[Path] = []
    cat = catalogue if isinstance(catalogue, Catalogue) else clock.run(
        "catalogue", load_catalogue, catalogue)
    if cat.path is not None and catalogue is not None:
        inputs.append(cat.path)
    speed = walk_speed_m_per_s or settings.walk_speed_m_per_s
    if not speed > 0:
        raise PlannerError(f"walking speed must be positive, got {speed}")

    if isinstance(source, Area):
        area = source
    elif source is not None:
        area = clock.run("load", load_area, source, feature_keys=cat.feature_keys(), crs=crs)
    else:
        area = clock.run("load", download_area, place=place, bbox=bbox,
                         feature_keys=cat.feature_keys(), crs=crs)
    inputs.extend(area.sources)

    facilities = clock.run("classify", classify, area.features, cat)
    if facility_lists:
        lists = clock.run("lists", lambda: pd.concat([
            read_facility_list(path, cat, crs_name=facilities_crs, list_index=index + 1)
            for index, path in enumerate(facility_lists)], ignore_index=True).to_crs(area.crs))
        inputs.extend(Path(path) for path in facility_lists)
        facilities = merge_with_osm(facilities, lists)
    conflicts = clock.run("name_conflicts", name_conflicts, facilities)
    network = clock.run("network", build_network, area)

    limits = {type_id: threshold * settings.search_limit_factor
              for type_id, threshold in cat.thresholds_m().items()}
    # tiled runs solve per tile below; the whole-area solve then happens only on demand
    def build_access() -> Access:
        built = Access(network, facilities.geometry, facilities["type_id"], limits)
        return built if tile_m else built.solve()

    access = clock.run("access", build_access)
    facilities = facilities.assign(on_network=access.facility_snap.snapped)
    stray = facilities[(facilities["match"] == "list") & ~facilities["on_network"]]
    if len(stray):
        log.warning("%d list facilities lie outside the area (more than %g m from the "
                    "walking network) and reach nobody: %s", stray["facility_id"].nunique(),
                    settings.max_snap_distance_m,
                    ", ".join(sorted(stray["facility_id"].unique())[:10]))

    residences = clock.run("residences", residences_from_buildings, area.features,
                           floor_area_per_person_m2=floor_area_per_person_m2,
                           default_storeys=default_storeys)
    if population is not None:
        layer = population if isinstance(population, gpd.GeoDataFrame) else read_layer(
            population, what="population")
        if not isinstance(population, gpd.GeoDataFrame):
            inputs.append(Path(population))
        residences = apply_population_layer(residences, layer, path=population
                                            if not isinstance(population, gpd.GeoDataFrame)
                                            else None)
    if len(residences) == 0:
        raise PlannerError("no residences found in the area (no residential buildings and no "
                           "population layer)", source if isinstance(source, str | Path)
                           else None)

    boundaries = clock.run("communities", _communities, communities, area, residences, inputs)
    residences = residences.assign(
        community_id=assign_communities(residences, boundaries))
    snap = clock.run("snap", network.snap, residences.geometry)
    if tile_m:
        distance_m = clock.run("distances", tiled_point_distances, network, facilities.geometry,
                               facilities["type_id"], limits, residences.geometry, tile_m)
    else:
        distance_m = clock.run("distances", access.point_distances, snap=snap)
    distance_columns = pd.DataFrame(np.round(distance_m, 1), index=residences.index,
                                    columns=[f"dist_{type_id}" for type_id in cat.type_ids])
    residences = pd.concat([residences, distance_columns], axis=1)
    residences["on_network"] = snap.snapped
    residences = gpd.GeoDataFrame(residences, geometry="geometry", crs=area.crs)
    community_table, summary = clock.run("coverage", community_coverage, residences,
                                         distance_m, cat, boundaries)
    summary["threshold_min"] = np.round(summary["threshold_m"] / speed / 60, 1)
    labels = cat.types_frame().set_index("type_id")
    for column in ("scene_zh", "scene_en", "type_zh", "type_en"):
        summary[column] = summary["type_id"].map(labels[column])
    parameters = {
        "walk_speed_m_per_s": speed,
        "search_limit_factor": settings.search_limit_factor,
        "floor_area_per_person_m2": floor_area_per_person_m2
        or settings.floor_area_per_person_m2,
        "default_storeys": default_storeys or settings.default_storeys,
        "crs": area.crs.to_string(),
        "community_source": str(boundaries["community_source"].iloc[0]),
        "place": place, "bbox": list(bbox) if bbox else None,
        "facilities_crs": facilities_crs if facility_lists else None,
        "tile_m": tile_m,
    }
    return Analysis(area=area, catalogue=cat, network=network, access=access,
                    facilities=facilities, residences=residences,
                    communities=community_table, summary=summary, parameters=parameters,
                    inputs=inputs, timings_s=clock.timings, name_conflicts=conflicts)


def _communities(communities, area: Area, residences: gpd.GeoDataFrame,
                 inputs: list[Path]) -> gpd.GeoDataFrame:
    if communities is not None:
        if isinstance(communities, gpd.GeoDataFrame):
            layer, path = communities.to_crs(area.crs), None
        else:
            path = Path(communities)
            layer = read_layer(path, what="communities", crs=area.crs)
            inputs.append(path)
        return prepare_communities(layer, path=path)
    extent = gpd.GeoSeries(gpd.points_from_xy(area.nodes["x"], area.nodes["y"]),
                           crs=area.crs).union_all().convex_hull
    found = osm_communities(area.features, extent)
    if found is not None:
        return found
    return grid_communities(residences.geometry)
