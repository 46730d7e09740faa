"""Candidate sites and state-owned premises ranked by the residents they add.

Three questions, one engine:

- *Which site first?* :class:`GreedyRanking` opens, for one facility type and
  with the existing facilities fixed, the candidate that newly brings the most
  residents within the type's threshold, then the next, and so on: the ranked
  list planners read ("site k adds N residents").
- *How good is that list?* :class:`MaximalCovering` solves the exact
  maximal-covering location problem (Church & ReVelle 1974) for the same number
  of sites with HiGHS and reports the greedy/optimal ratio and the MIP gap.
- *Which premises should become what?* :class:`Reallocation` assigns vacant and
  idle premises to facility types across all scenes, as one exact integer
  program maximising the weighted residents newly covered, within each
  premises' floor area.

Coverage sets
-------------
A candidate site enters the walking graph like a facility (a virtual node on
its nearest edge, see :mod:`planner.access`). One bounded Dijkstra from every
candidate (``scipy.sparse.csgraph.dijkstra(min_only=False, limit=…)``, in
chunks so that the dense block stays small) gives node distances; residences
snapped on edge (u, v) at offset r with access leg a are then at
``a + min(d[u] + r, d[v] + len − r)``, or directly along the edge when the site
lies on the same edge, exactly as :meth:`planner.access.Access.point_distances`
measures them. The result is a sparse candidate × residence matrix of walking
distances (:func:`site_distances`), cut per type at its threshold and
restricted to residences that no existing facility of the type covers
(:class:`CoverageSets`).

Rules where the issue is silent
-------------------------------
- **Availability.** Premises with status ``vacant`` or ``idle`` (空置, 闲置) are
  candidates; ``in use`` (在用, 使用中) premises are kept in the outputs but never
  reallocated.
- **Suitability.** A site with a floor area (premises, buildings) can host a
  type when it is allowed (an ``allowed_types`` column, comma-separated type
  ids; empty = any type) and its floor area reaches the type's minimum
  (``min_floor_area_m2`` from the catalogue, all unverified, or the planner's
  override). A type without a minimum is a type no standard sizes, often not a
  building use at all (bus stop, park, hydrant): premises take it only when
  their ``allowed_types`` names it, and then it occupies the whole premises.
  Sites without a floor area (the planner's candidate sites, generated network
  nodes) can host any allowed type: they stand for a new facility.
- **Several types per premises.** A premises may host several types when the
  sum of their minimum floor areas fits within its floor area (a type without
  a minimum counts the whole floor area).
- **Weights.** Each type weighs 1 by default ("type" weighting). With "scene"
  weighting each scene weighs 1, shared equally among the catalogue's types of
  that scene, as in the overall score. A weights file (CSV with ``type_id`` or
  ``scene_id`` and ``weight``) overrides: a scene row is shared among its
  types, a type row sets the type's own weight.
- **Ties** in the greedy ranking are broken by kind (premises, then planner
  candidates, then generated sites) and then by site id. The exact solves are
  deterministic (fixed HiGHS seed), but which of several equal optima they
  return is HiGHS's choice.
- **Rankings are per type**: one premises may top the lists of several
  types; the reallocation plan settles who gets it.
- **New sites.** Network nodes on a regular grid (or public buildings of the
  area) answer "where should a new X go". By default ("auto") they are ranked
  for a type only when no premises or planner candidate adds a resident.
- **The plan** has no limit per type unless ``max_per_type`` is given; after
  the solve, assignments that add nobody (all they reach is reached by another
  premises of the same type in the plan) are dropped, and each newly covered
  resident is credited to the nearest assigned premises of the type.
- **Inside the area** means within :data:`planner.settings.max_snap_distance_m`
  of the walking network; other rows are skipped with one warning each.

Outputs (:func:`write_sites`): ``sites.csv`` (the greedy ranking per type),
``sites_optimal.csv`` (greedy against the exact optimum), ``reallocation.csv``
(the plan), ``reallocation_communities.csv`` (coverage per community and type
before and after the plan) and the GeoPackage layers ``candidates`` and
``reallocation`` (EPSG:4326).
"""

from __future__ import annotations

import html
import json
import logging
import os
import re
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

from planner import settings
from planner.catalogue import Catalogue
from planner.coverage import community_coverage
from planner.errors import PlannerError
from planner.network import Snap, WalkNetwork, symmetric_csr
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
#: colours of assigned types on the map (in the order the plan's types first appear).
TYPE_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#ff7f00")
UNASSIGNED_COLOUR = "#9e9e9e"
#: label of residents outside every community in ``community_gains``.
OUTSIDE = "(outside)"
_SEPARATORS = re.compile(r"[,;，；、\s]+")

Progress = Callable[[str, float], None]


# --------------------------------------------------------------------------- reading


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
        ``allowed_types`` ("" = any), ``available``, geometry (as given), in the
        network's CRS; rows in input order.

    Raises
    ------
    PlannerError
        No floor-area column, latitude and longitude swapped, no premises
        inside the area, repeated ids.
    """
    path = None if isinstance(source, gpd.GeoDataFrame) else Path(source)
    layer = source if path is None else read_layer(path, what="premises")
    area_column = _find_column(layer, FLOOR_AREA_COLUMNS)
    if area_column is None:
        raise PlannerError("the premises layer has no floor-area column (one of "
                           f"{', '.join(FLOOR_AREA_COLUMNS)})", path)
    layer = _inside_area(layer, network, "premises", path,
                         _ids(layer, PREMISES_ID_COLUMNS, "P", path, "premises"))
    ids = layer["_id"].to_numpy(object)
    floor_area = pd.to_numeric(layer[area_column], errors="coerce").to_numpy(float)
    keep = np.isfinite(floor_area) & (floor_area > 0)
    for row in np.flatnonzero(~keep):
        log.warning("%s: premises %s has no positive floor area (%r); skipped",
                    path or "premises", ids[row], layer[area_column].iloc[row])
    status_column = _find_column(layer, STATUS_COLUMNS)
    if status_column is None:
        log.warning("%s: no status column; every premises is taken as vacant",
                    path or "premises")
        status = np.full(len(layer), "vacant", dtype=object)
    else:
        raw = layer[status_column].astype("string").str.strip().str.lower()
        status = raw.map(STATUS_VALUES).to_numpy(object)
        unknown = pd.isna(status)
        for row in np.flatnonzero(unknown & keep):
            log.warning("%s: premises %s has an unknown status %r (expected vacant, idle "
                        "or in use); skipped", path or "premises", ids[row],
                        layer[status_column].iloc[row])
        keep &= ~unknown
    allowed, ok = _allowed_types(layer, catalogue, ids, path, "premises")
    keep &= ok
    name_column = _find_column(layer, NAME_COLUMNS)
    owner_column = _find_column(layer, OWNER_COLUMNS)
    premises = gpd.GeoDataFrame({
        "premises_id": ids,
        "name": _text(layer, name_column),
        "floor_area_m2": floor_area,
        "status": status,
        "owner": _text(layer, owner_column),
        "allowed_types": allowed,
        "available": np.isin(status.astype(str), AVAILABLE_STATUSES),
    }, geometry=layer.geometry.to_numpy(), crs=layer.crs)
    premises = premises[keep].reset_index(drop=True)
    if len(premises) == 0:
        raise PlannerError("no usable premises (see the warnings above)", path)
    return premises


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
    area_column = _find_column(layer, FLOOR_AREA_COLUMNS)
    floor_area = (pd.to_numeric(layer[area_column], errors="coerce").to_numpy(float)
                  if area_column else np.full(len(layer), np.nan))
    allowed, ok = _allowed_types(layer, catalogue, ids, path, "candidate sites")
    sites = gpd.GeoDataFrame({
        "site_id": ids, "name": _text(layer, _find_column(layer, NAME_COLUMNS)),
        "floor_area_m2": np.where(floor_area > 0, floor_area, np.nan),
        "allowed_types": allowed,
    }, geometry=layer.geometry.to_numpy(), crs=layer.crs)
    sites = sites[ok].reset_index(drop=True)
    if len(sites) == 0:
        raise PlannerError("no usable candidate sites (see the warnings above)", path)
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
        if not spacing_m > 0:
            raise PlannerError(f"the candidate spacing must be positive, got {spacing_m}")
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
    if method == "buildings":
        if features is None or "building" not in features:
            raise PlannerError("generating candidates from buildings needs the area's features")
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
    raise PlannerError(f"unknown candidate method {method!r} (grid or buildings)")


def _find_column(frame: pd.DataFrame, names: Sequence[str]) -> str | None:
    geometry = frame.geometry.name if isinstance(frame, gpd.GeoDataFrame) else None
    lowered = {str(column).strip().lower(): column for column in frame.columns
               if column != geometry}
    return next((lowered[name] for name in names if name in lowered), None)


def _text(frame: pd.DataFrame, column: str | None) -> np.ndarray:
    if column is None:
        return np.full(len(frame), None, dtype=object)
    values = frame[column].astype(object)
    return values.where(values.notna(), None).map(
        lambda value: None if value is None else str(value)).to_numpy(object)


def _ids(layer, columns, prefix, path, what) -> np.ndarray:
    column = _find_column(layer, columns)
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
        raise PlannerError(f"the {what} layer repeats ids in column {column!r}: {shown}", path)
    return ids


def _allowed_types(layer, catalogue, ids, path, what) -> tuple[np.ndarray, np.ndarray]:
    """Normalised ``allowed_types`` ("" = any) and the rows that remain usable."""
    column = _find_column(layer, ALLOWED_COLUMNS)
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
        raise PlannerError(f"the {what} layer has no CRS (set one, e.g. EPSG:4326)", path)
    points = layer.geometry.representative_point()
    metric = points.to_crs(network.crs)
    inside = network.snap(metric.to_numpy()).snapped
    if inside.mean() < 0.5 and layer.crs.is_geographic:
        lonlat = points.to_crs(WGS84)
        x, y = lonlat.x.to_numpy(), lonlat.y.to_numpy()
        valid = np.abs(x) <= 90
        if valid.any():
            swapped = gpd.GeoSeries(gpd.points_from_xy(y[valid], x[valid]), crs=WGS84)
            hit = network.snap(swapped.to_crs(network.crs).to_numpy()).snapped
            if hit.sum() > inside.sum() and hit.mean() >= 0.5:
                raise PlannerError(f"the {what} layer's latitude and longitude look swapped "
                                   "(swapped, they fall inside the area)", path)
    if not inside.any():
        raise PlannerError(
            f"none of the {len(layer)} {what} lies inside the area (all are more than "
            f"{settings.max_snap_distance_m:g} m from its walking network)", path)
    for row in np.flatnonzero(~inside):
        log.warning("%s: %s %s lies outside the area (more than %g m from the walking "
                    "network); skipped", path or what, what, ids[row],
                    settings.max_snap_distance_m)
    return layer[inside].to_crs(network.crs).reset_index(drop=True)


# --------------------------------------------------------------------------- distances


def site_distances(network: WalkNetwork, sites, residences, limit_m: float, *,
                   block_elements: int = 1 << 23) -> sparse.csr_matrix:
    """Walking distances from candidate sites to residences, up to a limit.

    Parameters
    ----------
    network
        The walking network.
    sites, residences
        Shapely points in the network's CRS, or their :class:`~planner.network.Snap`.
    limit_m
        Longest distance kept, metres.
    block_elements
        Size of the dense block of one Dijkstra chunk (sites × graph nodes, or
        sites × twice the residences if more); bounds memory. Only the reached
        nodes are kept, and residences are joined to them through their edge's
        end nodes, so the work beyond Dijkstra grows with the pairs found, not
        with sites × residences.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_sites, n_residences)`` metres, an entry for every pair within
        ``limit_m`` (a zero distance is stored as
        :data:`planner.settings.min_edge_length_m`); sites or residences off the
        network have no entries. Equal to what
        :meth:`planner.access.Access.point_distances` gives for one facility at
        the site.
    """
    site_snap = sites if isinstance(sites, Snap) else network.snap(sites)
    res_snap = residences if isinstance(residences, Snap) else network.snap(residences)
    n_sites, n_res = len(site_snap.edge), len(res_snap.edge)
    on_site = np.flatnonzero(site_snap.snapped)
    on_res = np.flatnonzero(res_snap.snapped)
    if len(on_site) == 0 or len(on_res) == 0:
        return sparse.csr_matrix((n_sites, n_res))
    n_nodes = network.n_nodes
    graph = _augmented_graph(network, site_snap, on_site)
    # residences hang from both ends of their edge: (node, residence, metres to the node)
    edge = res_snap.edge[on_res]
    hang_node = np.concatenate([network.edge_u[edge], network.edge_v[edge]])
    hang_res = np.concatenate([on_res, on_res])
    hang_m = np.concatenate([res_snap.offset_m[on_res],
                             network.edge_length_m[edge] - res_snap.offset_m[on_res]])
    order = np.argsort(hang_node, kind="stable")
    hang_res, hang_m = hang_res[order], hang_m[order]
    hang_start = np.concatenate([[0], np.cumsum(np.bincount(hang_node, minlength=n_nodes))])
    access = np.zeros(n_res)
    access[on_res] = res_snap.access_m[on_res]
    # one dense Dijkstra block per chunk of sites; only reached nodes are kept. The
    # chunk also bounds the expansion below (at most every residence twice per site).
    chunk = max(1, block_elements // max(graph.shape[0], len(hang_res)))
    rows, cols, values = [], [], []
    for start in range(0, len(on_site), chunk):
        stop = min(start + chunk, len(on_site))
        reached = dijkstra(graph, directed=True, indices=n_nodes + np.arange(start, stop),
                           limit=limit_m, min_only=False)[:, :n_nodes]
        site, node = np.nonzero(np.isfinite(reached))
        metres = reached[site, node]
        del reached
        # expand every (site, node) to the residences hanging from the node
        count = hang_start[node + 1] - hang_start[node]
        pair = np.repeat(np.arange(len(node)), count)
        position = hang_start[node][pair] + np.arange(len(pair)) - np.repeat(
            np.cumsum(count) - count, count)
        home = hang_res[position]
        distance = metres[pair] + hang_m[position] + access[home]
        near = distance <= limit_m
        rows.append(on_site[start + site[pair[near]]])
        cols.append(home[near])
        values.append(distance[near])
    same = _same_edge(site_snap, on_site, res_snap, on_res, limit_m)
    rows.append(same[0])
    cols.append(same[1])
    values.append(same[2])
    rows, cols, values = np.concatenate(rows), np.concatenate(cols), np.concatenate(values)
    order = np.lexsort((values, cols, rows))
    rows, cols, values = rows[order], cols[order], values[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (cols[1:] != cols[:-1])
    values = np.maximum(values[first], settings.min_edge_length_m)
    return sparse.csr_matrix((values, (rows[first], cols[first])), shape=(n_sites, n_res))


def _augmented_graph(network: WalkNetwork, snap: Snap, rows: np.ndarray) -> sparse.csr_matrix:
    """The walking graph plus one virtual node per snapped site (as in Access)."""
    virtual = network.n_nodes + np.arange(len(rows))
    edge = snap.edge[rows]
    to_u = snap.access_m[rows] + snap.offset_m[rows]
    to_v = snap.access_m[rows] + network.edge_length_m[edge] - snap.offset_m[rows]
    u = np.concatenate([network.edge_u, virtual, virtual])
    v = np.concatenate([network.edge_v, network.edge_u[edge], network.edge_v[edge]])
    length = np.concatenate([network.edge_length_m, to_u, to_v])
    return symmetric_csr(u, v, length, network.n_nodes + len(rows))


def _same_edge(site_snap: Snap, on_site: np.ndarray, res_snap: Snap, on_res: np.ndarray,
               limit_m: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Site–residence pairs on one edge, reached directly along it."""
    sites = pd.DataFrame({"edge": site_snap.edge[on_site], "site_off": site_snap.offset_m[on_site],
                          "site_access": site_snap.access_m[on_site], "site": on_site})
    homes = pd.DataFrame({"edge": res_snap.edge[on_res], "off": res_snap.offset_m[on_res],
                          "access": res_snap.access_m[on_res], "res": on_res})
    homes = homes[homes["edge"].isin(sites["edge"])]
    pairs = homes.merge(sites, on="edge")
    direct = (np.abs(pairs["off"] - pairs["site_off"]) + pairs["access"]
              + pairs["site_access"]).to_numpy(float)
    near = direct <= limit_m
    return (pairs["site"].to_numpy(np.int64)[near], pairs["res"].to_numpy(np.int64)[near],
            direct[near])


# --------------------------------------------------------------------------- coverage sets


@dataclass
class CoverageSets:
    """Which candidate sites newly bring which residences within one type's threshold.

    Attributes
    ----------
    type_id, threshold_m
        The facility type and its walking threshold.
    distance
        ``(n_sites, n_demand)`` sparse walking distances ≤ threshold; a row per
        candidate site (empty where the site cannot host the type), a column per
        demand residence.
    demand
        Residence position (row of ``Analysis.residences``) of every column:
        residences no existing facility of the type covers and some site reaches.
    population
        Population of every column.
    """

    type_id: str
    threshold_m: float
    distance: sparse.csr_matrix
    demand: np.ndarray
    population: np.ndarray

    @property
    def matrix(self) -> sparse.csr_matrix:
        """The binary incidence (1 where the site covers the residence)."""
        incidence = self.distance.copy()
        incidence.data = np.ones_like(incidence.data)
        return incidence

    @classmethod
    def from_distances(cls, distances: sparse.csr_matrix, threshold_m: float,
                       population: np.ndarray, *, covered: np.ndarray | None = None,
                       suitable: np.ndarray | None = None, type_id: str = "") -> CoverageSets:
        """Cut a site × residence distance matrix at a threshold.

        Parameters
        ----------
        distances
            From :func:`site_distances` (limit ≥ threshold).
        threshold_m
            The type's threshold; distances are rounded to 0.1 m first, as in
            the residences' ``dist_<type>`` columns.
        population
            Per residence.
        covered
            Residences already covered by existing facilities (dropped).
        suitable
            Sites that may host the type (other rows are emptied).
        """
        matrix = distances.tocoo()
        keep = np.round(matrix.data, 1) <= threshold_m
        if covered is not None:
            keep &= ~np.asarray(covered, bool)[matrix.col]
        if suitable is not None:
            keep &= np.asarray(suitable, bool)[matrix.row]
        rows, cols, values = matrix.row[keep], matrix.col[keep], matrix.data[keep]
        demand, column = np.unique(cols, return_inverse=True)
        cut = sparse.csr_matrix((values, (rows, column)),
                                shape=(distances.shape[0], len(demand)))
        return cls(type_id, float(threshold_m), cut, demand,
                   np.asarray(population, float)[demand])


def coverage_sets(network: WalkNetwork, sites, residences: gpd.GeoDataFrame,
                  thresholds_m: Mapping[str, float], *, covered: Mapping[str, np.ndarray],
                  suitable: Mapping[str, np.ndarray] | None = None,
                  residence_snap: Snap | None = None) -> dict[str, CoverageSets]:
    """Coverage sets of several types from one Dijkstra pass (limit = largest threshold).

    Parameters
    ----------
    network
        The walking network.
    sites
        Site points (or their Snap).
    residences
        With ``population``; geometry used unless ``residence_snap`` is given.
    thresholds_m
        Threshold per type id.
    covered
        Per type, the residences existing facilities already cover.
    suitable
        Per type, the sites that may host it (all when omitted).
    """
    if not thresholds_m:
        return {}
    snap = residence_snap if residence_snap is not None else network.snap(residences.geometry)
    distances = site_distances(network, sites, snap, max(thresholds_m.values()))
    population = residences["population"].to_numpy(float)
    return {type_id: CoverageSets.from_distances(
        distances, threshold, population, covered=covered[type_id],
        suitable=None if suitable is None else suitable[type_id], type_id=type_id)
        for type_id, threshold in thresholds_m.items()}


def aggregate_demand(matrix: sparse.spmatrix, weights: np.ndarray
                     ) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray]:
    """Merge demand columns with identical covering sets.

    Parameters
    ----------
    matrix
        ``(n_sites, n_demand)``; nonzero = covers.
    weights
        Per demand column.

    Returns
    -------
    (groups, group_weights, group_of_column)
        The binary ``(n_sites, n_groups)`` matrix, the summed weight per group,
        and the group of every column (-1 for columns no site covers or of
        zero weight, which are dropped).
    """
    csc = sparse.csc_matrix(matrix, dtype=float)
    csc.sum_duplicates()
    csc.eliminate_zeros()
    csc.data[:] = 1.0
    weights = np.asarray(weights, float)
    n_sites, n_demand = csc.shape
    nnz = np.diff(csc.indptr)
    live = (nnz > 0) & (weights > 0)
    # two independent 64-bit sums of random row keys identify a column's row set
    rng = np.random.default_rng(20240601)
    keys = rng.integers(0, np.iinfo(np.int64).max, size=(2, n_sites), dtype=np.int64)
    keys = keys.astype(np.uint64)
    hashes = []
    for key in keys:
        cumulative = np.concatenate([[np.uint64(0)], np.cumsum(key[csc.indices],
                                                               dtype=np.uint64)])
        hashes.append(cumulative[csc.indptr[1:]] - cumulative[csc.indptr[:-1]])
    signature = np.stack([nnz.astype(np.uint64), *hashes], axis=1)[live]
    _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
    live_columns = np.flatnonzero(live)
    representative = live_columns[first]
    groups = csc[:, representative]
    # verify: every column equals its group's representative (hash collisions)
    rebuilt = groups[:, inverse.ravel()]
    if (rebuilt != csc[:, live_columns]).nnz:
        groups, inverse = csc[:, live_columns], np.arange(len(live_columns))
    group_of_column = np.full(n_demand, -1, dtype=np.int64)
    group_of_column[live_columns] = inverse.ravel()
    group_weights = np.bincount(inverse.ravel(), weights=weights[live_columns],
                                minlength=groups.shape[1])
    return sparse.csc_matrix(groups), group_weights, group_of_column


def covered_weight(matrix: sparse.spmatrix, weights: np.ndarray, sites) -> float:
    """Total weight of the demand any of ``sites`` covers."""
    rows = sparse.csr_matrix(matrix)[np.asarray(sites, dtype=np.int64)]
    hit = np.zeros(matrix.shape[1], dtype=bool)
    hit[rows.indices[rows.data != 0]] = True
    return float(np.asarray(weights, float)[hit].sum())


# --------------------------------------------------------------------------- models


class GreedyRanking:
    """Rank sites greedily by the demand weight each newly covers.

    Parameters
    ----------
    matrix
        ``(n_sites, n_demand)`` sparse; nonzero where the site covers the demand.
    weights
        Demand weights (population).
    count
        Sites to rank at most; all that add something when omitted.

    Attributes
    ----------
    order
        Row indices of the ranked sites, best first (ties by row index, so
        order the rows by id).
    added
        Weight newly covered by each ranked site; never increases along the ranking.
    objective
        Total weight covered.

    Examples
    --------
    >>> ranking = GreedyRanking(sets.matrix, sets.population, count=5).solve()
    >>> ranking.order, ranking.added
    """

    def __init__(self, matrix: sparse.spmatrix, weights: np.ndarray,
                 count: int | None = None) -> None:
        self.matrix = sparse.csr_matrix(matrix, dtype=float)
        self.matrix.data = (self.matrix.data != 0).astype(float)
        self.matrix.eliminate_zeros()
        self.weights = np.asarray(weights, float)
        self.count = self.matrix.shape[0] if count is None else int(count)
        self.order = np.zeros(0, dtype=np.int64)
        self.added = np.zeros(0)
        self.covered = np.zeros(self.matrix.shape[1], dtype=bool)
        self.objective = 0.0

    def solve(self) -> GreedyRanking:
        csr = self.matrix
        csc = csr.tocsc()
        remaining = self.weights.copy()
        gains = csr @ remaining
        tolerance = 1e-9 * max(1.0, float(np.abs(self.weights).sum()))
        order, added = [], []
        for _ in range(min(self.count, csr.shape[0])):  # one pick per step, not per site
            best = gains.max() if len(gains) else 0.0
            if best <= tolerance:
                break
            pick = int(np.flatnonzero(gains >= best - tolerance)[0])
            newly = csr.indices[csr.indptr[pick]:csr.indptr[pick + 1]]
            newly = newly[remaining[newly] > 0]
            order.append(pick)
            added.append(float(remaining[newly].sum()))
            gains -= csc[:, newly] @ remaining[newly]
            gains[pick] = 0.0
            remaining[newly] = 0.0
        self.order = np.array(order, dtype=np.int64)
        self.added = np.array(added)
        self.covered = np.zeros(csr.shape[1], dtype=bool)
        self.covered[csr[self.order].indices] = True
        self.objective = float(self.added.sum())
        return self


@dataclass
class MipResult:
    """What HiGHS returned."""

    values: np.ndarray
    objective: float
    bound: float
    mip_gap: float
    status: str
    seconds: float


class MaximalCovering:
    """The maximal covering location problem, solved exactly with HiGHS.

    Choose at most ``count`` sites maximising the demand weight within reach:
    binary ``x_j`` (site open), ``0 ≤ y_g ≤ 1`` (demand group covered),
    ``y_g ≤ Σ_j a_gj x_j``, ``Σ_j x_j ≤ count``, maximise ``Σ_g w_g y_g``.
    Demand with identical covering sets is merged first (:func:`aggregate_demand`).

    Parameters
    ----------
    matrix, weights
        As for :class:`GreedyRanking`.
    count
        Number of sites.
    time_limit_s
        HiGHS time limit; the best solution found and the gap are reported.
    mip_rel_gap
        Relative gap at which HiGHS stops (0: prove optimality).
    start
        Rows of a feasible solution to warm-start from (e.g. the greedy ranking).

    Attributes
    ----------
    selected
        Row indices of the chosen sites, ascending.
    objective, bound, mip_gap, status, seconds, n_groups
        The solution's weight, HiGHS's dual bound, the relative gap, the model
        status, the solve time and the number of demand rows after merging.
    """

    def __init__(self, matrix: sparse.spmatrix, weights: np.ndarray, count: int, *,
                 time_limit_s: float = 60.0, mip_rel_gap: float = 0.0,
                 start: Sequence[int] | None = None) -> None:
        self.matrix = sparse.csr_matrix(matrix)
        self.weights = np.asarray(weights, float)
        self.count = int(count)
        self.time_limit_s = float(time_limit_s)
        self.mip_rel_gap = float(mip_rel_gap)
        self.start = None if start is None else np.asarray(start, dtype=np.int64)
        self.selected = np.zeros(0, dtype=np.int64)
        self.objective = 0.0
        self.bound = 0.0
        self.mip_gap = 0.0
        self.status = "empty"
        self.seconds = 0.0
        self.n_groups = 0

    def solve(self) -> MaximalCovering:
        groups, group_weight, _ = aggregate_demand(self.matrix, self.weights)
        useful = np.flatnonzero(np.diff(sparse.csr_matrix(groups).indptr) > 0)
        self.n_groups = groups.shape[1]
        if len(useful) == 0 or self.count <= 0 or self.n_groups == 0:
            self.status = "Optimal"  # nothing any site can add: the empty choice is optimal
            return self
        n_x, n_y = len(useful), self.n_groups
        cover = sparse.csr_matrix(groups)[useful].T.tocsr()  # groups × useful sites
        constraints = sparse.vstack([
            sparse.hstack([-cover, sparse.identity(n_y, format="csr")]),
            sparse.hstack([sparse.csr_matrix(np.ones((1, n_x))),
                           sparse.csr_matrix((1, n_y))]),
        ]).tocsc()
        lower = np.r_[np.full(n_y, -np.inf), -np.inf]
        upper = np.r_[np.zeros(n_y), float(self.count)]
        start = None
        if self.start is not None and len(self.start):
            x0 = np.isin(useful, self.start).astype(float)
            if x0.sum() <= self.count:
                y0 = np.minimum(1.0, cover @ x0)
                start = np.r_[x0, y0]
        result = solve_mip(np.r_[np.zeros(n_x), group_weight], constraints, lower, upper,
                           np.ones(n_x + n_y), np.r_[np.ones(n_x, bool), np.zeros(n_y, bool)],
                           time_limit_s=self.time_limit_s, mip_rel_gap=self.mip_rel_gap,
                           start=start)
        chosen = result.values[:n_x] > 0.5
        self.selected = np.sort(useful[chosen])
        # the covered weight of the chosen sites, computed exactly rather than from y
        self.objective = covered_weight(self.matrix, self.weights, self.selected)
        self.bound = max(result.bound, self.objective)
        self.mip_gap = result.mip_gap
        self.status = result.status
        self.seconds = result.seconds
        return self


_HIGHS_BANNER_SHOWN = False


def _new_highs():
    """A silent ``highspy.Highs``; its first construction prints a banner on fd 1."""
    import highspy

    global _HIGHS_BANNER_SHOWN
    if _HIGHS_BANNER_SHOWN:
        highs = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _HIGHS_BANNER_SHOWN = True
    highs.setOptionValue("output_flag", False)
    return highs


def solve_mip(cost: np.ndarray, constraints: sparse.spmatrix, row_lower: np.ndarray,
              row_upper: np.ndarray, col_upper: np.ndarray, integer: np.ndarray, *,
              time_limit_s: float = 60.0, mip_rel_gap: float = 0.0,
              start: np.ndarray | None = None) -> MipResult:
    """Maximise ``cost · v`` s.t. ``row_lower ≤ A v ≤ row_upper``, ``0 ≤ v ≤ col_upper``.

    ``integer`` marks integer columns. Infinite bounds are passed as HiGHS infinity.
    """
    import highspy

    matrix = sparse.csc_matrix(constraints)
    matrix.sort_indices()
    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = np.asarray(cost, float)
    lp.col_lower_ = np.zeros(matrix.shape[1])
    lp.col_upper_ = np.asarray(col_upper, float)
    lp.row_lower_ = np.where(np.isneginf(row_lower), -inf, row_lower).astype(float)
    lp.row_upper_ = np.where(np.isposinf(row_upper), inf, row_upper).astype(float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger if flag else
                       highspy.HighsVarType.kContinuous for flag in integer]
    lp.sense_ = highspy.ObjSense.kMaximize
    highs = _new_highs()
    highs.setOptionValue("time_limit", float(time_limit_s))
    highs.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    highs.setOptionValue("random_seed", 0)
    highs.passModel(lp)
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = list(np.asarray(start, float))
        solution.value_valid = True
        highs.setSolution(solution)
    began = time.perf_counter()
    highs.run()
    seconds = time.perf_counter() - began
    status = highs.modelStatusToString(highs.getModelStatus())
    info = highs.getInfo()
    values = np.asarray(highs.getSolution().col_value, float)
    if len(values) != matrix.shape[1]:
        values = np.zeros(matrix.shape[1])
    objective = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else objective
    gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else 0.0
    return MipResult(values, objective, bound, max(gap, 0.0), status, seconds)


class Reallocation:
    """Assign premises to facility types, exactly, within each premises' floor area.

    Binary ``x_pt`` (premises p hosts type t) for suitable pairs,
    ``0 ≤ y_gt ≤ 1`` (demand group g of type t newly covered),
    ``y_gt ≤ Σ_p a_gpt x_pt``, ``Σ_t need_pt x_pt ≤ floor_area_p``;
    maximise ``Σ_t weight_t Σ_g population_gt y_gt``.

    Parameters
    ----------
    coverage
        One :class:`CoverageSets` per type, every one with a row per premises
        (rows of unsuitable pairs empty).
    floor_area
        Floor area per premises, m².
    need
        ``(n_premises, n_types)`` floor area each type takes in each premises
        (its minimum, or the whole floor area for a type without one); NaN
        where the premises may not host the type.
    weights
        Weight per type (same order as ``coverage``).
    max_per_type
        At most this many premises per type (no limit when omitted).
    time_limit_s, mip_rel_gap
        HiGHS options.

    Attributes
    ----------
    assigned
        ``(n_premises, n_types)`` boolean plan. Assignments that add nobody
        (everyone they reach is reached by another premises of the plan) are
        dropped after the solve, last id first.
    newly
        Per type, the demand columns of its CoverageSets the plan covers.
    nearest
        Per type, the premises row serving each newly covered column (the
        nearest assigned premises; ties by row).
    objective, bound, mip_gap, status, seconds
        As for :class:`MaximalCovering`; objective in weighted residents.
    """

    def __init__(self, coverage: Sequence[CoverageSets], floor_area: np.ndarray,
                 need: np.ndarray, weights: Sequence[float], *,
                 max_per_type: int | None = None, time_limit_s: float = 60.0,
                 mip_rel_gap: float = 0.0) -> None:
        self.coverage = list(coverage)
        self.floor_area = np.asarray(floor_area, float)
        self.need = np.asarray(need, float).reshape(len(self.floor_area), len(self.coverage))
        self.weights = np.asarray(weights, float)
        self.max_per_type = max_per_type
        self.time_limit_s = time_limit_s
        self.mip_rel_gap = mip_rel_gap
        n_premises, n_types = self.need.shape
        self.assigned = np.zeros((n_premises, n_types), dtype=bool)
        self.newly: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_types
        self.nearest: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_types
        self.objective = 0.0
        self.bound = 0.0
        self.mip_gap = 0.0
        self.status = "empty"
        self.seconds = 0.0

    def pairs(self) -> np.ndarray:
        """``(n_pairs, 2)`` (premises row, type column) of the model's x variables."""
        fits = np.isfinite(self.need) & (self.need <= self.floor_area[:, None] + 1e-9)
        reach = np.column_stack([
            np.diff(sparse.csr_matrix(sets.distance).indptr) > 0 for sets in self.coverage
        ]) if self.coverage else np.zeros_like(fits)
        return np.argwhere(fits & reach & (self.weights[None, :] > 0))

    def solve(self) -> Reallocation:
        pairs = self.pairs()
        n_premises, n_types = self.need.shape
        if len(pairs) == 0:
            self.status = "Optimal"  # no premises can add anyone
            return self
        pair_index = np.full((n_premises, n_types), -1, dtype=np.int64)
        pair_index[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
        n_x = len(pairs)
        blocks, weights = [], []
        n_y = 0
        for column, sets in enumerate(self.coverage):
            groups, group_weight, _ = aggregate_demand(sets.matrix, sets.population)
            cover = sparse.csr_matrix(groups).T.tocoo()  # groups × premises
            x_col = pair_index[cover.col, column]
            ok = x_col >= 0
            blocks.append((cover.row[ok] + n_y, x_col[ok]))
            weights.append(group_weight * self.weights[column])
            n_y += groups.shape[1]
        cover_rows = np.concatenate([b[0] for b in blocks])
        cover_cols = np.concatenate([b[1] for b in blocks])
        group_weights = np.concatenate(weights) if weights else np.zeros(0)
        # y_g − Σ x ≤ 0 for every group; capacity rows for premises with several pairs
        per_premises = np.bincount(pairs[:, 0], minlength=n_premises)
        shared = np.flatnonzero(per_premises > 1)
        capacity_row = np.full(n_premises, -1, dtype=np.int64)
        capacity_row[shared] = n_y + np.arange(len(shared))
        in_shared = capacity_row[pairs[:, 0]] >= 0
        rows = np.concatenate([cover_rows, np.arange(n_y),
                               capacity_row[pairs[in_shared, 0]]])
        cols = np.concatenate([cover_cols, n_x + np.arange(n_y), np.flatnonzero(in_shared)])
        values = np.concatenate([-np.ones(len(cover_rows)), np.ones(n_y),
                                 self.need[pairs[in_shared, 0], pairs[in_shared, 1]]])
        upper = np.r_[np.zeros(n_y), self.floor_area[shared] + 1e-9]
        n_rows = n_y + len(shared)
        if self.max_per_type is not None:
            # Σ_p x_pt ≤ max_per_type, one row per type
            rows = np.concatenate([rows, n_rows + pairs[:, 1]])
            cols = np.concatenate([cols, np.arange(n_x)])
            values = np.concatenate([values, np.ones(n_x)])
            upper = np.r_[upper, np.full(n_types, float(self.max_per_type))]
            n_rows += n_types
        constraints = sparse.csc_matrix((values, (rows, cols)), shape=(n_rows, n_x + n_y))
        lower = np.full(n_rows, -np.inf)
        result = solve_mip(np.r_[np.zeros(n_x), group_weights], constraints, lower, upper,
                           np.ones(n_x + n_y), np.r_[np.ones(n_x, bool), np.zeros(n_y, bool)],
                           time_limit_s=self.time_limit_s, mip_rel_gap=self.mip_rel_gap)
        chosen = pairs[result.values[:n_x] > 0.5]
        self.assigned[chosen[:, 0], chosen[:, 1]] = True
        self._prune()
        self._attribute()
        self.objective = float(sum(
            self.weights[column] * sets.population[self.newly[column]].sum()
            for column, sets in enumerate(self.coverage)))
        self.bound = max(result.bound, self.objective)
        self.mip_gap = result.mip_gap
        self.status = result.status
        self.seconds = result.seconds
        return self

    def _prune(self) -> None:
        """Drop assignments whose residents all have another assigned premises."""
        for column, sets in enumerate(self.coverage):
            matrix = sets.matrix
            weight = sets.population
            while True:
                rows = np.flatnonzero(self.assigned[:, column])
                if len(rows) == 0:
                    break
                counts = np.asarray(matrix[rows].sum(axis=0)).ravel()
                unique = matrix[rows].multiply(counts == 1).multiply(weight)
                alone = np.asarray(unique.sum(axis=1)).ravel()
                useless = rows[alone <= 0]
                if len(useless) == 0:
                    break
                self.assigned[useless[-1], column] = False

    def _attribute(self) -> None:
        """Newly covered demand and the nearest assigned premises serving each."""
        for column, sets in enumerate(self.coverage):
            rows = np.flatnonzero(self.assigned[:, column])
            if len(rows) == 0:
                self.newly[column] = np.zeros(0, dtype=np.int64)
                self.nearest[column] = np.zeros(0, dtype=np.int64)
                continue
            block = sets.distance[rows].tocoo()
            order = np.lexsort((block.row, block.data, block.col))
            col, row = block.col[order], block.row[order]
            first = np.r_[True, col[1:] != col[:-1]]
            self.newly[column] = col[first]
            self.nearest[column] = rows[row[first]]


# --------------------------------------------------------------------------- the whole run


@dataclass
class SitesResult:
    """Everything :func:`rank_sites` computed, in the area's metric CRS.

    Attributes
    ----------
    sites
        Every candidate site: ``site_id``, ``kind`` (premises | candidate |
        generated), ``name``, ``floor_area_m2``, ``allowed_types``,
        ``suitable_types``, point geometry; in tie-break order.
    ranking
        The greedy ranking (``sites.csv``): ``type_id``, ``scene_id``, ``pool``,
        ``rank``, ``site_id``, ``kind``, ``name``, ``floor_area_m2``,
        ``added_population``, ``cumulative_population``, ``coverage_before``,
        ``cumulative_coverage``, ``communities`` (ids of the communities that
        gain, comma-separated, largest gain first), ``community_gains``
        ("HEL04 +942; HEL06 +734"), point geometry.
    candidates
        One row per (site, type) in the type's pool: standalone population,
        greedy rank, whether the exact solution opens it (``candidates`` layer).
    optimal
        Per type: greedy against the exact maximal-covering solution.
    premises
        The premises as loaded (all statuses), original geometry.
    plan
        The reallocation plan (``reallocation.csv``): one row per (premises, type).
    community_change
        Coverage per community and reallocated type before and after the plan.
    reallocation
        Objective, bound, gap, status and solve time of the plan.
    """

    sites: gpd.GeoDataFrame
    ranking: gpd.GeoDataFrame
    candidates: gpd.GeoDataFrame
    optimal: pd.DataFrame
    premises: gpd.GeoDataFrame | None
    plan: pd.DataFrame
    community_change: pd.DataFrame
    reallocation: dict
    parameters: dict
    timings_s: dict[str, float] = field(default_factory=dict)
    inputs: list[Path] = field(default_factory=list)


def type_weights(catalogue: Catalogue, type_ids: Sequence[str], weights=None,
                 weighting: str = "type") -> dict[str, float]:
    """Weight of each type in the reallocation objective.

    Parameters
    ----------
    catalogue
        Scenes and types.
    type_ids
        The types to weigh.
    weights
        A mapping or a CSV file (``type_id`` or ``scene_id`` or ``id``, and
        ``weight``); a scene's weight is shared equally among its catalogue
        types, a type's weight is its own.
    weighting
        ``"type"`` (each unlisted type weighs 1) or ``"scene"`` (each unlisted
        scene weighs 1, shared among its types).
    """
    if weighting not in ("type", "scene"):
        raise PlannerError(f"unknown weighting {weighting!r} (type or scene)")
    path = None
    if weights is not None and not isinstance(weights, Mapping):
        path = Path(weights)
        weights = _read_weights(path)
    weights = dict(weights or {})
    scene_ids, known_types = set(catalogue.scene_ids), set(catalogue.type_ids)
    for key, value in weights.items():
        if key not in scene_ids and key not in known_types:
            raise PlannerError(f"weights name an unknown type or scene {key!r}", path)
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            raise PlannerError(f"the weight of {key!r} must be a number ≥ 0, got {value!r}",
                               path)
    sizes = pd.Series([t.scene for t in catalogue.types]).value_counts()
    result = {}
    for type_id in type_ids:
        scene = catalogue.type(type_id).scene
        if type_id in weights:
            result[type_id] = float(weights[type_id])
        elif scene in weights:
            result[type_id] = float(weights[scene]) / int(sizes[scene])
        else:
            result[type_id] = 1.0 if weighting == "type" else 1.0 / int(sizes[scene])
    return result


def _read_weights(path: Path) -> dict[str, float]:
    if not path.exists():
        raise PlannerError("weights file not found", path)
    try:
        table = pd.read_csv(path, encoding="utf-8-sig")
    except Exception as error:
        raise PlannerError(f"cannot read the weights table ({type(error).__name__})",
                           path) from error
    lowered = {str(column).strip().lower(): column for column in table.columns}
    id_column = next((lowered[name] for name in ("type_id", "scene_id", "id")
                      if name in lowered), None)
    if id_column is None or "weight" not in lowered:
        raise PlannerError("the weights table needs an id column (type_id, scene_id or id) "
                           "and a weight column", path)
    values = pd.to_numeric(table[lowered["weight"]], errors="coerce")
    if values.isna().any():
        raise PlannerError("the weights table has a non-numeric weight", path)
    ids = table[id_column].astype(str).str.strip()
    if ids.duplicated().any():
        raise PlannerError(f"the weights table repeats {ids[ids.duplicated()].iloc[0]!r}", path)
    return dict(zip(ids, values.astype(float), strict=True))


def minimum_floor_areas(catalogue: Catalogue, overrides: Mapping[str, float] | None = None
                        ) -> dict[str, float | None]:
    """Minimum floor area per type: the catalogue's, replaced by the planner's overrides."""
    overrides = dict(overrides or {})
    for type_id, value in overrides.items():
        if type_id not in catalogue.type_ids:
            raise PlannerError(f"a minimum floor area names an unknown type {type_id!r}")
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            raise PlannerError(f"the minimum floor area of {type_id!r} must be ≥ 0, got {value!r}")
    return {t.id: float(overrides[t.id]) if t.id in overrides else t.min_floor_area_m2
            for t in catalogue.types}


def suitability(floor_area: np.ndarray, allowed: np.ndarray, type_ids: Sequence[str],
                minimum: Mapping[str, float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Which sites may host which types, and the floor area each pair takes.

    Returns
    -------
    (suitable, need)
        ``(n_sites, n_types)`` boolean and floor area taken (NaN where unsuitable
        or for sites without a floor area). See the module docstring for the rule.
    """
    floor_area = np.asarray(floor_area, float)
    allowed_sets = [set(filter(None, str(value).split(","))) for value in allowed]
    open_to_all = np.array([not names for names in allowed_sets], dtype=bool)
    has_area = np.isfinite(floor_area)
    suitable = np.zeros((len(floor_area), len(type_ids)), dtype=bool)
    need = np.full(suitable.shape, np.nan)
    for column, type_id in enumerate(type_ids):  # one vectorised pass per type
        named = np.array([type_id in names for names in allowed_sets], dtype=bool)
        permitted = open_to_all | named
        least = minimum.get(type_id)
        if least is None:
            fits = ~has_area | named
            takes = floor_area
        else:
            fits = ~has_area | (floor_area >= least)
            takes = np.full(len(floor_area), least)
        suitable[:, column] = permitted & fits
        need[:, column] = np.where(suitable[:, column] & has_area, takes, np.nan)
    return suitable, need


def rank_sites(
    analysis,
    premises=None,
    *,
    candidates=None,
    types: Sequence[str] | None = None,
    count: int = 5,
    new_sites: str = "auto",
    generate: str = "grid",
    spacing_m: float = 100.0,
    weights=None,
    weighting: str = "type",
    min_floor_area_m2: Mapping[str, float] | None = None,
    reallocate: bool = True,
    max_per_type: int | None = None,
    time_limit_s: float = 60.0,
    progress: Progress | None = None,
) -> SitesResult:
    """Rank candidate sites per facility type and plan the reallocation of premises.

    Parameters
    ----------
    analysis
        The :class:`planner.pipeline.Analysis` of the area (existing facilities fixed).
    premises
        Premises file or GeoDataFrame (see :func:`load_premises`), or an
        already loaded table.
    candidates
        The planner's candidate sites (see :func:`load_candidates`).
    types
        Facility types to rank and reallocate; by default every type premises
        can take (a minimum floor area, or named in an ``allowed_types``).
    count
        Sites to rank per type, and the size of the exact maximal-covering solution.
    new_sites
        ``"auto"``: generated sites join a type's pool only when no premises or
        candidate adds a resident; ``"always"``; ``"never"``.
    generate, spacing_m
        How new sites are generated (:func:`generate_candidates`).
    weights, weighting
        Reallocation weights (:func:`type_weights`).
    min_floor_area_m2
        Minimum floor area per type, replacing the catalogue's.
    reallocate
        Also solve the reallocation plan.
    max_per_type
        At most this many premises per type in the plan (no limit when omitted).
    time_limit_s
        HiGHS time limit per solve.
    progress
        Called with ``(stage, seconds)`` after each stage.
    """
    if new_sites not in ("auto", "always", "never"):
        raise PlannerError(f"unknown new-sites mode {new_sites!r} (auto, always or never)")
    if max_per_type is not None and max_per_type < 0:
        raise PlannerError(f"the premises per type must be ≥ 0, got {max_per_type}")
    if count < 1:
        raise PlannerError(f"the number of sites must be at least 1, got {count}")
    timings: dict[str, float] = {}

    def stage(name: str, began: float) -> None:
        timings[name] = round(time.perf_counter() - began, 4)
        if progress is not None:
            progress(name, timings[name])

    began = time.perf_counter()
    cat, network = analysis.catalogue, analysis.network
    inputs: list[Path] = []
    prem = None
    if premises is not None:
        if isinstance(premises, gpd.GeoDataFrame) and "available" in premises:
            prem = premises.to_crs(network.crs)
        else:
            prem = load_premises(premises, network, cat)
            if not isinstance(premises, gpd.GeoDataFrame):
                inputs.append(Path(premises))
    planned = None
    if candidates is not None:
        planned = load_candidates(candidates, network, cat)
        if not isinstance(candidates, gpd.GeoDataFrame):
            inputs.append(Path(candidates))
    minimum = minimum_floor_areas(cat, min_floor_area_m2)
    named_types = set()
    for table in (prem, planned):
        if table is not None:
            for value in table["allowed_types"]:
                named_types |= set(filter(None, str(value).split(",")))
    if types:
        unknown = [t for t in types if t not in cat.type_ids]
        if unknown:
            raise PlannerError(f"unknown facility type {', '.join(unknown)} "
                               "(see `planner catalogue`)")
        type_ids = [t for t in cat.type_ids if t in set(types)]
    else:
        type_ids = [t for t in cat.type_ids if minimum[t] is not None or t in named_types]
    generated = None
    if new_sites != "never":
        generated = generate_candidates(network, method=generate, spacing_m=spacing_m,
                                        features=analysis.area.features)
    sites = _site_table(prem, planned, generated, network)
    suitable, need = suitability(sites["floor_area_m2"].to_numpy(float),
                                 sites["allowed_types"].to_numpy(object), type_ids, minimum)
    sites["suitable_types"] = [",".join(np.asarray(type_ids, dtype=object)[row])
                               for row in suitable] if type_ids else ""
    stage("sites_load", began)

    began = time.perf_counter()
    residences = analysis.residences
    population = residences["population"].to_numpy(float)
    thresholds = {t: cat.type(t).threshold_m for t in type_ids}
    covered = {t: np.nan_to_num(residences[f"dist_{t}"].to_numpy(float), nan=np.inf)
               <= thresholds[t] for t in type_ids}
    residence_snap = network.snap(residences.geometry)
    sets = coverage_sets(network, sites.geometry, residences, thresholds, covered=covered,
                         suitable={t: suitable[:, c] for c, t in enumerate(type_ids)},
                         residence_snap=residence_snap)
    stage("coverage_sets", began)

    began = time.perf_counter()
    kind = sites["kind"].to_numpy(object)
    ranking_parts, candidate_parts, optimal_rows = [], [], []
    total_population = float(population.sum())
    for type_id in type_ids:  # one ranking per type
        pool_name, pool = _pool(sets[type_id], kind, new_sites)
        matrix = sets[type_id].matrix[pool]
        weights_t = sets[type_id].population
        greedy = GreedyRanking(matrix, weights_t, count=count).solve()
        exact = MaximalCovering(matrix, weights_t, count, time_limit_s=time_limit_s,
                                start=greedy.order).solve()
        before = float(population[covered[type_id]].sum())
        ranking_parts.append(_ranking_rows(type_id, pool_name, pool, greedy, sets[type_id],
                                           sites, residences, before, total_population, cat))
        candidate_parts.append(_candidate_rows(type_id, pool, matrix, weights_t, greedy,
                                               exact, sites))
        optimal_rows.append({
            "type_id": type_id, "scene_id": cat.type(type_id).scene, "pool": pool_name,
            "candidates": int((np.diff(matrix.indptr) > 0).sum()), "count": count,
            "greedy_sites": len(greedy.order),
            "greedy_population": round(greedy.objective, 1),
            "optimal_population": round(exact.objective, 1),
            "greedy_ratio": round(greedy.objective / exact.objective, 4)
            if exact.objective > 0 else 1.0,
            "mip_gap": round(exact.mip_gap, 6), "status": exact.status,
            "solve_s": round(exact.seconds, 3), "demand_rows": exact.n_groups,
            "optimal_sites": ";".join(sites["site_id"].to_numpy(object)[pool[exact.selected]]
                                      .astype(str)),
        })
    ranking = pd.concat(ranking_parts, ignore_index=True) if ranking_parts else \
        _empty_ranking()
    ranking = gpd.GeoDataFrame(ranking, geometry="geometry", crs=network.crs)
    candidate_table = pd.concat(candidate_parts, ignore_index=True) if candidate_parts \
        else pd.DataFrame(columns=["site_id", "kind", "type_id", "geometry"])
    candidate_table = gpd.GeoDataFrame(candidate_table, geometry="geometry", crs=network.crs)
    optimal = pd.DataFrame(optimal_rows, columns=[
        "type_id", "scene_id", "pool", "candidates", "count", "greedy_sites",
        "greedy_population", "optimal_population", "greedy_ratio", "mip_gap", "status",
        "solve_s", "demand_rows", "optimal_sites"])
    stage("ranking", began)

    began = time.perf_counter()
    weight_of = type_weights(cat, type_ids, weights, weighting)
    if weights is not None and not isinstance(weights, Mapping):
        inputs.append(Path(weights))
    plan, change, summary = _empty_plan(), _empty_change(), {"status": "not run"}
    if reallocate and prem is not None:
        plan, change, summary = _reallocate(analysis, prem, sites, sets, type_ids, need,
                                            minimum, weight_of, max_per_type, time_limit_s)
    stage("reallocation", began)
    parameters = {
        "types": type_ids, "count": count, "new_sites": new_sites, "generate": generate,
        "spacing_m": spacing_m, "weighting": weighting, "type_weights": weight_of,
        "min_floor_area_m2": {t: minimum[t] for t in type_ids},
        "available_statuses": list(AVAILABLE_STATUSES), "max_per_type": max_per_type,
        "time_limit_s": time_limit_s,
    }
    return SitesResult(sites=sites, ranking=ranking, candidates=candidate_table,
                       optimal=optimal, premises=prem, plan=plan, community_change=change,
                       reallocation=summary, parameters=parameters, timings_s=timings,
                       inputs=inputs)


def _site_table(prem, planned, generated, network: WalkNetwork) -> gpd.GeoDataFrame:
    parts = []
    if prem is not None:
        usable = prem[prem["available"]]
        parts.append(pd.DataFrame({
            "site_id": usable["premises_id"].astype(str).to_numpy(), "kind": "premises",
            "name": usable["name"].to_numpy(object),
            "floor_area_m2": usable["floor_area_m2"].to_numpy(float),
            "allowed_types": usable["allowed_types"].to_numpy(object),
            "geometry": usable.geometry.representative_point().to_numpy()}))
    for table, kind in ((planned, "candidate"), (generated, "generated")):
        if table is not None and len(table):
            parts.append(pd.DataFrame({
                "site_id": table["site_id"].astype(str).to_numpy(), "kind": kind,
                "name": table["name"].to_numpy(object),
                "floor_area_m2": table["floor_area_m2"].to_numpy(float),
                "allowed_types": table["allowed_types"].to_numpy(object),
                "geometry": table.geometry.representative_point().to_numpy()}))
    if not parts:
        raise PlannerError("no candidate sites: give premises or candidate sites, or allow "
                           "generated new sites")
    table = pd.concat(parts, ignore_index=True)
    table["name"] = table["name"].where(table["name"].notna(), table["site_id"])
    table["_kind"] = table["kind"].map({kind: order for order, kind in enumerate(KINDS)})
    table = table.sort_values(["_kind", "site_id"], kind="stable").drop(columns="_kind")
    return gpd.GeoDataFrame(table.reset_index(drop=True), geometry="geometry",
                            crs=network.crs)


def _pool(sets: CoverageSets, kind: np.ndarray, new_sites: str) -> tuple[str, np.ndarray]:
    """The site rows ranked for a type."""
    rows = np.arange(len(kind))
    existing = kind != "generated"
    if new_sites == "always":
        return "all sites", rows
    if new_sites == "never":
        return "premises and candidates", rows[existing]
    reach = np.diff(sets.distance.indptr) > 0
    if (reach & existing).any() or not (reach & ~existing).any():
        return "premises and candidates", rows[existing]
    return "new sites", rows[~existing]


def _gains_by_community(residences, demand: np.ndarray, population: np.ndarray
                        ) -> tuple[str, str]:
    """The communities that gain: ``("HEL04,HEL06", "HEL04 +942; HEL06 +734")``.

    The first lists community ids only (comma-separated, largest gain first;
    residents outside every community are left out), the second gives the
    residents each gains, with ``(outside)`` for those outside.
    """
    if len(demand) == 0:
        return "", ""
    community = residences["community_id"].to_numpy(object)[demand]
    community = np.where(pd.isna(community), OUTSIDE, community).astype(str)
    gains = pd.Series(population).groupby(community).sum()
    gains = gains[gains > 0]
    order = sorted(gains.index, key=lambda key: (key == OUTSIDE, -gains[key], key))
    return (",".join(key for key in order if key != OUTSIDE),
            "; ".join(f"{key} +{gains[key]:.0f}" for key in order))


def _ranking_rows(type_id, pool_name, pool, greedy: GreedyRanking, sets: CoverageSets,
                  sites, residences, before, total, cat) -> pd.DataFrame:
    matrix = greedy.matrix
    taken = np.zeros(matrix.shape[1], dtype=bool)
    communities, gains = [], []
    for pick in greedy.order:  # at most `count` picks
        newly = matrix.indices[matrix.indptr[pick]:matrix.indptr[pick + 1]]
        newly = newly[~taken[newly]]
        taken[newly] = True
        ids, text = _gains_by_community(residences, sets.demand[newly],
                                        sets.population[newly])
        communities.append(ids)
        gains.append(text)
    rows = pool[greedy.order]
    chosen = sites.iloc[rows]
    cumulative = np.cumsum(greedy.added)
    return pd.DataFrame({
        "type_id": type_id, "scene_id": cat.type(type_id).scene, "pool": pool_name,
        "rank": np.arange(1, len(rows) + 1),
        "site_id": chosen["site_id"].to_numpy(object), "kind": chosen["kind"].to_numpy(object),
        "name": chosen["name"].to_numpy(object),
        "floor_area_m2": chosen["floor_area_m2"].to_numpy(float),
        "added_population": np.round(greedy.added, 1),
        "cumulative_population": np.round(cumulative, 1),
        "coverage_before": round(before / total, 4) if total else np.nan,
        "cumulative_coverage": np.round((before + cumulative) / total, 4) if total
        else np.nan,
        "communities": communities,
        "community_gains": gains,
        "geometry": chosen.geometry.to_numpy(),
    })


def _candidate_rows(type_id, pool, matrix, weights, greedy, exact, sites) -> pd.DataFrame:
    reach = np.diff(matrix.indptr) > 0
    alone = matrix @ weights
    rank = np.zeros(len(pool), dtype=np.int64)
    rank[greedy.order] = np.arange(1, len(greedy.order) + 1)
    chosen = sites.iloc[pool[reach]]
    return pd.DataFrame({
        "site_id": chosen["site_id"].to_numpy(object), "kind": chosen["kind"].to_numpy(object),
        "name": chosen["name"].to_numpy(object), "type_id": type_id,
        "floor_area_m2": chosen["floor_area_m2"].to_numpy(float),
        "alone_population": np.round(alone[reach], 1),
        "greedy_rank": pd.array(np.where(rank[reach] > 0, rank[reach], None), dtype="Int64"),
        "optimal": np.isin(np.flatnonzero(reach), exact.selected),
        "geometry": chosen.geometry.to_numpy(),
    })


def _empty_ranking() -> pd.DataFrame:
    return pd.DataFrame({column: pd.Series(dtype=dtype) for column, dtype in (
        ("type_id", object), ("scene_id", object), ("pool", object), ("rank", int),
        ("site_id", object), ("kind", object), ("name", object), ("floor_area_m2", float),
        ("added_population", float), ("cumulative_population", float),
        ("coverage_before", float), ("cumulative_coverage", float), ("communities", object),
        ("community_gains", object),
        ("geometry", object))})


PLAN_COLUMNS = ["premises_id", "name", "status", "owner", "floor_area_m2", "type_id",
                "scene_id", "type_en", "type_zh", "min_floor_area_m2", "floor_area_used_m2",
                "weight", "added_population", "communities", "community_gains"]
CHANGE_COLUMNS = ["community_id", "name", "scene_id", "type_id", "population",
                  "covered_before", "covered_after", "coverage_before", "coverage_after",
                  "score_before", "score_after"]


def _empty_plan() -> pd.DataFrame:
    return pd.DataFrame(columns=PLAN_COLUMNS)


def _empty_change() -> pd.DataFrame:
    return pd.DataFrame(columns=CHANGE_COLUMNS)


def _reallocate(analysis, prem, sites, sets, type_ids, need, minimum, weight_of,
                max_per_type, time_limit_s):
    cat, residences = analysis.catalogue, analysis.residences
    rows = np.flatnonzero(sites["kind"].to_numpy(object) == "premises")
    coverage = [CoverageSets(t, sets[t].threshold_m, sets[t].distance[rows],
                             sets[t].demand, sets[t].population) for t in type_ids]
    model = Reallocation(coverage, sites["floor_area_m2"].to_numpy(float)[rows],
                         need[rows], [weight_of[t] for t in type_ids],
                         max_per_type=max_per_type, time_limit_s=time_limit_s).solve()
    premises = sites.iloc[rows].reset_index(drop=True)
    details = prem.set_index(prem["premises_id"].astype(str))
    distance_after = analysis.residence_distances().copy()
    all_types = pd.Index(cat.type_ids)
    plan_rows = []
    for column, type_id in enumerate(type_ids):
        sets_t = coverage[column]
        newly, nearest = model.newly[column], model.nearest[column]
        if len(newly):
            best = np.asarray(sets_t.distance[nearest, newly]).ravel()
            target = sets_t.demand[newly]
            index = all_types.get_loc(type_id)
            current = np.nan_to_num(distance_after[target, index], nan=np.inf)
            distance_after[target, index] = np.round(np.minimum(current, best), 1)
        facility_type = cat.type(type_id)
        for row in np.flatnonzero(model.assigned[:, column]):  # assignments: a handful
            served = newly[nearest == row]
            premises_id = premises["site_id"].iloc[row]
            plan_rows.append({
                "premises_id": premises_id, "name": premises["name"].iloc[row],
                "status": details["status"].get(premises_id),
                "owner": details["owner"].get(premises_id),
                "floor_area_m2": premises["floor_area_m2"].iloc[row],
                "type_id": type_id, "scene_id": facility_type.scene,
                "type_en": facility_type.en, "type_zh": facility_type.zh,
                "min_floor_area_m2": minimum[type_id],
                "floor_area_used_m2": round(float(need[rows[row], column]), 1),
                "weight": weight_of[type_id],
                "added_population": round(float(sets_t.population[served].sum()), 1),
                **dict(zip(("communities", "community_gains"), _gains_by_community(
                    residences, sets_t.demand[served], sets_t.population[served]),
                    strict=True)),
            })
    plan = pd.DataFrame(plan_rows, columns=PLAN_COLUMNS)
    plan = plan.sort_values(["added_population", "premises_id", "type_id"],
                            ascending=[False, True, True], kind="stable").reset_index(drop=True)
    plan.insert(0, "order", np.arange(1, len(plan) + 1))
    change = _community_change(analysis, distance_after, type_ids)
    summary = {"status": model.status, "objective": round(model.objective, 1),
               "bound": round(model.bound, 1), "mip_gap": round(model.mip_gap, 6),
               "solve_s": round(model.seconds, 3), "assignments": len(plan),
               "premises_used": int(model.assigned.any(axis=1).sum()),
               "premises_available": len(rows),
               "added_population": round(float(plan["added_population"].sum()), 1)}
    return plan, change, summary


def _community_change(analysis, distance_after: np.ndarray, type_ids) -> pd.DataFrame:
    """Coverage per community and type before and after, with the overall score."""
    cat, residences = analysis.catalogue, analysis.residences
    boundaries = analysis.communities[["community_id", "name", "community_source", "geometry"]]
    after, _ = community_coverage(residences, distance_after, cat, boundaries)
    before = analysis.communities
    if not type_ids:
        return _empty_change()
    communities = before["community_id"].to_numpy(object)
    index = pd.Index(communities).get_indexer(residences["community_id"].to_numpy(object))
    inside = index >= 0
    population = residences["population"].to_numpy(float)
    columns = pd.Index(cat.type_ids).get_indexer(type_ids)
    thresholds = np.array([cat.type(t).threshold_m for t in type_ids])
    before_hit = np.nan_to_num(analysis.residence_distances()[:, columns], nan=np.inf) \
        <= thresholds
    after_hit = np.nan_to_num(distance_after[:, columns], nan=np.inf) <= thresholds

    def covered(hit: np.ndarray) -> np.ndarray:  # (communities, types)
        return np.stack([np.bincount(index[inside], weights=(population * hit[:, c])[inside],
                                     minlength=len(communities))
                         for c in range(len(type_ids))], axis=1)

    total = np.bincount(index[inside], weights=population[inside], minlength=len(communities))
    pop_before, pop_after = covered(before_hit), covered(after_hit)
    with np.errstate(invalid="ignore", divide="ignore"):
        share_before = np.where(total[:, None] > 0, pop_before / total[:, None], np.nan)
        share_after = np.where(total[:, None] > 0, pop_after / total[:, None], np.nan)
    n_types = len(type_ids)
    change = pd.DataFrame({
        "community_id": np.repeat(communities, n_types),
        "name": np.repeat(before["name"].to_numpy(object), n_types),
        "scene_id": np.tile([cat.type(t).scene for t in type_ids], len(communities)),
        "type_id": np.tile(type_ids, len(communities)),
        "population": np.repeat(np.round(total, 1), n_types),
        "covered_before": np.round(pop_before.ravel(), 1),
        "covered_after": np.round(pop_after.ravel(), 1),
        "coverage_before": np.round(share_before.ravel(), 4),
        "coverage_after": np.round(share_after.ravel(), 4),
        "score_before": np.repeat(before["score"].to_numpy(float), n_types),
        "score_after": np.repeat(after["score"].to_numpy(float), n_types),
    })
    return change.sort_values(["community_id", "type_id"], kind="stable").reset_index(drop=True)


# --------------------------------------------------------------------------- outputs


def reallocation_layer(result: SitesResult, lang: str = "en") -> gpd.GeoDataFrame:
    """The premises for the map, in EPSG:4326, coloured by the type assigned.

    One row per premises (all statuses): ``premises_id``, ``name``, ``status``,
    ``floor_area_m2``, ``assigned_types`` (comma-separated; "" when none),
    ``type_label`` (the assigned types' names in ``lang``), ``added_population``,
    ``colour`` (of the type adding the most residents; grey when none),
    ``popup`` (plain text, one line each: name, id, floor area and status,
    then the residents each assigned type adds), ``popup_html`` (the same,
    HTML-escaped, lines joined by ``<br>``), geometry as given (points or
    polygons). :func:`reallocation_legend` lists the colours.
    """
    premises = result.premises
    if premises is None or len(premises) == 0:
        return gpd.GeoDataFrame(
            {column: [] for column in ("premises_id", "name", "status", "floor_area_m2",
                                       "assigned_types", "type_label", "added_population",
                                       "colour", "popup", "popup_html")},
            geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    plan = result.plan
    label_column = "type_zh" if lang == "zh" else "type_en"
    palette = {type_id: TYPE_PALETTE[index % len(TYPE_PALETTE)]
               for index, type_id in enumerate(dict.fromkeys(
                   sorted(plan["type_id"], key=result.parameters["types"].index)))}
    by_premises = plan.sort_values(["premises_id", "added_population", "type_id"],
                                   ascending=[True, False, True], kind="stable")
    grouped = by_premises.groupby("premises_id", sort=False)
    assigned = grouped["type_id"].agg(",".join)
    labels = grouped[label_column].agg(" + ".join)
    added = grouped["added_population"].sum()
    top_type = grouped["type_id"].first()
    lines = by_premises.assign(line=by_premises[label_column] + ": +"
                               + by_premises["added_population"].round(0).astype(int)
                               .astype(str) + (" 人" if lang == "zh" else " residents"))
    detail = lines.groupby("premises_id", sort=False)["line"].agg("\n".join)
    ids = premises["premises_id"].astype(str)
    area = premises["floor_area_m2"].round(0).astype(int).astype(str)
    names = premises["name"].fillna(ids)
    header = names + " (" + ids + ", " + area + " m², " + premises["status"].astype(str) + ")"
    popup = np.where(ids.isin(detail.index), header + "\n" + ids.map(detail).fillna(""),
                     header + ("\n未分配" if lang == "zh" else "\nnot assigned"))
    layer = gpd.GeoDataFrame({
        "premises_id": ids.to_numpy(object), "name": premises["name"].to_numpy(object),
        "status": premises["status"].to_numpy(object),
        "floor_area_m2": premises["floor_area_m2"].to_numpy(float),
        "assigned_types": ids.map(assigned).fillna("").to_numpy(object),
        "type_label": ids.map(labels).fillna("").to_numpy(object),
        "added_population": ids.map(added).fillna(0.0).to_numpy(float),
        "colour": ids.map(top_type).map(palette).fillna(UNASSIGNED_COLOUR).to_numpy(object),
        "popup": popup,
        "popup_html": [html.escape(text).replace("\n", "<br>") for text in popup],
    }, geometry=premises.geometry.to_numpy(), crs=premises.crs)
    return layer.to_crs(4326)


def reallocation_legend(source: SitesResult | gpd.GeoDataFrame,
                        lang: str = "en") -> list[tuple[str, str]]:
    """``(label, colour)`` per assigned type, as :func:`reallocation_layer` colours them.

    ``source`` is a :class:`SitesResult`, or the ``reallocation`` layer itself
    (as read back from ``coverage.gpkg``; its labels are in the language it was
    written in).
    """
    unassigned = ("未分配" if lang == "zh" else "not assigned", UNASSIGNED_COLOUR)
    if isinstance(source, gpd.GeoDataFrame):
        assigned = source[source["assigned_types"].fillna("") != ""]
        first = assigned["type_label"].str.split(" + ", regex=False).str[0]
        pairs = dict(zip(assigned["colour"], first, strict=True))
        ordered = sorted(pairs, key=lambda colour: TYPE_PALETTE.index(colour)
                         if colour in TYPE_PALETTE else len(TYPE_PALETTE))
        return [(pairs[colour], colour) for colour in ordered] + [unassigned]
    plan = source.plan
    layer_types = dict.fromkeys(sorted(plan["type_id"], key=source.parameters["types"].index))
    labels = dict(zip(plan["type_id"], plan["type_zh" if lang == "zh" else "type_en"],
                      strict=True))
    return [(labels[type_id], TYPE_PALETTE[index % len(TYPE_PALETTE)])
            for index, type_id in enumerate(layer_types)] + [unassigned]


def sites_layers(result: SitesResult) -> dict[str, gpd.GeoDataFrame]:
    """The GeoPackage layers ``candidates`` and ``reallocation``."""
    layer = reallocation_layer(result)
    plan = result.plan
    layer["scene_ids"] = layer["premises_id"].map(
        plan.groupby("premises_id")["scene_id"].agg(lambda ids: ",".join(dict.fromkeys(ids)))
    ).fillna("")
    layer["floor_area_used_m2"] = layer["premises_id"].map(
        plan.groupby("premises_id")["floor_area_used_m2"].sum()).fillna(0.0)
    return {"candidates": result.candidates, "reallocation": layer}


def write_sites_files(result: SitesResult, folder: str | Path) -> dict:
    """Write the site outputs into ``folder`` (no staging: see :func:`write_sites`).

    Writes ``sites.csv`` (the greedy ranking), ``sites_optimal.csv`` (greedy
    against the exact optimum per type), ``reallocation.csv`` (the plan),
    ``reallocation_communities.csv`` (coverage before and after per community
    and type) and adds the layers ``candidates`` and ``reallocation`` to
    ``folder/coverage.gpkg`` (created when missing).

    Returns
    -------
    dict
        The ``sites`` entry of the run record.
    """
    from planner.outputs import sha256, write_layers

    folder = Path(folder)
    ranking = pd.DataFrame(result.ranking.drop(columns="geometry"))
    ranking.to_csv(folder / "sites.csv", index=False, encoding="utf-8")
    result.optimal.to_csv(folder / "sites_optimal.csv", index=False, encoding="utf-8")
    result.plan.to_csv(folder / "reallocation.csv", index=False, encoding="utf-8")
    result.community_change.to_csv(folder / "reallocation_communities.csv", index=False,
                                   encoding="utf-8")
    # pyogrio replaces a layer of the same name and keeps the others
    write_layers(folder / "coverage.gpkg", sites_layers(result))
    return {
        "inputs": [{"path": str(path), "sha256": sha256(path)} for path in result.inputs
                   if Path(path).is_file()],
        "parameters": result.parameters,
        "counts": {"sites": len(result.sites),
                   "sites_by_kind": {kind: int(count) for kind, count in
                                     result.sites["kind"].value_counts().sort_index().items()},
                   "ranked": len(result.ranking), "plan_rows": len(result.plan)},
        "optimal": result.optimal.drop(columns=["optimal_sites"]).to_dict(orient="records"),
        "reallocation": result.reallocation,
        "timings_s": result.timings_s,
    }


def write_sites(result: SitesResult, out_dir: str | Path) -> Path:
    """Add the site outputs to a results folder, atomically.

    The folder's ``coverage.gpkg`` (when present) is copied into a staging
    folder, the layers are added to the copy, and every file then replaces its
    old version by a rename: a failure leaves the folder as it was. The
    ``sites`` entry of ``run.json`` is updated when the folder has one.
    """
    from planner.outputs import staged_directory

    out_dir = Path(out_dir)
    with staged_directory(out_dir) as stage:
        if (out_dir / "coverage.gpkg").exists():
            shutil.copy2(out_dir / "coverage.gpkg", stage / "coverage.gpkg")
        record = write_sites_files(result, stage)
        run_json = out_dir / "run.json"
        if run_json.exists():
            document = json.loads(run_json.read_text(encoding="utf-8"))
            document["sites"] = record
            (stage / "run.json").write_text(json.dumps(document, ensure_ascii=False, indent=2,
                                                       default=_json_default),
                                            encoding="utf-8")
    return out_dir


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def ranking_table(result: SitesResult, *, top: int = 3, lang: str = "en") -> str:
    """The first ``top`` sites of every type as a fixed-width text table."""
    ranking = result.ranking
    if len(ranking) == 0:
        return "(no candidate site adds a resident)" if lang == "en" else "（无候选点可新增覆盖）"
    shown = ranking[ranking["rank"] <= top]
    columns = {"type_id": "type", "rank": "rank", "site_id": "site", "kind": "kind",
               "added_population": "adds", "cumulative_coverage": "coverage",
               "community_gains": "communities"}
    if lang == "zh":
        columns = {"type_id": "类型", "rank": "名次", "site_id": "地点", "kind": "来源",
                   "added_population": "新增人口", "cumulative_coverage": "累计覆盖率",
                   "community_gains": "受益社区"}
    table = pd.DataFrame(shown[list(columns)]).rename(columns=columns)
    table[columns["cumulative_coverage"]] = (table[columns["cumulative_coverage"]] * 100
                                             ).round(1)
    table[columns["added_population"]] = table[columns["added_population"]].round(0)
    optimal = result.optimal.set_index("type_id")
    notes = [f"  {type_id}: greedy {row.greedy_population:.0f} / optimal "
             f"{row.optimal_population:.0f} (ratio {row.greedy_ratio:.3f}, gap "
             f"{row.mip_gap:.2%}, {row.status})" for type_id, row in optimal.iterrows()]
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 60, "display.unicode.east_asian_width",
                           True):
        return table.to_string(index=False) + "\n" + "\n".join(notes)


def _shorten(text, width: int = 40):
    if not isinstance(text, str) or len(text) <= width:
        return text
    return text[:width - 1] + "…"


def plan_table(result: SitesResult, *, top: int = 10, lang: str = "en") -> str:
    """The first ``top`` rows of the reallocation plan as a fixed-width text table."""
    plan = result.plan
    if len(plan) == 0:
        return "(no premises assigned)" if lang == "en" else "（无可分配的房产）"
    label = "type_zh" if lang == "zh" else "type_en"
    columns = {"order": "#", "premises_id": "premises", "name": "name",
               "floor_area_m2": "m²", label: "becomes", "added_population": "adds",
               "community_gains": "communities"}
    if lang == "zh":
        columns = {"order": "#", "premises_id": "房产", "name": "名称", "floor_area_m2": "面积㎡",
                   label: "改为", "added_population": "新增人口", "community_gains": "受益社区"}
    table = pd.DataFrame(plan.head(top)[list(columns)])
    for column in ("name", label, "community_gains"):
        table[column] = table[column].map(_shorten)
    table = table.rename(columns=columns)
    for column in (columns["floor_area_m2"], columns["added_population"]):
        table[column] = table[column].round(0).astype(int)
    summary = result.reallocation
    if lang == "zh":
        note = (f"{summary.get('premises_available', 0)} 处可用房产中 "
                f"{summary.get('premises_used', 0)} 处共 {summary.get('assignments', 0)} 项设施，"
                f"新增覆盖 {summary.get('added_population', 0):.0f} 人次（按类型累计；HiGHS "
                f"{summary.get('status')}，gap {summary.get('mip_gap', 0):.2%}）")
    else:
        note = (f"{summary.get('assignments', 0)} facilities in "
                f"{summary.get('premises_used', 0)} of {summary.get('premises_available', 0)} "
                f"available premises newly reach {summary.get('added_population', 0):.0f} "
                f"residents, summed over types (HiGHS: {summary.get('status')}, gap "
                f"{summary.get('mip_gap', 0):.2%})")
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.max_colwidth", 40, "display.unicode.east_asian_width",
                           True):
        return table.to_string(index=False, na_rep="-") + "\n" + note
