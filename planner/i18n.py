"""Language of labels: which one to use, and short bilingual summaries."""

from __future__ import annotations

import re

CJK = re.compile(r"[\u4e00-\u9fff]")


def detect_lang(names) -> str:
    """Chinese when at least a fifth of the facility names contain CJK characters."""
    names = [name for name in names if isinstance(name, str) and name]
    if not names:
        return "en"
    return "zh" if sum(bool(CJK.search(name)) for name in names) * 5 >= len(names) else "en"


def facility_origin(analysis, lang: str) -> str:
    """One line: how many facilities came from OSM tags, OSM names and the lists."""
    facilities = analysis.facilities.drop_duplicates("facility_id")
    counts = facilities["match"].value_counts()
    total = max(len(facilities), 1)
    labels = ({"tag": "OSM 标签", "name": "OSM 名称", "list": "设施清单"} if lang == "zh"
              else {"tag": "OSM tags", "name": "OSM names", "list": "facility lists"})
    parts = [f"{labels[key]} {counts.get(key, 0)} ({counts.get(key, 0) / total:.0%})"
             for key in ("tag", "name", "list")]
    conflicts = 0 if analysis.name_conflicts is None else len(analysis.name_conflicts)
    head = "设施" if lang == "zh" else "facilities"
    tail = (f"; 名称匹配多类 {conflicts} 处, 见 name_matches.csv" if lang == "zh"
            else f"; {conflicts} names match several types, see name_matches.csv")
    return f"{head} {len(facilities)}: " + ", ".join(parts) + (tail if conflicts else "")
