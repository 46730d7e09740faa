"""A city's residence distances in ``residence_distances.parquet``, not in the GeoPackage.

Above :data:`planner.settings.max_default_residence_distances` residences
(lowered here so that the Helsinki demo counts as a city), and unless
``full``, the ``residences`` layer keeps its other columns and the
``dist_<type>`` columns go to a GeoParquet file; :func:`read_results` joins
them back, so callers see the same frame either way.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pyogrio
import pytest

from planner import settings
from planner.errors import PlannerError
from planner.export import write_analysis
from planner.layers import analysis_layers, base_layers, split_distances
from planner.outputs import PARQUET_LAYERS, join_distances, read_results

PARQUET = PARQUET_LAYERS["residence_distances"]


@pytest.fixture(scope="module")
def runs(helsinki_analysis, tmp_path_factory):
    """The demo written as a city twice, and once with ``full=True``."""
    root = tmp_path_factory.mktemp("residence_parquet")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(settings, "max_default_residence_distances", 0)
        split = write_analysis(helsinki_analysis, root / "split", lang="en")
        again = write_analysis(helsinki_analysis, root / "again", lang="en")
        full = write_analysis(helsinki_analysis, root / "full", lang="en", full=True)
    return {"split": split, "again": again, "full": full}


def test_the_split_starts_above_the_setting(helsinki_analysis, monkeypatch):
    count = len(helsinki_analysis.residences)
    monkeypatch.setattr(settings, "max_default_residence_distances", count)
    assert not split_distances(helsinki_analysis)
    assert "residence_distances" not in base_layers(helsinki_analysis)
    monkeypatch.setattr(settings, "max_default_residence_distances", count - 1)
    assert split_distances(helsinki_analysis)
    assert not split_distances(helsinki_analysis, full=True)
    layers = analysis_layers(helsinki_analysis, isochrones=False)
    assert list(layers)[:4] == ["facilities", "residences", "communities",
                                "residence_distances"]
    assert not any(column.startswith("dist_") for column in layers["residences"])
    # the gap hexagons still count the distances
    whole = analysis_layers(helsinki_analysis, isochrones=False, full=True)
    pd.testing.assert_frame_equal(layers["gaps"], whole["gaps"])


def test_the_geopackage_keeps_the_other_columns(runs, helsinki_analysis):
    residences = pyogrio.read_dataframe(runs["split"] / "coverage.gpkg", layer="residences")
    assert list(residences.columns) == ["residence_id", "community_id", "population",
                                        "floor_area_m2", "storeys", "source", "on_network",
                                        "geometry"]
    assert len(residences) == len(helsinki_analysis.residences)
    assert not (runs["full"] / PARQUET).exists()
    full = pyogrio.read_dataframe(runs["full"] / "coverage.gpkg", layer="residences")
    assert set(helsinki_analysis.distance_columns) <= set(full.columns)


def test_the_parquet_holds_the_distances_of_the_analysis(runs, helsinki_analysis):
    import geopandas as gpd

    table = pq.read_table(runs["split"] / PARQUET)
    names = ["residence_id", "community_id", *helsinki_analysis.distance_columns, "geometry"]
    assert table.column_names == names
    assert b"geo" in table.schema.metadata
    frame = gpd.read_parquet(runs["split"] / PARQUET)
    assert frame.crs.to_epsg() == 4326
    assert set(frame.geom_type) == {"Point"}
    residences = helsinki_analysis.residences
    assert frame["residence_id"].tolist() == residences["residence_id"].tolist()
    for column in helsinki_analysis.distance_columns:
        assert frame[column].dtype == np.float64
        np.testing.assert_array_equal(frame[column].to_numpy(),
                                      residences[column].to_numpy(float))
    points = residences.geometry.to_crs(4326)
    assert np.allclose(frame.geometry.x, points.x, rtol=0, atol=1e-12)
    assert np.allclose(frame.geometry.y, points.y, rtol=0, atol=1e-12)


def test_read_results_returns_the_same_frames_either_way(runs):
    split, full = read_results(runs["split"]), read_results(runs["full"])
    assert "residence_distances" not in split
    pd.testing.assert_frame_equal(split["residences"], full["residences"])
    for name in ("facilities", "communities", "gaps", "summary"):
        pd.testing.assert_frame_equal(split[name], full[name])


def test_the_map_and_the_tables_do_not_change(runs):
    for name in ("map.html", "report.html", "summary.csv"):
        assert (runs["split"] / name).read_bytes() == (runs["full"] / name).read_bytes(), name


def test_the_files_are_deterministic(runs):
    for name in (PARQUET, "coverage.gpkg"):
        assert (runs["split"] / name).read_bytes() == (runs["again"] / name).read_bytes(), name


def test_join_by_residence_id_in_any_order(runs):
    results = read_results(runs["full"])
    residences = results["residences"]
    distances = [column for column in residences if column.startswith("dist_")]
    plain = residences.drop(columns=distances)
    shuffled = residences[["residence_id", *distances]].iloc[::-1]
    pd.testing.assert_frame_equal(join_distances(plain, shuffled), residences)
    for broken in (shuffled.iloc[1:], pd.concat([shuffled, shuffled.iloc[:1]])):
        with pytest.raises(PlannerError, match="residence_distances"):
            join_distances(plain, broken)


def test_nothing_is_written_on_failure(helsinki_analysis, monkeypatch, tmp_path):
    monkeypatch.setattr(settings, "max_default_residence_distances", 0)

    def fail(_analysis, _path):
        message = "map.html: no community to draw"
        raise PlannerError(message)

    with pytest.raises(PlannerError, match="no community"):
        write_analysis(helsinki_analysis, tmp_path / "out", render_map=fail)
    assert not (tmp_path / "out").exists()
    assert list(tmp_path.rglob("*.parquet")) == []


def test_planner_map_redraws_a_city_folder_and_names_a_bad_parquet(runs, tmp_path):
    import shutil

    from click.testing import CliRunner

    from planner.cli import main

    folder = tmp_path / "city"
    shutil.copytree(runs["split"], folder)
    drawn = CliRunner().invoke(main, ["map", str(folder), "--out", str(tmp_path / "m.html")])
    assert drawn.exit_code == 0, drawn.output
    (folder / PARQUET).write_bytes(b"PAR1 not really")
    broken = CliRunner().invoke(main, ["map", str(folder), "--lang", "en",
                                       "--out", str(tmp_path / "n.html")])
    assert broken.exit_code == 2
    line = broken.output.strip()
    assert "\n" not in line and "Traceback" not in line
    assert PARQUET in line and "cannot read the residences' distances" in line
    assert not (tmp_path / "n.html").exists()
