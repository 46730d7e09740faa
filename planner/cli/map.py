"""``planner map RESULTS_DIR``: re-render the interactive map from ``coverage.gpkg``.

Nothing is recomputed: the map is drawn from the GeoPackage layers that
``planner analyze`` wrote (see :func:`planner.maps.build_map`), so a different
language or basemap takes a fraction of a second.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from planner.basemaps import resolve_basemap
from planner.cli.common import basemap_options, error_line, lang_option, set_language
from planner.errors import PlannerError
from planner.i18n import pick

#: The layers the map reads (``walk_edges`` and ``summary.csv`` are not needed).
MAP_LAYERS = ("communities", "facilities", "residences", "isochrones", "service_cells", "gaps",
              "reallocation", "candidates")


def read_map_layers(results_dir: Path) -> dict:
    """The layers of ``results_dir/coverage.gpkg`` that the map draws."""
    import geopandas as gpd
    import pyogrio

    gpkg = results_dir / "coverage.gpkg"
    if not gpkg.is_file():
        message = pick("此处没有 coverage.gpkg（请先运行 `planner analyze`）",
                       "no coverage.gpkg here (run `planner analyze` first)")
        raise PlannerError(message, results_dir)
    try:
        present = {name for name, _ in pyogrio.list_layers(gpkg)}
    except Exception as error:  # pyogrio raises its own DataSourceError
        message = pick(f"无法读取 GeoPackage（{error}）", f"cannot read the GeoPackage ({error})")
        raise PlannerError(message, gpkg) from error
    from planner.outputs import add_residence_distances

    # a city's run keeps the residences' distances in residence_distances.parquet
    return add_residence_distances(results_dir, {
        name: gpd.read_file(gpkg, layer=name, engine="pyogrio")
        for name in MAP_LAYERS if name in present})


def render_results_map(results_dir: str | Path, out: str | Path | None = None, *,
                       lang: str | None = None, basemap: str = "osm",
                       tianditu_key: str | None = None) -> Path:
    """Render the map of a results folder; returns the HTML file written.

    The thresholds are the run's own (:func:`planner.results.results_catalogue`:
    the copy of its catalogue stored in the folder). ``out`` is checked before
    anything is read, written beside its destination and renamed into place
    when complete (:func:`planner.staging.replace_file`), so a failure or an
    interrupt never leaves a half-written map.
    """
    from planner.maps import render_map
    from planner.results import results_catalogue
    from planner.staging import check_output_file, replace_file

    results_dir = Path(results_dir)
    resolve_basemap(basemap, tianditu_key)  # fail before reading anything
    out = check_output_file(out if out is not None else results_dir / "map.html")
    layers = read_map_layers(results_dir)
    catalogue = results_catalogue(results_dir)
    with replace_file(out) as temporary:
        render_map(layers, temporary, catalogue, lang=lang, basemap=basemap,
                   tianditu_key=tianditu_key)
    return out


@click.command("map")
@click.argument("results_dir", type=click.Path(path_type=Path, file_okay=False))
@lang_option("Language of the labels (default: Chinese when the facility names are).")
@basemap_options
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="HTML file to write (default: RESULTS_DIR/map.html).")
def map_command(results_dir: Path, lang: str | None, basemap: str, tianditu_key: str | None,
                out: Path | None) -> None:
    """Re-render the interactive map of RESULTS_DIR from its coverage.gpkg."""
    set_language(lang)
    start = time.perf_counter()
    try:
        path = render_results_map(results_dir, out, lang=lang, basemap=basemap,
                                  tianditu_key=tianditu_key)
    except PlannerError as error:
        click.echo(error_line(error), err=True)
        sys.exit(2)
    size_kb = path.stat().st_size / 1024
    seconds = time.perf_counter() - start
    click.echo(pick(f"地图已写入 {path}（{size_kb:.0f} KB，{seconds:.1f} 秒）",
                    f"map written to {path} ({size_kb:.0f} KB, {seconds:.1f} s)"))
