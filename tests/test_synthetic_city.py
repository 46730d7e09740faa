"""A small synthetic city written as a real PBF and analysed end to end.

The generator (``benchmarks/synthetic_city.py``) is what the city-scale
benchmark uses; here a city of about 8,000 walking nodes is written into
``tmp_path`` and read like any city. The same graph also checks the access
engine's contraction of degree-two chains against the uncontracted search.
A tiny city checks the XML output (same objects as the PBF, read by osmnx)
and the OSMnx-tutorial baseline of ``benchmarks/bench_tutorial.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import dijkstra

from benchmarks.synthetic_city import CitySpec, facility_tags, generate, synthetic_city
from planner import settings
from planner.access import Access
from planner.catalogue import classify, load_catalogue
from planner.network import build_network, contract
from planner.pipeline import analyze
from planner.sources import load_area

pytest.importorskip("osmium")


@pytest.fixture(scope="module")
def city_pbf(tmp_path_factory):
    directory = tmp_path_factory.mktemp("city")
    return synthetic_city(8_000, 2_500, seed=3, directory=directory)


@pytest.fixture(scope="module")
def city_analysis(city_pbf):
    return analyze(city_pbf)


@pytest.fixture(scope="module")
def city_area(city_pbf):
    return load_area(city_pbf, feature_keys=load_catalogue().feature_keys())


@pytest.fixture(scope="module")
def tiny_city(tmp_path_factory):
    """A city of about 1,500 walking nodes and few facilities, as PBF and as XML."""
    directory = tmp_path_factory.mktemp("tiny")
    options = {"seed": 1, "facility_density": 0.02, "directory": directory}
    pbf = synthetic_city(1_500, 300, **options)
    return pbf, synthetic_city(1_500, 300, fmt="xml", **options)


def test_generation_is_deterministic_by_seed():
    first = generate(CitySpec(nodes=3_000, buildings=800, seed=5))
    again = generate(CitySpec(nodes=3_000, buildings=800, seed=5))
    other = generate(CitySpec(nodes=3_000, buildings=800, seed=6))
    np.testing.assert_array_equal(first.node_xy, again.node_xy)
    assert [tags for _, tags in first.ways] == [tags for _, tags in again.ways]
    assert first.counts == again.counts
    assert not np.array_equal(first.node_xy[:100], other.node_xy[:100])
    assert abs(first.counts["network_nodes"] - 3_000) < 600
    assert first.counts["residential_buildings"] == 800


def test_facility_tags_classify_as_their_type():
    import geopandas as gpd
    import pandas as pd
    import shapely

    catalogue = load_catalogue()
    tags = facility_tags(catalogue)
    frame = pd.DataFrame(list(tags.values()))
    frame["osm_type"], frame["osm_id"] = "node", np.arange(len(frame))
    features = gpd.GeoDataFrame(frame, geometry=shapely.points(np.zeros((len(frame), 2))),
                                crs=3857)
    found = classify(features, catalogue)
    for index, type_id in enumerate(tags):
        assert type_id in set(found.loc[found["osm_id"] == index, "type_id"]), type_id


def test_every_type_is_found_and_distances_are_sane(city_analysis):
    analysis = city_analysis
    catalogue = analysis.catalogue
    assert set(analysis.facilities["type_id"]) == set(catalogue.type_ids)
    assert analysis.network.n_nodes > 5_000
    residences = analysis.residences
    assert 2_000 <= len(residences) <= 2_500  # tiny footprints are sheds, not homes
    assert residences["on_network"].mean() > 0.99
    thresholds = catalogue.thresholds_m()
    reached = 0
    for type_id in catalogue.type_ids:
        values = residences[f"dist_{type_id}"].to_numpy(float)
        finite = values[np.isfinite(values)]
        assert np.all(finite >= 0)
        assert np.all(finite <= thresholds[type_id] * settings.search_limit_factor + 0.1)
        reached += len(finite) > 0
    assert reached == len(catalogue.type_ids)
    coverage = analysis.communities["score"].dropna()
    assert len(coverage) > 10 and 0.05 < coverage.mean() < 0.95


def test_river_and_expressway_are_not_walked(city_area):
    area = city_area
    assert not area.edges["highway"].isin(["motorway"]).any()
    # the river cuts every north-south street but the bridges: the graph is still one piece
    network = build_network(area, largest_component=False)
    from scipy.sparse.csgraph import connected_components

    count, labels = connected_components(network.csr, directed=False)
    assert np.bincount(labels).max() > 0.95 * network.n_nodes


def test_contracted_search_equals_the_full_graph(city_area):
    catalogue = load_catalogue()
    area = city_area
    network = build_network(area)
    reduced = contract(network)
    assert reduced.n_terminals < 0.7 * network.n_nodes
    facilities = classify(area.features, catalogue)
    limits = {t: v * settings.search_limit_factor for t, v in catalogue.thresholds_m().items()}
    access = Access(network, facilities.geometry, facilities["type_id"], limits).solve()
    graph = access._graph
    for column in range(0, len(access.type_ids), 7):
        type_id = access.type_ids[column]
        full = dijkstra(graph, indices=access.sources(type_id), min_only=True,
                        limit=access.limits_m[column])[:network.n_nodes]
        ours = access.node_distance_m[:, column]
        assert np.array_equal(np.isfinite(full), np.isfinite(ours))
        finite = np.isfinite(full)
        np.testing.assert_allclose(ours[finite], full[finite], rtol=1e-9, atol=1e-9)


def test_worker_processes_give_the_same_distances(city_area):
    catalogue = load_catalogue()
    area = city_area
    network = build_network(area)
    facilities = classify(area.features, catalogue)
    limits = dict(list(catalogue.thresholds_m().items())[:6])
    one = Access(network, facilities.geometry, facilities["type_id"], limits,
                 workers=1).solve()
    two = Access(network, facilities.geometry, facilities["type_id"], limits,
                 workers=2).solve()
    np.testing.assert_array_equal(one.node_distance_m, two.node_distance_m)


def test_xml_output_holds_the_same_objects_as_the_pbf(tiny_city):
    import osmium

    from benchmarks.bench_scale import read_floor

    pbf, xml = tiny_city
    assert pbf.name.endswith(".osm.pbf") and xml.name.endswith(".osm")
    assert xml.read_bytes().startswith(b"<?xml")

    def objects(path):
        return [(entity.type_str(), entity.id, dict(entity.tags),
                 [node.ref for node in entity.nodes] if entity.is_way() else
                 (round(entity.location.lon, 7), round(entity.location.lat, 7)))
                for entity in osmium.FileProcessor(str(path))]

    assert objects(pbf) == objects(xml)
    assert read_floor(pbf)["ways"] == read_floor(xml)["ways"] > 0


def test_tutorial_baseline_reads_the_xml(tiny_city, tmp_path):
    from benchmarks.bench_tutorial import tutorial_pipeline

    result = tutorial_pipeline(tiny_city[1], tmp_path, max_facilities=12)
    assert list(result["stages"]) == ["imports", "graph and features", "classify", "project",
                                      "nearest nodes", "isochrones", "coverage", "map"]
    assert result["nodes"] > 300 and result["homes"] == 300
    assert result["facilities"] == 12
    assert 0.0 < result["mean_coverage"] <= 1.0
    assert (tmp_path / "map.html").stat().st_size > 10_000
