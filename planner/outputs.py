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

import contextlib
import csv
import hashlib
import io
import json
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from planner.errors import PlannerError
from planner.timing import Stopwatch

if TYPE_CHECKING:  # imported when writing: ``import planner.export`` stays light
    import geopandas as gpd
    import pandas as pd

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


#: Layers written as GeoParquet files beside ``coverage.gpkg`` instead of into
#: it, by name: the file each becomes (:func:`planner.layers.split_distances`).
PARQUET_LAYERS = {"residence_distances": "residence_distances.parquet"}


def write_layers(path: Path, layers: Mapping[str, gpd.GeoDataFrame]) -> None:
    """Write GeoDataFrames as layers of one GeoPackage, in EPSG:4326.

    The GeoPackage's timestamps are :data:`planner.layer_files.GPKG_DATE`, so that
    the same layers give the same bytes: those of ``frame.to_crs(4326).to_file(...)``
    with pyogrio, written without a transformed copy of the frames
    (:mod:`planner.layer_files`).
    """
    write_files(path, layers, parquet=False)


def write_parquet(path: Path, frame: gpd.GeoDataFrame) -> None:
    """Write a GeoDataFrame as a GeoParquet file in EPSG:4326, without its index.

    The bytes of GeoPandas' writer (pyarrow, WKB points, Snappy) on
    ``frame.to_crs(4326)`` (:func:`planner.layer_files.write_parquet_layer`):
    the same frame gives the same bytes (no timestamp), and GDAL's Parquet
    driver (QGIS >= 3.30) opens the file with its CRS.
    """
    from planner.layer_files import Wgs84Layers, write_parquet_layer

    write_parquet_layer(Path(path), Wgs84Layers().prepare(frame))


def write_files(gpkg: Path, layers: Mapping, *, parquet: bool = True) -> None:
    """The layers into ``gpkg`` (:func:`write_layers`), those of :data:`PARQUET_LAYERS`
    into their GeoParquet file beside it (:func:`write_parquet`).

    ``layers`` are GeoDataFrames or :class:`planner.layer_files.Wgs84Layer`
    (prepared once for every file and the map); ``parquet=False`` writes
    every layer into ``gpkg``.
    """
    from planner.layer_files import (
        Wgs84Layer,
        Wgs84Layers,
        gpkg_options,
        write_gpkg_layer,
        write_parquet_layer,
    )

    preparer = Wgs84Layers()
    layers = {name: layer if isinstance(layer, Wgs84Layer) else preparer.prepare(layer)
              for name, layer in layers.items()}
    for name, layer in layers.items():
        if parquet and name in PARQUET_LAYERS:
            write_parquet_layer(gpkg.parent / PARQUET_LAYERS[name], layer)
    with gpkg_options():
        for name, layer in layers.items():
            if not (parquet and name in PARQUET_LAYERS):
                write_gpkg_layer(gpkg, name, layer)


def _quoted(values) -> list[str]:
    """``values`` (strings) as the ``csv`` module writes them: quoted where needed."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    texts = []
    for value in values:  # distinct values only; a value may hold ",\n" itself
        buffer.seek(0)
        buffer.truncate()
        # a second, empty field: a row of a single empty field would be written as ""
        writer.writerow([value, ""])
        texts.append(buffer.getvalue()[:-2])
    return texts


def _csv_column(series: pd.Series):
    """A column as CSV text (a pyarrow array), or None when only pandas knows how.

    Each distinct value is formatted once, as pandas does: floats and integers
    by NumPy's ``astype(str)`` (shortest repr), missing values empty, strings
    quoted by the ``csv`` module.
    """
    import numpy as np
    import pandas as pd
    import pyarrow as pa
    import pyarrow.compute as pc

    if not isinstance(series.dtype, np.dtype):
        if not pd.api.types.is_string_dtype(series.dtype):
            return None  # extension types (nullable integers, categories ...): pandas formats them
        values, kind = None, "O"  # strings (Arrow): factorized as they are, no object array
    else:
        values = series.to_numpy()
        kind = values.dtype.kind
    if kind == "f":
        # distinct bit patterns: -0.0 and 0.0 stay apart, as in pandas' output
        codes, uniques = pd.factorize(values.view(f"i{values.itemsize}"))
        numbers = uniques.view(values.dtype)
        texts = numbers.astype(str).astype(object)
        texts[np.isnan(numbers)] = ""
    elif kind in "iub":
        codes, uniques = pd.factorize(values)
        texts = uniques.astype(str)
    elif kind == "O":
        codes, uniques = pd.factorize(series)
        uniques = np.asarray(uniques, dtype=object)
        if not all(type(value) is str for value in uniques):
            return None  # numbers, dates ... in an object column
        texts = [*_quoted(uniques), ""]
        codes = np.where(codes < 0, len(texts) - 1, codes)
    else:
        return None
    return pc.take(pa.array(texts, pa.large_string()), pa.array(codes))


def write_csv(frame: pd.DataFrame, path: str | Path) -> None:
    """``frame.to_csv(path, index=False, encoding="utf-8")``, the same bytes, faster.

    Every distinct value is formatted once and the lines are joined by
    pyarrow (a city's summary: 337k rows in a fraction of pandas' time).
    Columns of other types (nullable integers, categories, dates, non-string
    names) are left to pandas.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = [_csv_column(frame.iloc[:, index]) for index in range(frame.shape[1])]
    if (not columns or len(frame) == 0 or any(column is None for column in columns)
            or not all(type(name) is str for name in frame.columns)):
        frame.to_csv(path, index=False, encoding="utf-8")
        return
    text = pa.large_string()
    lines = pc.binary_join_element_wise(*columns, pa.scalar(",", text))
    lines = pc.binary_join_element_wise(lines, pa.scalar("", text), pa.scalar(os.linesep, text))
    # the lines' characters, one after the other, are the file's body
    _, offsets, data = lines.buffers()
    offsets = np.frombuffer(offsets, dtype=np.int64)
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    with Path(path).open("wb") as handle:
        handle.write((",".join(_quoted(frame.columns)) + os.linesep).encode("utf-8"))
        handle.write(memoryview(data)[start:end])


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def package_versions() -> dict[str, str]:
    from importlib import metadata

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



def check_map_options(map_options: Mapping, render_map: Callable | None = None) -> None:
    """Refuse unknown map options and an unknown basemap before any work."""
    from planner.basemaps import resolve_basemap

    unknown = set(map_options) - MAP_OPTIONS
    if unknown:
        message = f"write_analysis: unknown option(s) {', '.join(sorted(unknown))}"
        raise TypeError(message)
    if render_map is None:
        resolve_basemap(map_options.get("basemap", "osm"), map_options.get("tianditu_key"))


def write_outputs(analysis: Any, out_dir: str | Path,
                  layers: Mapping[str, gpd.GeoDataFrame] | Callable[[], Mapping], *,
                  render_map: Callable[[Any, Path], None] | None = None,
                  extra_files: Callable[[Path], dict] | None = None,
                  sites: pd.DataFrame | None = None, stopwatch: Stopwatch | None = None,
                  first_layers: Mapping[str, gpd.GeoDataFrame] | None = None,
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
        The GeoPackage layers, also drawn on the map; or a function computing
        them (called once the output folder is checked and ``first_layers``
        are being written). Those of :data:`PARQUET_LAYERS` are written as
        GeoParquet files beside the GeoPackage (:func:`write_files`); the map
        gets ``residence_distances`` joined to ``residences``.
    render_map
        Draws ``map.html`` into the staging folder; :func:`planner.maps.write_map`
        when omitted.
    extra_files
        Writes more files into the staging folder; returns entries for the run record.
    sites
        The ranked candidate sites, for the report's "best candidates".
    stopwatch
        Times ``write`` (the GeoPackage, with ``write_first``, the child's
        part, and ``write_parquet``, the GeoParquet files), ``csv`` and
        ``report`` (a forked child's, from the start), ``map`` (another
        child's, once the layers are computed) and ``outputs`` (all of them
        once the layers are computed); its timings go to ``run.json``.
    first_layers
        The first layers of ``layers``, known before it is computed: written
        by a forked child (:func:`planner.staging.beside`) while ``layers``
        is computed. When they turn out not to be the first layers of
        ``layers`` (other names, order or objects), the GeoPackage is written
        again from ``layers`` alone: the file is always ``layers``. Those of
        :data:`PARQUET_LAYERS` are left to this process (with ``layers``).
    **map_options
        ``lang``, ``basemap``, ``tianditu_key``, ``title`` (:data:`MAP_OPTIONS`).

    Notes
    -----
    Every layer is transformed to EPSG:4326 once
    (:class:`planner.layer_files.Wgs84Layers`), for its files and the map,
    and the work goes to forked children: the CSV tables and the report at
    once (they need no layer), the first layers while the others are
    computed, the map once they are, beside this process' GeoParquet file
    and last layers.
    """
    from planner.layer_files import Wgs84Layers
    from planner.staging import beside

    check_map_options(map_options, render_map)
    out_dir = Path(out_dir)
    clock = stopwatch or Stopwatch()
    for name, seconds in analysis.timings_s.items():
        clock.timings.setdefault(name, seconds)
    preparer = Wgs84Layers()
    with staged_directory(out_dir) as stage, \
            beside(_write_tables, analysis, stage, map_options.get("lang"), sites,
                   os.getpid()) as tabling:
        gpkg = stage / "coverage.gpkg"
        # the child writes GeoPackage layers only; the GeoParquet files are this
        # process' own, written while it waits for the child
        first = {name: preparer.prepare(frame) for name, frame in (first_layers or {}).items()
                 if name not in PARQUET_LAYERS}
        # GDAL opens and closes the file for every layer: the first layers
        # written by a child, the others by this process, give the same bytes
        with beside(_write_first_layers, gpkg, first) as writing_first:
            if callable(layers):
                layers = layers()
            start = time.perf_counter()
            prepared = {name: first[name] if name in first and first[name].frame is frame
                        else preparer.prepare(frame) for name, frame in dict(layers).items()}
            with beside(_draw_map, analysis, stage, prepared, render_map,
                        map_options) as drawing:
                with clock.stage("write"):
                    _write_after_first(gpkg, prepared, first, writing_first, clock)
                clock.timings.update(drawing.result())
        clock.timings.update(tabling.result())
        clock.timings["outputs"] = round(time.perf_counter() - start, 4)
        extra = extra_files(stage) if extra_files else {}
        analysis.timings_s = clock.timings
        record = run_record(analysis, extra=extra)
        (stage / "run.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                        encoding="utf-8")
    return out_dir


def _write_after_first(gpkg: Path, layers: Mapping, first: Mapping, writing_first: Any,
                       clock: Stopwatch) -> None:
    """The GeoParquet files, then, once the child wrote ``first`` into ``gpkg``, the rest.

    A city's ``residence_distances.parquet`` takes about as long as the
    child's writing saves by leaving the distances out of the GeoPackage:
    written here, it fills this process' wait for the child.
    """
    files = {name: layer for name, layer in layers.items() if name in PARQUET_LAYERS}
    if files:
        with clock.stage("write_parquet"):
            write_files(gpkg, files)
    clock.timings.update(writing_first.result())
    tables = {name: layer for name, layer in layers.items() if name not in PARQUET_LAYERS}
    written = _written_first(first, tables)
    if len(written) < len(first):
        gpkg.unlink(missing_ok=True)  # not the first layers: all again
    write_files(gpkg, {name: layer for name, layer in tables.items() if name not in written})


def _write_first_layers(path: Path, layers: Mapping) -> dict[str, float]:
    """:func:`write_files` of the first layers (beside their others' computing); its timing."""
    clock = Stopwatch()
    if layers:
        with clock.stage("write_first"):
            write_files(path, layers)
    return clock.timings


def _written_first(first: Mapping, layers: Mapping) -> set[str]:
    """The names of ``first`` when they are the first of ``layers``, in order, the same
    objects; else none."""
    if list(layers)[:len(first)] != list(first) or any(
            layers[name] is not layer for name, layer in first.items()):
        return set()
    return set(first)


def _yield_cores(parent: int) -> None:
    """In a forked helper (not in ``parent``: :func:`planner.staging.beside` may run
    inline), let the GeoPackage's writers go first
    (:data:`planner.settings.output_helper_niceness`)."""
    from planner import settings

    if os.getpid() != parent and settings.output_helper_niceness > 0:
        with contextlib.suppress(OSError):
            os.nice(settings.output_helper_niceness)


def _write_tables(analysis: Any, stage: Path, lang: str | None,
                  sites: pd.DataFrame | None, parent: int) -> dict[str, float]:
    """``summary.csv``, ``name_matches.csv`` and ``report.html`` (no layer needed); their
    timings. Run beside the layers' computing and writing (:func:`planner.staging.beside`).
    """
    _yield_cores(parent)
    clock = Stopwatch()
    with clock.stage("csv"):
        _write_csv_tables(analysis, stage)
    with clock.stage("report"):
        _write_report(analysis, stage / "report.html", lang, sites)
    return clock.timings


#: The layers whose coordinates in EPSG:4326 the map gets when this process
#: has them (:attr:`planner.layer_files.Wgs84Layer.xy`): it draws them as it
#: draws them after its own ``to_crs(4326)``, and is spared transforming them
#: again and building their polygons (the communities are simplified in
#: metres first: they stay as given).
MAP_WGS84_LAYERS = ("gaps", "service_cells")


def _draw_map(analysis: Any, stage: Path, layers: Mapping,
              render_map: Callable[[Any, Path], None] | None,
              map_options: Mapping) -> dict[str, float]:
    """``map.html`` from the prepared layers (:class:`planner.layer_files.Wgs84Layer`);
    its timing. Run beside the GeoPackage's writing (:func:`planner.staging.beside`).

    Not behind the other writers (:func:`_yield_cores`): started once the
    layers are computed, the map is the last file to be done.
    """
    clock = Stopwatch()
    with clock.stage("map"):
        frames = {name: layer.frame for name, layer in layers.items()}
        wgs84_xy = {name: layers[name].xy for name in MAP_WGS84_LAYERS
                    if name in layers and layers[name].table is not None}
        _write_map(analysis, stage / "map.html", frames, render_map, wgs84_xy=wgs84_xy,
                   **map_options)
    return clock.timings


def _write_csv_tables(analysis: Any, stage: Path) -> None:
    """``summary.csv`` and ``name_matches.csv`` (names of several types)."""
    write_csv(analysis.summary, stage / "summary.csv")
    if analysis.name_conflicts is not None:
        write_csv(analysis.name_conflicts, stage / "name_matches.csv")


def _write_map(analysis: Any, path: Path, layers: Mapping,
               render_map: Callable[[Any, Path], None] | None,
               wgs84_xy: Mapping | None = None, **options) -> None:
    """``map.html``: ``render_map`` when given, else the layers (and the summary) drawn
    (``wgs84_xy``: :func:`planner.maps.build_map`)."""
    if render_map is not None:
        render_map(analysis, path)
        return
    from planner.maps import write_map

    layers = with_residence_distances(layers)  # the map shows the distances
    write_map(analysis, path, layers={**layers, "summary": analysis.summary},
              wgs84_xy=wgs84_xy, **options)


def _write_report(analysis: Any, path: Path, lang: str | None,
                  sites: pd.DataFrame | None) -> None:
    from planner.i18n import detect_lang, facility_origin
    from planner.report import write_report

    report_lang = lang or detect_lang(analysis.facilities["name"])
    write_report(path, analysis.communities, analysis.summary, analysis.catalogue,
                 lang=report_lang, area=analysis.area.name,
                 facility_origin=facility_origin(analysis, report_lang), sites=sites)


def join_distances(residences: gpd.GeoDataFrame, distances: pd.DataFrame) -> gpd.GeoDataFrame:
    """The residences with the ``dist_<type>`` columns of ``distances``, by ``residence_id``.

    The columns of ``residences`` (its geometry last), then the distances:
    the frame of a run whose ``residences`` layer holds them. Rows stay in
    the order of ``residences``; every residence must have one row of
    ``distances``.
    """
    import geopandas as gpd
    import numpy as np
    import pandas as pd

    columns = [column for column in distances.columns if column.startswith("dist_")]
    ids = residences["residence_id"].array
    position = None  # written in the same order: taken as they are
    if not (len(ids) == len(distances) and ids.equals(distances["residence_id"].array)):
        index = pd.Index(distances["residence_id"])
        position = index.get_indexer(np.asarray(ids)) if index.is_unique else np.array([-1])
        if (position < 0).any():
            message = "residence_distances: not one row per residence_id of the residences"
            raise PlannerError(message)
    geometry = residences.geometry.name
    # column by column: a fraction of concat's time on a city (one copy, no realignment)
    data = {name: residences[name] for name in residences.columns if name != geometry}
    for name in columns:
        column = distances[name].to_numpy()
        data[name] = pd.Series(column if position is None else column[position],
                               index=residences.index, name=name)
    data[geometry] = residences[geometry]
    # the columns kept as they are: no copy into one block of 300k × 55 floats
    return gpd.GeoDataFrame(pd.DataFrame(data, copy=False), geometry=geometry,
                            crs=residences.crs, copy=False)


def with_residence_distances(layers: Mapping) -> dict:
    """``layers`` with the ``residence_distances`` layer back in ``residences``
    (:func:`join_distances`); as they are when it is not there."""
    layers = dict(layers)
    distances = layers.pop("residence_distances", None)
    if distances is not None:
        layers["residences"] = join_distances(layers["residences"], distances)
    return layers


def add_residence_distances(out_dir: str | Path, layers: Mapping) -> dict:
    """``layers`` read from a results folder, with the residences' distances
    of its ``residence_distances.parquet`` joined back (:func:`join_distances`)
    when a city's run wrote them there; as they are otherwise."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from planner.errors import one_line
    from planner.i18n import message

    layers = dict(layers)
    path = Path(out_dir) / PARQUET_LAYERS["residence_distances"]
    if not path.is_file():
        return with_residence_distances(layers)
    try:  # its points are the residences' own: not read
        columns = [column for column in pq.read_schema(path).names if column != "geometry"]
        layers["residence_distances"] = pq.read_table(path, columns=columns).to_pandas()
    except (pa.ArrowException, OSError) as error:
        text = message(f"cannot read the residences' distances ({one_line(error)})",
                       f"无法读取住宅的步行距离（{one_line(error)}）")
        raise PlannerError(text, path) from None
    try:
        return with_residence_distances(layers)
    except PlannerError as error:
        raise PlannerError(error.message, path) from None


def read_results(out_dir: str | Path) -> dict[str, gpd.GeoDataFrame | pd.DataFrame]:
    """Read the layers and the summary of a results folder.

    The residences come with their distances either way: from the
    ``residences`` layer, or joined from ``residence_distances.parquet``
    (:func:`add_residence_distances`) when a city's run wrote them there.
    """
    import geopandas as gpd
    import pandas as pd
    import pyogrio

    out_dir = Path(out_dir)
    gpkg = out_dir / "coverage.gpkg"
    layers = add_residence_distances(out_dir, {name: gpd.read_file(gpkg, layer=name)
                                               for name, _ in pyogrio.list_layers(gpkg)})
    layers["summary"] = pd.read_csv(out_dir / "summary.csv", dtype={"community_id": str})
    return layers
