"""Write a run's results: GeoPackage, CSV, run record, map, report.

This module only writes files (it imports no analysis engine): the layers
are given (:func:`planner.layers.analysis_layers`, called by
:func:`planner.export.write_analysis`), the map comes from
:mod:`planner.maps`, the report from :mod:`planner.report`.

Every file is first written into a private temporary folder beside the
output folder and moved into place only when all of them are complete, so a
failed run leaves any earlier results untouched and never a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

import geopandas as gpd
import pandas as pd
import pyogrio

from planner.timing import Stopwatch

PACKAGES = ("planner", "numpy", "pandas", "scipy", "shapely", "geopandas", "pyogrio", "pyproj",
            "osmnx", "pyrosm", "networkx", "folium", "click", "highspy")


@contextmanager
def staged_directory(out_dir: str | Path) -> Iterator[Path]:
    """A hidden folder that replaces ``out_dir`` as a whole, only on success.

    :func:`planner.staging.replace_directory`: ``out_dir`` then holds exactly
    this run's files (never a file of an earlier run beside them), and an
    exception, SIGINT or SIGTERM leaves the earlier result as it was.
    """
    from planner.staging import check_output_dir, replace_directory

    # never replace a folder of other files (the CLI checked this before the work)
    with replace_directory(check_output_dir(out_dir)) as stage:
        yield stage


def write_layers(path: Path, layers: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Write GeoDataFrames as layers of one GeoPackage, in EPSG:4326.

    The GeoPackage's timestamps are :data:`GPKG_DATE`, so that the same
    layers give the same bytes.
    """
    pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": GPKG_DATE})
    try:
        for name, frame in layers.items():
            frame = frame.to_crs(4326)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio",
                              use_arrow=True)
    finally:
        pyogrio.set_gdal_config_options({"OGR_CURRENT_DATE": None})


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_record(analysis: Any, *, extra: dict | None = None) -> dict:
    """The run record (``run.json``): inputs with SHA-256, parameters, versions, timings."""
    cat = analysis.catalogue
    facilities = analysis.facilities
    record = {
        "inputs": [{"path": str(path), "sha256": sha256(path)} for path in analysis.inputs
                   if Path(path).is_file()],
        "area": analysis.area.name,
        "parameters": analysis.parameters,
        "catalogue": {"version": cat.version, "path": str(cat.path) if cat.path else None,
                      "sha256": sha256(cat.path) if cat.path else None,
                      "types": len(cat.types), "scenes": len(cat.scenes)},
        "counts": {
            "walk_nodes": analysis.network.n_nodes, "walk_edges": analysis.network.n_edges,
            "facilities": int(facilities["facility_id"].nunique()),
            "facility_type_pairs": len(facilities),
            "facilities_by_scene": {
                scene: int(count) for scene, count in
                facilities.groupby("scene_id")["facility_id"].nunique().items()},
            "facilities_by_match": {
                match: int(count) for match, count in facilities["match"].value_counts()
                .sort_index().items()},
            "name_conflicts": 0 if analysis.name_conflicts is None
            else len(analysis.name_conflicts),
            "residences": len(analysis.residences),
            "population": round(float(analysis.residences["population"].sum()), 1),
            "communities": len(analysis.communities),
        },
        "versions": package_versions(),
        "timings_s": analysis.timings_s,
    }
    quality = getattr(analysis, "quality", None)
    if quality is not None:
        record["quality"] = quality
    if extra:
        record.update(extra)
    return record


#: The options :func:`write_outputs` passes to the map (and ``lang`` to the report).
MAP_OPTIONS = frozenset({"lang", "basemap", "tianditu_key", "title"})

#: The date written into every GeoPackage (GDAL's ``OGR_CURRENT_DATE``): the
#: same input gives a byte-identical file; run.json holds when it ran.
GPKG_DATE = "2000-01-01T00:00:00Z"


def check_map_options(map_options: Mapping, render_map: Callable | None = None) -> None:
    """Refuse unknown map options and an unknown basemap before any work."""
    from planner.basemaps import resolve_basemap

    unknown = set(map_options) - MAP_OPTIONS
    if unknown:
        message = f"write_analysis: unknown option(s) {', '.join(sorted(unknown))}"
        raise TypeError(message)
    if render_map is None:
        resolve_basemap(map_options.get("basemap", "osm"), map_options.get("tianditu_key"))


def write_outputs(analysis: Any, out_dir: str | Path, layers: Mapping[str, gpd.GeoDataFrame], *,
                  render_map: Callable[[Any, Path], None] | None = None,
                  extra_files: Callable[[Path], dict] | None = None,
                  sites: pd.DataFrame | None = None, stopwatch: Stopwatch | None = None,
                  **map_options) -> Path:
    """Write ``coverage.gpkg``, ``summary.csv``, ``map.html``, ``report.html`` and ``run.json``.

    Only writes: the layers are given (:func:`planner.layers.analysis_layers`;
    :func:`planner.export.write_analysis` computes them and calls this).

    Parameters
    ----------
    analysis
        The :class:`planner.pipeline.Analysis` (its summary, catalogue,
        counts and timings).
    out_dir
        The output folder (created when missing).
    layers
        The GeoPackage layers, also drawn on the map.
    render_map
        Draws ``map.html`` into the staging folder; :func:`planner.maps.write_map`
        when omitted.
    extra_files
        Writes more files into the staging folder; returns entries for the run record.
    sites
        The ranked candidate sites, for the report's "best candidates".
    stopwatch
        Times ``write``, ``map`` and ``report``; its timings go to ``run.json``.
    **map_options
        ``lang``, ``basemap``, ``tianditu_key``, ``title`` (:data:`MAP_OPTIONS`).
    """
    check_map_options(map_options, render_map)
    out_dir = Path(out_dir)
    clock = stopwatch or Stopwatch()
    for name, seconds in analysis.timings_s.items():
        clock.timings.setdefault(name, seconds)
    with staged_directory(out_dir) as stage:
        with clock.stage("write"):
            _write_tables(analysis, stage, layers)
        with clock.stage("map"):
            _write_map(analysis, stage / "map.html", layers, render_map, **map_options)
        with clock.stage("report"):
            _write_report(analysis, stage / "report.html", map_options.get("lang"), sites)
        extra = extra_files(stage) if extra_files else {}
        analysis.timings_s = clock.timings
        record = run_record(analysis, extra=extra)
        (stage / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                        encoding="utf-8")
    return out_dir


def _write_tables(analysis: Any, stage: Path, layers: Mapping) -> None:
    """``coverage.gpkg``, ``summary.csv`` and ``name_matches.csv`` (names of several types)."""
    write_layers(stage / "coverage.gpkg", dict(layers))
    analysis.summary.to_csv(stage / "summary.csv", index=False, encoding="utf-8")
    if analysis.name_conflicts is not None:
        analysis.name_conflicts.to_csv(stage / "name_matches.csv", index=False,
                                       encoding="utf-8")


def _write_map(analysis: Any, path: Path, layers: Mapping,
               render_map: Callable[[Any, Path], None] | None, **options) -> None:
    """``map.html``: ``render_map`` when given, else the layers (and the summary) drawn."""
    if render_map is not None:
        render_map(analysis, path)
        return
    from planner.maps import write_map

    write_map(analysis, path, layers={**layers, "summary": analysis.summary}, **options)


def _write_report(analysis: Any, path: Path, lang: str | None,
                  sites: pd.DataFrame | None) -> None:
    from planner.i18n import detect_lang, facility_origin
    from planner.report import write_report

    report_lang = lang or detect_lang(analysis.facilities["name"])
    write_report(path, analysis.communities, analysis.summary, analysis.catalogue,
                 lang=report_lang, area=analysis.area.name,
                 facility_origin=facility_origin(analysis, report_lang), sites=sites)


def read_results(out_dir: str | Path) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Read the layers and the summary of a results folder."""
    out_dir = Path(out_dir)
    gpkg = out_dir / "coverage.gpkg"
    layers = {name: gpd.read_file(gpkg, layer=name)
              for name, _ in pyogrio.list_layers(gpkg)}
    layers["summary"] = pd.read_csv(out_dir / "summary.csv", dtype={"community_id": str})
    return layers
