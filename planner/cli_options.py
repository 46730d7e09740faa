"""Command-line options shared by the commands that run an analysis."""

from __future__ import annotations

from pathlib import Path

import click

from planner import settings
from planner.errors import PlannerError

SOURCE_HELP = "OSM extract (.osm.pbf, .osm, .osm.bz2); omit with --place or --bbox."


map_options = [
    click.option("--basemap", type=click.Choice(["osm", "amap", "tianditu"]), default="osm",
                 show_default=True,
                 help="Map tiles; amap (高德) shifts every overlay to GCJ-02."),
    click.option("--tianditu-key", envvar="TIANDITU_KEY", default=None,
                 help="Tianditu (天地图) token for --basemap tianditu [env TIANDITU_KEY]."),
]


def analysis_options(function):
    options = [
        click.option("--place", help='Download by place name, e.g. "西陵区, 宜昌市, 湖北省".'),
        click.option("--bbox", nargs=4, type=float, default=None,
                     metavar="WEST SOUTH EAST NORTH", help="Download a bounding box (degrees)."),
        click.option("--communities", type=click.Path(path_type=Path),
                     help="Community boundaries (GeoPackage, GeoJSON, Shapefile)."),
        click.option("--population", type=click.Path(path_type=Path),
                     help="Population points or polygons (overrides the building estimate)."),
        click.option("--catalogue", type=click.Path(path_type=Path),
                     help="Replace the packaged catalogue of scenes and facility types."),
        click.option("--facilities", "facility_lists", multiple=True,
                     type=click.Path(path_type=Path),
                     help="A facility list (CSV, XLSX, GeoJSON, GeoPackage); repeatable."),
        click.option("--facilities-crs", type=click.Choice(["wgs84", "gcj02", "bd09"]),
                     default="wgs84", show_default=True,
                     help="Datum of the lists' coordinates (Amap: gcj02, Baidu: bd09)."),
        click.option("--walk-speed", "walk_speed", type=float, default=None,
                     help=f"Walking speed, m/s (default {settings.walk_speed_m_per_s})."),
        click.option("--crs", default=None, help="Metric CRS to compute in (default: local UTM)."),
        click.option("--tile-m", "tile_m", type=float, default=None,
                     help="Solve distances in square tiles of this side (metres) to bound "
                          "memory on a whole city; same results."),
        click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
                     help="Language of tables and labels (default: Chinese when the names are)."),
        *map_options,
    ]
    for option in reversed(options):
        function = option(function)
    return function


def source_kwargs(source, place, bbox, communities, population, catalogue, walk_speed, crs,
                   facility_lists=(), facilities_crs="wgs84", tile_m=None):
    if source is None and place is None and not bbox:
        raise click.UsageError("give a SOURCE file, --place or --bbox")
    for path in (source, communities, population, catalogue, *facility_lists):
        if path is not None and not Path(path).exists():
            raise PlannerError("file not found", path)
    return dict(source=source, place=place, bbox=tuple(bbox) if bbox else None,
                communities=communities, population=population, catalogue=catalogue,
                walk_speed_m_per_s=walk_speed, crs=crs, facility_lists=facility_lists,
                facilities_crs=facilities_crs, tile_m=tile_m)
