"""Coordinate transforms between WGS 84, GCJ-02 and BD-09.

Chinese web maps do not publish coordinates in WGS 84.  Amap (高德), Tencent and
Google China use GCJ-02 (国测局坐标, the "Mars" datum), an obfuscated datum
obtained from WGS 84 by a non-linear offset of a few hundred metres; Baidu adds
a further offset on top of GCJ-02 called BD-09.

This module implements the widely published algorithms (as found in the leaked
reference code and re-implemented by e.g. ``eviltransform`` and
``coordtransform``), vectorised with NumPy:

* WGS 84 -> GCJ-02 uses the Krasovsky 1940 ellipsoid (``a = 6378245.0``,
  ``ee = 0.00669342162296594323``) and the standard ``transformLat`` /
  ``transformLon`` polynomials.  Points outside the rough bounding box of China
  (see :func:`out_of_china`) are returned unchanged.
* GCJ-02 -> WGS 84 is the *exact* inverse, computed by fixed-point iteration
  (not the usual one-step approximation, which can be off by a couple of
  metres).
* GCJ-02 <-> BD-09 uses the published Baidu formula with
  ``x_pi = pi * 3000 / 180`` and the ``+0.0065`` / ``+0.006`` offsets; the
  published inverse is refined by iteration so that round trips agree to far
  below a centimetre.  The Baidu offset is applied everywhere (it has no
  out-of-China test), exactly as in the published code.

Conventions
-----------
All functions take longitude first, then latitude, in decimal degrees.  Inputs
may be Python scalars, sequences or arrays; they are converted to ``float64``
and broadcast against each other.  Outputs are always freshly allocated
``float64`` :class:`numpy.ndarray` objects of the broadcast shape -- scalar
inputs give 0-d arrays (use ``float(x)`` or ``x.item()`` to get a Python
float).  NaN inputs give NaN outputs without emitting floating-point warnings.
"""

from __future__ import annotations

import math
import re
import sys
from collections.abc import Callable
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = [
    "CRS_NAMES",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "transform",
    "transform_geometries",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

FloatArray: TypeAlias = NDArray[np.float64]
BoolArray: TypeAlias = NDArray[np.bool_]
LonLat: TypeAlias = tuple[FloatArray, FloatArray]

#: Names of the supported coordinate reference systems.
CRS_NAMES: tuple[str, str, str] = ("wgs84", "gcj02", "bd09")

#: Semi-major axis of the Krasovsky 1940 ellipsoid used by GCJ-02, in metres.
KRASOVSKY_A: float = 6378245.0
#: First eccentricity squared of the Krasovsky 1940 ellipsoid.
KRASOVSKY_EE: float = 0.00669342162296594323
#: Constant of the Baidu BD-09 formula.
X_PI: float = math.pi * 3000.0 / 180.0

# Rough bounding box of China used by the published algorithm.
_CHINA_LON_MIN = 72.004
_CHINA_LON_MAX = 137.8347
_CHINA_LAT_MIN = 0.8293
_CHINA_LAT_MAX = 55.8271

# Baidu offsets of the published BD-09 formula.
_BD_DLON = 0.0065
_BD_DLAT = 0.006

# Tolerance (degrees) used to refine the published BD-09 -> GCJ-02 inverse.
# 1e-10 degree is about 0.01 mm on the ground.
_BD_TOLERANCE_DEG = 1e-10
_BD_MAX_ITER = 10


# ---------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------
def _as_float_arrays(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert ``lon`` and ``lat`` to broadcast ``float64`` arrays.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees.

    Returns
    -------
    lon, lat : numpy.ndarray
        Read-only broadcast views (never modified by this module).
    """
    lon_arr = np.asarray(lon, dtype=np.float64)
    lat_arr = np.asarray(lat, dtype=np.float64)
    lon_b, lat_b = np.broadcast_arrays(lon_arr, lat_arr)
    return lon_b, lat_b


def _finish(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Return fresh ``float64`` arrays (0-d for scalar results)."""
    return np.array(lon, dtype=np.float64), np.array(lat, dtype=np.float64)


def _transform_lat(x: FloatArray, y: FloatArray) -> FloatArray:
    """Published ``transformLat`` polynomial (``x = lon - 105``, ``y = lat - 35``)."""
    ret = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    return ret


def _transform_lon(x: FloatArray, y: FloatArray) -> FloatArray:
    """Published ``transformLon`` polynomial (``x = lon - 105``, ``y = lat - 35``)."""
    ret = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    ret += (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    ret += (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    ret += (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    return ret


def _gcj_delta(lon: FloatArray, lat: FloatArray) -> LonLat:
    """GCJ-02 offset ``(dlon, dlat)`` in degrees at WGS 84 position ``(lon, lat)``.

    This is the unmasked published formula: it does not apply the
    out-of-China test.
    """
    dlat = _transform_lat(lon - 105.0, lat - 35.0)
    dlon = _transform_lon(lon - 105.0, lat - 35.0)
    radlat = lat / 180.0 * np.pi
    magic = np.sin(radlat)
    magic = 1.0 - KRASOVSKY_EE * magic * magic
    sqrtmagic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((KRASOVSKY_A * (1.0 - KRASOVSKY_EE)) / (magic * sqrtmagic) * np.pi)
    dlon = (dlon * 180.0) / (KRASOVSKY_A / sqrtmagic * np.cos(radlat) * np.pi)
    return dlon, dlat


def _gcj_forward(lon: FloatArray, lat: FloatArray) -> LonLat:
    """Unmasked WGS 84 -> GCJ-02 (no out-of-China test)."""
    dlon, dlat = _gcj_delta(lon, lat)
    return lon + dlon, lat + dlat


def _bd_forward(lon: FloatArray, lat: FloatArray) -> LonLat:
    """Published GCJ-02 -> BD-09 formula."""
    z = np.sqrt(lon * lon + lat * lat) + 0.00002 * np.sin(lat * X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * X_PI)
    return z * np.cos(theta) + _BD_DLON, z * np.sin(theta) + _BD_DLAT


def _bd_published_inverse(lon: FloatArray, lat: FloatArray) -> LonLat:
    """Published (approximate) BD-09 -> GCJ-02 formula."""
    x = lon - _BD_DLON
    y = lat - _BD_DLAT
    z = np.sqrt(x * x + y * y) - 0.00002 * np.sin(y * X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * X_PI)
    return z * np.cos(theta), z * np.sin(theta)


def _check_iteration_args(tolerance_deg: float, max_iter: int) -> None:
    if not (tolerance_deg > 0.0 and math.isfinite(tolerance_deg)):
        msg = f"tolerance_deg must be a positive finite number, got {tolerance_deg!r}"
        raise ValueError(msg)
    if max_iter < 0:
        msg = f"max_iter must be >= 0, got {max_iter!r}"
        raise ValueError(msg)


def _fixed_point_inverse(
    forward: Callable[[FloatArray, FloatArray], LonLat],
    target_lon: FloatArray,
    target_lat: FloatArray,
    guess_lon: FloatArray,
    guess_lat: FloatArray,
    tolerance_deg: float,
    max_iter: int,
) -> LonLat:
    """Solve ``forward(x) == target`` for 1-d arrays by fixed-point iteration.

    Iterates ``x <- x - (forward(x) - target)``, which converges quickly
    because ``forward`` is the identity plus a slowly varying offset.  Points
    are dropped from the working set as soon as their residual falls below
    ``tolerance_deg``, so the loop (over iterations, never over points) only
    does work for unconverged points.  Points that do not converge within
    ``max_iter`` iterations keep their last iterate.
    """
    res_lon = guess_lon.copy()
    res_lat = guess_lat.copy()
    pos = np.arange(res_lon.size)
    x_lon, x_lat = guess_lon, guess_lat
    t_lon, t_lat = target_lon, target_lat
    for _ in range(max_iter):
        if pos.size == 0:
            break
        f_lon, f_lat = forward(x_lon, x_lat)
        e_lon = f_lon - t_lon
        e_lat = f_lat - t_lat
        x_lon = x_lon - e_lon
        x_lat = x_lat - e_lat
        res_lon[pos] = x_lon
        res_lat[pos] = x_lat
        # ``>=`` is False for NaN, so non-finite residuals also leave the set.
        keep = np.maximum(np.abs(e_lon), np.abs(e_lat)) >= tolerance_deg
        pos = pos[keep]
        x_lon, x_lat, t_lon, t_lat = x_lon[keep], x_lat[keep], t_lon[keep], t_lat[keep]
    return res_lon, res_lat


# ---------------------------------------------------------------------------
# public point transforms
# ---------------------------------------------------------------------------
def out_of_china(lon: ArrayLike, lat: ArrayLike) -> BoolArray:
    """Test whether points lie outside the rough bounding box of China.

    This is the box used by the published GCJ-02 algorithm: longitude
    72.004--137.8347 and latitude 0.8293--55.8271 (bounds inclusive).  It also
    covers parts of neighbouring countries; that is how the published
    algorithm behaves.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees, broadcastable against each other.

    Returns
    -------
    numpy.ndarray of bool
        ``True`` where the point is outside the box.  NaN coordinates count as
        *inside* (so that NaN propagates through the transforms).  Scalar
        inputs give a 0-d array.
    """
    lon_a, lat_a = _as_float_arrays(lon, lat)
    out = (
        (lon_a < _CHINA_LON_MIN)
        | (lon_a > _CHINA_LON_MAX)
        | (lat_a < _CHINA_LAT_MIN)
        | (lat_a > _CHINA_LAT_MAX)
    )
    return np.asarray(out, dtype=np.bool_)


def wgs84_to_gcj02(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert WGS 84 coordinates to GCJ-02 (Amap / Tencent "Mars" datum).

    Uses the published algorithm on the Krasovsky 1940 ellipsoid.  Points
    outside China (see :func:`out_of_china`) are returned unchanged.

    Parameters
    ----------
    lon, lat : array_like
        WGS 84 longitudes and latitudes in degrees, broadcastable.

    Returns
    -------
    lon, lat : numpy.ndarray
        GCJ-02 coordinates as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).
    """
    lon_a, lat_a = _as_float_arrays(lon, lat)
    with np.errstate(all="ignore"):
        outside = out_of_china(lon_a, lat_a)
        g_lon, g_lat = _gcj_forward(lon_a, lat_a)
        return _finish(np.where(outside, lon_a, g_lon), np.where(outside, lat_a, g_lat))


def gcj02_to_wgs84(
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    tolerance_deg: float = 1e-9,
    max_iter: int = 30,
) -> LonLat:
    """Convert GCJ-02 coordinates to WGS 84 (exact inverse).

    Starts from the classic one-step approximation ``wgs = gcj - delta(gcj)``
    and refines it by the fixed-point iteration
    ``wgs <- wgs - (forward(wgs) - gcj)`` for all points at once, until the
    forward-mapped residual is below ``tolerance_deg`` in both coordinates.
    The forward map used is the unmasked published formula, so the result is
    the exact inverse of :func:`wgs84_to_gcj02` everywhere except within a few
    hundred metres of the bounding-box edge.  Points outside China (tested on
    the GCJ-02 input) are returned unchanged.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitudes and latitudes in degrees, broadcastable.
    tolerance_deg : float, default 1e-9
        Convergence threshold on the residual, in degrees (1e-9 degree is
        about 0.1 mm).  Must be positive.
    max_iter : int, default 30
        Maximum number of refinement iterations.  ``0`` returns the classic
        one-step approximation.  Points that have not converged by then
        (which does not happen for finite inputs in practice) keep their last
        iterate; no warning is raised.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS 84 coordinates as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).

    Raises
    ------
    ValueError
        If ``tolerance_deg`` is not positive or ``max_iter`` is negative.
    """
    _check_iteration_args(tolerance_deg, max_iter)
    lon_a, lat_a = _as_float_arrays(lon, lat)
    # C-ordered copies, so that ``reshape(-1)`` below returns writable views.
    res_lon = np.array(lon_a, dtype=np.float64, order="C")
    res_lat = np.array(lat_a, dtype=np.float64, order="C")
    flat_lon = res_lon.reshape(-1)
    flat_lat = res_lat.reshape(-1)
    with np.errstate(all="ignore"):
        inside = ~out_of_china(flat_lon, flat_lat)
        finite = np.isfinite(flat_lon) & np.isfinite(flat_lat)
        active = np.flatnonzero(inside & finite)
        t_lon = flat_lon[active]
        t_lat = flat_lat[active]
        d_lon, d_lat = _gcj_delta(t_lon, t_lat)
        w_lon, w_lat = _fixed_point_inverse(
            _gcj_forward, t_lon, t_lat, t_lon - d_lon, t_lat - d_lat, tolerance_deg, max_iter
        )
    flat_lon[active] = w_lon
    flat_lat[active] = w_lat
    # A NaN in either coordinate counts as "inside" China (comparisons with NaN
    # are False); as in the forward transform, both outputs are then NaN.
    nan_pair = inside & ~finite
    flat_lon[nan_pair] = np.nan
    flat_lat[nan_pair] = np.nan
    return _finish(res_lon, res_lat)


def gcj02_to_bd09(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert GCJ-02 coordinates to BD-09 (Baidu).

    Uses the published formula with ``x_pi = pi * 3000 / 180`` and the
    ``+0.0065`` / ``+0.006`` degree offsets.  It is applied to every point,
    inside China or not, as in the published code.

    Parameters
    ----------
    lon, lat : array_like
        GCJ-02 longitudes and latitudes in degrees, broadcastable.

    Returns
    -------
    lon, lat : numpy.ndarray
        BD-09 coordinates as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).
    """
    lon_a, lat_a = _as_float_arrays(lon, lat)
    with np.errstate(all="ignore"):
        return _finish(*_bd_forward(lon_a, lat_a))


def bd09_to_gcj02(
    lon: ArrayLike,
    lat: ArrayLike,
    *,
    tolerance_deg: float = _BD_TOLERANCE_DEG,
    max_iter: int = _BD_MAX_ITER,
) -> LonLat:
    """Convert BD-09 (Baidu) coordinates to GCJ-02.

    Starts from the published inverse formula (accurate to a few decimetres
    at most) and refines it by fixed-point iteration against
    :func:`gcj02_to_bd09`, so that ``gcj02_to_bd09(*bd09_to_gcj02(lon, lat))``
    reproduces the input to well below a centimetre.

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitudes and latitudes in degrees, broadcastable.
    tolerance_deg : float, default 1e-10
        Convergence threshold on the residual, in degrees.  Must be positive.
    max_iter : int, default 10
        Maximum number of refinement iterations; ``0`` returns the plain
        published inverse.

    Returns
    -------
    lon, lat : numpy.ndarray
        GCJ-02 coordinates as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).

    Raises
    ------
    ValueError
        If ``tolerance_deg`` is not positive or ``max_iter`` is negative.
    """
    _check_iteration_args(tolerance_deg, max_iter)
    lon_a, lat_a = _as_float_arrays(lon, lat)
    with np.errstate(all="ignore"):
        g_lon, g_lat = _bd_published_inverse(lon_a, lat_a)
        # C-ordered copies, so that ``reshape(-1)`` below returns writable views.
        res_lon = np.array(g_lon, dtype=np.float64, order="C")
        res_lat = np.array(g_lat, dtype=np.float64, order="C")
        flat_lon = res_lon.reshape(-1)
        flat_lat = res_lat.reshape(-1)
        t_lon = lon_a.reshape(-1)
        t_lat = lat_a.reshape(-1)
        active = np.flatnonzero(np.isfinite(flat_lon) & np.isfinite(flat_lat))
        r_lon, r_lat = _fixed_point_inverse(
            _bd_forward,
            t_lon[active],
            t_lat[active],
            flat_lon[active],
            flat_lat[active],
            tolerance_deg,
            max_iter,
        )
    flat_lon[active] = r_lon
    flat_lat[active] = r_lat
    return _finish(res_lon, res_lat)


def wgs84_to_bd09(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert WGS 84 coordinates to BD-09 (via GCJ-02).

    Parameters
    ----------
    lon, lat : array_like
        WGS 84 longitudes and latitudes in degrees, broadcastable.

    Returns
    -------
    lon, lat : numpy.ndarray
        BD-09 coordinates as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).  Outside China only the Baidu offset is
        applied.
    """
    return gcj02_to_bd09(*wgs84_to_gcj02(lon, lat))


def bd09_to_wgs84(lon: ArrayLike, lat: ArrayLike) -> LonLat:
    """Convert BD-09 coordinates to WGS 84 (via GCJ-02, both steps exact).

    Parameters
    ----------
    lon, lat : array_like
        BD-09 longitudes and latitudes in degrees, broadcastable.

    Returns
    -------
    lon, lat : numpy.ndarray
        WGS 84 coordinates as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).
    """
    return gcj02_to_wgs84(*bd09_to_gcj02(lon, lat))


# ---------------------------------------------------------------------------
# dispatch
# ---------------------------------------------------------------------------
_PAIRS: dict[tuple[str, str], Callable[[ArrayLike, ArrayLike], LonLat]] = {
    ("wgs84", "gcj02"): wgs84_to_gcj02,
    ("gcj02", "wgs84"): gcj02_to_wgs84,
    ("gcj02", "bd09"): gcj02_to_bd09,
    ("bd09", "gcj02"): bd09_to_gcj02,
    ("wgs84", "bd09"): wgs84_to_bd09,
    ("bd09", "wgs84"): bd09_to_wgs84,
}


def _normalise_name(name: object, role: str) -> str:
    """Map a CRS name to one of :data:`CRS_NAMES` or raise ``ValueError``.

    Matching ignores case, surrounding blanks, ``-`` and ``_`` (so
    ``"GCJ-02"`` and ``"WGS_84"`` are accepted).
    """
    if isinstance(name, str):
        key = re.sub(r"[\s_-]", "", name).lower()
        if key in CRS_NAMES:
            return key
    msg = f"unknown {role} CRS name {name!r}; expected one of {', '.join(CRS_NAMES)}"
    raise ValueError(msg)


def transform(lon: ArrayLike, lat: ArrayLike, src: str, dst: str) -> LonLat:
    """Transform coordinates between any two of :data:`CRS_NAMES`.

    Parameters
    ----------
    lon, lat : array_like
        Longitudes and latitudes in degrees in ``src``, broadcastable.
    src, dst : str
        Source and destination CRS: ``"wgs84"``, ``"gcj02"`` or ``"bd09"``
        (case, ``-`` and ``_`` are ignored).

    Returns
    -------
    lon, lat : numpy.ndarray
        Coordinates in ``dst`` as ``float64`` arrays of the broadcast shape
        (0-d for scalar input).  When ``src == dst`` they are copies of the
        input.

    Raises
    ------
    ValueError
        If ``src`` or ``dst`` is not a known CRS name (the message names it).
    """
    src_n = _normalise_name(src, "source")
    dst_n = _normalise_name(dst, "destination")
    if src_n == dst_n:
        return _finish(*_as_float_arrays(lon, lat))
    return _PAIRS[(src_n, dst_n)](lon, lat)


def _shapely_include_z() -> bool | None:
    """``include_z`` value keeping each geometry's dimensionality, if supported."""
    import shapely

    match = re.match(r"(\d+)\.(\d+)", shapely.__version__)
    if match and (int(match.group(1)), int(match.group(2))) >= (2, 1):
        return None
    return False


def transform_geometries(geoms: Any, src: str, dst: str) -> Any:
    """Transform every coordinate of shapely geometries between two CRS.

    The work is done by :func:`shapely.transform`, which hands all coordinates
    of all geometries to one vectorised call of :func:`transform`.  Z values,
    if present, are kept unchanged (with shapely >= 2.1; older versions drop
    them).

    Parameters
    ----------
    geoms : shapely.Geometry, array_like, GeoSeries or GeoDataFrame
        Geometries (a single one, an array-like of them, or a geopandas
        container) with lon/lat coordinates in ``src``.  Missing values
        (``None``) are passed through.
    src, dst : str
        Source and destination CRS names, see :func:`transform`.

    Returns
    -------
    same type as ``geoms``
        A single geometry for a single geometry, a :class:`numpy.ndarray` of
        geometries for array-like input, a GeoSeries with the same index,
        name and ``crs`` for a GeoSeries, and a copy of a GeoDataFrame with its
        active geometry column transformed.  The input is not modified.

    Raises
    ------
    ValueError
        If ``src`` or ``dst`` is not a known CRS name.
    """
    import shapely

    src_n = _normalise_name(src, "source")
    dst_n = _normalise_name(dst, "destination")

    # geopandas is only relevant if it is already imported by the caller.
    gpd = sys.modules.get("geopandas")
    if gpd is not None:
        if isinstance(geoms, gpd.GeoDataFrame):
            out = geoms.copy()
            col = geoms.geometry.name
            out[col] = transform_geometries(geoms.geometry, src_n, dst_n)
            return out
        if isinstance(geoms, gpd.GeoSeries):
            values = np.asarray(geoms.array, dtype=object)
            new = transform_geometries(values, src_n, dst_n)
            return gpd.GeoSeries(new, index=geoms.index, crs=geoms.crs, name=geoms.name)

    def _fn(coords: FloatArray) -> FloatArray:
        out_coords = np.array(coords, dtype=np.float64, copy=True)
        x, y = transform(coords[:, 0], coords[:, 1], src_n, dst_n)
        out_coords[:, 0] = x
        out_coords[:, 1] = y
        return out_coords

    if src_n == dst_n:
        # Still return new objects so callers never alias the input.
        return shapely.transform(
            geoms, lambda c: np.array(c, copy=True), include_z=_shapely_include_z()
        )
    return shapely.transform(geoms, _fn, include_z=_shapely_include_z())
