"""Interactive map of provision and gaps: one self-contained ``map.html``.

The map is drawn from the GeoPackage layers alone (``communities``,
``facilities``, ``residences``, ``isochrones``, ``gaps``; see DESIGN.md), so
``planner map RESULTS_DIR`` re-renders it without recomputing anything:

* **communities**, coloured by overall score, with a popup table of every scene
  and facility type (threshold, coverage; types no resident reaches in red);
* **facilities**, one toggleable, clustered layer per scene, with a colour and
  an icon per scene and a popup (name, type, scene, how it was matched);
* **service area** of the facility type chosen in a drop-down: the streets
  within its walking threshold, buffered (:mod:`planner.isochrones`);
* **residences beyond reach** of the chosen type;
* **missing facility types** per hexagon (:func:`gap_cells`);
* legend, layer control, scale bar, bounds fitted to the area, labels in
  Chinese or English.

Everything the page needs is inlined: Leaflet 1.9.4 and Leaflet.markercluster
1.5.3 (vendored in ``planner/static`` with their licences) and the data, as
compact JSON blocks that ``planner/static/planner_map.js`` turns into layers.
Only the basemap tiles come from the network; without it the overlays still
render. Python does no per-feature work: every layer is built from whole
columns (numpy, shapely 2), and one JSON block per layer.

Basemaps: OpenStreetMap (default), Amap (高德, GCJ-02: every overlay is shifted
from WGS 84 with :func:`planner.coords.transform_geometries`) and Tianditu
(天地图, CGCS2000 ≈ WGS 84; needs a key).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
from collections.abc import Mapping
from importlib import resources
from pathlib import Path

import folium
import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from branca.element import Element, MacroElement
from folium.map import Layer
from folium.template import Template

from planner.catalogue import Catalogue, load_catalogue
from planner.coords import transform, transform_geometries
from planner.errors import PlannerError

log = logging.getLogger(__name__)

#: Side-to-side width of the hexagons of the ``gaps`` layer, metres (the
#: distance between neighbouring cell centres).
gap_cell_m: float = 150.0

#: Above this many residences the map leaves out the layer of residences beyond
#: reach (the gap hexagons still show where they are): a city's 300,000 homes
#: would make the page tens of megabytes.
max_map_residences: int = 30_000

#: Simplification tolerance of polygons drawn on the map, metres.
display_tolerance_m: float = 3.0

#: Decimal places of longitude/latitude in the map (6 ≈ 0.1 m, 5 ≈ 1 m).
point_digits: int = 6
polygon_digits: int = 5

SCENE_COLOURS = {
    "neighbourhood": "#e6550d", "public_service": "#3182bd", "health": "#de2d26",
    "culture": "#756bb1", "learning": "#31a354", "innovation": "#d4a20b",
    "safety": "#636363", "urban_safety": "#a50f15",
}
#: Colours for scenes of a user's catalogue that the table above does not name.
EXTRA_COLOURS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#17becf")

#: 16×16 SVG paths (filled white on the scene colour, even-odd rule).
SCENE_ICONS = {
    "neighbourhood": "M1 6h14v2h-1l-1.2 6H3.2L2 8H1zM4.5 6 7.2 2.2l1.2.8L6.3 6zM11.5 6 8.8 2.2"
                     "l-1.2.8L9.7 6z",
    "public_service": "M8 1 1 4.5V6h14V4.5zM2.5 7h2v5h-2zM7 7h2v5H7zM11.5 7h2v5h-2zM1 13h14v2H1z",
    "health": "M6 2h4v4h4v4h-4v4H6v-4H2V6h4z",
    "culture": "M8 1l2.1 4.5 4.9.6-3.6 3.4.9 4.9L8 12l-4.3 2.4.9-4.9L1 6.1l4.9-.6z",
    "learning": "M1 3h5c1 0 2 .6 2 1.6V14c0-.8-1-1.3-2-1.3H1zM15 3h-5c-1 0-2 .6-2 1.6V14c0-.8 "
                "1-1.3 2-1.3h5z",
    "innovation": "M9.5 1 3 9h4.5L6.5 15 13 7H8.5z",
    "safety": "M8 1l6 2.2V8c0 3.5-2.6 6-6 7-3.4-1-6-3.5-6-7V3.2z",
    "urban_safety": "M8 1.5 15 14H1zM7.2 6h1.6v4.2H7.2zM7.2 11h1.6v1.6H7.2z",
}
DEFAULT_ICON = "M8 3a5 5 0 1 0 0 10A5 5 0 1 0 8 3z"

#: Red (0) → yellow → green (1), for community scores.
SCORE_STOPS = ("#d73027", "#fee08b", "#1a9850")
NO_SCORE = "#bdbdbd"

#: Classes of ``n_missing_types`` (lower bounds) and their colours (YlOrRd).
CELL_CLASSES = ((0, "#ffffb2"), (1, "#fed976"), (3, "#feb24c"), (6, "#fd8d3c"),
                (11, "#f03b20"), (21, "#bd0026"))

STRINGS = {
    "en": {
        "title": "15-minute life circle: facility coverage",
        "communities": "Communities: overall score", "scene": "Scene",
        "serviceAreas": "Walking service area (chosen type)",
        "gapLayer": "Residences beyond reach (chosen type)",
        "premises": "Premises reallocation plan",
        "cells": "Missing facility types ({m} m hexagons)",
        "population": "Population", "score": "Overall score", "type": "Facility type",
        "threshold": "Threshold", "coverage": "Coverage", "missing": "missing",
        "matched": "Matched by", "unnamed": "(no name)", "residence": "Residence",
        "beyondLimit": "none within {m} m", "nearestAt": "nearest at {m} m",
        "chosenType": "Facility type shown", "uncovered": "{n} residents beyond reach",
        "cell": "Hexagon", "residences": "Residences",
        "meanMissing": "Types beyond reach per resident (mean)",
        "missingTypes": "Types no resident reaches", "communityScore": "Community overall score",
        "serviceArea": "Service area", "gapResidences": "Residence beyond reach of that type",
        "cellsTitle": "Types no resident of a hexagon reaches",
        "note": "Walking metres on the street network; a service area is the streets within "
                "the threshold, {w} m either side.",
        "match": {"tag": "OSM tag", "name": "name keyword", "list": "facility list"},
    },
    "zh": {
        "title": "十五分钟社区生活圈设施覆盖",
        "communities": "社区综合得分", "scene": "场景",
        "serviceAreas": "步行服务范围（所选设施类型）",
        "gapLayer": "服务范围外的住宅（所选设施类型）",
        "premises": "国有房产再利用方案",
        "cells": "缺失设施类型数（{m} 米六边形）",
        "population": "人口", "score": "综合得分", "type": "设施类型", "threshold": "服务半径",
        "coverage": "覆盖率", "missing": "缺失", "matched": "匹配方式", "unnamed": "（无名称）",
        "residence": "住宅", "beyondLimit": "{m} 米内没有", "nearestAt": "最近 {m} 米",
        "chosenType": "显示的设施类型", "uncovered": "{n} 人不可达", "cell": "六边形",
        "residences": "住宅数", "meanMissing": "人均不可达类型数",
        "missingTypes": "无人可达的类型", "communityScore": "社区综合得分",
        "serviceArea": "服务范围", "gapResidences": "该类型服务范围外的住宅",
        "cellsTitle": "六边形内无人可达的设施类型数",
        "note": "距离为沿街道网络的步行距离（米）；服务范围为阈值内的街道两侧各 {w} 米。",
        "match": {"tag": "OSM 标签", "name": "名称关键词", "list": "设施清单"},
    },
}

#: Basemaps: tile URL template, attribution, datum of the tiles, zoom limit.
BASEMAPS = {
    "osm": {
        "name": {"en": "OpenStreetMap", "zh": "OpenStreetMap"},
        "tiles": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
        "attr": '&copy; <a href="https://www.openstreetmap.org/copyright">OpenStreetMap</a> '
                "contributors",
        "datum": "wgs84", "max_zoom": 19,
    },
    "amap": {
        "name": {"en": "Amap (高德)", "zh": "高德地图"},
        "tiles": "https://webrd0{s}.is.autonavi.com/appmaptile?lang={amap_lang}&size=1&scale=1"
                 "&style=7&x={x}&y={y}&z={z}",
        "subdomains": "1234",
        "attr": '&copy; <a href="https://www.amap.com/">高德地图 AutoNavi</a> (GCJ-02)',
        "datum": "gcj02", "max_zoom": 18,
    },
    "tianditu": {
        "name": {"en": "Tianditu (天地图)", "zh": "天地图"},
        "tiles": "https://t{s}.tianditu.gov.cn/vec_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                 "&VERSION=1.0.0&LAYER=vec&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                 "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
        "labels": "https://t{s}.tianditu.gov.cn/{label}_w/wmts?SERVICE=WMTS&REQUEST=GetTile"
                  "&VERSION=1.0.0&LAYER={label}&STYLE=default&TILEMATRIXSET=w&FORMAT=tiles"
                  "&TILEMATRIX={z}&TILEROW={y}&TILECOL={x}&tk={key}",
        "subdomains": "01234567",
        "attr": '&copy; <a href="https://www.tianditu.gov.cn/">天地图 Tianditu</a>',
        "datum": "wgs84", "max_zoom": 18,
    },
}


# --------------------------------------------------------------------------- colours


def score_colours(scores) -> np.ndarray:
    """Hex colours for scores in [0, 1]: red (0) → yellow → green (1); grey when NaN."""
    scores = np.asarray(scores, dtype=float).ravel()
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in SCORE_STOPS], float)
    position = np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0) * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    rgb = np.round(stops[low] + (stops[low + 1] - stops[low]) * (position - low)[:, None])
    return _hex(rgb.astype(int), np.isnan(scores), NO_SCORE)


def score_colour(score: float | None) -> str:
    """:func:`score_colours` of one score."""
    return str(score_colours([np.nan if score is None else score])[0])


def cell_colours(n_missing) -> np.ndarray:
    """Colours of :data:`CELL_CLASSES` for counts of missing types."""
    bounds = np.array([bound for bound, _ in CELL_CLASSES])
    colours = np.array([colour for _, colour in CELL_CLASSES], dtype=object)
    index = np.searchsorted(bounds, np.asarray(n_missing, dtype=float), side="right") - 1
    return colours[np.clip(index, 0, len(bounds) - 1)]


def _hex(rgb: np.ndarray, missing: np.ndarray, fallback: str) -> np.ndarray:
    value = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
    text = np.char.mod("#%06x", value) if len(value) else np.array([], dtype=str)
    return np.where(missing, fallback, text).astype(object)


# --------------------------------------------------------------------------- gap hexagons


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
        Hexagon width, metres (:data:`gap_cell_m`).

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
    cell = gap_cell_m if cell_m is None else float(cell_m)
    frame = residences if not residences.crs or not residences.crs.is_geographic \
        else residences.to_crs(residences.estimate_utm_crs())
    type_ids = [type_id for type_id in thresholds_m if f"dist_{type_id}" in frame.columns]
    columns = ["cell_id", "cell_m", "population", "n_residences", "n_missing_types",
               "missing_types", "mean_missing_types"]
    if len(frame) == 0:
        return gpd.GeoDataFrame({name: [] for name in columns}, geometry=[], crs=frame.crs)
    points = shapely.point_on_surface(frame.geometry.to_numpy())
    q, r = hexagon_index(shapely.get_coordinates(points), cell)
    cells, inverse = np.unique(np.stack([q, r], axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    n_cells = len(cells)
    population = frame["population"].to_numpy(float)
    distance = frame[[f"dist_{type_id}" for type_id in type_ids]].to_numpy(float)
    limits = np.array([float(thresholds_m[type_id]) for type_id in type_ids])
    within = np.nan_to_num(distance, nan=np.inf) <= limits[None, :]
    reached = pd.DataFrame(within).groupby(inverse).any().reindex(range(n_cells),
                                                                  fill_value=False)
    missing = ~reached.to_numpy(bool)
    beyond = (~within).sum(axis=1).astype(float)
    cell_pop = np.bincount(inverse, weights=population, minlength=n_cells)
    count = np.bincount(inverse, minlength=n_cells)
    weighted = np.bincount(inverse, weights=population * beyond, minlength=n_cells)
    plain = np.bincount(inverse, weights=beyond, minlength=n_cells)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(cell_pop > 0, weighted / cell_pop, plain / np.maximum(count, 1))
    labels = np.array([f"{type_id}," for type_id in type_ids], dtype=object)
    joined = (np.where(missing, labels[None, :], "").sum(axis=1) if type_ids
              else np.full(n_cells, "", dtype=object))
    return gpd.GeoDataFrame({
        "cell_id": pd.Series(cells[:, 0]).astype(str) + "_" + pd.Series(cells[:, 1]).astype(str),
        "cell_m": cell,
        "population": np.round(cell_pop, 1),
        "n_residences": count,
        "n_missing_types": missing.sum(axis=1),
        "missing_types": pd.Series(joined, dtype=str).str.rstrip(","),
        "mean_missing_types": np.round(mean, 2),
    }, geometry=hexagons(cells[:, 0], cells[:, 1], cell), crs=frame.crs)


# --------------------------------------------------------------------------- map elements


class PlannerLayer(Layer):
    """A toggleable layer drawn by ``planner_map.js`` from one JSON data block.

    Parameters
    ----------
    factory
        The ``planner.<factory>(data, options)`` function that builds the layer.
    data_id
        Id of the ``<script type="application/json">`` block holding the data.
    name
        Label in the layer control (HTML allowed).
    options
        JSON-serialisable options passed to the factory.
    show
        Whether the layer is on when the map opens.
    """

    _template = Template("""
        {% macro script(this, kwargs) %}
            var {{ this.get_name() }} = planner.{{ this.factory }}(
                planner.data({{ this.data_id|tojson }}), {{ this.factory_options|tojson }});
        {% endmacro %}
        """)

    def __init__(self, factory: str, data_id: str, name: str, options: dict | None = None,
                 show: bool = True) -> None:
        super().__init__(name=name, overlay=True, control=True, show=show)
        self._name = "PlannerLayer"
        self.factory = factory
        self.data_id = data_id
        self.factory_options = options or {}


class PlannerScript(MacroElement):
    """One call into ``planner_map.js``: ``planner.<function>(<map>?, options)``."""

    _template = Template("""
        {% macro script(this, kwargs) %}
            planner.{{ this.function }}({% if this.with_map %}{{ this._parent.get_name() }},
                {% endif %}{{ this.arguments|tojson }});
        {% endmacro %}
        """)

    def __init__(self, function: str, arguments: dict, *, with_map: bool = False) -> None:
        super().__init__()
        self._name = "PlannerScript"
        self.function = function
        self.arguments = arguments
        self.with_map = with_map


def _static(name: str) -> str:
    return (resources.files("planner") / "static" / name).read_text(encoding="utf-8")


def _inline_images(css: str, folder: str) -> str:
    """Replace ``url(images/x.png)`` in vendored CSS by data URIs."""
    def data_uri(match: re.Match) -> str:
        payload = (resources.files("planner") / "static" / folder / match.group(1)).read_bytes()
        return f"url(data:image/png;base64,{base64.b64encode(payload).decode()})"

    return re.sub(r"url\((images/[\w.-]+\.png)\)", data_uri, css)


def inline_assets() -> str:
    """``<style>`` and ``<script>`` elements with Leaflet, MarkerCluster and the planner code."""
    css = [_inline_images(_static("leaflet/leaflet.css"), "leaflet"),
           _static("markercluster/MarkerCluster.css"), _static("planner_map.css")]
    js = [_static("leaflet/leaflet.js"), _static("markercluster/leaflet.markercluster.js"),
          _static("planner_map.js")]
    return "".join(f"<style>{text}</style>\n" for text in css) + "".join(
        f"<script>{text}</script>\n" for text in js)


def _json(value) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _data_block(data_id: str, text: str) -> Element:
    safe = text.replace("</", "<\\/")  # a JSON string may not close the script element
    return Element(f'<script type="application/json" id="{data_id}">{safe}</script>')


def _nullable(values, digits: int | None = None) -> list:
    """A list for JSON: NaN → None, optionally rounded."""
    array = np.asarray(values, dtype=float)
    if digits is not None:
        array = np.round(array, digits)
    return np.where(np.isnan(array), None, array).tolist()


def encode_polygons(geoms: np.ndarray, digits: int | None = None) -> dict:
    """Polygons as compact JSON: quantised, delta-coded coordinates with ragged offsets.

    Every geometry becomes a MultiPolygon. ``c`` holds the coordinates
    multiplied by ``s = 10**digits``, rounded to integers and stored as
    differences from the previous coordinate (``x0, y0, dx1, dy1, ...``);
    ``r``, ``p`` and ``m`` are the offsets of :func:`shapely.to_ragged_array`
    (coordinates per ring, rings per polygon, polygons per geometry). About a
    third of the size of GeoJSON; ``planner_map.js`` decodes it, and so does
    :func:`decode_polygons`.
    """
    scale = 10 ** (polygon_digits if digits is None else digits)
    geoms = np.asarray(geoms, dtype=object)
    if len(geoms) == 0:
        return {"s": scale, "c": [], "r": [0], "p": [0], "m": [0]}
    kind, coords, offsets = shapely.to_ragged_array(geoms)
    if kind == shapely.GeometryType.POLYGON:
        offsets = (*offsets, np.arange(len(geoms) + 1))
    elif kind != shapely.GeometryType.MULTIPOLYGON:
        raise ValueError(f"expected polygons, got {kind!r}")
    quantised = np.round(coords[:, :2] * scale).astype(np.int64)
    deltas = np.diff(quantised, axis=0, prepend=np.zeros((1, 2), dtype=np.int64))
    rings, polygons, multi = offsets
    return {"s": scale, "c": deltas.ravel().tolist(), "r": rings.tolist(),
            "p": polygons.tolist(), "m": multi.tolist()}


def decode_polygons(encoded: Mapping) -> np.ndarray:
    """The MultiPolygons of :func:`encode_polygons` (coordinates rounded to its grid)."""
    coords = np.cumsum(np.asarray(encoded["c"], dtype=np.int64).reshape(-1, 2), axis=0) \
        / encoded["s"]
    offsets = tuple(np.asarray(encoded[key], dtype=np.int64) for key in ("r", "p", "m"))
    if len(offsets[2]) <= 1:
        return np.array([], dtype=object)
    return shapely.from_ragged_array(shapely.GeometryType.MULTIPOLYGON, coords, offsets)


def _collection(geoms: np.ndarray, properties: dict) -> str:
    """``{"e": encode_polygons(geoms), "p": {column: [value ...]}}`` as JSON."""
    return _json({"e": encode_polygons(geoms), "p": properties})


def _to_display(frame: gpd.GeoDataFrame, tolerance_m: float) -> gpd.GeoDataFrame:
    """Simplified for display (in a metric CRS), then in EPSG:4326, without empties."""
    frame = frame[~(frame.geometry.isna() | frame.geometry.is_empty)]
    if frame.crs is None:
        raise PlannerError("a map layer has no CRS")
    metric = frame
    if frame.crs.is_geographic and len(frame):
        metric = frame.to_crs(frame.estimate_utm_crs())
    if tolerance_m > 0 and len(metric):
        metric = metric.set_geometry(shapely.simplify(metric.geometry.to_numpy(), tolerance_m,
                                                      preserve_topology=True), crs=metric.crs)
    return metric.to_crs(4326)


class _Datum:
    """Shifts WGS 84 longitude/latitude to the basemap's datum."""

    def __init__(self, datum: str) -> None:
        self.datum = datum

    def geometries(self, frame: gpd.GeoDataFrame) -> np.ndarray:
        geoms = frame.geometry.to_numpy()
        if self.datum != "wgs84":
            geoms = transform_geometries(geoms, "wgs84", self.datum)
        return geoms

    def points(self, frame: gpd.GeoDataFrame) -> tuple[np.ndarray, np.ndarray]:
        xy = shapely.get_coordinates(shapely.point_on_surface(frame.geometry.to_numpy()))
        x, y = xy[:, 0], xy[:, 1]
        if self.datum != "wgs84":
            x, y = transform(x, y, "wgs84", self.datum)
        return np.round(x, point_digits), np.round(y, point_digits)


def _deterministic_ids(root) -> None:
    """Replace branca's random element ids by sequential ones (same input, same HTML)."""
    stack, counter = [root], 0
    while stack:
        element = stack.pop(0)
        element._id = f"{counter:08x}"
        counter += 1
        stack.extend(getattr(element, "_children", {}).values())


# --------------------------------------------------------------------------- the map


def resolve_basemap(basemap: str, tianditu_key: str | None = None) -> dict:
    """The :data:`BASEMAPS` entry, with the Tianditu key filled in.

    Raises
    ------
    PlannerError
        For an unknown basemap, or Tianditu without a key (``--tianditu-key``
        or the ``TIANDITU_KEY`` environment variable).
    """
    if basemap not in BASEMAPS:
        raise PlannerError(f"unknown basemap {basemap!r}; choose one of "
                           f"{', '.join(BASEMAPS)}")
    entry = dict(BASEMAPS[basemap], id=basemap)
    if basemap == "tianditu":
        key = tianditu_key or os.environ.get("TIANDITU_KEY")
        if not key:
            raise PlannerError("the Tianditu basemap needs a key: pass --tianditu-key KEY or "
                               "set TIANDITU_KEY (free at https://console.tianditu.gov.cn)")
        entry["key"] = key
    return entry


def build_map(layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
              catalogue: Catalogue | None = None, *, lang: str | None = None,
              basemap: str = "osm", tianditu_key: str | None = None,
              title: str | None = None) -> folium.Map:
    """The interactive map of a run's layers.

    Parameters
    ----------
    layers
        As returned by :func:`planner.outputs.read_results` (EPSG:4326) or
        :func:`planner.outputs.analysis_layers` (any CRS): ``communities``,
        ``facilities``, ``residences`` and, when present, ``isochrones`` and
        ``gaps`` (computed from ``residences`` when absent).
    catalogue
        Scenes, types and thresholds; the packaged catalogue when omitted.
    lang
        ``"zh"`` or ``"en"``; by default Chinese when at least a fifth of the
        facility names contain CJK characters (:func:`planner.cli.detect_lang`).
    basemap
        A key of :data:`BASEMAPS`: ``osm``, ``amap`` or ``tianditu``.
    tianditu_key
        Tianditu token (else the ``TIANDITU_KEY`` environment variable).
    title
        Page title; a generic one when omitted.

    Returns
    -------
    folium.Map
        Self-contained: no script or style is fetched from the network.
    """
    from planner.i18n import detect_lang

    cat = catalogue or load_catalogue()
    tiles = resolve_basemap(basemap, tianditu_key)
    for required in ("communities", "facilities", "residences"):
        if required not in layers:
            raise PlannerError(f"the results have no '{required}' layer")
    facilities = layers["facilities"]
    residences = layers["residences"]
    lang = lang or detect_lang(facilities["name"])
    if lang not in STRINGS:
        raise PlannerError(f"unknown language {lang!r}; choose zh or en")
    text = dict(STRINGS[lang])
    datum = _Datum(tiles["datum"])

    types = [t for t in cat.types if f"dist_{t.id}" in residences.columns]
    if not types:
        raise PlannerError("the residences layer has no dist_<type> column of the catalogue")
    type_index = {t.id: i for i, t in enumerate(types)}
    scenes = cat.scenes
    scene_index = {scene.id: i for i, scene in enumerate(scenes)}
    extra = iter(EXTRA_COLOURS * (1 + len(scenes) // len(EXTRA_COLOURS)))
    scene_config = [{"id": scene.id, "label": scene.zh if lang == "zh" else scene.en,
                     "colour": SCENE_COLOURS.get(scene.id) or next(extra),
                     "icon": SCENE_ICONS.get(scene.id, DEFAULT_ICON)} for scene in scenes]
    type_config = [{"id": t.id, "label": t.label(lang), "scene": scene_index[t.scene],
                    "threshold": t.threshold_m} for t in types]
    from planner import isochrones

    text["note"] = text["note"].format(w=f"{isochrones.buffer_m:g}")

    communities = _to_display(layers["communities"], display_tolerance_m)
    if len(communities):
        bounds = communities.total_bounds
    else:
        bounds = residences.to_crs(4326).total_bounds
    west, south, east, north = bounds
    if tiles["datum"] != "wgs84":
        (west, east), (south, north) = transform([west, east], [south, north], "wgs84",
                                                  tiles["datum"])
    fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2], zoom_start=15,
                      tiles=None, control_scale=False, max_zoom=tiles["max_zoom"],
                      font_size="12px")
    fmap.default_js = []  # Leaflet and the rest are inlined below: no CDN
    fmap.default_css = []
    figure = fmap.get_root()
    figure.title = title or text["title"]
    figure.header.add_child(Element(inline_assets()), name="planner_assets")
    figure.header.add_child(Element('<meta name="generator" content="planner">'),
                            name="planner_generator")

    config = {"lang": lang, "strings": text, "scenes": scene_config, "types": type_config,
              "scoreStops": list(SCORE_STOPS), "title": figure.title, "basemap": tiles["id"],
              "datum": tiles["datum"]}

    def add_data(key: str, payload: str) -> str:
        data_id = f"pl-data-{key}"
        figure.header.add_child(_data_block(data_id, payload), name=data_id)
        return data_id

    fmap.add_child(PlannerScript("configure", {"data": add_data("config", _json(config))},
                                 with_map=True), name="planner_configure")
    _add_basemap(fmap, tiles, lang)

    communities_id = add_data("communities", _communities_payload(communities, types, scenes,
                                                                   datum))
    fmap.add_child(PlannerLayer("communities", communities_id, text["communities"]),
                   name="communities")

    cells = layers.get("gaps")
    if cells is None or len(cells) == 0:
        cells = gap_cells(residences, {t.id: t.threshold_m for t in types})
    cell_m = float(cells["cell_m"].iloc[0]) if len(cells) and "cell_m" in cells else gap_cell_m
    cells_id = add_data("cells", _cells_payload(cells, types, datum))
    fmap.add_child(PlannerLayer("missingCells", cells_id, text["cells"].format(m=f"{cell_m:g}"),
                                show=False), name="cells")

    areas = layers.get("isochrones")
    has_area: set[str] = set()
    if areas is not None and len(areas):
        areas = _to_display(areas[areas["type_id"].isin(type_index)], display_tolerance_m)
        has_area = set(areas["type_id"])
        payload = _collection(datum.geometries(areas),
                              {"t": areas["type_id"].map(type_index).astype(int).tolist()})
        fmap.add_child(PlannerLayer("serviceAreas", add_data("areas", payload),
                                    text["serviceAreas"]), name="service_areas")

    payload, uncovered = _residences_payload(residences, types, datum)
    fmap.add_child(PlannerLayer("gapResidences", add_data("residences", payload),
                                text["gapLayer"]), name="gap_residences")

    for index, (scene, payload, count) in enumerate(_facility_payloads(
            facilities, scenes, type_index, datum)):
        shown = scene_config[index]
        label = (f'<span class="pl-badge" style="background:{shown["colour"]}">'
                 f'<svg class="pl-icon" viewBox="0 0 16 16" width="12" height="12"><path '
                 f'fill-rule="evenodd" d="{shown["icon"]}"/></svg></span> '
                 f'{shown["label"]} <span class="pl-muted">({count})</span>')
        fmap.add_child(PlannerLayer("facilities", add_data(f"facilities-{scene.id}", payload),
                                    label, {"scene": index}), name=f"facilities_{scene.id}")

    premises = layers.get("reallocation")
    if premises is not None and len(premises):
        _add_premises(fmap, premises, datum, text["premises"])

    # the type picker starts on the largest gap among types with a service area
    order = sorted(range(len(types)), key=lambda i: (-round(uncovered[i], 1), i))
    initial = next((i for i in order if types[i].id in has_area and uncovered[i] > 0),
                   order[0])
    cell_labels = [f"{low}" if high is None or high - low == 1 else f"{low}–{high - 1}"
                   for (low, _), high in zip(CELL_CLASSES, [b for b, _ in CELL_CLASSES[1:]]
                                             + [None], strict=True)]
    cell_labels[-1] = f"≥ {CELL_CLASSES[-1][0]}"
    fmap.add_child(PlannerScript("legend", {
        "cellClasses": [[label, colour] for label, (_, colour) in
                        zip(cell_labels, CELL_CLASSES, strict=True)],
        "note": text["note"]}), name="planner_legend")
    fmap.add_child(PlannerScript("typePicker", {
        "order": order, "initial": initial,
        "uncovered": np.round(uncovered).astype(int).tolist()}),
        name="planner_picker")
    folium.LayerControl(collapsed=False, position="topright").add_to(fmap)
    fmap.fit_bounds([[south, west], [north, east]])
    _deterministic_ids(figure)
    return fmap


def _add_premises(fmap: folium.Map, premises: gpd.GeoDataFrame, datum: _Datum,
                  name: str) -> None:
    """Premises coloured by the type the reallocation plan assigns, popups with the gains.

    The layer comes from :func:`planner.sites.reallocation_layer` (or the
    ``reallocation`` layer of ``coverage.gpkg``); a few dozen features at most.
    """
    shown = premises.to_crs(4326)
    shown = gpd.GeoDataFrame(
        shown[["premises_id", "type_label", "colour", "popup_html"]].fillna(""),
        geometry=datum.geometries(shown), crs=4326)
    folium.GeoJson(
        shown.to_json(), name=name,
        style_function=lambda feature: {"color": feature["properties"]["colour"],
                                        "fillColor": feature["properties"]["colour"],
                                        "weight": 1, "fillOpacity": 0.75},
        marker=folium.CircleMarker(radius=7, fill=True),
        popup=folium.GeoJsonPopup(["popup_html"], labels=False),
        tooltip=folium.GeoJsonTooltip(["premises_id", "type_label"], labels=False),
    ).add_to(fmap)


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """A float column, or NaN where the layer lacks it."""
    if name in frame.columns:
        return frame[name].to_numpy(float)
    return np.full(len(frame), np.nan)


def _communities_payload(communities: gpd.GeoDataFrame, types: list, scenes: list,
                         datum: _Datum) -> str:
    """Polygons with name, population, scores and coverage per type (catalogue order)."""
    n = len(communities)
    cov = np.column_stack([_column(communities, f"cov_{t.id}") for t in types]) if types \
        else np.zeros((n, 0))
    scene_scores = np.column_stack([_column(communities, f"score_{scene.id}")
                                    for scene in scenes]) if scenes else np.zeros((n, 0))
    score = _column(communities, "score")
    names = communities["name"] if "name" in communities else communities["community_id"]
    return _collection(datum.geometries(communities), {
        "id": communities["community_id"].astype(str).tolist(),
        "name": names.fillna("").astype(str).tolist(),
        "population": _nullable(_column(communities, "population"), 0),
        "score": _nullable(score, 4), "scenes": _nullable(scene_scores, 4),
        "cov": _nullable(cov, 4), "fill": score_colours(score).tolist()})


def _bitmask(flags: np.ndarray) -> list[str]:
    """Rows of booleans as hex strings, most significant bit first (type 0 = bit 7 of byte 0)."""
    packed = np.packbits(flags.astype(bool), axis=1)
    if packed.shape[1] == 0:
        return [""] * len(flags)
    return np.char.mod("%02x", packed).astype(object).sum(axis=1).tolist()


def _cells_payload(cells: gpd.GeoDataFrame, types: list, datum: _Datum) -> str:
    """Hexagons of :func:`gap_cells`; the missing types as a hex bitmask over ``types``."""
    cells = _to_display(cells, 0.0)
    n_missing = cells["n_missing_types"].to_numpy(int)
    listed = "," + cells["missing_types"].fillna("").astype(str) + ","
    missing = np.column_stack([listed.str.contains(f",{t.id},", regex=False).to_numpy(bool)
                               for t in types])
    return _collection(datum.geometries(cells), {
        "id": cells["cell_id"].astype(str).tolist(), "n": n_missing.tolist(),
        "m": _bitmask(missing),
        "population": _nullable(cells["population"], 0),
        "residences": cells["n_residences"].astype(int).tolist(),
        "mean": _nullable(cells["mean_missing_types"], 1),
        "fill": cell_colours(n_missing).tolist()})


def _residences_payload(residences: gpd.GeoDataFrame, types: list,
                        datum: _Datum) -> tuple[str, np.ndarray]:
    """Residence columns and, per type, the residences beyond reach with their distance.

    Returns the JSON and the population beyond reach of each type.
    """
    population = residences["population"].to_numpy(float)
    distance = residences[[f"dist_{t.id}" for t in types]].to_numpy(float)
    limits = np.array([t.threshold_m for t in types])
    beyond = ~(np.nan_to_num(distance, nan=np.inf) <= limits[None, :])
    uncovered = (population[:, None] * beyond).sum(axis=0)
    if len(residences) > max_map_residences:
        log.warning("%d residences: the map leaves out the residences beyond reach "
                    "(more than planner.maps.max_map_residences = %d); the gap hexagons "
                    "show them", len(residences), max_map_residences)
        return _json({"x": [], "y": [], "p": [], "id": [], "gaps": {}}), uncovered
    homes = residences.to_crs(4326)
    x, y = datum.points(homes)
    gaps = {}
    for column in np.flatnonzero(beyond.any(axis=0)):  # one entry per type
        rows = np.flatnonzero(beyond[:, column])
        gaps[str(column)] = [rows.tolist(), _nullable(distance[rows, column], 0)]
    payload = _json({"x": x.tolist(), "y": y.tolist(), "p": _nullable(population, 1),
                     "id": homes["residence_id"].astype(str).tolist(), "gaps": gaps})
    return payload, uncovered


def _facility_payloads(facilities: gpd.GeoDataFrame, scenes: list, type_index: dict,
                       datum: _Datum):
    """Per scene: ``(scene, JSON, count)``; a facility of several types of a scene is one point."""
    shown = facilities[facilities["type_id"].isin(type_index)].to_crs(4326)
    x, y = datum.points(shown)
    scene_index = {scene.id: i for i, scene in enumerate(scenes)}
    table = pd.DataFrame({"facility_id": shown["facility_id"].astype(str).to_numpy(),
                          "scene": shown["scene_id"].map(scene_index).to_numpy(),
                          "t": shown["type_id"].map(type_index).to_numpy(),
                          "m": shown["match"].fillna("").astype(str).to_numpy(),
                          "n": shown["name"].fillna("").astype(str).to_numpy(),
                          "x": x, "y": y}).dropna(subset=["scene"])
    # one point per (scene, facility) with the lists of its types and matches; grouping
    # by sorting and splitting is ~30x faster than pandas' agg(list) on a city
    table = table.sort_values(["scene", "facility_id"], kind="stable")
    key = table["scene"].astype(int).astype(str) + "|" + table["facility_id"]
    starts = np.flatnonzero(np.r_[True, key.to_numpy()[1:] != key.to_numpy()[:-1]])
    scene_of = table["scene"].to_numpy(int)[starts]
    types_of = [part.tolist() for part in np.split(table["t"].to_numpy(int), starts[1:])]
    matches_of = [part.tolist() for part in np.split(table["m"].to_numpy(object), starts[1:])]
    first = table.iloc[starts]
    for index, scene in enumerate(scenes):  # eight scenes: one JSON block each
        rows = np.flatnonzero(scene_of == index)
        part = first.iloc[rows]
        yield scene, _json({"id": part["facility_id"].tolist(), "x": part["x"].tolist(),
                            "y": part["y"].tolist(), "n": part["n"].tolist(),
                            "t": [types_of[row] for row in rows],
                            "m": [matches_of[row] for row in rows]}), len(part)


def _add_basemap(fmap: folium.Map, tiles: dict, lang: str) -> None:
    url = tiles["tiles"].replace("{amap_lang}", "zh_cn" if lang == "zh" else "en")
    url = url.replace("{key}", tiles.get("key", ""))
    options = {"subdomains": tiles["subdomains"]} if "subdomains" in tiles else {}
    folium.TileLayer(url, attr=tiles["attr"], name=tiles["name"][lang],
                     max_zoom=tiles["max_zoom"], **options).add_to(fmap)
    if "labels" in tiles:  # Tianditu draws labels on a second layer
        labels = tiles["labels"].replace("{label}", "cva" if lang == "zh" else "eva")
        folium.TileLayer(labels.replace("{key}", tiles["key"]), attr=tiles["attr"],
                         name=f'{tiles["name"][lang]} labels', overlay=True, control=False,
                         max_zoom=tiles["max_zoom"], **options).add_to(fmap)


def render_map(layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame], path: str | Path,
               catalogue: Catalogue | None = None, **kwargs) -> Path:
    """Write :func:`build_map` of ``layers`` to ``path`` (UTF-8 HTML); returns the path."""
    path = Path(path)
    fmap = build_map(layers, catalogue, **kwargs)
    path.write_text(fmap.get_root().render(), encoding="utf-8")
    return path


def write_map(analysis, path: str | Path, *, layers: Mapping | None = None, **kwargs) -> Path:
    """Write the map of a :class:`planner.pipeline.Analysis` (see :func:`build_map`).

    Parameters
    ----------
    analysis
        The analysis.
    path
        The ``map.html`` to write.
    layers
        :func:`planner.outputs.analysis_layers` of the analysis, if already computed.
    **kwargs
        ``lang``, ``basemap``, ``tianditu_key``, ``title``.
    """
    from planner.outputs import analysis_layers

    return render_map(layers if layers is not None else analysis_layers(analysis), path,
                      analysis.catalogue, **kwargs)


def results_catalogue(out_dir: str | Path) -> Catalogue:
    """The catalogue a results folder was made with (from ``run.json``), else the packaged one."""
    record_path = Path(out_dir) / "run.json"
    if record_path.exists():
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
            path = (record.get("catalogue") or {}).get("path")
        except (ValueError, AttributeError):
            path = None
        if path and Path(path).exists():
            return load_catalogue(path)
    return load_catalogue()
