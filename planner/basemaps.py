"""Basemaps of the interactive map: tiles, attribution and datum (no folium)."""

from __future__ import annotations

import os

from planner.errors import PlannerError
from planner.i18n import pick

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

#: The ``--basemap`` choices.
BASEMAP_CHOICES = tuple(BASEMAPS)


def resolve_basemap(basemap: str, tianditu_key: str | None = None) -> dict:
    """The :data:`BASEMAPS` entry, with the Tianditu key filled in.

    Raises
    ------
    PlannerError
        For an unknown basemap, or Tianditu without a key (``--tianditu-key``
        or the ``TIANDITU_KEY`` environment variable).
    """
    if basemap not in BASEMAPS:
        message = pick(f"未知底图 {basemap!r}, 可选 {', '.join(BASEMAPS)}",
                       f"unknown basemap {basemap!r}; choose one of {', '.join(BASEMAPS)}")
        raise PlannerError(message)
    entry = dict(BASEMAPS[basemap], id=basemap)
    if basemap == "tianditu":
        key = tianditu_key or os.environ.get("TIANDITU_KEY")
        if not key:
            message = pick("天地图底图需要密钥: 请用 --tianditu-key KEY 或设置 TIANDITU_KEY"
                           " (可在 https://console.tianditu.gov.cn 免费申请)",
                           "the Tianditu basemap needs a key: pass --tianditu-key KEY or "
                           "set TIANDITU_KEY (free at https://console.tianditu.gov.cn)")
            raise PlannerError(message)
        entry["key"] = key
    return entry
