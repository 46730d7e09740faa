"""Encodings of the map's data: JSON text, compact geometry arrays, WGS 84 and the basemap's datum.

Column-wise helpers for :mod:`planner.map_data`: JSON built from whole arrays
(:func:`json_object`, :func:`json_int_lists`), polygons and lines as
quantised, delta-coded ragged arrays (:func:`encode_polygons`), geometries
moved to WGS 84 once per distinct coordinate (:func:`wgs84_coordinates`) and
to the basemap's datum (:class:`Datum`).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely

from planner import settings
from planner.coords import transform, transform_geometries
from planner.errors import PlannerError


def json_text(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def json_object(members: Mapping[str, str]) -> str:
    """A JSON object of members already encoded: ``{key: json text}`` → ``{"key":text,...}``.

    The same text as :func:`json_text` of the decoded object; lets large
    members be written straight from arrays.
    """
    return "{" + ",".join(f"{json_text(key)}:{text}" for key, text in members.items()) + "}"


def json_int_lists(values, lengths) -> str:
    """``values`` split into consecutive lists of ``lengths``, as :func:`json_text` writes them.

    ``[[1,2],[],[3]]`` for ``values=[1, 2, 3]``, ``lengths=[2, 0, 1]``: the
    integers become text and are joined by pyarrow, without a Python list
    per part (a city has hundreds of thousands of them).
    """
    lengths = np.asarray(lengths, dtype=np.int64)
    if len(lengths) == 0:
        return "[]"
    text = pc.cast(pa.array(np.asarray(values, dtype=np.int64)), pa.large_string())
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]), type=pa.int64())
    parts = pc.binary_join(pa.LargeListArray.from_arrays(offsets, text),
                           pa.scalar(",", pa.large_string()))
    whole = pc.binary_join(pa.LargeListArray.from_arrays(
        pa.array([0, len(parts)], type=pa.int64()), parts), pa.scalar("],[", pa.large_string()))
    return "[[" + whole[0].as_py() + "]]"


def codes(values: pd.Series, index: Mapping, missing: int = -1) -> np.ndarray:
    """``values.map(index)`` as integers, ``missing`` where absent.

    Each distinct value is looked up once (``Series.map`` of a city's
    hundreds of thousands of strings takes a second).
    """
    factor, distinct = pd.factorize(values)
    lookup = np.array([index.get(value, missing) for value in distinct] + [missing],
                      dtype=np.int64)
    return lookup[factor]  # -1 (NaN) picks the last entry


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


WGS84 = pyproj.CRS.from_epsg(4326)


@functools.lru_cache(maxsize=8)
def _to_wgs84(crs: pyproj.CRS) -> pyproj.Transformer:
    return pyproj.Transformer.from_crs(crs, 4326, always_xy=True)


def wgs84_geometries(frame: gpd.GeoDataFrame | gpd.GeoSeries) -> np.ndarray:
    """The geometries of ``frame`` in EPSG:4326, as ``frame.to_crs(4326)`` has them.

    The coordinates go through the same pyproj transformer as geopandas',
    without building a new frame.
    """
    geoms = frame.geometry.to_numpy()
    if frame.crs is None:
        message = "a map layer has no CRS"
        raise PlannerError(message)
    if len(geoms) == 0 or frame.crs.is_exact_same(WGS84):
        return geoms
    if shapely.has_z(geoms).any():
        return frame.to_crs(4326).geometry.to_numpy()
    return shapely.set_coordinates(geoms.copy(), wgs84_coordinates(
        shapely.get_coordinates(geoms), frame.crs))


def wgs84_coordinates(xy: np.ndarray, crs: pyproj.CRS) -> np.ndarray:
    """``(n, 2)`` coordinates in ``crs`` transformed to EPSG:4326 (longitude, latitude).

    Each distinct coordinate is transformed once: neighbouring grid squares
    and hexagons share their corners, so a city has a fifth as many distinct
    corners as coordinates (the result is the same, point by point).
    """
    inverse, distinct = pd.factorize(np.ascontiguousarray(xy, dtype=float)
                                     .view(np.complex128).ravel())
    x, y = _to_wgs84(crs).transform(distinct.real.copy(), distinct.imag.copy())
    return np.column_stack([x, y])[inverse]


class Datum:
    """Shifts WGS 84 longitude/latitude to the basemap's datum."""

    def __init__(self, datum: str) -> None:
        self.datum = datum

    def shift(self, geoms: np.ndarray) -> np.ndarray:
        """WGS 84 geometries in the basemap's datum."""
        if self.datum != "wgs84":
            geoms = transform_geometries(geoms, "wgs84", self.datum)
        return geoms

    def geometries(self, frame: gpd.GeoDataFrame) -> np.ndarray:
        return self.shift(frame.geometry.to_numpy())

    def coordinates(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """WGS 84 ``(n, 2)`` coordinates in the basemap's datum, rounded for the page."""
        x, y = xy[:, 0], xy[:, 1]
        if self.datum != "wgs84":
            x, y = transform(x, y, "wgs84", self.datum)
        return np.round(x, settings.map_point_digits), np.round(y, settings.map_point_digits)

    def points(self, frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
        """A point on the surface of each geometry of ``frame`` (EPSG:4326), rounded."""
        return self.coordinates(shapely.get_coordinates(
            shapely.point_on_surface(frame.geometry.to_numpy())))

    def points_of(self, frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`points` of ``frame`` in any CRS: points have only their coordinates moved."""
        geoms = frame.geometry.to_numpy()
        if len(geoms) and frame.crs is not None and not shapely.has_z(geoms).any() and \
                (shapely.get_type_id(geoms) == shapely.GeometryType.POINT).all():
            xy = shapely.get_coordinates(geoms)
            if not frame.crs.is_exact_same(WGS84):
                xy = wgs84_coordinates(xy, frame.crs)
            return self.coordinates(xy)
        return self.coordinates(shapely.get_coordinates(
            shapely.point_on_surface(wgs84_geometries(frame))))


def polygon_rings(frame: gpd.GeoDataFrame | gpd.GeoSeries,
                  xy: np.ndarray | None = None) -> np.ndarray | None:
    """``(n, k, 2)`` WGS 84 coordinates of polygons of one ring of ``k`` coordinates each.

    The coordinates :func:`wgs84_geometries` gives them, without building the
    geometries; ``xy`` are those coordinates when already known (in the order
    of ``shapely.get_coordinates``). None when a geometry is not such a
    polygon (holes, other types, 3-D, missing or empty ones, rings of
    different lengths).
    """
    geoms = frame.geometry.to_numpy()
    n = len(geoms)
    if n == 0:
        return None
    if xy is not None:
        return xy.reshape(n, -1, 2) if len(xy) % n == 0 else None
    if frame.crs is None:
        message = "a map layer has no CRS"
        raise PlannerError(message)
    counts = shapely.get_num_coordinates(geoms)
    if ((shapely.get_type_id(geoms) != shapely.GeometryType.POLYGON).any()
            or (counts != counts[0]).any() or counts[0] == 0
            or shapely.get_num_interior_rings(geoms).any() or shapely.has_z(geoms).any()):
        return None
    xy = shapely.get_coordinates(geoms)
    if not frame.crs.is_exact_same(WGS84):
        xy = wgs84_coordinates(xy, frame.crs)
    return xy.reshape(n, -1, 2)


def ring_centroids(rings: np.ndarray) -> np.ndarray:
    """``shapely.centroid`` of the polygons of closed ``rings`` ``(n, k, 2)``: ``(n, 2)``.

    GEOS' sums of triangles fanned from each ring's first coordinate, in
    its order of operations (the same numbers, bit for bit); the ring's
    orientation only flips the sign of both sums, which cancels. Polygons
    of no area (where GEOS takes the centroid of the lines) go to shapely.
    """
    x, y = rings[..., 0], rings[..., 1]
    base_x, base_y = x[:, 0], y[:, 0]
    sum_x, sum_y, area = (np.zeros(len(rings)) for _ in range(3))
    for i in range(rings.shape[1] - 1):  # a few corners: one column of triangles each
        x1, y1, x2, y2 = x[:, i], y[:, i], x[:, i + 1], y[:, i + 1]
        area2 = (x1 - base_x) * (y2 - base_y) - (x2 - base_x) * (y1 - base_y)
        sum_x += area2 * (base_x + x1 + x2)
        sum_y += area2 * (base_y + y1 + y2)
        area += area2
    with np.errstate(divide="ignore", invalid="ignore"):
        centres = np.column_stack([sum_x / 3 / area, sum_y / 3 / area])
    other = ~(np.abs(area) > 0) | ~np.isfinite(centres).all(axis=1)
    if other.any():
        centres[other] = shapely.get_coordinates(shapely.centroid(shapely.polygons(
            rings[other])))
    return centres


def ring_interior_points(rings: np.ndarray) -> np.ndarray:
    """``shapely.point_on_surface`` of the polygons of closed ``rings`` ``(n, k, 2)``: ``(n, 2)``.

    GEOS' interior point of an area: the middle of the widest section of a
    horizontal scan line halfway between the two vertex heights nearest the
    middle of the extent, with its crossings computed as GEOS computes them
    (the same numbers, bit for bit). A ring the scan line does not cross
    exactly twice (not convex) goes to shapely.
    """
    x, y = rings[..., 0], rings[..., 1]
    low, high = y.min(axis=1), y.max(axis=1)
    middle = (low + high) / 2.0
    below = y <= middle[:, None]
    low = np.maximum(low, np.where(below, y, -np.inf).max(axis=1))
    high = np.minimum(high, np.where(below, np.inf, y).min(axis=1))
    scan = ((high + low) / 2.0)[:, None]
    x0, y0, x1, y1 = x[:, :-1], y[:, :-1], x[:, 1:], y[:, 1:]
    # GEOS counts an edge that crosses the line, not horizontal, at its upper end only
    counted = (~(((y0 > scan) & (y1 > scan)) | ((y0 < scan) & (y1 < scan))) & (y0 != y1)
               & ~((y0 == scan) & (y1 < scan)) & ~((y1 == scan) & (y0 < scan)))
    with np.errstate(divide="ignore", invalid="ignore"):
        slope = (y1 - y0) / (x1 - x0)
        crossing = np.where(x0 == x1, x0, x0 + ((scan - y0) / slope))
    crossing = np.sort(np.where(counted, crossing, np.inf), axis=1)
    with np.errstate(invalid="ignore"):  # rings crossed fewer than twice: inf - inf
        points = np.column_stack([(crossing[:, 0] + crossing[:, 1]) / 2.0, scan[:, 0]])
        # GEOS keeps the first coordinate where the section has no width
        other = ((counted.sum(axis=1) != 2) | ~(crossing[:, 1] - crossing[:, 0] > 0)  # noqa: PLR2004
                 | ~np.isfinite(points).all(axis=1))
    if other.any():
        points[other] = shapely.get_coordinates(shapely.point_on_surface(shapely.polygons(
            rings[other])))
    return points
