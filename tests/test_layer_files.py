"""The layers' files written without a transformed copy (:mod:`planner.layer_files`).

:func:`planner.outputs.write_layers` and :func:`planner.outputs.write_parquet`
must give the bytes of GeoPandas' own writers on ``frame.to_crs(4326)``:
the prepared layers (points, one-ring polygons) and those left to GeoPandas
(several types, holes, missing geometries, object columns) alike.
"""

from __future__ import annotations

import warnings

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from planner.layer_files import Wgs84Layers, _wkb, gpkg_options
from planner.layers import analysis_layers
from planner.outputs import write_layers, write_parquet
from planner.reach_cells import analysis_service_cells


@pytest.fixture(scope="module")
def city_layers(helsinki_analysis):
    """The demo's layers as a city has them: the service areas as squares too."""
    layers = analysis_layers(helsinki_analysis, isochrones=False)
    layers["service_cells"] = analysis_service_cells(helsinki_analysis)
    return layers


def _geopandas_gpkg(path, layers) -> None:
    """What the writer did before: every layer transformed, then GeoPandas' to_file."""
    with gpkg_options(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, frame in layers.items():
            frame.to_crs(4326).to_file(path, layer=name, driver="GPKG", engine="pyogrio",
                                       use_arrow=True)


def test_the_geopackage_has_the_bytes_of_geopandas(city_layers, tmp_path):
    prepared = Wgs84Layers()
    kinds = {name: prepared.prepare(frame).table is not None
             for name, frame in city_layers.items()}
    # the heavy layers take the fast way
    assert kinds["facilities"] and kinds["residences"] and kinds["gaps"]
    assert kinds["service_cells"]
    write_layers(tmp_path / "fast.gpkg", city_layers)
    _geopandas_gpkg(tmp_path / "slow.gpkg", city_layers)
    assert (tmp_path / "fast.gpkg").read_bytes() == (tmp_path / "slow.gpkg").read_bytes()


def test_the_parquet_has_the_bytes_of_geopandas(city_layers, tmp_path):
    frame = city_layers["residences"]
    write_parquet(tmp_path / "fast.parquet", frame)
    frame.to_crs(4326).to_parquet(tmp_path / "slow.parquet", index=False)
    assert (tmp_path / "fast.parquet").read_bytes() == (tmp_path / "slow.parquet").read_bytes()


def test_the_map_frames_are_those_of_to_crs(city_layers):
    prepared = Wgs84Layers()
    for name in ("facilities", "gaps", "service_cells"):
        layer = prepared.prepare(city_layers[name])
        mine, theirs = layer.frame_4326(), city_layers[name].to_crs(4326)
        assert mine.crs.equals(theirs.crs)
        pd.testing.assert_frame_equal(mine.drop(columns="geometry"),
                                      theirs.drop(columns="geometry"))
        assert np.array_equal(shapely.get_coordinates(mine.geometry.to_numpy()),
                              shapely.get_coordinates(theirs.geometry.to_numpy()))


def test_shared_points_are_transformed_once(city_layers):
    residences = city_layers["residences"]
    prepared = Wgs84Layers()
    first = prepared.prepare(residences[["residence_id", "geometry"]])
    second = prepared.prepare(residences[["population", "geometry"]])
    assert first.xy is second.xy


def test_the_wkb_is_shapely_s():
    rng = np.random.default_rng(7)
    xy = rng.uniform(-180, 180, size=(50, 2))
    assert _wkb(xy, int(shapely.GeometryType.POINT), 1).to_pylist() == \
        list(shapely.to_wkb(shapely.points(xy)))
    rings = rng.uniform(0, 1e6, size=(20, 5, 2))
    rings[:, -1] = rings[:, 0]
    polygons = shapely.polygons(rings)
    assert _wkb(rings.reshape(-1, 2), int(shapely.GeometryType.POLYGON), 5).to_pylist() == \
        list(shapely.to_wkb(polygons))


def test_other_layers_are_left_to_geopandas(tmp_path):
    crs = "EPSG:32650"
    square = shapely.box(500_000, 3_000_000, 500_100, 3_000_100)
    holed = square.difference(shapely.box(500_040, 3_000_040, 500_060, 3_000_060))
    layers = {
        "mixed": gpd.GeoDataFrame({"n": [1, 2]}, geometry=[square, shapely.Point(500_000,
                                                                                 3_000_000)],
                                  crs=crs),
        "holes": gpd.GeoDataFrame({"n": [1, 2]}, geometry=[holed, square], crs=crs),
        "missing": gpd.GeoDataFrame({"n": [1, 2]}, geometry=[square, None], crs=crs),
        "objects": gpd.GeoDataFrame({"v": pd.Series([1, "a"], dtype=object)},
                                    geometry=[square, square], crs=crs),
        "named_index": gpd.GeoDataFrame({"n": [1, 2]}, geometry=[square, square], crs=crs,
                                        index=pd.Index([5, 6], name="k")),
        "plain": gpd.GeoDataFrame({"n": [1, 2]}, geometry=[square, square], crs=crs),
    }
    prepared = Wgs84Layers()
    assert [name for name, frame in layers.items()
            if prepared.prepare(frame).table is not None] == ["plain"]
    write_layers(tmp_path / "fast.gpkg", layers)
    _geopandas_gpkg(tmp_path / "slow.gpkg", layers)
    assert (tmp_path / "fast.gpkg").read_bytes() == (tmp_path / "slow.gpkg").read_bytes()
