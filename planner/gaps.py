"""Gap hexagons: where residents cannot reach a facility type, on a fixed hexagon grid.

The ``gaps`` layer of ``coverage.gpkg``: pointy-top hexagons of width
:data:`planner.settings.gap_cell_m` fixed to the CRS origin (a cell keeps its id from run to
run), one row per hexagon holding at least one residence, with the facility
types no resident of the cell reaches. Vectorised: one stable sort gathers the
residences of every cell, and the types each residence reaches, packed 8 to a
byte, are or-ed per cell (one ``reduceat``).
"""

from __future__ import annotations

from collections.abc import Mapping

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings


def hexagon_index(xy: np.ndarray, cell_m: float) -> tuple[np.ndarray, np.ndarray]:
    """Axial coordinates ``(q, r)`` of the pointy-top hexagon holding each point.

    Hexagons of width ``cell_m`` (between opposite sides) tile the plane from
    the CRS origin, so a cell keeps its id from run to run.
    """
    radius = cell_m / np.sqrt(3.0)
    q = (np.sqrt(3.0) / 3.0 * xy[:, 0] - xy[:, 1] / 3.0) / radius
    r = (2.0 / 3.0 * xy[:, 1]) / radius
    cube = np.stack([q, -q - r, r], axis=1)
    rounded = np.round(cube)
    error = np.abs(rounded - cube)
    worst = np.argmax(error, axis=1)
    rows = np.arange(len(xy))
    # the coordinate with the largest rounding error is recomputed from the others
    rounded[rows, worst] = -(rounded.sum(axis=1) - rounded[rows, worst])
    return rounded[:, 0].astype(np.int64), rounded[:, 2].astype(np.int64)


def hexagons(q: np.ndarray, r: np.ndarray, cell_m: float) -> np.ndarray:
    """Polygons of the pointy-top hexagons ``(q, r)`` of width ``cell_m``."""
    radius = cell_m / np.sqrt(3.0)
    centre_x = radius * np.sqrt(3.0) * (q + r / 2.0)
    centre_y = radius * 1.5 * r
    angles = np.deg2rad(30.0 + 60.0 * np.arange(7))
    ring = np.stack([centre_x[:, None] + radius * np.cos(angles)[None, :],
                     centre_y[:, None] + radius * np.sin(angles)[None, :]], axis=2)
    return shapely.polygons(ring)


def gap_cells(residences: gpd.GeoDataFrame, thresholds_m: Mapping[str, float], *,
              cell_m: float | None = None) -> gpd.GeoDataFrame:
    """Hexagons with the facility types their residents cannot reach.

    Parameters
    ----------
    residences
        Points with ``population`` and one ``dist_<type_id>`` column per type
        (walking metres, NaN beyond reach).
    thresholds_m
        Threshold per type id; types without a ``dist_`` column are skipped.
    cell_m
        Hexagon width, metres (:data:`planner.settings.gap_cell_m`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per hexagon holding at least one residence, in the residences'
        CRS (a local UTM zone when they are in degrees):

        - ``cell_id``: ``"q_r"``, axial coordinates of the hexagon;
        - ``cell_m``: the hexagon width;
        - ``population``, ``n_residences``;
        - ``n_missing_types``: facility types that **no** residence of the
          cell reaches within the type's threshold;
        - ``missing_types``: those type ids, comma-separated, catalogue order;
        - ``mean_missing_types``: types beyond reach per resident, the
          population-weighted mean over the cell's residences (unweighted
          where the cell has no population).
    """
    cell = settings.gap_cell_m if cell_m is None else float(cell_m)
    frame = residences if not residences.crs or not residences.crs.is_geographic \
        else residences.to_crs(residences.estimate_utm_crs())
    type_ids = [type_id for type_id in thresholds_m if f"dist_{type_id}" in frame.columns]
    columns = ["cell_id", "cell_m", "population", "n_residences", "n_missing_types",
               "missing_types", "mean_missing_types"]
    if len(frame) == 0:
        return gpd.GeoDataFrame({name: [] for name in columns}, geometry=[], crs=frame.crs)
    geometry = frame.geometry.to_numpy()
    shaped = shapely.get_type_id(geometry) != 0  # a point is its own point on surface
    if shaped.any():
        geometry = geometry.copy()
        geometry[shaped] = shapely.point_on_surface(geometry[shaped])
    q, r = hexagon_index(shapely.get_coordinates(geometry), cell)
    # one integer per hexagon, ordered like (q, r): one stable sort gives the
    # cells, their residences together and each cell's first residence
    span = int(r.max() - r.min()) + 1
    key = (q - q.min()) * span + (r - r.min())
    order = np.argsort(key, kind="stable")
    new = np.r_[True, key[order][1:] != key[order][:-1]]
    starts = np.flatnonzero(new)
    count = np.diff(np.r_[starts, len(key)])
    inverse = np.empty(len(key), dtype=np.int64)
    inverse[order] = np.cumsum(new) - 1
    cells = np.stack([q[order[starts]], r[order[starts]]], axis=1)
    n_cells = len(cells)
    population = frame["population"].to_numpy(float)
    distance = frame[[f"dist_{type_id}" for type_id in type_ids]].to_numpy(float)
    limits = np.array([float(thresholds_m[type_id]) for type_id in type_ids])
    within = distance <= limits[None, :]  # NaN (beyond reach) compares False
    # a type is missing from a cell when none of its residences reaches it: the
    # residences' reach as bits, or-ed per cell
    reached = np.bitwise_or.reduceat(np.packbits(within, axis=1)[order], starts, axis=0)
    missing = ~np.unpackbits(reached, axis=1, count=len(type_ids)).astype(bool)
    beyond = (~within).sum(axis=1).astype(float)
    cell_pop = np.bincount(inverse, weights=population, minlength=n_cells)
    weighted = np.bincount(inverse, weights=population * beyond, minlength=n_cells)
    plain = np.bincount(inverse, weights=beyond, minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cell_pop > 0, weighted / cell_pop, plain / np.maximum(count, 1))
    joined = _joined_types(missing, type_ids)
    return gpd.GeoDataFrame({
        "cell_id": pd.Series(cells[:, 0]).astype(str) + "_" + pd.Series(cells[:, 1]).astype(str),
        "cell_m": cell,
        "population": np.round(cell_pop, 1),
        "n_residences": count,
        "n_missing_types": missing.sum(axis=1),
        "missing_types": pd.Series(joined, dtype=str),
        "mean_missing_types": np.round(mean, 2),
    }, geometry=hexagons(cells[:, 0], cells[:, 1], cell), crs=frame.crs)


def _joined_types(missing: np.ndarray, type_ids: list[str]) -> list[str]:
    """``missing`` rows as comma-separated type ids (one ``str.join`` per row)."""
    labels = np.array(type_ids, dtype=object)[np.nonzero(missing)[1]].tolist()
    bounds = np.r_[0, np.cumsum(missing.sum(axis=1))].tolist()
    return [",".join(labels[low:high]) for low, high in zip(bounds[:-1], bounds[1:], strict=True)]
