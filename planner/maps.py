"""Interactive map of provision and gaps (folium)."""

from __future__ import annotations

from pathlib import Path

import folium
import numpy as np

from planner.pipeline import Analysis

SCENE_COLOURS = {
    "neighbourhood": "#e6550d", "public_service": "#3182bd", "health": "#de2d26",
    "culture": "#756bb1", "learning": "#31a354", "innovation": "#fd8d3c",
    "safety": "#636363", "urban_safety": "#a50f15",
}


def score_colour(score: float) -> str:
    """Red (0) → yellow → green (1); grey when unknown."""
    if score is None or np.isnan(score):
        return "#bdbdbd"
    stops = np.array([[215, 48, 39], [254, 224, 139], [26, 152, 80]], dtype=float)
    position = min(max(float(score), 0.0), 1.0) * 2
    low = int(min(position, 1))
    rgb = stops[low] + (stops[low + 1] - stops[low]) * (position - low)
    return "#{:02x}{:02x}{:02x}".format(*np.round(rgb).astype(int))


def write_map(analysis: Analysis, path: Path) -> None:
    """A plain map: communities by overall score and facilities per scene."""
    communities = analysis.communities.to_crs(4326)
    facilities = analysis.facilities.to_crs(4326)
    west, south, east, north = communities.total_bounds
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    fmap.fit_bounds([[south, west], [north, east]])
    shown = communities[["community_id", "name", "score", "geometry"]].copy()
    shown["score"] = shown["score"].round(3)
    folium.GeoJson(
        shown.to_json(), name="communities / 社区",
        style_function=lambda feature: {
            "fillColor": score_colour(feature["properties"]["score"]), "color": "#333",
            "weight": 1, "fillOpacity": 0.45},
        tooltip=folium.GeoJsonTooltip(["community_id", "name", "score"]),
    ).add_to(fmap)
    for scene in analysis.catalogue.scenes:
        group = folium.FeatureGroup(name=f"{scene.zh} {scene.en}")
        points = facilities[facilities["scene_id"] == scene.id]
        for lon, lat, name, type_id in zip(points.geometry.x, points.geometry.y,
                                           points["name"], points["type_id"], strict=True):
            folium.CircleMarker([lat, lon], radius=4, color=SCENE_COLOURS.get(scene.id, "#000"),
                                fill=True, tooltip=f"{name or ''} ({type_id})").add_to(group)
        group.add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.save(str(path))
