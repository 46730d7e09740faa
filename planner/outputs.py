"""Write a run's results: GeoPackage, CSV, run record, map, report.

This module only writes files: the layers come from
:func:`planner.layers.analysis_layers`, the map from :mod:`planner.maps`,
the report from :mod:`planner.report`.

Every file is first written into a private temporary folder beside the
output folder and moved into place only when all of them are complete, so a
failed run leaves any earlier results untouched and never a half-written file.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd

from planner.timing import Stopwatch

if TYPE_CHECKING:
    from planner.pipeline import Analysis

PACKAGES = ("planner", "numpy", "pandas", "scipy", "shapely", "geopandas", "pyogrio", "pyproj",
            "osmnx", "pyrosm", "networkx", "folium", "click", "highspy")


@contextmanager
def staged_directory(out_dir: str | Path) -> Iterator[Path]:
    """A temporary folder whose files move into ``out_dir`` only on success."""
    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        yield stage
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in sorted(stage.iterdir()):
            os.replace(item, out_dir / item.name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_layers(path: Path, layers: dict[str, gpd.GeoDataFrame]) -> None:
    """Write GeoDataFrames as layers of one GeoPackage, in EPSG:4326."""
    for name, frame in layers.items():
        frame = frame.to_crs(4326)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio", use_arrow=True)


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


def run_record(analysis: Analysis, *, extra: dict | None = None) -> dict:
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


def write_analysis(analysis: Analysis, out_dir: str | Path, *,
                   render_map: Callable[[Analysis, Path], None] | None = None,
                   extra_files: Callable[[Path], dict] | None = None,
                   extra_layers: dict[str, gpd.GeoDataFrame] | None = None,
                   sites: pd.DataFrame | None = None,
                   layers: Mapping[str, gpd.GeoDataFrame] | None = None,
                   **map_options) -> Path:
    """Write ``coverage.gpkg``, ``summary.csv``, ``map.html``, ``report.html`` and ``run.json``.

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
    **map_options
        ``lang``, ``basemap``, ``tianditu_key``: passed to
        :func:`planner.maps.build_map` (language of the labels, the map's
        basemap and the Tianditu key; ignored with ``render_map``); ``lang``
        also sets the language of ``report.html``.
    """
    from planner.basemaps import resolve_basemap

    unknown = set(map_options) - {"lang", "basemap", "tianditu_key", "title"}
    if unknown:
        message = f"write_analysis: unknown option(s) {', '.join(sorted(unknown))}"
        raise TypeError(message)
    if render_map is None:  # fail before any work
        resolve_basemap(map_options.get("basemap", "osm"), map_options.get("tianditu_key"))
    out_dir = Path(out_dir)
    clock = Stopwatch()
    clock.timings.update(analysis.timings_s)
    if layers is None:
        from planner.layers import analysis_layers as compute_layers

        layers = compute_layers(analysis, stopwatch=clock)
    layers = {**layers, **(extra_layers or {})}
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


def _write_tables(analysis: Analysis, stage: Path, layers: Mapping) -> None:
    """``coverage.gpkg``, ``summary.csv`` and ``name_matches.csv`` (names of several types)."""
    write_layers(stage / "coverage.gpkg", dict(layers))
    analysis.summary.to_csv(stage / "summary.csv", index=False, encoding="utf-8")
    if analysis.name_conflicts is not None:
        analysis.name_conflicts.to_csv(stage / "name_matches.csv", index=False,
                                       encoding="utf-8")


def _write_map(analysis: Analysis, path: Path, layers: Mapping,
               render_map: Callable[[Analysis, Path], None] | None, **options) -> None:
    """``map.html``: ``render_map`` when given, else the layers (and the summary) drawn."""
    if render_map is not None:
        render_map(analysis, path)
        return
    from planner.maps import write_map

    write_map(analysis, path, layers={**layers, "summary": analysis.summary}, **options)


def _write_report(analysis: Analysis, path: Path, lang: str | None,
                  sites: pd.DataFrame | None) -> None:
    from planner.i18n import detect_lang, facility_origin
    from planner.report import write_report

    report_lang = lang or detect_lang(analysis.facilities["name"])
    write_report(path, analysis.communities, analysis.summary, analysis.catalogue,
                 lang=report_lang, area=analysis.area.name,
                 facility_origin=facility_origin(analysis, report_lang), sites=sites)


def __getattr__(name: str):
    # analysis_layers moved to planner.layers; the old import keeps working
    if name == "analysis_layers":
        from planner.layers import analysis_layers

        return analysis_layers
    message = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(message)


def read_results(out_dir: str | Path) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Read the layers and the summary of a results folder."""
    import pyogrio

    out_dir = Path(out_dir)
    gpkg = out_dir / "coverage.gpkg"
    layers = {name: gpd.read_file(gpkg, layer=name)
              for name, _ in pyogrio.list_layers(gpkg)}
    layers["summary"] = pd.read_csv(out_dir / "summary.csv", dtype={"community_id": str})
    return layers
