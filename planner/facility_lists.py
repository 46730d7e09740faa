"""The planner's own facility lists: read, convert, classify, merge with OSM.

Chinese facility lists usually come from Amap (高德) or Baidu exports, in
GCJ-02 or BD-09 coordinates offset by hundreds of metres from WGS 84. A list is
a CSV/XLSX table with longitude and latitude columns, or a GeoJSON/GeoPackage
of points; its coordinates are converted to WGS 84 first (``crs_name``).

Each row gets a facility type, in this order:

1. a ``type_id`` column naming a catalogue type;
2. a provider type code (``typecode``, ``code`` …) matched by prefix against the
   catalogue's ``[[category_map]]`` rows with a ``code``;
3. a free-text category (``category``, ``类别`` …) matched against the rows with a ``text``;
4. the name, against the catalogue's name keywords (possibly several types).

Rows that match nothing are reported and left out. Rows sharing an id
(``id``, ``facility_id``, ``poi_id``, ``编号`` …) are one facility: they are
reported once and merged (the first row's name and position, the union of the
rows' types), never counted twice.

CSV and TXT lists may be UTF-8 (with or without BOM), GBK or GB18030 (Chinese
Excel's "CSV" is GBK): see :mod:`planner.encodings`.

Merging (:func:`merge_with_osm`): a list facility and an OSM facility of the
same type are one facility when they lie within ``merge_distance_m`` of each
other and their names are similar (one contains the other after removing
spaces and punctuation, or difflib's ratio ≥ 0.6), or the OSM one has no name.
The list's record wins: the planner's own data is the authority, and its
``match`` is ``list``.
"""

from __future__ import annotations

import logging
import re
from difflib import SequenceMatcher
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.catalogue import Catalogue
from planner.columns import find_column
from planner.coords import CRS_NAMES, transform_geometries
from planner.errors import PlannerError
from planner.sources import read_layer

log = logging.getLogger(__name__)

NAME_COLUMNS = ("name", "名称", "poi名称", "title", "名字")
CODE_COLUMNS = ("typecode", "type_code", "code", "类型编码", "分类编码", "poi_code")
ID_COLUMNS = ("facility_id", "id", "poi_id", "poiid", "uid", "编号", "设施编号", "poi编号")
CATEGORY_COLUMNS = ("category", "type", "类别", "分类", "类型", "小类", "中类", "大类", "tag")

#: List and OSM facilities of the same type closer than this may be one facility, metres.
merge_distance_m: float = 50.0
#: Names at least this similar (difflib ratio) are the same name.
name_similarity: float = 0.6


def read_facility_list(path: str | Path, catalogue: Catalogue, *, crs_name: str = "wgs84",
                       list_index: int = 1, encoding: str | None = None) -> gpd.GeoDataFrame:
    """Read one facility list and give every row its facility type(s).

    Parameters
    ----------
    path
        CSV, XLSX, GeoJSON or GeoPackage.
    catalogue
        Supplies the category map and the name keywords.
    crs_name
        The datum of the coordinates: ``wgs84``, ``gcj02`` or ``bd09``.
    list_index
        Number of the list in the run, for facility ids (``L1-0``, ``L1-1`` …).
    encoding
        Text encoding of a CSV/TXT list; detected (UTF-8, else GB18030) when None.

    Returns
    -------
    geopandas.GeoDataFrame
        In EPSG:4326: ``facility_id``, ``type_id``, ``scene_id``, ``name``,
        ``match`` (= list), ``list_rule`` (type_id | code | category | name),
        ``source``, geometry; one row per (list row, type).
    """
    path = Path(path)
    crs_key = crs_name.lower().replace("-", "").replace("_", "")
    if crs_key not in CRS_NAMES:
        message = f"unknown coordinate system {crs_name!r} (one of {', '.join(CRS_NAMES)})"
        raise PlannerError(message, path)
    layer = _read_list_layer(path, encoding).to_crs(4326)
    layer = layer[layer.geometry.geom_type.isin(["Point", "MultiPoint", "Polygon",
                                                  "MultiPolygon"])].reset_index(drop=True)
    if crs_key != "wgs84":
        layer = layer.set_geometry(transform_geometries(layer.geometry, crs_key, "wgs84"))
    name_column = find_column(layer, NAME_COLUMNS)
    names = (layer[name_column].astype("string").fillna("") if name_column
             else pd.Series("", index=layer.index, dtype="string"))
    type_of = pd.Series([None] * len(layer), index=layer.index, dtype="object")
    rule = pd.Series([None] * len(layer), index=layer.index, dtype="object")
    known = set(catalogue.type_ids)

    if "type_id" in layer.columns:
        given = layer["type_id"].astype("string").str.strip()
        bad = given.notna() & ~given.isin(known)
        if bad.any():
            message = (f"unknown type_id {given[bad].iloc[0]!r} in row "
                       f"{int(np.flatnonzero(bad)[0]) + 1}")
            raise PlannerError(message, path)
        type_of = type_of.fillna(given.where(given.notna(), None))
        rule = rule.where(type_of.isna(), "type_id")

    code_column = find_column(layer, CODE_COLUMNS)
    if code_column:
        codes = layer[code_column].astype("string").str.split(r"[|;,]").str[0].str.strip()
        for row in (row for row in catalogue.category_map if "code" in row):
            hit = type_of.isna() & codes.str.startswith(str(row["code"])).fillna(False)
            type_of[hit], rule[hit] = row["type"], "code"

    category_column = find_column(layer, CATEGORY_COLUMNS)
    if category_column:
        categories = layer[category_column].astype("string")
        for row in (row for row in catalogue.category_map if "text" in row):
            hit = type_of.isna() & categories.str.contains(row["text"], regex=True)\
                .fillna(False)
            type_of[hit], rule[hit] = row["type"], "category"

    rows = [pd.DataFrame({"row": np.flatnonzero(type_of.notna()),
                          "type_id": type_of[type_of.notna()].to_numpy(),
                          "list_rule": rule[type_of.notna()].to_numpy()})]
    unmatched = type_of.isna().to_numpy()
    for facility_type in catalogue.types:
        if not facility_type.names:
            continue
        hit = unmatched & names.str.contains("|".join(facility_type.names), regex=True)\
            .fillna(False).to_numpy(dtype=bool)
        if facility_type.exclude_names:
            hit &= ~names.str.contains("|".join(facility_type.exclude_names), regex=True)\
                .fillna(False).to_numpy(dtype=bool)
        rows.append(pd.DataFrame({"row": np.flatnonzero(hit), "type_id": facility_type.id,
                                  "list_rule": "name"}))
    matched = pd.concat(rows, ignore_index=True).sort_values(["row", "type_id"],
                                                             kind="stable")
    left_out = np.setdiff1d(np.arange(len(layer)), matched["row"].to_numpy())
    if len(left_out):
        log.warning("%s: %d rows match no facility type (rows %s%s)", path, len(left_out),
                    ", ".join(str(row + 1) for row in left_out[:10]),
                    " …" if len(left_out) > 10 else "")
    matched = _merge_duplicate_ids(layer, matched, path)
    scene_of = {t.id: t.scene for t in catalogue.types}
    chosen = layer.iloc[matched["row"].to_numpy()]
    return gpd.GeoDataFrame({
        "facility_id": [f"L{list_index}-{row}" for row in matched["row"]],
        "type_id": matched["type_id"].to_numpy(),
        "scene_id": matched["type_id"].map(scene_of).to_numpy(),
        "name": names.iloc[matched["row"].to_numpy()].to_numpy(dtype=object),
        "match": "list",
        "list_rule": matched["list_rule"].to_numpy(),
        "source": path.name,
    }, geometry=chosen.geometry.representative_point().to_numpy(), crs=4326)


def _read_list_layer(path: Path, encoding: str | None) -> gpd.GeoDataFrame:
    """``read_layer``: CSV/TXT text in UTF-8, GBK or GB18030 (see :mod:`planner.encodings`)."""
    return read_layer(path, what="facility list", encoding=encoding)


def _merge_duplicate_ids(layer: gpd.GeoDataFrame, matched: pd.DataFrame,
                         path: Path) -> pd.DataFrame:
    """Rows sharing an id become the first of them (one facility, the union of types)."""
    id_column = find_column(layer, ID_COLUMNS)
    if id_column is None:
        return matched
    ids = layer[id_column].astype("string").str.strip().replace("", pd.NA)
    repeated = ids.notna() & ids.duplicated(keep=False)
    if not repeated.any():
        return matched
    names = sorted(ids[repeated].unique(), key=str)
    shown = ", ".join(map(str, names[:10])) + (" …" if len(names) > 10 else "")
    if settings.lang == "zh":
        log.warning("%s: %d 个编号在多行出现 (%s), 已合并为一个设施, 不重复计数",
                    path, len(names), shown)
    else:
        log.warning("%s: %d ids appear on several rows (%s); each is merged into one "
                    "facility, not counted twice", path, len(names), shown)
    # every row of an id points at the id's first row
    rows = np.arange(len(layer))
    key = ids.to_numpy(dtype=object, na_value=None)
    key = np.where(pd.isna(key), np.char.add("\0row", rows.astype(str)).astype(object), key)
    first_row = pd.Series(rows).groupby(key, sort=False).transform("min").to_numpy()
    matched = matched.assign(row=first_row[matched["row"].to_numpy()])
    return matched.drop_duplicates(["row", "type_id"]).sort_values(["row", "type_id"],
                                                                   kind="stable")


def normalise_name(name) -> str:
    """Lower case without spaces, punctuation and bracketed branch notes."""
    if not isinstance(name, str):
        return ""
    name = re.sub(r"[（(][^)）]*[)）]", "", name)
    return re.sub(r"[\s\W_]+", "", name.lower())


def similar_names(a, b) -> bool:
    """Whether two facility names denote the same place (see module docstring)."""
    a, b = normalise_name(a), normalise_name(b)
    if not a or not b:
        return False
    return a in b or b in a or SequenceMatcher(None, a, b).ratio() >= name_similarity


def merge_with_osm(osm: gpd.GeoDataFrame, lists: gpd.GeoDataFrame,
                   distance_m: float | None = None) -> gpd.GeoDataFrame:
    """Merge list facilities into OSM facilities (both in the same metric CRS).

    Returns the union with OSM rows that duplicate a list row removed; list
    rows record the OSM facility they absorbed in ``merged_osm_id``.
    """
    distance_m = merge_distance_m if distance_m is None else distance_m
    lists = lists.assign(merged_osm_id=None)
    if len(osm) == 0 or len(lists) == 0:
        return gpd.GeoDataFrame(pd.concat([osm, lists], ignore_index=True),
                                geometry="geometry", crs=osm.crs if len(osm) else lists.crs)
    tree = shapely.STRtree(osm.geometry.to_numpy())
    list_index, osm_index = tree.query(lists.geometry.to_numpy(), predicate="dwithin",
                                       distance=distance_m)
    same_type = (lists["type_id"].to_numpy()[list_index]
                 == osm["type_id"].to_numpy()[osm_index])
    list_index, osm_index = list_index[same_type], osm_index[same_type]
    osm_names = osm["name"].to_numpy(dtype=object)
    list_names = lists["name"].to_numpy(dtype=object)
    # one comparison per candidate pair within the merge distance: few by construction
    same = np.array([not isinstance(osm_names[j], str) or not osm_names[j]
                     or similar_names(list_names[i], osm_names[j])
                     for i, j in zip(list_index, osm_index, strict=True)], dtype=bool)
    list_index, osm_index = list_index[same], osm_index[same]
    if len(list_index):
        gaps = shapely.distance(lists.geometry.to_numpy()[list_index],
                                osm.geometry.to_numpy()[osm_index])
        # each OSM facility merges into its nearest list facility only
        order = np.lexsort((gaps, osm_index))
        first = np.unique(osm_index[order], return_index=True)[1]
        list_index, osm_index = list_index[order][first], osm_index[order][first]
        absorbed = pd.Series(osm["facility_id"].to_numpy()[osm_index], index=list_index)
        absorbed = absorbed.groupby(level=0).agg(lambda ids: ",".join(sorted(ids)))
        lists.loc[lists.index[absorbed.index], "merged_osm_id"] = absorbed.to_numpy()
    kept = osm.drop(index=osm.index[np.unique(osm_index)])
    merged = pd.concat([kept, lists], ignore_index=True)
    return gpd.GeoDataFrame(merged, geometry="geometry", crs=osm.crs)


def name_conflicts(facilities: pd.DataFrame) -> pd.DataFrame:
    """Facilities whose *name* matched several types, for the planner to check."""
    by_name = facilities[facilities["match"] == "name"]
    if "list_rule" in facilities.columns:
        by_name = pd.concat([by_name, facilities[facilities["list_rule"] == "name"]])
    # most facilities matched one type: settle them at once, group the few others
    pairs = by_name[["facility_id", "type_id"]].drop_duplicates()
    several = pairs["facility_id"].duplicated(keep=False).to_numpy(dtype=bool)
    by_name = by_name[by_name["facility_id"].isin(pairs["facility_id"][several])]
    grouped = by_name.groupby("facility_id", sort=True).agg(
        name=("name", "first"), type_ids=("type_id", lambda ids: ",".join(sorted(set(ids)))),
        n_types=("type_id", "nunique"))
    return grouped[grouped["n_types"] > 1].reset_index()
