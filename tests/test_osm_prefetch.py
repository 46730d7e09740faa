"""Reading an OSM file ahead in a forked child gives what reading it in place gives.

:func:`planner.osm_prefetch.prefetch_selection` runs libosmium's passes in a
child while ``planner analyze`` imports; :func:`planner.osm_reader.open_osm`
takes them only for the same file and keys, and otherwise (other keys, a
failed or killed child, an unsorted or corrupt file) reads as it always did.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from planner import osm_prefetch, osm_reader
from planner.catalogue import load_catalogue
from planner.errors import PlannerError


def _alone() -> None:
    """Wait for the other threads (a reader's feature thread) to end: the prefetch
    forks only from a process without other threads."""
    deadline = time.monotonic() + 10
    while threading.active_count() > 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    if threading.active_count() > 1:
        running = ", ".join(thread.name for thread in threading.enumerate())
        pytest.skip(f"other threads run in this process ({running}): no fork")


@pytest.fixture
def forkable():
    _alone()


@pytest.fixture
def taken(monkeypatch):
    """What :func:`planner.osm_reader.open_osm` got from the prefetch, call by call."""
    seen = []

    def spy(*args):
        prepared = osm_prefetch.take_prefetched(*args)
        seen.append(prepared is not None)
        return prepared

    monkeypatch.setattr(osm_reader, "take_prefetched", spy)
    return seen


def _keys() -> list[str]:
    return osm_reader.merge_keys(load_catalogue().feature_keys())


def _assert_same_reading(first, second) -> None:
    pd.testing.assert_frame_equal(first.nodes, second.nodes)
    pd.testing.assert_frame_equal(first.edges, second.edges)
    one, other = first.features(), second.features()
    pd.testing.assert_frame_equal(pd.DataFrame(one.drop(columns="geometry")),
                                  pd.DataFrame(other.drop(columns="geometry")))
    assert one.geometry.geom_equals_exact(other.geometry, tolerance=0).all()
    assert (one.geometry.to_wkb() == other.geometry.to_wkb()).all()


def test_catalogue_keys_read_without_the_model_equal_the_model_s(tmp_path):
    assert osm_prefetch.catalogue_feature_keys() == load_catalogue().feature_keys()
    own = tmp_path / "own.toml"  # no name rules nor residences: the packaged ones count
    own.write_text(
        '[[scenes]]\nid = "edu"\nzh = "教育"\nen = "Education"\n\n'
        '[[types]]\nid = "school"\nscene = "edu"\nzh = "学校"\nen = "School"\n'
        'level = "15min"\nthreshold_m = 1000\n'
        'tags = ["amenity=school & !isced:level", "leisure ~ ^(park|garden)$"]\n'
        'weak_tags = ["building:use=school"]\n', encoding="utf-8")
    assert osm_prefetch.catalogue_feature_keys(own) == load_catalogue(own).feature_keys()
    broken = tmp_path / "broken.toml"
    broken.write_text('[[types]]\nid = "x"\ntags = ["amenity"]\n', encoding="utf-8")
    assert osm_prefetch.catalogue_feature_keys(broken) is None
    assert osm_prefetch.catalogue_feature_keys(tmp_path / "absent.toml") is None


def test_the_prefetched_reading_equals_the_reading_in_place(beijing_osm, forkable, taken):
    keys = _keys()
    in_place = osm_reader.open_osm(beijing_osm, keys)
    _alone()
    with osm_prefetch.prefetch_selection(beijing_osm) as started:
        assert started
        ahead = osm_reader.open_osm(beijing_osm, keys)
    assert taken == [False, True]
    _assert_same_reading(in_place, ahead)


def test_the_pbf_reading_and_relations_are_taken_too(helsinki_pbf, forkable, taken):
    keys = _keys()
    in_place = osm_reader.open_osm(helsinki_pbf, keys)
    _alone()
    with osm_prefetch.prefetch_selection(helsinki_pbf):
        ahead = osm_reader.open_osm(helsinki_pbf, keys)
    assert taken == [False, True]
    assert (ahead.features()["osm_type"] == "relation").any()
    _assert_same_reading(in_place, ahead)


def test_other_keys_or_another_file_are_read_in_place(beijing_osm, helsinki_pbf, forkable,
                                                       taken):
    keys = osm_reader.merge_keys(["amenity", "sport"])  # not the packaged catalogue's
    in_place = osm_reader.open_osm(beijing_osm, keys)
    _alone()
    with osm_prefetch.prefetch_selection(beijing_osm):
        osm_reader.open_osm(helsinki_pbf, _keys())  # another file: the prefetch waits
        assert osm_prefetch._pending is not None
        other = osm_reader.open_osm(beijing_osm, keys)
        assert osm_prefetch._pending is None
    assert taken == [False, False, False]
    _assert_same_reading(in_place, other)


def test_a_killed_child_costs_only_time(beijing_osm, forkable, taken):
    keys = _keys()
    with osm_prefetch.prefetch_selection(beijing_osm):
        pending = osm_prefetch._pending
        pending.worker.process.kill()
        ahead = osm_reader.open_osm(beijing_osm, keys)
    assert taken == [False]
    assert pending.opl_fd == -1 and pending.worker.process.exitcode is not None
    _assert_same_reading(osm_reader.open_osm(beijing_osm, keys), ahead)


def test_leaving_the_block_ends_the_child_and_frees_its_file(beijing_osm, forkable):
    with osm_prefetch.prefetch_selection(beijing_osm):
        pending = osm_prefetch._pending
        descriptor = pending.opl_fd
        assert Path(f"/proc/self/fd/{descriptor}").exists()
    assert osm_prefetch._pending is None
    assert pending.worker.process.exitcode is not None
    assert not Path(f"/proc/self/fd/{descriptor}").exists()
    assert not pending.worker.process.is_alive()


def _one_line_error(path: Path, keys: list[str]) -> str:
    with pytest.raises(PlannerError) as caught:
        osm_reader.open_osm(path, keys)
    return str(caught.value)


@pytest.mark.parametrize(("name", "content"), [
    ("corrupt.osm.pbf", b"\x00\x00\x00\x0dnot a pbf at all" * 50),
    ("corrupt.osm", b"<?xml version='1.0'?><osm version='0.6'><node id='1' lat="),
    ("no_ways.osm", b"<?xml version='1.0'?><osm version='0.6'>"
                    b"<node id='1' lat='39.9' lon='116.3' version='1'/></osm>"),
])
def test_bad_files_give_today_s_error(tmp_path, forkable, taken, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    keys = _keys()
    expected = _one_line_error(path, keys)
    _alone()
    with osm_prefetch.prefetch_selection(path) as started:
        assert started
        assert _one_line_error(path, keys) == expected
    assert str(path) in expected and "\n" not in expected
    assert taken == [False, False]
    assert sorted(tmp_path.iterdir()) == [path]


def test_an_unsorted_file_is_read_again_with_its_locations_first(tmp_path, forkable, taken):
    node_lines = [f'<node id="{i + 1}" lat="{39.96 + 0.001 * (i // 4):.4f}" '
                  f'lon="{116.35 + 0.001 * (i % 4):.4f}" version="1"/>' for i in range(16)]
    way_lines = [f'<way id="{100 + row}" version="1">'
                 + "".join(f'<nd ref="{row * 4 + column + 1}"/>' for column in range(4))
                 + '<tag k="highway" v="residential"/></way>' for row in range(4)]
    path = tmp_path / "unsorted.osm"
    path.write_text('<?xml version="1.0" encoding="UTF-8"?>\n<osm version="0.6">\n'
                    + "\n".join(way_lines + node_lines) + "\n</osm>\n", encoding="utf-8")
    keys = _keys()
    in_place = osm_reader.open_osm(path, keys)
    _alone()
    with osm_prefetch.prefetch_selection(path):
        ahead = osm_reader.open_osm(path, keys)
    assert taken == [False, True]  # taken, found mostly unlocated, read again
    assert len(ahead.edges) == 12
    _assert_same_reading(in_place, ahead)


def test_nothing_starts_where_forking_is_unsafe_or_useless(beijing_osm, tmp_path, forkable,
                                                           monkeypatch):
    from planner import settings

    with osm_prefetch.prefetch_selection(tmp_path / "absent.osm") as started:
        assert not started
    with osm_prefetch.prefetch_selection(None) as started:
        assert not started
    monkeypatch.setattr(settings, "parallel_outputs", False)
    with osm_prefetch.prefetch_selection(beijing_osm) as started:
        assert not started
    monkeypatch.setattr(settings, "parallel_outputs", True)
    monkeypatch.setattr(settings, "cache_dir", str(tmp_path / "cache"))
    with osm_prefetch.prefetch_selection(beijing_osm) as started:
        assert not started
    monkeypatch.setattr(settings, "cache_dir", None)
    release = threading.Event()
    other = threading.Thread(target=release.wait)
    other.start()
    try:
        with osm_prefetch.prefetch_selection(beijing_osm) as started:
            assert not started
    finally:
        release.set()
        other.join()


def test_the_cli_reads_ahead(helsinki_pbf, tmp_path, forkable, taken):
    from planner.cli import main

    result = CliRunner().invoke(main, ["analyze", str(helsinki_pbf), "--out",
                                       str(tmp_path / "out"), "--lang", "en"])
    assert result.exit_code == 0, result.output
    assert taken == [True]
    assert osm_prefetch._pending is None
    assert os.listdir(tmp_path) == ["out"]


def test_rule_keys_read_the_catalogues_grammar():
    """The keys of a rule as the catalogue's parser reads them; a broken condition refused."""
    from planner.catalogue_model import TagRule
    from planner.tag_syntax import rule_keys

    text = "amenity=school|kindergarten & !disused:amenity & isced:level~^[12] & name!=x"
    assert rule_keys(text) == TagRule.parse(text).keys == {
        "amenity", "disused:amenity", "isced:level", "name"}
    with pytest.raises(ValueError, match="cannot parse condition"):
        rule_keys("amenity school")
