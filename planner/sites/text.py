"""The site results as text tables for the terminal, in Chinese or English."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from planner.i18n import SITE_KIND_LABELS
from planner.sites.run import SitesResult
from planner.sites.tables import OUTSIDE, type_name

#: premises statuses in Chinese, for statuses written in another language.
STATUS_ZH = {"vacant": "空置", "idle": "闲置", "in use": "在用"}
#: HiGHS model statuses in Chinese (others are shown as HiGHS gives them).
SOLVER_STATUS_ZH = {"Optimal": "最优", "Time limit reached": "达到时限",
                    "Infeasible": "不可行", "not run": "未运行", "empty": "无"}
_CJK = re.compile(r"[\u3400-\u9fff]")
_DISPLAY = {"display.width": 200, "display.max_columns": 20,
            "display.unicode.east_asian_width": True}


def type_label(result: SitesResult, type_id: str, lang: str) -> str:
    """A type's short name in ``lang`` (its id when the result does not know it)."""
    return type_name(result.parameters.get("type_names", {}), type_id, lang, short=True)


def status_label(premises: pd.DataFrame, lang: str) -> np.ndarray:
    """Premises statuses as the user sees them.

    In Chinese a status the user wrote in Chinese is shown as written (闲置,
    低效 …), other spellings by their Chinese name; in English the normalised
    status (vacant, idle, in use).
    """
    status = premises["status"].astype(str)
    if lang != "zh":
        return status.to_numpy(object)
    written = (premises["status_input"] if "status_input" in premises
               else pd.Series(None, index=premises.index, dtype=object))
    chinese = written.astype("string").str.contains(_CJK).fillna(False).astype(bool)
    return np.where(chinese, written.astype(str), status.map(STATUS_ZH).fillna(status))


def ranking_table(result: SitesResult, *, top: int = 3, lang: str = "en") -> str:
    """The first ``top`` sites of every type as a fixed-width text table."""
    ranking = result.ranking
    if len(ranking) == 0:
        return "(no candidate site adds a resident)" if lang == "en" else "（无候选点可新增覆盖）"
    shown = pd.DataFrame(ranking[ranking["rank"] <= top].drop(columns="geometry"))
    zh = lang == "zh"
    site = "label" if "label" in shown else "name"
    table = pd.DataFrame({
        # type names in Chinese; the short ids read well enough in English
        "类型" if zh else "type": [type_label(result, t, lang) for t in shown["type_id"]]
        if zh else shown["type_id"].to_numpy(object),
        "名次" if zh else "rank": shown["rank"].to_numpy(int),
        "地点" if zh else "site": shown[site].map(_shorten).to_numpy(object),
        "来源" if zh else "kind": shown["kind"].map(SITE_KIND_LABELS[lang]).fillna(shown["kind"])
        .to_numpy(object),
        "新增人口" if zh else "adds": shown["added_population"].round(0).to_numpy(float),
        "累计覆盖率%" if zh else "coverage %": (shown["cumulative_coverage"] * 100).round(1)
        .to_numpy(float),
        "受益社区" if zh else "communities": shown["community_gains"].map(
            lambda text: _outside(text, lang)).map(_shorten).to_numpy(object),
    })
    notes = [_optimal_note(result, row, lang) for row in result.optimal.itertuples()]
    with pd.option_context(*_options(60)):
        return table.to_string(index=False) + "\n" + "\n".join(notes)


def _optimal_note(result: SitesResult, row, lang: str) -> str:
    label = type_label(result, row.type_id, lang)
    if lang == "zh":
        status = SOLVER_STATUS_ZH.get(row.status, row.status)
        return (f"  {label}：贪心 {row.greedy_population:.0f} / 最优 "
                f"{row.optimal_population:.0f}（比值 {row.greedy_ratio:.3f}，求解器最优性差距 "
                f"{row.mip_gap:.2%}，{status}）")
    return (f"  {label}: greedy {row.greedy_population:.0f} / optimal "
            f"{row.optimal_population:.0f} (ratio {row.greedy_ratio:.3f}, solver's optimality gap "
            f"{row.mip_gap:.2%}, {row.status})")


def _outside(text, lang: str):
    """``(outside)`` in the reader's language."""
    if lang != "zh" or not isinstance(text, str):
        return text
    return text.replace(OUTSIDE, "（社区外）")


def _options(width: int) -> list:
    options = [item for pair in _DISPLAY.items() for item in pair]
    return [*options, "display.max_colwidth", width]


def _shorten(text, width: int = 40):
    if not isinstance(text, str) or len(text) <= width:
        return text
    return text[:width - 1] + "…"


def plan_table(result: SitesResult, *, top: int = 10, lang: str = "en") -> str:
    """The first ``top`` rows of the reallocation plan as a fixed-width text table."""
    plan = result.plan
    if len(plan) == 0:
        return "(no premises assigned)" if lang == "en" else "（无可分配的房产）"
    zh = lang == "zh"
    shown = plan.head(top)
    status = pd.Series(status_label(result.premises, lang),
                       index=result.premises["premises_id"].astype(str))
    table = pd.DataFrame({
        "#": shown["order"].to_numpy(int),
        "房产" if zh else "premises": shown["premises_id"].to_numpy(object),
        "名称" if zh else "name": shown["label" if "label" in shown else "name"].map(_shorten)
        .to_numpy(object),
        "状态" if zh else "status": shown["premises_id"].astype(str).map(status)
        .to_numpy(object),
        "面积㎡" if zh else "m²": shown["floor_area_m2"].round(0).astype(int).to_numpy(),
        "改为" if zh else "becomes": [type_label(result, t, lang) for t in shown["type_id"]],
        "新增人口" if zh else "adds": shown["added_population"].round(0).astype(int).to_numpy(),
        "受益社区" if zh else "communities": shown["community_gains"].map(
            lambda text: _shorten(_outside(text, lang))).to_numpy(object),
    })
    with pd.option_context(*_options(40)):
        return table.to_string(index=False, na_rep="-") + "\n" + _plan_note(result, lang)


def _plan_note(result: SitesResult, lang: str) -> str:
    summary = result.reallocation
    if lang == "zh":
        status = SOLVER_STATUS_ZH.get(summary.get("status"), summary.get("status"))
        return (f"{summary.get('premises_available', 0)} 处可用房产中 "
                f"{summary.get('premises_used', 0)} 处共 {summary.get('assignments', 0)} 项设施，"
                f"新增覆盖 {summary.get('added_population', 0):.0f} 人次（按类型累计；HiGHS "
                f"求解{status}，最优性差距 {summary.get('mip_gap', 0):.2%}）")
    return (f"{summary.get('assignments', 0)} facilities in "
            f"{summary.get('premises_used', 0)} of {summary.get('premises_available', 0)} "
            f"available premises newly reach {summary.get('added_population', 0):.0f} "
            f"residents, summed over types (HiGHS: {summary.get('status')}, gap "
            f"{summary.get('mip_gap', 0):.2%})")
