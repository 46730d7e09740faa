"""The compiled bounded search (planner.search) against scipy's Dijkstra."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.sparse.csgraph import dijkstra

from planner import access as access_module
from planner import search
from planner.access import Access
from planner.network import min_csr
from planner.search import TerminalGraph


def reduced_graph(rng: np.random.Generator, n_terminals: int, n_arcs: int, n_facilities: int,
                  integer: bool):
    """A graph laid out like Access's reduced graph: terminals (symmetric arcs),
    then one virtual node per facility with two one-way legs to terminals."""
    u = rng.integers(0, n_terminals, n_arcs)
    v = rng.integers(0, n_terminals, n_arcs)
    keep = u != v
    u, v = u[keep], v[keep]
    if integer:  # small integers: many exactly equal path lengths
        length = rng.integers(1, 4, len(u)).astype(float)
        legs = rng.integers(0, 4, 2 * n_facilities).astype(float)
    else:
        length = rng.uniform(0.01, 50, len(u))
        legs = rng.uniform(0, 30, 2 * n_facilities)
    virtual = n_terminals + np.repeat(np.arange(n_facilities), 2)
    ends = rng.integers(0, n_terminals, 2 * n_facilities)
    return min_csr(np.concatenate([u, v, virtual]), np.concatenate([v, u, ends]),
                   np.concatenate([length, length, legs]), n_terminals + n_facilities)


def scipy_search(graph, n_terminals: int, facilities: np.ndarray, limit: float):
    distance, _, origin = dijkstra(graph, directed=True, indices=n_terminals + facilities,
                                   min_only=True, limit=limit, return_predecessors=True)
    origin = origin[:n_terminals]
    return distance[:n_terminals], np.where(origin >= n_terminals, origin - n_terminals, -1)


def lowest_nearest(graph, n_terminals: int, facilities: np.ndarray, limit: float):
    """Per terminal, the lowest facility index among those at its (exact) distance."""
    nearest = np.full(n_terminals, np.inf)
    lowest = np.full(n_terminals, -1)
    for start in range(0, len(facilities), 100):  # ascending: the first at the minimum wins
        chunk = facilities[start:start + 100]
        each = dijkstra(graph, directed=True, indices=n_terminals + chunk,
                        limit=limit)[:, :n_terminals]
        best = each.min(axis=0)
        first = chunk[np.argmin(each, axis=0)]
        better = best < nearest
        lowest[better], nearest[better] = first[better], best[better]
    return lowest


graphs = st.tuples(st.integers(0, 2**32 - 1), st.integers(1, 40), st.integers(0, 120),
                   st.integers(1, 12), st.booleans())


@settings(max_examples=150, deadline=None)
@given(graphs, st.data())
def test_equals_scipy_distances_and_lowest_nearest_facility(case, data):
    seed, n_terminals, n_arcs, n_facilities, integer = case
    rng = np.random.default_rng(seed)
    graph = reduced_graph(rng, n_terminals, n_arcs, n_facilities, integer)
    facilities = np.sort(rng.choice(n_facilities, rng.integers(1, n_facilities + 1),
                                    replace=False))
    full, _ = scipy_search(graph, n_terminals, facilities, np.inf)
    reached = np.unique(full[np.isfinite(full)])
    # the limit: a distance some terminal has exactly (kept: scipy keeps <= limit), or any
    if len(reached) and data.draw(st.booleans()):
        limit = float(data.draw(st.sampled_from(list(reached))))
    else:
        limit = data.draw(st.floats(0, 200))
    expected, scipy_origin = scipy_search(graph, n_terminals, facilities, limit)
    distance, origin = TerminalGraph(graph, n_terminals).search(facilities, limit)
    np.testing.assert_array_equal(distance, expected)
    assert origin.dtype == np.int32
    assert (origin[~np.isfinite(distance)] == -1).all()
    lowest = lowest_nearest(graph, n_terminals, facilities, limit)
    if integer:  # exact sums: the lowest of the facilities at exactly that distance
        np.testing.assert_array_equal(origin, lowest)
    else:  # no exact ties: scipy reaches each terminal from the same facility
        unique = origin == lowest
        np.testing.assert_array_equal(origin[unique], scipy_origin[unique])
        assert unique.mean() > 0.9 or len(unique) < 10


def test_terminal_at_exactly_the_limit_is_reached():
    graph = min_csr([0, 1, 1, 2, 3], [1, 0, 2, 1, 0], [2.5, 2.5, 1.0, 1.0, 0.5], 4)
    distance, origin = TerminalGraph(graph, 3).search(np.array([0]), 3.0)
    np.testing.assert_array_equal(distance, [0.5, 3.0, np.inf])
    np.testing.assert_array_equal(origin, [0, 0, -1])


def test_searches_reuse_their_work_arrays_independently():
    rng = np.random.default_rng(3)
    graph = reduced_graph(rng, 300, 900, 20, integer=False)
    searcher = TerminalGraph(graph, 300)
    first = searcher.search(np.arange(10), 40.0)
    searcher.search(np.arange(10, 20), 80.0)
    again = searcher.search(np.arange(10), 40.0)
    for ours, theirs in zip(first, again, strict=True):
        np.testing.assert_array_equal(ours, theirs)


def test_too_many_buckets_fall_back_to_scipy(monkeypatch):
    rng = np.random.default_rng(5)
    graph = reduced_graph(rng, 200, 600, 10, integer=False)
    facilities = np.arange(10)
    compiled = TerminalGraph(graph, 200).search(facilities, 60.0)
    monkeypatch.setattr(search, "MAX_BUCKETS", 1)
    fallback = TerminalGraph(graph, 200).search(facilities, 60.0)
    for ours, theirs in zip(compiled, fallback, strict=True):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        fallback[0], scipy_search(graph, 200, facilities, 60.0)[0])


def test_graph_without_terminal_arcs():
    graph = min_csr([2, 2], [0, 1], [1.0, 4.0], 3)
    distance, origin = TerminalGraph(graph, 2).search(np.array([0]), 5.0)
    np.testing.assert_array_equal(distance, [1.0, 4.0])
    np.testing.assert_array_equal(origin, [0, 0])


def test_arc_into_a_virtual_node_is_refused():
    graph = min_csr([0, 1], [1, 0], [1.0, 1.0], 2)
    with pytest.raises(ValueError, match="virtual node"):
        TerminalGraph(graph, 1)


def test_access_on_a_real_graph_equals_scipy(beijing_analysis):
    """Every type's search on the contracted Beijing graph: scipy's distances and,
    where no two facilities are at exactly the same distance, its facilities."""
    analysis = beijing_analysis
    facilities = analysis.facilities
    type_ids = list(facilities["type_id"].unique())
    access = Access(analysis.network, facilities.geometry, facilities["type_id"],
                    dict.fromkeys(type_ids, 1200.0))
    access._reduce()
    graph, n_terminals = access._reduced_graph, access._contraction.n_terminals
    searcher = TerminalGraph(graph, n_terminals)
    for facility_ids in access._facilities_by_type().values():
        expected, expected_origin = scipy_search(graph, n_terminals, facility_ids, 1200.0)
        distance, origin = searcher.search(facility_ids, 1200.0)
        np.testing.assert_array_equal(distance, expected)
        lowest = lowest_nearest(graph, n_terminals, facility_ids, 1200.0)
        np.testing.assert_array_equal(origin, lowest)
        unique = origin == expected_origin
        assert unique.mean() > 0.99


def test_threads_write_what_one_thread_does(beijing_analysis, monkeypatch):
    """The searches shared among threads, prepared on a second thread while the
    facilities are snapped (as on a city's network), fill the same distance and
    first-reached facility matrices as one thread."""
    facilities = beijing_analysis.facilities
    limits = dict.fromkeys(facilities["type_id"].unique(), 1000.0)
    monkeypatch.setattr(access_module, "PARALLEL_MIN_NODES", 0)  # prepared ahead, threads
    monkeypatch.setattr(access_module, "COMPILED_MIN_NODES", 0)  # the compiled search
    single = Access(beijing_analysis.network, facilities.geometry, facilities["type_id"],
                    limits, workers=1)
    single._ahead.result()
    single.solve()
    threaded = Access(beijing_analysis.network, facilities.geometry, facilities["type_id"],
                      limits, workers=2)
    assert threaded._ahead is not None
    threaded.solve()
    assert threaded._ahead is None
    np.testing.assert_array_equal(single.node_distance_m, threaded.node_distance_m)
    np.testing.assert_array_equal(single._node_source, threaded._node_source)
    for column, (rows, value, facility) in single._on_chain().items():
        again = threaded._on_chain()[column]
        for expected, found in zip((rows, value, facility), again, strict=True):
            np.testing.assert_array_equal(expected, found)


def test_an_access_prepared_ahead_pickles(helsinki_analysis, monkeypatch):
    """The thread preparing the search is waited for, not pickled."""
    monkeypatch.setattr(access_module, "PARALLEL_MIN_NODES", 0)
    monkeypatch.setattr(access_module, "COMPILED_MIN_NODES", 0)
    facilities = helsinki_analysis.facilities
    access = Access(helsinki_analysis.network, facilities.geometry, facilities["type_id"],
                    dict.fromkeys(facilities["type_id"].unique(), 800.0))
    again = pickle.loads(pickle.dumps(access)).solve()
    np.testing.assert_array_equal(again.node_distance_m, access.solve().node_distance_m)


def test_an_error_ahead_is_raised_when_the_result_is_asked_for():
    def fails():
        message = "broken network"
        raise ValueError(message)

    ahead = access_module._Ahead(fails)
    with pytest.raises(ValueError, match="broken network"):
        ahead.result()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(0, 60))
def test_first_smallest_equals_a_lexicographic_sort(seed, n_values):
    """Per key the smallest value and of equal ones the first: what a sort by key,
    value and position keeps first."""
    rng = np.random.default_rng(seed)
    key = rng.integers(0, 6, n_values)
    value = rng.integers(0, 3, n_values).astype(float)
    order = np.lexsort((np.arange(n_values), value, key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]] if n_values else order
    np.testing.assert_array_equal(access_module._first_smallest(key, value), first)


def test_a_district_is_searched_by_scipy_with_the_same_distances(beijing_analysis, monkeypatch):
    """Below COMPILED_MIN_NODES nodes the search is scipy's (no numba to load): the
    same distances as the compiled search, and the same first facility wherever no
    two facilities reach a node over exactly the same distance."""
    from planner.search_scipy import ScipyTerminalGraph

    facilities = beijing_analysis.facilities
    limits = dict.fromkeys(facilities["type_id"].unique(), 1000.0)
    district = Access(beijing_analysis.network, facilities.geometry, facilities["type_id"],
                      limits).solve()
    assert isinstance(district._searcher()[0], ScipyTerminalGraph)
    monkeypatch.setattr(access_module, "COMPILED_MIN_NODES", 0)
    compiled = Access(beijing_analysis.network, facilities.geometry, facilities["type_id"],
                      limits, workers=1).solve()
    assert isinstance(compiled._searcher()[0], TerminalGraph)
    np.testing.assert_array_equal(district.node_distance_m, compiled.node_distance_m)
    same = district._node_source == compiled._node_source
    assert same.mean() > 0.99
    assert np.isfinite(district.node_distance_m[~same]).all()  # ties, never unreached


def test_a_smaller_city_is_contracted_ahead_and_searched_by_scipy(beijing_analysis,
                                                                   monkeypatch):
    """From PARALLEL_MIN_NODES up to COMPILED_MIN_NODES nodes the contraction is made on
    the second thread and scipy searches it on this one: the same as a district's."""
    from planner.search_scipy import ScipyTerminalGraph

    facilities = beijing_analysis.facilities
    limits = dict.fromkeys(facilities["type_id"].unique(), 1000.0)
    district = Access(beijing_analysis.network, facilities.geometry, facilities["type_id"],
                      limits).solve()
    monkeypatch.setattr(access_module, "PARALLEL_MIN_NODES", 0)
    city = Access(beijing_analysis.network, facilities.geometry, facilities["type_id"], limits)
    assert city._ahead is not None
    city.solve()
    assert isinstance(city._searcher()[0], ScipyTerminalGraph)
    assert city._workers(city._reduced_graph.shape[0], 2) == 1
    np.testing.assert_array_equal(district.node_distance_m, city.node_distance_m)
    np.testing.assert_array_equal(district._node_source, city._node_source)
