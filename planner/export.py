"""An analysis to its files: layers first (:mod:`planner.layers`), then the writer.

The one place where the two meet, so that data flows one way: analyze →
(sites) → layers → files, map and report. :mod:`planner.outputs` only writes
the layers it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from planner.outputs import check_map_options, write_outputs
from planner.timing import Stopwatch

if TYPE_CHECKING:  # imported when used: ``import planner.export`` stays light
    import geopandas as gpd
    import pandas as pd

    from planner.pipeline import Analysis


def write_analysis(analysis: Analysis, out_dir: str | Path, *,
                   render_map: Callable[[Analysis, Path], None] | None = None,
                   extra_files: Callable[[Path], dict] | None = None,
                   extra_layers: Mapping[str, gpd.GeoDataFrame] | None = None,
                   sites: pd.DataFrame | None = None,
                   layers: Mapping[str, gpd.GeoDataFrame] | None = None,
                   full: bool = False, **map_options) -> Path:
    """Write ``coverage.gpkg``, ``summary.csv``, ``map.html``, ``report.html`` and ``run.json``.

    On a city, unless ``full``, also ``residence_distances.parquet``
    (:func:`planner.layers.split_distances`).

    Parameters
    ----------
    analysis
        The result of :func:`planner.analyze`.
    out_dir
        The output folder (created when missing).
    render_map
        Draws ``map.html`` into the staging folder; :func:`planner.maps.write_map`
        when omitted.
    extra_files
        Writes more files into the staging folder; returns entries for the run record.
    extra_layers
        More GeoPackage layers (e.g. :func:`planner.sites.sites_layers`), also
        drawn on the map where it knows them (``reallocation``, ``candidates``).
    sites
        The ranked candidate sites, for the report's "best candidates".
    layers
        The layers to write, when already computed; else
        :func:`planner.layers.analysis_layers` of the analysis (with the
        service areas).
    full
        Whether ``coverage.gpkg`` holds the heavy layers at any size: the
        walking network (``walk_edges``), the streets within reach of every
        type (``isochrones``) and the residences' distances; by default a city
        gets the service areas as grid squares (``service_cells``), no network,
        and the distances in ``residence_distances.parquet``
        (:func:`planner.layers.analysis_layers`).
    **map_options
        ``lang``, ``basemap``, ``tianditu_key``, ``title``: passed to
        :func:`planner.maps.build_map` (ignored with ``render_map``); ``lang``
        also sets the language of ``report.html``.

    Returns
    -------
    pathlib.Path
        ``out_dir``.
    """
    check_map_options(map_options, render_map)  # fail before any work
    clock = Stopwatch()
    clock.timings.update(analysis.timings_s)
    extra_layers = dict(extra_layers or {})
    if layers is not None:
        return write_outputs(analysis, out_dir, {**layers, **extra_layers},
                             render_map=render_map, extra_files=extra_files, sites=sites,
                             stopwatch=clock, **map_options)
    from planner.layers import analysis_layers, base_layers

    # the layers that need no computing are written while the service areas
    # and the gaps are computed
    first = base_layers(analysis, full=full)

    def computed() -> dict:
        return {**analysis_layers(analysis, full=full, stopwatch=clock, base=first),
                **extra_layers}

    return write_outputs(analysis, out_dir, computed, render_map=render_map,
                         extra_files=extra_files, sites=sites, stopwatch=clock,
                         first_layers=first, **map_options)
