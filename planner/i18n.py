"""Language of labels: which one to use, and short bilingual summaries.

The language of what the user sees is :data:`planner.settings.lang`; the CLI
sets it from ``--lang`` or, failing that, from the system locale
(:func:`system_lang`) before any work, and may refine it from the facility
names once they are read (:func:`detect_lang`). No heavy imports here: the
CLI imports this module to print its help.
"""

from __future__ import annotations

import os
import re
import sys

CJK = re.compile(r"[\u4e00-\u9fff]")

#: Environment variables that name the locale, in the order POSIX consults them.
LOCALE_VARIABLES = ("LC_ALL", "LC_MESSAGES", "LANG", "LANGUAGE")


#: Kinds of candidate sites as shown to the user (``planner sites``).
SITE_KIND_LABELS = {"zh": {"premises": "房产", "candidate": "候选", "generated": "生成"},
                    "en": {"premises": "premises", "candidate": "candidate",
                           "generated": "generated"}}


def system_lang() -> str:
    """``"zh"`` when the system locale is Chinese (``zh_CN.UTF-8`` …), else ``"en"``."""
    for variable in LOCALE_VARIABLES:
        value = os.environ.get(variable, "")
        if value:  # the first variable that is set decides, as for gettext
            return "zh" if value.lower().startswith("zh") else "en"
    return "en"


def current_lang() -> str:
    """The language of labels and messages: :data:`planner.settings.lang`."""
    from planner import settings

    return "zh" if settings.lang == "zh" else "en"


def pick(zh: str, en: str, lang: str | None = None) -> str:
    """``zh`` or ``en`` by ``lang`` (default: :func:`current_lang`)."""
    return zh if (lang or current_lang()) == "zh" else en


def message(english: str, chinese: str) -> str:
    """A message written English first: ``chinese`` when the language is Chinese.

    The order of :func:`pick` reversed, for error and warning texts whose
    English version is written first.
    """
    return chinese if current_lang() == "zh" else english


def detect_lang(names) -> str:
    """Chinese when at least a fifth of the non-empty facility names contain CJK characters.

    A pandas column of strings (a city's hundreds of thousands of names) is
    searched by pyarrow's regular expressions in one call; other sequences
    name by name, with the same rule.
    """
    pandas = sys.modules.get("pandas")  # a pandas column comes with pandas imported
    if pandas is not None and isinstance(names, pandas.Series) \
            and isinstance(names.dtype, pandas.StringDtype):
        text = names[names.notna() & (names.str.len() > 0)]
        chinese, total = int(text.str.contains(CJK.pattern, regex=True).sum()), len(text)
    else:
        text = [name for name in names if isinstance(name, str) and name]
        chinese, total = sum(bool(CJK.search(name)) for name in text), len(text)
    if not total:
        return "en"
    return "zh" if chinese * 5 >= total else "en"


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
