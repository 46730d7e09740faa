"""Read an area: its walking network and its tagged features.

Three ways in, one result (:class:`Area`):

- ``.osm.pbf``, ``.osm``, ``.osm.bz2`` through pyosmium, one reader for all
  (:func:`planner.osm_reader.read_osm`; pyrosm for PBF when asked for or
  when pyosmium is not installed),
- a place name or a bounding box, downloaded through osmnx.

Whatever the source, the walking network arrives as straight segments between
consecutive OSM nodes (never simplified: a segment's geometry is the line
between its two nodes, which keeps snapping offsets exact), and the features
arrive as one GeoDataFrame with one column per OSM key: points and areas
(lines are never facilities, homes or communities). Everything is
reprojected to one metric CRS, a local UTM zone unless the caller names one.

The planner's own layers (communities, population, premises, facility lists)
are read by :func:`read_layer`.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS, Transformer

from planner import settings, validate
from planner.columns import find_column
from planner.encodings import TEXT_SUFFIXES, read_text_table, read_vector
from planner.errors import PlannerError, one_line
from planner.osm_prefetch import drop_prefetched

# re-exported: the readers and walk rules used to live here
from planner.osm_reader import (  # noqa: F401
    AREA_YES,
    BASE_FEATURE_KEYS,
    FEATURE_GEOMETRIES,
    NETWORK_EXCLUDED_HIGHWAYS,
    POLYGON_FEATURES,
    WGS84,
    empty_features,
    is_area,
    merge_keys,
    normalise_features,
    open_osm,
    poi_keys,
    read_osm,
)
from planner.walk_rules import (  # noqa: F401
    ACCESS_CLOSED,
    COMPOUND_HIGHWAYS,
    EDGE_TAGS,
    FOOT_ALLOWED,
    FOOT_OPT_IN_HIGHWAYS,
    NOT_WALKABLE_HIGHWAYS,
    SIDEWALK_PRESENT,
    WALK_PROFILES,
    WAY_TAGS,
    walk_edges,
    walkable_mask,
)

log = logging.getLogger(__name__)


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
        Walking-network segments: ``u``, ``v`` (OSM node ids), ``highway``,
        ``name``, ``bridge``, ``tunnel``, ``layer``.
    features
        Tagged OSM features (POIs, buildings, land use, places) that are points
        or areas: ``osm_type``, ``osm_id``, one string column per OSM key,
        ``geometry``.
    sources
        Files read (for the run record); empty for downloads.
    """

    name: str
    crs: CRS
    nodes: pd.DataFrame
    edges: pd.DataFrame
    features: gpd.GeoDataFrame
    sources: list[Path] = field(default_factory=list)


# --------------------------------------------------------------------------- entry point


def load_area(
    source: str | Path,
    *,
    feature_keys: Iterable[str] = (),
    crs: str | CRS | None = None,
) -> Area:
    """Read an area from a file (``.pbf``, ``.osm``, ``.osm.bz2``, ``.osm.gz``).

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
        msg = "file not found"
        raise PlannerError(msg, path)
    if not path.is_file():
        msg = "not a file"
        raise PlannerError(msg, path)
    keys = merge_keys(feature_keys)
    name = path.name.split(".")[0]
    cache = _cache_entry(path, keys, crs)
    if cache is not None:
        cached = _read_cached(cache)
        if cached is not None:  # the same content may lie under another name
            drop_prefetched(path)
            return replace(cached, name=name, sources=[path])
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".pbf":
        nodes, edges, features, known = _read_pbf(path, keys)
    elif path.suffix.lower() in {".osm", ".xml"} or suffixes in {".osm.bz2", ".osm.gz"}:
        reading = open_osm(path, keys)
        nodes, edges, features = reading.nodes, reading.edges, reading.features
        known = True
    else:
        msg = "unknown OSM format (expected .osm.pbf, .osm, .osm.bz2 or .xml)"
        raise PlannerError(
            msg, path
        )
    area = _finish(name, nodes, edges, features, crs, [path], path, network_known=known)
    if cache is not None:
        _write_cached(cache, area)
    return area


# --------------------------------------------------------------------------- cache


def _cache_entry(path: Path, keys: list[str], crs) -> Path | None:
    """The cache file of an extract (:data:`planner.settings.cache_dir`), None when off.

    The key holds the file's SHA-256, the source of the modules that read it
    (a change of the reader never meets an old entry), the reader setting,
    the keys, the CRS and the versions of the libraries the entry is pickled with.
    """
    if not settings.cache_dir:
        return None
    import hashlib
    import sys

    import shapely

    from planner import osm_prefetch, osm_reader, validate, walk_rules

    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    for module in (osm_reader, osm_prefetch, walk_rules, validate, sys.modules[__name__]):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(json.dumps([settings.pbf_reader, keys, str(crs), sys.version, pd.__version__,
                              gpd.__version__, shapely.__version__]).encode())
    return Path(settings.cache_dir).expanduser() / f"area-{digest.hexdigest()}.pickle"


def _read_cached(entry: Path) -> Area | None:
    """The cached area, or None when absent or unreadable (then the file is read)."""
    import pickle

    if not entry.is_file():
        return None
    try:
        with entry.open("rb") as handle:
            area = pickle.load(handle)  # noqa: S301 - the user's own cache folder
    except Exception as error:  # a truncated or foreign entry: read the file instead
        log.warning("ignoring the cache entry %s (%s)", entry, one_line(error))
        return None
    return area if isinstance(area, Area) else None


def _write_cached(entry: Path, area: Area) -> None:
    """Keep the area for the next run (written whole, then moved into place)."""
    import pickle
    import tempfile

    part = None
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("wb", dir=entry.parent, suffix=".part",
                                         delete=False) as handle:
            part = Path(handle.name)
            pickle.dump(area, handle, protocol=pickle.HIGHEST_PROTOCOL)
        part.replace(entry)
    except (OSError, pickle.PicklingError) as error:  # a full disk costs only the cache
        log.warning("cannot write the cache entry %s (%s)", entry, one_line(error))
        if part is not None:
            part.unlink(missing_ok=True)


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
        msg = "give exactly one of a place name or a bounding box"
        raise PlannerError(msg)
    keys = merge_keys(feature_keys)
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
        msg = f"download of {place or bbox} failed: {one_line(error)}"
        raise PlannerError(msg) from error
    nodes, edges = _graph_tables(graph)
    features = _osmnx_features(raw, keys)
    return _finish(label, nodes, edges, features, crs, [], None)


# --------------------------------------------------------------------------- readers


def _read_pbf(path: Path, keys: list[str]):
    """Read a PBF with the reader :data:`planner.settings.pbf_reader` names.

    The features come as a GeoDataFrame (pyrosm, WGS84) or as the function
    that makes them in a CRS (:meth:`planner.osm_reader.OsmReading.features`);
    last, whether the nodes are already those the edges use (pyosmium's).

    pyosmium by default (one pass; 2× faster than pyrosm on a city and it keeps
    the member ways of relations that pyrosm drops); pyrosm when asked for, or
    when pyosmium is not installed.
    """
    if settings.pbf_reader not in ("osmium", "pyrosm"):
        msg = f"unknown PBF reader {settings.pbf_reader!r} (osmium or pyrosm)"
        raise PlannerError(msg)
    if settings.pbf_reader == "pyrosm":
        return (*_read_pbf_pyrosm(path, keys), False)
    try:
        import osmium  # noqa: F401
    except ImportError:
        return (*_read_pbf_pyrosm(path, keys), False)
    reading = open_osm(path, keys)
    return reading.nodes, reading.edges, reading.features, True



def _read_pbf_pyrosm(path: Path, keys: list[str]):
    import pyrosm

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            osm = pyrosm.OSM(str(path))
            nodes, ways = osm.get_network(network_type="all", nodes=True)
            pois = osm.get_pois(custom_filter={key: True for key in poi_keys(keys)})
            buildings = osm.get_buildings()
            landuse = osm.get_landuse()
            places = osm.get_data_by_custom_criteria(
                custom_filter={"place": True, "boundary": ["administrative"]},
                filter_type="keep", keep_nodes=True, keep_ways=True, keep_relations=True,
            )
    except Exception as error:  # pyrosm raises many kinds on corrupt input
        msg = f"cannot read OSM PBF ({one_line(error)})"
        raise PlannerError(msg, path) from error
    if ways is None or nodes is None or len(ways) == 0:
        msg = "no ways in the file"
        raise PlannerError(msg, path)
    ways = _expand_tags(ways, WAY_TAGS)
    edges = walk_edges(ways, walkable_mask(ways))
    node_table = pd.DataFrame(
        {"lon": nodes["lon"].to_numpy(float), "lat": nodes["lat"].to_numpy(float)},
        index=pd.Index(nodes["id"].to_numpy(np.int64), name="node_id"),
    )
    node_table = node_table[~node_table.index.duplicated()]
    frames = [frame for frame in (pois, buildings, landuse, places) if frame is not None]
    features = _pyrosm_features(frames, keys)
    return node_table, edges, features


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
        return nodes, pd.DataFrame(columns=["u", "v", *EDGE_TAGS])
    ways["u"] = np.array([u for u, _, _ in rows], dtype=np.int64)
    ways["v"] = np.array([v for _, v, _ in rows], dtype=np.int64)
    for key in WAY_TAGS:
        if key in ways.columns:  # osmnx keeps a list where merged ways disagree
            ways[key] = ways[key].map(lambda value: value[0] if isinstance(value, list) else value)
    return nodes, walk_edges(ways, walkable_mask(ways))


def _osmnx_features(raw: gpd.GeoDataFrame, keys: list[str]) -> gpd.GeoDataFrame:
    if raw is None or len(raw) == 0:
        return empty_features(keys)
    frame = raw.reset_index()
    frame = frame.rename(columns={"element": "osm_type", "element_type": "osm_type",
                                  "id": "osm_id", "osmid": "osm_id"})
    frame = frame[frame.geometry.notna()]
    return normalise_features(frame, keys)


def _pyrosm_features(frames: list[gpd.GeoDataFrame], keys: list[str]) -> gpd.GeoDataFrame:
    if not frames:
        return empty_features(keys)
    parts = []
    for frame in frames:
        frame = _expand_tags(frame, keys)
        frame = frame.rename(columns={"id": "osm_id"})
        parts.append(frame)
    merged = pd.concat(parts, ignore_index=True)
    merged = gpd.GeoDataFrame(merged, geometry="geometry", crs=WGS84)
    merged = merged.drop_duplicates(subset=["osm_type", "osm_id"])
    return normalise_features(merged, keys)


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

def _finish(name, nodes, edges, features, crs, sources, path, *,
            network_known: bool = False) -> Area:
    """The area in its metric CRS: edges between known nodes, the nodes they use, features.

    ``features`` is a GeoDataFrame to reproject, or a function that makes the
    features in the CRS it is given (:meth:`planner.osm_reader.OsmReading.features`).
    With ``network_known`` the nodes are already the sorted nodes the edges
    use (:func:`planner.osm_reader.open_osm` makes them so), and the lookup
    of :func:`_network_nodes` is skipped.
    """
    if not network_known:
        edges, nodes = _network_nodes(edges, nodes)
    if len(edges) == 0:
        msg = "no walkable ways in the area"
        raise PlannerError(msg, path)
    lon, lat = nodes["lon"].to_numpy(float), nodes["lat"].to_numpy(float)
    # validated against the extract (projected, metres, true to scale); UTM fails near the poles
    bounds = (float(nodes["lon"].min()), float(nodes["lat"].min()),
              float(nodes["lon"].max()), float(nodes["lat"].max()))
    metric = (validate.check_metric_crs(crs, bounds) if crs is not None
              else validate.local_metric_crs(bounds))
    if np.isfinite(lon).all() and np.isfinite(lat).all():
        # the transform GeoSeries.to_crs applies, on the coordinates without making points
        x, y = Transformer.from_crs(WGS84, metric, always_xy=True).transform(lon, lat)
        x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    else:
        projected = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=WGS84).to_crs(metric)
        x, y = projected.x.to_numpy(), projected.y.to_numpy()
    node_table = pd.DataFrame({"x": x, "y": y}, index=nodes.index)
    features = features(metric) if callable(features) else features.to_crs(metric)
    edges = edges.reset_index(drop=True)
    return Area(name=name, crs=metric, nodes=node_table, edges=edges, features=features,
                sources=list(sources))


def _network_nodes(edges: pd.DataFrame, nodes: pd.DataFrame):
    """The edges between known nodes, and the nodes they use (sorted by id)."""
    index = nodes.index
    if (len(index) and index.dtype == np.int64 and edges["u"].dtype == np.int64
            and edges["v"].dtype == np.int64 and index.is_monotonic_increasing
            and index.is_unique):
        # sorted ids (the pyosmium reader's): positions without hashing
        ids = index.to_numpy()
        ends = [edges[end].to_numpy() for end in ("u", "v")]
        found = [_sorted_positions(ids, wanted) for wanted in ends]
        inside = found[0][1] & found[1][1]
        used = np.zeros(len(ids), dtype=bool)
        used[found[0][0][inside]] = True
        used[found[1][0][inside]] = True
        return edges[inside], nodes[used]
    edges = edges[edges["u"].isin(nodes.index) & edges["v"].isin(nodes.index)]
    used = np.union1d(edges["u"].to_numpy(np.int64), edges["v"].to_numpy(np.int64))
    return edges, nodes.loc[used]


def _sorted_positions(ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each wanted id lies in the sorted unique ``ids``, and whether it is there."""
    low, high = int(ids[0]), int(ids[-1])
    if high - low < 4 * len(ids):  # dense ids (a synthetic or renumbered extract): a table
        table = np.full(high - low + 1, -1, dtype=np.int64)
        table[ids - low] = np.arange(len(ids))
        inside = (wanted >= low) & (wanted <= high)
        position = np.full(len(wanted), -1, dtype=np.int64)
        position[inside] = table[wanted[inside] - low]
        return np.maximum(position, 0), position >= 0
    position = np.minimum(np.searchsorted(ids, wanted), len(ids) - 1)
    return position, ids[position] == wanted



# --------------------------------------------------------------------------- planner layers


LON_COLUMNS = ("lon", "lng", "longitude", "x", "经度")
LAT_COLUMNS = ("lat", "latitude", "y", "纬度")


def read_layer(path: str | Path, *, what: str, crs: CRS | None = None,
               encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read a planner's layer: GeoPackage, GeoJSON, Shapefile, or CSV/XLSX with coordinates.

    Parameters
    ----------
    path
        The file.
    what
        What the layer is ("communities", "population", ...), for messages.
    crs
        Reproject to this CRS when given.
    encoding
        Text encoding of a CSV or shapefile; detected when None (UTF-8, GBK,
        GB18030, a shapefile's ``.cpg``), else ``settings.input_encoding``.

    Raises
    ------
    PlannerError
        Missing or unreadable file, no geometry, no features, or no CRS and
        coordinates that are not longitude/latitude (:func:`planner.validate.infer_crs`).
    """
    encoding = encoding or settings.input_encoding
    path = Path(path)
    if not path.exists():
        msg = f"{what} file not found"
        raise PlannerError(msg, path)
    suffix = path.suffix.lower()
    try:
        if suffix in {".xlsx", ".xls", *TEXT_SUFFIXES}:
            frame = _read_point_table(path, what, encoding)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                frame = read_vector(path, encoding)
    except PlannerError:
        raise
    except Exception as error:
        msg = f"cannot read the {what} layer ({one_line(error)})"
        raise PlannerError(msg, path) from error
    if not isinstance(frame, gpd.GeoDataFrame) or frame.geometry.name not in frame.columns \
            or frame.geometry.isna().all():
        msg = f"the {what} layer has no geometry"
        raise PlannerError(msg, path)
    frame = frame[frame.geometry.notna() & ~frame.geometry.is_empty]
    if len(frame) == 0:
        msg = f"the {what} layer has no features"
        raise PlannerError(msg, path)
    frame = validate.infer_crs(frame, what=what, path=path)
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


def _read_point_table(path: Path, what: str, encoding: str | None = None) -> gpd.GeoDataFrame:
    if path.suffix.lower() in TEXT_SUFFIXES:
        table = read_text_table(path, encoding)
    else:
        table = pd.read_excel(path, dtype=str)
    table = table.apply(_numeric_unless_code)
    lon_column = find_column(table, LON_COLUMNS)
    lat_column = find_column(table, LAT_COLUMNS)
    if lon_column is None or lat_column is None:
        msg = (
            f"the {what} table needs longitude and latitude columns "
            f"(one of {', '.join(LON_COLUMNS)} and one of {', '.join(LAT_COLUMNS)})"
        )
        raise PlannerError(
            msg, path)
    lon = pd.to_numeric(table[lon_column], errors="coerce")
    lat = pd.to_numeric(table[lat_column], errors="coerce")
    bad = lon.isna() | lat.isna()
    if bad.all():
        msg = f"the {what} table has no numeric coordinates"
        raise PlannerError(msg, path)
    if ((lat.abs() > 90) & (lon.abs() <= 90)).mean() > 0.5:
        msg = (
            f"the {what} table's latitude and longitude look swapped "
            f"(column {lat_column!r} holds values beyond ±90)"
        )
        raise PlannerError(
            msg, path)
    if ((lat.abs() > 90) | (lon.abs() > 180)).any():
        msg = f"the {what} table has coordinates outside the globe"
        raise PlannerError(msg, path)
    if bad.any():
        log.warning("%s: %d rows without coordinates skipped", path, int(bad.sum()))
    table = table[~bad]
    return gpd.GeoDataFrame(table.drop(columns=[lon_column, lat_column]),
                            geometry=gpd.points_from_xy(lon[~bad], lat[~bad]), crs=WGS84)
