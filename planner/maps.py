"""Interactive map of provision and gaps: one self-contained ``map.html``.

The map only draws layers (it computes no analysis): those of
:func:`planner.layers.analysis_layers` or of a results folder
(:func:`planner.outputs.read_results`), so ``planner map RESULTS_DIR``
re-renders it without recomputing anything:

* **communities**, coloured by overall score, with a popup table of every scene
  and facility type (threshold, coverage; types no resident reaches in red,
  types without data marked "no data") and a tooltip with name and score;
* **facilities**, one toggleable, clustered layer per scene, with a colour and
  an icon per scene and a popup (name, type, scene, how it was matched); above
  :data:`planner.settings.map_max_facility_markers` markers (a city), one
  marker per square of :data:`planner.settings.map_facility_cell_m` and scene
  with the number of facilities and, in its popup, the types and their counts;
* **service area** of the facility type chosen in a drop-down: the streets
  within its walking threshold, buffered (:mod:`planner.isochrones`);
* **residences beyond reach** of the chosen type;
* **missing facility types** per hexagon (:mod:`planner.gaps`), in classes
  computed from the values on the map (:func:`planner.colours.class_breaks`);
* **premises** of the reallocation plan and **candidate sites** numbered by
  rank (after ``planner sites``);
* legend (following the visible layers), collapsed layer control, scale bar,
  bounds fitted to the area, labels in Chinese or English.

The map opens calm: community scores, the service area and the residences
beyond reach of the type with the most residents beyond reach, and the
candidate sites when there are any; every other layer is one click away.

Drawing order (``planner_map.js``): service areas lie in a pane that takes no
pointer events, under one canvas that draws communities, hexagons, residences
and premises and finds the topmost of them under the mouse; facility and
candidate markers sit above in Leaflet's marker pane. No non-interactive
layer lies above an interactive one, so every click reaches a feature.

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
import logging
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

from planner import settings
from planner.basemaps import BASEMAPS, resolve_basemap  # noqa: F401  (re-exported)
from planner.catalogue import Catalogue, load_catalogue
from planner.colours import (  # noqa: F401  (re-exported: planner.maps.score_colour …)
    EXTRA_COLOURS,
    NO_SCORE,
    SCENE_COLOURS,
    SCORE_STOPS,
    cell_colours,
    class_breaks,
    class_colours,
    class_labels,
    score_colour,
    score_colours,
)
from planner.coords import transform, transform_geometries  # noqa: F401  (re-exported)
from planner.errors import PlannerError
from planner.i18n import detect_lang
from planner.map_data import (  # noqa: F401  (re-exported: planner.maps.encode_polygons …)
    Datum,
    MapSetup,
    area_cells_payload,
    candidates_payload,
    cells_payload,
    collection,
    communities_payload,
    decode_polygons,
    encode_polygons,
    facility_payloads,
    json_text,
    residences_payload,
    service_cells_payload,
    to_display,
    type_data_status,
)

log = logging.getLogger(__name__)

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



STRINGS = {
    "en": {
        "title": "15-minute life circle: facility coverage",
        "communities": "Communities: overall score", "scene": "Scene",
        "serviceAreas": "Walking service area (chosen type)",
        "gapLayer": "Residences beyond reach (chosen type)",
        "premises": "Premises reallocation plan",
        "candidates": "Candidate sites (by rank)",
        "cells": "Missing facility types ({m} m hexagons)",
        "population": "Population", "score": "Overall score", "type": "Facility type",
        "threshold": "Threshold", "coverage": "Coverage", "missing": "missing",
        "noData": "no data", "scoreData": "Score (types with data)",
        "typesData": "Types with data", "detour": "Detour index",
        "matched": "Matched by", "unnamed": "(no name)", "residence": "Residence",
        "beyondLimit": "none within {m} m", "nearestAt": "nearest at {m} m",
        "chosenType": "Facility type shown", "uncovered": "{n} residents beyond reach",
        "cell": "Hexagon", "residences": "Residences",
        "meanMissing": "Types beyond reach per resident (mean)",
        "missingTypes": "Types no resident reaches", "communityScore": "Community overall score",
        "serviceArea": "Service area", "gapResidences": "Residence beyond reach of that type",
        "cellsTitle": "Types no resident of a hexagon reaches",
        "cellsData": "Types with data no resident of a hexagon reaches",
        "premisesLegend": "Premises (colour: type assigned)",
        "candidateLegend": "Candidate site, numbered by rank",
        "candidate": "Candidate site", "rank": "Rank", "site": "Site", "kind": "Kind",
        "community": "Community", "added": "Residents added", "total": "total",
        "note": "Walking metres on the street network; a service area is the streets within "
                "the threshold.",
        "match": {"tag": "OSM tag", "name": "name keyword", "list": "facility list"},
        "square": "{n} facilities in this {m} m square",
        "count": "Facilities",
    },
    "zh": {
        "title": "十五分钟社区生活圈设施覆盖",
        "communities": "社区综合得分", "scene": "场景",
        "serviceAreas": "步行服务范围（所选设施类型）",
        "gapLayer": "服务范围外的住宅（所选设施类型）",
        "premises": "国有房产再利用方案",
        "candidates": "候选选址（按排名）",
        "cells": "缺失设施类型数（{m} 米六边形）",
        "population": "人口", "score": "综合得分", "type": "设施类型", "threshold": "服务半径",
        "coverage": "覆盖率", "missing": "缺失", "noData": "无数据",
        "scoreData": "得分（有数据的类型）", "typesData": "有数据的设施类型数",
        "detour": "绕行系数",
        "matched": "匹配方式", "unnamed": "（无名称）",
        "residence": "住宅", "beyondLimit": "{m} 米内没有", "nearestAt": "最近 {m} 米",
        "chosenType": "显示的设施类型", "uncovered": "{n} 人不可达", "cell": "六边形",
        "residences": "住宅数", "meanMissing": "人均不可达类型数",
        "missingTypes": "无人可达的类型", "communityScore": "社区综合得分",
        "serviceArea": "服务范围", "gapResidences": "该类型服务范围外的住宅",
        "cellsTitle": "六边形内无人可达的设施类型数",
        "cellsData": "六边形内无人可达的设施类型数（仅计有数据的类型）",
        "premisesLegend": "国有房产（颜色：分配的设施类型）",
        "candidateLegend": "候选选址（数字为排名）",
        "candidate": "候选选址", "rank": "排名", "site": "选址", "kind": "类别",
        "community": "社区", "added": "新增覆盖人口", "total": "合计",
        "note": "距离为沿街道网络的步行距离（米）；服务范围为阈值内可达的街道。",
        "match": {"tag": "OSM 标签", "name": "名称关键词", "list": "设施清单"},
        "square": "此 {m} 米方格内共 {n} 处设施",
        "count": "设施数",
    },
}

#: Legend of the candidate markers, sent with the candidates only (``{type}``:
#: the chosen type's label).
CANDIDATE_STRINGS = {
    "en": {"legendType": "Candidate sites for {type}, numbered by rank",
           "legendBest": "Best candidate site of each ranked type (none ranked for {type})"},
    "zh": {"legendType": "{type}候选选址（数字为排名）",
           "legendBest": "各类型排名第一的候选选址（{type}无候选）"},
}

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


class RawHTML(Element):
    """HTML inserted as it is: no Jinja template compiled from it.

    ``branca.Element(text)`` compiles its text as a template, which for the
    megabytes of a city's data blocks takes seconds; this renders the string.
    """

    def __init__(self, html: str) -> None:
        super().__init__()
        self._name = "RawHTML"
        self.html = html

    def render(self, **kwargs) -> str:
        return self.html


def _data_block(data_id: str, text: str) -> Element:
    safe = text.replace("</", "<\\/")  # a JSON string may not close the script element
    return RawHTML(f'<script type="application/json" id="{data_id}">{safe}</script>')



def _deterministic_ids(root) -> None:
    """Replace branca's random element ids by sequential ones (same input, same HTML)."""
    stack, counter = [root], 0
    while stack:
        element = stack.pop(0)
        element._id = f"{counter:08x}"
        counter += 1
        stack.extend(getattr(element, "_children", {}).values())



# --------------------------------------------------------------------------- the map



def _setup(layers: Mapping, catalogue: Catalogue | None, lang: str | None, basemap: str,
           tianditu_key: str | None) -> MapSetup:
    """Check the layers and settle the language, the types shown and their data status."""
    cat = catalogue or load_catalogue()
    tiles = resolve_basemap(basemap, tianditu_key)
    for required in ("communities", "facilities", "residences"):
        if required not in layers:
            message = f"the results have no '{required}' layer"
            raise PlannerError(message)
    lang = lang or detect_lang(layers["facilities"]["name"])
    if lang not in STRINGS:
        message = f"unknown language {lang!r}; choose zh or en"
        raise PlannerError(message)
    text = dict(STRINGS[lang])
    types = [t for t in cat.types if f"dist_{t.id}" in layers["residences"].columns]
    if not types:
        message = "the residences layer has no dist_<type> column of the catalogue"
        raise PlannerError(message)
    extra = iter(EXTRA_COLOURS * (1 + len(cat.scenes) // len(EXTRA_COLOURS)))
    scene_config = [{"id": scene.id, "label": scene.zh if lang == "zh" else scene.en,
                     "colour": SCENE_COLOURS.get(scene.id) or next(extra),
                     "icon": SCENE_ICONS.get(scene.id, DEFAULT_ICON)} for scene in cat.scenes]
    return MapSetup(lang=lang, text=text, tiles=tiles, datum=Datum(tiles["datum"]), types=types,
                  scenes=cat.scenes, scene_config=scene_config,
                  has_data=type_data_status(layers.get("summary"), [t.id for t in types]))



class _Page:
    """The folium map being built, with its inline assets and JSON data blocks."""

    def __init__(self, setup: MapSetup, bounds: np.ndarray, title: str | None) -> None:
        west, south, east, north = bounds
        if setup.tiles["datum"] != "wgs84":
            (west, east), (south, north) = transform([west, east], [south, north], "wgs84",
                                                      setup.tiles["datum"])
        self.bounds = [[south, west], [north, east]]
        self.setup = setup
        self.fmap = folium.Map(location=[(south + north) / 2, (west + east) / 2],
                               zoom_start=15, tiles=None, control_scale=False,
                               max_zoom=setup.tiles["max_zoom"], font_size="12px")
        self.fmap.default_js = []  # Leaflet and the rest are inlined below: no CDN
        self.fmap.default_css = []
        self.figure = self.fmap.get_root()
        self.figure.title = title or setup.text["title"]
        self.figure.header.add_child(RawHTML(inline_assets()), name="planner_assets")
        self.figure.header.add_child(Element('<meta name="generator" content="planner">'),
                                     name="planner_generator")
        types = [{"id": t.id, "label": t.label(setup.lang),
                  "scene": [s.id for s in setup.scenes].index(t.scene),
                  "threshold": t.threshold_m} for t in setup.types]
        config = {"lang": setup.lang, "strings": setup.text, "scenes": setup.scene_config,
                  "types": types, "hasData": setup.has_data.tolist(),
                  "scoreStops": list(SCORE_STOPS), "title": self.figure.title,
                  "basemap": setup.tiles["id"], "datum": setup.tiles["datum"]}
        self.script("configure", {"data": self.data("config", json_text(config))}, with_map=True)
        _add_basemap(self.fmap, setup.tiles, setup.lang)

    def data(self, key: str, payload: str) -> str:
        """Add a JSON data block; returns its element id."""
        data_id = f"pl-data-{key}"
        self.figure.header.add_child(_data_block(data_id, payload), name=data_id)
        return data_id

    def layer(self, factory: str, key: str, payload: str, name: str, *,
              options: dict | None = None, show: bool = True) -> None:
        """A toggleable layer drawn by ``planner.<factory>`` from the data block ``key``."""
        self.fmap.add_child(PlannerLayer(factory, self.data(key, payload), name, options,
                                         show=show), name=f"layer_{key}")

    def script(self, function: str, arguments: dict, *, with_map: bool = False) -> None:
        self.fmap.add_child(PlannerScript(function, arguments, with_map=with_map),
                            name=f"planner_{function}")

    def finish(self) -> folium.Map:
        folium.LayerControl(collapsed=True, position="topright").add_to(self.fmap)
        self.script("finish", {})
        self.fmap.fit_bounds(self.bounds, padding=(12, 12))
        _deterministic_ids(self.figure)
        return self.fmap


def build_map(layers: Mapping[str, gpd.GeoDataFrame | pd.DataFrame],
              catalogue: Catalogue | None = None, *, lang: str | None = None,
              basemap: str = "osm", tianditu_key: str | None = None,
              title: str | None = None,
              wgs84_xy: Mapping[str, np.ndarray] | None = None) -> folium.Map:
    """The interactive map of a run's layers.

    Parameters
    ----------
    layers
        As returned by :func:`planner.outputs.read_results` (EPSG:4326) or
        :func:`planner.layers.analysis_layers` (any CRS): ``communities``,
        ``facilities``, ``residences`` and, when present, ``isochrones``,
        ``gaps``, ``reallocation``, ``candidates`` and ``summary`` (whose
        ``facilities_in_area`` marks the types without data).
    catalogue
        Scenes, types and thresholds; the packaged catalogue when omitted.
    lang
        ``"zh"`` or ``"en"``; by default Chinese when at least a fifth of the
        facility names contain CJK characters (:func:`planner.i18n.detect_lang`).
    basemap
        A key of :data:`BASEMAPS`: ``osm``, ``amap`` or ``tianditu``.
    tianditu_key
        Tianditu token (else the ``TIANDITU_KEY`` environment variable).
    title
        Page title; a generic one when omitted.
    wgs84_xy
        The coordinates in EPSG:4326 of the ``gaps`` and ``service_cells``
        layers, by name, when known (``to_crs(4326)``'s numbers, in the order
        of ``shapely.get_coordinates``: :attr:`planner.layer_files.Wgs84Layer.xy`):
        their polygons are then drawn without being transformed again.

    Returns
    -------
    folium.Map
        Self-contained: no script or style is fetched from the network.
    """
    setup = _setup(layers, catalogue, lang, basemap, tianditu_key)
    text = setup.text
    communities = to_display(layers["communities"], settings.map_display_tolerance_m)
    bounds = communities.total_bounds if len(communities) else \
        layers["residences"].to_crs(4326).total_bounds
    page = _Page(setup, bounds, title)
    page.layer("communities", "communities", communities_payload(communities, setup),
               text["communities"])
    wgs84_xy = wgs84_xy or {}
    has_area = _add_service_areas(page, layers.get("isochrones"), layers.get("service_cells"),
                                  wgs84_xy.get("service_cells"))
    uncovered = _add_residences(page, layers["residences"])
    cell_classes = _add_cells(page, layers.get("gaps"), wgs84_xy.get("gaps"))
    _add_premises(page, layers.get("reallocation"))
    _add_candidates(page, layers.get("candidates"))
    _add_facilities(page, layers["facilities"])
    _add_controls(page, uncovered, has_area, cell_classes)
    return page.finish()


def _add_service_areas(page: _Page, areas: gpd.GeoDataFrame | None,
                       cells: gpd.GeoDataFrame | None = None,
                       cells_xy: np.ndarray | None = None) -> set[str]:
    """The service area of the chosen type (on at first); returns the types that have one.

    The streets within reach (``isochrones``) when they are few; above
    :data:`planner.settings.map_max_area_coordinates` coordinates the squares
    holding a street within reach: the ``service_cells`` layer when the
    results have it, else squares computed from the streets.
    """
    setup = page.setup
    type_index = setup.type_index
    if areas is not None and len(areas):
        areas = areas[areas["type_id"].isin(type_index)]
        small = shapely.get_num_coordinates(areas.geometry.to_numpy()).sum() \
            <= settings.map_max_area_coordinates
    if areas is not None and len(areas) and (small or cells is None or len(cells) == 0):
        if small:
            areas = to_display(areas, settings.map_display_tolerance_m)
            payload = collection(setup.datum.geometries(areas),
                                 {"t": areas["type_id"].map(type_index).astype(int).tolist()})
        else:
            payload = area_cells_payload(areas, type_index, setup.datum,
                                         settings.service_cell_m)
        drawn = set(areas["type_id"])
    elif cells is not None and len(cells):
        payload, drawn = service_cells_payload(cells, type_index, setup.datum, cells_xy)
    else:
        return set()
    page.layer("serviceAreas", "areas", payload, setup.text["serviceAreas"])
    return drawn


def _add_residences(page: _Page, residences: gpd.GeoDataFrame) -> np.ndarray:
    """Residences beyond reach of the chosen type (on); returns the population beyond reach."""
    payload, uncovered = residences_payload(residences, page.setup.types, page.setup.datum,
                                             settings.map_max_residences)
    page.layer("gapResidences", "residences", payload, page.setup.text["gapLayer"])
    return uncovered


def _add_cells(page: _Page, cells: gpd.GeoDataFrame | None,
               xy: np.ndarray | None = None) -> list:
    """The gap hexagons (off at first); returns the legend's ``[label, colour]`` classes."""
    if cells is None or len(cells) == 0:
        return []
    cell_m = float(cells["cell_m"].iloc[0]) if "cell_m" in cells else settings.gap_cell_m
    payload, classes = cells_payload(cells, page.setup, xy)
    page.layer("missingCells", "cells", payload,
               page.setup.text["cells"].format(m=f"{cell_m:g}"), show=False)
    return classes


def _add_facilities(page: _Page, facilities: gpd.GeoDataFrame) -> None:
    """One clustered layer per scene, off at first, with its badge and count in the control."""
    setup = page.setup
    for index, (scene, payload, count) in enumerate(facility_payloads(
            facilities, setup.scenes, setup.type_index, setup.datum,
            settings.map_max_facility_markers, settings.map_facility_cell_m)):
        shown = setup.scene_config[index]
        label = (f'<span class="pl-badge" style="background:{shown["colour"]}">'
                 f'<svg class="pl-icon" viewBox="0 0 16 16" width="12" height="12"><path '
                 f'fill-rule="evenodd" d="{shown["icon"]}"/></svg></span> '
                 f'{shown["label"]} <span class="pl-muted">({count})</span>')
        page.layer("facilities", f"facilities-{scene.id}", payload, label,
                   options={"scene": index}, show=False)


def _add_controls(page: _Page, uncovered: np.ndarray, has_area: set[str],
                  cell_classes: list) -> None:
    """Legend and type picker; the picker starts on the largest gap among types with data."""
    types, has_data = page.setup.types, page.setup.has_data
    order = sorted(range(len(types)),
                   key=lambda i: (not has_data[i], -round(uncovered[i], 1), i))
    initial = next((i for i in order if types[i].id in has_area and has_data[i]
                    and uncovered[i] > 0), order[0])
    page.script("legend", {"cellClasses": cell_classes, "note": page.setup.text["note"]})
    page.script("typePicker", {"order": order, "initial": initial,
                               "uncovered": np.round(uncovered).astype(int).tolist()})


def _add_premises(page: _Page, premises: gpd.GeoDataFrame | None) -> None:
    """Premises coloured by the type the reallocation plan assigns (off), popups with the gains.

    The layer comes from :func:`planner.sites.reallocation_layer` (or the
    ``reallocation`` layer of ``coverage.gpkg``); a few dozen features at most.
    """
    if premises is None or len(premises) == 0:
        return
    shown = premises.to_crs(4326)
    x, y = page.setup.datum.points(shown)
    columns = {name: shown[name].fillna("").astype(str).tolist() if name in shown else
               [""] * len(shown) for name in ("premises_id", "type_label", "colour",
                                              "popup_html")}
    page.layer("premises", "premises", json_text({
        "x": x.tolist(), "y": y.tolist(), "id": columns["premises_id"],
        "label": columns["type_label"], "colour": columns["colour"],
        "popup": columns["popup_html"]}), page.setup.text["premises"], show=False)


def _add_candidates(page: _Page, candidates: gpd.GeoDataFrame | None) -> None:
    """Ranked candidate sites numbered by rank (on when present), popups with residents added.

    The rank is ``rank`` (else ``greedy_rank``); sites without one are left out.
    The markers follow the type picker (``planner_candidates.js``, inlined only
    in maps with candidates so that other maps keep their bytes): the chosen
    type's sites numbered 1..n, or, for a type nobody ranked, the best site of
    each ranked type labelled with its type.
    """
    if candidates is None or len(candidates) == 0:
        return
    rank = next((column for column in ("rank", "greedy_rank") if column in candidates), None)
    if rank is None:
        return
    ranked = candidates[pd.to_numeric(candidates[rank], errors="coerce").notna()]
    if len(ranked) == 0:
        return
    ranked = ranked.assign(rank=pd.to_numeric(ranked[rank]).astype(int))
    page.figure.header.add_child(RawHTML(
        f"<style>{_static('planner_candidates.css')}</style>\n"
        f"<script>{_static('planner_candidates.js')}</script>\n"), name="planner_candidates")
    page.layer("candidates", "candidates", candidates_payload(ranked, page.setup),
               page.setup.text["candidates"],
               options={"strings": CANDIDATE_STRINGS[page.setup.lang]})



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


def write_map(analysis, path: str | Path, *, layers: Mapping, **kwargs) -> Path:
    """Write the map of a :class:`planner.pipeline.Analysis` (see :func:`build_map`).

    Parameters
    ----------
    analysis
        The analysis (for its catalogue).
    path
        The ``map.html`` to write.
    layers
        :func:`planner.layers.analysis_layers` of the analysis (the map draws
        layers; it computes none), optionally with ``summary``.
    **kwargs
        ``lang``, ``basemap``, ``tianditu_key``, ``title``, ``wgs84_xy``.
    """
    return render_map(layers, path, analysis.catalogue, **kwargs)

