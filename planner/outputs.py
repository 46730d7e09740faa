"""Write a run's results: GeoPackage, CSV, run record, map.

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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

import geopandas as gpd
import pandas as pd

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
    if extra:
        record.update(extra)
    return record


def write_analysis(analysis: Analysis, out_dir: str | Path, *,
                   render_map: Callable[[Analysis, Path], None] | None = None,
                   extra_files: Callable[[Path], dict] | None = None,
                   lang: str | None = None, basemap: str = "osm",
                   tianditu_key: str | None = None,
                   extra_layers: dict[str, gpd.GeoDataFrame] | None = None,
                   sites: pd.DataFrame | None = None) -> Path:
    """Write ``coverage.gpkg``, ``summary.csv``, ``map.html`` and ``run.json``.

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
    lang, basemap, tianditu_key
        Passed to :func:`planner.maps.build_map` (language of the labels, the
        map's basemap and the Tianditu key); ignored with ``render_map``.
        ``lang`` also sets the language of ``report.html``.
    extra_layers
        More GeoPackage layers (e.g. :func:`planner.sites.sites_layers`), also
        drawn on the map where it knows them (``reallocation``).
    sites
        The ranked candidate sites, for the report's "best candidates".
    """
    import time

    from planner.i18n import detect_lang, facility_origin
    from planner.isochrones import analysis_service_areas
    from planner.maps import resolve_basemap, write_map
    from planner.report import write_report

    if render_map is None:
        resolve_basemap(basemap, tianditu_key)  # fail before any work
    out_dir = Path(out_dir)
    timings = dict(analysis.timings_s)
    with staged_directory(out_dir) as stage:
        start = time.perf_counter()
        layers = analysis_layers(analysis, isochrones=False)
        timings["layers"] = round(time.perf_counter() - start, 4)
        start = time.perf_counter()
        layers["isochrones"] = analysis_service_areas(analysis)
        timings["isochrones"] = round(time.perf_counter() - start, 4)
        layers.update(extra_layers or {})
        start = time.perf_counter()
        write_layers(stage / "coverage.gpkg", layers)
        analysis.summary.to_csv(stage / "summary.csv", index=False, encoding="utf-8")
        if analysis.name_conflicts is not None:
            analysis.name_conflicts.to_csv(stage / "name_matches.csv", index=False,
                                           encoding="utf-8")
        timings["write"] = round(time.perf_counter() - start, 4)
        start = time.perf_counter()
        if render_map is not None:
            render_map(analysis, stage / "map.html")
        else:
            write_map(analysis, stage / "map.html", layers=layers, lang=lang,
                      basemap=basemap, tianditu_key=tianditu_key)
        timings["map"] = round(time.perf_counter() - start, 4)
        start = time.perf_counter()
        report_lang = lang or detect_lang(analysis.facilities["name"])
        write_report(stage / "report.html", analysis.communities, analysis.summary,
                     analysis.catalogue, lang=report_lang, area=analysis.area.name,
                     facility_origin=facility_origin(analysis, report_lang), sites=sites)
        timings["report"] = round(time.perf_counter() - start, 4)
        extra = extra_files(stage) if extra_files else {}
        analysis.timings_s = timings
        record = run_record(analysis, extra=extra)
        (stage / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                        encoding="utf-8")
    return out_dir


def analysis_layers(analysis: Analysis, *, isochrones: bool = True,
                    gap_cell_m: float | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The GeoPackage layers of DESIGN.md's output contract.

    Besides ``facilities``, ``residences``, ``communities`` and ``walk_edges``:

    - ``isochrones``: the walking service area of every facility type with a
      facility (``type_id``, ``threshold_m``, geometry;
      :func:`planner.isochrones.service_areas`), unless ``isochrones=False``;
    - ``gaps``: hexagons with the facility types their residents cannot reach
      (``cell_id``, ``cell_m``, ``population``, ``n_residences``,
      ``n_missing_types``, ``missing_types``, ``mean_missing_types``;
      :func:`planner.maps.gap_cells`, width ``gap_cell_m`` metres).
    """
    from planner.isochrones import analysis_service_areas
    from planner.maps import gap_cells

    optional = [column for column in ("list_rule", "source", "merged_osm_id")
                if column in analysis.facilities.columns]
    facilities = analysis.facilities[["facility_id", "type_id", "scene_id", "name", "match",
                                      *optional, "on_network", "geometry"]]
    residence_columns = ["residence_id", "community_id", "population", "floor_area_m2",
                         "storeys", "source", "on_network", *analysis.distance_columns,
                         "geometry"]
    residences = analysis.residences[residence_columns]
    edges = analysis.network.edges_frame()
    communities = analysis.communities.copy()
    layers = {"facilities": facilities, "residences": residences, "communities": communities,
              "walk_edges": edges}
    if isochrones:
        layers["isochrones"] = analysis_service_areas(analysis)
    layers["gaps"] = gap_cells(residences, analysis.catalogue.thresholds_m(), cell_m=gap_cell_m)
    return layers


def read_results(out_dir: str | Path) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Read the layers and the summary of a results folder."""
    import pyogrio

    out_dir = Path(out_dir)
    gpkg = out_dir / "coverage.gpkg"
    layers = {name: gpd.read_file(gpkg, layer=name)
              for name, _ in pyogrio.list_layers(gpkg)}
    layers["summary"] = pd.read_csv(out_dir / "summary.csv", dtype={"community_id": str})
    return layers
