"""Read an area: its walking network and its tagged features.

Three ways in, one result (:class:`Area`):

- ``.osm.pbf`` through pyrosm,
- ``.osm`` / ``.osm.bz2`` XML through osmnx,
- a place name or a bounding box, downloaded through osmnx.

Whatever the source, the walking network arrives as straight segments between
consecutive OSM nodes (never simplified: a segment's geometry is the line
between its two nodes, which keeps snapping offsets exact), and the features
arrive as one GeoDataFrame with one column per OSM key. Everything is
reprojected to one metric CRS, a local UTM zone unless the caller names one.

The planner's own layers (communities, population, premises, facility lists)
are read by :func:`read_layer`.
"""

from __future__ import annotations

import bz2
import json
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from planner.errors import PlannerError

log = logging.getLogger(__name__)

WGS84 = CRS.from_epsg(4326)

#: highway values that are never walked (after osmnx's "walk" filter, plus the
#: clearly non-pedestrian values that pyrosm keeps in "all").
NOT_WALKABLE_HIGHWAYS = frozenset(
    {
        "motorway", "motorway_link", "construction", "proposed", "planned", "abandoned",
        "razed", "platform", "raceway", "bus_guideway", "busway", "escape", "no", "disused",
        "rest_area", "services",
    }
)
#: highway values walked only where foot is explicitly allowed.
FOOT_OPT_IN_HIGHWAYS = frozenset({"cycleway", "bridleway", "trunk", "trunk_link"})
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official", "destination"})
ACCESS_CLOSED = frozenset({"no", "private"})

#: Tags read from ways of the network besides highway.
WAY_TAGS = ("highway", "foot", "access", "service", "sidewalk", "name", "area")

#: Keys every run needs on features, besides those the catalogue's rules name.
BASE_FEATURE_KEYS = (
    "name", "name:zh", "official_name", "name:en",
    "building", "building:levels", "height", "landuse", "place", "boundary", "admin_level",
    "amenity", "shop", "office", "tourism", "leisure", "healthcare", "craft",
)


@dataclass
class Area:
    """One study area, everything in one metric CRS.

    Attributes
    ----------
    name
        Human label (file stem or place name).
    crs
        The metric CRS of every geometry below.
    nodes
        Walking-network nodes: index ``node_id`` (OSM id), columns ``x``, ``y``.
    edges
        Walking-network segments: ``u``, ``v`` (OSM node ids), ``highway``, ``name``.
    features
        Tagged OSM features (POIs, buildings, land use, places): ``osm_type``,
        ``osm_id``, one string column per OSM key, ``geometry``.
    sources
        Files read (for the run record); empty for downloads.
    """

    name: str
    crs: CRS
    nodes: pd.DataFrame
    edges: pd.DataFrame
    features: gpd.GeoDataFrame
    sources: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- network filter


def walkable_mask(ways: pd.DataFrame) -> np.ndarray:
    """Which ways a pedestrian may use, vectorised over a table of way tags.

    Streets where walking is allowed, footways, paths, steps and pedestrian
    areas are in; motorways, construction and anything tagged ``foot=no`` (or
    ``access=no/private`` without a foot permission) are out. Cycleways and
    trunk roads count only with an explicit ``foot=yes``-like tag, because in
    Chinese cities trunk roads are often fenced expressways.
    """
    highway = _column(ways, "highway")
    foot = _column(ways, "foot")
    access = _column(ways, "access")
    service = _column(ways, "service")
    foot_ok = foot.isin(FOOT_ALLOWED)
    mask = highway.notna() & ~highway.isin(NOT_WALKABLE_HIGHWAYS)
    mask &= ~highway.isin(FOOT_OPT_IN_HIGHWAYS) | foot_ok
    mask &= foot.ne("no") | foot.isna()
    mask &= ~access.isin(ACCESS_CLOSED) | foot_ok
    mask &= service.ne("private") | service.isna() | foot_ok
    return mask.to_numpy(dtype=bool)


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    if key in frame.columns:
        return frame[key].astype("object").where(frame[key].notna(), None)
    return pd.Series([None] * len(frame), index=frame.index, dtype="object")


# --------------------------------------------------------------------------- entry point


def load_area(
    source: str | Path,
    *,
    feature_keys: Iterable[str] = (),
    crs: str | CRS | None = None,
) -> Area:
    """Read an area from a file (``.pbf``, ``.osm``, ``.osm.bz2``).

    Parameters
    ----------
    source
        Path to an OSM extract.
    feature_keys
        OSM keys to keep on features besides :data:`BASE_FEATURE_KEYS` (the
        catalogue's rule keys).
    crs
        Metric CRS to compute in; a local UTM zone when omitted.

    Raises
    ------
    PlannerError
        For a missing, unreadable, corrupt or empty file.
    """
    path = Path(source)
    if not path.exists():
        raise PlannerError("file not found", path)
    if not path.is_file():
        raise PlannerError("not a file", path)
    keys = _merge_keys(feature_keys)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".pbf":
        nodes, edges, features = _read_pbf(path, keys)
    elif path.suffix.lower() in {".osm", ".xml"} or suffixes.endswith(".osm.bz2"):
        nodes, edges, features = _read_xml(path, keys)
    else:
        raise PlannerError(
            "unknown OSM format (expected .osm.pbf, .osm, .osm.bz2 or .xml)", path
        )
    name = path.name.split(".")[0]
    return _finish(name, nodes, edges, features, crs, [path], path)


def download_area(
    *,
    place: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    feature_keys: Iterable[str] = (),
    feature_tags: dict[str, bool | list[str]] | None = None,
    crs: str | CRS | None = None,
) -> Area:
    """Download an area through osmnx (Overpass), by place name or bounding box.

    Parameters
    ----------
    place
        A geocodable place, e.g. ``"西陵区, 宜昌市, 湖北省"``.
    bbox
        ``(west, south, east, north)`` in degrees.
    feature_keys
        Keys to keep on features (see :func:`load_area`).
    feature_tags
        The osmnx ``tags`` query for features; every key of ``feature_keys``
        with value ``True`` when omitted.
    crs
        Metric CRS; local UTM when omitted.
    """
    import osmnx as ox

    if (place is None) == (bbox is None):
        raise PlannerError("give exactly one of a place name or a bounding box")
    keys = _merge_keys(feature_keys)
    tags = feature_tags or {key: True for key in ("amenity", "shop", "office", "leisure",
                                                  "healthcare", "tourism", "building",
                                                  "landuse", "emergency", "place")}
    _configure_osmnx()
    try:
        if place is not None:
            graph = ox.graph_from_place(place, network_type="walk", simplify=False,
                                        retain_all=True)
            raw = ox.features_from_place(place, tags=tags)
            label = place
        else:
            graph = ox.graph_from_bbox(bbox, network_type="walk", simplify=False,
                                       retain_all=True)
            raw = ox.features_from_bbox(bbox, tags=tags)
            label = "bbox " + ",".join(f"{value:g}" for value in bbox)
    except PlannerError:
        raise
    except Exception as error:  # network, geocoding and Overpass errors
        raise PlannerError(f"download of {place or bbox} failed: {_one_line(error)}") from error
    nodes, edges = _graph_tables(graph)
    features = _osmnx_features(raw, keys)
    return _finish(label, nodes, edges, features, crs, [], None)


# --------------------------------------------------------------------------- readers


def _read_pbf(path: Path, keys: list[str]):
    import pyrosm

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path))
            nodes, ways = osm.get_network(network_type="all", nodes=True)
            pois = osm.get_pois(custom_filter={key: True for key in _poi_keys(keys)})
            buildings = osm.get_buildings()
            landuse = osm.get_landuse()
            places = osm.get_data_by_custom_criteria(
                custom_filter={"place": True, "boundary": ["administrative"]},
                filter_type="keep", keep_nodes=True, keep_ways=True, keep_relations=True,
            )
    except Exception as error:  # pyrosm raises many kinds on corrupt input
        raise PlannerError(f"cannot read OSM PBF ({_one_line(error)})", path) from error
    if ways is None or nodes is None or len(ways) == 0:
        raise PlannerError("no ways in the file", path)
    ways = _expand_tags(ways, WAY_TAGS)
    edges = ways.loc[walkable_mask(ways), ["u", "v", "highway"]].copy()
    edges["name"] = _column(ways, "name")
    node_table = pd.DataFrame(
        {"lon": nodes["lon"].to_numpy(float), "lat": nodes["lat"].to_numpy(float)},
        index=pd.Index(nodes["id"].to_numpy(np.int64), name="node_id"),
    )
    node_table = node_table[~node_table.index.duplicated()]
    frames = [frame for frame in (pois, buildings, landuse, places) if frame is not None]
    features = _pyrosm_features(frames, keys)
    return node_table, edges, features


def _read_xml(path: Path, keys: list[str]):
    import osmnx as ox

    _configure_osmnx()
    try:
        if path.name.lower().endswith(".bz2"):
            with bz2.open(path) as handle:  # a truncated archive fails here, not later
                while handle.read(1 << 20):
                    pass
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            graph = ox.graph_from_xml(path, bidirectional=True, simplify=False, retain_all=True)
            raw = ox.features_from_xml(path)
    except Exception as error:  # ParseError, EOFError, osmnx's empty-graph errors
        raise PlannerError(f"cannot read OSM XML ({_one_line(error)})", path) from error
    nodes, edges = _graph_tables(graph)
    if len(edges) == 0:
        raise PlannerError("no walkable ways in the file", path)
    return nodes, edges, _osmnx_features(raw, keys)


def _configure_osmnx() -> None:
    import osmnx as ox

    ox.settings.useful_tags_way = sorted(set(ox.settings.useful_tags_way) | set(WAY_TAGS))
    ox.settings.log_console = False


def _graph_tables(graph) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Node and walkable-segment tables from an unsimplified osmnx graph."""
    node_ids = np.fromiter(graph.nodes, dtype=np.int64, count=graph.number_of_nodes())
    lon = np.array([data["x"] for _, data in graph.nodes(data=True)], dtype=float)
    lat = np.array([data["y"] for _, data in graph.nodes(data=True)], dtype=float)
    nodes = pd.DataFrame({"lon": lon, "lat": lat}, index=pd.Index(node_ids, name="node_id"))
    rows = [(u, v, data) for u, v, data in graph.edges(data=True)]
    ways = pd.DataFrame([data for _, _, data in rows])
    if len(rows) == 0:
        return nodes, pd.DataFrame(columns=["u", "v", "highway", "name"])
    ways["u"] = np.array([u for u, _, _ in rows], dtype=np.int64)
    ways["v"] = np.array([v for _, v, _ in rows], dtype=np.int64)
    for key in WAY_TAGS:
        if key in ways.columns:  # osmnx keeps a list where merged ways disagree
            ways[key] = ways[key].map(lambda value: value[0] if isinstance(value, list) else value)
    edges = ways.loc[walkable_mask(ways), ["u", "v"]].copy()
    edges["highway"] = _column(ways, "highway")
    edges["name"] = _column(ways, "name")
    return nodes, edges


def _osmnx_features(raw: gpd.GeoDataFrame, keys: list[str]) -> gpd.GeoDataFrame:
    if raw is None or len(raw) == 0:
        return _empty_features(keys)
    frame = raw.reset_index()
    frame = frame.rename(columns={"element": "osm_type", "element_type": "osm_type",
                                  "id": "osm_id", "osmid": "osm_id"})
    frame = frame[frame.geometry.notna()]
    return _normalise_features(frame, keys)


def _pyrosm_features(frames: list[gpd.GeoDataFrame], keys: list[str]) -> gpd.GeoDataFrame:
    if not frames:
        return _empty_features(keys)
    parts = []
    for frame in frames:
        frame = _expand_tags(frame, keys)
        frame = frame.rename(columns={"id": "osm_id"})
        parts.append(frame)
    merged = pd.concat(parts, ignore_index=True)
    merged = gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84)
    merged = merged.drop_duplicates(subset=["osm_type", "osm_id"])
    return _normalise_features(merged, keys)


def _expand_tags(frame: pd.DataFrame, keys: Iterable[str]) -> pd.DataFrame:
    """Move the keys pyrosm leaves inside its JSON ``tags`` column into columns."""
    missing = [key for key in keys if key not in frame.columns]
    if not missing or "tags" not in frame.columns:
        return frame
    parsed = frame["tags"].map(_parse_tags)
    frame = frame.copy()
    for key in missing:
        frame[key] = parsed.map(lambda tags, key=key: tags.get(key))
    return frame


def _parse_tags(value) -> dict:
    if isinstance(value, dict):
        return value
    if isinstance(value, str) and value:
        try:
            return json.loads(value)
        except ValueError:
            return {}
    return {}


def _normalise_features(frame: pd.DataFrame, keys: list[str]) -> gpd.GeoDataFrame:
    columns = {"osm_type": frame["osm_type"].astype(str).to_numpy(),
               "osm_id": pd.to_numeric(frame["osm_id"], errors="coerce").astype("Int64")}
    for key in keys:
        if key in frame.columns:
            values = frame[key].astype("object")
            columns[key] = values.where(values.notna(), None).map(
                lambda value: None if value is None else str(value))
        else:
            columns[key] = pd.Series([None] * len(frame), index=frame.index, dtype="object")
    table = pd.DataFrame(columns, index=frame.index)
    features = gpd.GeoDataFrame(table, geometry=frame.geometry.to_numpy(), crs=WGS84)
    features = features[~features.geometry.is_empty & features.geometry.notna()]
    features = features.sort_values(["osm_type", "osm_id"], kind="stable")
    return features.reset_index(drop=True)


def _empty_features(keys: list[str]) -> gpd.GeoDataFrame:
    columns = {"osm_type": pd.Series([], dtype="object"), "osm_id": pd.Series([], dtype="Int64")}
    columns.update({key: pd.Series([], dtype="object") for key in keys})
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)


def _finish(name, nodes, edges, features, crs, sources, path) -> Area:
    edges = edges[edges["u"].isin(nodes.index) & edges["v"].isin(nodes.index)]
    if len(edges) == 0:
        raise PlannerError("no walkable ways in the area", path)
    used = np.union1d(edges["u"].to_numpy(np.int64), edges["v"].to_numpy(np.int64))
    nodes = nodes.loc[used]
    points = gpd.GeoSeries(gpd.points_from_xy(nodes["lon"], nodes["lat"]), crs=WGS84)
    metric = CRS.from_user_input(crs) if crs is not None else points.estimate_utm_crs()
    if not metric.is_projected:
        raise PlannerError(f"the CRS {metric.name} is not metric (projected)")
    projected = points.to_crs(metric)
    node_table = pd.DataFrame({"x": projected.x.to_numpy(), "y": projected.y.to_numpy()},
                              index=nodes.index)
    features = features.to_crs(metric)
    edges = edges.reset_index(drop=True)
    return Area(name=name, crs=metric, nodes=node_table, edges=edges, features=features,
                sources=list(sources))


def _merge_keys(feature_keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys([*BASE_FEATURE_KEYS, *feature_keys]))
    return [key for key in keys if key not in {"osm_type", "osm_id", "geometry"}]


def _poi_keys(keys: list[str]) -> list[str]:
    skip = {"name", "name:zh", "official_name", "name:en", "building", "building:levels",
            "height", "landuse", "place", "boundary", "admin_level"}
    return [key for key in keys if key not in skip and ":" not in key and key != "isced:level"]


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return f"{type(error).__name__}: {text[0]}" if text else type(error).__name__


# --------------------------------------------------------------------------- planner layers


LON_COLUMNS = ("lon", "lng", "longitude", "x", "经度")
LAT_COLUMNS = ("lat", "latitude", "y", "纬度")


def read_layer(path: str | Path, *, what: str, crs: CRS | None = None) -> gpd.GeoDataFrame:
    """Read a planner's layer: GeoPackage, GeoJSON, Shapefile, or CSV/XLSX with coordinates.

    Parameters
    ----------
    path
        The file.
    what
        What the layer is ("communities", "population", ...), for messages.
    crs
        Reproject to this CRS when given.

    Raises
    ------
    PlannerError
        Missing or unreadable file, no geometry, no CRS, or no features.
    """
    path = Path(path)
    if not path.exists():
        raise PlannerError(f"{what} file not found", path)
    suffix = path.suffix.lower()
    try:
        if suffix in {".csv", ".xlsx", ".xls"}:
            frame = _read_point_table(path, what)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = gpd.read_file(path)
    except PlannerError:
        raise
    except Exception as error:
        raise PlannerError(f"cannot read the {what} layer ({_one_line(error)})", path) from error
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns \
            or frame.geometry.isna().all():
        raise PlannerError(f"the {what} layer has no geometry", path)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if len(frame) == 0:
        raise PlannerError(f"the {what} layer has no features", path)
    if frame.crs is None:
        raise PlannerError(f"the {what} layer has no CRS (set one, e.g. EPSG:4326)", path)
    if crs is not None:
        frame = frame.to_crs(crs)
    return frame.reset_index(drop=True)


def _numeric_unless_code(column: pd.Series) -> pd.Series:
    """Numbers become numbers, but codes such as Amap's "090300" keep their zeros."""
    text = column.dropna().astype(str).str.strip()
    if text.str.match(r"^0\d").any():
        return column
    converted = pd.to_numeric(column, errors="coerce")
    return converted if converted.notna().sum() == len(text) else column


def _read_point_table(path: Path, what: str) -> gpd.GeoDataFrame:
    if path.suffix.lower() == ".csv":
        table = pd.read_csv(path, encoding="utf-8-sig", dtype=str)
    else:
        table = pd.read_excel(path, dtype=str)
    table = table.apply(_numeric_unless_code)
    lowered = {str(column).strip().lower(): column for column in table.columns}
    lon_column = next((lowered[name] for name in LON_COLUMNS if name in lowered), None)
    lat_column = next((lowered[name] for name in LAT_COLUMNS if name in lowered), None)
    if lon_column is None or lat_column is None:
        raise PlannerError(
            f"the {what} table needs longitude and latitude columns "
            f"(one of {', '.join(LON_COLUMNS)} and one of {', '.join(LAT_COLUMNS)})", path)
    lon = pd.to_numeric(table[lon_column], errors="coerce")
    lat = pd.to_numeric(table[lat_column], errors="coerce")
    bad = lon.isna() | lat.isna()
    if bad.all():
        raise PlannerError(f"the {what} table has no numeric coordinates", path)
    if ((lat.abs() > 90) & (lon.abs() <= 90)).mean() > 0.5:
        raise PlannerError(
            f"the {what} table's latitude and longitude look swapped "
            f"(column {lat_column!r} holds values beyond ±90)", path)
    if ((lat.abs() > 90) | (lon.abs() > 180)).any():
        raise PlannerError(f"the {what} table has coordinates outside the globe", path)
    if bad.any():
        log.warning("%s: %d rows without coordinates skipped", path, int(bad.sum()))
    table = table[~bad]
    return gpd.GeoDataFrame(table.drop(columns=[lon_column, lat_column]),
                            geometry=gpd.points_from_xy(lon[~bad], lat[~bad]), crs=WGS84)
