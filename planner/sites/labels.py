"""Readable labels, communities and coordinates of candidate sites.

A planner finds a site by a name: the premises' own name when it has one,
else the nearest named street and the community it lies in
("学院路 · 网格 002_003"); only when nothing around is named does the label
fall back to the site id ("node123 · 网格 002_003").
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.basemaps import BASEMAPS
from planner.coords import transform
from planner.network import WalkNetwork

#: between the parts of a label.
SEPARATOR = " · "
#: decimals of the written longitudes and latitudes (about 0.1 m).
COORDINATE_DECIMALS = 6


def nearest_street(points: gpd.GeoSeries, network: WalkNetwork,
                   features: gpd.GeoDataFrame | None = None,
                   max_distance_m: float | None = None) -> np.ndarray:
    """The name of the nearest named street of every point (None when none is near).

    Parameters
    ----------
    points
        Points in the network's CRS.
    network
        Its edge names (``WalkNetwork.edge_name``) are the streets.
    features
        The area's OSM features: their named ``highway`` ways stand in when
        the network keeps no names.
    max_distance_m
        Streets further away are not used;
        :data:`planner.settings.site_label_street_max_m` when omitted.
    """
    limit = settings.site_label_street_max_m if max_distance_m is None else max_distance_m
    lines, names = _named_streets(network, features)
    result = np.full(len(points), None, dtype=object)
    if len(lines) == 0 or len(points) == 0:
        return result
    tree = shapely.STRtree(lines)
    found_point, found_line = tree.query_nearest(np.asarray(points.to_numpy(), dtype=object),
                                                 max_distance=limit, all_matches=False)
    result[found_point] = names[found_line]
    return result


def _named_streets(network: WalkNetwork, features: gpd.GeoDataFrame | None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Geometries and names of the named streets, in the network's CRS."""
    if network.edge_name is not None:
        names = _clean(pd.Series(network.edge_name, dtype=object))
        named = names.notna().to_numpy()
        if named.any():
            return network.edge_geometry[named], names[named].to_numpy(object)
    if features is not None and {"name", "highway"} <= set(features.columns):
        ways = features[features["highway"].notna()].to_crs(network.crs)
        names = _clean(ways["name"].astype(object))
        named = names.notna().to_numpy()
        return ways.geometry.to_numpy()[named], names[named].to_numpy(object)
    return np.zeros(0, dtype=object), np.zeros(0, dtype=object)


def _clean(names: pd.Series) -> pd.Series:
    """Names stripped; empty ones missing."""
    text = names.astype("string").str.strip()
    keep = (text.notna() & (text != "")).fillna(False).astype(bool)
    return text.astype(object).where(keep, None)


def community_of(points: gpd.GeoSeries, communities: gpd.GeoDataFrame | None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The id and name of the community each point lies in (the first one listed)."""
    ids = np.full(len(points), None, dtype=object)
    names = np.full(len(points), None, dtype=object)
    if communities is None or len(communities) == 0 or len(points) == 0:
        return ids, names
    areas = communities.to_crs(points.crs)
    point, area = areas.sindex.query(points.to_numpy(), predicate="intersects")
    order = np.lexsort((area, point))
    point, area = point[order], area[order]
    first = np.r_[True, point[1:] != point[:-1]] if len(point) else np.zeros(0, bool)
    ids[point[first]] = areas["community_id"].to_numpy(object)[area[first]]
    if "name" in areas:
        names[point[first]] = areas["name"].to_numpy(object)[area[first]]
    return ids, names


def site_labels(sites: gpd.GeoDataFrame, network: WalkNetwork,
                communities: gpd.GeoDataFrame | None = None,
                features: gpd.GeoDataFrame | None = None) -> pd.DataFrame:
    """``label``, ``community_id`` and ``community_name`` of every site.

    Parameters
    ----------
    sites
        ``site_id``, ``name``, ``named`` (whether the input gave the name),
        point geometry in the network's CRS.
    network, features
        For the street names (:func:`nearest_street`).
    communities
        ``community_id``, ``name``, geometry.
    """
    points = sites.geometry
    community_id, community_name = community_of(points, communities)
    street = nearest_street(points, network, features)
    place = pd.Series(np.where(pd.isna(street), sites["site_id"].astype(str), street),
                      dtype=object)
    where = pd.Series(community_name, dtype=object).where(pd.notna(community_name),
                                                          community_id)
    placed = np.where(where.notna(), place + SEPARATOR + where.astype(str), place)
    named = sites["named"].to_numpy(bool) if "named" in sites else np.zeros(len(sites), bool)
    return pd.DataFrame({
        "label": np.where(named, sites["name"].astype(str).to_numpy(object), placed),
        "community_id": community_id, "community_name": community_name,
    }, index=sites.index)


def coordinates(geometry: gpd.GeoSeries, basemap: str | None = None) -> pd.DataFrame:
    """``lon``, ``lat`` (WGS 84) of points, with ``lon_gcj02``, ``lat_gcj02`` for a GCJ-02 basemap.

    The basemap's datum (:data:`planner.basemaps.BASEMAPS`) decides: Amap
    tiles are in GCJ-02, OpenStreetMap and Tianditu (CGCS2000, within
    centimetres of WGS 84) take ``lon``/``lat`` as they are.
    """
    lonlat = geometry.to_crs(4326)
    lon, lat = lonlat.x.to_numpy(float), lonlat.y.to_numpy(float)
    table = pd.DataFrame({"lon": np.round(lon, COORDINATE_DECIMALS),
                          "lat": np.round(lat, COORDINATE_DECIMALS)}, index=geometry.index)
    if uses_gcj02(basemap):
        gcj_lon, gcj_lat = transform(lon, lat, "wgs84", "gcj02")
        table["lon_gcj02"] = np.round(gcj_lon, COORDINATE_DECIMALS)
        table["lat_gcj02"] = np.round(gcj_lat, COORDINATE_DECIMALS)
    return table


def uses_gcj02(basemap: str | None) -> bool:
    """Whether the basemap's tiles are in GCJ-02."""
    return BASEMAPS.get(basemap or "osm", {}).get("datum") == "gcj02"


def with_coordinates(frame: gpd.GeoDataFrame, basemap: str | None) -> gpd.GeoDataFrame:
    """``frame`` with the coordinate columns of :func:`coordinates` (replaced if present)."""
    table = coordinates(frame.geometry, basemap)
    frame = frame.drop(columns=[c for c in ("lon", "lat", "lon_gcj02", "lat_gcj02")
                                if c in frame.columns])
    position = list(frame.columns).index(frame.geometry.name)
    for offset, column in enumerate(table.columns):
        frame.insert(position + offset, column, table[column].to_numpy())
    return frame
