"""Batch runs on Dask: a LocalCluster, and a scheduler + worker started as separate processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from planner.batch import read_areas, run_batch
from planner.cli import main
from planner.errors import PlannerError
from planner.export import write_analysis
from planner.pipeline import analyze
from tests.conftest import DEMO_COMMUNITIES, SHARED_OSM


@pytest.fixture(scope="module")
def areas_file(tmp_path_factory, helsinki_pbf):
    folder = tmp_path_factory.mktemp("areas")
    beijing = SHARED_OSM / "beijing-haidian-bupt" / "map.osm"
    third = (f'source = "{beijing}"' if beijing.exists()
             else f'source = "{helsinki_pbf}"\nwalk_speed = 0.9')
    path = folder / "areas.toml"
    path.write_text(f"""
[defaults]
walk_speed = 1.0

[[areas]]
name = "helsinki"
source = "{helsinki_pbf}"
communities = "{DEMO_COMMUNITIES}"

[[areas]]
name = "helsinki-grid"
source = "{helsinki_pbf}"

[[areas]]
name = "third"
{third}
""", encoding="utf-8")
    return path


def test_areas_file_errors_name_the_area(tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text("name,source,place\na,x.osm,somewhere\n", encoding="utf-8")
    with pytest.raises(PlannerError, match=r"areas\[0\] \(a\): give exactly one"):
        read_areas(path)
    path.write_text("name,source\na,x.osm\na,y.osm\n", encoding="utf-8")
    with pytest.raises(PlannerError, match="repeats"):
        read_areas(path)


@pytest.mark.parametrize(("text", "fragment"), [
    ('[[areas]]\nname = "a"\nsource = "x.osm"\nwalk_speed = "fast"\n',
     r"areas\[0\] \(a\): walk_speed must be a number between 0.3 and 3 m/s \(got 'fast'\)"),
    ('[[areas]]\nname = "b"\nsource = "x.osm"\ntile_m = [1]\n',
     r"areas\[0\] \(b\): tile_m must be a number ≥ 100 m"),
    ('[defaults]\nwalk_speed = true\n[[areas]]\nname = "c"\nsource = "x.osm"\n',
     r"areas\[0\] \(c\): walk_speed must be a number"),
    ('[[areas]]\nname = "d"\nsource = 3\n', r"areas\[0\] \(d\): field 'source' must be text"),
    ('[[areas]]\nname = "e"\nsource = "x.osm"\nfacilities = 3\n',
     r"areas\[0\] \(e\): field 'facilities' must be a list"),
    ('areas = "x"\n', r"'areas' must be an array of tables"),
    ('areas = ["x"]\n', r"areas\[0\] must be a table"),
    ('defaults = 1\n[[areas]]\nname = "f"\nsource = "x.osm"\n', r"'defaults' must be a table"),
])
def test_bad_values_in_a_toml_areas_file_name_the_file_and_area(tmp_path, text, fragment):
    path = tmp_path / "areas.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlannerError, match=fragment) as caught:
        read_areas(path)
    assert str(caught.value).startswith(str(path)) and "\n" not in str(caught.value)


def test_a_non_numeric_walk_speed_in_a_csv_names_the_area(tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text("name,source,walk_speed\nok,x.osm,1.2\nslow,x.osm,slowly\n",
                    encoding="utf-8")
    with pytest.raises(PlannerError, match=r"areas\[1\] \(slow\): walk_speed must be"):
        read_areas(path)
    result = CliRunner().invoke(main, ["batch", str(path), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert result.output.count("\n") == 1 and "areas.csv" in result.output
    assert not (tmp_path / "out").exists()


def test_csv_areas_resolve_relative_paths(tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text("name,source,facilities,facilities_crs\n"
                    "a,data/a.osm.pbf,one.csv;two.csv,gcj02\n", encoding="utf-8")
    (spec,) = read_areas(path)
    assert spec.source == str(tmp_path / "data" / "a.osm.pbf")
    assert spec.facilities == (str(tmp_path / "one.csv"), str(tmp_path / "two.csv"))
    assert spec.facilities_crs == "gcj02"


def single_run_summary(spec, out: Path) -> pd.DataFrame:
    write_analysis(analyze(**spec.analyze_kwargs()), out)
    return pd.read_csv(out / "summary.csv")


def test_local_cluster_batch_equals_single_runs_and_skips_on_rerun(areas_file, tmp_path):
    bad = areas_file.parent / "with_failure.toml"
    bad.write_text(areas_file.read_text(encoding="utf-8")
                   + '\n[[areas]]\nname = "broken"\nsource = "missing.osm.pbf"\n',
                   encoding="utf-8")
    out = tmp_path / "batch"
    result = run_batch(bad, out, workers=2)
    status = {area["name"]: area["status"] for area in result.areas}
    assert status == {"helsinki": "ok", "helsinki-grid": "ok", "third": "ok",
                      "broken": "failed"}
    assert "file not found" in result.areas[-1]["error"]
    for spec in read_areas(areas_file):
        alone = single_run_summary(spec, tmp_path / "single" / spec.name)
        batched = pd.read_csv(out / spec.name / "summary.csv")
        pd.testing.assert_frame_equal(batched, alone)
    combined = pd.read_csv(out / "communities.csv")
    assert set(combined["area"]) == {"helsinki", "helsinki-grid", "third"}
    record = json.loads((out / "batch.json").read_text(encoding="utf-8"))
    assert record["failed"] == ["broken"]
    assert (out / "map.html").exists() and (out / "communities.gpkg").exists()

    again = run_batch(bad, out, workers=2)
    assert {a["name"]: a["status"] for a in again.areas} == {
        "helsinki": "skipped", "helsinki-grid": "skipped", "third": "skipped",
        "broken": "failed"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_external_scheduler_and_worker_processes(areas_file, tmp_path):
    dask = str(Path(sys.executable).parent / "dask")
    port = free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port),
                                  "--no-dashboard"], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", address, "--nworkers", "1", "--nthreads", "1",
                               "--no-dashboard", "--host", "127.0.0.1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from dask.distributed import Client

        deadline = time.time() + 60
        while True:
            try:
                with Client(address, timeout="5s") as client:
                    client.wait_for_workers(1, timeout=30)
                break
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.5)
        out = tmp_path / "remote"
        result = run_batch(areas_file, out, scheduler=address)
        assert [area["status"] for area in result.areas] == ["ok", "ok", "ok"]
        assert result.scheduler == address
        for spec in read_areas(areas_file)[:1]:
            alone = single_run_summary(spec, tmp_path / "single" / spec.name)
            pd.testing.assert_frame_equal(pd.read_csv(out / spec.name / "summary.csv"), alone)
    finally:
        for process in (worker, scheduler):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()


def test_an_unreachable_scheduler_fails_fast_and_writes_nothing(tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text("name,source\na,x.osm\n", encoding="utf-8")
    out = tmp_path / "out"
    address = f"tcp://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.perf_counter()
    with pytest.raises(PlannerError, match="--scheduler .*cannot reach the Dask scheduler"):
        run_batch(path, out, scheduler=address)
    assert time.perf_counter() - start < 8
    assert not out.exists()
    result = CliRunner().invoke(main, ["batch", str(path), "--out", str(out),
                                       "--scheduler", address])
    assert result.exit_code == 2 and result.output.count("\n") == 1, result.output
    assert result.output.startswith("error: --scheduler") and not out.exists()


def test_dask_prints_no_info_lines(tmp_path):
    path = tmp_path / "areas.csv"
    path.write_text("name,source\nbroken,missing.osm.pbf\n", encoding="utf-8")
    process = subprocess.run([sys.executable, "-m", "planner.cli", "batch", str(path),
                              "--out", str(tmp_path / "out"), "--workers", "1"],
                             capture_output=True, text=True, timeout=300,
                             env={**os.environ, "LANG": "C.UTF-8"})
    assert process.returncode == 1, process.stderr
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "broken" in lines[0] and "failed" in lines[0], process.stderr
    assert "INFO" not in process.stderr
