"""``planner map RESULTS_DIR``: re-render the interactive map from ``coverage.gpkg``.

Nothing is recomputed: the map is drawn from the GeoPackage layers that
``planner analyze`` wrote (see :func:`planner.maps.build_map`), so a different
language or basemap takes a fraction of a second.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import click

from planner.errors import PlannerError

#: The layers the map reads (``walk_edges`` and ``summary.csv`` are not needed).
MAP_LAYERS = ("communities", "facilities", "residences", "isochrones", "gaps", "reallocation")
BASEMAP_CHOICES = ("osm", "amap", "tianditu")


def read_map_layers(results_dir: Path) -> dict:
    """The layers of ``results_dir/coverage.gpkg`` that the map draws."""
    import geopandas as gpd
    import pyogrio

    gpkg = results_dir / "coverage.gpkg"
    if not gpkg.is_file():
        raise PlannerError("no coverage.gpkg here (run `planner analyze` first)", results_dir)
    try:
        present = {name for name, _ in pyogrio.list_layers(gpkg)}
    except Exception as error:  # pyogrio raises its own DataSourceError
        raise PlannerError(f"cannot read the GeoPackage ({error})", gpkg) from error
    return {name: gpd.read_file(gpkg, layer=name, engine="pyogrio")
            for name in MAP_LAYERS if name in present}


def render_results_map(results_dir: str | Path, out: str | Path | None = None, *,
                       lang: str | None = None, basemap: str = "osm",
                       tianditu_key: str | None = None) -> Path:
    """Render the map of a results folder; returns the HTML file written.

    The file is written beside its destination and moved into place when
    complete, so a failure never leaves a half-written map.
    """
    from planner.maps import render_map, resolve_basemap, results_catalogue

    results_dir = Path(results_dir)
    resolve_basemap(basemap, tianditu_key)  # fail before reading anything
    out = Path(out) if out is not None else results_dir / "map.html"
    layers = read_map_layers(results_dir)
    catalogue = results_catalogue(results_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    os.close(handle)
    try:
        render_map(layers, temporary, catalogue, lang=lang, basemap=basemap,
                   tianditu_key=tianditu_key)
        os.replace(temporary, out)
    finally:
        if os.path.exists(temporary):
            os.remove(temporary)
    return out


@click.command("map")
@click.argument("results_dir", type=click.Path(path_type=Path, file_okay=False))
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
              help="Language of the labels (default: Chinese when the facility names are).")
@click.option("--basemap", type=click.Choice(BASEMAP_CHOICES), default="osm",
              show_default=True,
              help="Basemap tiles: OpenStreetMap, Amap/高德 (GCJ-02; overlays are shifted to "
                   "match) or Tianditu/天地图 (needs a key).")
@click.option("--tianditu-key", envvar="TIANDITU_KEY", default=None, metavar="KEY",
              help="Tianditu token (or set TIANDITU_KEY).")
@click.option("--out", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="HTML file to write (default: RESULTS_DIR/map.html).")
def map_command(results_dir: Path, lang: str | None, basemap: str, tianditu_key: str | None,
                out: Path | None) -> None:
    """Re-render the interactive map of RESULTS_DIR from its coverage.gpkg."""
    start = time.perf_counter()
    try:
        path = render_results_map(results_dir, out, lang=lang, basemap=basemap,
                                  tianditu_key=tianditu_key)
    except PlannerError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    size_kb = path.stat().st_size / 1024
    click.echo(f"map written to {path} ({size_kb:.0f} KB, "
               f"{time.perf_counter() - start:.1f} s)")
