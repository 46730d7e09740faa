"""The user's layers (communities, population), read and checked before the work.

:func:`read_user_layer` runs before the extract is read, so that a layer
without a usable CRS, with broken geometry or with impossible populations
costs a second; :func:`check_area_layers` runs once the extract is read (the
layer must overlap it). Both are called at the top of :func:`planner.analyze`.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd

from planner.columns import find_column
from planner.coverage import POPULATION_COLUMNS
from planner.sources import read_layer
from planner.validate import (
    Bounds,
    check_overlap,
    check_population,
    infer_crs,
    repair_geometries,
)

#: Geometry kind each of the user's layers needs.
LAYER_KINDS = {"communities": "polygon", "population": "any"}


def read_user_layer(source, *, what: str,
                    encoding: str | None = None) -> gpd.GeoDataFrame | None:
    """The communities or population layer, read and checked before any work.

    A path is read (:func:`planner.sources.read_layer`: CRS declared or
    inferred); a GeoDataFrame is taken as it is. Either way its geometry is
    repaired or refused (:func:`~planner.validate.repair_geometries`) and, for
    ``population``, the population column must hold finite, non-negative
    numbers. The result carries its path in ``attrs["path"]`` for later messages.

    Parameters
    ----------
    source
        A path, a GeoDataFrame, or None (returned as is).
    what
        ``communities`` or ``population``.
    encoding
        Text encoding of the file (detected when None).

    Raises
    ------
    PlannerError
        One line naming the file and the problem.
    """
    if source is None:
        return None
    path = None if isinstance(source, gpd.GeoDataFrame) else Path(source)
    frame = source if path is None else read_layer(path, what=what, encoding=encoding)
    frame = infer_crs(frame, what=what, path=path)
    frame = repair_geometries(frame, what=what, path=path, kind=LAYER_KINDS.get(what, "any"))
    if what == "population":
        column = find_column(frame, POPULATION_COLUMNS)
        if column is not None:
            frame = frame.assign(**{column: check_population(frame[column], path=path,
                                                             column=str(column))})
    if path is not None:  # named by later messages (and recorded as an input)
        frame.attrs["path"] = str(path)
    return frame


def area_bounds(area) -> Bounds:
    """WEST SOUTH EAST NORTH (degrees) of an area's walking network."""
    corners = gpd.GeoSeries(gpd.points_from_xy(
        [area.nodes["x"].min(), area.nodes["x"].max()],
        [area.nodes["y"].min(), area.nodes["y"].max()]), crs=area.crs).to_crs(4326)
    x_min, y_min, x_max, y_max = corners.total_bounds
    return float(x_min), float(y_min), float(x_max), float(y_max)


def check_area_layers(area, **layers) -> None:
    """:func:`~planner.validate.check_overlap` of each layer given (``communities=…`` …)."""
    bounds = None
    for what, frame in layers.items():
        if isinstance(frame, gpd.GeoDataFrame) and len(frame):
            bounds = bounds or area_bounds(area)
            check_overlap(frame, bounds, what=what, path=frame.attrs.get("path"))
