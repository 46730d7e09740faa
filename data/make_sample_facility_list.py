"""Make an illustrative facility list for the Beijing BUPT extract, in GCJ-02.

Run: ``python data/make_sample_facility_list.py`` (needs ``../shared/data/osm``);
writes ``data/beijing_bupt_facilities_gcj02.csv``.

OSM in Chinese cities lacks most community facilities of the eight scenes
(社区服务站, 警务室, 日间照料中心, 避难场所, 众创空间 …); planners fill them from
their own lists, typically Amap exports in GCJ-02. This script makes such a list
for the tests and the notebooks. **The facilities are illustrative, not real:**
each is placed at the centroid of a real building of the extract (the
residential and unnamed buildings, taken in a fixed order spread across the
area), given a descriptive name marked 示例 (sample), an Amap-style type code or
free-text category, and its WGS 84 position converted to GCJ-02, exactly as an
Amap export would carry it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import osmnx as ox
import pandas as pd

from planner.coords import transform

HERE = Path(__file__).resolve().parent
SOURCE = HERE.parent.parent / "shared" / "data" / "osm" / "beijing-haidian-bupt" / "map.osm"

SAMPLE = [  # name, Amap-style type code, category text
    ("北邮社区服务站（示例）", "", "社区服务;社区服务站"),
    ("西土城社区党群服务中心（示例）", "", "社区服务;党群服务中心"),
    ("北邮社区警务室（示例）", "", "公检法机构;警务室"),
    ("北邮老年人日间照料中心（示例）", "", "养老服务;日间照料"),
    ("北邮社区卫生服务站（示例）", "090300", "医疗保健服务;诊所"),
    ("北邮普惠托育点（示例）", "", "托育服务"),
    ("北邮社区食堂（示例）", "", "餐饮服务;社区食堂"),
    ("北邮应急避难场所（示例）", "", "公共设施;应急避难场所"),
    ("北邮微型消防站（示例）", "", "公共设施;微型消防站"),
    ("北邮众创空间（示例）", "", "公司企业;众创空间"),
    ("西土城街道就业服务站（示例）", "", "政府机构;就业服务"),
    ("北邮社区文化活动站（示例）", "", "科教文化服务;文化活动站"),
    ("北邮人民调解室（示例）", "", "社会团体;人民调解"),
]


def main() -> None:
    buildings = ox.features_from_xml(SOURCE, tags={"building": True})
    buildings = buildings[buildings.geometry.geom_type == "Polygon"].reset_index()
    buildings = buildings.sort_values("id").reset_index(drop=True)
    metric = buildings.to_crs(buildings.estimate_utm_crs())
    # spread the sample over the area: every k-th building in id order
    picks = np.linspace(0, len(metric) - 1, len(SAMPLE)).round().astype(int)
    centroids = metric.geometry.iloc[picks].centroid.to_crs(4326)
    lon, lat = transform(centroids.x.to_numpy(), centroids.y.to_numpy(), "wgs84", "gcj02")
    table = pd.DataFrame({
        "名称": [name for name, _, _ in SAMPLE],
        "typecode": [code for _, code, _ in SAMPLE],
        "类别": [category for _, _, category in SAMPLE],
        "经度": np.round(lon, 7), "纬度": np.round(lat, 7),
        "osm_building": buildings["id"].iloc[picks].to_numpy(),
    })
    out = HERE / "beijing_bupt_facilities_gcj02.csv"
    table.to_csv(out, index=False, encoding="utf-8")
    print(f"wrote {out} ({len(table)} rows, GCJ-02)")


if __name__ == "__main__":
    main()
