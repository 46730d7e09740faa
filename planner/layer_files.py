"""Layers to GeoPackage and GeoParquet files in EPSG:4326, each geometry transformed once.

What :func:`planner.outputs.write_layers` and :func:`planner.outputs.write_parquet`
write, the bytes of ``frame.to_crs(4326).to_file(...)`` and
``frame.to_crs(4326).to_parquet(...)``, without their cost on a city: a
layer of points or of polygons of one ring each (residences, facilities,
gap hexagons, service squares) is :class:`Wgs84Layer`: its coordinates
transformed by the transformer geopandas uses (the same numbers, point by
point; the corners that neighbouring squares and hexagons share only once),
its WKB laid out by numpy (the bytes shapely writes) and its attributes in
the Arrow table GeoPandas would hand to pyogrio. No new geometry is built
for the files; the map gets them (:meth:`Wgs84Layer.frame_4326`).

Other layers (several geometry types, holes, missing or 3-D geometries,
columns GeoPandas would convert, a written index) go through GeoPandas as
they are.
"""

from __future__ import annotations

import functools
import io
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyproj
import shapely

#: The date written into every GeoPackage (GDAL's ``OGR_CURRENT_DATE``): the
#: same input gives a byte-identical file; run.json holds when it ran.
GPKG_DATE = "2000-01-01T00:00:00Z"

#: GDAL's SQLite settings while a GeoPackage is written: no ``fsync`` and the
#: rollback journal in memory. The file is written into the hidden staging
#: folder and only renamed into place complete (:mod:`planner.staging`), so
#: a crash leaves no half file to protect; the bytes written are the same.
GPKG_WRITE_OPTIONS = {"OGR_SQLITE_SYNCHRONOUS": "OFF", "OGR_SQLITE_JOURNAL": "MEMORY"}

WGS84 = pyproj.CRS.from_epsg(4326)

#: shapely's type ids of the geometries laid out here, and their names.
_SIMPLE_TYPES = {int(shapely.GeometryType.POINT): "Point",
                 int(shapely.GeometryType.POLYGON): "Polygon"}

#: Their WKB type codes (ISO, 2-D).
_WKB_TYPES = {"Point": 1, "Polygon": 3}


@functools.lru_cache(maxsize=8)
def _to_wgs84(crs: pyproj.CRS) -> pyproj.Transformer:
    # geopandas' own: GeoSeries.to_crs transforms with this transformer
    return pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)


def _transform(xy: np.ndarray, crs: pyproj.CRS, *, distinct: bool) -> np.ndarray:
    """``(n, 2)`` coordinates in EPSG:4326; ``distinct``: each distinct one transformed once.

    PROJ transforms point by point, so both give ``to_crs``' numbers; the
    corners shared by neighbouring squares or hexagons are a fraction of
    their coordinates, the points of a layer of points mostly distinct.
    """
    if distinct:
        inverse, values = pd.factorize(np.ascontiguousarray(xy, dtype=float)
                                       .view(np.complex128).ravel())
        x, y = _to_wgs84(crs).transform(values.real.copy(), values.imag.copy())
        return np.column_stack([x, y])[inverse]
    x, y = _to_wgs84(crs).transform(np.ascontiguousarray(xy[:, 0]),
                                    np.ascontiguousarray(xy[:, 1]))
    return np.column_stack([x, y])


def _wkb(xy: np.ndarray, type_id: int, ring: int) -> pa.Array:
    """ISO WKB (little-endian, 2-D) of points, or of polygons of one ``ring``-coordinate ring.

    The bytes ``shapely.to_wkb`` writes, as one Arrow binary array.
    """
    n = len(xy) // ring
    header = [("order", "u1"), ("type", "<u4")]
    if type_id == shapely.GeometryType.POINT:
        layout = np.dtype([*header, ("xy", "<f8", (2,))])
        rows = np.empty(n, dtype=layout)
        rows["xy"] = xy
    else:
        layout = np.dtype([*header, ("rings", "<u4"), ("count", "<u4"),
                           ("xy", "<f8", (ring, 2))])
        rows = np.empty(n, dtype=layout)
        rows["rings"], rows["count"] = 1, ring
        rows["xy"] = xy.reshape(n, ring, 2)
    rows["order"], rows["type"] = 1, _WKB_TYPES[_SIMPLE_TYPES[type_id]]
    offsets = np.arange(n + 1, dtype=np.int32) * layout.itemsize
    return pa.Array.from_buffers(pa.binary(), n, [None, pa.py_buffer(offsets),
                                                  pa.py_buffer(rows)])


def _simple_shape(frame: gpd.GeoDataFrame) -> tuple[int, int] | None:
    """``(type id, coordinates per geometry)`` when :func:`_wkb` can lay ``frame`` out.

    Every geometry a 2-D point, or a polygon without holes whose ring has as
    many coordinates as every other's; columns written as they are (no index
    written, no object column GeoPandas would convert, names unique).
    """
    geoms = frame.geometry.to_numpy()
    if (len(geoms) == 0 or frame.crs is None or not frame.columns.is_unique
            or (frame.dtypes == "geometry").sum() != 1
            or list(frame.index.names) != [None]
            or not pd.api.types.is_integer_dtype(frame.index.dtype)
            or not all(_as_it_is(frame[name]) for name in frame.columns
                       if name != frame.geometry.name)):
        return None
    kinds = np.unique(shapely.get_type_id(geoms))
    if len(kinds) != 1 or int(kinds[0]) not in _SIMPLE_TYPES \
            or shapely.has_z(geoms).any() or shapely.is_empty(geoms).any():
        return None
    if kinds[0] == shapely.GeometryType.POINT:
        return int(kinds[0]), 1
    counts = shapely.get_num_coordinates(geoms)
    if (counts != counts[0]).any() or shapely.get_num_interior_rings(geoms).any():
        return None
    return int(kinds[0]), int(counts[0])


def _as_it_is(column: pd.Series) -> bool:
    """Whether pyogrio hands ``column`` to GDAL as pyarrow converts it: not a date with
    a time zone, and an object column only of strings (and missing values)."""
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        return False
    if isinstance(column.dtype, np.dtype) and column.dtype.kind == "O":
        return pd.api.types.infer_dtype(column) == "string"
    return True


@dataclass
class Wgs84Layer:
    """A layer as its files take it: the Arrow table of its attributes and WKB in EPSG:4326.

    ``table`` is None for a layer written by GeoPandas
    (:func:`write_gpkg_layer`).
    """

    frame: gpd.GeoDataFrame
    table: pa.Table | None = None
    geometry_type: str = ""
    #: coordinates in EPSG:4326, in the order of ``shapely.get_coordinates``
    xy: np.ndarray | None = None

    def frame_4326(self) -> gpd.GeoDataFrame:
        """``frame.to_crs(4326)``: the same columns and coordinates (the map's layers)."""
        frame = self.frame
        if self.xy is None or frame.crs.is_exact_same(WGS84):
            return frame.to_crs(WGS84)
        name = frame.geometry.name
        if self.geometry_type == "Point":
            geoms = shapely.points(self.xy)
        else:  # polygons of one ring, each of as many coordinates (:func:`_simple_shape`):
            # built from the coordinates, a fraction of the time of set_coordinates
            geoms = shapely.polygons(self.xy.reshape(len(frame), -1, 2))
        data = pd.DataFrame(frame, copy=False)
        data[name] = gpd.GeoSeries(geoms, index=frame.index, crs=WGS84)
        return gpd.GeoDataFrame(data, geometry=name, crs=WGS84)


class Wgs84Layers:
    """Prepares layers (:meth:`prepare`): frames sharing their geometries (the
    residences and their distances) have them transformed and laid out once."""

    def __init__(self) -> None:
        self._done: dict[tuple, tuple[np.ndarray, pa.Array]] = {}

    def prepare(self, frame: gpd.GeoDataFrame) -> Wgs84Layer:
        """``frame`` as :class:`Wgs84Layer` (its table None when GeoPandas writes it)."""
        shape = _simple_shape(frame)
        if shape is None:
            return Wgs84Layer(frame)
        type_id, ring = shape
        geoms = frame.geometry.to_numpy()
        # the same geometry objects (a view of the same array) give the same numbers
        key = (geoms.__array_interface__["data"][0], geoms.shape, geoms.strides,
               frame.crs.to_wkt())
        if key not in self._done:
            xy = shapely.get_coordinates(geoms)
            if not frame.crs.is_exact_same(WGS84):
                xy = _transform(xy, frame.crs, distinct=ring > 1)
            self._done[key] = xy, _wkb(xy, type_id, ring)
        xy, wkb = self._done[key]
        name = frame.geometry.name
        # GeoPandas' table for pyogrio: the attributes, the geometry as WKB in its place
        attributes = pd.DataFrame(frame, copy=False)
        attributes[name] = None
        table = pa.Table.from_pandas(attributes, preserve_index=False)
        position = table.schema.get_field_index(name)
        table = table.set_column(position, pa.field(name, pa.binary()), wkb)
        return Wgs84Layer(frame, table, _SIMPLE_TYPES[type_id], xy)


@contextmanager
def gpkg_options() -> Iterator[None]:
    """GDAL's options for writing a GeoPackage (:data:`GPKG_DATE`, :data:`GPKG_WRITE_OPTIONS`)."""
    import pyogrio

    options = {"OGR_CURRENT_DATE": GPKG_DATE, **GPKG_WRITE_OPTIONS}
    pyogrio.set_gdal_config_options(options)
    try:
        yield
    finally:
        pyogrio.set_gdal_config_options(dict.fromkeys(options))


def write_gpkg_layer(path: Path, name: str, layer: Wgs84Layer) -> None:
    """One layer into the GeoPackage ``path`` (within :func:`gpkg_options`), in EPSG:4326.

    A prepared table goes to pyogrio as GeoPandas would hand it over; other
    layers are ``frame.to_crs(4326).to_file(...)``.
    """
    import pyogrio

    if layer.table is not None:
        pyogrio.write_arrow(layer.table, path, layer=name, driver="GPKG",
                            geometry_name=layer.frame.geometry.name,
                            geometry_type=layer.geometry_type, crs="EPSG:4326")
        return
    frame = layer.frame
    if frame.crs is None or not frame.crs.is_exact_same(WGS84):
        frame = frame.to_crs(WGS84)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        frame.to_file(path, layer=name, driver="GPKG", engine="pyogrio", use_arrow=True)


def write_parquet_layer(path: Path, layer: Wgs84Layer) -> None:
    """``frame.to_crs(4326).to_parquet(path, index=False)``: the same bytes.

    A prepared layer's WKB is written with the schema and metadata GeoPandas
    gives it; they depend on the columns, the CRS, the geometry type and the
    extent only, so they are taken from GeoPandas' file of two of its rows
    holding the extent's corners.
    """
    import pyarrow.parquet as pq

    frame = layer.frame
    if layer.table is None or layer.geometry_type != "Point" or frame.attrs:
        if frame.crs is None or not frame.crs.is_exact_same(WGS84):
            frame = frame.to_crs(WGS84)
        frame.to_parquet(path, index=False)
        return
    low, high = layer.xy.min(axis=0), layer.xy.max(axis=0)
    corners = gpd.GeoDataFrame(pd.DataFrame(frame, copy=False).iloc[[0, 0]].reset_index(drop=True))
    corners = corners.set_geometry(gpd.GeoSeries(shapely.points([low, high]), crs=WGS84,
                                                 name=frame.geometry.name))
    buffer = io.BytesIO()
    corners.to_parquet(buffer, index=False)
    schema = pq.read_schema(pa.BufferReader(buffer.getvalue()))
    table = layer.table
    if schema.names != table.schema.names:
        message = f"{path.name}: the columns of GeoPandas' table differ from the layer's"
        raise RuntimeError(message)
    pq.write_table(pa.Table.from_arrays(table.columns, schema=schema), path,
                   compression="snappy")
