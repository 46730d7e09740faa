"""Bad inputs and faults, table-driven: one line naming the input, exit 2, nothing lost.

Two tables:

* ``BLOCK_CASES`` call the checking building blocks directly
  (:mod:`planner.validate`, :mod:`planner.staging`, :mod:`planner.encodings`,
  :mod:`planner.facility_lists`) and expect a one-line PlannerError naming
  the input;
* ``CLI_CASES`` run the real command line on inputs generated here, with an
  earlier good result in ``--out``, and expect exit code 2, one line on stderr
  naming the input, no traceback, and the earlier result byte-identical.

The CLI cases run in-process (click's runner: the same code without the
second of imports per case, so that the module stays under two minutes); a few
real processes check what a user sees (exit code, no traceback), and real
SIGINT/SIGTERM at several moments of a real run check that ``--out`` holds
the earlier complete result or the new one, and no temporary folder.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import LineString, Point, Polygon, box

from planner import settings, staging, validate
from planner.encodings import decode_bytes, read_text_table
from planner.errors import PlannerError
from planner.preflight import read_user_layer
from tests.conftest import SHARED_OSM

BUPT = SHARED_OSM / "beijing-haidian-bupt" / "map.osm"
BUPT_BOUNDS = (116.348, 39.956, 116.355, 39.964)


# ----------------------------------------------------------------------------- inputs

def write_csv(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def layer(path: Path, geometries, crs="EPSG:4326", **columns) -> Path:
    frame = gpd.GeoDataFrame(columns or {"name": [f"c{i}" for i in range(len(geometries))]},
                             geometry=list(geometries), crs=crs)
    frame.to_file(path, engine="pyogrio")
    return path


def square(lon: float, lat: float, size: float = 0.002) -> Polygon:
    return box(lon, lat, lon + size, lat + size)


SPIKE = Polygon([(116.349, 39.957), (116.353, 39.957), (116.353, 39.961), (116.351, 39.961),
                 (116.351, 39.963), (116.351, 39.961), (116.349, 39.961)])


def frame_of(geometries, crs="EPSG:4326") -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({"name": [f"r{i}" for i in range(len(geometries))]},
                            geometry=list(geometries), crs=crs)


# ----------------------------------------------------------------------------- building blocks

def _number(option, value):
    return lambda tmp: validate.check_number(value, option)


def _crs(value, bounds=BUPT_BOUNDS):
    return lambda tmp: validate.check_metric_crs(value, bounds)


def _population(values):
    return lambda tmp: validate.check_population(pd.Series(values), path=tmp / "pop.csv")


def _out(make):
    def run(tmp):
        return staging.check_output_dir(make(tmp))
    return run


def _foreign(tmp):
    (tmp / "mine").mkdir()
    (tmp / "mine" / "notes.txt").write_text("keep")
    return tmp / "mine"


def _under_file(tmp):
    (tmp / "f").write_text("x")
    return tmp / "f" / "out"


def _existing_file(tmp):
    (tmp / "out.txt").write_text("x")
    return tmp / "out.txt"


def _layer_check(geometries, crs="EPSG:4326", kind="polygon", bounds=BUPT_BOUNDS):
    return lambda tmp: validate.check_layer(frame_of(geometries, crs), what="communities",
                                            path=tmp / "c.gpkg", kind=kind, area_bounds=bounds)


def _nocrs(geometries):
    return lambda tmp: validate.infer_crs(frame_of(geometries, crs=None), what="communities",
                                          path=tmp / "c.gpkg")


def _list(text, saved_as="utf-8", **kwargs):
    def run(tmp):
        from planner.catalogue import load_catalogue
        from planner.facility_lists import read_facility_list

        path = write_csv(tmp / "list.csv", text, saved_as)
        return read_facility_list(path, load_catalogue(), **kwargs)
    return run


# (id, call(tmp_path), regex the one-line message must match, text it must name)
BLOCK_CASES = [
    ("walk-speed-0", _number("--walk-speed", 0), "between 0.3 and 3", "--walk-speed"),
    ("walk-speed-negative", _number("--walk-speed", -1), "between", "--walk-speed"),
    ("walk-speed-inf", _number("--walk-speed", math.inf), "between", "--walk-speed"),
    ("walk-speed-nan", _number("--walk-speed", math.nan), "between", "--walk-speed"),
    ("walk-speed-text-inf", _number("walk_speed", "inf"), "between", "walk_speed"),
    ("walk-speed-word", _number("walk_speed", "fast"), "must be a number", "walk_speed"),
    ("walk-speed-too-fast", _number("--walk-speed", 30), "between", "--walk-speed"),
    ("walk-speed-bool", _number("walk_speed", True), "must be a number", "walk_speed"),
    ("tile-0", _number("--tile-m", 0), "≥ 100", "--tile-m"),
    ("tile-negative", _number("--tile-m", -500), "≥ 100", "--tile-m"),
    ("tile-inf", _number("--tile-m", math.inf), "≥ 100", "--tile-m"),
    ("time-limit-negative", _number("--time-limit", -5), "> 0", "--time-limit"),
    ("time-limit-0", _number("--time-limit", 0), "> 0", "--time-limit"),
    ("count-0", _number("--count", 0), "≥ 1", "--count"),
    ("count-fraction", _number("--count", 2.5), "whole number", "--count"),
    ("workers-0", _number("workers", 0), "≥ 1", "workers"),
    ("threshold-inf", _number("threshold_m", math.inf), "> 0", "threshold_m"),
    ("bbox-reversed", lambda tmp: validate.check_bbox([116.4, 39.9, 116.3, 40.0]),
     "not a box", "--bbox"),
    ("bbox-off-globe", lambda tmp: validate.check_bbox([116, 39, 200, 40]), "not a box",
     "--bbox"),
    ("bbox-nan", lambda tmp: validate.check_bbox([math.nan, 39, 116, 40]), "not a box", "--bbox"),
    ("crs-unknown-code", _crs("EPSG:99999"), "not a known", "--crs"),
    ("crs-garbage", _crs("not a crs"), "not a known", "--crs"),
    ("crs-empty", _crs(""), "not a known", "--crs"),
    ("crs-geographic-wgs84", _crs("EPSG:4326"), "not projected.*EPSG:4548", "--crs"),
    ("crs-geographic-cgcs2000", _crs("EPSG:4490"), "not projected", "--crs"),
    ("crs-utm-far-away", _crs("EPSG:32601"), "distorts lengths there by 41%", "--crs"),
    ("crs-web-mercator", _crs("EPSG:3857"), "distorts lengths", "--crs"),
    ("crs-feet", _crs("EPSG:2249"), "not metres", "--crs"),
    ("crs-gauss-kruger-wrong-zone", _crs("EPSG:4491"), "distorts lengths", "--crs"),
    ("population-negative", _population(["10", "-3", "5"]), "rows 2 are negative", "pop.csv"),
    ("population-nan", _population(["10", "nan"]), "rows 2 are not finite", "pop.csv"),
    ("population-inf", _population(["inf", "1"]), "rows 1 are not finite", "pop.csv"),
    ("population-empty", _population(["1", ""]), "rows 2 are empty", "pop.csv"),
    ("population-word", _population(["many", "1"]), "rows 1 are not numbers", "pop.csv"),
    ("population-many-rows", _population([-1] * 9), r"rows 1, 2, 3, 4, 5 … \(9\)", "pop.csv"),
    ("layer-no-crs-metres", _nocrs([square(440000, 4420000, 100)]), "has no CRS", "c.gpkg"),
    ("layer-outside-area", _layer_check([square(24.9, 60.1)]), "no feature", "c.gpkg"),
    ("layer-points-as-communities", _layer_check([Point(116.35, 39.96)]), "needs polygon",
     "c.gpkg"),
    ("layer-lines-as-population",
     _layer_check([LineString([(116.35, 39.96), (116.351, 39.96)])], kind="point"),
     "needs point", "c.gpkg"),
    ("layer-flat-polygon", _layer_check([Polygon([(116.35, 39.96), (116.351, 39.96),
                                                  (116.352, 39.96)])]),
     "cannot be repaired", "c.gpkg"),
    ("layer-nan-coordinates", _layer_check([Polygon([(116.35, 39.96), (math.nan, 39.96),
                                                     (116.352, 39.97)])]),
     "not finite", "c.gpkg"),
    ("out-existing-file", _out(_existing_file), "existing file", "--out"),
    ("out-foreign-folder", _out(_foreign), "holds other files", "--out"),
    ("out-under-a-file", _out(_under_file), "is a file, not a folder", "--out"),
    ("out-name-too-long", _out(lambda tmp: tmp / ("x" * 240)), "too long", "--out"),
    ("out-unwritable", _out(lambda tmp: Path("/proc/no-such/out")), "cannot write", "--out"),
    ("out-root", _out(lambda tmp: Path("/")), "cannot replace", "--out"),
    ("out-contains-input", lambda tmp: staging.check_output_dir(
        tmp, inputs=(tmp / "data" / "communities.gpkg",)), "contains the input", "--out"),
    ("out-file-is-folder", lambda tmp: staging.check_output_file(tmp), "is a folder", "--out"),
    ("text-undecodable", lambda tmp: decode_bytes(b"\xff\xfe\xfa\x80\x81", tmp / "t.csv"),
     "neither UTF-8 nor GBK", "t.csv"),
    ("text-wrong-explicit", lambda tmp: decode_bytes("名称".encode("gbk"), tmp / "t.csv",
                                                     "utf-8"), "not valid utf-8", "t.csv"),
    ("text-unknown-encoding", lambda tmp: decode_bytes(b"a", tmp / "t.csv", "klingon"),
     "unknown encoding", "--encoding"),
    ("text-empty-table", lambda tmp: read_text_table(write_csv(tmp / "e.csv", "")),
     "cannot read the table", "e.csv"),
    ("list-swapped-gbk", _list("名称,经度,纬度\n站,39.96,116.35\n站,39.9,116.3\n", "gbk"),
     "swapped", "list.csv"),
    ("list-no-coordinates-gb18030", _list("名称,地址\n站,北京\n", "gb18030"),
     "longitude and latitude", "list.csv"),
    ("list-unknown-type", _list("name,lon,lat,type_id\na,116.35,39.96,spa\n"),
     "unknown type_id 'spa' in row 1", "list.csv"),
    ("list-wrong-encoding", _list("名称,经度,纬度\n站,116.35,39.96\n", "gbk", encoding="utf-8"),
     "not valid utf-8", "list.csv"),
]


@pytest.fixture(autouse=True)
def english(monkeypatch):
    """Messages in English, whatever a CLI run before set (restored after each case)."""
    monkeypatch.setattr(settings, "lang", "en")


@pytest.mark.parametrize(("call", "pattern", "named"),
                         [pytest.param(*case[1:], id=case[0]) for case in BLOCK_CASES])
def test_building_block_refuses(tmp_path, call, pattern, named):
    with pytest.raises(PlannerError, match=pattern) as caught:
        call(tmp_path)
    message = str(caught.value)
    assert "\n" not in message and named in message


# Repairs and inferences: accepted with one warning line.
def test_spike_is_repaired_with_a_warning(caplog):
    with caplog.at_level("WARNING"):
        fixed = validate.check_layer(frame_of([SPIKE, square(116.349, 39.957)]),
                                     what="communities", path="c.gpkg", area_bounds=BUPT_BOUNDS)
    assert fixed.geometry.is_valid.all() and set(fixed.geom_type) == {"Polygon"}
    assert "repaired" in caplog.text and "rows 1" in caplog.text


def test_lonlat_layer_without_crs_is_taken_as_wgs84(caplog):
    with caplog.at_level("WARNING"):
        frame = validate.infer_crs(frame_of([square(116.35, 39.96)], crs=None),
                                   what="communities", path="c.geojson")
    assert frame.crs.to_epsg() == 4326 and "taken as WGS 84" in caplog.text


def test_partial_overlap_warns_naming_rows(caplog):
    with caplog.at_level("WARNING"):
        inside = validate.check_overlap(frame_of([square(116.35, 39.96), square(24.9, 60.1)]),
                                        BUPT_BOUNDS, what="communities", path="c.gpkg")
    assert inside.tolist() == [True, False]
    assert "1 of 2 features" in caplog.text and "rows 2" in caplog.text


def test_chinese_messages(monkeypatch):
    monkeypatch.setattr(settings, "lang", "zh")
    with pytest.raises(PlannerError, match="必须在 0.3 到 3 m/s 之间"):
        validate.check_number(0, "--walk-speed")
    with pytest.raises(PlannerError, match="长度变形"):
        validate.check_metric_crs("EPSG:32601", BUPT_BOUNDS)


@pytest.mark.parametrize("code", ["EPSG:32650", "EPSG:4548", "EPSG:4547", "EPSG:4586"])
def test_metric_crs_accepted(code):
    assert validate.check_metric_crs(code, BUPT_BOUNDS).is_projected


@pytest.mark.parametrize("code", [4490, 4547, 4548])
def test_cgcs2000_layers_are_accepted(code):
    frame = frame_of([square(116.35, 39.96)]).to_crs(code)
    checked = validate.check_layer(frame, what="communities", area_bounds=BUPT_BOUNDS)
    assert abs(checked.to_crs(4326).total_bounds[0] - 116.35) < 1e-6


@pytest.mark.parametrize(("bounds", "kind"), [
    (BUPT_BOUNDS, "utm"), ((10.0, 86.0, 10.2, 86.1), "aeqd"), ((0.0, -89.0, 1.0, -88.5), "aeqd"),
    ((-70.0, -82.0, -69.0, -81.5), "aeqd"), ((24.9, 60.1, 25.0, 60.2), "utm")])
def test_local_metric_crs_everywhere(bounds, kind):
    crs = validate.local_metric_crs(bounds)
    assert crs.is_projected and ("UTM" in crs.name) == (kind == "utm")
    validate.check_metric_crs(crs, bounds)  # true to scale within the extract


def test_numbers_pass_through():
    assert validate.check_options({"--walk-speed": "1.2", "--count": 3.0, "--tile-m": None}) \
        == {"--walk-speed": 1.2, "--count": 3, "--tile-m": None}


# ----------------------------------------------------------------------------- the real CLI

def run_cli(args: list[str]) -> subprocess.CompletedProcess:
    """The installed command in a fresh process, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "planner.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=300,
                          cwd=Path(__file__).resolve().parents[1])


def run_in_process(args: list[str]) -> subprocess.CompletedProcess:
    """The same command through click's runner, in this process (no import cost)."""
    from click.testing import CliRunner

    from planner.cli import main

    result = CliRunner().invoke(main, [str(arg) for arg in args])
    stderr = result.stderr
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        stderr += "Traceback (escaped the command): " + repr(result.exception)
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, stderr)


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


@pytest.fixture(scope="module")
def good_result(tmp_path_factory) -> Path:
    """One complete earlier result (the BUPT extract), copied into each case's ``--out``."""
    if not BUPT.exists():
        pytest.skip(f"{BUPT} is absent (../shared not beside the checkout)")
    out = tmp_path_factory.mktemp("good") / "out"
    done = run_cli(["analyze", BUPT, "--lang", "en", "--out", out])
    if done.returncode != 0:
        pytest.skip(f"the good run fails today: {done.stderr.strip().splitlines()[-1:]}")
    return out


def _catalogue_text() -> str:
    return (Path(__file__).resolve().parents[1] / "planner" / "catalogue.toml").read_text(
        encoding="utf-8")


def c_source_missing(tmp):
    return ["analyze", tmp / "nope.osm"], "nope.osm"


def c_source_empty(tmp):
    (tmp / "empty.osm").write_bytes(b"")
    return ["analyze", tmp / "empty.osm"], "empty.osm"


def c_source_truncated(tmp):
    text = BUPT.read_text(encoding="utf-8")
    (tmp / "cut.osm").write_text(text[: len(text) // 2], encoding="utf-8")
    return ["analyze", tmp / "cut.osm"], "cut.osm"


def c_source_garbage_pbf(tmp):
    (tmp / "junk.osm.pbf").write_bytes(bytes(range(256)) * 40)
    return ["analyze", tmp / "junk.osm.pbf"], "junk.osm.pbf"


def c_source_text(tmp):
    (tmp / "notes.txt").write_text("hello")
    return ["analyze", tmp / "notes.txt"], "notes.txt"


def c_source_folder(tmp):
    (tmp / "folder.osm").mkdir()
    return ["analyze", tmp / "folder.osm"], "folder.osm"


def c_source_no_ways(tmp):
    (tmp / "empty_map.osm").write_text(
        '<?xml version="1.0"?><osm version="0.6"><node id="1" lat="39.96" lon="116.35"/></osm>')
    return ["analyze", tmp / "empty_map.osm"], "empty_map.osm"


def c_no_source(tmp):
    return ["analyze"], "SOURCE"


def _analyze(*options):
    return ["analyze", BUPT, *options]


def c_option(option, value):
    return lambda tmp: (_analyze(option, value), option)


def c_communities(make, name="communities.geojson"):
    def case(tmp):
        path = tmp / name
        make(path)
        return _analyze("--communities", path), name
    return case


def c_population(make, name="population.geojson"):
    def case(tmp):
        path = tmp / name
        make(path)
        return _analyze("--population", path), name
    return case


def c_facilities(text, name="list.csv", encoding="utf-8", extra=()):
    def case(tmp):
        path = write_csv(tmp / name, text, encoding)
        return _analyze("--facilities", path, *extra), name
    return case


def c_catalogue(edit, name="catalogue.toml"):
    def case(tmp):
        path = tmp / name
        path.write_text(edit(_catalogue_text()), encoding="utf-8")
        return _analyze("--catalogue", path), name
    return case


def c_out(make):
    def case(tmp):
        return _analyze("--out", make(tmp)), "--out"
    return case


def _points(path, values, column="population"):
    layer(path, [Point(116.350 + i * 0.001, 39.960) for i in range(len(values))],
          **{column: values})


def _sites(*options, named=None):
    def case(tmp):
        premises = tmp / "premises.csv"
        premises.write_text("premises_id,name,floor_area_m2,lon,lat\np1,a,500,116.351,39.96\n")
        return ["sites", BUPT, "--premises", premises, *options], named or options[0]
    return case


def c_map(make):
    def case(tmp):
        args, named = make(tmp)
        return ["map", *args], named
    return case


def c_map_empty(tmp):
    (tmp / "emptyres").mkdir()
    return ["map", tmp / "emptyres"], "emptyres"


def c_batch(text, name="areas.toml"):
    def case(tmp):
        path = tmp / name
        path.write_text(text.replace("BUPT", str(BUPT)), encoding="utf-8")
        return ["batch", path], name
    return case


def write_bytes(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def no_facilities_extract(path: Path) -> Path:
    """A street grid with apartment blocks and not one facility."""
    lines, ids, nid, wid = ['<?xml version="1.0"?>', '<osm version="0.6">'], {}, 1, 1
    for i in range(6):
        for j in range(6):
            ids[i, j] = nid
            lines.append(f'<node id="{nid}" lat="{39.956 + i * 0.0012:.6f}" '
                         f'lon="{116.348 + j * 0.0012:.6f}"/>')
            nid += 1
    for i in range(6):
        for refs in ([ids[i, j] for j in range(6)], [ids[j, i] for j in range(6)]):
            nds = "".join(f'<nd ref="{ref}"/>' for ref in refs)
            lines.append(f'<way id="{wid}">{nds}<tag k="highway" v="residential"/></way>')
            wid += 1
    for i in range(5):
        for j in range(5):
            lat, lon = 39.9563 + i * 0.0012, 116.3483 + j * 0.0012
            refs = []
            for d_lat, d_lon in ((0, 0), (0, 0.0005), (0.0004, 0.0005), (0.0004, 0)):
                lines.append(f'<node id="{nid}" lat="{lat + d_lat:.6f}" '
                             f'lon="{lon + d_lon:.6f}"/>')
                refs.append(nid)
                nid += 1
            nds = "".join(f'<nd ref="{ref}"/>' for ref in [*refs, refs[0]])
            lines.append(f'<way id="{wid}">{nds}<tag k="building" v="apartments"/>'
                         '<tag k="building:levels" v="6"/></way>')
            wid += 1
    path.write_text("\n".join([*lines, "</osm>"]), encoding="utf-8")
    return path


def c_map_catalogue_deleted(tmp):
    """An older results folder (no catalogue.toml) whose custom catalogue was deleted."""
    results = tmp / "res"
    shutil.copytree(tmp / "out", results)
    (results / "catalogue.toml").unlink()
    record = json.loads((results / "run.json").read_text(encoding="utf-8"))
    record["catalogue"]["path"] = str(tmp / "gone.toml")
    (results / "run.json").write_text(json.dumps(record), encoding="utf-8")
    return ["map", results, "--out", tmp / "m.html"], "gone.toml"


def _bad_toml(text):
    return text.replace("[[scenes]]", "[[scenes]\n", 1)


def _threshold_inf(text):
    return text.replace("threshold_m = 1000", "threshold_m = inf", 1)


def _empty_keyword(text):
    import re

    return re.sub(r"names = \[", 'names = ["", ', text, count=1)


# (id, case(tmp_path) -> (arguments, text the message must name), marks)
CLI_CASES = [
    ("source-missing", c_source_missing, ()),
    ("source-empty", c_source_empty, ()),
    ("source-truncated", c_source_truncated, ()),
    ("source-garbage-pbf", c_source_garbage_pbf, ()),
    ("source-plain-text", c_source_text, ()),
    ("source-folder", c_source_folder, ()),
    ("source-no-ways", c_source_no_ways, ()),
    ("source-none", c_no_source, ()),
    ("walk-speed-word", c_option("--walk-speed", "fast"), ()),
    ("walk-speed-0", c_option("--walk-speed", "0"), ()),
    ("walk-speed-negative", c_option("--walk-speed", "-1"), ()),
    ("walk-speed-inf", c_option("--walk-speed", "inf"), ()),
    ("walk-speed-nan", c_option("--walk-speed", "nan"), ()),
    ("walk-speed-30", c_option("--walk-speed", "30"), ()),
    ("tile-0", c_option("--tile-m", "0"), ()),
    ("tile-negative", c_option("--tile-m", "-5"), ()),
    ("tile-inf", c_option("--tile-m", "inf"), ()),
    ("tile-word", c_option("--tile-m", "big"), ()),
    ("crs-unknown", c_option("--crs", "EPSG:99999"), ()),
    ("crs-garbage", c_option("--crs", "nonsense"), ()),
    ("crs-geographic", c_option("--crs", "EPSG:4326"), ()),
    ("crs-utm-far-away", c_option("--crs", "EPSG:32601"), ()),
    ("crs-web-mercator", c_option("--crs", "EPSG:3857"), ()),
    ("crs-feet", c_option("--crs", "EPSG:2249"), ()),
    ("lang-unknown", c_option("--lang", "fr"), ()),
    ("basemap-unknown", c_option("--basemap", "google"), ()),
    ("facilities-crs-unknown", c_option("--facilities-crs", "wgs72"), ()),
    ("tianditu-without-key", lambda tmp: (_analyze("--basemap", "tianditu"), "Tianditu"), ()),
    ("communities-missing", lambda tmp: (_analyze("--communities", tmp / "c.gpkg"), "c.gpkg"),
     ()),
    ("communities-garbage", c_communities(lambda p: p.write_text("{not json")), ()),
    ("communities-empty", c_communities(
        lambda p: p.write_text('{"type": "FeatureCollection", "features": []}')), ()),
    ("communities-no-crs-metres", c_communities(
        lambda p: layer(p, [square(440000, 4420000, 300)], crs=None), "c.shp"), ()),
    ("communities-outside", c_communities(lambda p: layer(p, [square(24.9, 60.1)])),
     ()),
    ("communities-points", c_communities(lambda p: layer(p, [Point(116.35, 39.96)])),
     ()),
    ("communities-flat", c_communities(lambda p: layer(p, [Polygon(
        [(116.35, 39.96), (116.351, 39.96), (116.352, 39.96)])])), ()),
    ("communities-csv-no-coordinates", c_communities(
        lambda p: p.write_text("name,area\na,1\n"), "communities.csv"), ()),
    ("communities-shp-without-dbf", c_communities(
        lambda p: (layer(p, [square(116.35, 39.96)]), p.with_suffix(".dbf").unlink(),
                   p.with_suffix(".shx").unlink()), "c.shp"), ()),
    ("population-missing", lambda tmp: (_analyze("--population", tmp / "p.gpkg"), "p.gpkg"),
     ()),
    ("population-negative", c_population(lambda p: _points(p, [100.0, -5.0])), ()),
    ("population-nan", c_population(lambda p: _points(p, [100.0, np.nan])), ()),
    ("population-inf", c_population(lambda p: _points(p, [np.inf, 3.0])), ()),
    ("population-outside", c_population(
        lambda p: layer(p, [Point(24.9, 60.1)], population=[10.0])), ()),
    ("population-garbage", c_population(lambda p: p.write_bytes(b"\x00\x01garbage")), ()),
    ("facilities-missing", lambda tmp: (_analyze("--facilities", tmp / "l.csv"), "l.csv"), ()),
    ("facilities-swapped", c_facilities("name,lon,lat\na,39.96,116.35\nb,39.9,116.3\n"), ()),
    ("facilities-swapped-gbk", c_facilities("名称,经度,纬度\n站,39.96,116.35\n站,39.9,116.3\n",
                                            encoding="gbk"), ()),
    ("facilities-unknown-type", c_facilities("name,lon,lat,type_id\na,116.35,39.96,spa\n"), ()),
    ("facilities-no-coordinates", c_facilities("name,address\na,b\n"), ()),
    ("facilities-empty", c_facilities(""), ()),
    ("facilities-off-globe", c_facilities("name,lon,lat\na,116.35,95\nb,116.36,39.96\n"), ()),
    ("facilities-xlsx-corrupt", lambda tmp: (
        _analyze("--facilities", write_csv(tmp / "l.xlsx", "not a zip")), "l.xlsx"), ()),
    ("catalogue-missing", lambda tmp: (_analyze("--catalogue", tmp / "cat.toml"), "cat.toml"),
     ()),
    ("catalogue-bad-toml", c_catalogue(_bad_toml), ()),
    ("catalogue-empty-file", c_catalogue(lambda text: ""), ()),
    ("catalogue-threshold-inf", c_catalogue(_threshold_inf), ()),
    ("catalogue-empty-keyword", c_catalogue(_empty_keyword), ()),
    ("out-existing-file", c_out(_existing_file), ()),
    ("out-foreign-folder", c_out(_foreign), ()),
    ("out-under-a-file", c_out(_under_file), ()),
    ("out-name-too-long", c_out(lambda tmp: tmp / ("x" * 240)), ()),
    ("out-unwritable", c_out(lambda tmp: Path("/proc/no-such/out")), ()),
    ("sites-premises-missing", lambda tmp: (["sites", BUPT, "--premises", tmp / "p.csv"],
                                            "p.csv"), ()),
    ("sites-count-0", _sites("--count", "0"), ()),
    ("sites-time-limit-negative", _sites("--time-limit", "-5"), ()),
    ("sites-time-limit-0", _sites("--time-limit", "0"), ()),
    ("sites-type-unknown", _sites("--type", "spa", named="spa"), ()),
    ("sites-weights-missing", lambda tmp: _sites("--weights", tmp / "w.csv", named="w.csv")(tmp),
     ()),
    ("map-results-missing", c_map(lambda tmp: ([tmp / "none"], "none")), ()),
    ("map-results-empty", c_map_empty, ()),
    ("batch-missing", lambda tmp: (["batch", tmp / "areas.toml", "--out", tmp / "b"],
                                   "areas.toml"), ()),
    ("batch-bad-toml", c_batch("[[areas]\nname = 'x'\n"), ()),
    ("batch-areas-not-a-table", c_batch('areas = "x"\n'), ()),
    ("batch-walk-speed-word", c_batch(
        'walk_speed = "fast"\n[[areas]]\nname = "bupt"\nsource = "BUPT"\n'), ()),
    ("batch-wrong-suffix", c_batch("x", name="areas.json"), ()),
    # added with the wiring of issue 12
    ("tile-minus-1", c_option("--tile-m", "-1"), ()),
    ("crs-cgcs2000-geographic", c_option("--crs", "EPSG:4490"), ()),
    ("crs-gauss-kruger-far-zone", c_option("--crs", "EPSG:4491"), ()),
    ("crs-empty", c_option("--crs", ""), ()),
    ("encoding-unknown", c_option("--encoding", "klingon"), ()),
    ("bbox-reversed", lambda tmp: (["analyze", "--bbox", "116.4", "39.9", "116.3", "40.0"],
                                   "--bbox"), ()),
    ("bbox-off-globe", lambda tmp: (["analyze", "--bbox", "116.3", "39.9", "200", "40.0"],
                                    "--bbox"), ()),
    ("facilities-wrong-encoding", c_facilities("名称,经度,纬度\n站,116.35,39.96\n",
                                               encoding="gbk", extra=("--encoding", "utf-8")),
     ()),
    ("facilities-undecodable", lambda tmp: (_analyze("--facilities", write_bytes(
        tmp / "list.csv", b"name,lon,lat\n\xff\xfe\x80\x81,116.35,39.96\n")), "list.csv"), ()),
    ("population-word", c_population(lambda p: _points(p, ["100", "many"])), ()),
    ("population-all-outside", c_population(lambda p: layer(
        p, [Point(24.9, 60.1), Point(24.91, 60.1)], population=[5.0, 6.0])), ()),
    ("communities-all-outside-metric", c_communities(
        lambda p: layer(p, [square(440000, 4420000, 300)], crs="EPSG:4547"), "c.gpkg"), ()),
    ("communities-lines", c_communities(lambda p: layer(
        p, [LineString([(116.35, 39.96), (116.351, 39.96)])])), ()),
    ("no-facilities", lambda tmp: (["analyze", no_facilities_extract(tmp / "nofac.osm")],
                                   "nofac.osm"), ()),
    ("catalogue-negative-threshold", c_catalogue(
        lambda text: text.replace("threshold_m = 1000", "threshold_m = -5", 1)), ()),
    ("catalogue-nan-threshold", c_catalogue(
        lambda text: text.replace("threshold_m = 1000", "threshold_m = nan", 1)), ()),
    ("out-name-250-bytes", c_out(lambda tmp: tmp / ("y" * 250)), ()),
    ("out-chinese-name-too-long", c_out(lambda tmp: tmp / ("结果" * 40)), ()),
    ("out-root", c_out(lambda tmp: Path("/")), ()),
    ("sites-spacing-0", _sites("--spacing", "0"), ()),
    ("sites-time-limit-inf", _sites("--time-limit", "inf"), ()),
    ("sites-count-word", _sites("--count", "many"), ()),
    ("sites-max-per-type-negative", _sites("--max-per-type", "-1"), ()),
    ("sites-out-existing-file", lambda tmp: _sites("--out", _existing_file(tmp),
                                                    named="--out")(tmp), ()),
    ("map-out-is-folder", lambda tmp: (["map", tmp / "out", "--out", tmp], "--out"), ()),
    ("map-catalogue-deleted", c_map_catalogue_deleted, ()),
    ("map-bad-basemap-key", lambda tmp: (["map", tmp / "out", "--basemap", "tianditu"],
                                         "Tianditu"), ()),
    ("batch-area-walk-speed-word", c_batch(
        '[[areas]]\nname = "bupt"\nsource = "BUPT"\nwalk_speed = "fast"\n'), ()),
    ("batch-defaults-walk-speed-inf", c_batch(
        '[defaults]\nwalk_speed = inf\n[[areas]]\nname = "bupt"\nsource = "BUPT"\n'), ()),
    ("batch-tile-0", c_batch('[[areas]]\nname = "bupt"\nsource = "BUPT"\ntile_m = 0\n'), ()),
    ("batch-crs-geographic", c_batch(
        '[[areas]]\nname = "bupt"\nsource = "BUPT"\ncrs = "EPSG:4326"\n'), ()),
    ("batch-walk-speed-list", c_batch(
        '[[areas]]\nname = "bupt"\nsource = "BUPT"\nwalk_speed = [1]\n'), ()),
    ("batch-workers-0", lambda tmp: ([*c_batch('[[areas]]\nname = "b"\nsource = "BUPT"\n')(tmp)[0],
                                      "--workers", "0"], "--workers"), ()),
    ("batch-scheduler-unreachable", lambda tmp: (
        [*c_batch('[[areas]]\nname = "b"\nsource = "BUPT"\n')(tmp)[0],
         "--scheduler", "tcp://127.0.0.1:9"], "--scheduler"), ()),
]

#: Cases also run as a real process, as a user runs them.
REAL_PROCESS = {"walk-speed-0", "crs-utm-far-away", "communities-outside", "out-existing-file",
                "catalogue-empty-keyword", "batch-walk-speed-word", "no-facilities"}


@pytest.mark.parametrize(("name", "case"), [pytest.param(case[0], case[1], id=case[0],
                                                       marks=case[2]) for case in CLI_CASES])
def test_cli_refuses_and_keeps_the_earlier_result(tmp_path, good_result, name, case):
    out = tmp_path / "out"
    shutil.copytree(good_result, out)
    before = snapshot(out)
    args, named = case(tmp_path)
    if "--out" not in args and args[0] in {"analyze", "sites", "batch"}:
        args = [*args, "--out", out]
    done = (run_cli if name in REAL_PROCESS else run_in_process)(args)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stderr[-2000:]
    assert "Traceback" not in done.stderr + done.stdout
    errors = [line for line in lines if "rror" in line or "错误" in line]
    assert len(errors) == 1, lines
    assert str(named) in errors[0] or str(named) in done.stderr, lines
    assert snapshot(out) == before
    hidden = [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]
    assert hidden == []


def test_there_are_at_least_80_cases():
    assert len(BLOCK_CASES) + len(CLI_CASES) >= 80
    assert json.dumps([case[0] for case in BLOCK_CASES + CLI_CASES])  # unique, printable ids
    ids = [case[0] for case in CLI_CASES]
    assert len(ids) == len(set(ids))


# ------------------------------------------------------------------------ accepted, with warnings


def test_chinese_files_and_repairable_layers_run_with_warnings(tmp_path, good_result, caplog):
    """GBK shapefile (.cpg) in CGCS2000 with a spike and a polygon outside; GB18030 list
    with duplicate ids: the run completes, each repair or merge warned once."""
    communities = tmp_path / "社区.shp"
    gpd.GeoDataFrame({"名称": ["学院社区", "北邮社区", "赫尔辛基"]},
                     geometry=[SPIKE, square(116.351, 39.958, 0.004), square(24.9, 60.1)],
                     crs="EPSG:4326").to_crs(4490).to_file(communities, engine="pyogrio",
                                                            encoding="GBK")
    communities.with_suffix(".cpg").write_text("GBK")
    facilities = write_csv(tmp_path / "设施.csv", "编号,名称,类别,经度,纬度\n"
                           "a1,社区卫生服务站,诊所,116.3512,39.9601\n"
                           "a1,社区卫生服务站,诊所,116.3512,39.9601\n"
                           "a2,北邮社区派出所,派出所,116.3522,39.9611\n", "gb18030")
    out = tmp_path / "out"
    shutil.copytree(good_result, out)
    with caplog.at_level("WARNING"):
        done = run_in_process(_analyze("--communities", communities, "--facilities", facilities,
                                       "--lang", "en", "--out", out))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "repaired invalid geometries" in caplog.text
    assert "1 of 3 features of the communities layer lie outside" in caplog.text
    assert "ids appear on several rows (a1)" in caplog.text
    summary = pd.read_csv(out / "summary.csv")
    names = gpd.read_file(out / "coverage.gpkg", layer="communities")["name"]
    assert {"学院社区", "北邮社区"} <= set(names) and len(summary)
    facilities_out = gpd.read_file(out / "coverage.gpkg", layer="facilities")
    assert (facilities_out["name"] == "社区卫生服务站").sum() >= 1
    assert (out / "catalogue.toml").read_bytes() == _catalogue_text().encode("utf-8")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.parametrize("code", [4490, 4547])
def test_cgcs2000_files_are_read_and_checked(tmp_path, code):
    path = tmp_path / f"c{code}.gpkg"
    frame_of([square(116.35, 39.96)]).to_crs(code).to_file(path, engine="pyogrio")
    checked = read_user_layer(path, what="communities")
    assert checked.crs.to_epsg() == code and checked.attrs["path"] == str(path)
    assert abs(checked.to_crs(4326).total_bounds[0] - 116.35) < 1e-6


def test_gbk_shapefile_without_cpg_is_detected(tmp_path):
    path = tmp_path / "c.shp"
    gpd.GeoDataFrame({"名称": ["学院社区"]}, geometry=[square(116.35, 39.96)],
                     crs="EPSG:4326").to_file(path, engine="pyogrio", encoding="GBK")
    path.with_suffix(".cpg").unlink(missing_ok=True)
    assert read_user_layer(path, what="communities")["名称"].tolist() == ["学院社区"]


def test_map_uses_the_catalogue_stored_with_the_results(tmp_path, good_result):
    from planner.results import results_catalogue

    results = tmp_path / "res"
    shutil.copytree(good_result, results)
    custom = _catalogue_text().replace("threshold_m = 1000", "threshold_m = 900")
    (results / "catalogue.toml").write_text(custom, encoding="utf-8")
    assert 900 in results_catalogue(results).thresholds_m().values()
    # an older folder: the recorded file is used while its SHA-256 is unchanged
    (results / "catalogue.toml").unlink()
    assert results_catalogue(results).version
    done = run_in_process(["map", results, "--lang", "en"])
    assert done.returncode == 0, done.stderr
    assert [p.name for p in results.iterdir() if p.name.startswith(".")] == []


# ----------------------------------------------------------------------------- interrupts


def _interrupt(out: Path, signum: int, moment: str) -> int:
    """Run ``planner analyze`` into ``out`` and send ``signum`` at ``moment``; the exit code.

    ``moment``: ``stage:<name>`` once that stage is reported on stderr (the
    analysis), ``writing`` once the hidden folder exists, ``file:<name>`` once
    that file exists in it (the writing of the result).
    """
    import os
    import signal  # noqa: F401  (the caller passes signal numbers)
    import threading
    import time

    process = subprocess.Popen([sys.executable, "-m", "planner.cli", "analyze", BUPT,
                                "--lang", "en", "--out", out], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True,
                               cwd=Path(__file__).resolve().parents[1])
    seen: list[str] = []
    reader = threading.Thread(target=lambda: seen.extend(process.stderr), daemon=True)
    reader.start()
    deadline = time.monotonic() + 120
    while process.poll() is None and time.monotonic() < deadline:
        stages = [line.split()[0] for line in list(seen) if line.startswith("  ")]
        hidden = list(out.parent.glob(f".{out.name}.planner-tmp-*"))
        if ((moment.startswith("stage:") and moment[6:] in stages)
                or (moment == "writing" and hidden)
                or (moment.startswith("file:") and hidden
                    and (hidden[0] / moment[5:]).exists())):
            os.kill(process.pid, signum)
            break
        time.sleep(0.002)
    code = process.wait(timeout=120)
    reader.join(timeout=5)
    return code


@pytest.mark.parametrize(("signum", "moment"), [
    (2, "stage:load"), (15, "stage:access"), (15, "writing"), (2, "file:coverage.gpkg"),
    (15, "file:map.html")], ids=["SIGINT-load", "SIGTERM-access", "SIGTERM-writing-starts",
                                 "SIGINT-gpkg-written", "SIGTERM-map-written"])
def test_a_real_signal_leaves_the_old_or_the_new_result(tmp_path, good_result, signum, moment):
    out = tmp_path / "out"
    for _attempt in range(3):  # on a busy machine the signal may come after the run's end
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(good_result, out)
        before = snapshot(out)
        code = _interrupt(out, signum, moment)
        after = snapshot(out)
        if code != 0:
            break
    assert code != 0  # the signal came before the end of the run
    # interrupted before the swap: the earlier result, byte for byte; during it: the new one
    assert after == before or (sorted(after) == sorted(before)
                               and json.loads(after["run.json"])["counts"]), sorted(after)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_a_signal_on_a_first_run_leaves_nothing(tmp_path, good_result):
    out = tmp_path / "new"
    _interrupt(out, 15, "writing")
    assert not out.exists() or (out / "run.json").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_two_runs_give_the_same_bytes(tmp_path, good_result):
    """Determinism: the same command twice; only run.json's timings may differ."""
    out = tmp_path / "again"
    done = run_in_process(["analyze", BUPT, "--lang", "en", "--out", out])
    assert done.returncode == 0, done.stderr[-2000:]
    first, second = snapshot(good_result), snapshot(out)
    assert sorted(first) == sorted(second)
    for name in first:
        if name != "run.json":
            assert first[name] == second[name], name
    records = [json.loads(files["run.json"]) for files in (first, second)]
    for record in records:
        record.pop("timings_s")
    assert records[0] == records[1]
