"""Candidate sites: the user's premises and candidate sites, generated sites, checks.

Everything here reads or makes a table of sites in the walking network's
metric CRS; nothing measures distances yet.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import settings
from planner.catalogue import Catalogue
from planner.columns import find_column
from planner.errors import PlannerError
from planner.network import WalkNetwork
from planner.sources import WGS84, read_layer

log = logging.getLogger(__name__)

PREMISES_ID_COLUMNS = ("premises_id", "id", "编号", "房产编号")
SITE_ID_COLUMNS = ("site_id", "id", "编号")
NAME_COLUMNS = ("name", "名称")
FLOOR_AREA_COLUMNS = ("floor_area_m2", "floor_area", "area_m2", "建筑面积", "面积")
STATUS_COLUMNS = ("status", "状态", "使用状态")
OWNER_COLUMNS = ("owner", "产权单位", "权属")
ALLOWED_COLUMNS = ("allowed_types", "allowed", "可用类型")
#: spellings of the three premises statuses.
STATUS_VALUES = {
    "vacant": "vacant", "empty": "vacant", "空置": "vacant",
    "idle": "idle", "unused": "idle", "闲置": "idle", "低效": "idle",
    "in use": "in use", "in_use": "in use", "inuse": "in use", "in-use": "in use",
    "used": "in use", "occupied": "in use", "在用": "in use", "使用中": "in use",
    "已使用": "in use",
}
#: premises statuses that may be reallocated.
AVAILABLE_STATUSES = ("vacant", "idle")
#: tie-break order of site kinds.
KINDS = ("premises", "candidate", "generated")
#: building values taken as public buildings by ``generate_candidates(method="buildings")``.
PUBLIC_BUILDINGS = frozenset({
    "public", "civic", "government", "office", "school", "university", "college",
    "kindergarten", "community_centre", "hospital", "commercial", "retail",
})
_SEPARATORS = re.compile(r"[,;，；、\s]+")


def load_premises(source, network: WalkNetwork, catalogue: Catalogue) -> gpd.GeoDataFrame:
    """Read and check a premises layer.

    Parameters
    ----------
    source
        A file (GeoPackage, GeoJSON, Shapefile, or CSV/XLSX with longitude and
        latitude columns) or a GeoDataFrame, with ``premises_id``, ``name``,
        ``floor_area_m2``, ``status`` (vacant | idle | in use), ``owner`` and
        optionally ``allowed_types``; points or polygons.
    network
        The area's walking network (its CRS is the output CRS; premises more
        than :data:`planner.settings.max_snap_distance_m` from it lie outside).
    catalogue
        Validates ``allowed_types``.

    Returns
    -------
    geopandas.GeoDataFrame
        ``premises_id``, ``name``, ``floor_area_m2``, ``status``, ``owner``,
        ``allowed_types`` ("" = any), ``available``, ``status_input`` (the
        status as the user wrote it), geometry (as given), in the network's
        CRS; rows in input order.

    Raises
    ------
    PlannerError
        No floor-area column, latitude and longitude swapped, no premises
        inside the area, repeated ids.
    """
    path = None if isinstance(source, gpd.GeoDataFrame) else Path(source)
    layer = source if path is None else read_layer(path, what="premises")
    area_column = find_column(layer, FLOOR_AREA_COLUMNS)
    if area_column is None:
        message = ("the premises layer has no floor-area column (one of "
                   f"{', '.join(FLOOR_AREA_COLUMNS)})")
        raise PlannerError(message, path)
    layer = _inside_area(layer, network, "premises", path,
                         _ids(layer, PREMISES_ID_COLUMNS, "P", path, "premises"))
    ids = layer["_id"].to_numpy(object)
    floor_area = pd.to_numeric(layer[area_column], errors="coerce").to_numpy(float)
    keep = np.isfinite(floor_area) & (floor_area > 0)
    for row in np.flatnonzero(~keep):
        log.warning("%s: premises %s has no positive floor area (%r); skipped",
                    path or "premises", ids[row], layer[area_column].iloc[row])
    status, written, known = _statuses(layer, ids, keep, path)
    keep &= known
    allowed, ok = _allowed_types(layer, catalogue, ids, path, "premises")
    keep &= ok
    premises = gpd.GeoDataFrame({
        "premises_id": ids,
        "name": _text(layer, find_column(layer, NAME_COLUMNS)),
        "floor_area_m2": floor_area,
        "status": status,
        "owner": _text(layer, find_column(layer, OWNER_COLUMNS)),
        "allowed_types": allowed,
        "available": np.isin(status.astype(str), AVAILABLE_STATUSES),
        "status_input": written,
    }, geometry=layer.geometry.to_numpy(), crs=layer.crs)
    premises = premises[keep].reset_index(drop=True)
    if len(premises) == 0:
        message = "no usable premises (see the warnings above)"
        raise PlannerError(message, path)
    return premises


def _statuses(layer: pd.DataFrame, ids: np.ndarray, keep: np.ndarray, path
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Normalised status, the status as written, and the rows whose status is known."""
    status_column = find_column(layer, STATUS_COLUMNS)
    if status_column is None:
        log.warning("%s: no status column; every premises is taken as vacant",
                    path or "premises")
        status = np.full(len(layer), "vacant", dtype=object)
        return status, status.copy(), np.ones(len(layer), dtype=bool)
    written = layer[status_column].astype("string").str.strip()
    status = written.str.lower().map(STATUS_VALUES).to_numpy(object)
    unknown = pd.isna(status)
    for row in np.flatnonzero(unknown & keep):
        log.warning("%s: premises %s has an unknown status %r (expected vacant, idle "
                    "or in use); skipped", path or "premises", ids[row],
                    layer[status_column].iloc[row])
    return status, written.to_numpy(object), ~unknown


def load_candidates(source, network: WalkNetwork, catalogue: Catalogue) -> gpd.GeoDataFrame:
    """Read the planner's candidate sites (points or polygons).

    Optional columns: ``site_id``, ``name``, ``allowed_types``, ``floor_area_m2``
    (a candidate with a floor area is judged like premises). Rows outside the
    area are skipped with a warning each.

    Returns
    -------
    geopandas.GeoDataFrame
        ``site_id``, ``name``, ``floor_area_m2`` (NaN = new site),
        ``allowed_types``, geometry, in the network's CRS.
    """
    path = None if isinstance(source, gpd.GeoDataFrame) else Path(source)
    layer = source if path is None else read_layer(path, what="candidate sites")
    layer = _inside_area(layer, network, "candidate sites", path,
                         _ids(layer, SITE_ID_COLUMNS, "C", path, "candidate sites"))
    ids = layer["_id"].to_numpy(object)
    area_column = find_column(layer, FLOOR_AREA_COLUMNS)
    floor_area = (pd.to_numeric(layer[area_column], errors="coerce").to_numpy(float)
                  if area_column else np.full(len(layer), np.nan))
    allowed, ok = _allowed_types(layer, catalogue, ids, path, "candidate sites")
    sites = gpd.GeoDataFrame({
        "site_id": ids, "name": _text(layer, find_column(layer, NAME_COLUMNS)),
        "floor_area_m2": np.where(floor_area > 0, floor_area, np.nan),
        "allowed_types": allowed,
    }, geometry=layer.geometry.to_numpy(), crs=layer.crs)
    sites = sites[ok].reset_index(drop=True)
    if len(sites) == 0:
        message = "no usable candidate sites (see the warnings above)"
        raise PlannerError(message, path)
    return sites


def generate_candidates(network: WalkNetwork, *, method: str = "grid",
                        spacing_m: float = 100.0,
                        features: gpd.GeoDataFrame | None = None) -> gpd.GeoDataFrame:
    """Candidate sites for "where should a new facility go".

    Parameters
    ----------
    network
        The walking network.
    method
        ``"grid"``: the network node nearest to the centre of every square cell
        of side ``spacing_m`` that holds a node (ties by node index);
        ``"buildings"``: public buildings of the area (``building`` in
        :data:`PUBLIC_BUILDINGS`), with floor area = footprint × storeys.
    spacing_m
        Grid spacing, metres.
    features
        The area's OSM features (``Analysis.area.features``); for ``"buildings"``.

    Returns
    -------
    geopandas.GeoDataFrame
        ``site_id``, ``name``, ``floor_area_m2`` (NaN for grid nodes),
        ``allowed_types`` (""), point geometry, in the network's CRS.
    """
    if method == "grid":
        return _grid_sites(network, spacing_m)
    if method == "buildings":
        return _building_sites(features)
    message = f"unknown candidate method {method!r} (grid or buildings)"
    raise PlannerError(message)


def _grid_sites(network: WalkNetwork, spacing_m: float) -> gpd.GeoDataFrame:
    if not spacing_m > 0:
        message = f"the candidate spacing must be positive, got {spacing_m}"
        raise PlannerError(message)
    xy = network.node_xy
    origin = xy.min(axis=0)
    cell = np.floor((xy - origin) / spacing_m).astype(np.int64)
    centre = origin + (cell + 0.5) * spacing_m
    offset = np.hypot(*(xy - centre).T)
    key = cell[:, 0] * (cell[:, 1].max() + 1) + cell[:, 1]
    order = np.lexsort((np.arange(len(xy)), offset, key))
    first = order[np.r_[True, key[order][1:] != key[order][:-1]]]
    first = np.sort(first)
    return gpd.GeoDataFrame({
        "site_id": [f"node{node}" for node in network.node_ids[first]],
        "name": None, "floor_area_m2": np.nan, "allowed_types": "",
    }, geometry=gpd.points_from_xy(xy[first, 0], xy[first, 1]), crs=network.crs)


def _building_sites(features: gpd.GeoDataFrame | None) -> gpd.GeoDataFrame:
    if features is None or "building" not in features:
        message = "generating candidates from buildings needs the area's features"
        raise PlannerError(message)
    from planner.coverage import building_storeys

    polygons = features[features.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    chosen = polygons[polygons["building"].isin(PUBLIC_BUILDINGS)]
    storeys = building_storeys(chosen, settings.default_storeys)
    return gpd.GeoDataFrame({
        "site_id": ("b" + chosen["osm_type"].astype(str).str[0]
                    + chosen["osm_id"].astype(str)).to_numpy(),
        "name": chosen["name"].to_numpy() if "name" in chosen else None,
        "floor_area_m2": np.round(chosen.geometry.area.to_numpy() * storeys, 1),
        "allowed_types": "",
    }, geometry=chosen.geometry.representative_point().to_numpy(),
        crs=features.crs).reset_index(drop=True)


def site_table(prem, planned, generated, network: WalkNetwork) -> gpd.GeoDataFrame:
    """Every candidate site in tie-break order (kind, then id), as points.

    ``name`` falls back to the site id; ``named`` tells whether the input gave a name.
    """
    parts = []
    if prem is not None:
        usable = prem[prem["available"]]
        parts.append(_site_part(usable, usable["premises_id"], "premises"))
    for table, kind in ((planned, "candidate"), (generated, "generated")):
        if table is not None and len(table):
            parts.append(_site_part(table, table["site_id"], kind))
    if not parts:
        message = ("no candidate sites: give premises or candidate sites, or allow "
                   "generated new sites")
        raise PlannerError(message)
    table = pd.concat(parts, ignore_index=True)
    named = table["name"].notna() & (table["name"].astype(str).str.strip() != "")
    table["name"] = table["name"].where(table["name"].notna(), table["site_id"])
    table["named"] = named.to_numpy(bool)
    table["_kind"] = table["kind"].map({kind: order for order, kind in enumerate(KINDS)})
    table = table.sort_values(["_kind", "site_id"], kind="stable").drop(columns="_kind")
    return gpd.GeoDataFrame(table.reset_index(drop=True), geometry="geometry",
                            crs=network.crs)


def _site_part(table: gpd.GeoDataFrame, ids: pd.Series, kind: str) -> pd.DataFrame:
    return pd.DataFrame({
        "site_id": ids.astype(str).to_numpy(), "kind": kind,
        "name": table["name"].to_numpy(object),
        "floor_area_m2": table["floor_area_m2"].to_numpy(float),
        "allowed_types": table["allowed_types"].to_numpy(object),
        "geometry": table.geometry.representative_point().to_numpy()})


def _text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(frame), None, dtype=object)
    values = frame[column].astype(object)
    return values.where(values.notna(), None).map(
        lambda value: None if value is None else str(value)).to_numpy(object)


def _ids(layer, columns, prefix, path, what) -> np.ndarray:
    column = find_column(layer, columns)
    generated = np.array([f"{prefix}{row + 1:03d}" for row in range(len(layer))], dtype=object)
    if column is None:
        log.warning("%s: no id column (%s); rows numbered %s001 …", path or what,
                    columns[0], prefix)
        return generated
    raw = layer[column]
    text = raw.astype("string").str.strip()
    # integers read as floats (1.0) print as 1
    numeric = pd.to_numeric(raw, errors="coerce")
    whole = numeric.notna() & (numeric == np.round(numeric))
    text = text.where(~whole, numeric.round().astype("Int64").astype("string"))
    missing = text.isna() | (text == "")
    ids = np.where(missing.to_numpy(), generated, text.to_numpy(object))
    repeated = pd.Series(ids).duplicated(keep=False)
    if repeated.any():
        shown = ", ".join(sorted(set(pd.Series(ids)[repeated].astype(str)))[:5])
        message = f"the {what} layer repeats ids in column {column!r}: {shown}"
        raise PlannerError(message, path)
    return ids


def _allowed_types(layer, catalogue, ids, path, what) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ``allowed_types`` ("" = any) and the rows that remain usable."""
    column = find_column(layer, ALLOWED_COLUMNS)
    ok = np.ones(len(layer), dtype=bool)
    if column is None:
        return np.full(len(layer), "", dtype=object), ok
    known = set(catalogue.type_ids)
    result = np.full(len(layer), "", dtype=object)
    for row, value in enumerate(layer[column].to_numpy(object)):  # one short string per row
        if value is None or (isinstance(value, float) and np.isnan(value)):
            continue
        named = [part for part in _SEPARATORS.split(str(value).strip()) if part]
        unknown = [part for part in named if part not in known]
        named = [part for part in named if part in known]
        if unknown:
            log.warning("%s: %s %s names unknown types %s in allowed_types; %s",
                        path or what, what, ids[row], ", ".join(unknown),
                        "they are ignored" if named else "skipped")
            ok[row] = bool(named)
        result[row] = ",".join(dict.fromkeys(named))
    return result, ok


def _inside_area(layer: gpd.GeoDataFrame, network: WalkNetwork, what: str, path,
                 ids: np.ndarray) -> gpd.GeoDataFrame:
    """Rows in the area, reprojected; one warning per row outside; swap check."""
    layer = layer.assign(_id=ids)
    if layer.crs is None:
        message = f"the {what} layer has no CRS (set one, e.g. EPSG:4326)"
        raise PlannerError(message, path)
    points = layer.geometry.representative_point()
    inside = network.snap(points.to_crs(network.crs).to_numpy()).snapped
    if inside.mean() < 0.5 and layer.crs.is_geographic and _looks_swapped(points, network,
                                                                           inside):
        message = (f"the {what} layer's latitude and longitude look swapped "
                   "(swapped, they fall inside the area)")
        raise PlannerError(message, path)
    if not inside.any():
        message = (f"none of the {len(layer)} {what} lies inside the area (all are more "
                   f"than {settings.max_snap_distance_m:g} m from its walking network)")
        raise PlannerError(message, path)
    for row in np.flatnonzero(~inside):
        log.warning("%s: %s %s lies outside the area (more than %g m from the walking "
                    "network); skipped", path or what, what, ids[row],
                    settings.max_snap_distance_m)
    return layer[inside].to_crs(network.crs).reset_index(drop=True)


def _looks_swapped(points: gpd.GeoSeries, network: WalkNetwork, inside: np.ndarray) -> bool:
    """Whether most points fall inside the area once longitude and latitude are swapped."""
    lonlat = points.to_crs(WGS84)
    x, y = lonlat.x.to_numpy(), lonlat.y.to_numpy()
    valid = np.abs(x) <= 90
    if not valid.any():
        return False
    swapped = gpd.GeoSeries(gpd.points_from_xy(y[valid], x[valid]), crs=WGS84)
    hit = network.snap(swapped.to_crs(network.crs).to_numpy()).snapped
    return bool(hit.sum() > inside.sum() and hit.mean() >= 0.5)
