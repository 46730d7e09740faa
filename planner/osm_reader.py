"""Read an OSM file (``.osm.pbf``, ``.osm``, ``.osm.bz2``) with pyosmium: one reader for all.

libosmium parses PBF and XML alike in C++; only the objects a run needs reach
Python (a key filter on ways and relations). The walking network comes out
as segments between consecutive OSM nodes, and the features as one
GeoDataFrame with one string column per OSM key (see :func:`read_osm`).
"""

from __future__ import annotations

import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from pyproj import CRS, Transformer

from planner.errors import PlannerError, one_line
from planner.i18n import message as message_in_lang
from planner.opl import Objects, read_opl
from planner.osm_prefetch import (  # noqa: F401  (BASE_FEATURE_KEYS re-exported)
    BASE_FEATURE_KEYS,
    assemble_relations,
    merge_keys,
    poi_keys,
    selection_keys,
    take_prefetched,
    write_selection,
)
from planner.osm_rings import ring_parts
from planner.walk_rules import EDGE_TAGS, WAY_TAGS, walkable_mask

WGS84 = CRS.from_epsg(4326)

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
    """Read an OSM file with pyosmium: one pass in C++, then columnar assembly.

    PBF, XML (``.osm``, ``.xml``) and compressed XML (``.osm.bz2``,
    ``.osm.gz``) go through the same C++ parser, so XML costs the same per
    object as PBF and both give the same answer. No Python code runs per
    object: libosmium selects the nodes and ways a run needs (key filters),
    stores node locations and writes the selection with the locations of the
    way nodes as OPL text, which pyarrow's CSV reader parses column by column
    (:func:`planner.opl.read_opl`); only the few multipolygon and boundary relations are
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
    reading = open_osm(path, keys)
    return reading.nodes, reading.edges, reading.features(WGS84)


class OsmReading:
    """An OSM file read by :func:`open_osm`: the network, and the features in a CRS to name.

    The features are built in the CRS the caller names (:meth:`features`),
    each geometry once: projecting the coordinates of the rings before the
    polygons are made gives what ``GeoDataFrame.to_crs`` gives (the same
    transform on the same coordinates), without building every footprint twice.

    Attributes
    ----------
    nodes
        Network nodes, those the walkable segments use: index ``node_id``
        (sorted); ``lon``, ``lat``.
    edges
        Walkable segments (see :func:`read_osm`).
    """

    def __init__(self, nodes: pd.DataFrame, edges: pd.DataFrame, parts: Future) -> None:
        self.nodes = nodes
        self.edges = edges
        self._parts = parts
        self._handed_over = False

    def features(self, crs: CRS = WGS84) -> gpd.GeoDataFrame:
        """The features (:func:`read_osm`) with their geometry in ``crs``."""
        parts = self._parts.result()
        copy, self._handed_over = self._handed_over, True
        return _project_features(parts, crs, copy=copy)


def open_osm(path: Path, keys: list[str]) -> OsmReading:
    """Read an OSM file (see :func:`read_osm`); the features wait for their CRS.

    What the features need that does not depend on the CRS (which rows,
    their tags, which rings are valid and how they turn) is worked out on a
    second thread while this one tables the network.
    """
    poi = frozenset(poi_keys(keys))
    way_keys, key_set = selection_keys(keys)
    wanted = list(dict.fromkeys([*keys, *WAY_TAGS, *POLYGON_FEATURES, "area"]))
    try:
        node_part, way_part, relations = _read_selection(path, way_keys, wanted, key_set)
    except PlannerError:
        raise
    except Exception as error:  # osmium raises RuntimeError on corrupt input
        kind = "PBF" if path.suffix.lower() == ".pbf" else "XML"
        message = message_in_lang(f"cannot read OSM {kind} ({one_line(error)})",
                                  f"无法读取 OSM {kind} 文件（{one_line(error)}）")
        raise PlannerError(message, path) from error
    network = _network_ways(way_part)
    if not network.any():
        message = message_in_lang("no walkable ways with located nodes in the file",
                                  "文件中没有带坐标的可步行道路（way）")
        raise PlannerError(message, path)
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="planner-features")
    parts = pool.submit(_feature_parts, node_part, way_part, relations, keys, poi)
    pool.shutdown(wait=False)  # the thread ends with its one task
    nodes, edges = _segments_table(way_part, network)
    return OsmReading(nodes, edges, parts)


def _read_selection(path: Path, way_keys: frozenset[str], wanted: list[str],
                    key_set: frozenset[str]) -> tuple[Objects, Objects, tuple]:
    """The selected nodes and ways (:func:`planner.opl.read_opl`) and the relation areas.

    Those a child read ahead (:func:`planner.osm_prefetch.prefetch_selection`)
    when it read this file with these keys; else, or for an unsorted file,
    the file is read here.
    """
    import osmium

    prepared = take_prefetched(path, way_keys, key_set)
    if prepared is not None:
        node_part, way_part = read_opl(prepared[0], wanted)
        if not _mostly_unlocated(way_part):
            return node_part, way_part, prepared[1]

    manager = osmium.area.AreaManager()
    index = osmium.index.create_map("flex_mem")
    text, found = _selection(path, index, way_keys, manager=manager)
    node_part, way_part = read_opl(text, wanted)
    if _mostly_unlocated(way_part):
        # ways before their nodes (an unsorted file): store every location first
        index = osmium.index.create_map("flex_mem")
        text, _ = _selection(path, index, way_keys, locations_first=True)
        node_part, way_part = read_opl(text, wanted)
    del text
    if found:
        relations = assemble_relations(path, index, manager, key_set)
    else:
        relations = ([], [], [])
    return node_part, way_part, relations


def _selection(path: Path, index, way_keys: frozenset[str], *, manager=None,
               locations_first: bool = False) -> tuple[bytes, bool]:
    """The OPL text of :func:`planner.osm_prefetch.write_selection` (never empty), and
    whether it met relations."""
    with tempfile.TemporaryDirectory(prefix="planner-osm-") as folder:
        opl = Path(folder) / "selected.opl"
        found = write_selection(path, opl, index, way_keys, manager=manager,
                                locations_first=locations_first)
        text = opl.read_bytes()
    if not text:
        message = message_in_lang("no ways in the file", "文件中没有道路（way）")
        raise PlannerError(message, path)
    return text, found


def _mostly_unlocated(ways: Objects) -> bool:
    """More than half of the way nodes without a location: the ways came before their
    nodes (an extract cut at its edge lacks only a few)."""
    return ways.valid is not None and len(ways.valid) > 0 and \
        np.count_nonzero(ways.valid) * 2 < len(ways.valid)


def _any_value_in(objects: Objects, key: str, listed: frozenset[str]) -> np.ndarray:
    """pyrosm's multi-value match per value: ``a;b`` matches when a or b is listed."""
    result = np.zeros(len(objects.ids), dtype=bool)
    present = np.flatnonzero(objects.has(key))
    if not len(present):
        return result
    inverse, unique = pd.factorize(objects.tags[key][present])
    hit = np.array([value in listed or (";" in value and any(
        part.strip() in listed for part in value.split(";"))) for value in unique], dtype=bool)
    result[present] = hit[inverse]
    return result


def _network_ways(ways: Objects) -> np.ndarray:
    """Ways of pyrosm's "all" network with two or more located nodes."""
    located = np.bincount(ways.way[ways.valid], minlength=len(ways.ids))
    return (ways.has("highway") & ~_any_value_in(ways, "area", AREA_YES)
            & ~_any_value_in(ways, "highway", NETWORK_EXCLUDED_HIGHWAYS) & (located >= 2))


def _area_ways(ways: Objects, poi: frozenset[str]) -> np.ndarray:
    """Closed ways (by node id; four nodes or more) that are area features (:func:`is_area`)."""
    n_ways = len(ways.ids)
    starts = np.cumsum(ways.n_refs) - ways.n_refs
    closed = np.zeros(n_ways, dtype=bool)
    long = np.flatnonzero(ways.n_refs >= 4)
    closed[long] = ways.refs[starts[long]] == ways.refs[starts[long] + ways.n_refs[long] - 1]
    feature = _is_feature(ways, poi) | ways.has("building") | ways.has("landuse")
    area = np.zeros(n_ways, dtype=bool)
    for key, (rule, listed) in POLYGON_FEATURES.items():
        if key not in ways.tags:  # no way carries the key
            continue
        present = ways.has(key)
        if rule == "all":
            area |= present
        else:
            rows = np.flatnonzero(present)
            inside = np.zeros(n_ways, dtype=bool)
            inside[rows] = pd.Series(ways.tags[key][rows], dtype=object).isin(
                sorted(listed)).to_numpy()
            area |= present & (inside if rule == "passlist" else ~inside)
    area &= ~ways.equals("area", "no")
    return closed & feature & area


def _is_feature(objects: Objects, poi: frozenset[str]) -> np.ndarray:
    """A point-of-interest key, a place, or an administrative boundary."""
    mask = objects.has("place") | objects.equals("boundary", "administrative")
    for key in poi:
        if key in objects.present:
            mask |= objects.present[key]
    return mask


def _segments_table(ways: Objects, network: np.ndarray):
    """The network's nodes and walkable segments (consecutive located node pairs).

    The nodes are those the walkable segments use, sorted by id (what
    :func:`planner.sources._network_nodes` keeps, so it has nothing to drop).
    """
    keep = network[ways.way] & ways.valid
    node_id, way = ways.refs[keep], ways.way[keep]
    pair = np.flatnonzero(way[1:] == way[:-1])
    chosen = np.flatnonzero(_walkable_ways(ways, network)[way[pair]])
    segment = pair[chosen]
    owner = way[segment]
    used = np.zeros(len(node_id), dtype=bool)
    used[segment] = True
    used[segment + 1] = True
    position = np.flatnonzero(used)
    unique, first = _unique_ids(node_id[position])
    xy = ways.xy[np.flatnonzero(keep)[position[first]]]
    nodes = pd.DataFrame({"lon": xy[:, 0], "lat": xy[:, 1]},
                         index=pd.Index(unique, name="node_id"))
    columns = {"u": node_id[segment], "v": node_id[segment + 1]}
    columns.update({key: pd.Series(ways.tag(key)[owner], dtype=object, copy=False)
                    for key in EDGE_TAGS})
    edges = pd.DataFrame({key: pd.Series(column, dtype=column.dtype, copy=False)
                          for key, column in columns.items()})
    edges.index = pd.Index(chosen)
    return nodes, edges


def _unique_ids(ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted distinct ids and where each first occurs (``np.unique``'s answer).

    Dense ids (a synthetic or renumbered extract) are placed in a table
    instead of sorted.
    """
    if not len(ids):
        return np.unique(ids, return_index=True)
    low, high = int(ids.min()), int(ids.max())
    if high - low >= 4 * len(ids):
        return np.unique(ids, return_index=True)
    first = np.full(high - low + 1, len(ids), dtype=np.int64)
    # the smallest position of each id: reversed, so the first occurrence is written last
    first[ids[::-1] - low] = np.arange(len(ids) - 1, -1, -1)
    slots = np.flatnonzero(first < len(ids))
    return slots + low, first[slots]


def _walkable_ways(ways: Objects, network: np.ndarray) -> np.ndarray:
    """Which ways the walk rules let a pedestrian use, judged once per distinct set of tags.

    The rules read a handful of tags (:func:`planner.walk_rules.walkable_mask`,
    row by row), and a city's network ways carry few distinct combinations of them.
    """
    rows = np.flatnonzero(network)
    combination = np.zeros(len(rows), dtype=np.int64)
    for key in _RULE_TAGS:
        code = np.zeros(len(rows), dtype=np.int64)
        carried = np.flatnonzero(ways.has(key)[rows])
        if len(carried):
            values, distinct = pd.factorize(ways.tags[key][rows[carried]])
            code[carried] = values + 1
            combination = combination * (len(distinct) + 1) + code
            if combination.max(initial=0) > 1 << 40:  # keep clear of overflow
                combination = np.unique(combination, return_inverse=True)[1]
    _, first, inverse = np.unique(combination, return_index=True, return_inverse=True)
    representative = rows[first]
    judged = walkable_mask(pd.DataFrame(
        {key: pd.Series(ways.tag(key)[representative], dtype=object) for key in WAY_TAGS}))
    walkable = np.zeros(len(ways.ids), dtype=bool)
    walkable[rows] = judged[inverse.ravel()]
    return walkable


#: The tags :func:`planner.walk_rules.walkable_mask` reads.
_RULE_TAGS = ("highway", "foot", "access", "service", "sidewalk", "sidewalk:both",
              "sidewalk:left", "sidewalk:right")


#: Order of the kinds of feature (alphabetical, as the table is sorted by type then id).
_KIND_ORDER = {"node": 0, "relation": 1, "way": 2}


@dataclass
class _FeatureParts:
    """The features of :func:`_feature_parts` before their geometry is made.

    ``order`` gives the rows of the concatenation points, rings, relations in
    table order; the rings are closed and counter-clockwise where valid
    (``ring_offsets`` into ``ring_coords``, ``ring_rows`` their area rows),
    the invalid ones repaired (``repaired_rings``, ``repaired``, WGS84).
    """

    table: pd.DataFrame
    order: np.ndarray
    point_xy: np.ndarray
    n_areas: int
    ring_coords: np.ndarray
    ring_offsets: np.ndarray
    ring_rows: np.ndarray
    repaired_rings: np.ndarray
    repaired: np.ndarray
    relations: np.ndarray


def _feature_parts(nodes: Objects, ways: Objects, relations: tuple, keys: list[str],
                   poi: frozenset[str]) -> _FeatureParts:
    """Features from what :func:`read_osm` read: points, rings, relations, all but the geometry.

    The table :func:`normalise_features` would make (points and areas only,
    sorted by type and id), built once: every column is filled in its final
    order, the tags stay object columns (no string dtype is inferred).
    """
    rel_ids, rel_tags, rel_wkb = relations
    point = np.flatnonzero((_is_feature(nodes, poi) | nodes.has("building"))
                           & ~np.isnan(nodes.xy[:, 0]))
    area = np.flatnonzero(_area_ways(ways, poi))
    rings = ring_parts(ways, area)
    relation_geometry = _relation_areas(rel_wkb)
    # what the geometries will be: a point, a polygon (valid ring), a repaired ring's
    # geometry, None (too few nodes), a relation's area
    area_type = np.full(len(area), -1, dtype=np.int64)
    area_type[rings.rows] = 3
    area_empty = np.zeros(len(area), dtype=bool)
    repaired_rows = rings.rows[rings.repaired_rings]
    area_type[repaired_rows] = shapely.get_type_id(rings.repaired)
    area_empty[repaired_rows] = shapely.is_empty(rings.repaired)
    type_id = np.concatenate([np.zeros(len(point), dtype=np.int64), area_type,
                              shapely.get_type_id(relation_geometry)])
    empty = np.concatenate([np.zeros(len(point), dtype=bool), area_empty,
                            shapely.is_empty(relation_geometry)])
    kind = np.repeat([_KIND_ORDER["node"], _KIND_ORDER["way"], _KIND_ORDER["relation"]],
                     [len(point), len(area), len(rel_ids)])
    osm_id = np.concatenate([nodes.ids[point], ways.ids[area],
                             np.asarray(rel_ids, dtype=np.int64)])
    kept = np.flatnonzero(np.isin(type_id, _FEATURE_TYPE_IDS) & ~empty)
    order = kept[np.lexsort((osm_id[kept], kind[kept]))]
    table = _feature_table((nodes, point), (ways, area), rel_tags, keys, order)
    names = np.array(sorted(_KIND_ORDER, key=_KIND_ORDER.get), dtype=object)
    table.insert(0, "osm_type", pd.Series(names[kind[order]], dtype="str"))
    table.insert(1, "osm_id", pd.array(osm_id[order], dtype="Int64"))
    return _FeatureParts(table=table, order=order, point_xy=nodes.xy[point],
                         n_areas=len(area), ring_coords=rings.coords,
                         ring_offsets=rings.offsets, ring_rows=rings.rows,
                         repaired_rings=rings.repaired_rings, repaired=rings.repaired,
                         relations=relation_geometry)


def _feature_table(point_part: tuple, area_part: tuple, rel_tags: list[dict],
                   keys: list[str], order: np.ndarray) -> pd.DataFrame:
    """The tag columns of the features, rows in ``order`` (of points, areas, relations)."""
    (nodes, point), (ways, area) = point_part, area_part
    # where each node, way and relation row of the concatenation lands
    final = np.full(len(point) + len(area) + len(rel_tags), -1, dtype=np.int64)
    final[order] = np.arange(len(order))
    sources = ((nodes, point, final[:len(point)]),
               (ways, area, final[len(point):len(point) + len(area)]))
    relation_table = _tag_table(rel_tags, keys)
    block = np.full((len(keys), len(order)), None, dtype=object)
    for number, key in enumerate(keys):
        for objects, rows, target in sources:
            if key in objects.tags:
                hit = target >= 0
                block[number, target[hit]] = objects.tags[key][rows[hit]]
        if len(rel_tags):
            target = final[len(point) + len(area):]
            hit = target >= 0
            column = relation_table[key].to_numpy(dtype=object, na_value=None)
            block[number, target[hit]] = column[hit]
    return pd.DataFrame(block.T, columns=pd.Index(keys), dtype=object, copy=False)


def _project_features(parts: _FeatureParts, crs: CRS, *, copy: bool) -> gpd.GeoDataFrame:
    """The features of :func:`_feature_parts` with their geometry made in ``crs``.

    The coordinates go through the transform ``GeoDataFrame.to_crs`` applies
    (point by point, so the same numbers), points and rings before their
    geometries are made, the repaired rings and the relations after (as
    ``to_crs`` does, on the WGS84 geometry).
    """
    point_xy, ring_coords = parts.point_xy, parts.ring_coords
    repaired, relations = parts.repaired, parts.relations
    if not crs.equals(WGS84):
        point_xy, ring_coords = _project_coordinates(point_xy, ring_coords, parts.ring_offsets,
                                                     Transformer.from_crs(WGS84, crs,
                                                                          always_xy=True))
        repaired, relations = (
            gpd.GeoSeries(geometry, crs=WGS84).to_crs(crs).to_numpy() if len(geometry)
            else geometry for geometry in (repaired, relations))
    areas = np.full(parts.n_areas, None, dtype=object)
    if len(parts.ring_rows):
        polygons = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, ring_coords,
            (parts.ring_offsets, np.arange(len(parts.ring_rows) + 1)))
        polygons[parts.repaired_rings] = repaired
        areas[parts.ring_rows] = polygons
    geometry = np.concatenate([_points(point_xy), areas, relations])[parts.order]
    table = parts.table.copy() if copy else parts.table
    return gpd.GeoDataFrame(table, geometry=geometry, crs=crs, copy=False)


def _project_coordinates(point_xy: np.ndarray, ring_coords: np.ndarray, offsets: np.ndarray,
                         transformer: Transformer) -> tuple[np.ndarray, np.ndarray]:
    """The points and ring coordinates through ``transformer``, in one call.

    A ring's closing coordinate repeats its first: it is projected once and
    copied (the transform gives the same numbers for the same input).
    """
    n_points = len(point_xy)
    closing = offsets[1:] - 1
    keep = np.ones(len(ring_coords), dtype=bool)
    keep[closing] = False
    x = np.empty(n_points + len(ring_coords) - len(closing))
    y = np.empty_like(x)
    x[:n_points], y[:n_points] = point_xy[:, 0], point_xy[:, 1]
    np.compress(keep, ring_coords[:, 0], out=x[n_points:])
    np.compress(keep, ring_coords[:, 1], out=y[n_points:])
    transformer.transform(x, y, inplace=True)
    projected = np.empty((n_points + len(ring_coords), 2))
    projected[:n_points, 0], projected[:n_points, 1] = x[:n_points], y[:n_points]
    rings = projected[n_points:]
    place = np.flatnonzero(keep)
    rings[place, 0], rings[place, 1] = x[n_points:], y[n_points:]
    rings[closing] = rings[offsets[:-1]]
    return projected[:n_points], rings


#: shapely type ids of :data:`FEATURE_GEOMETRIES`.
_FEATURE_TYPE_IDS = (0, 3, 4, 6)


def _points(xy: np.ndarray) -> np.ndarray:
    return shapely.points(xy) if len(xy) else np.empty(0, dtype=object)


def _relation_areas(wkb: list) -> np.ndarray:
    """Relation areas from libosmium's WKB: a multipolygon of one part as a polygon."""
    if not wkb:
        return np.empty(0, dtype=object)
    areas = shapely.from_wkb(np.asarray(wkb, dtype=object))
    single = shapely.get_num_geometries(areas) == 1
    areas[single] = shapely.get_geometry(areas[single], 0)
    return shapely.orient_polygons(areas, exterior_cw=False)


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

