"""The CLI: bad input gives one line, exit code 2, and leaves earlier output intact."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import textwrap

import pytest
from click.testing import CliRunner

from planner import settings
from planner.cli import main
from tests.conftest import DEMO_COMMUNITIES, ROOT

#: What `planner --help` must not import (they take seconds to load).
HEAVY_MODULES = ("numpy", "pandas", "geopandas", "osmnx", "folium", "scipy", "shapely",
                 "pyproj", "networkx", "dask")

NO_WAYS = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="39.9600" lon="116.3500"/>
 <node id="2" lat="39.9601" lon="116.3500"/>
 <node id="3" lat="39.9601" lon="116.3502"/>
 <way id="10"><nd ref="1"/><nd ref="2"/><nd ref="3"/><nd ref="1"/>
  <tag k="building" v="residential"/></way>
 <way id="11"><nd ref="2"/><nd ref="3"/><tag k="highway" v="motorway"/></way>
</osm>
"""
NO_HOMES = """<?xml version="1.0" encoding="UTF-8"?>
<osm version="0.6">
 <node id="1" lat="39.9600" lon="116.3500"/>
 <node id="2" lat="39.9610" lon="116.3500"/>
 <node id="3" lat="39.9610" lon="116.3510"><tag k="amenity" v="pharmacy"/></node>
 <way id="11"><nd ref="1"/><nd ref="2"/><tag k="highway" v="footway"/></way>
</osm>
"""


@pytest.fixture(autouse=True)
def english_locale(monkeypatch):
    """The tests read English messages unless they pass --lang zh, whatever the machine."""
    for variable in ("LC_ALL", "LC_MESSAGES", "LANGUAGE"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("LANG", "C.UTF-8")


def run(*args):
    return CliRunner().invoke(main, [str(arg) for arg in args])


def digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture(scope="module")
def good_out(tmp_path_factory, helsinki_pbf):
    out = tmp_path_factory.mktemp("good")
    result = run("analyze", helsinki_pbf, "--communities", DEMO_COMMUNITIES, "--out", out)
    assert result.exit_code == 0, result.output
    return out


def assert_one_line_error(result, *fragments):
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_analyze_prints_a_table_per_community_and_scene(good_out, helsinki_pbf, tmp_path):
    result = run("analyze", helsinki_pbf, "--communities", DEMO_COMMUNITIES, "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "Kaartinkaupunki" in result.output and "access" in result.output
    assert (tmp_path / "map.html").exists()


def test_catalogue_command_prints_both_languages():
    result = run("catalogue")
    assert result.exit_code == 0
    assert "邻里生活" in result.output and "Neighbourhood life" in result.output
    assert "unverified" in result.output


def bad_inputs(tmp_path, helsinki_pbf):
    truncated = tmp_path / "truncated.osm.pbf"
    truncated.write_bytes(helsinki_pbf.read_bytes()[:40_000])
    corrupt = tmp_path / "corrupt.osm"
    corrupt.write_text("<osm><node id='1' lat='1'", encoding="utf-8")
    no_ways = tmp_path / "no_ways.osm"
    no_ways.write_text(NO_WAYS, encoding="utf-8")
    no_homes = tmp_path / "no_homes.osm"
    no_homes.write_text(NO_HOMES, encoding="utf-8")
    no_geometry = tmp_path / "communities.geojson"
    no_geometry.write_text('{"type": "FeatureCollection", "features": [{"type": "Feature", '
                           '"properties": {"name": "a"}, "geometry": null}]}', encoding="utf-8")
    catalogue = tmp_path / "catalogue.toml"
    catalogue.write_text('[[scenes]]\nid = "a"\nzh = "甲"\nen = "A"\n[[types]]\nid = "x"\n'
                         'scene = "b"\nzh = "x"\nen = "x"\nlevel = "5min"\nthreshold_m = 300\n'
                         'tags = ["amenity=x"]\n', encoding="utf-8")
    return {
        "missing": ([tmp_path / "nope.osm.pbf"], ["nope.osm.pbf", "file not found"]),
        "truncated": ([truncated], ["truncated.osm.pbf", "cannot read OSM PBF"]),
        "corrupt": ([corrupt], ["corrupt.osm", "cannot read OSM XML"]),
        "no ways": ([no_ways], ["no_ways.osm", "no walkable ways"]),
        "no homes": ([no_homes], ["no_homes.osm", "no residences"]),
        "no geometry": ([helsinki_pbf, "--communities", no_geometry],
                        ["communities.geojson", "no geometry"]),
        "catalogue": ([helsinki_pbf, "--catalogue", catalogue],
                      ["catalogue.toml", "types[0] (x): field 'scene'"]),
    }


@pytest.mark.parametrize("case", ["missing", "truncated", "corrupt", "no ways", "no homes",
                                  "no geometry", "catalogue"])
def test_bad_input_is_one_line_and_leaves_output_intact(case, tmp_path, helsinki_pbf,
                                                        good_out):
    args, fragments = bad_inputs(tmp_path, helsinki_pbf)[case]
    before = digest(good_out)
    result = run("analyze", *args, "--out", good_out)
    assert_one_line_error(result, *fragments)
    assert digest(good_out) == before
    assert not [p for p in good_out.parent.iterdir() if p.name.startswith(f".{good_out.name}.")]


def test_a_real_process_prints_no_traceback(tmp_path):
    process = subprocess.run([sys.executable, "-m", "planner.cli", "analyze",
                              str(tmp_path / "missing.osm"), "--out", str(tmp_path / "o")],
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 2
    assert process.stderr.strip().count("\n") == 0 and "Traceback" not in process.stderr
    assert not (tmp_path / "o").exists()


def test_the_cli_imports_no_heavy_library():
    """`planner --help` is quick: the CLI loads no numpy, pandas, geopandas, folium …"""
    probe = textwrap.dedent(f"""
        import sys
        import planner.cli
        for command in ([], ["analyze"], ["sites"], ["map"], ["batch"], ["demo"]):
            planner.cli.main([*command, "--help"], standalone_mode=False)
        heavy = [name for name in {HEAVY_MODULES!r} if name in sys.modules]
        print("heavy:", ",".join(heavy))
    """)
    process = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                             timeout=120, cwd=ROOT)
    assert process.returncode == 0, process.stderr
    assert process.stdout.splitlines()[-1] == "heavy: ", process.stdout.splitlines()[-1]


def test_lang_zh_prints_chinese_labels(helsinki_pbf, tmp_path):
    result = run("analyze", helsinki_pbf, "--lang", "zh", "--out", tmp_path)
    assert result.exit_code == 0, result.output
    assert "各社区场景得分 (覆盖率 %; 网格)" in result.output
    assert "网格 000_000" in result.output or "网格 0" in result.output
    assert "grid" not in result.output and "results written" not in result.output
    assert "结果已写入" in result.output and "步行路网" in result.output
    assert settings.lang == "en"  # the command restores the setting when it ends


def test_lang_zh_errors_and_catalogue_are_chinese(tmp_path):
    result = run("analyze", tmp_path / "nope.osm", "--lang", "zh", "--out", tmp_path / "o")
    assert result.exit_code == 2
    assert result.output.startswith("错误: ") and "文件不存在" in result.output
    result = run("catalogue", "--lang", "zh")
    assert result.exit_code == 0
    assert "邻里生活" in result.output and "版本" in result.output
    assert "Neighbourhood life" not in result.output and "unverified" not in result.output


def test_the_locale_sets_the_language(monkeypatch, tmp_path):
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    result = run("analyze", tmp_path / "nope.osm", "--out", tmp_path / "o")
    assert result.exit_code == 2 and result.output.startswith("错误: ")
