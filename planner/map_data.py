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
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from planner import settings
from planner.colours import class_breaks, class_colours, class_labels, classify, score_colours
from planner.i18n import SITE_KIND_LABELS
from planner.map_encoding import (  # noqa: F401  (re-exported for planner.maps)
    WGS84,
    Datum,
    codes,
    collection,
    decode_polygons,
    encode_lines,
    encode_polygons,
    encode_shapes,
    json_int_lists,
    json_object,
    json_text,
    nullable,
    percent,
    polygon_rings,
    ring_centroids,
    ring_interior_points,
    to_display,
    wgs84_coordinates,
    wgs84_geometries,
)

log = logging.getLogger(__name__)

#: The ways a facility may have matched its type, sent as their index (``m``).
MATCH_KINDS = ("tag", "name", "list")


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
    """Points with rank, label, type (label and index), kind, community and residents added.

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
    kinds = SITE_KIND_LABELS.get(setup.lang, SITE_KIND_LABELS["en"])
    return json_text({"x": x.tolist(), "y": y.tolist(),
                      "rank": [int(rank) for rank in shown["rank"]], "label": label,
                      "type": [labels.get(type_id, type_id) for type_id in text("type_id")],
                      # the type's index in the map's types (the picker's value), else null
                      "t": [setup.type_index.get(type_id) for type_id in text("type_id")],
                      "kind": [kinds.get(kind, kind) for kind in text("kind")],
                      "community": text("community_id"),
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


#: ``HEX_DIGITS[b]``: the two ASCII digits of byte ``b`` in lower-case hex.
HEX_DIGITS = np.frombuffer(bytes(range(256)).hex().encode("ascii"), dtype=np.uint8).reshape(256, 2)


def bitmask(flags: np.ndarray) -> list[str]:
    """Rows of booleans as hex strings, most significant bit first (type 0 = bit 7 of byte 0)."""
    packed = np.packbits(np.asarray(flags, dtype=bool), axis=1)
    if packed.shape[1] == 0:
        return [""] * len(flags)
    # every row's digits side by side, read as one fixed-width byte string per row
    digits = np.ascontiguousarray(HEX_DIGITS[packed].reshape(len(packed), -1))
    return digits.view(f"S{digits.shape[1]}").ravel().astype(str).tolist()


def missing_matrix(missing_types: pd.Series, type_ids: list[str]) -> np.ndarray:
    """``(n_rows, n_types)`` whether each comma-separated list names each type."""
    values = missing_types.reset_index(drop=True)
    if not pd.api.types.is_string_dtype(values) or values.dtype == object:
        values = values.fillna("").astype(str)
    text = pc.fill_null(pa.array(values, type=pa.large_string(), from_pandas=True), "")
    parts = pc.split_pattern(text, ",")
    column = pc.index_in(pc.list_flatten(parts), value_set=pa.array(type_ids,
                                                                     type=pa.large_string()))
    rows = pc.list_parent_indices(parts).to_numpy()
    known = column.is_valid().to_numpy(zero_copy_only=False)
    flags = np.zeros((len(values), len(type_ids)), dtype=bool)
    flags[rows[known], pc.drop_null(column).to_numpy()] = True
    return flags


def encode_hexagons(frame: gpd.GeoDataFrame, datum: Datum, xy: np.ndarray | None = None
                    ) -> dict:
    """Regular hexagons as their centres and one shared corner template (``k = "h"``).

    ``c`` holds the centres quantised and delta-coded like :func:`encode_polygons`,
    ``o`` the six corners of the middle hexagon relative to its centre, in
    degrees: across a city the shape of a 150 m hexagon changes by well under
    a metre, so one template draws them all at a sixth of the size. ``xy``:
    the hexagons' coordinates in WGS 84 when known (:func:`polygon_rings`).
    """
    scale = 10 ** settings.map_polygon_digits
    if len(frame) == 0:
        return {"k": "h", "s": scale, "c": [], "o": []}
    shown, rings = _shapes(frame, xy)
    x, y = datum.coordinates(ring_centroids(rings) if rings is not None else
                             shapely.get_coordinates(shapely.centroid(shown)))
    middle = int(np.argmin(np.hypot(x - np.median(x), y - np.median(y))))
    ring = shapely.get_coordinates(datum.shift(_one_shape(shown, rings, middle)))[:6]
    corners = np.round(ring - [x[middle], y[middle]], 7)
    quantised = np.round(np.column_stack([x, y]) * scale).astype(np.int64)
    deltas = np.diff(quantised, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    return {"k": "h", "s": scale, "c": deltas.ravel().tolist(), "o": corners.tolist()}


def _shapes(frame: gpd.GeoDataFrame | gpd.GeoSeries, xy: np.ndarray | None
            ) -> tuple[np.ndarray | None, np.ndarray | None]:
    """``(None, rings)`` of polygons of one ring each (:func:`polygon_rings`: no
    geometry built), else ``(geometries in WGS 84, None)``."""
    rings = polygon_rings(frame, xy)
    return (None, rings) if rings is not None else (wgs84_geometries(frame), None)


def _one_shape(shown: np.ndarray | None, rings: np.ndarray | None, index: int) -> np.ndarray:
    """The geometry ``index`` of :func:`_shapes`, as a one-element array."""
    return shown[[index]] if rings is None else shapely.polygons(rings[[index]])


def axial_ids(ids: pd.Series) -> np.ndarray | None:
    """``(n, 2)`` integers of ``"q_r"`` ids, or None when one of them is not of that form."""
    if len(ids) == 0:
        return None
    text = pa.array(ids.to_numpy(dtype=object), type=pa.large_string(), from_pandas=True)
    if text.null_count or not pc.all(pc.match_substring_regex(text, r"^-?[0-9]+_-?[0-9]+$")
                                     ).as_py():
        return None
    return pc.list_flatten(pc.split_pattern(text, "_")).to_numpy(zero_copy_only=False) \
        .astype(np.int64).reshape(-1, 2)


def cells_payload(cells: gpd.GeoDataFrame, setup: MapSetup, xy: np.ndarray | None = None
                  ) -> tuple[str, list]:
    """Hexagons of :func:`planner.gaps.gap_cells`, classed from the counts on the map.

    The hexagons travel as centres and one corner template
    (:func:`encode_hexagons`), the missing types as a hex bitmask over the
    types shown, the colour as an index into ``colours``; a hexagon's count
    is of the types with data only. Returns the JSON and the legend classes
    ``[label, colour]``. ``xy``: the hexagons' coordinates in WGS 84 when
    known (:func:`polygon_rings`).
    """
    shown = ~(cells.geometry.isna() | cells.geometry.is_empty)
    if not shown.all():
        cells, xy = cells[shown], None
    missing = missing_matrix(cells["missing_types"], [t.id for t in setup.types])
    n_missing = (missing & setup.has_data[None, :]).sum(axis=1)
    breaks = class_breaks(n_missing)
    colours = class_colours(breaks)
    fill = classify(n_missing, breaks)
    ids = cells["cell_id"].astype(str)
    qr = axial_ids(ids)
    properties = {"id": ids.tolist()}
    extra = {}
    if qr is not None:
        # "q_r" ids as delta-coded integers (a city's 75,000 ids are a megabyte as text)
        extra["qr"] = np.diff(qr, axis=0, prepend=np.zeros((1, 2), dtype=np.int64)) \
            .ravel().tolist()
        properties = {}
    payload = json_text({"e": encode_hexagons(cells, setup.datum, xy), "colours": list(colours),
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
    # column by column (a city's 300,000 × 55 distances are never one block); each
    # sum adds a contiguous column, as the sum over the rows of the whole matrix did
    uncovered = np.zeros(len(types))
    for column, t in enumerate(types):
        # NaN (no facility within the limit) is beyond
        beyond = ~(residences[f"dist_{t.id}"].to_numpy(float) <= t.threshold_m)
        uncovered[column] = (population * beyond).sum()
    if max_residences is not None and len(residences) > max_residences:
        log.warning("%d residences: the map leaves out the residences beyond reach "
                    "(more than planner.settings.map_max_residences = %d); the gap hexagons "
                    "show them", len(residences), max_residences)
        return json_text({"x": [], "y": [], "p": [], "id": [], "gaps": {}}), uncovered
    distance = residences[[f"dist_{t.id}" for t in types]].to_numpy(float)
    beyond = ~(distance <= np.array([t.threshold_m for t in types])[None, :])
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
    scene_index = {scene.id: i for i, scene in enumerate(scenes)}
    type_of = codes(facilities["type_id"], type_index)
    scene_of = codes(facilities["scene_id"], scene_index)
    keep = (type_of >= 0) & (scene_of >= 0)
    shown = facilities[keep]
    x, y = datum.points_of(shown)
    ids = shown["facility_id"].astype(str).to_numpy(dtype=object)
    # one point per (scene, facility), in the order of the scene and the id (as text)
    facility = pd.factorize(ids, sort=True)[0]
    order, starts = _groups(scene_of[keep], facility)
    table = pd.DataFrame({"scene": scene_of[keep][order], "facility": facility[order],
                          "t": type_of[keep][order], "x": x[order], "y": y[order]})
    if max_markers is not None and len(starts) > max_markers:
        log.info("%d facility markers: the map counts them per %g m square (more than "
                 "planner.settings.map_max_facility_markers = %d)", len(starts),
                 settings.map_facility_cell_m if cell_m is None else cell_m, max_markers)
        yield from aggregated_facilities(table, starts, scenes,
                                         settings.map_facility_cell_m if cell_m is None
                                         else cell_m)
        return
    match = codes(shown["match"], {kind: code for code, kind in enumerate(MATCH_KINDS)})[order]
    names = shown["name"].fillna("").astype(str).to_numpy(dtype=object)[order]
    ids = ids[order]
    sizes = np.diff(np.r_[starts, len(table)])
    bounds = np.searchsorted(table["scene"].to_numpy()[starts], np.arange(len(scenes) + 1))
    for index, scene in enumerate(scenes):  # eight scenes: one JSON block each
        groups = slice(bounds[index], bounds[index + 1])
        first = starts[groups]
        rows = slice(first[0], first[-1] + sizes[groups][-1]) if len(first) else slice(0, 0)
        yield scene, json_object({
            "id": json_text(ids[first].tolist()), "x": json_text(table["x"].to_numpy()[first]
                                                                 .tolist()),
            "y": json_text(table["y"].to_numpy()[first].tolist()),
            "n": json_text(names[first].tolist()),
            "t": json_int_lists(table["t"].to_numpy()[rows], sizes[groups]),
            "m": json_int_lists(match[rows], sizes[groups]),
            "mk": json_text(list(MATCH_KINDS))}), len(first)


def _groups(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order sorting the rows by ``keys`` (first key first, stable) and the start of each group.

    The keys are folded into one integer when they fit in 63 bits: one stable
    sort of one key is several times faster than ``np.lexsort`` of four.
    """
    if len(keys[0]) == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    combined, room = np.zeros(len(keys[0]), dtype=np.int64), 1
    for key in keys:
        low, span = int(key.min()), int(key.max() - key.min()) + 1
        room *= span
        if room >= 2 ** 62:
            break
        combined = combined * span + (key - low)
    else:
        order = np.argsort(combined, kind="stable")
        return order, np.flatnonzero(np.r_[True, np.diff(combined[order]) != 0])
    order = np.lexsort(keys[::-1])
    change = np.zeros(len(order) - 1, dtype=bool)
    for key in keys:
        change |= np.diff(key[order]) != 0
    return order, np.flatnonzero(np.r_[True, change])


def aggregated_facilities(table: pd.DataFrame, starts: np.ndarray, scenes: list,
                          cell_m: float):
    """Per scene ``(scene, JSON, count)``: the facilities counted per square of ``cell_m``.

    ``table`` has one row per (scene, facility, type) with integer ``scene``,
    ``facility`` and type ``t`` and the point's ``x`` and ``y``, sorted by
    scene and facility; ``starts`` is the first row of each (scene,
    facility). One grid in degrees for every scene (squares of ``cell_m`` at
    the median latitude); per scene the occupied squares, sorted, as
    delta-coded integer indices ``c`` (``i0, j0, di1, dj1, ...``), with ``n``
    the facilities in each (a facility of several types once) and ``t`` the
    flat pairs ``type, count`` of the types there. ``planner_map.js`` draws
    one marker per square at its centre, ``((i + 0.5) * dx, (j + 0.5) * dy)``.
    """
    x, y = table["x"].to_numpy(float), table["y"].to_numpy(float)
    latitude = float(np.median(y)) if len(y) else 0.0
    dx = round(cell_m / (111_320.0 * max(np.cos(np.radians(latitude)), 0.01)), 9)
    dy = round(cell_m / 110_574.0, 9)
    # every row takes the square of its facility's first row (one square per facility)
    sizes = np.diff(np.r_[starts, len(table)])
    i = np.repeat(np.floor(x[starts] / dx).astype(np.int64), sizes)
    j = np.repeat(np.floor(y[starts] / dy).astype(np.int64), sizes)
    scene, facility, t = (table[name].to_numpy(np.int64) for name in ("scene", "facility", "t"))
    # facilities per square: the first rows of the facilities, grouped by (scene, i, j)
    order, square_starts = _groups(scene[starts], i[starts], j[starts])
    square_rows = starts[order[square_starts]]
    counts = np.diff(np.r_[square_starts, len(starts)])
    # (scene, i, j, type) pairs counted once per facility
    order, first = _groups(scene, facility, t)
    unique = order[first]
    order, pair_starts = _groups(scene[unique], i[unique], j[unique], t[unique])
    pair_rows = unique[order[pair_starts]]
    pair_counts = np.diff(np.r_[pair_starts, len(unique)])
    # the pairs of each square follow each other in the order of the squares
    pair_square = np.searchsorted(_square_key(scene, i, j, square_rows),
                                  _square_key(scene, i, j, pair_rows))
    per_square = np.bincount(pair_square, minlength=len(square_rows))
    scene_bounds = np.searchsorted(scene[square_rows], np.arange(len(scenes) + 1))
    for index, scene_item in enumerate(scenes):
        mine = slice(scene_bounds[index], scene_bounds[index + 1])
        rows = square_rows[mine]
        ij = np.column_stack([i[rows], j[rows]])
        deltas = np.diff(ij, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
        pairs = slice(*np.r_[0, np.cumsum(per_square)][[mine.start, mine.stop]])
        flat = np.column_stack([t[pair_rows[pairs]], pair_counts[pairs]]).ravel()
        number = counts[mine]
        yield scene_item, json_object({
            "g": json_object({"dx": json_text(dx), "dy": json_text(dy), "m": json_text(cell_m),
                              "c": json_text(deltas.ravel().tolist())}),
            "n": json_text(number.tolist()),
            "t": json_int_lists(flat, per_square[mine] * 2)}), int(number.sum())


def _square_key(scene: np.ndarray, i: np.ndarray, j: np.ndarray,
                rows: np.ndarray) -> np.ndarray:
    """One sortable integer per (scene, i, j) of ``rows``, in the order of the squares."""
    return np.ravel_multi_index((scene[rows], i[rows] - i.min(), j[rows] - j.min()),
                                (int(scene.max()) + 1, int(i.max() - i.min()) + 1,
                                 int(j.max() - j.min()) + 1))


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
    west, south = corner[:, 0], corner[:, 1]
    east, north = west + cell_m, south + cell_m
    # the rings of shapely.box(west, south, east, north), without building the squares
    rings = np.stack([np.column_stack(corners) for corners in
                      ((east, south), (east, north), (west, north), (west, south),
                       (east, south))], axis=1)
    xy = wgs84_coordinates(rings.reshape(-1, 2), metric.crs) if len(rings) else None
    squares = gpd.GeoSeries(np.full(len(rings), None), crs=metric.crs)
    return squares_payload(squares, dense[:, keys],
                           metric["type_id"].map(type_index).astype(int).tolist(), datum, cell_m,
                           xy)


def service_cells_payload(cells: gpd.GeoDataFrame, type_index: Mapping[str, int],
                          datum: Datum, xy: np.ndarray | None = None) -> tuple[str, set[str]]:
    """The ``service_cells`` layer (:func:`planner.reach_cells.service_cells`) for the map.

    Returns the JSON of :func:`squares_payload` and the types drawn. ``xy``:
    the squares' coordinates in WGS 84 when known.
    """
    drawn = [type_id for type_id in type_index if f"reach_{type_id}" in cells.columns]
    flags = cells[[f"reach_{type_id}" for type_id in drawn]].to_numpy(bool).T \
        if drawn else np.zeros((0, len(cells)), dtype=bool)
    cell_m = float(cells["cell_m"].iloc[0]) if "cell_m" in cells and len(cells) \
        else settings.service_cell_m
    return squares_payload(cells.geometry, flags, [type_index[t] for t in drawn], datum,
                           cell_m, xy), set(drawn)


def squares_payload(squares: gpd.GeoSeries, flags: np.ndarray, type_indices: list[int],
                    datum: Datum, cell_m: float, xy: np.ndarray | None = None) -> str:
    """Grid squares listed once, each type a base64 bitmask over them.

    Centres delta-coded like :func:`encode_polygons`, one half-width and
    half-height in degrees (those of the middle square); ``flags`` is
    ``(n_types, n_squares)``; ``xy`` the squares' coordinates in WGS 84 when
    known (:func:`polygon_rings`).
    """
    shown, rings = _shapes(squares, xy) if len(squares) else (np.array([], dtype=object), None)
    x, y = datum.coordinates(ring_interior_points(rings) if rings is not None else
                             shapely.get_coordinates(shapely.point_on_surface(shown)))
    hx = hy = 0.0
    if len(squares):
        middle = int(np.argmin(np.hypot(x - np.median(x), y - np.median(y))))
        west, south, east, north = shapely.bounds(datum.shift(_one_shape(shown, rings,
                                                                         middle)))[0]
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
