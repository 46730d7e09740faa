"""Site ranking and premises reallocation: models against brute force, properties, I/O."""

from __future__ import annotations

import hashlib
import itertools
import json
import logging

import geopandas as gpd
import numpy as np
import pandas as pd
import pyogrio
import pytest
import shapely
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyproj import CRS
from scipy import sparse

from planner.access import Access
from planner.errors import PlannerError
from planner.network import WalkNetwork
from planner.sites import (
    TYPE_PALETTE,
    UNASSIGNED_COLOUR,
    GreedyRanking,
    MaximalCovering,
    Reallocation,
    aggregate_demand,
    covered_weight,
    generate_candidates,
    load_premises,
    rank_sites,
    reallocation_layer,
    site_distances,
    suitability,
    type_weights,
    write_sites_files,
)
from tests.conftest import DEMO_COMMUNITIES, ROOT

DEMO_PREMISES = ROOT / "data" / "helsinki_premises.geojson"
PROPERTY = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


# --------------------------------------------------------------------------- instances


@st.composite
def instances(draw, max_sites=7, max_demand=12):
    """A random 0/1 coverage matrix with positive integer weights."""
    n_sites = draw(st.integers(1, max_sites))
    n_demand = draw(st.integers(1, max_demand))
    cells = draw(st.lists(st.booleans(), min_size=n_sites * n_demand,
                          max_size=n_sites * n_demand))
    matrix = np.array(cells, dtype=float).reshape(n_sites, n_demand)
    weights = np.array(draw(st.lists(st.integers(1, 50), min_size=n_demand,
                                     max_size=n_demand)), dtype=float)
    return sparse.csr_matrix(matrix), weights


def brute_greedy(dense: np.ndarray, weights: np.ndarray, count: int):
    remaining = weights.copy()
    order, added = [], []
    for _ in range(count):
        gains = (dense > 0) @ remaining
        if gains.max() <= 0:
            break
        pick = int(np.argmax(gains))  # first maximum: the lowest index
        order.append(pick)
        added.append(gains[pick])
        remaining[dense[pick] > 0] = 0
    return order, added


def brute_optimum(dense: np.ndarray, weights: np.ndarray, count: int) -> float:
    best = 0.0
    for size in range(1, min(count, len(dense)) + 1):
        for subset in itertools.combinations(range(len(dense)), size):
            best = max(best, float(weights[(dense[list(subset)] > 0).any(axis=0)].sum()))
    return best


# --------------------------------------------------------------------------- greedy and exact


@PROPERTY
@given(instances(), st.integers(1, 4))
def test_greedy_matches_a_brute_force_greedy(instance, count):
    matrix, weights = instance
    ranking = GreedyRanking(matrix, weights, count=count).solve()
    order, added = brute_greedy(matrix.toarray(), weights, count)
    assert ranking.order.tolist() == order
    np.testing.assert_allclose(ranking.added, added)
    assert ranking.objective == pytest.approx(covered_weight(matrix, weights, ranking.order))


@PROPERTY
@given(instances(), st.integers(1, 4))
def test_exact_matches_brute_force_and_bounds_greedy(instance, count):
    matrix, weights = instance
    exact = MaximalCovering(matrix, weights, count).solve()
    assert exact.status == "Optimal"
    assert exact.objective == pytest.approx(brute_optimum(matrix.toarray(), weights, count))
    assert len(exact.selected) <= count
    assert exact.objective == pytest.approx(covered_weight(matrix, weights, exact.selected))
    greedy = GreedyRanking(matrix, weights, count=count).solve()
    assert greedy.objective <= exact.objective + 1e-9
    # the classic bound for greedy maximum coverage: 1 - 1/e
    assert greedy.objective >= (1 - 1 / np.e) * exact.objective - 1e-9


@PROPERTY
@given(instances(max_sites=12, max_demand=30))
def test_added_population_never_increases_along_the_greedy_ranking(instance):
    matrix, weights = instance
    ranking = GreedyRanking(matrix, weights).solve()
    assert np.all(np.diff(ranking.added) <= 1e-9)
    assert np.all(ranking.added > 0)
    # it stops only when no site adds anyone
    assert covered_weight(matrix, weights, ranking.order) == pytest.approx(
        covered_weight(matrix, weights, np.arange(matrix.shape[0])))


@PROPERTY
@given(instances(), st.data())
def test_adding_a_site_never_lowers_coverage(instance, data):
    matrix, weights = instance
    n_sites = matrix.shape[0]
    chosen = data.draw(st.lists(st.integers(0, n_sites - 1), unique=True))
    extra = data.draw(st.integers(0, n_sites - 1))
    assert covered_weight(matrix, weights, [*chosen, extra]) >= covered_weight(
        matrix, weights, chosen)
    optimum = [MaximalCovering(matrix, weights, p).solve().objective
               for p in range(1, n_sites + 1)]
    assert np.all(np.diff(optimum) >= -1e-9)


def test_greedy_ties_go_to_the_first_row():
    matrix = sparse.csr_matrix(np.array([[0, 1, 0], [1, 0, 0], [0, 0, 1]], dtype=float))
    ranking = GreedyRanking(matrix, np.array([5.0, 5.0, 5.0]), count=3).solve()
    assert ranking.order.tolist() == [0, 1, 2]


def test_the_exact_solution_can_beat_greedy():
    # greedy opens the big middle site first; the two flanks together cover everyone
    dense = np.array([[0, 1, 1, 1, 1, 0],
                      [1, 1, 1, 0, 0, 0],
                      [0, 0, 0, 1, 1, 1]], dtype=float)
    matrix, weights = sparse.csr_matrix(dense), np.ones(6)
    greedy = GreedyRanking(matrix, weights, count=2).solve()
    exact = MaximalCovering(matrix, weights, 2, start=greedy.order).solve()
    assert greedy.order.tolist() == [0, 1] and greedy.objective == 5
    assert exact.selected.tolist() == [1, 2] and exact.objective == 6
    assert exact.mip_gap == 0 and exact.bound == pytest.approx(6)


@PROPERTY
@given(instances(max_sites=6, max_demand=20))
def test_demand_aggregation_keeps_the_covering_sets(instance):
    matrix, weights = instance
    groups, group_weights, group_of = aggregate_demand(matrix, weights)
    dense, grouped = matrix.toarray() > 0, groups.toarray() > 0
    live = dense.any(axis=0)
    assert np.all((group_of >= 0) == live)
    assert np.array_equal(grouped[:, group_of[live]], dense[:, live])
    assert len({tuple(column) for column in grouped.T}) == groups.shape[1]
    assert group_weights.sum() == pytest.approx(weights[live].sum())


# --------------------------------------------------------------------------- reallocation


@st.composite
def reallocation_instances(draw):
    n_premises = draw(st.integers(1, 4))
    n_types = draw(st.integers(1, 3))
    n_demand = draw(st.integers(1, 8))
    floor_area = np.array(draw(st.lists(st.sampled_from([100.0, 300.0, 500.0, 900.0]),
                                        min_size=n_premises, max_size=n_premises)))
    minimum = draw(st.lists(st.sampled_from([None, 120.0, 250.0, 350.0, 600.0]),
                            min_size=n_types, max_size=n_types))
    allowed = np.array(draw(st.lists(st.sampled_from(["", "t0", "t1", "t0,t2"]),
                                     min_size=n_premises, max_size=n_premises)), dtype=object)
    type_ids = [f"t{index}" for index in range(n_types)]
    coverage = []
    for type_id in type_ids:
        cells = draw(st.lists(st.booleans(), min_size=n_premises * n_demand,
                              max_size=n_premises * n_demand))
        dense = np.array(cells, dtype=float).reshape(n_premises, n_demand)
        distance = dense * draw(st.sampled_from([10.0, 50.0]))
        population = np.array(draw(st.lists(st.integers(1, 40), min_size=n_demand,
                                            max_size=n_demand)), dtype=float)
        coverage.append((type_id, distance, population))
    weights = draw(st.lists(st.sampled_from([0.5, 1.0, 2.0]), min_size=n_types,
                            max_size=n_types))
    return floor_area, dict(zip(type_ids, minimum, strict=True)), allowed, coverage, weights


def build_reallocation(instance, max_per_type=None):
    from planner.sites import CoverageSets

    floor_area, minimum, allowed, coverage, weights = instance
    type_ids = [type_id for type_id, _, _ in coverage]
    suitable, need = suitability(floor_area, allowed, type_ids, minimum)
    sets = [CoverageSets(type_id, 300.0,
                         sparse.csr_matrix(distance * suitable[:, [column]]),
                         np.arange(distance.shape[1]), population)
            for column, (type_id, distance, population) in enumerate(coverage)]
    model = Reallocation(sets, floor_area, need, weights, max_per_type=max_per_type)
    return model.solve(), suitable, need


def brute_reallocation(instance, suitable, need, max_per_type=None) -> float:
    floor_area, _, _, coverage, weights = instance
    pairs = [tuple(pair) for pair in np.argwhere(suitable)]
    best = 0.0
    for mask in itertools.product([False, True], repeat=len(pairs)):
        chosen = [pair for pair, on in zip(pairs, mask, strict=True) if on]
        used = np.zeros(len(floor_area))
        per_type = np.zeros(len(coverage))
        for premises, column in chosen:
            used[premises] += need[premises, column]
            per_type[column] += 1
        if np.any(used > floor_area + 1e-9):
            continue
        if max_per_type is not None and np.any(per_type > max_per_type):
            continue
        value = 0.0
        for column, (_, distance, population) in enumerate(coverage):
            rows = [premises for premises, c in chosen if c == column]
            if rows:
                value += weights[column] * population[(distance[rows] > 0).any(axis=0)].sum()
        best = max(best, value)
    return best


@PROPERTY
@given(reallocation_instances(), st.sampled_from([None, 1]))
def test_reallocation_matches_brute_force(instance, max_per_type):
    model, suitable, need = build_reallocation(instance, max_per_type)
    assert model.objective == pytest.approx(
        brute_reallocation(instance, suitable, need, max_per_type))
    if max_per_type is not None:
        assert np.all(model.assigned.sum(axis=0) <= max_per_type)


@PROPERTY
@given(reallocation_instances())
def test_reallocation_never_assigns_a_type_to_premises_too_small(instance):
    floor_area, minimum, allowed, coverage, _ = instance
    model, suitable, need = build_reallocation(instance)
    type_ids = [type_id for type_id, _, _ in coverage]
    for premises, column in np.argwhere(model.assigned):
        least = minimum[type_ids[column]]
        names = set(filter(None, allowed[premises].split(",")))
        assert not names or type_ids[column] in names
        if least is None:  # only where the planner named it, and then it takes everything
            assert type_ids[column] in names
            assert need[premises, column] == floor_area[premises]
        else:
            assert floor_area[premises] >= least
    used = np.nansum(np.where(model.assigned, need, 0.0), axis=1)
    assert np.all(used <= floor_area + 1e-9)
    # every assignment adds someone nobody else in the plan reaches
    for premises, column in np.argwhere(model.assigned):
        served = model.newly[column][model.nearest[column] == premises]
        assert len(served) > 0


def test_suitability_rules():
    floor_area = np.array([1000.0, 200.0, np.nan, 900.0])
    allowed = np.array(["", "", "", "kindergarten"], dtype=object)
    minimum = {"elderly_day_care": 350.0, "kindergarten": None}
    suitable, need = suitability(floor_area, allowed, list(minimum), minimum)
    # big enough / too small / a new site takes anything / restricted premises
    assert suitable.tolist() == [[True, False], [False, False], [True, True], [False, True]]
    assert need[0, 0] == 350 and need[3, 1] == 900 and np.isnan(need[2]).all()


def test_type_weights(tmp_path, helsinki_analysis):
    cat = helsinki_analysis.catalogue
    types = ["elderly_day_care", "community_health_station", "kindergarten"]
    assert type_weights(cat, types) == dict.fromkeys(types, 1.0)
    health = sum(t.scene == "health" for t in cat.types)
    by_scene = type_weights(cat, types, weighting="scene")
    assert by_scene["elderly_day_care"] == pytest.approx(1 / health)
    table = tmp_path / "weights.csv"
    table.write_text("id,weight\nhealth,3\nkindergarten,2\n", encoding="utf-8")
    weights = type_weights(cat, types, table)
    assert weights["kindergarten"] == 2 and weights["elderly_day_care"] == pytest.approx(
        3 / health)
    table.write_text("id,weight\nhospitals,3\n", encoding="utf-8")
    with pytest.raises(PlannerError, match="unknown type or scene 'hospitals'"):
        type_weights(cat, types, table)


# --------------------------------------------------------------------------- distances


def lattice(n_x: int, n_y: int, spacing: float) -> WalkNetwork:
    x, y = np.meshgrid(np.arange(n_x) * spacing, np.arange(n_y) * spacing, indexing="ij")
    index = np.arange(n_x * n_y).reshape(n_x, n_y)
    u = np.r_[index[:-1, :].ravel(), index[:, :-1].ravel()]
    v = np.r_[index[1:, :].ravel(), index[:, 1:].ravel()]
    return WalkNetwork(node_ids=np.arange(n_x * n_y) + 1000,
                       node_xy=np.column_stack([x.ravel(), y.ravel()]) + 500000.0,
                       edge_u=u, edge_v=v, edge_length_m=np.full(len(u), spacing),
                       crs=CRS.from_epsg(32650))


@PROPERTY
@given(st.lists(st.tuples(st.floats(0, 400), st.floats(0, 400)), min_size=1, max_size=6),
       st.lists(st.tuples(st.floats(-30, 430), st.floats(-30, 430)), min_size=1, max_size=25),
       st.floats(50, 500))
def test_site_distances_equal_access_for_one_facility(sites, homes, limit):
    network = lattice(5, 5, 100.0)
    site_points = shapely.points(np.array(sites) + 500000.0)
    home_points = shapely.points(np.array(homes) + 500000.0)
    matrix = site_distances(network, site_points, home_points, limit,
                            block_elements=64).toarray()
    for row, point in enumerate(site_points):
        expected = Access(network, [point], ["t"], {"t": limit}).solve()\
            .point_distances(home_points)[:, 0]
        found = np.where(matrix[row] > 0, matrix[row], np.nan)
        reached = np.isfinite(expected)
        assert np.array_equal(reached, np.isfinite(found))
        np.testing.assert_allclose(np.maximum(found[reached], 0.01),
                                   np.maximum(expected[reached], 0.01), atol=1e-6)


def test_site_distances_on_helsinki_equal_access(helsinki_analysis):
    network, residences = helsinki_analysis.network, helsinki_analysis.residences
    sites = generate_candidates(network, spacing_m=250)
    points = np.r_[sites.geometry.to_numpy(), residences.geometry.to_numpy()[:10]]
    matrix = site_distances(network, points, residences.geometry, 500.0).toarray()
    for row in range(0, len(points), 3):
        expected = Access(network, [points[row]], ["t"], {"t": 500.0}).solve()\
            .point_distances(residences.geometry)[:, 0]
        found = np.where(matrix[row] > 0, matrix[row], np.nan)
        np.testing.assert_allclose(found, expected, atol=1e-6)


def test_grid_candidates_are_network_nodes_one_per_cell(helsinki_analysis):
    network = helsinki_analysis.network
    sites = generate_candidates(network, spacing_m=200)
    xy = shapely.get_coordinates(sites.geometry.to_numpy())
    node = {tuple(point) for point in np.round(network.node_xy, 6)}
    assert all(tuple(point) in node for point in np.round(xy, 6))
    cells = np.floor((xy - network.node_xy.min(axis=0)) / 200).astype(int)
    assert len({tuple(cell) for cell in cells}) == len(sites)
    assert sites["site_id"].is_unique
    again = generate_candidates(network, spacing_m=200)
    assert again["site_id"].tolist() == sites["site_id"].tolist()


# --------------------------------------------------------------------------- premises input


def premises_table(helsinki_analysis, n: int = 4) -> pd.DataFrame:
    homes = helsinki_analysis.residences.to_crs(4326).geometry.iloc[:n]
    return pd.DataFrame({
        "premises_id": [f"T{index}" for index in range(n)],
        "name": [f"test {index}" for index in range(n)],
        "floor_area_m2": [500.0, 1200.0, 80.0, 700.0][:n],
        "status": ["vacant", "idle", "vacant", "in use"][:n],
        "owner": "state", "lon": homes.x.to_numpy(), "lat": homes.y.to_numpy()})


def test_premises_from_csv_and_xlsx(helsinki_analysis, tmp_path):
    table = premises_table(helsinki_analysis)
    for name in ("premises.csv", "premises.xlsx"):
        path = tmp_path / name
        table.to_csv(path, index=False) if name.endswith("csv") else table.to_excel(
            path, index=False)
        premises = load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)
        assert premises["premises_id"].tolist() == ["T0", "T1", "T2", "T3"]
        assert premises["available"].tolist() == [True, True, True, False]
        assert premises.crs == helsinki_analysis.network.crs


def test_premises_without_floor_area_is_a_one_line_error(helsinki_analysis, tmp_path):
    path = tmp_path / "premises.csv"
    premises_table(helsinki_analysis).drop(columns="floor_area_m2").to_csv(path, index=False)
    with pytest.raises(PlannerError, match="no floor-area column") as error:
        load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)
    assert "\n" not in str(error.value) and str(path) in str(error.value)


def test_swapped_latitude_and_longitude_is_an_error(helsinki_analysis, tmp_path):
    # Helsinki lies at 60°N 25°E: both fit in ±90, so only the area tells them apart
    path = tmp_path / "premises.csv"
    table = premises_table(helsinki_analysis)
    table = table.rename(columns={"lon": "lat", "lat": "lon"})
    table.to_csv(path, index=False)
    with pytest.raises(PlannerError, match="latitude and longitude look swapped"):
        load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)
    frame = premises_table(helsinki_analysis)
    layer = gpd.GeoDataFrame(frame.drop(columns=["lon", "lat"]),
                             geometry=gpd.points_from_xy(frame["lat"], frame["lon"]), crs=4326)
    layer.to_file(tmp_path / "swapped.geojson")
    with pytest.raises(PlannerError, match="swapped"):
        load_premises(tmp_path / "swapped.geojson", helsinki_analysis.network,
                      helsinki_analysis.catalogue)


def test_rows_outside_the_area_are_skipped_with_a_warning_each(helsinki_analysis, tmp_path,
                                                               caplog):
    table = premises_table(helsinki_analysis)
    table.loc[1, ["lon", "lat"]] = [116.35, 39.96]  # Beijing
    table.loc[2, ["lon", "lat"]] = [25.2, 60.3]     # 20 km away
    table.loc[3, "status"] = "demolished"
    path = tmp_path / "premises.csv"
    table.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="planner.sites"):
        premises = load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)
    assert premises["premises_id"].tolist() == ["T0"]
    messages = [record.getMessage() for record in caplog.records]
    assert sum("outside the area" in message for message in messages) == 2
    assert any("T1" in message for message in messages)
    assert any("unknown status 'demolished'" in message for message in messages)
    table["lon"], table["lat"] = 116.35, 39.96
    table.to_csv(path, index=False)
    with pytest.raises(PlannerError, match="none of the 4 premises lies inside the area"):
        load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)


def test_bad_rows_and_allowed_types(helsinki_analysis, tmp_path, caplog):
    table = premises_table(helsinki_analysis)
    table["floor_area_m2"] = ["500", "", "-3", "700"]
    table["allowed_types"] = ["", "kindergarten", "", "hospitalz, elderly_day_care"]
    path = tmp_path / "premises.csv"
    table.to_csv(path, index=False)
    with caplog.at_level(logging.WARNING, logger="planner.sites"):
        premises = load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)
    assert premises["premises_id"].tolist() == ["T0", "T3"]
    assert premises["allowed_types"].tolist() == ["", "elderly_day_care"]
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "T1 has no positive floor area" in messages and "T2 has no positive" in messages
    assert "unknown types hospitalz" in messages
    table["premises_id"] = ["A", "A", "B", "C"]
    table.to_csv(path, index=False)
    with pytest.raises(PlannerError, match="repeats ids"):
        load_premises(path, helsinki_analysis.network, helsinki_analysis.catalogue)


def test_the_demo_premises(helsinki_analysis):
    premises = load_premises(DEMO_PREMISES, helsinki_analysis.network,
                             helsinki_analysis.catalogue)
    raw = gpd.read_file(DEMO_PREMISES)
    assert len(premises) == len(raw)  # every demo premises lies inside the area
    assert {"premises_id", "name", "floor_area_m2", "status", "owner"} <= set(raw.columns)
    assert set(raw["status"]) == {"vacant", "idle", "in use"}
    assert raw.geom_type.isin(["Polygon", "MultiPolygon"]).all()


def test_demo_premises_generator_is_deterministic(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("make_demo_premises",
                                                  ROOT / "data" / "make_demo_premises.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path / "premises.geojson")
    assert (tmp_path / "premises.geojson").read_bytes() == DEMO_PREMISES.read_bytes()


# --------------------------------------------------------------------------- the whole run


@pytest.fixture(scope="module")
def helsinki_sites(helsinki_analysis):
    return rank_sites(helsinki_analysis, DEMO_PREMISES, count=4)


def test_ranking_adds_what_the_access_model_finds(helsinki_analysis, helsinki_sites):
    """Opening the ranked sites as facilities covers exactly the cumulative population."""
    analysis = helsinki_analysis
    residences = analysis.residences
    population = residences["population"].to_numpy(float)
    ranking = helsinki_sites.ranking
    for type_id, rows in ranking.groupby("type_id"):
        threshold = analysis.catalogue.type(type_id).threshold_m
        existing = analysis.facilities[analysis.facilities["type_id"] == type_id]
        before = np.nan_to_num(residences[f"dist_{type_id}"].to_numpy(float), nan=np.inf) \
            <= threshold
        for rank in range(1, len(rows) + 1):
            opened = rows[rows["rank"] <= rank]
            points = np.r_[existing.geometry.to_numpy(), opened.geometry.to_numpy()]
            access = Access(analysis.network, points, [type_id] * len(points),
                            {type_id: threshold}).solve()
            distance = np.round(access.point_distances(residences.geometry)[:, 0], 1)
            after = np.nan_to_num(distance, nan=np.inf) <= threshold
            assert np.all(after >= before)
            added = population[after & ~before].sum()
            assert added == pytest.approx(opened["added_population"].sum(), abs=0.5)
        assert np.all(np.diff(rows["added_population"].to_numpy()) <= 0)
        assert np.all(np.diff(rows["cumulative_coverage"].to_numpy()) >= 0)


def test_ranking_and_optimum_tables(helsinki_sites):
    result = helsinki_sites
    optimal = result.optimal.set_index("type_id")
    assert (optimal["greedy_population"] <= optimal["optimal_population"] + 0.1).all()
    assert optimal["status"].eq("Optimal").all()
    assert set(result.ranking["kind"]) == {"premises"}
    available = set(result.premises.loc[result.premises["available"], "premises_id"])
    assert set(result.ranking["site_id"]) <= available
    # floor areas and restrictions hold in the ranking too
    minimum = result.parameters["min_floor_area_m2"]
    for row in result.ranking.itertuples():
        if minimum[row.type_id] is not None:
            assert row.floor_area_m2 >= minimum[row.type_id]
    school = result.premises[result.premises["allowed_types"] != ""]["premises_id"]
    assert set(result.ranking[result.ranking["site_id"].isin(school)]["type_id"]) <= {
        "kindergarten", "nursery"}


def test_reallocation_plan_on_the_demo(helsinki_analysis, helsinki_sites):
    result = helsinki_sites
    plan = result.plan
    assert len(plan) > 0 and plan["added_population"].gt(0).all()
    premises = result.premises.set_index("premises_id")
    assert premises.loc[plan["premises_id"], "status"].isin(["vacant", "idle"]).all()
    used = plan.groupby("premises_id")["floor_area_used_m2"].sum()
    assert (used <= premises.loc[used.index, "floor_area_m2"] + 1e-6).all()
    for row in plan.itertuples():
        if row.min_floor_area_m2 is not None and not pd.isna(row.min_floor_area_m2):
            assert row.floor_area_m2 >= row.min_floor_area_m2
    change = result.community_change
    assert (change["coverage_after"] >= change["coverage_before"]).all()
    assert (change["score_after"] >= change["score_before"] - 1e-9).all()
    gained = change["covered_after"].sum() - change["covered_before"].sum()
    assert 0 < gained <= plan["added_population"].sum() + 1
    assert result.reallocation["status"] == "Optimal"


def test_new_sites_where_no_premises_fit(helsinki_analysis):
    result = rank_sites(helsinki_analysis, DEMO_PREMISES, types=["police_post"], count=3,
                        reallocate=False)
    assert set(result.ranking["pool"]) == {"new sites"}
    assert set(result.ranking["kind"]) == {"generated"}
    assert result.ranking["site_id"].str.startswith("node").all()
    never = rank_sites(helsinki_analysis, DEMO_PREMISES, types=["police_post"],
                       new_sites="never", reallocate=False)
    assert len(never.ranking) == 0


def test_planner_candidates_and_public_buildings(helsinki_analysis, tmp_path):
    homes = helsinki_analysis.residences.to_crs(4326).geometry.iloc[[5, 50, 100]]
    path = tmp_path / "candidates.geojson"
    gpd.GeoDataFrame({"site_id": ["A", "B", "C"],
                      "allowed_types": ["", "elderly_day_care", "kindergarten"]},
                     geometry=homes.to_numpy(), crs=4326).to_file(path)
    result = rank_sites(helsinki_analysis, candidates=path, count=3, new_sites="never",
                        types=["elderly_day_care", "kindergarten"])
    assert set(result.ranking["kind"]) == {"candidate"}
    ranked = result.ranking.groupby("type_id")["site_id"].agg(set)
    assert ranked["elderly_day_care"] <= {"A", "B"} and ranked["kindergarten"] <= {"A", "C"}
    assert len(result.plan) == 0 and result.reallocation["status"] == "not run"
    buildings = rank_sites(helsinki_analysis, types=["elderly_day_care"], new_sites="always",
                           generate="buildings", count=3)
    assert set(buildings.ranking["kind"]) == {"generated"}
    assert buildings.ranking["site_id"].str.match(r"^b[wr]\d+$").all()
    assert (buildings.ranking["floor_area_m2"] >= 350).all()


def test_rank_sites_is_deterministic(helsinki_analysis, helsinki_sites):
    again = rank_sites(helsinki_analysis, DEMO_PREMISES, count=4)
    pd.testing.assert_frame_equal(pd.DataFrame(again.ranking.drop(columns="geometry")),
                                  pd.DataFrame(helsinki_sites.ranking.drop(columns="geometry")))
    pd.testing.assert_frame_equal(again.plan, helsinki_sites.plan)


def test_sites_table_feeds_the_report(helsinki_analysis, helsinki_sites):
    from planner.report import render_report

    ranking = pd.DataFrame(helsinki_sites.ranking.drop(columns="geometry"))
    ids = set(helsinki_analysis.communities["community_id"])
    listed = {part for text in ranking["communities"] for part in text.split(",") if part}
    assert listed <= ids and listed
    assert ranking["name"].notna().all()
    page = render_report(helsinki_analysis.communities, helsinki_analysis.summary,
                         helsinki_analysis.catalogue, lang="en", sites=ranking)
    assert page.count("Best candidate sites") == len(listed)


def test_reallocation_layer_for_the_map(helsinki_sites):
    layer = reallocation_layer(helsinki_sites)
    assert layer.crs.to_epsg() == 4326
    assert len(layer) == len(helsinki_sites.premises)
    assigned = layer[layer["assigned_types"] != ""]
    assert (assigned["added_population"] > 0).all()
    assert (layer.loc[layer["assigned_types"] == "", "colour"] == "#9e9e9e").all()
    assert assigned["popup"].str.contains("residents").all()
    assert reallocation_layer(helsinki_sites, lang="zh")["popup"].str.contains("人|未分配").all()
    # one palette colour per assigned type (the type adding the most), grey otherwise
    assert set(layer["colour"]) <= set(TYPE_PALETTE) | {UNASSIGNED_COLOUR}
    top_type = assigned["assigned_types"].str.split(",").str[0]
    assert (assigned.groupby(top_type)["colour"].nunique() == 1).all()
    assert assigned["colour"].nunique() == top_type.nunique()


# --------------------------------------------------------------------------- outputs and CLI


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def test_write_sites_adds_layers_atomically(helsinki_analysis, helsinki_sites, tmp_path,
                                            monkeypatch):
    from planner.export import write_analysis

    out = tmp_path / "out"

    def write_sites(result, folder):
        write_analysis(helsinki_analysis, folder,
                       render_map=lambda analysis, path: path.write_text(""),
                       extra_files=lambda stage: {"sites": write_sites_files(result, stage)})

    for _ in range(2):  # a second run replaces the layers
        write_sites(helsinki_sites, out)
    layers = dict(pyogrio.list_layers(out / "coverage.gpkg"))
    assert {"facilities", "residences", "communities", "walk_edges", "candidates",
            "reallocation"} <= set(layers)
    for name in ("candidates", "reallocation"):
        frame = gpd.read_file(out / "coverage.gpkg", layer=name)
        assert frame.crs.to_epsg() == 4326 and len(frame)
    assert len(gpd.read_file(out / "coverage.gpkg", layer="candidates")) == len(
        helsinki_sites.candidates)
    sites_csv = pd.read_csv(out / "sites.csv")
    assert list(sites_csv.columns[:5]) == ["type_id", "scene_id", "pool", "rank", "site_id"]
    assert {"added_population", "cumulative_coverage", "communities"} <= set(sites_csv)
    assert len(pd.read_csv(out / "reallocation.csv")) == len(helsinki_sites.plan)
    assert len(pd.read_csv(out / "reallocation_communities.csv")) > 0
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert record["sites"]["reallocation"]["status"] == "Optimal"
    before = digest(out)

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("planner.outputs.write_layers", fail)
    with pytest.raises(OSError):
        write_sites(helsinki_sites, out)
    assert digest(out) == before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]


def run_cli(*args):
    from planner.cli import PlannerGroup
    from planner.cli.sites import sites_command

    group = PlannerGroup()
    group.add_command(sites_command)
    return CliRunner().invoke(group, ["sites", *[str(arg) for arg in args]])


def test_sites_command(helsinki_pbf, tmp_path):
    from planner.cli.sites import sites_command

    out = tmp_path / "out"
    result = CliRunner().invoke(sites_command, [
        str(helsinki_pbf), "--premises", str(DEMO_PREMISES), "--communities",
        str(DEMO_COMMUNITIES), "--count", "3", "--type", "elderly_day_care", "--type",
        "kindergarten", "--min-area", "kindergarten=900", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "Reallocation plan" in result.output and "greedy" in result.output
    assert {"coverage.gpkg", "summary.csv", "map.html", "run.json", "sites.csv",
            "sites_optimal.csv", "reallocation.csv",
            "reallocation_communities.csv"} <= {p.name for p in out.iterdir()}
    plan = pd.read_csv(out / "reallocation.csv")
    assert set(plan["type_id"]) <= {"elderly_day_care", "kindergarten"}
    assert (plan.loc[plan["type_id"] == "kindergarten", "floor_area_used_m2"] == 900).all()
    record = json.loads((out / "run.json").read_text(encoding="utf-8"))
    assert str(DEMO_PREMISES) in {entry["path"] for entry in record["inputs"]}
    assert record["sites"]["parameters"]["min_floor_area_m2"]["kindergarten"] == 900


def test_sites_command_bad_premises(helsinki_pbf, helsinki_analysis, tmp_path):
    from planner.cli.sites import sites_command

    path = tmp_path / "premises.csv"
    premises_table(helsinki_analysis).drop(columns="floor_area_m2").to_csv(path, index=False)
    out = tmp_path / "out"
    args = [helsinki_pbf, "--premises", path, "--communities", DEMO_COMMUNITIES, "--out", out]
    # invoked alone, the command lets PlannerError through ...
    direct = CliRunner().invoke(sites_command, [str(arg) for arg in args])
    assert isinstance(direct.exception, PlannerError)
    # ... which the planner group turns into one line and exit code 2
    result = run_cli(*args)
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "no floor-area column" in lines[0]
    assert "Traceback" not in result.output
    assert not out.exists()
    result = run_cli(helsinki_pbf, "--premises", DEMO_PREMISES, "--type", "nonsense",
                     "--out", out)
    assert result.exit_code == 2 and "unknown facility type nonsense" in result.output


# --------------------------------------------------------------------------- finding the sites


def test_candidates_layer_ranks_labels_and_places(helsinki_analysis, helsinki_sites):
    layer = helsinki_sites.candidates
    assert {"rank", "type_id", "site_id", "label", "community_id", "added_population",
            "added_by_type", "kind"} <= set(layer.columns)
    assert layer.crs == helsinki_analysis.network.crs
    assert layer["rank"].dtype.kind == "i"
    for _, rows in layer.groupby("type_id", sort=False):
        assert rows["rank"].tolist() == list(range(1, len(rows) + 1))
    assert set(layer["kind"]) <= {"premises", "candidate", "generated"}
    assert layer["label"].notna().all() and not layer["label"].str.match(r"^node\d+").any()
    # a premises is found by its own name, an unnamed one by its street and community
    names = layer["site_id"].map(helsinki_sites.premises.set_index("premises_id")["name"])
    named = (layer["kind"] == "premises") & names.notna()
    assert named.any() and (layer.loc[named, "label"] == names[named]).all()
    unnamed = layer[(layer["kind"] == "premises") & names.isna()]
    assert len(unnamed)
    assert (unnamed["label"] != unnamed["site_id"]).all()
    assert (unnamed["label"].str.split(" · ").str[1] == unnamed["community_name"]).all()
    ids = set(helsinki_analysis.communities["community_id"])
    assert set(layer["community_id"].dropna()) <= ids and layer["community_id"].notna().any()
    # added_by_type lists every type the site is ranked for, with its residents
    for row in layer.itertuples():
        ranked = layer[layer["site_id"] == row.site_id]
        assert row.added_by_type.count("+") == len(ranked)


def test_sites_csv_coordinates_round_trip(helsinki_analysis, helsinki_sites, tmp_path):
    from planner.sites import write_sites_files

    write_sites_files(helsinki_sites, tmp_path, basemap="amap")
    table = pd.read_csv(tmp_path / "sites.csv")
    assert {"label", "community_id", "community_name", "lon", "lat", "lon_gcj02",
            "lat_gcj02"} <= set(table.columns)
    points = gpd.GeoSeries(gpd.points_from_xy(table["lon"], table["lat"]), crs=4326)
    error_m = points.to_crs(helsinki_analysis.network.crs).distance(
        helsinki_sites.ranking.geometry.reset_index(drop=True))
    assert error_m.max() < 0.2  # 6 decimals: about 0.1 m
    assert (table["rank"] == table.groupby("type_id", sort=False).cumcount() + 1).all()
    # Helsinki lies outside China: GCJ-02 leaves it where it is
    np.testing.assert_allclose(table["lon_gcj02"], table["lon"])
    layer = gpd.read_file(tmp_path / "coverage.gpkg", layer="candidates")
    assert layer.crs.to_epsg() == 4326 and len(layer) == len(helsinki_sites.ranking)
    assert layer["rank"].dtype.kind == "i"
    plain = tmp_path / "osm"
    plain.mkdir()
    write_sites_files(helsinki_sites, plain)
    assert "lon_gcj02" not in pd.read_csv(plain / "sites.csv").columns


def test_generated_sites_carry_street_names_on_the_bupt_extract(beijing_analysis):
    from planner.sites.labels import SEPARATOR

    result = rank_sites(beijing_analysis, types=["kindergarten", "elderly_day_care"],
                        count=3, new_sites="always", reallocate=False)
    generated = result.candidates[result.candidates["kind"] == "generated"]
    assert len(generated)
    assert not generated["label"].str.contains(r"node\d", regex=True).any()
    streets = set(pd.Series(beijing_analysis.network.edge_name).dropna().astype(str))
    first = generated["label"].str.split(SEPARATOR, regex=False).str[0]
    assert first.isin(streets).all()
    assert first.str.contains(r"[\u4e00-\u9fff]", regex=True).any()
    assert generated["community_id"].notna().all()
    assert (generated["label"].str.split(SEPARATOR, regex=False).str.len() == 2).all()


def test_chinese_tables_are_chinese(helsinki_analysis, tmp_path):
    from planner.sites import plan_table, ranking_table

    table = premises_table(helsinki_analysis).assign(status=["空置", "低效", "在用", "闲置"])
    path = tmp_path / "premises.csv"
    table.to_csv(path, index=False)
    result = rank_sites(helsinki_analysis, path, types=["elderly_day_care", "kindergarten"],
                        count=3)
    text = ranking_table(result, lang="zh") + plan_table(result, lang="zh")
    for english in ("elderly_day_care", "kindergarten", "generated", "premises", "vacant",
                    "idle", "greedy", "Optimal", "(outside)"):
        assert english not in text
    assert "养老" in text or "幼儿园" in text
    plan = plan_table(result, lang="zh")
    used = set(result.plan["premises_id"])
    written = dict(zip(table["premises_id"].astype(str), table["status"], strict=True))
    for premises_id in used:
        assert written[premises_id] in plan
