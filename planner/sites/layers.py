"""The site outputs: map layers and files of a results folder."""

from __future__ import annotations

import html
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner import settings
from planner.sites.labels import with_coordinates
from planner.sites.run import SitesResult
from planner.sites.tables import candidate_layer

#: colours of assigned types on the map (in the order the plan's types first appear).
TYPE_PALETTE = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e", "#e6ab02",
                "#a6761d", "#1f78b4", "#b2df8a", "#fb9a99", "#cab2d6", "#ff7f00")
UNASSIGNED_COLOUR = "#9e9e9e"
REALLOCATION_COLUMNS = ("premises_id", "name", "label", "status", "floor_area_m2", "assigned_types",
                        "type_label", "added_population", "colour", "popup", "popup_html")


def reallocation_layer(result: SitesResult, lang: str = "en") -> gpd.GeoDataFrame:
    """The premises for the map, in EPSG:4326, coloured by the type assigned.

    One row per premises (all statuses): ``premises_id``, ``name``, ``label``
    (the name, else nearest street · community), ``status``,
    ``floor_area_m2``, ``assigned_types`` (comma-separated; "" when none),
    ``type_label`` (the assigned types' names in ``lang``), ``added_population``,
    ``colour`` (of the type adding the most residents, from
    :data:`TYPE_PALETTE`; grey when none), ``popup`` (plain text, one line
    each: name, id, floor area and status, then the residents each assigned
    type adds), ``popup_html`` (the same, HTML-escaped, lines joined by
    ``<br>``), geometry as given (points or polygons).
    """
    premises = result.premises
    if premises is None or len(premises) == 0:
        return gpd.GeoDataFrame({column: [] for column in REALLOCATION_COLUMNS},
                                geometry=gpd.GeoSeries([], crs=4326), crs=4326)
    plan = result.plan
    label_column = "type_zh" if lang == "zh" else "type_en"
    by_premises = plan.sort_values(["premises_id", "added_population", "type_id"],
                                   ascending=[True, False, True], kind="stable")
    grouped = by_premises.groupby("premises_id", sort=False)
    ids = premises["premises_id"].astype(str)
    popup = _popups(premises, by_premises, label_column, lang)
    layer = gpd.GeoDataFrame({
        "premises_id": ids.to_numpy(object), "name": premises["name"].to_numpy(object),
        "label": _labels(premises).to_numpy(object),
        "status": premises["status"].to_numpy(object),
        "floor_area_m2": premises["floor_area_m2"].to_numpy(float),
        "assigned_types": ids.map(grouped["type_id"].agg(",".join)).fillna("")
        .to_numpy(object),
        "type_label": ids.map(grouped[label_column].agg(" + ".join)).fillna("")
        .to_numpy(object),
        "added_population": ids.map(grouped["added_population"].sum()).fillna(0.0)
        .to_numpy(float),
        "colour": ids.map(grouped["type_id"].first()).map(_palette(result))
        .fillna(UNASSIGNED_COLOUR).to_numpy(object),
        "popup": popup,
        "popup_html": [html.escape(text).replace("\n", "<br>") for text in popup],
    }, geometry=premises.geometry.to_numpy(), crs=premises.crs)
    return layer.to_crs(4326)


def _palette(result: SitesResult) -> dict[str, str]:
    """Colour per assigned type, in the order of the ranked types."""
    plan_types = dict.fromkeys(sorted(result.plan["type_id"],
                                      key=result.parameters["types"].index))
    return {type_id: TYPE_PALETTE[index % len(TYPE_PALETTE)]
            for index, type_id in enumerate(plan_types)}


def _popups(premises: gpd.GeoDataFrame, by_premises: pd.DataFrame, label_column: str,
            lang: str) -> np.ndarray:
    """One popup text per premises: header line, then one line per assigned type."""
    from planner.sites.text import status_label

    lines = by_premises.assign(line=by_premises[label_column] + ": +"
                               + by_premises["added_population"].round(0).astype(int)
                               .astype(str) + (" 人" if lang == "zh" else " residents"))
    detail = lines.groupby("premises_id", sort=False)["line"].agg("\n".join)
    ids = premises["premises_id"].astype(str)
    area = premises["floor_area_m2"].round(0).astype(int).astype(str)
    names = _labels(premises)
    status = pd.Series(status_label(premises, lang), index=premises.index)
    header = names + " (" + ids + ", " + area + " m², " + status + ")"
    return np.where(ids.isin(detail.index), header + "\n" + ids.map(detail).fillna(""),
                    header + ("\n未分配" if lang == "zh" else "\nnot assigned"))


def _labels(premises: gpd.GeoDataFrame) -> pd.Series:
    """What a planner finds each premises by: its label, else its name, else its id."""
    ids = premises["premises_id"].astype(str)
    names = premises["name"].where(premises["name"].notna(), ids)
    return premises["label"].where(premises["label"].notna(), names) \
        if "label" in premises else names


def sites_layers(result: SitesResult, lang: str | None = None,
                 basemap: str | None = None) -> dict[str, gpd.GeoDataFrame]:
    """The GeoPackage layers ``candidates`` and ``reallocation``.

    ``candidates`` is :attr:`SitesResult.candidates` (see
    :func:`~planner.sites.tables.candidate_layer`), its ``type_name`` and
    ``added_by_type`` in ``lang`` and with ``lon_gcj02``/``lat_gcj02`` for a
    GCJ-02 ``basemap``; ``reallocation`` is :func:`reallocation_layer` plus
    ``scene_ids`` and ``floor_area_used_m2``. Both in the area's metric CRS or
    EPSG:4326 (the GeoPackage stores them in EPSG:4326).
    """
    lang = lang or settings.lang
    layer = reallocation_layer(result, lang)
    plan = result.plan
    layer["scene_ids"] = layer["premises_id"].map(
        plan.groupby("premises_id")["scene_id"].agg(lambda ids: ",".join(dict.fromkeys(ids)))
    ).fillna("")
    layer["floor_area_used_m2"] = layer["premises_id"].map(
        plan.groupby("premises_id")["floor_area_used_m2"].sum()).fillna(0.0)
    return {"candidates": _candidates(result, lang, basemap), "reallocation": layer}


def _candidates(result: SitesResult, lang: str, basemap: str | None) -> gpd.GeoDataFrame:
    """The candidates layer in ``lang``, with the coordinates of ``basemap``."""
    layer = result.candidates
    if result.pool is not None and len(layer):
        # the layer's text was written in the language of the run; redo it in `lang`
        layer = candidate_layer(result.ranking, result.pool,
                                result.parameters.get("type_names", {}), lang)
    return with_coordinates(layer, basemap or result.parameters.get("basemap"))


def write_sites_files(result: SitesResult, folder: str | Path, *, lang: str | None = None,
                      basemap: str | None = None, layers: bool = True) -> dict:
    """Write the site outputs into ``folder``.

    Writes ``sites.csv`` (the greedy ranking), ``sites_optimal.csv`` (greedy
    against the exact optimum per type), ``reallocation.csv`` (the plan),
    ``reallocation_communities.csv`` (coverage before and after per community
    and type) and adds the layers ``candidates`` and ``reallocation`` to
    ``folder/coverage.gpkg`` (created when missing). Give it as
    ``extra_files`` to :func:`planner.export.write_analysis`, which stages
    the folder (pass ``layers=False`` when its ``extra_layers`` already carry
    :func:`sites_layers`, so that the map shows them). ``lang`` (default
    :data:`planner.settings.lang`) is the language of the layers' text; with a
    GCJ-02 ``basemap`` (``amap``) ``sites.csv`` and the candidates also get
    ``lon_gcj02``, ``lat_gcj02``.

    Returns
    -------
    dict
        The ``sites`` entry of the run record.
    """
    from planner.outputs import sha256, write_layers

    folder = Path(folder)
    basemap = basemap or result.parameters.get("basemap")
    ranking = pd.DataFrame(with_coordinates(result.ranking, basemap).drop(columns="geometry"))
    ranking.to_csv(folder / "sites.csv", index=False, encoding="utf-8")
    result.optimal.to_csv(folder / "sites_optimal.csv", index=False, encoding="utf-8")
    result.plan.to_csv(folder / "reallocation.csv", index=False, encoding="utf-8")
    result.community_change.to_csv(folder / "reallocation_communities.csv", index=False,
                                   encoding="utf-8")
    # pyogrio replaces a layer of the same name and keeps the others
    if layers:
        write_layers(folder / "coverage.gpkg", sites_layers(result, lang, basemap))
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
