"""Homes and communities found by a forked child beside the search (a city's run).

:func:`planner.pipeline.analyze` finds the residences and the communities in
a forked child while it snaps the facilities and searches, when the walking
network is large (:data:`planner.settings.min_edges_beside`). These tests
force that path on the real Helsinki extract and hold it to the in-process
one: the same analysis, the same records, the same errors.
"""

from __future__ import annotations

import dataclasses
import logging

import pandas as pd
import pytest

from planner import pipeline, staging
from planner import settings as planner_settings
from planner.errors import PlannerError
from tests.conftest import DEMO_COMMUNITIES


@pytest.fixture
def forking(monkeypatch):
    """Fork even when an earlier test left idle threads behind (Dask's, in test_batch)."""
    monkeypatch.setattr(staging.threading, "active_count", lambda: 1)
    if not staging._can_fork():
        pytest.skip("no fork here (not Linux, or parallel work switched off)")


def _analyze(area, monkeypatch, *, beside: bool, **options):
    monkeypatch.setattr(planner_settings, "min_edges_beside", 0 if beside else 10**12)
    stages: list[str] = []
    analysis = pipeline.analyze(area, progress=lambda stage, _: stages.append(stage),
                                **options)
    return analysis, stages


def test_homes_found_beside_equal_those_found_in_turn(helsinki_area, monkeypatch, forking):
    forked, forked_stages = _analyze(helsinki_area, monkeypatch, beside=True,
                                     communities=DEMO_COMMUNITIES)
    in_turn, in_turn_stages = _analyze(helsinki_area, monkeypatch, beside=False,
                                       communities=DEMO_COMMUNITIES)
    pd.testing.assert_frame_equal(forked.residences, in_turn.residences)
    pd.testing.assert_frame_equal(forked.communities, in_turn.communities)
    pd.testing.assert_frame_equal(forked.summary, in_turn.summary)
    assert forked.quality == in_turn.quality
    assert forked.inputs == in_turn.inputs
    # every stage is reported once, in the same order, with the child's timings
    assert forked_stages == in_turn_stages
    assert list(forked.timings_s) == list(in_turn.timings_s)
    assert forked.timings_s["residences"] > 0


def test_an_area_without_homes_fails_the_same_beside(helsinki_area, monkeypatch, forking):
    find_homes = pipeline.residences_from_buildings

    def no_homes(features, **_):
        return find_homes(features.iloc[:0])

    monkeypatch.setattr(pipeline, "residences_from_buildings", no_homes)
    messages = []
    for beside in (True, False):
        with pytest.raises(PlannerError, match="no residences found") as raised:
            _analyze(helsinki_area, monkeypatch, beside=beside)
        messages.append(str(raised.value))
    assert messages[0] == messages[1]


def test_the_childs_warnings_reach_the_parent(helsinki_area, monkeypatch, forking, caplog):
    # every building without storeys: the warning on the default storeys is logged
    features = helsinki_area.features.drop(columns=["building:levels"], errors="ignore")
    area = dataclasses.replace(helsinki_area, features=features)
    with caplog.at_level(logging.WARNING, logger="planner"):
        analysis, _ = _analyze(area, monkeypatch, beside=True)
    logged = [record.getMessage() for record in caplog.records
              if "storeys" in record.getMessage()]
    assert logged
    assert logged[0] in analysis.quality["warnings"]


@pytest.mark.parametrize("as_squares", [False, True])
def test_service_areas_drawn_ahead_equal_those_drawn_after(helsinki_area, monkeypatch, forking,
                                                          as_squares):
    from planner.layers import analysis_layers

    if as_squares:  # a city's drawing: the child also builds the squares
        monkeypatch.setattr(planner_settings, "max_isochrone_coordinates", 0)

    ahead, stages = _analyze(helsinki_area, monkeypatch, beside=True,
                             communities=DEMO_COMMUNITIES, service_areas=True)
    after, _ = _analyze(helsinki_area, monkeypatch, beside=False,
                        communities=DEMO_COMMUNITIES, service_areas=True)
    assert ahead.street_reach is not None and after.street_reach is None
    assert "street_reach" in stages
    assert ahead.street_reach.network is ahead.network
    # the analysis' own reach is used once its network is known again
    drawn_ahead, drawn_after = analysis_layers(ahead), analysis_layers(after)
    assert list(drawn_ahead) == list(drawn_after)
    assert ("service_cells" in drawn_after) is as_squares
    assert (ahead.street_reach._cells is not None) is as_squares
    for name, frame in drawn_after.items():
        pd.testing.assert_frame_equal(drawn_ahead[name], frame, check_like=False)


def test_streets_drawn_in_the_child_equal_those_drawn_in_process(helsinki_area, monkeypatch,
                                                                 forking):
    import shapely

    from planner import layers
    from planner.isochrones import analysis_service_areas

    ahead, _ = _analyze(helsinki_area, monkeypatch, beside=True,
                        communities=DEMO_COMMUNITIES, service_areas=True)
    reach = ahead.street_reach
    assert not reach.drawn_as_squares and reach._cells is None
    # drawn in the child, sent back with the reach as WKB, read on first use
    assert reach._streets is None and reach._streets_wkb is not None
    in_process = analysis_service_areas(ahead)

    def wkb(frame):
        return [shapely.to_wkb(geometry) for geometry in frame.geometry.to_numpy()]

    drawn = reach.streets()
    assert drawn.drop(columns="geometry").equals(in_process.drop(columns="geometry"))
    assert wkb(drawn) == wkb(in_process) and drawn.crs == in_process.crs
    # the layers take the child's drawing, not a second one of their own ...
    monkeypatch.setattr(layers, "analysis_service_areas", None)
    assert wkb(layers.analysis_layers(ahead)["isochrones"]) == wkb(in_process)
    # ... unless the drawing asked for is another one
    monkeypatch.setattr(layers, "analysis_service_areas", analysis_service_areas)
    monkeypatch.setattr(planner_settings, "isochrone_simplify_m", 10.0)
    coarser = layers.analysis_layers(ahead)["isochrones"]
    assert wkb(coarser) == wkb(analysis_service_areas(ahead)) != wkb(in_process)
