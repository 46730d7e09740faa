"""The coverage analysis end to end: ``analyze()`` is what ``planner analyze`` runs.

sources → catalogue → network → access → coverage; :mod:`planner.outputs`
then writes the result.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS

from planner import settings, validate
from planner.access import Access
from planner.catalogue import Catalogue, load_catalogue
from planner.classification import DECISION_COLUMNS, classify_features
from planner.coverage import (
    apply_population_layer,
    assign_communities,
    community_coverage,
    community_detour_index,
    compounds_without_paths,
    grid_communities,
    osm_communities,
    prepare_communities,
    residences_from_buildings,
    type_status,
)
from planner.errors import PlannerError
from planner.facility_lists import merge_with_osm, name_conflicts, read_facility_list
from planner.network import WalkNetwork, build_network
from planner.preflight import check_area_layers, read_user_layer
from planner.reach_cells import StreetReach
from planner.sources import Area, download_area, load_area, read_layer
from planner.staging import beside, inline
from planner.tiling import tiled_point_distances
from planner.timing import Progress, Stopwatch

log = logging.getLogger(__name__)

__all__ = ["Analysis", "Progress", "analyze"]


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
        ``residence_id``, ``community_id``, ``population``, ``storeys``,
        ``storeys_source``, ``building``, ``dist_<type>`` (metres, rounded to
        0.1 m: the very values coverage counts), ``on_network``,
        ``compound_without_paths``.
    communities
        ``community_id``, ``name``, ``population``, ``cov_<type>``,
        ``score_<scene>``, ``score``, ``score_data``, ``n_types``,
        ``n_types_data``, ``missing_types``, ``no_data_types``,
        ``detour_index``, ``compounds_without_paths``.
    summary
        One row per community × facility type (with ``facilities_in_area``).
    name_conflicts
        ``name_matches.csv``: facilities whose name matched several types or
        whose name decided or vetoed a type, with a ``reason``.
    type_status
        Indexed by ``type_id``: ``facilities_in_area``, ``has_data``.
    quality
        How much to trust the answer (JSON-serialisable): ``residences``
        (population on default storeys and untagged buildings, buildings
        excluded as non-homes), ``types`` (with and without data),
        ``network`` (dropped fragments, grade-separated snapping, compounds
        without paths, detour) and ``warnings``.
    street_reach
        The streets within reach of every type (:class:`planner.reach_cells.StreetReach`)
        when drawn ahead (``analyze(service_areas=True)`` on a city), with their
        squares or their streets drawn; else None: :func:`planner.layers.analysis_layers`
        then computes them.
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
    type_status: pd.DataFrame | None = None
    quality: dict = field(default_factory=dict)
    street_reach: StreetReach | None = None

    @property
    def distance_columns(self) -> list[str]:
        return [f"dist_{type_id}" for type_id in self.catalogue.type_ids]

    def residence_distances(self) -> np.ndarray:
        return self.residences[self.distance_columns].to_numpy(float)


def analyze(  # noqa: PLR0913 - the public API: every option is keyword-only
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
    service_areas: bool = False,
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
    service_areas
        Whether the results will be drawn with the service areas
        (:func:`planner.export.write_analysis` does): on a city their streets
        within reach are then computed by a forked child beside the last
        stages, kept as :attr:`Analysis.street_reach` (stage ``street_reach``),
        with their drawing: the squares, or the streets when they are few enough.
    """
    clock = Stopwatch(progress)
    inputs: list[Path] = []
    cat = catalogue if isinstance(catalogue, Catalogue) else clock.run(
        "catalogue", load_catalogue, catalogue)
    if cat.path is not None and catalogue is not None:
        inputs.append(cat.path)
    # every option and the user's layers are checked before the work (planner.validate)
    speed = (settings.walk_speed_m_per_s if walk_speed_m_per_s is None
             else validate.check_number(walk_speed_m_per_s, "--walk-speed"))
    tile_m = validate.check_number(tile_m, "--tile-m")
    validate.check_bbox(bbox)
    if crs is not None:  # its fit to the extract is checked once the extract is read
        validate.check_metric_crs(crs)
    communities = read_user_layer(communities, what="communities")
    population = read_user_layer(population, what="population")
    area = _load(source, place, bbox, cat, crs, clock)
    inputs.extend(area.sources)
    check_area_layers(area, communities=communities, population=population)
    inputs.extend(Path(layer.attrs["path"]) for layer in (population, communities)
                  if layer is not None and layer.attrs.get("path"))
    # the walking network does not depend on the facilities: it is built on a second
    # thread while they are classified (numpy, pyarrow and GEOS release the GIL)
    with ThreadPoolExecutor(max_workers=1) as second_thread:
        network_built = second_thread.submit(clock.run, "network", build_network, area)
        facilities, conflicts = _facilities(area, cat, facility_lists, facilities_crs, clock,
                                            inputs)
        network = network_built.result()
    limits = {type_id: threshold * settings.search_limit_factor
              for type_id, threshold in cat.thresholds_m().items()}

    # tiled runs solve per tile below; the whole-area solve then happens only on demand
    def build_access() -> Access:
        built = Access(network, facilities.geometry, facilities["type_id"], limits)
        return built if tile_m else built.solve()

    quality: dict = {"warnings": []}
    homes_args = (area, cat, network, population, floor_area_per_person_m2, default_storeys,
                  communities, source if isinstance(source, str | Path) else None)
    # the homes, their place on the network and the communities do not depend on the
    # search: on a city a forked child finds them while this process snaps the
    # facilities and contracts the graph; the streets within reach of every type (for
    # the service-area layers) need the search only: another child draws them from the
    # moment it ends, while this process takes the homes and goes on
    reach_ahead = service_areas and not tile_m and network.n_edges >= settings.min_edges_beside
    with ExitStack() as children:
        finding_homes = children.enter_context(_beside_if_large(network, _homes, *homes_args))
        access = clock.run("access", build_access)
        reaching = children.enter_context(
            beside(_street_reach, network, access, cat, facilities) if reach_ahead
            else inline(lambda: None))
        facilities = facilities.assign(on_network=access.facility_snap.snapped)
        _warn_stray(facilities)
        residences, snap, boundaries, homes_timings, homes_inputs, homes_quality = \
            finding_homes.result()
        _adopt_timings(clock, homes_timings)
        inputs.extend(homes_inputs)
        quality["warnings"].extend(homes_quality.pop("warnings"))
        quality.update(homes_quality)
        if tile_m:
            distance_m = clock.run("distances", tiled_point_distances, network,
                                   facilities.geometry, facilities["type_id"], limits,
                                   residences.geometry, tile_m)
        else:
            distance_m = clock.run("distances", access.point_distances, snap=snap)
        # one truth: coverage counts exactly the distances the residences layer publishes
        distance_m = np.round(distance_m, 1)
        residences = _with_distances(residences, distance_m, snap, cat, area)
        status = type_status(cat, facilities)
        community_table, summary = clock.run("coverage", community_coverage, residences,
                                             distance_m, cat, boundaries,
                                             status["facilities_in_area"].to_numpy())
        summary["threshold_min"] = np.round(summary["threshold_m"] / speed / 60, 1)
        labels = cat.types_frame().set_index("type_id")
        # every summary row is of a catalogue type: a take by position is the map
        rows = labels.index.get_indexer(summary["type_id"])
        for column in ("scene_zh", "scene_en", "type_zh", "type_en"):
            summary[column] = labels[column].take(rows).set_axis(summary.index)
        residences, community_table = clock.run(
            "network_quality", _network_quality, area, access, facilities, snap,
            residences, distance_m, community_table, quality)
        street_reach = reaching.result()
    if street_reach is not None:
        street_reach.network = network
        _adopt_timings(clock, street_reach.timings_s)
    _type_quality(cat, status, quality)
    parameters = {
        "walk_speed_m_per_s": speed,
        "search_limit_factor": settings.search_limit_factor,
        "floor_area_per_person_m2": floor_area_per_person_m2
        or settings.floor_area_per_person_m2,
        "default_storeys": default_storeys or settings.default_storeys,
        "walk_profile": settings.walk_profile,
        "crs": area.crs.to_string(),
        "community_source": str(boundaries["community_source"].iloc[0]),
        "place": place, "bbox": list(bbox) if bbox else None,
        "facilities_crs": facilities_crs if facility_lists else None,
        "tile_m": tile_m,
    }
    return Analysis(area=area, catalogue=cat, network=network, access=access,
                    facilities=facilities, residences=residences,
                    communities=community_table, summary=summary, parameters=parameters,
                    inputs=inputs, timings_s=clock.timings, name_conflicts=conflicts,
                    type_status=status, quality=quality, street_reach=street_reach)


def _load(source, place, bbox, cat: Catalogue, crs, clock: Stopwatch) -> Area:
    if isinstance(source, Area):
        return source
    if source is not None:
        return clock.run("load", load_area, source, feature_keys=cat.feature_keys(), crs=crs)
    return clock.run("load", download_area, place=place, bbox=bbox,
                     feature_keys=cat.feature_keys(), crs=crs)


def _facilities(area: Area, cat: Catalogue, facility_lists, facilities_crs: str,
                clock: Stopwatch, inputs: list[Path]) -> tuple[gpd.GeoDataFrame, pd.DataFrame]:
    """OSM facilities merged with the lists, and the name matches to check."""
    classified = clock.run("classify", classify_features, area.features, cat)
    facilities = classified.facilities
    if facility_lists:
        lists = clock.run("lists", lambda: pd.concat([
            read_facility_list(path, cat, crs_name=facilities_crs, list_index=index + 1)
            for index, path in enumerate(facility_lists)], ignore_index=True).to_crs(area.crs))
        inputs.extend(Path(path) for path in facility_lists)
        facilities = merge_with_osm(facilities, lists)

    def conflicts() -> pd.DataFrame:
        several = name_conflicts(facilities).assign(reason="several_types", dropped_type_ids="")
        parts = [frame for frame in (several, classified.decisions) if len(frame)]
        if not parts:
            return pd.DataFrame(columns=DECISION_COLUMNS)
        return pd.concat(parts, ignore_index=True)[DECISION_COLUMNS]

    return facilities, clock.run("name_conflicts", conflicts)


def _warn_stray(facilities: gpd.GeoDataFrame) -> None:
    stray = facilities[(facilities["match"] == "list") & ~facilities["on_network"]]
    if len(stray):
        log.warning("%d list facilities lie outside the area (more than %g m from the "
                    "walking network) and reach nobody: %s", stray["facility_id"].nunique(),
                    settings.max_snap_distance_m,
                    ", ".join(sorted(stray["facility_id"].unique())[:10]))


def _adopt_timings(clock: Stopwatch, timings: dict[str, float]) -> None:
    """Record and report stages timed elsewhere (a forked child's)."""
    for stage, seconds in timings.items():
        clock.timings[stage] = seconds
        if clock.progress is not None:
            clock.progress(stage, seconds)


def _street_reach(network: WalkNetwork, access: Access, cat: Catalogue,
                  facilities: gpd.GeoDataFrame) -> StreetReach:
    """:class:`planner.reach_cells.StreetReach` of every catalogue type, timed; with its
    squares built when they will be drawn (a city's), else its streets."""
    clock = Stopwatch()
    with clock.stage("street_reach"):
        points = facilities.geometry.to_numpy()
        reach = StreetReach(network, access, cat.thresholds_m(), facility_points=points)
        if reach.drawn_as_squares:
            reach.cells()
        elif settings.isochrone_method == "streets":
            reach.draw_streets(access, points)
    reach.timings_s = clock.timings
    return reach


def _beside_if_large(network: WalkNetwork, function, *args):
    """:func:`planner.staging.beside` on a network of a city's size, else ``function``
    called in this process when its result is asked for."""
    if network.n_edges >= settings.min_edges_beside:
        return beside(function, *args)
    return inline(function, *args)


def _homes(area: Area, cat: Catalogue, network: WalkNetwork, population,  # noqa: PLR0913
           floor_area_per_person_m2, default_storeys, communities,
           source: str | Path | None) -> tuple:
    """Residences (with their community), their snap to the network, and communities,
    apart from the search.

    Returns
    -------
    tuple
        ``(residences, snap, boundaries, timings, inputs, quality)``: the
        timings of the stages ``residences``, ``communities`` and ``snap``, the
        input files read and the quality record's entries, for the caller to
        merge (this may run in a forked child, :func:`_beside_if_large`).
    """
    clock, inputs, quality = Stopwatch(), [], {"warnings": []}
    residences = _residences(area, cat, population, floor_area_per_person_m2, default_storeys,
                             clock, inputs, quality)
    if len(residences) == 0:
        message = ("no residences found in the area (no residential buildings and no "
                   "population layer)")
        raise PlannerError(message, source)
    boundaries = clock.run("communities", _communities, communities, area, residences, inputs)
    residences = residences.assign(community_id=assign_communities(residences, boundaries))
    snap = clock.run("snap", network.snap, residences.geometry)
    return residences, snap, boundaries, clock.timings, inputs, quality


def _residences(area: Area, cat: Catalogue, population, floor_area_per_person_m2,
                default_storeys, clock: Stopwatch, inputs: list[Path],
                quality: dict) -> gpd.GeoDataFrame:
    """Residences from buildings (or the population layer), and their quality record."""
    found: dict = {}
    residences = clock.run("residences", residences_from_buildings, area.features,
                           floor_area_per_person_m2=floor_area_per_person_m2,
                           default_storeys=default_storeys, rules=cat.residences,
                           quality=found)
    if population is not None:
        is_frame = isinstance(population, gpd.GeoDataFrame)
        layer = population if is_frame else read_layer(population, what="population")
        if not is_frame:
            inputs.append(Path(population))
        residences = apply_population_layer(residences, layer,
                                            path=None if is_frame else population)
    people = residences["population"].to_numpy(float)
    estimated = residences["source"].eq("estimate").to_numpy(dtype=bool)
    default = estimated & residences.get("storeys_source", pd.Series(
        None, index=residences.index)).eq("default").to_numpy(dtype=bool)
    untagged = estimated & residences.get("building", pd.Series(
        None, index=residences.index)).eq("yes").to_numpy(dtype=bool)
    quality["residences"] = {
        "residences": len(residences), "population": round(float(people.sum()), 1),
        "population_layer": population is not None,
        "default_storeys": {"residences": int(default.sum()),
                            "population": round(float(people[default].sum()), 1)},
        "untagged_buildings": {"residences": int(untagged.sum()),
                               "population": round(float(people[untagged].sum()), 1)},
        "excluded_non_homes": found.get("excluded_non_homes", {}),
    }
    total = float(people.sum())
    if total > 0 and people[default].sum() / total > 0.5:
        _warn(quality, "{share:.0%} of the population rests on buildings without storeys "
              "(default {storeys} storeys assumed); give --population for firmer figures",
              "{share:.0%} 的人口所在建筑没有层数标签（按默认 {storeys} 层估算）；"
              "可用 --population 提供人口数据", share=people[default].sum() / total,
              storeys=default_storeys or settings.default_storeys)
    return residences


def _with_distances(residences: gpd.GeoDataFrame, distance_m: np.ndarray, snap,
                    cat: Catalogue, area: Area) -> gpd.GeoDataFrame:
    distance_columns = pd.DataFrame(distance_m, index=residences.index,
                                    columns=[f"dist_{type_id}" for type_id in cat.type_ids])
    residences = pd.concat([residences, distance_columns], axis=1)
    residences["on_network"] = snap.snapped
    return gpd.GeoDataFrame(residences, geometry="geometry", crs=area.crs)


def _network_quality(area: Area, access: Access, facilities: gpd.GeoDataFrame, snap,
                     residences: gpd.GeoDataFrame,
                     distance_m: np.ndarray, communities: gpd.GeoDataFrame,
                     quality: dict) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame]:
    """Detour index and compounds without paths per community; network record."""
    network = access.network
    nearest = access.nearest_facilities(snap)
    communities = communities.copy()
    communities["detour_index"] = community_detour_index(
        residences, distance_m, nearest, facilities.geometry, communities)
    compound = compounds_without_paths(area.features, residences, network)
    residences = residences.assign(compound_without_paths=compound >= 0)
    flagged = pd.DataFrame({"community_id": residences["community_id"].to_numpy(dtype=object),
                            "compound": compound})
    flagged = flagged[flagged["compound"] >= 0]
    counts = flagged.groupby("community_id")["compound"].nunique()
    communities["compounds_without_paths"] = counts.reindex(
        communities["community_id"].to_numpy(dtype=object)).fillna(0).astype(np.int64)\
        .to_numpy()
    graded = network.edge_grade_separated
    facility_moved = access.facility_snap.ground_preferred
    record = {
        "walk_profile": settings.walk_profile, **network.fragments,
        "grade_separated_edges": int(graded.sum()) if graded is not None else 0,
        "residences_moved_off_grade_separated": int(snap.ground_preferred.sum())
        if snap.ground_preferred is not None else 0,
        "facilities_moved_off_grade_separated": int(facility_moved.sum())
        if facility_moved is not None else 0,
        "compounds_without_paths": int(flagged["compound"].nunique()),
        "residences_in_compounds_without_paths": int(len(flagged)),
        "median_detour_index": None if communities["detour_index"].isna().all()
        else round(float(communities["detour_index"].median()), 2),
    }
    quality["network"] = record
    if record["dropped_km"] > settings.fragment_warning_km:
        _warn(quality, "{km:.1f} km of walkable ways are cut off from the main network and "
              "were left out ({edge:.1f} km at the extract's edge): residences near them may "
              "be farther than the street suggests; use a larger extract",
              "有 {km:.1f} 公里可步行道路与主路网不连通而被舍弃（其中 {edge:.1f} 公里位于数据"
              "范围边缘）：附近居民的步行距离可能偏大，请使用更大范围的数据",
              km=record["dropped_km"], edge=record["dropped_at_extract_edge_km"])
    return residences, communities


def _type_quality(cat: Catalogue, status: pd.DataFrame, quality: dict) -> None:
    """Types with and without data; one warning when most types have none."""
    missing = [type_id for type_id in cat.type_ids if not status.loc[type_id, "has_data"]]
    quality["types"] = {"with_data": len(cat.type_ids) - len(missing),
                        "without_data": len(missing), "no_data_type_ids": missing}
    if len(cat.type_ids) and (len(cat.type_ids) - len(missing)) / len(cat.type_ids) \
            < settings.min_type_data_share:
        zh = settings.lang == "zh"
        names = "、".join(cat.type(t).zh for t in missing) if zh else ", ".join(
            cat.type(t).en for t in missing)
        _warn(quality, "the sources hold facilities of only {have} of {total} types; "
              "{n} types have no data at all (no data, not a gap): {names}. "
              "Add the planner's own lists with --facilities",
              "数据源只含 {total} 类设施中的 {have} 类；以下 {n} 类完全没有数据（是缺数据，"
              "不是缺设施）：{names}。请用 --facilities 补充本地设施清单",
              have=len(cat.type_ids) - len(missing), total=len(cat.type_ids),
              n=len(missing), names=names)


def _warn(quality: dict, english: str, chinese: str, **values) -> None:
    """Log a data warning once, in the user's language, and keep it in the quality record."""
    text = (chinese if settings.lang == "zh" else english).format(**values)
    log.warning("%s", text)
    quality.setdefault("warnings", []).append(text)


def _communities(communities, area: Area, residences: gpd.GeoDataFrame,
                 inputs: list[Path]) -> gpd.GeoDataFrame:
    if communities is not None:
        if isinstance(communities, gpd.GeoDataFrame):
            layer, path = communities.to_crs(area.crs), communities.attrs.get("path")
        else:
            path = Path(communities)
            layer = read_layer(path, what="communities", crs=area.crs)
            inputs.append(path)
        return prepare_communities(layer, path=path)
    # OSM communities are places or boundaries: the other features (nearly all of a
    # city's) are left out before osm_communities, and without any the hull is not needed
    features = area.features
    keys = [key for key in ("place", "boundary") if key in features.columns]
    tagged = np.zeros(len(features), dtype=bool)
    for key in keys:
        tagged |= features[key].notna().to_numpy(dtype=bool)
    if tagged.any():
        # the hull of the node cloud straight from the coordinates (no union of points first)
        extent = shapely.convex_hull(shapely.multipoints(area.nodes[["x", "y"]]
                                                         .to_numpy(float)))
        found = osm_communities(features[tagged], extent)
        if found is not None:
            return found
    return grid_communities(residences.geometry)
