"""Read an area: its walking network and its tagged features.

Three ways in, one result (:class:`Area`):

- ``.osm.pbf`` through pyosmium in one pass (:func:`_read_pbf_osmium`; pyrosm
  when pyosmium is not installed),
- ``.osm`` / ``.osm.bz2`` XML through osmnx,
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

from planner import settings
from planner.columns import find_column
from planner.errors import PlannerError, one_line

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
#: highway values walked only where foot is explicitly allowed (profile "strict").
FOOT_OPT_IN_HIGHWAYS = frozenset({"cycleway", "bridleway", "trunk", "trunk_link"})
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official", "destination"})
ACCESS_CLOSED = frozenset({"no", "private"})
#: sidewalk values that put pedestrians beside the carriageway (not "separate":
#: then the sidewalk is its own way, and "no").
SIDEWALK_PRESENT = frozenset({"both", "left", "right", "yes"})
#: highway values of the inner roads and paths of a gated compound (小区), walked
#: by its residents even where tagged ``access=private`` (profile "china").
COMPOUND_HIGHWAYS = frozenset({"service", "residential", "living_street", "footway", "path",
                               "pedestrian", "steps", "corridor"})
#: The named sets of walk rules (:data:`planner.settings.walk_profile`).
WALK_PROFILES = ("china", "strict", "osmnx")

#: Tags read from ways of the network besides highway.
WAY_TAGS = ("highway", "foot", "access", "service", "sidewalk", "sidewalk:both",
            "sidewalk:left", "sidewalk:right", "name", "area", "bridge", "tunnel", "layer")
#: Tags kept on every walkable segment (``bridge``/``tunnel``/``layer`` tell a
#: grade-separated edge, see :attr:`planner.network.WalkNetwork.edge_grade_separated`).
EDGE_TAGS = ("highway", "name", "bridge", "tunnel", "layer")

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


# --------------------------------------------------------------------------- network filter


def walkable_mask(ways: pd.DataFrame, profile: str | None = None) -> np.ndarray:
    """Which ways a pedestrian may use, vectorised over a table of way tags.

    Every profile keeps streets, footways, paths, steps and pedestrian areas,
    and drops motorways, construction and ``foot=no``. They differ where OSM
    is read differently (:data:`planner.settings.walk_profile`):

    ``"china"`` (default)
        Cycleways are walkable unless ``foot=no``: in Chinese cities the
        非机动车道 beside a road is where people walk when the sidewalk is
        missing or blocked, and OSM's own default for ``highway=cycleway`` in
        China allows pedestrians unless signed otherwise. Trunk roads only
        with a ``foot=yes``-like tag or a ``sidewalk`` on them: many are fenced
        urban expressways (快速路). ``access=private`` service roads,
        residential streets and footways are walkable: they are the inner
        roads of gated 小区, walked by the residents whose homes lie there;
        ``access=no`` stays closed.
    ``"strict"``
        Cycleways and trunk roads only with an explicit foot permission;
        ``access=no/private`` only with a foot permission.
    ``"osmnx"``
        OSMnx's "walk" filter: trunk roads in, cycleways and
        ``access=private``/``service=private`` out.

    Parameters
    ----------
    ways
        One row per way (or segment) with its tags as columns.
    profile
        One of :data:`WALK_PROFILES`; :data:`planner.settings.walk_profile` when omitted.
    """
    profile = profile or settings.walk_profile
    if profile not in WALK_PROFILES:
        message = (f"unknown walk profile {profile!r} (settings.walk_profile: "
                   f"{', '.join(WALK_PROFILES)})")
        raise PlannerError(message)
    highway, foot, access, service = (_column(ways, key)
                                      for key in ("highway", "foot", "access", "service"))
    foot_ok = foot.isin(FOOT_ALLOWED)
    mask = highway.notna() & ~highway.isin(NOT_WALKABLE_HIGHWAYS) & (foot.ne("no") | foot.isna())
    if profile == "osmnx":
        mask &= ~highway.isin({"cycleway", "bus_guideway"}) & access.ne("private")
        return (mask & service.ne("private")).to_numpy(dtype=bool)
    if profile == "strict":
        mask &= ~highway.isin(FOOT_OPT_IN_HIGHWAYS) | foot_ok
        mask &= ~access.isin(ACCESS_CLOSED) | foot_ok
        return (mask & (service.ne("private") | foot_ok)).to_numpy(dtype=bool)
    sidewalk = _column(ways, "sidewalk").isin(SIDEWALK_PRESENT)
    for key in ("sidewalk:both", "sidewalk:left", "sidewalk:right"):
        sidewalk |= _column(ways, key).eq("yes")
    mask &= ~highway.isin({"trunk", "trunk_link", "bridleway"}) | foot_ok | sidewalk
    compound = highway.isin(COMPOUND_HIGHWAYS)
    mask &= access.ne("no") | foot_ok
    mask &= access.ne("private") | foot_ok | compound
    return (mask & (service.ne("private") | foot_ok | compound)).to_numpy(dtype=bool)


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    if key in frame.columns:
        return frame[key].astype("object").where(frame[key].notna(), None)
    return pd.Series([None] * len(frame), index=frame.index, dtype="object")


def _walk_edges(ways: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The walkable rows of a way/segment table: ``u``, ``v`` and :data:`EDGE_TAGS`."""
    edges = ways.loc[mask, ["u", "v"]].copy()
    for key in EDGE_TAGS:
        edges[key] = _column(ways, key)[mask]
    return edges


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
        msg = "file not found"
        raise PlannerError(msg, path)
    if not path.is_file():
        msg = "not a file"
        raise PlannerError(msg, path)
    keys = _merge_keys(feature_keys)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".pbf":
        nodes, edges, features = _read_pbf(path, keys)
    elif path.suffix.lower() in {".osm", ".xml"} or suffixes.endswith(".osm.bz2"):
        nodes, edges, features = _read_xml(path, keys)
    else:
        msg = "unknown OSM format (expected .osm.pbf, .osm, .osm.bz2 or .xml)"
        raise PlannerError(
            msg, path
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
        msg = "give exactly one of a place name or a bounding box"
        raise PlannerError(msg)
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
        msg = f"download of {place or bbox} failed: {one_line(error)}"
        raise PlannerError(msg) from error
    nodes, edges = _graph_tables(graph)
    features = _osmnx_features(raw, keys)
    return _finish(label, nodes, edges, features, crs, [], None)


# --------------------------------------------------------------------------- readers


def _read_pbf(path: Path, keys: list[str]):
    """Read a PBF with the reader :data:`planner.settings.pbf_reader` names.

    pyosmium by default (one pass; 2× faster than pyrosm on a city and it keeps
    the member ways of relations that pyrosm drops); pyrosm when asked for, or
    when pyosmium is not installed.
    """
    if settings.pbf_reader not in ("osmium", "pyrosm"):
        msg = f"unknown PBF reader {settings.pbf_reader!r} (osmium or pyrosm)"
        raise PlannerError(msg)
    if settings.pbf_reader == "pyrosm":
        return _read_pbf_pyrosm(path, keys)
    try:
        import osmium  # noqa: F401
    except ImportError:
        return _read_pbf_pyrosm(path, keys)
    return _read_pbf_osmium(path, keys)


#: highway values pyrosm's "all" network leaves out (``pyrosm.config.osm_filters``).
NETWORK_EXCLUDED_HIGHWAYS = frozenset({
    "abandoned", "construction", "no", "planned", "platform", "proposed", "raceway", "razed",
    "rest_area", "services",
})

AREA_YES = frozenset({"yes"})

#: Which closed ways are areas: the OSM wiki's polygon features, as pyrosm and
#: OSMnx use them (``pyrosm.config.polygon_features``): key → (rule, values).
POLYGON_FEATURES: dict[str, tuple[str, frozenset[str]]] = {
    "aeroway": ("blocklist", frozenset({"taxiway"})),
    "amenity": ("all", frozenset()),
    "area": ("all", frozenset()),
    "area:highway": ("all", frozenset()),
    "barrier": ("passlist", frozenset({"city_wall", "ditch", "hedge", "retaining_wall",
                                       "spikes"})),
    "boundary": ("all", frozenset()),
    "building": ("all", frozenset()),
    "building:part": ("all", frozenset()),
    "craft": ("all", frozenset()),
    "golf": ("all", frozenset()),
    "highway": ("passlist", frozenset({"elevator", "escape", "rest_area", "services"})),
    "historic": ("all", frozenset()),
    "indoor": ("all", frozenset()),
    "landuse": ("all", frozenset()),
    "leisure": ("all", frozenset()),
    "man_made": ("blocklist", frozenset({"cutline", "embankment", "pipeline"})),
    "military": ("all", frozenset()),
    "natural": ("blocklist", frozenset({"arete", "cliff", "coastline", "ridge", "tree_row"})),
    "office": ("all", frozenset()),
    "place": ("all", frozenset()),
    "power": ("passlist", frozenset({"generator", "plant", "substation", "transformer"})),
    "public_transport": ("all", frozenset()),
    "railway": ("passlist", frozenset({"platform", "roundhouse", "station", "turntable"})),
    "ruins": ("all", frozenset()),
    "shop": ("all", frozenset()),
    "tourism": ("all", frozenset()),
    "waterway": ("passlist", frozenset({"boatyard", "dam", "dock", "riverbank"})),
}


def is_area(tags: dict[str, str]) -> bool:
    """Whether a closed way with these tags is an area (not ``area=no``, a polygon feature)."""
    if tags.get("area") == "no":
        return False
    for key, value in tags.items():
        feature = POLYGON_FEATURES.get(key)
        if feature is not None and (feature[0] == "all"
                                    or (feature[0] == "passlist") == (value in feature[1])):
            return True
    return False


def _any_value_in(value: str | None, values: frozenset[str]) -> bool:
    """pyrosm's multi-value match: ``a;b`` matches when a or b is listed."""
    if value is None:
        return False
    return value in values or (";" in value and any(
        part.strip() in values for part in value.split(";")))


def _read_pbf_osmium(path: Path, keys: list[str]):
    """Read a PBF in one pass of pyosmium (plus one over the ways for multipolygons).

    Selects what :func:`_read_pbf_pyrosm` selects: the ways of pyrosm's "all"
    network as segments between consecutive nodes, and as features the
    nodes, ways and relations carrying a point-of-interest key, the buildings
    and land use (ways and relations), and places and administrative
    boundaries. A closed way is a polygon when :func:`is_area` says so (ring
    oriented counter-clockwise, repaired with ``buffer(0)`` when invalid; one
    that lost nodes outside the extract is closed over the gap);
    multipolygon and boundary relations are assembled by libosmium.

    On the Helsinki demo the network is identical to pyrosm's, segment for
    segment. The features differ where pyrosm drops the member ways of a
    relation it keeps (platforms of a ``public_transport=stop_area``, streets
    of a ``type=street`` relation): here they stay, so 63 more facility-type
    pairs are found (mostly railway platforms); and where a building crosses
    the edge of the extract, its footprint is the ring of its nodes inside it.
    pyrosm stays available as :func:`_read_pbf_pyrosm`.
    """
    import osmium
    from osmium.filter import KeyFilter

    collector = _OsmiumCollector(keys)
    try:
        relations = _relation_members(path, sorted(collector.way_keys))
        index = osmium.index.create_map("flex_mem")
        locations = osmium.NodeLocationsForWays(index)
        locations.ignore_errors()
        selector = KeyFilter(*sorted(collector.way_keys | {"highway"}))  # outlive the iterator
        with osmium.io.Reader(str(path), osmium.osm.NODE | osmium.osm.WAY) as reader:
            for obj in osmium.OsmFileIterator(reader, locations, selector):
                if obj.is_node():
                    collector.node(obj)
                else:
                    collector.way(obj)
        if relations:
            rel_ids, rel_tags, rel_wkb = _assemble_relations(path, index, relations,
                                                             collector.key_set)
        else:
            rel_ids, rel_tags, rel_wkb = [], [], []
    except PlannerError:
        raise
    except Exception as error:  # osmium raises RuntimeError on corrupt input
        message = f"cannot read OSM PBF ({one_line(error)})"
        raise PlannerError(message, path) from error
    if not collector.net_refs:
        message = "no ways in the file"
        raise PlannerError(message, path)
    nodes, edges = _segments_table(collector.net_refs, collector.net_lines, collector.net_tags)
    features = _osmium_features(collector, (rel_ids, rel_tags, rel_wkb), keys)
    return nodes, edges, features


class _OsmiumCollector:
    """What one pass of pyosmium over nodes and ways keeps: network ways and features."""

    def __init__(self, keys: list[str]) -> None:
        import osmium

        self.key_set = frozenset(keys)
        self.poi_keys = frozenset(_poi_keys(keys))
        self.way_keys = self.poi_keys | {"building", "landuse", "place", "boundary"}
        self.wkb = osmium.geom.WKBFactory()
        self.all_nodes = osmium.geom.use_nodes.ALL
        self.net_refs: list[list[int]] = []
        self.net_lines: list[str] = []
        self.net_tags: list[tuple] = []
        self.feat_type: list[str] = []
        self.feat_id: list[int] = []
        self.feat_tags: list[dict] = []
        self.feat_wkb: list[str | None] = []
        self.feat_point: list[tuple[float, float]] = []

    def _is_feature(self, tags: dict[str, str]) -> bool:
        return not self.poi_keys.isdisjoint(tags) or "place" in tags \
            or tags.get("boundary") == "administrative"

    def _add(self, kind: str, osm_id: int, tags: dict, wkb: str | None, point) -> None:
        self.feat_type.append(kind)
        self.feat_id.append(osm_id)
        self.feat_tags.append({k: v for k, v in tags.items() if k in self.key_set})
        self.feat_wkb.append(wkb)
        self.feat_point.append(point)

    def node(self, obj) -> None:
        """A point feature when it carries a point-of-interest key, a place or a boundary."""
        tags = _tag_dict(obj.tags)
        if self._is_feature(tags) and obj.location.valid():
            self._add("node", obj.id, tags, None, (obj.location.lon, obj.location.lat))

    def way(self, obj) -> None:
        """A network way (pyrosm's "all" network), and an area feature when closed."""
        taglist, nodes = obj.tags, obj.nodes
        line = None
        highway = taglist.get("highway")
        if highway is not None and not _any_value_in(taglist.get("area"), AREA_YES) \
                and not _any_value_in(highway, NETWORK_EXCLUDED_HIGHWAYS):
            refs, line = _way_line(obj, self.wkb, self.all_nodes)
            if refs is not None:
                self.net_refs.append(refs)
                self.net_lines.append(line)
                self.net_tags.append(tuple(taglist.get(key) for key in WAY_TAGS))
        # only areas are features: a way closed by its node ids (also where
        # nodes outside the extract are missing) with a polygon feature tag
        if len(nodes) < 4 or not obj.is_closed():
            return
        tags = _tag_dict(taglist)
        if not (self._is_feature(tags) or "building" in tags or "landuse" in tags) \
                or not is_area(tags):
            return
        if line is None:
            line = _way_line(obj, self.wkb, self.all_nodes)[1]
        if line is not None:
            self._add("way", obj.id, tags, line, (np.nan, np.nan))


#: Keys most features carry; an object whose tags are all among them is read
#: with a few look-ups instead of a walk over its tags (slow in pyosmium).
COMMON_KEYS = ("building", "building:levels", "name", "height", "landuse", "amenity", "shop",
               "leisure", "highway", "office", "tourism", "emergency", "healthcare")


def _tag_dict(taglist) -> dict[str, str]:
    """The tags of an OSM object as a dict."""
    found = {}
    for key in COMMON_KEYS:
        value = taglist.get(key)
        if value is not None:
            found[key] = value
    if len(found) == len(taglist):
        return found
    return {tag.k: tag.v for tag in taglist}


def _way_line(way, wkb, all_nodes):
    """Node ids and WKB line of a way, skipping nodes without a location."""
    import osmium

    refs = [node.ref for node in way.nodes]
    try:
        return refs, wkb.create_linestring(way, use_nodes=all_nodes)
    except (osmium.InvalidLocationError, RuntimeError, ValueError):  # a node outside the extract
        import shapely

        kept = [(node.ref, node.lon, node.lat) for node in way.nodes if node.location.valid()]
        if len(kept) < 2:
            return None, None
        line = shapely.to_wkb(shapely.linestrings([(lon, lat) for _, lon, lat in kept]),
                              hex=True)
        return [ref for ref, _, _ in kept], line


def _wkb_lines_xy(lines: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates of hex-WKB 2D line strings and the line of each coordinate.

    Reads the WKB directly (byte order, type, count, then the doubles), which
    is several times faster than building shapely geometries first.
    """
    raw = [bytes.fromhex(line) for line in lines]
    if not raw:
        return np.zeros((0, 2)), np.zeros(0, dtype=np.int64)
    if any(item[0] != 1 for item in raw):  # big-endian WKB: let shapely read it
        import shapely

        return shapely.get_coordinates(shapely.from_wkb(np.asarray(raw, dtype=object)),
                                       return_index=True)
    counts = np.fromiter(((len(item) - 9) // 16 for item in raw), dtype=np.int64,
                         count=len(raw))
    xy = np.frombuffer(b"".join(item[9:] for item in raw), dtype="<f8").reshape(-1, 2)
    return xy, np.repeat(np.arange(len(raw)), counts)


def _tag_table(records: list[dict], keys: list[str]) -> pd.DataFrame:
    """A column per key from a list of tag dicts (None where a key is absent)."""
    lengths = np.fromiter((len(record) for record in records), dtype=np.int64,
                          count=len(records))
    names = np.array([key for record in records for key in record], dtype=object)
    values = np.array([value for record in records for value in record.values()],
                      dtype=object)
    row = np.repeat(np.arange(len(records)), lengths)
    code = pd.Index(keys).get_indexer(names)
    columns = {}
    for index, key in enumerate(keys):
        column = np.full(len(records), None, dtype=object)
        chosen = code == index
        column[row[chosen]] = values[chosen]
        columns[key] = column
    return pd.DataFrame(columns, index=pd.RangeIndex(len(records)))


def _segments_table(refs: list[list[int]], lines: list[str], tags: list[tuple]):
    """Nodes and segments (consecutive node pairs) of the network ways."""
    counts = np.fromiter((len(r) for r in refs), dtype=np.int64, count=len(refs))
    node_id = np.fromiter((ref for r in refs for ref in r), dtype=np.int64, count=counts.sum())
    xy, way = _wkb_lines_xy(lines)
    pair = np.flatnonzero(way[1:] == way[:-1])
    frame = pd.DataFrame(tags, columns=list(WAY_TAGS)).iloc[way[pair]].reset_index(drop=True)
    frame.insert(0, "u", node_id[pair])
    frame.insert(1, "v", node_id[pair + 1])
    unique, first = np.unique(node_id, return_index=True)
    nodes = pd.DataFrame({"lon": xy[first, 0], "lat": xy[first, 1]},
                         index=pd.Index(unique, name="node_id"))
    mask = walkable_mask(frame)
    return nodes, _walk_edges(frame, mask)


def _relation_members(path: Path, keys: list[str]):
    """Multipolygon and boundary relations carrying one of the keys: an area manager."""
    import osmium
    from osmium.filter import KeyFilter

    manager = osmium.area.AreaManager()
    found = []

    class Count(osmium.SimpleHandler):
        def relation(self, relation):
            if relation.tags.get("type") in ("multipolygon", "boundary"):
                found.append(relation.id)

    selector, counter, first_pass = KeyFilter(*keys), Count(), manager.first_pass_handler()
    with osmium.io.Reader(str(path), osmium.osm.RELATION) as reader:
        osmium.apply(reader, selector, counter, first_pass)
    return manager if found else None


def _assemble_relations(path: Path, index, manager, key_set):
    """Areas of the relations selected by :func:`_relation_members` (ids, tags, WKB)."""
    import osmium

    wkb = osmium.geom.WKBFactory()
    ids, tags, geometries = [], [], []
    buffer = osmium.BufferIterator()
    locations = osmium.NodeLocationsForWays(index)
    locations.ignore_errors()

    def collect():
        for area in buffer:
            if area.from_way():
                continue
            try:
                geometry = wkb.create_multipolygon(area)
            except (osmium.InvalidLocationError, RuntimeError, ValueError):
                continue
            ids.append(area.orig_id())
            tags.append({tag.k: tag.v for tag in area.tags if tag.k in key_set})
            geometries.append(geometry)

    second_pass = manager.second_pass_to_buffer(buffer)
    with osmium.io.Reader(str(path), osmium.osm.WAY | osmium.osm.RELATION) as reader:
        for _ in osmium.OsmFileIterator(reader, locations, second_pass):
            if buffer:
                collect()
    collect()
    return ids, tags, geometries


def _osmium_features(collector: _OsmiumCollector, relations: tuple,
                     keys: list[str]) -> gpd.GeoDataFrame:
    """Features from what :func:`_read_pbf_osmium` collected: points, rings, relations."""
    import shapely

    kinds, ids, tags = collector.feat_type, collector.feat_id, collector.feat_tags
    wkbs, points = collector.feat_wkb, collector.feat_point
    rel_ids, rel_tags, rel_wkb = relations

    n_plain = len(kinds)
    geometry = np.empty(n_plain + len(rel_ids), dtype=object)
    point_xy = np.asarray(points, dtype=float).reshape(-1, 2)
    is_node = np.asarray(kinds, dtype=object) == "node"
    geometry[:n_plain][is_node] = shapely.points(point_xy[is_node])
    ways = np.flatnonzero(~is_node)
    if len(ways):
        coords, which = _wkb_lines_xy([wkbs[way] for way in ways])
        # a ring that lost nodes outside the extract is closed over the gap
        starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
        ends = np.r_[starts[1:], len(which)] - 1
        gap = np.flatnonzero(np.any(coords[starts] != coords[ends], axis=1))
        coords = np.insert(coords, ends[gap] + 1, coords[starts[gap]], axis=0)
        which = np.insert(which, ends[gap] + 1, which[starts[gap]])
        enough = np.bincount(which, minlength=len(ways)) >= 4
        keep = enough[which]
        polygons = shapely.polygons(shapely.linearrings(
            coords[keep], indices=np.unique(which[keep], return_inverse=True)[1]))
        invalid = ~shapely.is_valid(polygons)
        polygons[invalid] = shapely.buffer(polygons[invalid], 0)
        geometry[ways[enough]] = shapely.orient_polygons(polygons, exterior_cw=False)
    if rel_ids:
        areas = shapely.from_wkb(np.asarray(rel_wkb, dtype=object))
        single = shapely.get_num_geometries(areas) == 1
        areas[single] = shapely.get_geometry(areas[single], 0)
        geometry[n_plain:] = shapely.orient_polygons(areas, exterior_cw=False)
    table = _tag_table([*tags, *rel_tags], keys)
    table.insert(0, "osm_type", np.array([*kinds, *(["relation"] * len(rel_ids))], dtype=object))
    table.insert(1, "osm_id", np.array([*ids, *rel_ids], dtype=np.int64))
    table = table[pd.notna(geometry)]
    frame = gpd.GeoDataFrame(table, geometry=geometry[pd.notna(geometry)], crs=WGS84)
    return _normalise_features(frame, keys)


def _read_pbf_pyrosm(path: Path, keys: list[str]):
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
        msg = f"cannot read OSM PBF ({one_line(error)})"
        raise PlannerError(msg, path) from error
    if ways is None or nodes is None or len(ways) == 0:
        msg = "no ways in the file"
        raise PlannerError(msg, path)
    ways = _expand_tags(ways, WAY_TAGS)
    edges = _walk_edges(ways, walkable_mask(ways))
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
        msg = f"cannot read OSM XML ({one_line(error)})"
        raise PlannerError(msg, path) from error
    nodes, edges = _graph_tables(graph)
    if len(edges) == 0:
        msg = "no walkable ways in the file"
        raise PlannerError(msg, path)
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
        return nodes, pd.DataFrame(columns=["u", "v", *EDGE_TAGS])
    ways["u"] = np.array([u for u, _, _ in rows], dtype=np.int64)
    ways["v"] = np.array([v for _, v, _ in rows], dtype=np.int64)
    for key in WAY_TAGS:
        if key in ways.columns:  # osmnx keeps a list where merged ways disagree
            ways[key] = ways[key].map(lambda value: value[0] if isinstance(value, list) else value)
    return nodes, _walk_edges(ways, walkable_mask(ways))


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


#: Geometry types kept as features: points and areas (lines are never facilities,
#: homes or communities).
FEATURE_GEOMETRIES = ("Point", "MultiPoint", "Polygon", "MultiPolygon")


def _normalise_features(frame: pd.DataFrame, keys: list[str]) -> gpd.GeoDataFrame:
    kind = frame.geometry.geom_type
    frame = frame[kind.isin(FEATURE_GEOMETRIES).to_numpy()]
    columns = {"osm_type": frame["osm_type"].astype(str).to_numpy(),
               "osm_id": pd.to_numeric(frame["osm_id"], errors="coerce").astype("Int64")}
    for key in keys:
        if key in frame.columns:
            values = frame[key].to_numpy(dtype=object, na_value=None)
            kind = pd.api.types.infer_dtype(values, skipna=True)
            other = [] if kind in ("string", "empty") else np.flatnonzero(
                [value is not None and not isinstance(value, str) for value in values])
            if len(other):  # numbers and the like from the XML and pyrosm readers
                values = values.copy()
                values[other] = [None if pd.isna(value) else str(value)
                                 for value in values[other]]
            columns[key] = pd.Series(values, index=frame.index, dtype="object")
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
        msg = "no walkable ways in the area"
        raise PlannerError(msg, path)
    used = np.union1d(edges["u"].to_numpy(np.int64), edges["v"].to_numpy(np.int64))
    nodes = nodes.loc[used]
    points = gpd.GeoSeries(gpd.points_from_xy(nodes["lon"], nodes["lat"]), crs=WGS84)
    metric = CRS.from_user_input(crs) if crs is not None else points.estimate_utm_crs()
    if not metric.is_projected:
        msg = f"the CRS {metric.name} is not metric (projected)"
        raise PlannerError(msg)
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
        msg = f"{what} file not found"
        raise PlannerError(msg, path)
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
    if frame.crs is None:
        msg = f"the {what} layer has no CRS (set one, e.g. EPSG:4326)"
        raise PlannerError(msg, path)
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
