"""An analysis as the layers of its results: what ``coverage.gpkg`` holds and the map draws.

:func:`analysis_layers` is the one place where an analysis becomes layers:
the columns of the output contract (README, "Outputs"), the walking service
areas (:mod:`planner.isochrones`) and the gap hexagons (:mod:`planner.gaps`).
:mod:`planner.outputs` only writes these layers to files, and
:mod:`planner.maps` only draws them.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import geopandas as gpd

from planner import settings
from planner.gaps import gap_cells
from planner.isochrones import analysis_service_areas
from planner.reach_cells import analysis_street_reach
from planner.timing import Stopwatch

if TYPE_CHECKING:
    from planner.pipeline import Analysis
    from planner.reach_cells import StreetReach

#: Facility columns written when the analysis has them (facility lists, merges).
OPTIONAL_FACILITY_COLUMNS = ("list_rule", "source", "merged_osm_id")


def facility_layer(analysis: Analysis) -> gpd.GeoDataFrame:
    """One row per (facility, type): ids, type, scene, name, how it matched, geometry."""
    optional = [column for column in OPTIONAL_FACILITY_COLUMNS
                if column in analysis.facilities.columns]
    return analysis.facilities[["facility_id", "type_id", "scene_id", "name", "match",
                                *optional, "on_network", "geometry"]]


#: The residence columns other than the distances, in the order written.
RESIDENCE_COLUMNS = ("residence_id", "community_id", "population", "floor_area_m2", "storeys",
                     "source", "on_network")


def residence_layer(analysis: Analysis, *, distances: bool = True) -> gpd.GeoDataFrame:
    """Residences with their population and walking distance to every type (metres).

    ``distances=False`` leaves out the ``dist_<type>`` columns (they are then
    :func:`residence_distance_layer`).
    """
    columns = [*RESIDENCE_COLUMNS, *(analysis.distance_columns if distances else []),
               "geometry"]
    return analysis.residences[columns]


def residence_distance_layer(analysis: Analysis) -> gpd.GeoDataFrame:
    """``residence_id``, ``community_id``, the ``dist_<type>`` columns and the points.

    What a city's ``residence_distances.parquet`` holds (:func:`split_distances`),
    joined to the ``residences`` layer by ``residence_id``.
    """
    return analysis.residences[["residence_id", "community_id", *analysis.distance_columns,
                                "geometry"]]


def split_distances(analysis: Analysis, *, full: bool = False) -> bool:
    """Whether the residences' distances leave their layer for ``residence_distances``.

    Above :data:`planner.settings.max_default_residence_distances` residences,
    unless ``full``: a city's distances (one column per type) are most of a
    GeoPackage's bytes and of its writing time, and GeoParquet writes them in
    a fraction of it.
    """
    return not full and len(analysis.residences) > settings.max_default_residence_distances


def base_layers(analysis: Analysis, *, full: bool = False) -> dict[str, gpd.GeoDataFrame]:
    """The layers that need no computing: ``facilities``, ``residences``, ``communities``.

    The first layers of :func:`analysis_layers` (given the same ``full``),
    the same objects when passed to it as ``base``
    (:func:`planner.export.write_analysis` writes them while the others are
    computed). When :func:`split_distances`, ``residences`` has no
    ``dist_<type>`` column and ``residence_distances``
    (:func:`residence_distance_layer`) follows ``communities``.
    """
    split = split_distances(analysis, full=full)
    layers = {"facilities": facility_layer(analysis),
              "residences": residence_layer(analysis, distances=not split),
              "communities": analysis.communities.copy()}
    if split:
        layers["residence_distances"] = residence_distance_layer(analysis)
    return layers


def gap_layer(analysis: Analysis, cell_m: float | None = None) -> gpd.GeoDataFrame:
    """:func:`planner.gaps.gap_cells` of the analysis' residences, hexagons ``cell_m`` wide."""
    return gap_cells(residence_layer(analysis), analysis.catalogue.thresholds_m(), cell_m=cell_m)


def analysis_layers(analysis: Analysis, *, isochrones: bool = True, full: bool = False,
                    gap_cell_m: float | None = None, stopwatch: Stopwatch | None = None,
                    base: dict[str, gpd.GeoDataFrame] | None = None,
                    ) -> dict[str, gpd.GeoDataFrame]:
    """The GeoPackage layers of the output contract.

    A district gets every layer; at city scale the heavy ones (the walking
    network, the streets within reach of every type) are left for
    ``full=True`` and the residences' distances are a layer of their own,
    so that writing stays within seconds and the file small.

    Parameters
    ----------
    analysis
        The result of :func:`planner.analyze`.
    isochrones
        Whether to draw the service areas.
    full
        Whether to include the heavy layers at any size: ``walk_edges``, the
        ``isochrones`` street lines and the distances in ``residences``.
    gap_cell_m
        Width of the gap hexagons, metres (:data:`planner.settings.gap_cell_m`).
    stopwatch
        Times the stages ``layers``, ``service_cells``, ``isochrones`` and
        ``gaps`` (the wait for the gap hexagons, computed on a second thread
        meanwhile).
    base
        :func:`base_layers` of the analysis (with the same ``full``) when
        already made; they are returned as they are, first.

    Returns
    -------
    dict
        ``facilities``, ``residences``, ``communities`` (:func:`base_layers`:
        above :data:`planner.settings.max_default_residence_distances`
        residences, unless ``full``, the ``dist_<type>`` columns are the layer
        ``residence_distances`` instead, written as a GeoParquet file),
        ``gaps`` (hexagons
        with the facility types their residents cannot reach:
        ``cell_id``, ``cell_m``, ``population``, ``n_residences``,
        ``n_missing_types``, ``missing_types``, ``mean_missing_types``);
        ``walk_edges`` when the network has at most
        :data:`planner.settings.max_default_walk_edges` edges (or ``full``);
        unless ``isochrones=False``, the walking service area of every type
        with a facility: ``isochrones`` (the streets within reach, one
        MultiLineString per type: ``type_id``, ``threshold_m``) when they have
        at most :data:`planner.settings.max_isochrone_coordinates` coordinates
        (or ``full``), and above that ``service_cells``
        (:func:`planner.reach_cells.service_cells`: the squares holding a street
        within reach, one ``reach_<type_id>`` column per type). In the
        analysis' metric CRS. Both are taken from :attr:`Analysis.street_reach`
        when the analysis drew them ahead (a city's, the same drawing).
    """
    clock = stopwatch or Stopwatch()
    # the gap hexagons (numpy, GIL released) are computed beside the service areas
    with ThreadPoolExecutor(max_workers=1) as pool:
        with clock.stage("layers"):
            layers = {**(base_layers(analysis, full=full) if base is None else base),
                      "gaps": None}
            # the hexagons need the distances, in the residences layer or not
            homes = analysis.residences if "residence_distances" in layers \
                else layers["residences"]
            gaps = pool.submit(gap_cells, homes, analysis.catalogue.thresholds_m(),
                               cell_m=gap_cell_m)
            if full or analysis.network.n_edges <= settings.max_default_walk_edges:
                layers["walk_edges"] = analysis.network.edges_frame()
        if isochrones:
            with clock.stage("service_cells"):
                # one pass over the edges sizes the streets drawing; its squares
                # are built only when they are drawn instead
                reach = analysis_street_reach(analysis)
                small = not reach.drawn_as_squares
                if not small:
                    layers["service_cells"] = reach.cells()
            if full or small:
                layers["isochrones"] = clock.run("isochrones", _streets, analysis, reach)
        with clock.stage("gaps"):
            layers["gaps"] = gaps.result()
    return layers


def _streets(analysis: Analysis, reach: StreetReach) -> gpd.GeoDataFrame:
    """The ``isochrones`` layer: the streets drawn ahead with the reach (a city's, in the
    street-reach child) when they are the drawing asked for, else drawn now."""
    ahead = reach.streets()
    return analysis_service_areas(analysis) if ahead is None else ahead
