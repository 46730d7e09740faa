"""The quick coverage and network-quality paths give exactly what the plain ones gave.

Each test holds the plain formulation (as the modules computed it before) and
compares it with the quick one on awkward inputs: NaN and infinite distances,
homes outside every community, overlapping communities, tiny blocks.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

import planner.network_quality as network_quality
from planner.catalogue_model import ResidenceRules, TagRule
from planner.classification import name_lines
from planner.coverage import (
    _covered_population,
    _missing_types,
    _name_matcher,
    _string_column,
    _unique_rows,
    assign_communities,
)
from planner.network_quality import _sorted_in_groups, community_detour_index

RNG = np.random.default_rng(13)


def same_bits(left: np.ndarray, right: np.ndarray) -> bool:
    return left.dtype == right.dtype and left.shape == right.shape and bool(
        (left.view(np.uint64) == right.view(np.uint64)).all())


# ----------------------------------------------------------------------------- detour index


def plain_detour_index(residences, distance_m, nearest, points, communities, minimum):
    """The whole-array formulation: every (home × type) pair at once, a lexsort."""
    home_code, uniques = pd.factorize(residences["community_id"].to_numpy(dtype=object))
    home_xy = shapely.get_coordinates(residences.geometry.to_numpy())
    facility_xy = shapely.get_coordinates(np.asarray(points, dtype=object))
    straight = np.hypot(facility_xy[nearest, 0] - home_xy[:, :1],
                        facility_xy[nearest, 1] - home_xy[:, 1:])
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = distance_m / straight
    keep = ((nearest >= 0) & (straight >= minimum) & np.isfinite(distance_m)
            & ~np.isnan(ratio) & (home_code >= 0)[:, None])
    code = np.broadcast_to(home_code[:, None], keep.shape)[keep]
    ratio = ratio[keep]
    order = np.lexsort((ratio, code))
    code, ratio = code[order], ratio[order]
    median = np.full(len(uniques), np.nan)
    for group in np.unique(code):
        values = ratio[code == group]
        median[group] = (values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2
    position = pd.Index(uniques).get_indexer(communities["community_id"].to_numpy(dtype=object))
    return np.round(np.where(position >= 0, median[np.maximum(position, 0)], np.nan), 2)


@pytest.mark.parametrize("minimum", [300.0, 0.0, 50.0])
def test_detour_index_in_blocks_equals_the_whole_array(monkeypatch, minimum):
    n_homes, n_types, n_facilities = 900, 7, 60
    homes_xy = RNG.uniform(0, 3000, (n_homes, 2))
    facility_xy = RNG.uniform(0, 3000, (n_facilities, 2))
    facility_xy[0] = homes_xy[0]  # a facility on a home: zero straight distance
    community = RNG.choice(np.array(["a", "b", "c", "d", "e", None], dtype=object), n_homes)
    residences = gpd.GeoDataFrame({"community_id": community},
                                  geometry=shapely.points(homes_xy))
    nearest = RNG.integers(-1, n_facilities, (n_homes, n_types))
    nearest[0, 0] = 0
    straight = np.hypot(*(facility_xy[nearest] - homes_xy[:, None, :]).transpose(2, 0, 1))
    distance_m = np.round(straight * RNG.uniform(0.9, 2.5, straight.shape), 1)
    distance_m[RNG.random(distance_m.shape) < 0.05] = np.inf
    distance_m[RNG.random(distance_m.shape) < 0.05] = np.nan
    distance_m[0, 0] = 0.0  # 0 / 0: no number
    # exactly at the minimum: hypot decides, not the screen
    nearest[1, 1] = 1
    facility_xy[1] = homes_xy[1] + [minimum, 0.0]
    points = shapely.points(facility_xy)
    communities = pd.DataFrame({"community_id": ["e", "a", "z", "c", "b", "d"]})
    expected = plain_detour_index(residences, distance_m, nearest, points, communities, minimum)
    for block in (1, 7, 4096):
        monkeypatch.setattr(network_quality, "_DETOUR_BLOCK_HOMES", block)
        found = community_detour_index(residences, distance_m, nearest, points, communities,
                                       min_straight_m=minimum)
        assert same_bits(found, expected), block


def test_detour_index_without_facilities_or_pairs():
    residences = gpd.GeoDataFrame({"community_id": ["a", "b"]},
                                  geometry=shapely.points([[0, 0], [10, 10]]))
    communities = pd.DataFrame({"community_id": ["a", "b"]})
    nearest = np.full((2, 3), -1)
    found = community_detour_index(residences, np.full((2, 3), np.nan), nearest,
                                   shapely.points(np.zeros((0, 2))), communities)
    assert found.shape == (2,) and np.isnan(found).all()
    found = community_detour_index(residences, np.full((2, 3), 5.0), np.zeros((2, 3), int),
                                   shapely.points([[1, 1]]), communities)
    assert np.isnan(found).all()  # every pair closer than the minimum


@pytest.mark.parametrize("scale", [1.0, 1e-300, 1e300])
def test_sorted_in_groups_is_a_lexsort(scale):
    for _ in range(50):
        size = int(RNG.integers(1, 2000))
        code = np.sort(RNG.integers(0, int(RNG.integers(1, 3000)), size))
        with np.errstate(over="ignore"):
            value = np.exp(RNG.normal(0, 5, size)) * scale
        value[RNG.random(size) < 0.1] = 0.0
        if RNG.random() < 0.3:
            value[-1] = np.inf
        assert same_bits(_sorted_in_groups(code, value), value[np.lexsort((value, code))])


# ----------------------------------------------------------------------------- coverage


def plain_covered_population(residences, distance_m, thresholds, communities):
    covered = np.nan_to_num(distance_m, nan=np.inf) <= thresholds[None, :]
    index = pd.Index(communities["community_id"]).get_indexer(
        residences["community_id"].to_numpy(dtype=object))
    inside = index >= 0
    population = residences["population"].to_numpy(float)
    total = np.bincount(index[inside], weights=population[inside],
                        minlength=len(communities))
    covered_pop = np.stack([
        np.bincount(index[inside], weights=(population * covered[:, column])[inside],
                    minlength=len(communities)) for column in range(len(thresholds))], axis=1)
    return total, covered_pop


@pytest.mark.parametrize("outside", [False, True])
def test_covered_population_equals_the_column_by_column_sums(outside):
    n_homes = 20000
    ids = np.array(["a", "b", "c", "d"], dtype=object)
    community = RNG.choice(np.r_[ids, [None]] if outside else ids, n_homes)
    population = np.round(RNG.uniform(0, 80, n_homes), 1)
    population[:3] = [np.nan, np.inf, -0.0]
    residences = pd.DataFrame({"community_id": community, "population": population})
    distance_m = np.round(RNG.uniform(0, 2000, (n_homes, 6)), 1)
    distance_m[RNG.random(distance_m.shape) < 0.1] = np.nan
    distance_m[RNG.random(distance_m.shape) < 0.05] = np.inf
    distance_m[RNG.random(distance_m.shape) < 0.01] = -np.inf
    big = np.finfo(float).max
    thresholds = np.array([300.0, 1000.0, np.inf, big, 0.0, np.nan])
    communities = pd.DataFrame({"community_id": ["c", "a", "b", "d", "empty"]})
    with np.errstate(invalid="ignore"):  # inf or NaN people × not covered
        expected = plain_covered_population(residences, distance_m, thresholds, communities)
        found = _covered_population(residences, distance_m, thresholds, communities)
    assert same_bits(found[0], expected[0]) and same_bits(found[1], expected[1])


def test_missing_types_and_string_columns():
    coverage = RNG.choice([0.0, 0.5, np.nan], (50, 5))
    has_data = np.array([True, False, True, True, True])
    type_ids = ["t1", "t2", "t3", "t4", "t5"]
    assert _missing_types(coverage, has_data, type_ids) == [
        ",".join(type_ids[column] for column in np.flatnonzero((row == 0) & has_data))
        for row in coverage]
    codes = np.repeat(np.arange(3), 4)
    for values in (np.array(["x", "社区", "z"], dtype=object),
                   np.array(["x", None, "z"], dtype=object)):
        expected = pd.DataFrame({"c": values[codes]})
        found = pd.DataFrame({"c": _string_column(values, codes)})
        pd.testing.assert_frame_equal(found, expected)


# ----------------------------------------------------------------------------- communities


def test_unique_rows_equals_numpy_unique_axis_0():
    for cells in (RNG.integers(-3, 40, (5000, 2)), RNG.integers(0, 2, (10, 2)),
                  np.array([[0, -2**62], [1, 2**62]]), np.zeros((0, 2), dtype=np.int64)):
        expected = np.unique(cells, axis=0)
        found = _unique_rows(cells)
        assert found.dtype == expected.dtype and np.array_equal(found, expected)


def test_assign_communities_first_in_layer_order_and_none_on_edges():
    communities = gpd.GeoDataFrame(
        {"community_id": ["big", "small", "far"]},
        geometry=[shapely.box(0, 0, 100, 100), shapely.box(10, 10, 20, 20),
                  shapely.box(500, 500, 600, 600)])
    points = [[15, 15], [50, 50], [100, 50], [300, 300], [550, 550]]
    residences = gpd.GeoDataFrame(geometry=shapely.points(points))
    expected = gpd.sjoin(residences, communities, predicate="within", how="left")
    expected = expected[~expected.index.duplicated()]["community_id"].to_numpy(dtype=object)
    expected = np.where(pd.isna(expected), None, expected)
    found = assign_communities(residences, communities)
    assert found.tolist() == expected.tolist() == ["big", "big", None, None, "far"]


# ----------------------------------------------------------------------------- residences


def test_name_matcher_equals_contains_over_all_lines():
    names = ["学生宿舍", None, "教学楼", "", "派出所", None, "XX大厦", "研究所\n二部"]
    features = pd.DataFrame({"name": names,
                             "name:zh": [None, None, None, None, None, "食堂", None, None]})
    rows = np.array([0, 1, 2, 3, 4, 5, 6, 7, 1])
    lines = name_lines(features).iloc[rows]
    named = _name_matcher(features, rows)
    # with "$" pandas runs Python's re; "^\n" matches the blank line of the nameless
    for patterns in (("宿舍", "公寓"), ("教学", "[处局所站]$"), ("^\n",), ("^$",), ()):
        expected = (lines.str.contains("|".join(patterns), regex=True).to_numpy(dtype=bool)
                    if patterns else np.zeros(len(rows), dtype=bool))
        assert named(patterns).tolist() == expected.tolist(), patterns


def test_residence_rules_without_names_or_precincts():
    from planner.coverage import residences_from_buildings

    rules = ResidenceRules(building_tags=(TagRule.parse("building=yes"),), housing_tags=(),
                           housing_names=(), non_home_tags=(), non_home_names=(),
                           precinct_tags=(TagRule.parse("landuse=military"),))
    features = gpd.GeoDataFrame(
        {"building": ["yes", "yes", None], "osm_type": ["way", "way", "way"],
         "osm_id": [1, 2, 3], "landuse": [None, None, "military"]},
        geometry=[shapely.box(0, 0, 10, 10), shapely.box(200, 0, 210, 10),
                  shapely.box(150, -50, 300, 50)], crs=3857)
    quality: dict = {}
    homes = residences_from_buildings(features, rules=rules, quality=quality)
    assert homes["residence_id"].tolist() == ["rw1"]
    assert isinstance(homes.index, pd.RangeIndex)
    assert quality["excluded_non_homes"]["by_reason"]["precinct"] == 1
