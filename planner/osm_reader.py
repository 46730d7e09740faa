"""Read an OSM file (``.osm.pbf``, ``.osm``, ``.osm.bz2``) with pyosmium: one reader for all.

libosmium parses PBF and XML alike in C++; only the objects a run needs reach
Python (a key filter on ways and relations). The walking network comes out
as segments between consecutive OSM nodes, and the features as one
GeoDataFrame with one string column per OSM key (see :func:`read_osm`).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pyarrow import csv as pacsv
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


def read_osm(path: Path, keys: list[str]):
    """Read an OSM file with pyosmium: two passes in C++, then columnar assembly.

    PBF, XML (``.osm``, ``.xml``) and compressed XML (``.osm.bz2``,
    ``.osm.gz``) go through the same C++ parser, so XML costs the same per
    object as PBF and both give the same answer. No Python code runs per
    object: libosmium selects the nodes and ways a run needs (key filters),
    stores node locations and writes the selection with the locations of the
    way nodes as OPL text, which is parsed column by column with pyarrow
    (:func:`_read_opl`); only the few multipolygon and boundary relations are
    assembled object by object.

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

    poi = frozenset(poi_keys(keys))
    way_keys = poi | {"building", "landuse", "place", "boundary"}
    try:
        relations = _relation_members(path, sorted(way_keys))
        index = osmium.index.create_map("flex_mem")
        with tempfile.TemporaryDirectory(prefix="planner-osm-") as folder:
            opl = Path(folder) / "selected.opl"
            _write_selection(path, opl, index, way_keys)
            if opl.stat().st_size == 0:
                message = "no ways in the file"
                raise PlannerError(message, path)
            table = pacsv.read_csv(opl, read_options=pacsv.ReadOptions(
                column_names=["line"], block_size=1 << 24), parse_options=pacsv.ParseOptions(
                delimiter="\t", quote_char=False, escape_char=False),
                convert_options=pacsv.ConvertOptions(column_types={"line": pa.string()}))
        if relations:
            rel_ids, rel_tags, rel_wkb = _assemble_relations(path, index, relations,
                                                             frozenset(keys))
        else:
            rel_ids, rel_tags, rel_wkb = [], [], []
    except PlannerError:
        raise
    except Exception as error:  # osmium raises RuntimeError on corrupt input
        kind = "PBF" if path.suffix.lower() == ".pbf" else "XML"
        message = f"cannot read OSM {kind} ({one_line(error)})"
        raise PlannerError(message, path) from error
    wanted = list(dict.fromkeys([*keys, *WAY_TAGS, *POLYGON_FEATURES, "area"]))
    node_part, way_part = _read_opl(table.column("line").combine_chunks(), wanted)
    network = _network_ways(way_part)
    if not network.any():
        message = "no ways in the file"
        raise PlannerError(message, path)
    nodes, edges = _segments_table(way_part, network)
    features = _features(node_part, way_part, (rel_ids, rel_tags, rel_wkb), keys, poi)
    return nodes, edges, features


def _osm_file(path: Path):
    """The file for libosmium, which tells the format from the suffix (``.xml`` is XML too)."""
    import osmium

    if path.suffix.lower() == ".xml":
        return osmium.io.File(str(path), "osm")
    return osmium.io.File(str(path))


def _write_selection(path: Path, opl: Path, index, way_keys: frozenset[str]) -> None:
    """Nodes and ways a run needs, as OPL with way-node locations, all in C++.

    Every node location goes into ``index`` (for the relations); ways pass
    with a feature key or ``highway``, nodes with a point-feature key.
    """
    import osmium
    from osmium.filter import KeyFilter

    locations = osmium.NodeLocationsForWays(index)
    locations.ignore_errors()
    # filters must outlive the pass
    ways = KeyFilter(*sorted(way_keys | {"highway"})).enable_for(osmium.osm.WAY)
    nodes = KeyFilter(*sorted(way_keys - {"landuse"})).enable_for(osmium.osm.NODE)
    writer = osmium.SimpleWriter(osmium.io.File(
        str(opl), "opl,locations_on_ways=true,add_metadata=false"))
    try:
        with osmium.io.Reader(_osm_file(path), osmium.osm.NODE | osmium.osm.WAY) as reader:
            osmium.apply(reader, locations, ways, nodes, writer)
    finally:
        writer.close()


@dataclass
class _Objects:
    """Nodes or ways read from OPL: ids, tags (a column per wanted key) and locations.

    For nodes ``xy`` is one location per node (NaN when invalid); for ways
    it is per way node, with ``refs`` (node ids), ``way`` (the way of each
    way node), ``valid`` (the node has a valid location) and ``n_refs``.
    """

    ids: np.ndarray
    tags: dict[str, np.ndarray]
    xy: np.ndarray
    refs: np.ndarray | None = None
    way: np.ndarray | None = None
    valid: np.ndarray | None = None
    n_refs: np.ndarray | None = None

    def tag(self, key: str) -> np.ndarray:
        return self.tags.get(key, np.full(len(self.ids), None, dtype=object))


def _read_opl(lines: pa.Array, wanted: list[str]) -> tuple[_Objects, _Objects]:
    """Nodes and ways of an OPL text written with ``locations_on_ways``, column by column.

    A node line is ``n<id> T<tags> x<lon> y<lat>``, a way line
    ``w<id> T<tags> N<n<id>x<lon>y<lat>,...>``; tags are ``key=value`` pairs
    joined by commas, with ``%hex%`` escapes (:func:`_unescape`).
    """
    fields = pc.split_pattern(lines, " ")
    first = pc.list_element(fields, 0)
    kind = pc.utf8_slice_codeunits(first, 0, 1)
    parts = []
    for letter in ("n", "w"):
        rows = pc.filter(fields, pc.equal(kind, letter))
        ids = pc.cast(pc.utf8_slice_codeunits(pc.list_element(rows, 0), 1), pa.int64())
        tags = _opl_tags(pc.utf8_slice_codeunits(pc.list_element(rows, 1), 1), wanted,
                         len(rows))
        if letter == "n":
            lon = _coordinate(pc.utf8_slice_codeunits(pc.list_element(rows, 2), 1))
            lat = _coordinate(pc.utf8_slice_codeunits(pc.list_element(rows, 3), 1))
            parts.append(_Objects(ids.to_numpy(), tags, _valid_xy(lon, lat)))
            continue
        refs = pc.split_pattern(pc.utf8_slice_codeunits(pc.list_element(rows, 2), 1), ",")
        way = pc.list_parent_indices(refs).to_numpy()
        found = pc.extract_regex(pc.list_flatten(refs),
                                 r"^n(?P<id>-?\d+)x(?P<x>[-0-9.]*)y(?P<y>[-0-9.]*)$")
        xy = _valid_xy(_coordinate(pc.struct_field(found, [1])),
                       _coordinate(pc.struct_field(found, [2])))
        node_ids = pc.cast(pc.struct_field(found, [0]), pa.int64()).to_numpy()
        parts.append(_Objects(ids.to_numpy(), tags, xy, refs=node_ids, way=way,
                              valid=~np.isnan(xy[:, 0]),
                              n_refs=pc.list_value_length(refs).to_numpy()))
    return parts[0], parts[1]


def _coordinate(text: pa.Array) -> np.ndarray:
    """Decimal degrees from OPL text, NaN where empty (an unknown location)."""
    empty = pc.equal(text, "")
    number = pc.cast(pc.if_else(empty, "nan", text), pa.float64())
    return number.to_numpy(zero_copy_only=False)


def _valid_xy(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """``(n, 2)`` locations, NaN where unknown or out of range (osmium's ``valid()``)."""
    xy = np.column_stack([lon, lat])
    with np.errstate(invalid="ignore"):
        bad = ~((np.abs(lon) <= 180) & (np.abs(lat) <= 90))
    xy[bad] = np.nan
    return xy


def _opl_tags(text: pa.Array, wanted: list[str], n_objects: int) -> dict[str, np.ndarray]:
    """A column per wanted key (object array, None where absent) from OPL tag lists."""
    lists = pc.split_pattern(text, ",")
    pairs = pc.list_flatten(lists)
    owner = pc.list_parent_indices(lists)
    present = pc.not_equal(pairs, "")
    pairs, owner = pc.filter(pairs, present), pc.filter(owner, present).to_numpy()
    split = pc.split_pattern(pairs, "=", max_splits=1)
    key = _unescape(pc.list_element(split, 0))
    code = pc.index_in(key, value_set=pa.array(wanted, type=pa.string()))
    chosen = pc.is_valid(code)
    owner = owner[chosen.to_numpy(zero_copy_only=False)]
    code = pc.filter(code, chosen).to_numpy()
    value = np.asarray(_unescape(pc.filter(pc.list_element(split, 1), chosen)).to_numpy(
        zero_copy_only=False), dtype=object)
    columns = {}
    for index in np.unique(code):
        column = np.full(n_objects, None, dtype=object)
        hit = code == index
        column[owner[hit]] = value[hit]
        columns[wanted[index]] = column
    return columns


_ESCAPE = re.compile(r"%([0-9a-fA-F]+)%")


def _unescape(text: pa.Array) -> pa.Array:
    """OPL text with its ``%hex%`` escapes (spaces, commas, most non-Latin text) decoded."""
    escaped = pc.match_substring(text, "%").to_numpy(zero_copy_only=False)
    if not escaped.any():
        return text
    values = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
    rows = np.flatnonzero(escaped)
    inverse, unique = pd.factorize(values[rows])
    decoded = np.array([_ESCAPE.sub(lambda found: chr(int(found[1], 16)), value)
                        for value in unique], dtype=object)
    values[rows] = decoded[inverse]
    return pa.array(values, type=pa.string())


def _any_value_in(values: np.ndarray, listed: frozenset[str]) -> np.ndarray:
    """pyrosm's multi-value match per value: ``a;b`` matches when a or b is listed."""
    result = np.zeros(len(values), dtype=bool)
    present = np.flatnonzero(pd.notna(values))
    if not len(present):
        return result
    inverse, unique = pd.factorize(values[present])
    hit = np.array([value in listed or (";" in value and any(
        part.strip() in listed for part in value.split(";"))) for value in unique], dtype=bool)
    result[present] = hit[inverse]
    return result


def _network_ways(ways: _Objects) -> np.ndarray:
    """Ways of pyrosm's "all" network with two or more located nodes."""
    highway = ways.tag("highway")
    located = np.bincount(ways.way[ways.valid], minlength=len(ways.ids))
    return (pd.notna(highway) & ~_any_value_in(ways.tag("area"), AREA_YES)
            & ~_any_value_in(highway, NETWORK_EXCLUDED_HIGHWAYS) & (located >= 2))


def _area_ways(ways: _Objects, poi: frozenset[str]) -> np.ndarray:
    """Closed ways (by node id; four nodes or more) that are area features (:func:`is_area`)."""
    n_ways = len(ways.ids)
    starts = np.cumsum(ways.n_refs) - ways.n_refs
    closed = np.zeros(n_ways, dtype=bool)
    long = np.flatnonzero(ways.n_refs >= 4)
    closed[long] = ways.refs[starts[long]] == ways.refs[starts[long] + ways.n_refs[long] - 1]
    feature = _is_feature(ways, poi) | pd.notna(ways.tag("building")) \
        | pd.notna(ways.tag("landuse"))
    area = np.zeros(n_ways, dtype=bool)
    for key, (rule, listed) in POLYGON_FEATURES.items():
        if key not in ways.tags:  # no way carries the key
            continue
        values = pd.Series(ways.tags[key], dtype=object)
        present = values.notna().to_numpy()
        if rule == "all":
            area |= present
        else:
            inside = values.isin(sorted(listed)).to_numpy() & present
            area |= present & (inside if rule == "passlist" else ~inside)
    area &= ways.tag("area") != "no"
    return closed & feature & area


def _is_feature(objects: _Objects, poi: frozenset[str]) -> np.ndarray:
    """A point-of-interest key, a place, or an administrative boundary."""
    mask = pd.notna(objects.tag("place")) | (objects.tag("boundary") == "administrative")
    for key in poi:
        mask |= pd.notna(objects.tag(key))
    return mask


def _segments_table(ways: _Objects, network: np.ndarray):
    """Nodes and segments (consecutive located node pairs) of the network ways."""
    keep = network[ways.way] & ways.valid
    node_id, xy, way = ways.refs[keep], ways.xy[keep], ways.way[keep]
    pair = np.flatnonzero(way[1:] == way[:-1])
    # object columns, as the tags are (no inference of a string dtype per column)
    frame = pd.DataFrame({key: ways.tag(key)[way[pair]] for key in WAY_TAGS}, dtype=object)
    frame.insert(0, "u", node_id[pair])
    frame.insert(1, "v", node_id[pair + 1])
    unique, first = np.unique(node_id, return_index=True)
    nodes = pd.DataFrame({"lon": xy[first, 0], "lat": xy[first, 1]},
                         index=pd.Index(unique, name="node_id"))
    mask = walkable_mask(frame)
    return nodes, walk_edges(frame, mask)


def _features(nodes: _Objects, ways: _Objects, relations: tuple, keys: list[str],
              poi: frozenset[str]) -> gpd.GeoDataFrame:
    """Features from what :func:`read_osm` read: points, rings, relations."""
    import shapely

    rel_ids, rel_tags, rel_wkb = relations
    point = np.flatnonzero((_is_feature(nodes, poi) | pd.notna(nodes.tag("building")))
                           & ~np.isnan(nodes.xy[:, 0]))
    area = np.flatnonzero(_area_ways(ways, poi))
    n_points, n_plain = len(point), len(point) + len(area)
    geometry = np.empty(n_plain + len(rel_ids), dtype=object)
    geometry[:n_points] = shapely.points(nodes.xy[point])
    if len(area):
        renumber = np.full(len(ways.ids), -1, dtype=np.int64)
        renumber[area] = np.arange(len(area))
        keep = (renumber[ways.way] >= 0) & ways.valid
        coords, which = ways.xy[keep], renumber[ways.way[keep]]
        # a ring that lost nodes outside the extract is closed over the gap
        starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
        ends = np.r_[starts[1:], len(which)] - 1
        gap = np.flatnonzero(np.any(coords[starts] != coords[ends], axis=1))
        coords = np.insert(coords, ends[gap] + 1, coords[starts[gap]], axis=0)
        which = np.insert(which, ends[gap] + 1, which[starts[gap]])
        enough = np.bincount(which, minlength=len(area)) >= 4
        keep = enough[which]
        polygons = shapely.polygons(shapely.linearrings(
            coords[keep], indices=np.unique(which[keep], return_inverse=True)[1]))
        invalid = ~shapely.is_valid(polygons)
        polygons[invalid] = shapely.buffer(polygons[invalid], 0)
        geometry[n_points:n_plain][enough] = shapely.orient_polygons(polygons,
                                                                     exterior_cw=False)
    if rel_ids:
        areas = shapely.from_wkb(np.asarray(rel_wkb, dtype=object))
        single = shapely.get_num_geometries(areas) == 1
        areas[single] = shapely.get_geometry(areas[single], 0)
        geometry[n_plain:] = shapely.orient_polygons(areas, exterior_cw=False)
    relation_table = _tag_table(rel_tags, keys)
    table = pd.DataFrame({key: np.concatenate([
        nodes.tag(key)[point], ways.tag(key)[area],
        relation_table[key].to_numpy(dtype=object)]) for key in keys}, dtype=object)
    table.insert(0, "osm_type", np.array(["node"] * n_points + ["way"] * len(area)
                                         + ["relation"] * len(rel_ids), dtype=object))
    table.insert(1, "osm_id", np.concatenate([nodes.ids[point], ways.ids[area],
                                              np.asarray(rel_ids, dtype=np.int64)]))
    table = table[pd.notna(geometry)]
    frame = gpd.GeoDataFrame(table, geometry=geometry[pd.notna(geometry)], crs=WGS84)
    return normalise_features(frame, keys)


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
