"""The OSMnx-tutorial pipeline: the baseline ``planner analyze`` is compared with.

Run: ``python -m benchmarks.bench_tutorial SOURCE --out DIR`` (one run; prints
its stage timings as JSON on the last line). :mod:`benchmarks.bench_scale`
runs it in a subprocess beside ``planner analyze`` on the same file.

What an OSMnx tutorial does to answer "which homes are within walking
distance of each kind of facility" (the osmnx-examples isochrone notebook,
with the planner's catalogue standing in for a hand-written tag list):

1. the walking graph: ``osmnx.graph_from_xml(path, bidirectional=True)`` for
   OSM XML; for a PBF, pyrosm's ``get_network("walking", nodes=True)`` and
   ``to_graph(..., graph_type="networkx")`` (what the pyrosm docs show for
   osmnx users; it returns a simplified graph, like osmnx does);
2. the features: ``osmnx.features_from_xml(path, tags=...)`` (XML) or pyrosm's
   ``get_pois`` + ``get_buildings`` (PBF), with the catalogue's tag keys and
   ``building``;
3. the facilities: the features matched to the catalogue's types
   (:func:`planner.catalogue.classify`, the step a tutorial writes by hand);
4. ``osmnx.project_graph`` and the features projected to the graph's CRS;
5. ``osmnx.distance.nearest_nodes`` for every facility;
6. one ``networkx.ego_graph(G, node, radius=threshold, distance="length")``
   per facility, its nodes' convex hull as the isochrone;
7. the homes (``building=apartments|residential|house|…``) inside the union of
   each type's isochrones, as a coverage share per type;
8. a folium map of the isochrones and the facilities, saved as HTML.

Every stage is timed; the imports are a stage of their own.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings
from pathlib import Path

#: building values read as homes (the tutorial's list).
HOME_BUILDINGS = ("apartments", "residential", "house", "detached", "terrace",
                  "semidetached_house", "dormitory")


def _features_table(frame, keys: list[str]):
    """A features frame in the shape :func:`planner.catalogue.classify` takes."""
    import geopandas as gpd
    import pandas as pd

    frame = frame.reset_index()
    frame = frame.rename(columns={"element": "osm_type", "element_type": "osm_type",
                                  "id": "osm_id", "osmid": "osm_id"})
    kind = frame.geometry.geom_type
    frame = frame[kind.isin(["Point", "MultiPoint", "Polygon", "MultiPolygon"]).to_numpy()]
    columns = {"osm_type": frame["osm_type"].astype(str).to_numpy(),
               "osm_id": pd.to_numeric(frame["osm_id"], errors="coerce").to_numpy()}
    for key in keys:
        values = frame[key] if key in frame.columns else pd.Series(None, index=frame.index)
        columns[key] = values.astype(object).where(values.notna(), None).map(
            lambda value: value if value is None else str(value)).to_numpy()
    return gpd.GeoDataFrame(columns, geometry=frame.geometry.to_numpy(), crs=frame.crs)


def _read_xml(source: Path, keys: list[str]):
    import osmnx as ox

    graph = ox.graph_from_xml(source, bidirectional=True)
    tags = {key: True for key in keys}
    features = ox.features_from_xml(source, tags=tags)
    return graph, features


def _read_pbf(source: Path, keys: list[str]):
    import pandas as pd
    import pyrosm

    osm = pyrosm.OSM(str(source))
    nodes, edges = osm.get_network(network_type="walking", nodes=True)
    graph = osm.to_graph(nodes, edges, graph_type="networkx")
    # pyrosm takes plain keys only (``isced:level`` and the like stay in its tags column)
    plain = [key for key in keys if ":" not in key and key != "building"]
    frames = [osm.get_pois(custom_filter={key: True for key in plain}), osm.get_buildings()]
    features = pd.concat([frame for frame in frames if frame is not None], ignore_index=True)
    return graph, features


def tutorial_pipeline(source: str | Path, out: str | Path, *,
                      max_facilities: int | None = None) -> dict:
    """Run the tutorial pipeline on ``source``; return its stage timings and counts.

    Parameters
    ----------
    source
        An ``.osm`` XML or ``.osm.pbf`` file.
    out
        Folder of the map (``map.html``).
    max_facilities
        Draw isochrones around the first this many facilities only (for tests;
        the benchmark draws them all).
    """
    timings: dict[str, float] = {}
    clock = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal clock
        now = time.perf_counter()
        timings[name] = round(now - clock, 4)
        clock = now

    import folium
    import geopandas as gpd
    import networkx as nx
    import numpy as np
    import osmnx as ox
    import shapely

    from planner.catalogue import classify, load_catalogue

    lap("imports")
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    catalogue = load_catalogue()
    keys = sorted({*catalogue.feature_keys(), "building", "name"})
    pbf = source.name.lower().endswith(".pbf")
    graph, raw = (_read_pbf if pbf else _read_xml)(source, keys)
    lap("graph and features")
    features = _features_table(raw, keys)
    facilities = classify(features, catalogue)
    if max_facilities is not None:
        facilities = facilities.iloc[:max_facilities]
    lap("classify")
    graph = ox.project_graph(graph)
    crs = graph.graph["crs"]
    facilities = facilities.to_crs(crs)
    homes = features[features["building"].isin(HOME_BUILDINGS).to_numpy()].to_crs(crs)
    lap("project")
    points = facilities.geometry.centroid
    nearest = ox.distance.nearest_nodes(graph, points.x.to_numpy(), points.y.to_numpy())
    lap("nearest nodes")
    thresholds = catalogue.thresholds_m()
    hulls = []
    for node, type_id in zip(nearest, facilities["type_id"], strict=True):
        subgraph = nx.ego_graph(graph, node, radius=thresholds[type_id], distance="length")
        xy = [(data["x"], data["y"]) for _, data in subgraph.nodes(data=True)]
        hulls.append(shapely.MultiPoint(xy).convex_hull)
    isochrones = gpd.GeoDataFrame({"type_id": facilities["type_id"].to_numpy()},
                                  geometry=hulls, crs=crs)
    lap("isochrones")
    centres = gpd.GeoDataFrame(geometry=homes.geometry.centroid.to_numpy(), crs=crs)
    coverage = {}
    for type_id, group in isochrones.groupby("type_id", sort=True):
        inside = centres.sjoin(gpd.GeoDataFrame(geometry=[group.union_all()], crs=crs),
                               predicate="within")
        coverage[type_id] = len(inside) / max(len(centres), 1)
    lap("coverage")
    wgs84 = isochrones.to_crs(4326)
    centre = wgs84.union_all().centroid if len(wgs84) else shapely.Point(0, 0)
    page = folium.Map(location=[centre.y, centre.x], zoom_start=13)
    folium.GeoJson(wgs84, name="isochrones").add_to(page)
    folium.GeoJson(facilities[["type_id", "geometry"]].to_crs(4326),
                   name="facilities").add_to(page)
    page.save(str(out / "map.html"))
    lap("map")
    return {"stages": timings, "nodes": graph.number_of_nodes(),
            "edges": graph.number_of_edges(), "facilities": len(facilities),
            "homes": len(homes), "mean_coverage": float(np.mean(list(coverage.values())))
            if coverage else 0.0}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = tutorial_pipeline(args.source, args.out)
    print(json.dumps(result))
    sys.stdout.flush()
    return result


if __name__ == "__main__":
    main()
