"""Tests for ``planner.coords`` (WGS 84 / GCJ-02 / BD-09 transforms)."""

from __future__ import annotations

import importlib.util
import math
import pathlib
import sys
import warnings

import numpy as np
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

try:
    import planner.coords as coords
except ImportError:  # package ``__init__`` not written yet: load the file directly
    _path = pathlib.Path(__file__).resolve().parents[1] / "planner" / "coords.py"
    _spec = importlib.util.spec_from_file_location("_planner_coords_under_test", _path)
    assert _spec is not None and _spec.loader is not None
    coords = importlib.util.module_from_spec(_spec)
    sys.modules[_spec.name] = coords
    _spec.loader.exec_module(coords)


# ---------------------------------------------------------------------------
# Independent scalar reference: the classic published algorithm, transcribed
# from the ``transformlat`` / ``transformlng`` code of wandergis/coordtransform
# (the same formulas as eviltransform's ``transform``/``delta``), plain ``math``.
# Deliberately shares nothing with the module under test.
# ---------------------------------------------------------------------------
_REF_PI = 3.1415926535897932384626
_REF_X_PI = 3.14159265358979324 * 3000.0 / 180.0
_REF_A = 6378245.0  # Krasovsky 1940 semi-major axis
_REF_EE = 0.00669342162296594323  # Krasovsky 1940 eccentricity squared


def _ref_out_of_china(lng: float, lat: float) -> bool:
    # Bounding box of the original algorithm (as in eviltransform's outOfChina).
    return not (72.004 <= lng <= 137.8347 and 0.8293 <= lat <= 55.8271)


def _ref_transformlat(lng: float, lat: float) -> float:
    ret = (
        -100.0
        + 2.0 * lng
        + 3.0 * lat
        + 0.2 * lat * lat
        + 0.1 * lng * lat
        + 0.2 * math.sqrt(math.fabs(lng))
    )
    ret += (20.0 * math.sin(6.0 * lng * _REF_PI) + 20.0 * math.sin(2.0 * lng * _REF_PI)) * 2.0 / 3.0
    ret += (20.0 * math.sin(lat * _REF_PI) + 40.0 * math.sin(lat / 3.0 * _REF_PI)) * 2.0 / 3.0
    ret += (
        (160.0 * math.sin(lat / 12.0 * _REF_PI) + 320 * math.sin(lat * _REF_PI / 30.0)) * 2.0 / 3.0
    )
    return ret


def _ref_transformlng(lng: float, lat: float) -> float:
    ret = (
        300.0
        + lng
        + 2.0 * lat
        + 0.1 * lng * lng
        + 0.1 * lng * lat
        + 0.1 * math.sqrt(math.fabs(lng))
    )
    ret += (20.0 * math.sin(6.0 * lng * _REF_PI) + 20.0 * math.sin(2.0 * lng * _REF_PI)) * 2.0 / 3.0
    ret += (20.0 * math.sin(lng * _REF_PI) + 40.0 * math.sin(lng / 3.0 * _REF_PI)) * 2.0 / 3.0
    ret += (
        (150.0 * math.sin(lng / 12.0 * _REF_PI) + 300.0 * math.sin(lng / 30.0 * _REF_PI))
        * 2.0
        / 3.0
    )
    return ret


def _ref_delta(lng: float, lat: float) -> tuple[float, float]:
    dlat = _ref_transformlat(lng - 105.0, lat - 35.0)
    dlng = _ref_transformlng(lng - 105.0, lat - 35.0)
    radlat = lat / 180.0 * _REF_PI
    magic = math.sin(radlat)
    magic = 1 - _REF_EE * magic * magic
    sqrtmagic = math.sqrt(magic)
    dlat = (dlat * 180.0) / ((_REF_A * (1 - _REF_EE)) / (magic * sqrtmagic) * _REF_PI)
    dlng = (dlng * 180.0) / (_REF_A / sqrtmagic * math.cos(radlat) * _REF_PI)
    return dlng, dlat


def _ref_wgs84_to_gcj02(lng: float, lat: float) -> tuple[float, float]:
    if _ref_out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _ref_delta(lng, lat)
    return lng + dlng, lat + dlat


def _ref_gcj02_to_wgs84_one_step(lng: float, lat: float) -> tuple[float, float]:
    """The classic *approximate* inverse (coordtransform's ``gcj02_to_wgs84``)."""
    if _ref_out_of_china(lng, lat):
        return lng, lat
    dlng, dlat = _ref_delta(lng, lat)
    return lng - dlng, lat - dlat


def _ref_gcj02_to_bd09(lng: float, lat: float) -> tuple[float, float]:
    z = math.sqrt(lng * lng + lat * lat) + 0.00002 * math.sin(lat * _REF_X_PI)
    theta = math.atan2(lat, lng) + 0.000003 * math.cos(lng * _REF_X_PI)
    return z * math.cos(theta) + 0.0065, z * math.sin(theta) + 0.006


def _ref_bd09_to_gcj02(bd_lon: float, bd_lat: float) -> tuple[float, float]:
    """The published (approximate) Baidu inverse."""
    x = bd_lon - 0.0065
    y = bd_lat - 0.006
    z = math.sqrt(x * x + y * y) - 0.00002 * math.sin(y * _REF_X_PI)
    theta = math.atan2(y, x) - 0.000003 * math.cos(x * _REF_X_PI)
    return z * math.cos(theta), z * math.sin(theta)


# ---------------------------------------------------------------------------
# helpers and fixtures
# ---------------------------------------------------------------------------
_EARTH_RADIUS_M = 6371008.8


def haversine_m(lon1, lat1, lon2, lat2) -> np.ndarray:
    """Great-circle distance in metres (vectorised)."""
    lon1, lat1, lon2, lat2 = (
        np.radians(np.asarray(v, dtype=float)) for v in (lon1, lat1, lon2, lat2)
    )
    a = (
        np.sin((lat2 - lat1) / 2) ** 2
        + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    )
    return 2 * _EARTH_RADIUS_M * np.arcsin(np.sqrt(np.minimum(a, 1.0)))


CITIES = {
    "beijing": (116.3975, 39.9087),
    "shanghai": (121.4737, 31.2304),
    "shenzhen": (114.0579, 22.5431),
    "yichang": (111.29, 30.70),
}
OUTSIDE = {
    "helsinki": (24.94, 60.17),
    "new_york": (-74.006, 40.7128),
    "sydney": (151.2093, -33.8688),
    "moscow": (37.6173, 55.7558),
}

# A grid covering the whole published box (and a bit of Hainan / the South China Sea).
_GRID_LON, _GRID_LAT = np.meshgrid(np.linspace(72.1, 137.7, 57), np.linspace(0.9, 55.7, 43))

china_lon = st.floats(min_value=73.0, max_value=135.0, allow_nan=False)
china_lat = st.floats(min_value=18.0, max_value=53.0, allow_nan=False)
china_points = st.tuples(china_lon, china_lat)


def _apply_ref(fn, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pairs = [fn(float(x), float(y)) for x, y in zip(lon.ravel(), lat.ravel(), strict=True)]
    out = np.array(pairs, dtype=float)
    return out[:, 0].reshape(lon.shape), out[:, 1].reshape(lon.shape)


# ---------------------------------------------------------------------------
# agreement with the published algorithm
# ---------------------------------------------------------------------------
def test_crs_names() -> None:
    assert coords.CRS_NAMES == ("wgs84", "gcj02", "bd09")


def test_wgs84_to_gcj02_matches_scalar_reference_on_grid() -> None:
    got_lon, got_lat = coords.wgs84_to_gcj02(_GRID_LON, _GRID_LAT)
    ref_lon, ref_lat = _apply_ref(_ref_wgs84_to_gcj02, _GRID_LON, _GRID_LAT)
    assert got_lon.shape == _GRID_LON.shape
    np.testing.assert_allclose(got_lon, ref_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got_lat, ref_lat, rtol=0, atol=1e-9)
    # the grid really is inside the box and really gets shifted
    assert not coords.out_of_china(_GRID_LON, _GRID_LAT).any()
    assert (np.hypot(got_lon - _GRID_LON, got_lat - _GRID_LAT) > 1e-4).all()


def test_gcj02_to_bd09_matches_scalar_reference_on_grid() -> None:
    got_lon, got_lat = coords.gcj02_to_bd09(_GRID_LON, _GRID_LAT)
    ref_lon, ref_lat = _apply_ref(_ref_gcj02_to_bd09, _GRID_LON, _GRID_LAT)
    np.testing.assert_allclose(got_lon, ref_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(got_lat, ref_lat, rtol=0, atol=1e-9)


def test_bd09_to_gcj02_starts_from_published_inverse_and_refines_it() -> None:
    bd_lon, bd_lat = _GRID_LON, _GRID_LAT
    ref_lon, ref_lat = _apply_ref(_ref_bd09_to_gcj02, bd_lon, bd_lat)
    # max_iter=0 is exactly the published formula
    pub_lon, pub_lat = coords.bd09_to_gcj02(bd_lon, bd_lat, max_iter=0)
    np.testing.assert_allclose(pub_lon, ref_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(pub_lat, ref_lat, rtol=0, atol=1e-9)
    # the refined result stays close to the published one (it is only a few dm off) ...
    g_lon, g_lat = coords.bd09_to_gcj02(bd_lon, bd_lat)
    assert haversine_m(g_lon, g_lat, pub_lon, pub_lat).max() < 5.0
    # ... but is an exact inverse of the published forward formula
    f_lon, f_lat = _apply_ref(_ref_gcj02_to_bd09, g_lon, g_lat)
    np.testing.assert_allclose(f_lon, bd_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f_lat, bd_lat, rtol=0, atol=1e-9)


def test_gcj02_to_wgs84_is_exact_not_one_step() -> None:
    g_lon, g_lat = _GRID_LON, _GRID_LAT
    w_lon, w_lat = coords.gcj02_to_wgs84(g_lon, g_lat)
    # forward-mapping the answer with the scalar reference reproduces the input
    f_lon, f_lat = _apply_ref(_ref_wgs84_to_gcj02, w_lon, w_lat)
    np.testing.assert_allclose(f_lon, g_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(f_lat, g_lat, rtol=0, atol=1e-9)
    # max_iter=0 gives the classic one-step approximation, which is measurably worse
    a_lon, a_lat = coords.gcj02_to_wgs84(g_lon, g_lat, max_iter=0)
    r_lon, r_lat = _apply_ref(_ref_gcj02_to_wgs84_one_step, g_lon, g_lat)
    np.testing.assert_allclose(a_lon, r_lon, rtol=0, atol=1e-9)
    np.testing.assert_allclose(a_lat, r_lat, rtol=0, atol=1e-9)
    assert haversine_m(a_lon, a_lat, w_lon, w_lat).max() > 0.5


# Published test vectors of googollee/eviltransform (python/test.py, go/transform_test.go):
# (wgs_lon, wgs_lat, gcj_lon, gcj_lat); the original lists them latitude first.
EVILTRANSFORM_VECTORS = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]


@pytest.mark.parametrize(("w_lon", "w_lat", "g_lon", "g_lat"), EVILTRANSFORM_VECTORS)
def test_eviltransform_published_vectors(w_lon, w_lat, g_lon, g_lat) -> None:
    lon, lat = coords.wgs84_to_gcj02(w_lon, w_lat)
    assert float(lon) == pytest.approx(g_lon, abs=1e-9)
    assert float(lat) == pytest.approx(g_lat, abs=1e-9)
    lon, lat = coords.gcj02_to_wgs84(g_lon, g_lat)
    assert float(lon) == pytest.approx(w_lon, abs=1e-9)
    assert float(lat) == pytest.approx(w_lat, abs=1e-9)


def test_coordtransform_readme_values() -> None:
    # Published example of wandergis/coordtransform (README "result" block) for the
    # input (116.404, 39.915) in every function.
    p = (116.404, 39.915)
    np.testing.assert_allclose(
        coords.wgs84_to_gcj02(*p), (116.41024449916938, 39.91640428150164), rtol=0, atol=1e-9
    )
    np.testing.assert_allclose(
        coords.gcj02_to_bd09(*p), (116.41036949371029, 39.92133699351021), rtol=0, atol=1e-9
    )
    # README bd09togcj02 / gcj02towgs84 are the approximate published inverses, which
    # our functions reproduce with max_iter=0 and improve on by default.
    np.testing.assert_allclose(
        coords.bd09_to_gcj02(*p, max_iter=0),
        (116.39762729119315, 39.90865673957631),
        rtol=0,
        atol=1e-9,
    )
    np.testing.assert_allclose(
        coords.gcj02_to_wgs84(*p, max_iter=0),
        (116.39775550083061, 39.91359571849836),
        rtol=0,
        atol=1e-9,
    )
    exact = coords.gcj02_to_wgs84(*p)
    assert 0.01 < haversine_m(*exact, 116.39775550083061, 39.91359571849836) < 5.0
    # Self-computed (NOT published): exact inverses produced by this module for this input,
    # cross-checked by forward-mapping with the scalar reference below.
    np.testing.assert_allclose(exact, (116.39775575457482, 39.91359623560938), rtol=0, atol=1e-9)
    np.testing.assert_allclose(_ref_wgs84_to_gcj02(*map(float, exact)), p, rtol=0, atol=1e-9)
    bd_exact = coords.bd09_to_gcj02(*p)
    np.testing.assert_allclose(bd_exact, (116.39762708785722, 39.90865633947842), rtol=0, atol=1e-9)
    np.testing.assert_allclose(_ref_gcj02_to_bd09(*map(float, bd_exact)), p, rtol=0, atol=1e-9)


# ---------------------------------------------------------------------------
# round trips and magnitudes
# ---------------------------------------------------------------------------
@settings(deadline=None, max_examples=300)
@given(china_points)
def test_round_trip_wgs84_gcj02(p) -> None:
    lon, lat = p
    back = coords.gcj02_to_wgs84(*coords.wgs84_to_gcj02(lon, lat))
    d = float(haversine_m(lon, lat, *back))
    assert d < 1.0
    assert d < 1e-3  # exact inverse: far better than the one-step approximation


@settings(deadline=None, max_examples=300)
@given(china_points)
def test_round_trip_wgs84_bd09(p) -> None:
    lon, lat = p
    back = coords.bd09_to_wgs84(*coords.wgs84_to_bd09(lon, lat))
    d = float(haversine_m(lon, lat, *back))
    assert d < 1.0
    assert d < 1e-3


@settings(deadline=None, max_examples=300)
@given(china_points)
def test_round_trip_gcj02_bd09_below_1cm(p) -> None:
    lon, lat = p
    assert (
        float(haversine_m(lon, lat, *coords.bd09_to_gcj02(*coords.gcj02_to_bd09(lon, lat)))) < 0.01
    )
    assert (
        float(haversine_m(lon, lat, *coords.gcj02_to_bd09(*coords.bd09_to_gcj02(lon, lat)))) < 0.01
    )


@settings(deadline=None, max_examples=50)
@given(st.lists(china_points, min_size=1, max_size=40))
def test_vectorised_equals_pointwise(points) -> None:
    lon = np.array([p[0] for p in points])
    lat = np.array([p[1] for p in points])
    for src in coords.CRS_NAMES:
        for dst in coords.CRS_NAMES:
            v_lon, v_lat = coords.transform(lon, lat, src, dst)
            for i in range(len(points)):
                s_lon, s_lat = coords.transform(lon[i], lat[i], src, dst)
                assert v_lon[i] == pytest.approx(float(s_lon), abs=1e-9)
                assert v_lat[i] == pytest.approx(float(s_lat), abs=1e-9)


def test_round_trip_dense_grid_worst_case() -> None:
    lon, lat = np.meshgrid(np.linspace(73, 135, 311), np.linspace(18, 53, 176))
    for fwd, inv in (
        (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84),
        (coords.wgs84_to_bd09, coords.bd09_to_wgs84),
        (coords.gcj02_to_bd09, coords.bd09_to_gcj02),
    ):
        back = inv(*fwd(lon, lat))
        assert haversine_m(lon, lat, *back).max() < 1e-3


@pytest.mark.parametrize("city", sorted(CITIES))
def test_gcj02_offset_magnitude_for_cities(city) -> None:
    lon, lat = CITIES[city]
    g = coords.wgs84_to_gcj02(lon, lat)
    d = float(haversine_m(lon, lat, *g))
    assert 50.0 < d < 1000.0
    b = coords.wgs84_to_bd09(lon, lat)
    assert 50.0 < float(haversine_m(lon, lat, *b)) < 2000.0


@pytest.mark.parametrize("place", sorted(OUTSIDE))
def test_points_outside_china_unchanged(place) -> None:
    lon, lat = OUTSIDE[place]
    assert bool(coords.out_of_china(lon, lat))
    for fn in (coords.wgs84_to_gcj02, coords.gcj02_to_wgs84):
        out_lon, out_lat = fn(lon, lat)
        assert float(out_lon) == lon
        assert float(out_lat) == lat


def test_out_of_china_box_and_broadcasting() -> None:
    assert coords.out_of_china(24.94, 60.17).shape == ()
    lon = np.array([72.0039, 72.004, 137.8347, 137.8348, 116.4, 116.4, 116.4, 116.4])
    lat = np.array([30.0, 30.0, 30.0, 30.0, 0.8292, 0.8293, 55.8271, 55.8272])
    expected = [True, False, False, True, True, False, False, True]
    assert coords.out_of_china(lon, lat).tolist() == expected
    assert coords.out_of_china(lon, lat).dtype == np.bool_
    grid = coords.out_of_china(np.array([[20.0], [116.0]]), [10.0, 40.0, 60.0])
    assert grid.tolist() == [[True, True, True], [False, False, True]]


def test_mixed_inside_outside_array() -> None:
    lon = np.array([24.94, 116.3975, -74.006, 111.29])
    lat = np.array([60.17, 39.9087, 40.7128, 30.70])
    g_lon, g_lat = coords.wgs84_to_gcj02(lon, lat)
    w_lon, w_lat = coords.gcj02_to_wgs84(g_lon, g_lat)
    assert g_lon[[0, 2]].tolist() == lon[[0, 2]].tolist()
    assert g_lat[[0, 2]].tolist() == lat[[0, 2]].tolist()
    assert (haversine_m(lon[[1, 3]], lat[[1, 3]], g_lon[[1, 3]], g_lat[[1, 3]]) > 50).all()
    assert haversine_m(lon, lat, w_lon, w_lat).max() < 1e-3


# ---------------------------------------------------------------------------
# input handling
# ---------------------------------------------------------------------------
ALL_FUNCS = [
    coords.wgs84_to_gcj02,
    coords.gcj02_to_wgs84,
    coords.gcj02_to_bd09,
    coords.bd09_to_gcj02,
    coords.wgs84_to_bd09,
    coords.bd09_to_wgs84,
]


@pytest.mark.parametrize("fn", ALL_FUNCS, ids=lambda f: f.__name__)
def test_output_types_and_shapes(fn) -> None:
    lon, lat = fn(116.4, 39.9)
    assert isinstance(lon, np.ndarray) and lon.shape == () and lon.dtype == np.float64
    assert isinstance(lat, np.ndarray) and lat.shape == () and lat.dtype == np.float64
    lon, lat = fn([116, 121], [39, 31])  # ints in a list
    assert lon.shape == (2,) and lon.dtype == np.float64 and lat.dtype == np.float64
    lon, lat = fn(np.array([[110.0], [115.0], [120.0]]), np.array([25.0, 30.0, 35.0, 40.0]))
    assert lon.shape == lat.shape == (3, 4)
    np.testing.assert_allclose(lon[1, 2], float(fn(115.0, 35.0)[0]), rtol=0, atol=1e-12)
    lon, lat = fn(np.array([], dtype=float), np.array([], dtype=float))
    assert lon.shape == lat.shape == (0,)


@pytest.mark.parametrize("fn", ALL_FUNCS, ids=lambda f: f.__name__)
def test_inputs_not_mutated_and_fortran_order(fn) -> None:
    lon = np.asfortranarray(np.linspace(100, 120, 12).reshape(3, 4))
    lat = np.asfortranarray(np.linspace(22, 44, 12).reshape(3, 4))
    lon0, lat0 = lon.copy(), lat.copy()
    out_lon, out_lat = fn(lon, lat)
    np.testing.assert_array_equal(lon, lon0)
    np.testing.assert_array_equal(lat, lat0)
    c_lon, c_lat = fn(np.ascontiguousarray(lon), np.ascontiguousarray(lat))
    np.testing.assert_array_equal(out_lon, c_lon)
    np.testing.assert_array_equal(out_lat, c_lat)
    assert not np.shares_memory(out_lon, lon)


@pytest.mark.parametrize("fn", ALL_FUNCS, ids=lambda f: f.__name__)
def test_nan_in_nan_out_without_warnings(fn) -> None:
    lon = np.array([np.nan, 116.4, 116.4, np.nan, 24.94])
    lat = np.array([39.9, np.nan, 39.9, np.nan, 60.17])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out_lon, out_lat = fn(lon, lat)
        s_lon, s_lat = fn(np.nan, np.nan)
        fn(np.inf, 39.9)
    assert np.isnan(out_lon[[0, 1, 3]]).all() and np.isnan(out_lat[[0, 1, 3]]).all()
    assert np.isfinite(out_lon[[2, 4]]).all() and np.isfinite(out_lat[[2, 4]]).all()
    ref_lon, ref_lat = fn(116.4, 39.9)
    assert out_lon[2] == float(ref_lon) and out_lat[2] == float(ref_lat)
    assert np.isnan(s_lon) and np.isnan(s_lat)


def test_iteration_argument_validation() -> None:
    with pytest.raises(ValueError, match="tolerance_deg"):
        coords.gcj02_to_wgs84(116.4, 39.9, tolerance_deg=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        coords.gcj02_to_wgs84(116.4, 39.9, max_iter=-1)
    with pytest.raises(ValueError, match="tolerance_deg"):
        coords.bd09_to_gcj02(116.4, 39.9, tolerance_deg=float("nan"))


# ---------------------------------------------------------------------------
# transform()
# ---------------------------------------------------------------------------
_DIRECT = {
    ("wgs84", "gcj02"): coords.wgs84_to_gcj02,
    ("gcj02", "wgs84"): coords.gcj02_to_wgs84,
    ("gcj02", "bd09"): coords.gcj02_to_bd09,
    ("bd09", "gcj02"): coords.bd09_to_gcj02,
    ("wgs84", "bd09"): coords.wgs84_to_bd09,
    ("bd09", "wgs84"): coords.bd09_to_wgs84,
}


@pytest.mark.parametrize("src", ["wgs84", "gcj02", "bd09"])
@pytest.mark.parametrize("dst", ["wgs84", "gcj02", "bd09"])
def test_transform_all_pairs(src, dst) -> None:
    lon = np.array([116.3975, 121.4737, 24.94])
    lat = np.array([39.9087, 31.2304, 60.17])
    got = coords.transform(lon, lat, src, dst)
    if src == dst:
        np.testing.assert_array_equal(got[0], lon)
        np.testing.assert_array_equal(got[1], lat)
        assert not np.shares_memory(got[0], lon)
    else:
        expected = _DIRECT[(src, dst)](lon, lat)
        np.testing.assert_array_equal(got[0], expected[0])
        np.testing.assert_array_equal(got[1], expected[1])


def test_transform_accepts_spelling_variants() -> None:
    a = coords.transform(116.4, 39.9, "WGS-84", "GCJ_02")
    b = coords.transform(116.4, 39.9, "wgs84", "gcj02")
    assert float(a[0]) == float(b[0]) and float(a[1]) == float(b[1])


@pytest.mark.parametrize(
    ("src", "dst", "bad"),
    [("wgs84", "epsg:4326", "epsg:4326"), ("mars", "wgs84", "mars"), ("bd09", "bd-9", "bd-9")],
)
def test_transform_rejects_unknown_names(src, dst, bad) -> None:
    with pytest.raises(ValueError, match=bad):
        coords.transform(116.4, 39.9, src, dst)
    with pytest.raises(ValueError, match=bad):
        coords.transform_geometries([Point(116.4, 39.9)], src, dst)


def test_transform_rejects_identity_with_bad_name() -> None:
    with pytest.raises(ValueError, match="foo"):
        coords.transform(116.4, 39.9, "foo", "foo")


# ---------------------------------------------------------------------------
# transform_geometries()
# ---------------------------------------------------------------------------
def _sample_geoms() -> np.ndarray:
    poly = Polygon(
        [(116.30, 39.85), (116.45, 39.85), (116.45, 39.95), (116.30, 39.95)],
        holes=[[(116.35, 39.88), (116.40, 39.88), (116.40, 39.92)]],
    )
    return np.array(
        [
            Point(111.29, 30.70),
            LineString([(121.40, 31.20), (121.50, 31.25), (121.55, 31.30)]),
            poly,
            MultiPolygon([poly, Polygon([(114.0, 22.5), (114.1, 22.5), (114.1, 22.6)])]),
            Point(24.94, 60.17),
            None,
        ],
        dtype=object,
    )


@pytest.mark.parametrize(("src", "dst"), [("wgs84", "gcj02"), ("gcj02", "bd09"), ("bd09", "wgs84")])
def test_transform_geometries_array(src, dst) -> None:
    geoms = _sample_geoms()
    out = coords.transform_geometries(geoms, src, dst)
    assert isinstance(out, np.ndarray) and out.shape == geoms.shape
    assert out[-1] is None
    for g_in, g_out in zip(geoms[:-1], out[:-1], strict=True):
        assert g_out.geom_type == g_in.geom_type
        c_in = shapely.get_coordinates(g_in)
        c_out = shapely.get_coordinates(g_out)
        exp_lon, exp_lat = coords.transform(c_in[:, 0], c_in[:, 1], src, dst)
        np.testing.assert_allclose(c_out[:, 0], exp_lon, rtol=0, atol=1e-12)
        np.testing.assert_allclose(c_out[:, 1], exp_lat, rtol=0, atol=1e-12)
    # polygon keeps its hole, input untouched
    assert len(out[2].interiors) == 1
    assert shapely.get_coordinates(geoms[0]).tolist() == [[111.29, 30.70]]


def test_transform_geometries_single_and_round_trip() -> None:
    line = LineString([(116.30, 39.85), (116.45, 39.90), (116.50, 39.99)])
    bd = coords.transform_geometries(line, "wgs84", "bd09")
    assert isinstance(bd, LineString)
    assert shapely.hausdorff_distance(bd, line) > 1e-3
    back = coords.transform_geometries(bd, "bd09", "wgs84")
    c0, c1 = shapely.get_coordinates(line), shapely.get_coordinates(back)
    assert haversine_m(c0[:, 0], c0[:, 1], c1[:, 0], c1[:, 1]).max() < 1e-3
    same = coords.transform_geometries(line, "gcj02", "gcj02")
    assert same.equals_exact(line, tolerance=0) and same is not line


def test_transform_geometries_keeps_z() -> None:
    p = Point(116.4, 39.9, 42.0)
    out = coords.transform_geometries(p, "wgs84", "gcj02")
    assert out.has_z and out.z == 42.0
    assert not coords.transform_geometries(Point(116.4, 39.9), "wgs84", "gcj02").has_z


def test_transform_geometries_geoseries_keeps_index_and_crs() -> None:
    gpd = pytest.importorskip("geopandas")
    geoms = _sample_geoms()
    gs = gpd.GeoSeries(list(geoms), index=[10, 20, 30, 40, 50, 60], crs="EPSG:4326", name="geom")
    out = coords.transform_geometries(gs, "wgs84", "gcj02")
    assert isinstance(out, gpd.GeoSeries)
    assert out.index.tolist() == [10, 20, 30, 40, 50, 60]
    assert out.crs == gs.crs and out.name == "geom"
    expected = coords.transform_geometries(geoms, "wgs84", "gcj02")
    for a, b in zip(out.tolist(), expected, strict=True):
        assert (a is None and b is None) or a.equals_exact(b, tolerance=0)
    assert out.iloc[4].equals_exact(geoms[4], tolerance=0)  # Helsinki unchanged
    assert gs.iloc[0].equals_exact(geoms[0], tolerance=0)  # input untouched


def test_transform_geometries_geodataframe() -> None:
    gpd = pytest.importorskip("geopandas")
    gdf = gpd.GeoDataFrame(
        {"name": ["a", "b"]},
        geometry=[Point(116.4, 39.9), Point(121.47, 31.23)],
        index=["x", "y"],
        crs="EPSG:4326",
    )
    out = coords.transform_geometries(gdf, "gcj02", "wgs84")
    assert isinstance(out, gpd.GeoDataFrame)
    assert out.index.tolist() == ["x", "y"] and out.crs == gdf.crs
    assert out["name"].tolist() == ["a", "b"]
    exp_lon, exp_lat = coords.gcj02_to_wgs84([116.4, 121.47], [39.9, 31.23])
    np.testing.assert_allclose(out.geometry.x.to_numpy(), exp_lon, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out.geometry.y.to_numpy(), exp_lat, rtol=0, atol=1e-12)
    assert gdf.geometry.iloc[0].x == 116.4  # input untouched
