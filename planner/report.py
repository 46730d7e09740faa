"""The per-run report (``report.html``): one self-contained page, Chinese or English.

For every community: the score of each scene, the coverage of every facility
type against its threshold, what is missing, and, where sites were ranked, the
best candidates. Charts are inline SVG so that the page needs no script, no
network and no plotting library, and its text is rendered by the reader's
browser fonts (Chinese included).
"""

from __future__ import annotations

import html
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from planner import settings
from planner.catalogue import Catalogue
from planner.colours import score_colour, score_colours

TEXT = {
    "zh": {
        "title": "十五分钟社区生活圈 · 服务场景评估报告",
        "area": "研究范围", "communities": "社区", "population": "人口",
        "source": {"user": "规划提供的社区边界", "osm": "OSM 边界",
                   "grid": "规则网格（非真实社区）"},
        "overview": "总览：各社区场景得分", "score": "总分",
        "score_data": "有数据总分", "scene": "场景", "type": "设施类型",
        "level": "层级", "threshold": "步行距离阈值", "coverage": "覆盖率",
        "covered": "覆盖人口", "missing": "缺失（无人可达）", "weak": "不足 50%",
        "none_missing": "无", "candidates": "推荐选址", "rank": "序号",
        "type_rank": "类型内排名", "site": "选址",
        "added": "新增覆盖人口", "facilities": "设施来源",
        "method": ("覆盖率 = 社区人口中，沿步行网络到最近一处该类设施的距离不超过阈值的比例；"
                   "场景得分 = 该场景各类设施覆盖率的平均；总分 = 八个场景得分的平均。"
                   "各类设施按各自阈值评价，高层级设施不替代低层级需求。"),
        "unverified": "注：目录中的距离阈值尚未与标准正式文本核对（verified = false）。",
        "m": "米", "people": "人", "no_data": "无数据",
        "more": "详情仅列出得分最低的 {worst} 个和最高的 {best} 个社区；另有 {n} 个社区见上表，"
                "完整数据见 summary.csv。",
        "levels": {"block": "街坊", "5min": "5分钟", "10min": "10分钟", "15min": "15分钟"},
    },
    "en": {
        "title": "15-minute community life circle · service scene report",
        "area": "Area", "communities": "Communities", "population": "Population",
        "source": {"user": "planner's community boundaries", "osm": "OSM boundaries",
                   "grid": "regular grid (not real communities)"},
        "overview": "Overview: scene scores per community", "score": "Score",
        "score_data": "Score (types with data)", "scene": "Scene",
        "type": "Facility type", "level": "Level", "threshold": "Walking threshold",
        "coverage": "Coverage", "covered": "Covered population",
        "missing": "Missing (nobody within reach)", "weak": "Below 50 %",
        "none_missing": "none", "candidates": "Best candidate sites", "rank": "#",
        "type_rank": "Rank in type",
        "site": "Site", "added": "Residents added", "facilities": "Facilities by origin",
        "method": ("Coverage = share of the community's population whose walking distance on "
                   "the network to the nearest facility of the type is within its threshold; "
                   "a scene's score is the mean coverage of its types; the overall score is "
                   "the mean of the eight scene scores. Each type is judged against its own "
                   "threshold: levels do not substitute."),
        "unverified": ("Note: the catalogue's thresholds are not yet checked against the "
                       "official texts (verified = false)."),
        "m": "m", "people": "residents", "no_data": "no data",
        "more": ("Details follow for the {worst} lowest and the {best} highest scores; "
                 "{n} more communities are in the table above, and summary.csv has every "
                 "figure."),
        "levels": {"block": "block", "5min": "5-min", "10min": "10-min", "15min": "15-min"},
    },
}

STYLE = """
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei","PingFang SC",
 "Source Han Sans SC",sans-serif;margin:2em auto;max-width:1100px;color:#222;line-height:1.45}
h1{font-size:1.6em}h2{border-bottom:2px solid #ddd;padding-bottom:.2em;margin-top:2em}
table{border-collapse:collapse;margin:.5em 0 1em}th,td{border:1px solid #ddd;padding:3px 7px;
 font-size:.9em}th{background:#f4f4f4}td.num{text-align:right}.missing{background:#fde0dd}
.weak{background:#fff3cd}.tag{display:inline-block;background:#fde0dd;border-radius:3px;
 padding:0 5px;margin:1px}.note{color:#666;font-size:.9em}section.community{page-break-inside:avoid}
.nodata{color:#888;font-style:italic}
"""


def _percent(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{100 * float(value):.0f}%"


def bar_chart(labels: list[str], values: list[float], *, width: int = 520) -> str:
    """Horizontal bars (0–100 %) as inline SVG, one per label."""
    row, label_width = 22, 150
    height = row * len(labels) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img">']
    for index, (label, value) in enumerate(zip(labels, values, strict=True)):
        y = 3 + index * row
        share = 0.0 if pd.isna(value) else float(np.clip(value, 0, 1))
        bar = (width - label_width - 50) * share
        parts.append(f'<text x="{label_width - 6}" y="{y + 15}" text-anchor="end" '
                     f'font-size="13">{html.escape(label)}</text>')
        parts.append(f'<rect x="{label_width}" y="{y + 2}" width="{width - label_width - 50}" '
                     f'height="16" fill="#eee"/>')
        parts.append(f'<rect x="{label_width}" y="{y + 2}" width="{bar:.1f}" height="16" '
                     f'fill="{score_colour(value)}"/>')
        parts.append(f'<text x="{label_width + bar + 4:.1f}" y="{y + 15}" font-size="12">'
                     f'{_percent(value)}</text>')
    parts.append("</svg>")
    return "".join(parts)


def render_report(communities: pd.DataFrame, summary: pd.DataFrame, catalogue: Catalogue, *,
                  lang: str = "zh", area: str = "", facility_origin: str = "",
                  sites: pd.DataFrame | None = None, top_sites: int = 5) -> str:
    """The report as an HTML string.

    Parameters
    ----------
    communities
        The ``communities`` layer (``community_id``, ``name``, ``population``,
        ``score_<scene>``, ``score``, ``community_source``).
    summary
        ``summary.csv``; where it has ``facilities_in_area``, a type with 0
        there reads "no data" instead of 0%.
    catalogue
        For the labels and levels.
    lang
        ``zh`` or ``en``.
    area, facility_origin
        One-line descriptions for the header.
    sites
        Ranked candidates (``sites.csv``) with ``rank``, ``site_id`` or ``name``
        (or ``label``), ``type_id``, ``added_population`` and ``communities``
        (the ids that gain).
    top_sites
        Candidates listed per community.
    """
    labels = _Labels(catalogue, lang)
    communities = communities.sort_values("community_id", kind="stable")
    detailed = detailed_communities(communities)
    out = _header(communities, labels, area, facility_origin)
    no_data = _scenes_without_data(summary, catalogue)
    out += _overview(communities, detailed, labels, no_data)
    # only the detailed communities' rows: a city's summary has half a million
    chosen = _with_data_status(summary[summary["community_id"].isin(detailed["community_id"])])
    by_community = _type_rows(chosen, labels)
    for row in detailed.itertuples():
        rows = by_community.get(row.community_id)
        if rows is not None:
            out += _community_section(row, rows, labels, sites, top_sites, no_data)
    out.append("</body></html>")
    return "\n".join(out)


def detailed_communities(communities: pd.DataFrame, worst: int | None = None,
                         best: int | None = None) -> pd.DataFrame:
    """The communities given a section of their own: the lowest scores, then the highest.

    ``worst`` and ``best`` default to :data:`planner.settings.report_worst_communities`
    and :data:`planner.settings.report_best_communities`; ties go by
    ``community_id``, communities without a score come last among the worst.
    """
    worst = settings.report_worst_communities if worst is None else worst
    best = settings.report_best_communities if best is None else best
    ordered = communities.sort_values(["score", "community_id"], kind="stable",
                                      na_position="last")
    low = ordered.head(worst)
    rest = ordered.iloc[len(low):].dropna(subset=["score"])
    high = rest.iloc[::-1].head(best) if best > 0 else rest.iloc[:0]
    return pd.concat([low, high])


class _Labels:
    """The report's words in one language, and the catalogue's names in it."""

    def __init__(self, catalogue: Catalogue, lang: str) -> None:
        self.lang = lang
        self.text = TEXT[lang]
        self.type = {t.id: (t.zh if lang == "zh" else t.en) for t in catalogue.types}
        self.scene = {s.id: (s.zh if lang == "zh" else s.en) for s in catalogue.scenes}
        self.level = {t.id: t.level for t in catalogue.types}
        self.scenes = catalogue.scenes


def _scenes_without_data(summary: pd.DataFrame, catalogue: Catalogue) -> set[str]:
    """Scenes none of whose types has a facility in the area (``facilities_in_area`` 0)."""
    if "facilities_in_area" not in summary.columns:
        return set()
    found = pd.to_numeric(summary["facilities_in_area"], errors="coerce").fillna(1)
    # the distinct ids only: a city's summary has half a million rows
    with_data = set(summary.loc[found.to_numpy() != 0, "type_id"].unique())
    return {t.scene for t in catalogue.types} - {t.scene for t in catalogue.types
                                                  if t.id in with_data}


def _with_data_status(summary: pd.DataFrame) -> pd.DataFrame:
    """``summary`` with ``has_data``: False where ``facilities_in_area`` is 0 (True without it)."""
    summary = summary.copy()
    if "facilities_in_area" in summary.columns:
        summary["has_data"] = pd.to_numeric(summary["facilities_in_area"],
                                            errors="coerce").fillna(1).to_numpy() != 0
    else:
        summary["has_data"] = True
    return summary


def _header(communities: pd.DataFrame, labels: _Labels, area: str,
            facility_origin: str) -> list[str]:
    text = labels.text
    source = str(communities["community_source"].iloc[0]) if "community_source" in \
        communities.columns and len(communities) else "user"
    out = [f'<!DOCTYPE html><html lang="{"zh-CN" if labels.lang == "zh" else "en"}"><head>'
           f'<meta charset="utf-8"><title>{html.escape(text["title"])}</title>'
           f"<style>{STYLE}</style></head><body>",
           f'<h1>{html.escape(text["title"])}</h1>',
           f'<p>{text["area"]}: <b>{html.escape(area)}</b> · {text["communities"]}: '
           f'{len(communities)} ({html.escape(text["source"].get(source, source))}) · '
           f'{text["population"]}: {communities["population"].sum():,.0f}</p>']
    if facility_origin:
        out.append(f'<p>{text["facilities"]}: {html.escape(facility_origin)}</p>')
    out.append(f'<p class="note">{html.escape(text["method"])}<br>'
               f'{html.escape(text["unverified"])}</p>')
    return out


def _percent_cells(values: np.ndarray) -> np.ndarray:
    """``<td>`` cells of shares as whole percent on their score colour, built from whole columns."""
    values = np.asarray(values, dtype=float)
    text = np.where(np.isnan(values), "–",
                    np.char.add(np.round(np.nan_to_num(values) * 100).astype(int).astype(str),
                                "%"))
    colours = score_colours(values).astype(str)
    return np.char.add(np.char.add(np.char.add('<td class="num" style="background:', colours),
                                   '40">'), np.char.add(text, "</td>"))


def _overview(communities: pd.DataFrame, detailed: pd.DataFrame, labels: _Labels,
              no_data: set[str]) -> list[str]:
    """The bar chart of the detailed communities' scores and the table of every community.

    The table is built from whole columns (numpy string operations), one
    string per row: a city's 9,000 communities take a fraction of a second.
    Scenes in ``no_data`` read "no data" rather than a red 0%; the score over
    the types with data follows the overall one when the layer has it.
    """
    text, scenes = labels.text, labels.scenes
    out = [f'<h2>{text["overview"]}</h2>',
           bar_chart([f"{row.name}" for row in detailed.itertuples()],
                     detailed["score"].tolist())]
    header = "".join(f"<th>{html.escape(labels.scene[s.id])}</th>" for s in scenes)
    with_data = "score_data" in communities.columns
    last = f'<th>{text["score_data"]}</th>' if with_data else ""
    out.append(f'<table><tr><th>{text["communities"]}</th><th>{text["population"]}</th>'
               f'{header}<th>{text["score"]}</th>{last}</tr>')
    names = np.array([html.escape(str(name)) for name in communities["name"]], dtype=str)
    population = pd.to_numeric(communities["population"], errors="coerce").fillna(0)
    rows = np.char.add(np.char.add("<tr><td>", names), '</td><td class="num">')
    rows = np.char.add(rows, np.array([f"{value:,.0f}" for value in population], dtype=str))
    rows = np.char.add(rows, "</td>")
    no_data_cell = f'<td class="num nodata">{text["no_data"]}</td>'
    for scene in scenes:
        cells = (np.full(len(communities), no_data_cell) if scene.id in no_data
                 else _percent_cells(communities[f"score_{scene.id}"]))
        rows = np.char.add(rows, cells)
    for column in ("score", "score_data")[:1 + with_data]:
        score = np.asarray(communities[column], dtype=float)
        score_text = np.where(np.isnan(score), "–", np.char.add(
            np.round(np.nan_to_num(score) * 100).astype(int).astype(str), "%"))
        rows = np.char.add(rows, np.char.add(np.char.add('<td class="num"><b>', score_text),
                                             "</b></td>"))
    rows = np.char.add(rows, "</tr>")
    out.append("\n".join(rows.tolist()))
    out.append("</table>")
    if len(detailed) < len(communities):
        worst = min(settings.report_worst_communities, len(detailed))
        more = text["more"].format(n=len(communities) - len(detailed), worst=worst,
                                   best=len(detailed) - worst)
        out.append(f'<p class="note">{more}</p>')
    return out


#: The summary's columns a row of a community's table shows (:func:`_type_row`).
TYPE_ROW_FIELDS = ("community_id", "scene_id", "type_id", "threshold_m", "coverage",
                   "covered_population", "population", "has_data")


def _type_rows(chosen: pd.DataFrame, labels: _Labels) -> dict:
    """Per community of ``chosen`` (in order of appearance): the ids of the types nobody
    reaches (among those with data) and the table rows (:func:`_type_row`), in the
    summary's order.

    The columns are read once as lists: no sub-frame per community.
    """
    columns = {name: chosen[name].tolist() for name in TYPE_ROW_FIELDS}
    by_community: dict = {}
    for values in zip(*columns.values(), strict=True):
        item = _TypeRow(*values)
        missing, rows = by_community.setdefault(item.community_id, ([], []))
        if item.coverage == 0 and item.has_data:
            missing.append(item.type_id)
        rows.append(_type_row(item, labels))
    return by_community


class _TypeRow(NamedTuple):
    """One row of the summary, as :func:`_type_row` reads it."""

    community_id: str
    scene_id: str
    type_id: str
    threshold_m: float
    coverage: float
    covered_population: float
    population: float
    has_data: bool


def _community_section(row, rows: tuple[list[str], list[str]], labels: _Labels,
                       sites: pd.DataFrame | None, top_sites: int,
                       no_data: set[str] = frozenset()) -> list[str]:
    """One community: its scene chart, the types nobody reaches, the table of every type.

    ``rows``: the ids of the types nobody reaches and the table's rows (:func:`_type_rows`).
    """
    text, scenes = labels.text, labels.scenes
    out = [f'<section class="community" id="c-{html.escape(str(row.community_id))}">'
           f"<h2>{html.escape(str(row.name))} ({html.escape(str(row.community_id))})"
           f"</h2><p>{text['population']}: {row.population:,.0f} · {text['score']}: "
           f"<b>{_percent(row.score)}</b></p>",
           bar_chart([labels.scene[s.id] + (f" ({text['no_data']})" if s.id in no_data else "")
                      for s in scenes],
                     [getattr(row, f"score_{s.id}") for s in scenes])]
    missing, type_rows = rows
    tags = "".join(f'<span class="tag">{html.escape(labels.type[t])}</span>' for t in missing)
    out.append(f'<p>{text["missing"]}: {tags or text["none_missing"]}</p>')
    out.append(f'<table><tr><th>{text["scene"]}</th><th>{text["type"]}</th>'
               f'<th>{text["level"]}</th><th>{text["threshold"]}</th>'
               f'<th>{text["coverage"]}</th><th>{text["covered"]}</th></tr>')
    out += type_rows
    out.append("</table>")
    if sites is not None and len(sites):
        out.append(_sites_table(sites, row.community_id, labels.type, text, top_sites))
    out.append("</section>")
    return out


def _type_row(item, labels: _Labels) -> str:
    text = labels.text
    if not item.has_data:
        status, coverage = "nodata", text["no_data"]
    else:
        status = ("missing" if item.coverage == 0 else
                  "weak" if pd.notna(item.coverage) and item.coverage < 0.5 else "")
        coverage = _percent(item.coverage)
    return (f'<tr class="{status}"><td>{html.escape(labels.scene[item.scene_id])}</td>'
            f"<td>{html.escape(labels.type[item.type_id])}</td>"
            f"<td>{text['levels'][labels.level[item.type_id]]}</td>"
            f'<td class="num">{item.threshold_m:,.0f} {text["m"]}</td>'
            f'<td class="num">{coverage}</td>'
            f'<td class="num">{item.covered_population:,.0f} / {item.population:,.0f}</td>'
            "</tr>")


def _sites_table(sites: pd.DataFrame, community_id: str, label: dict, text: dict,
                 top: int) -> str:
    gains = sites["communities"].fillna("").astype(str).str.split(",").map(
        lambda ids: community_id in ids)
    chosen = sites[gains].sort_values(["added_population", "rank"],
                                      ascending=[False, True]).head(top)
    if len(chosen) == 0:
        return ""
    site_column = next(column for column in ("label", "name", "site_id")
                       if column in chosen.columns)
    # the rows are ordered by residents added across types, so number them here and
    # give each site's rank within its type in a column of its own
    rows = "".join(
        f"<tr><td>{number}</td><td>{html.escape(str(item[site_column]))}</td>"
        f"<td>{html.escape(label.get(item['type_id'], item['type_id']))}</td>"
        f'<td class="num">{int(item["rank"])}</td>'
        f'<td class="num">{item["added_population"]:,.0f}</td></tr>'
        for number, (_, item) in enumerate(chosen.iterrows(), start=1))
    return (f'<h3>{text["candidates"]}</h3><table><tr><th>{text["rank"]}</th>'
            f'<th>{text["site"]}</th><th>{text["type"]}</th><th>{text["type_rank"]}</th>'
            f'<th>{text["added"]}</th></tr>{rows}</table>')


def write_report(path: Path, communities: pd.DataFrame, summary: pd.DataFrame,
                 catalogue: Catalogue, **options) -> None:
    """Write :func:`render_report` to ``path`` (UTF-8)."""
    Path(path).write_text(render_report(communities, summary, catalogue, **options),
                          encoding="utf-8")
