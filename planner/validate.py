"""Checks that cost seconds, run before the analysis.

Every check raises :class:`~planner.errors.PlannerError` with one line naming
the option or file and the problem, or logs one warning line for what can be
repaired: numeric options (finite, in range), ``--crs`` (valid, projected, in
metres, true to scale within the extract), the local metric CRS of any extract
(UTM, or an azimuthal equidistant projection near the poles), the planner's
layers (CRS declared or plausibly inferred, geometry repaired or rejected with
its rows, overlap with the area) and populations (finite, non-negative).

Rows are numbered from 1, in the order of the file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from pyproj import CRS
from pyproj.exceptions import CRSError

from planner import settings
from planner.errors import PlannerError
from planner.i18n import message as _text

log = logging.getLogger(__name__)

Bounds = tuple[float, float, float, float]
#: Rows named in a message at most.
SHOWN_ROWS = 5
#: Geometry kinds of a layer: what each accepts.
KINDS = {"polygon": ("Polygon", "MultiPolygon"), "point": ("Point", "MultiPoint"),
         "any": ("Point", "MultiPoint", "Polygon", "MultiPolygon", "LineString",
                 "MultiLineString")}


_TYPE_IDS = {"Point": 0, "LineString": 1, "Polygon": 3, "MultiPoint": 4, "MultiLineString": 5,
             "MultiPolygon": 6}


def _rows(positions: Sequence[int] | np.ndarray) -> str:
    """``2, 5, 9 …`` for the 0-based positions, 1-based and at most :data:`SHOWN_ROWS`."""
    positions = list(positions)
    shown = ", ".join(str(int(row) + 1) for row in positions[:SHOWN_ROWS])
    return shown + (f" … ({len(positions)})" if len(positions) > SHOWN_ROWS else "")


def _where(where: str | None) -> str:
    return f"{where}: " if where else ""


# ----------------------------------------------------------------------------- numbers

#: Range of each numeric option: (minimum, maximum, minimum allowed itself,
#: integer, unit). ``None`` is no bound. Batch fields use the same names
#: without dashes (``walk_speed``).
OPTION_RANGES: dict[str, tuple[float | None, float | None, bool, bool, str]] = {
    "--walk-speed": (None, None, True, False, "m/s"),  # bounds from settings, see below
    "--tile-m": (None, None, True, False, "m"),
    "--time-limit": (0.0, None, False, False, "s"),
    "--count": (1, None, True, True, ""),
    "--workers": (1, None, True, True, ""),
    "--threshold-m": (0.0, None, False, False, "m"),
    "--spacing": (0.0, None, False, False, "m"),
    "--max-per-type": (0, None, True, True, ""),
    "--top": (0, None, True, True, ""),
    "--bbox-degrees": (-180.0, 180.0, True, False, "°"),
}


def _option_range(option: str) -> tuple[float | None, float | None, bool, bool, str]:
    key = "--" + option.lstrip("-").replace("_", "-")
    if key == "--walk-speed":
        return (settings.min_walk_speed_m_per_s, settings.max_walk_speed_m_per_s, True, False,
                "m/s")
    if key == "--tile-m":
        return settings.min_tile_m, None, True, False, "m"
    if key not in OPTION_RANGES:
        message = f"no range is known for option {option!r}"
        raise KeyError(message)
    return OPTION_RANGES[key]


def _describe(low, high, low_inclusive, unit) -> tuple[str, str]:
    unit = f" {unit}" if unit else ""
    if high is None:
        sign = "≥" if low_inclusive else ">"
        return f"{sign} {low:g}{unit}", f"{sign} {low:g}{unit}"
    return f"between {low:g} and {high:g}{unit}", f"在 {low:g} 到 {high:g}{unit} 之间"


def check_number(value, option: str, *, where: str | None = None) -> float | int | None:
    """A numeric option or field, checked against :data:`OPTION_RANGES`.

    Parameters
    ----------
    value
        The value given (a number, or text from a batch file); None passes.
    option
        ``--walk-speed``, ``walk_speed``, ``--tile-m``, ``--time-limit``,
        ``--count``, ``--workers`` …; named in the message.
    where
        Prefix of the message, e.g. ``"areas.toml: area 'bupt'"``.

    Returns
    -------
    float, int or None
        The value as a number.

    Raises
    ------
    PlannerError
        Not a number, not finite, not an integer where one is needed, or out of range.
    """
    if value is None:
        return None
    low, high, low_inclusive, integer, unit = _option_range(option)
    wanted_en, wanted_zh = _describe(low, high, low_inclusive, unit)
    try:
        if isinstance(value, bool):
            raise TypeError(value)
        number = float(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError) as error:
        message = _text(f"{_where(where)}{option} must be a number {wanted_en} (got {value!r})",
                        f"{_where(where)}{option} 必须是数值, {wanted_zh} (实际为 {value!r})")
        raise PlannerError(message) from error
    too_low = low is not None and (number < low or (number == low and not low_inclusive))
    too_high = high is not None and number > high
    if not math.isfinite(number) or too_low or too_high:
        message = _text(f"{_where(where)}{option} must be {wanted_en} (got {value!r})",
                        f"{_where(where)}{option} 必须{wanted_zh} (实际为 {value!r})")
        raise PlannerError(message)
    if integer:
        if number != int(number):
            message = _text(f"{_where(where)}{option} must be a whole number (got {value!r})",
                            f"{_where(where)}{option} 必须是整数 (实际为 {value!r})")
            raise PlannerError(message)
        return int(number)
    return number


def check_options(values: dict[str, object], *, where: str | None = None) -> dict[str, object]:
    """:func:`check_number` on every option of ``values`` (name → value); returns the numbers."""
    return {option: check_number(value, option, where=where) for option, value in values.items()}


def check_bbox(bbox: Sequence[float] | None, *, option: str = "--bbox") -> Bounds | None:
    """WEST SOUTH EAST NORTH in degrees: finite, on the globe, west < east, south < north."""
    if bbox is None:
        return None
    try:
        west, south, east, north = (float(value) for value in bbox)
    except (TypeError, ValueError) as error:
        message = _text(f"{option} needs four numbers WEST SOUTH EAST NORTH",
                        f"{option} 需要四个数值: 西 南 东 北")
        raise PlannerError(message) from error
    on_globe = (all(math.isfinite(v) for v in (west, south, east, north))
                and -180 <= west <= 180 and -180 <= east <= 180
                and -90 <= south <= 90 and -90 <= north <= 90)
    if not on_globe or west >= east or south >= north:
        message = _text(f"{option} {west:g} {south:g} {east:g} {north:g} is not a box on the "
                        "globe (WEST SOUTH EAST NORTH, west < east, south < north)",
                        f"{option} {west:g} {south:g} {east:g} {north:g} 不是有效范围 "
                        "(西 南 东 北, 西 < 东, 南 < 北)")
        raise PlannerError(message)
    return west, south, east, north


# ----------------------------------------------------------------------------- CRS


def parse_crs(value, *, option: str = "--crs") -> CRS:
    """A CRS from user input (``EPSG:4547``, ``4547``, WKT, PROJ), or one line naming ``option``."""
    try:
        return CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError) as error:
        message = _text(f"{option} {value!r} is not a known coordinate reference system "
                        "(e.g. EPSG:4547)",
                        f"{option} {value!r} 不是已知的坐标参考系 (如 EPSG:4547)")
        raise PlannerError(message) from error


def _scale_error(crs: CRS, bounds: Bounds) -> float:
    """Largest length distortion of ``crs`` at the corners and centre of ``bounds``."""
    west, south, east, north = bounds
    lon = np.array([west, east, west, east, (west + east) / 2])
    lat = np.array([south, south, north, north, (south + north) / 2])
    try:
        factors = pyproj.Proj(crs).get_factors(lon, lat)
    except (CRSError, pyproj.exceptions.ProjError):
        return math.inf
    scales = np.concatenate([np.asarray(factors.meridional_scale),
                             np.asarray(factors.parallel_scale)])
    return float(np.max(np.abs(scales - 1))) if np.isfinite(scales).all() else math.inf


def check_metric_crs(value, bounds: Bounds | None = None, *, option: str = "--crs") -> CRS:
    """A CRS to compute in: valid, projected, in metres, true to scale within ``bounds``.

    Parameters
    ----------
    value
        The ``--crs`` given.
    bounds
        The extract's WEST SOUTH EAST NORTH in degrees, when known; the CRS's
        area of use must cover it and its length distortion there be at most
        ``settings.max_crs_scale_error``.
    option
        Named in the message.

    Returns
    -------
    pyproj.CRS

    Raises
    ------
    PlannerError
        One line naming ``option``; a geographic CRS gets a suggestion (the
        local CGCS2000 Gauss–Krüger zone in China, else the UTM zone).
    """
    crs = parse_crs(value, option=option)
    if not crs.is_projected:
        hint = f" such as {suggest_metric_crs(bounds)}" if bounds is not None else ""
        message = _text(f"{option} {value} ({crs.name}) is not projected: give a projected CRS "
                        f"in metres{hint}",
                        f"{option} {value} ({crs.name}) 不是投影坐标系: 请给出以米为单位的投影"
                        f"坐标系{hint.replace(' such as', ', 如')}")
        raise PlannerError(message)
    units = {axis.unit_name for axis in crs.axis_info}
    if units != {"metre"}:
        message = _text(f"{option} {value} ({crs.name}) is in {', '.join(sorted(units))}, "
                        "not metres",
                        f"{option} {value} ({crs.name}) 的单位是 {', '.join(sorted(units))}, "
                        "不是米")
        raise PlannerError(message)
    if bounds is not None:
        error = _scale_error(crs, bounds)
        if error > settings.max_crs_scale_error:
            shown = "∞" if math.isinf(error) else f"{error:.0%}"
            message = _text(f"{option} {value} ({crs.name}) does not fit the extract: it "
                            f"distorts lengths there by {shown} (use e.g. "
                            f"{suggest_metric_crs(bounds)}, or omit --crs)",
                            f"{option} {value} ({crs.name}) 不适用于该区域: 长度变形 {shown} "
                            f"(可用 {suggest_metric_crs(bounds)}, 或不指定 --crs)")
            raise PlannerError(message)
    return crs


def suggest_metric_crs(bounds: Bounds) -> str:
    """A metric CRS for ``bounds`` as text: CGCS2000 3° Gauss–Krüger in China, else UTM."""
    west, south, east, north = bounds
    lon, lat = (west + east) / 2, (south + north) / 2
    if 73.5 <= lon <= 135 and 16 <= lat <= 54:
        # EPSG:4534 is CM 75E, then one code per 3° up to EPSG:4554 (CM 135E)
        return f"EPSG:{4534 + round((lon - 75) / 3)}"
    return local_metric_crs(bounds).to_string()


#: Distance from the edges of a UTM band (degrees) within which
#: :func:`local_metric_crs` asks PROJ's database instead of computing the zone.
_UTM_MARGIN_DEG = 0.05


def local_metric_crs(bounds: Bounds) -> CRS:
    """The UTM zone of the extract's centre, or a local azimuthal equidistant CRS.

    UTM is not defined beyond 84° N and 80° S (pyproj: "Unable to determine
    UTM CRS"); there, and wherever no zone is found, an azimuthal equidistant
    projection centred on the extract is true to scale within it.

    Parameters
    ----------
    bounds
        WEST SOUTH EAST NORTH in degrees (WGS 84).
    """
    west, south, east, north = bounds
    lon, lat = (west + east) / 2, (south + north) / 2
    # well inside a zone's band (EPSG's areas of use are the 6° bands, one edge
    # 0.01° wider) the zone is plain arithmetic; near an edge PROJ's database
    # decides, as it always did (a query of a third of a second)
    offset = (lon + 180) % 6
    if _UTM_MARGIN_DEG < offset < 6 - _UTM_MARGIN_DEG and (
            _UTM_MARGIN_DEG < lat < 84 - _UTM_MARGIN_DEG
            or -80 + _UTM_MARGIN_DEG < lat < -_UTM_MARGIN_DEG):
        zone = int((lon + 180) // 6) % 60 + 1
        return CRS.from_epsg((32600 if lat > 0 else 32700) + zone)
    if -80 <= lat <= 84:
        found = pyproj.database.query_utm_crs_info(
            datum_name="WGS 84",
            area_of_interest=pyproj.aoi.AreaOfInterest(lon, lat, lon, lat))
        if found:
            return CRS.from_epsg(found[0].code)
    return CRS.from_proj4(f"+proj=aeqd +lat_0={lat:.6f} +lon_0={lon:.6f} +datum=WGS84 "
                          "+units=m +no_defs")


# ----------------------------------------------------------------------------- layers


def _name(path: str | Path | None, what: str) -> str:
    return f"{path}" if path is not None else what


def infer_crs(frame: gpd.GeoDataFrame, *, what: str, path: str | Path | None = None
              ) -> gpd.GeoDataFrame:
    """A layer with its CRS: the declared one, or WGS 84 when its coordinates are lon/lat.

    A layer without a CRS whose coordinates all lie within ±180 / ±90 is taken
    as WGS 84 with a warning (CGCS2000 differs from it by centimetres); any
    other is refused, as metres cannot be placed without their CRS.
    """
    if frame.crs is not None:
        return frame
    x_min, y_min, x_max, y_max = frame.total_bounds
    lonlat = (np.isfinite([x_min, y_min, x_max, y_max]).all()
              and -180 <= x_min <= x_max <= 180 and -90 <= y_min <= y_max <= 90)
    if not lonlat:
        message = _text(f"the {what} layer has no CRS and its coordinates are not longitude/"
                        f"latitude (x {x_min:.0f}…{x_max:.0f}); declare its CRS (a .prj file, "
                        "or e.g. EPSG:4547 for CGCS2000 Gauss–Krüger)",
                        f"{what} 图层没有坐标参考系, 且坐标不是经纬度 (x {x_min:.0f}…{x_max:.0f}); "
                        "请声明其坐标系 (.prj 文件, 或如 EPSG:4547 CGCS2000 高斯-克吕格)")
        raise PlannerError(message, path)
    log.warning(_text("%s: the %s layer declares no CRS; its coordinates are longitude/latitude, "
                      "taken as WGS 84", "%s: %s 图层未声明坐标系; 坐标为经纬度, 按 WGS 84 处理"),
                _name(path, what), what)
    return frame.set_crs(4326)


def _polygonal(geometries: np.ndarray) -> np.ndarray:
    """The polygonal part of each geometry (spikes and slivers of ``make_valid`` dropped)."""
    parts, index = shapely.get_parts(geometries, return_index=True)
    keep = np.isin(shapely.get_type_id(parts), [3, 6])  # Polygon, MultiPolygon
    parts, index = parts[keep], index[keep]
    out = np.full(len(geometries), None, dtype=object)
    if len(parts):
        order = np.argsort(index, kind="stable")
        parts, index = parts[order], index[order]
        starts = np.flatnonzero(np.r_[True, index[1:] != index[:-1]])
        groups = np.split(parts, starts[1:])
        out[index[starts]] = [shapely.union_all(group) for group in groups]
    return out


def repair_geometries(frame: gpd.GeoDataFrame, *, what: str, path: str | Path | None = None,
                      kind: str = "polygon") -> gpd.GeoDataFrame:
    """Repair invalid geometries with :func:`shapely.make_valid`, or refuse naming the rows.

    A polygon with a zero-width spike or a self-intersection becomes its
    polygonal part; rows with non-finite coordinates, of the wrong kind, or
    with nothing left after the repair are refused.

    Parameters
    ----------
    frame
        The layer, any CRS.
    what, path
        For messages.
    kind
        ``polygon`` (communities), ``point`` or ``any`` (populations, lists).
    """
    geometries = frame.geometry.to_numpy()
    coords_ok = _finite_coordinates(geometries)
    if not coords_ok.all():
        message = _text(f"the {what} layer has coordinates that are not finite numbers in rows "
                        f"{_rows(np.flatnonzero(~coords_ok))}",
                        f"{what} 图层第 {_rows(np.flatnonzero(~coords_ok))} 行的坐标不是有限数值")
        raise PlannerError(message, path)
    types = shapely.get_type_id(geometries)
    # a GeometryCollection (7) is judged after the repair, by its parts
    wrong = ~np.isin(types, [_TYPE_IDS[name] for name in KINDS[kind]]) & (types >= 0) \
        & (types != 7)
    if wrong.any():
        message = _text(f"the {what} layer needs {kind} geometries; rows "
                        f"{_rows(np.flatnonzero(wrong))} are not",
                        f"{what} 图层需要{'面' if kind == 'polygon' else '点'}要素; 第 "
                        f"{_rows(np.flatnonzero(wrong))} 行不是")
        raise PlannerError(message, path)
    invalid = ~shapely.is_valid(geometries) | (types == 7)
    if not invalid.any():
        return frame
    repaired = geometries.copy()
    repaired[invalid] = shapely.make_valid(geometries[invalid])
    if kind == "polygon":
        repaired[invalid] = _polygonal(repaired[invalid])
    lost = invalid & (pd.isna(repaired) | shapely.is_empty(repaired))
    if lost.any():
        message = _text(f"the {what} layer has invalid geometries that cannot be repaired in "
                        f"rows {_rows(np.flatnonzero(lost))}",
                        f"{what} 图层第 {_rows(np.flatnonzero(lost))} 行的几何无效且无法修复")
        raise PlannerError(message, path)
    log.warning(_text("%s: repaired invalid geometries of the %s layer in rows %s",
                      "%s: 已修复 %s 图层第 %s 行的无效几何"),
                _name(path, what), what, _rows(np.flatnonzero(invalid)))
    return frame.set_geometry(gpd.GeoSeries(repaired, index=frame.index, crs=frame.crs))


def _finite_coordinates(geometries: np.ndarray) -> np.ndarray:
    """Whether every coordinate of each geometry is finite (vectorised over coordinates)."""
    coords, index = shapely.get_coordinates(geometries, return_index=True)
    bad = ~np.isfinite(coords).all(axis=1)
    ok = np.ones(len(geometries), dtype=bool)
    ok[np.unique(index[bad])] = False
    return ok


def check_overlap(frame: gpd.GeoDataFrame, area_bounds: Bounds, *, what: str,
                  path: str | Path | None = None) -> np.ndarray:
    """Refuse a layer with no feature in the area; warn when some lie outside.

    Parameters
    ----------
    frame
        The layer, with a CRS.
    area_bounds
        The analysis area's WEST SOUTH EAST NORTH in degrees.

    Returns
    -------
    numpy.ndarray of bool
        Which features intersect the area.
    """
    area = shapely.box(*area_bounds)
    inside = shapely.intersects(frame.to_crs(4326).geometry.to_numpy(), area)
    if not inside.any():
        x_min, y_min, x_max, y_max = frame.to_crs(4326).total_bounds
        message = _text(f"no feature of the {what} layer lies in the area (layer {x_min:.4f}, "
                        f"{y_min:.4f} … {x_max:.4f}, {y_max:.4f}; area {area_bounds[0]:.4f}, "
                        f"{area_bounds[1]:.4f} … {area_bounds[2]:.4f}, {area_bounds[3]:.4f})",
                        f"{what} 图层没有要素位于分析区域内 (图层 {x_min:.4f}, {y_min:.4f} … "
                        f"{x_max:.4f}, {y_max:.4f}; 区域 {area_bounds[0]:.4f}, "
                        f"{area_bounds[1]:.4f} … {area_bounds[2]:.4f}, {area_bounds[3]:.4f})")
        raise PlannerError(message, path)
    outside = np.flatnonzero(~inside)
    if len(outside) > settings.layer_outside_warning_share * len(inside):
        if settings.lang == "zh":
            log.warning("%s: %s 图层 %d/%d 个要素位于分析区域外 (第 %s 行)", _name(path, what),
                        what, len(outside), len(inside), _rows(outside))
        else:
            log.warning("%s: %d of %d features of the %s layer lie outside the area (rows %s)",
                        _name(path, what), len(outside), len(inside), what, _rows(outside))
    return inside


def check_layer(frame: gpd.GeoDataFrame, *, what: str, path: str | Path | None = None,
                kind: str = "polygon", area_bounds: Bounds | None = None) -> gpd.GeoDataFrame:
    """:func:`infer_crs`, :func:`repair_geometries` and (given the area) :func:`check_overlap`."""
    frame = infer_crs(frame, what=what, path=path)
    frame = repair_geometries(frame, what=what, path=path, kind=kind)
    if area_bounds is not None:
        check_overlap(frame, area_bounds, what=what, path=path)
    return frame


# ----------------------------------------------------------------------------- populations


def check_population(values: pd.Series, *, path: str | Path | None = None,
                     column: str = "population") -> pd.Series:
    """Populations as floats: refused when not numbers, missing, infinite or negative.

    Returns
    -------
    pandas.Series
        ``values`` as float64, same index.

    Raises
    ------
    PlannerError
        Naming the file, the column and the first rows of each problem.
    """
    text = values.astype("string").str.strip()
    numbers = pd.to_numeric(text, errors="coerce").astype("float64")
    positions = pd.RangeIndex(len(values))
    spelled_nonfinite = text.str.lower().isin(["nan", "inf", "-inf", "+inf", "infinity",
                                               "-infinity"]).fillna(False)
    problems = [
        (spelled_nonfinite | (numbers.notna() & ~np.isfinite(numbers.fillna(0))),
         "are not finite", "不是有限数值"),
        (text.notna() & (text != "") & numbers.isna(), "are not numbers", "不是数值"),
        (text.isna() | (text == ""), "are empty", "为空"),
        (numbers < 0, "are negative", "为负数"),
    ]
    for mask, english, chinese in problems:
        mask = mask.fillna(False).to_numpy(dtype=bool)
        if mask.any():
            rows = _rows(positions[mask])
            message = _text(f"column {column!r}: the populations in rows {rows} {english}",
                            f"列 {column!r}: 第 {rows} 行的人口{chinese}")
            raise PlannerError(message, path)
    return pd.Series(numbers.to_numpy(), index=values.index, name=values.name)
