"""The data of the map: layers as compact JSON blocks for ``planner_map.js`` (no folium).

Every layer is encoded from whole columns (numpy, shapely 2), one JSON block
per layer: polygons as quantised, delta-coded ragged arrays
(:func:`encode_polygons`), points as rounded coordinate columns, per-type
values as lists in catalogue order. :mod:`planner.maps` places these blocks
in the page.
"""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.colours import class_breaks, class_colours, class_labels, classify, score_colours
from planner.coords import transform, transform_geometries
from planner.errors import PlannerError

log = logging.getLogger(__name__)

#: The ways a facility may have matched its type, sent as their index (``m``).
MATCH_KINDS = ("tag", "name", "list")


def json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def nullable(values, digits: int | None = None) -> list:
    """A list for JSON: NaN → None, optionally rounded (``digits=0``: integers)."""
    array = np.asarray(values, dtype=float)
    if digits is not None:
        array = np.round(array, digits)
    missing = np.isnan(array)
    if digits == 0 and np.isfinite(array[~missing]).all():
        # "1034" rather than "1034.0": a city's columns are tens of thousands long
        return np.where(missing, None, np.where(missing, 0, array).astype(np.int64)
                        .astype(object)).tolist()
    return np.where(missing, None, array).tolist()


def percent(values) -> list:
    """Shares (0–1) as whole percent for JSON, NaN → None."""
    return nullable(np.asarray(values, dtype=float) * 100, 0)


def encode_polygons(geoms: np.ndarray, digits: int | None = None) -> dict:
    """Polygons as compact JSON: quantised, delta-coded coordinates with ragged offsets.

    Every geometry becomes a MultiPolygon. ``c`` holds the coordinates
    multiplied by ``s = 10**digits``, rounded to integers and stored as
    differences from the previous coordinate (``x0, y0, dx1, dy1, ...``);
    ``r``, ``p`` and ``m`` are the offsets of :func:`shapely.to_ragged_array`
    (coordinates per ring, rings per polygon, polygons per geometry). About a
    third of the size of GeoJSON; ``planner_map.js`` decodes it, and so does
    :func:`decode_polygons`.
    """
    scale, deltas, offsets = _ragged(geoms, digits, shapely.GeometryType.POLYGON,
                                     shapely.GeometryType.MULTIPOLYGON, depth=3)
    rings, polygons, multi = offsets
    return {"s": scale, "c": deltas, "r": rings, "p": polygons, "m": multi}


def encode_lines(geoms: np.ndarray, digits: int | None = None) -> dict:
    """(Multi)LineStrings as compact JSON, like :func:`encode_polygons` with ``k = "l"``.

    ``c`` holds the delta-coded, quantised coordinates; ``r`` the
    coordinates per line and ``m`` the lines per geometry.
    """
    scale, deltas, offsets = _ragged(geoms, digits, shapely.GeometryType.LINESTRING,
                                     shapely.GeometryType.MULTILINESTRING, depth=2)
    lines, multi = offsets
    return {"k": "l", "s": scale, "c": deltas, "r": lines, "m": multi}


def _ragged(geoms, digits: int | None, single, multiple, depth: int
            ) -> tuple[int, list, list[list]]:
    """Scale, delta-coded quantised coordinates and offsets of ``single`` or ``multiple``.

    ``depth`` is the number of offset arrays of the multi-part kind; single
    parts get a trivial last level so that both decode the same way.
    """
    scale = 10 ** (settings.map_polygon_digits if digits is None else digits)
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return scale, [], [[0]] * depth
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    if kind == single:
        offsets = (*offsets, np.arange(len(geoms) + 1))
    elif kind != multiple:
        message = f"expected {single.name.lower()}s, got {kind!r}"
        raise ValueError(message)
    quantised = np.round(coords[:, :2] * scale).astype(np.int64)
    deltas = np.diff(quantised, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    return scale, deltas.ravel().tolist(), [offset.tolist() for offset in offsets]


def encode_shapes(geoms: np.ndarray) -> dict:
    """:func:`encode_lines` when the geometries are lines, else :func:`encode_polygons`."""
    types = shapely.get_type_id(np.asarray(geoms, dtype=object))
    lines = (shapely.GeometryType.LINESTRING, shapely.GeometryType.MULTILINESTRING)
    if len(types) and np.isin(types, lines).all():
        return encode_lines(geoms)
    return encode_polygons(geoms)


def decode_polygons(encoded: Mapping) -> np.ndarray:
    """The MultiPolygons of :func:`encode_polygons` (coordinates rounded to its grid)."""
    coords = np.cumsum(np.asarray(encoded["c"], dtype=np.int64).reshape(-1, 2), axis=0) \
        / encoded["s"]
    offsets = tuple(np.asarray(encoded[key], dtype=np.int64) for key in ("r", "p", "m"))
    if len(offsets[2]) <= 1:
        return np.array([], dtype=object)
    return shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, coords, offsets)


def collection(geoms: np.ndarray, properties: dict) -> str:
    """``{"e": encode_shapes(geoms), "p": {column: [value ...]}}`` as JSON."""
    return json_text({"e": encode_shapes(geoms), "p": properties})


def to_display(frame: gpd.GeoDataFrame, tolerance_m: float) -> gpd.GeoDataFrame:
    """Simplified for display (in a metric CRS), then in EPSG:4326, without empties."""
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if frame.crs is None:
        message = "a map layer has no CRS"
        raise PlannerError(message)
    metric = frame
    if frame.crs.is_geographic and len(frame):
        metric = frame.to_crs(frame.estimate_utm_crs())
    if tolerance_m > 0 and len(metric):
        geoms = metric.geometry.to_numpy()
        # lines (streets within reach) need no topology check: plain Douglas-Peucker
        lines = np.isin(shapely.get_type_id(geoms), (1, 5)).all()
        metric = metric.set_geometry(shapely.simplify(geoms, tolerance_m,
                                                      preserve_topology=not lines),
                                     crs=metric.crs)
    return metric.to_crs(4326)


class Datum:
    """Shifts WGS 84 longitude/latitude to the basemap's datum."""

    def __init__(self, datum: str) -> None:
        self.datum = datum

    def geometries(self, frame: gpd.GeoDataFrame) -> np.ndarray:
        geoms = frame.geometry.to_numpy()
        if self.datum != "wgs84":
            geoms = transform_geometries(geoms, "wgs84", self.datum)
        return geoms

    def points(self, frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
        xy = shapely.get_coordinates(shapely.point_on_surface(frame.geometry.to_numpy()))
        x, y = xy[:, 0], xy[:, 1]
        if self.datum != "wgs84":
            x, y = transform(x, y, "wgs84", self.datum)
        return np.round(x, settings.map_point_digits), np.round(y, settings.map_point_digits)

@dataclass
class MapSetup:
    """What every layer of one map needs: language, strings, basemap, types and scenes."""

    lang: str
    text: dict
    tiles: dict
    datum: Datum
    types: list
    scenes: list
    scene_config: list
    has_data: np.ndarray

    @property
    def type_index(self) -> dict[str, int]:
        return {t.id: i for i, t in enumerate(self.types)}

def type_data_status(summary: pd.DataFrame | None, type_ids: list[str]) -> np.ndarray:
    """Whether each type has data: False where every ``facilities_in_area`` of it is 0.

    Without a summary, or a summary without ``facilities_in_area``, every type
    has data.
    """
    if summary is None or "facilities_in_area" not in summary.columns:
        return np.ones(len(type_ids), dtype=bool)
    count = pd.to_numeric(summary["facilities_in_area"], errors="coerce")
    most = count.groupby(summary["type_id"].astype(str)).max()
    return ~most.reindex(type_ids).eq(0).to_numpy(bool)

def added_by_type(value) -> list[tuple[str, float]]:
    """``added_by_type`` as ``(type_id, residents)`` pairs: a dict, JSON, or ``"a:1,b:2"``."""
    if isinstance(value, Mapping):
        return [(str(key), float(number)) for key, number in value.items()]
    if not isinstance(value, str) or not value.strip():
        return []
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if isinstance(parsed, Mapping):
        return added_by_type(parsed)
    if isinstance(parsed, list):
        return [(str(key), float(number)) for key, number in parsed]
    pairs = []
    for part in re.split(r"[,;]", value):
        key, _, number = part.replace("=", ":").partition(":")
        try:
            pairs.append((key.strip(), float(number)))
        except ValueError:
            continue
    return pairs


def candidates_payload(candidates: gpd.GeoDataFrame, setup: MapSetup) -> str:
    """Points with rank, label, type, kind, community and the residents added per type.

    A few dozen sites: the per-row parsing of ``added_by_type`` is cheap.
    """
    shown = candidates.to_crs(4326).sort_values("rank", kind="stable", ascending=False)
    x, y = setup.datum.points(shown)
    labels = {t.id: t.label(setup.lang) for t in setup.types}

    def text(name: str) -> list[str]:
        return shown[name].fillna("").astype(str).tolist() if name in shown else \
            [""] * len(shown)

    added = shown["added_population"] if "added_population" in shown else \
        pd.Series(np.nan, index=shown.index)
    by_type = shown["added_by_type"] if "added_by_type" in shown else \
        pd.Series([None] * len(shown), index=shown.index)
    gains = []
    for value, type_id, total in zip(by_type, text("type_id"), added, strict=True):
        pairs = added_by_type(value) or ([(type_id, float(total))] if pd.notna(total)
                                          else [])
        gains.append([[labels.get(key, key), round(number)] for key, number in pairs])
    label = [label or name or site for label, name, site in
             zip(text("label"), text("name"), text("site_id"), strict=True)]
    return json_text({"x": x.tolist(), "y": y.tolist(),
                  "rank": [int(rank) for rank in shown["rank"]], "label": label,
                  "type": [labels.get(type_id, type_id) for type_id in text("type_id")],
                  "kind": text("kind"), "community": text("community_id"),
                  "added": nullable(added, 0), "gains": gains})


def float_column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A float column, or NaN where the layer lacks it."""
    if name in frame.columns:
        return pd.to_numeric(frame[name], errors="coerce").to_numpy(float)
    return np.full(len(frame), np.nan)


#: Community columns other analyses may add, shown in the popup when present.
OPTIONAL_COMMUNITY_FIELDS = {"score_data": ("scoreData", 4), "n_types_data": ("typesData", 0),
                             "detour_index": ("detour", 2)}


def communities_payload(communities: gpd.GeoDataFrame, setup: MapSetup) -> str:
    """Polygons with name, population, scores and coverage per type (catalogue order)."""
    types, scenes = setup.types, setup.scenes
    n = len(communities)
    cov = np.column_stack([float_column(communities, f"cov_{t.id}") for t in types]) if types \
        else np.zeros((n, 0))
    scene_scores = np.column_stack([float_column(communities, f"score_{scene.id}")
                                    for scene in scenes]) if scenes else np.zeros((n, 0))
    score = float_column(communities, "score")
    names = communities["name"] if "name" in communities else communities["community_id"]
    properties = {
        "id": communities["community_id"].astype(str).tolist(),
        "name": names.fillna("").astype(str).tolist(),
        "population": nullable(float_column(communities, "population"), 0),
        # shares shown as whole percent travel as whole percent: a city's
        # 9,000 communities × 55 types make every character count
        "score": nullable(score, 4), "scenes": percent(scene_scores),
        "cov": percent(cov), "fill": score_colours(score).tolist()}
    for column, (key, digits) in OPTIONAL_COMMUNITY_FIELDS.items():
        if column in communities.columns:
            properties[key] = nullable(float_column(communities, column), digits)
    return collection(setup.datum.geometries(communities), properties)


def bitmask(flags: np.ndarray) -> list[str]:
    """Rows of booleans as hex strings, most significant bit first (type 0 = bit 7 of byte 0)."""
    packed = np.packbits(flags.astype(bool), axis=1)
    if packed.shape[1] == 0:
        return [""] * len(flags)
    return np.char.mod("%02x", packed).astype(object).sum(axis=1).tolist()


def missing_matrix(missing_types: pd.Series, type_ids: list[str]) -> np.ndarray:
    """``(n_rows, n_types)`` whether each comma-separated list names each type."""
    parts = missing_types.reset_index(drop=True).fillna("").astype(str).str.split(",").explode()
    column = parts.map({type_id: index for index, type_id in enumerate(type_ids)})
    known = column.notna().to_numpy()
    flags = np.zeros((len(missing_types), len(type_ids)), dtype=bool)
    rows = np.repeat(np.arange(len(missing_types)),
                     parts.groupby(level=0, sort=False).size().to_numpy())
    flags[rows[known], column[known].to_numpy(int)] = True
    return flags


def encode_hexagons(frame: gpd.GeoDataFrame, datum: Datum) -> dict:
    """Regular hexagons as their centres and one shared corner template (``k = "h"``).

    ``c`` holds the centres quantised and delta-coded like :func:`encode_polygons`,
    ``o`` the six corners of the middle hexagon relative to its centre, in
    degrees: across a city the shape of a 150 m hexagon changes by well under
    a metre, so one template draws them all at a sixth of the size.
    """
    scale = 10 ** settings.map_polygon_digits
    if len(frame) == 0:
        return {"k": "h", "s": scale, "c": [], "o": []}
    shown = frame.to_crs(4326)
    x, y = datum.points(shown.set_geometry(shapely.centroid(shown.geometry.to_numpy()),
                                           crs=4326))
    middle = int(np.argmin(np.hypot(x - np.median(x), y - np.median(y))))
    ring = shapely.get_coordinates(datum.geometries(shown.iloc[[middle]]))[:6]
    corners = np.round(ring - [x[middle], y[middle]], 7)
    quantised = np.round(np.column_stack([x, y]) * scale).astype(np.int64)
    deltas = np.diff(quantised, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    return {"k": "h", "s": scale, "c": deltas.ravel().tolist(), "o": corners.tolist()}


def cells_payload(cells: gpd.GeoDataFrame, setup: MapSetup) -> tuple[str, list]:
    """Hexagons of :func:`planner.gaps.gap_cells`, classed from the counts on the map.

    The hexagons travel as centres and one corner template
    (:func:`encode_hexagons`), the missing types as a hex bitmask over the
    types shown, the colour as an index into ``colours``; a hexagon's count
    is of the types with data only. Returns the JSON and the legend classes
    ``[label, colour]``.
    """
    cells = cells[~(cells.geometry.isna() | cells.geometry.is_empty)]
    missing = missing_matrix(cells["missing_types"], [t.id for t in setup.types])
    n_missing = (missing & setup.has_data[None, :]).sum(axis=1)
    breaks = class_breaks(n_missing)
    colours = class_colours(breaks)
    fill = classify(n_missing, breaks)
    ids = cells["cell_id"].astype(str)
    axial = ids.str.extract(r"^(-?\d+)_(-?\d+)$")
    properties = {"id": ids.tolist()}
    extra = {}
    if len(ids) and axial.notna().all().all():
        # "q_r" ids as delta-coded integers (a city's 75,000 ids are a megabyte as text)
        qr = axial.astype(np.int64).to_numpy()
        extra["qr"] = np.diff(qr, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)) \
            .ravel().tolist()
        properties = {}
    payload = json_text({"e": encode_hexagons(cells, setup.datum), "colours": list(colours),
                         **extra,
                         "p": {**properties,
                               "n": n_missing.tolist(), "m": bitmask(missing),
                               "population": nullable(cells["population"], 0),
                               "residences": cells["n_residences"].astype(int).tolist(),
                               "mean": nullable(cells["mean_missing_types"], 1),
                               "f": fill.astype(int).tolist()}})
    return payload, [list(pair) for pair in zip(class_labels(breaks), colours, strict=True)]


def residences_payload(residences: gpd.GeoDataFrame, types: list, datum: Datum,
                       max_residences: int | None = None) -> tuple[str, np.ndarray]:
    """Residence columns and, per type, the residences beyond reach with their distance.

    Above ``max_residences`` residences the layer is left empty (the gap
    hexagons show where they are). Returns the JSON and the population
    beyond reach of each type.
    """
    population = residences["population"].to_numpy(float)
    distance = residences[[f"dist_{t.id}" for t in types]].to_numpy(float)
    limits = np.array([t.threshold_m for t in types])
    beyond = ~(np.nan_to_num(distance, nan=np.inf) <= limits[None, :])
    uncovered = (population[:, None] * beyond).sum(axis=0)
    if max_residences is not None and len(residences) > max_residences:
        log.warning("%d residences: the map leaves out the residences beyond reach "
                    "(more than planner.settings.map_max_residences = %d); the gap hexagons "
                    "show them", len(residences), max_residences)
        return json_text({"x": [], "y": [], "p": [], "id": [], "gaps": {}}), uncovered
    homes = residences.to_crs(4326)
    x, y = datum.points(homes)
    gaps = {}
    for column in np.flatnonzero(beyond.any(axis=0)):  # one entry per type
        rows = np.flatnonzero(beyond[:, column])
        gaps[str(column)] = [rows.tolist(), nullable(distance[rows, column], 0)]
    payload = json_text({"x": x.tolist(), "y": y.tolist(), "p": nullable(population, 1),
                     "id": homes["residence_id"].astype(str).tolist(), "gaps": gaps})
    return payload, uncovered


def facility_payloads(facilities: gpd.GeoDataFrame, scenes: list, type_index: dict,
                       datum: Datum, max_markers: int | None = None,
                       cell_m: float | None = None):
    """Per scene: ``(scene, JSON, count)``; a facility of several types of a scene is one point.

    Above ``max_markers`` points in all (a city: hundreds of thousands of
    markers, megabytes of the page) the facilities of each scene travel
    counted per square of a ``cell_m`` grid instead (:func:`aggregated_facilities`).
    """
    shown = facilities[facilities["type_id"].isin(type_index)].to_crs(4326)
    x, y = datum.points(shown)
    scene_index = {scene.id: i for i, scene in enumerate(scenes)}
    table = pd.DataFrame({"facility_id": shown["facility_id"].astype(str).to_numpy(),
                          "scene": shown["scene_id"].map(scene_index).to_numpy(),
                          "t": shown["type_id"].map(type_index).to_numpy(),
                          "m": shown["match"].map({kind: code for code, kind in
                                                   enumerate(MATCH_KINDS)}).fillna(-1)
                          .astype(int).to_numpy(),
                          "n": shown["name"].fillna("").astype(str).to_numpy(),
                          "x": x, "y": y}).dropna(subset=["scene"])
    # one point per (scene, facility) with the lists of its types and matches; grouping
    # by sorting and splitting is ~30x faster than pandas' agg(list) on a city
    table = table.sort_values(["scene", "facility_id"], kind="stable")
    key = table["scene"].astype(int).astype(str) + "|" + table["facility_id"]
    starts = np.flatnonzero(np.r_[True, key.to_numpy()[1:] != key.to_numpy()[:-1]])
    scene_of = table["scene"].to_numpy(int)[starts]
    types_of = [part.tolist() for part in np.split(table["t"].to_numpy(int), starts[1:])]
    matches_of = [part.tolist() for part in np.split(table["m"].to_numpy(int), starts[1:])]
    first = table.iloc[starts]
    if max_markers is not None and len(starts) > max_markers:
        log.info("%d facility markers: the map counts them per %g m square (more than "
                 "planner.settings.map_max_facility_markers = %d)", len(starts),
                 settings.map_facility_cell_m if cell_m is None else cell_m, max_markers)
        yield from aggregated_facilities(table, starts, scenes,
                                         settings.map_facility_cell_m if cell_m is None
                                         else cell_m)
        return
    for index, scene in enumerate(scenes):  # eight scenes: one JSON block each
        rows = np.flatnonzero(scene_of == index)
        part = first.iloc[rows]
        yield scene, json_text({"id": part["facility_id"].tolist(), "x": part["x"].tolist(),
                            "y": part["y"].tolist(), "n": part["n"].tolist(),
                            "t": [types_of[row] for row in rows],
                            "m": [matches_of[row] for row in rows],
                            "mk": list(MATCH_KINDS)}), len(part)


def aggregated_facilities(table: pd.DataFrame, starts: np.ndarray, scenes: list,
                          cell_m: float):
    """Per scene ``(scene, JSON, count)``: the facilities counted per square of ``cell_m``.

    ``table`` has one row per (scene, facility, type), sorted by scene and
    facility, ``starts`` the first row of each (scene, facility). One grid in
    degrees for every scene (squares of ``cell_m`` at the median latitude);
    per scene the occupied squares, sorted, as delta-coded integer indices
    ``c`` (``i0, j0, di1, dj1, ...``), with ``n`` the facilities in each
    (a facility of several types once) and ``t`` the flat pairs
    ``type, count`` of the types there. ``planner_map.js`` draws one marker
    per square at its centre, ``((i + 0.5) * dx, (j + 0.5) * dy)``.
    """
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    latitude = float(np.median(y)) if len(y) else 0.0
    dx = round(cell_m / (111_320.0 * max(np.cos(np.radians(latitude)), 0.01)), 9)
    dy = round(cell_m / 110_574.0, 9)
    # every row takes the square of its facility's first row (one square per facility)
    sizes = np.diff(np.r_[starts, len(table)])
    i = np.repeat(np.floor(x[starts] / dx).astype(np.int64), sizes)
    j = np.repeat(np.floor(y[starts] / dy).astype(np.int64), sizes)
    scene = table["scene"].to_numpy(int)
    is_first = np.zeros(len(table), dtype=bool)
    is_first[starts] = True
    rows = pd.DataFrame({"scene": scene, "i": i, "j": j, "t": table["t"].to_numpy(int),
                         "first": is_first, "facility": table["facility_id"].to_numpy()})
    squares = rows.groupby(["scene", "i", "j"], sort=True)["first"].sum()
    pairs = rows.drop_duplicates(["scene", "facility", "t"]).groupby(
        ["scene", "i", "j", "t"], sort=True).size()
    pair_square = pairs.index.droplevel("t")
    for index, scene_item in enumerate(scenes):
        if index in squares.index.get_level_values("scene"):
            counts = squares.xs(index, level="scene")
            mine = pair_square.get_level_values("scene") == index
        else:
            counts = squares.iloc[:0].droplevel("scene")
            mine = np.zeros(len(pairs), dtype=bool)
        ij = np.column_stack([counts.index.get_level_values("i"),
                              counts.index.get_level_values("j")]).astype(np.int64)
        deltas = np.diff(ij, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
        scene_pairs = pairs[mine]
        flat = np.column_stack([scene_pairs.index.get_level_values("t"),
                                scene_pairs.to_numpy()]).astype(np.int64)
        per_square = scene_pairs.groupby(level=["i", "j"], sort=True).size().to_numpy()
        types = [part.ravel().tolist() for part in
                 np.split(flat, np.cumsum(per_square)[:-1])] if len(flat) else []
        number = counts.to_numpy(np.int64)
        yield scene_item, json_text({"g": {"dx": dx, "dy": dy, "m": cell_m,
                                           "c": deltas.ravel().tolist()},
                                     "n": number.tolist(), "t": types}), int(number.sum())




def area_cells_payload(areas: gpd.GeoDataFrame, type_index: Mapping[str, int], datum: Datum,
                       cell_m: float) -> str:
    """Service areas as the squares of a ``cell_m`` grid that hold a street within reach.

    For city-scale maps, where the streets themselves would make the page
    tens of megabytes (:func:`squares_payload`). Streets are sampled every
    half square, so a street crossing a square marks it.
    """
    metric = areas if not areas.crs.is_geographic else areas.to_crs(areas.estimate_utm_crs())
    dense = shapely.segmentize(metric.geometry.to_numpy(), cell_m / 2)
    xy, row = shapely.get_coordinates(dense, return_index=True)
    ij = np.floor(xy / cell_m).astype(np.int64)
    # one integer key per square of the extent's grid, flagged per type in a dense
    # array: no sort of the millions of samples
    low = ij.min(axis=0) if len(ij) else np.zeros(2, dtype=np.int64)
    span = int(ij[:, 1].max() - low[1] + 1) if len(ij) else 1
    key = (ij[:, 0] - low[0]) * span + (ij[:, 1] - low[1])
    dense = np.zeros((len(metric), int(key.max()) + 1 if len(key) else 0), dtype=bool)
    dense[row, key] = True
    keys = np.flatnonzero(dense.any(axis=0))
    corner = np.column_stack([keys // span + low[0], keys % span + low[1]]) * cell_m
    squares = gpd.GeoSeries(shapely.box(corner[:, 0], corner[:, 1], corner[:, 0] + cell_m,
                                        corner[:, 1] + cell_m), crs=metric.crs)
    return squares_payload(squares, dense[:, keys],
                           metric["type_id"].map(type_index).astype(int).tolist(), datum, cell_m)


def service_cells_payload(cells: gpd.GeoDataFrame, type_index: Mapping[str, int],
                          datum: Datum) -> tuple[str, set[str]]:
    """The ``service_cells`` layer (:func:`planner.isochrones.service_cells`) for the map.

    Returns the JSON of :func:`squares_payload` and the types drawn.
    """
    drawn = [type_id for type_id in type_index if f"reach_{type_id}" in cells.columns]
    flags = cells[[f"reach_{type_id}" for type_id in drawn]].to_numpy(bool).T \
        if drawn else np.zeros((0, len(cells)), dtype=bool)
    cell_m = float(cells["cell_m"].iloc[0]) if "cell_m" in cells and len(cells) \
        else settings.service_cell_m
    return squares_payload(cells.geometry, flags, [type_index[t] for t in drawn], datum,
                           cell_m), set(drawn)


def squares_payload(squares: gpd.GeoSeries, flags: np.ndarray, type_indices: list[int],
                    datum: Datum, cell_m: float) -> str:
    """Grid squares listed once, each type a base64 bitmask over them.

    Centres delta-coded like :func:`encode_polygons`, one half-width and
    half-height in degrees (those of the middle square); ``flags`` is
    ``(n_types, n_squares)``.
    """
    shown = gpd.GeoDataFrame(geometry=squares.to_crs(4326).reset_index(drop=True))
    x, y = datum.points(shown)
    hx = hy = 0.0
    if len(shown):
        middle = int(np.argmin(np.hypot(x - np.median(x), y - np.median(y))))
        west, south, east, north = shapely.bounds(datum.geometries(shown.iloc[[middle]]))[0]
        hx, hy = (east - west) / 2, (north - south) / 2
    scale = 10 ** settings.map_polygon_digits
    quantised = np.round(np.column_stack([x, y]) * scale).astype(np.int64)
    deltas = np.diff(quantised, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    packed = np.packbits(np.asarray(flags, dtype=bool), axis=1)
    # base64 (``b64``), not hex: a city's 55 masks over 150,000 squares are megabytes
    return json_text({
        "g": {"s": scale, "c": deltas.ravel().tolist(), "hx": round(float(hx), 7),
              "hy": round(float(hy), 7), "m": cell_m},
        "p": {"t": list(type_indices),
              "b64": [base64.b64encode(bytes(line)).decode("ascii") for line in packed]}})
