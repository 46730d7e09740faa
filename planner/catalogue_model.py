"""The catalogue's model: scenes, facility types, tag rules, name and residence rules.

Plain frozen data, read from TOML by :mod:`planner.catalogue` and applied to
OSM features by :mod:`planner.classification`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from planner.tag_syntax import CONDITION

LEVELS = ("block", "5min", "10min", "15min")
NAME_KEYS = ("name", "name:zh", "official_name")


@dataclass(frozen=True)
class Condition:
    """One ``key op value`` test on a feature's tags."""

    key: str
    op: str  # "=", "!=", "*", "absent", "~"
    values: tuple[str, ...] = ()

    def evaluate(self, features: pd.DataFrame | TagTable) -> np.ndarray:
        table = features if isinstance(features, TagTable) else TagTable(features)
        codes, uniques = table.column(self.key)
        present = codes >= 0
        if self.op == "absent":
            return ~present
        if self.op == "*":
            return present
        # the test runs on the column's distinct values, then spreads by code
        if self.op == "~":
            hit = pd.Series(uniques).astype("string").str.contains(
                self.values[0], regex=True, na=False).to_numpy(dtype=bool)
        else:
            hit = uniques.isin(self.values)
        inside = np.append(np.asarray(hit, dtype=bool), False)[codes]  # code -1: missing
        return ~inside if self.op == "!=" else inside


class TagTable:
    """The tag columns of features, each factorised once on first use.

    Tag rules test a column against a few values, and most columns hold few
    distinct values: testing those and spreading the answer by code spares
    a pass over every feature for each of the catalogue's hundred-odd rules.

    Parameters
    ----------
    features
        The features, one tag per column (missing tags are null).
    """

    def __init__(self, features: pd.DataFrame) -> None:
        self.features = features
        self._columns: dict[str, tuple[np.ndarray, pd.Index]] = {}

    def __len__(self) -> int:
        return len(self.features)

    def column(self, key: str) -> tuple[np.ndarray, pd.Index]:
        """``(codes, distinct values)`` of one tag; code -1 where the tag is missing."""
        if key not in self._columns:
            if key in self.features.columns:
                codes, uniques = pd.factorize(self.features[key])
                self._columns[key] = (np.asarray(codes), pd.Index(uniques))
            else:
                self._columns[key] = (np.full(len(self.features), -1, dtype=np.intp),
                                      pd.Index([], dtype=object))
        return self._columns[key]


@dataclass(frozen=True)
class TagRule:
    """Conditions that must all hold; parsed from ``"a=b & !c & d~x"``."""

    text: str
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, text: str) -> TagRule:
        conditions = []
        for part in text.split("&"):
            match = CONDITION.match(part.strip())
            if match is None:
                message = f"cannot parse condition {part.strip()!r}"
                raise ValueError(message)
            if match["absent"]:
                conditions.append(Condition(match["absent"], "absent"))
                continue
            key, op, value = match["key"], match["op"], match["value"].strip()
            if op == "~":
                re.compile(value)
                conditions.append(Condition(key, "~", (value,)))
            elif op == "=" and value == "*":
                conditions.append(Condition(key, "*"))
            else:
                values = tuple(v.strip() for v in value.split("|"))
                if any(not v or re.search(r"[=~!]", v) for v in values):
                    message = f"cannot parse values in {part.strip()!r}"
                    raise ValueError(message)
                conditions.append(Condition(key, op, values))
        return cls(text, tuple(conditions))

    @property
    def keys(self) -> set[str]:
        return {condition.key for condition in self.conditions}

    def evaluate(self, features: pd.DataFrame | TagTable) -> np.ndarray:
        table = features if isinstance(features, TagTable) else TagTable(features)
        mask = np.ones(len(table), dtype=bool)
        for condition in self.conditions:
            mask &= condition.evaluate(table)
        return mask


@dataclass(frozen=True)
class Scene:
    id: str
    zh: str
    en: str


@dataclass(frozen=True)
class FacilityType:
    """A facility type of a scene, judged against its own walking threshold.

    ``tags`` are firm: a feature they select is of the type unless its name
    rules it out (``exclude_names``) or only mentions the type. ``weak_tags``
    select a feature only while its name does not decide otherwise (a school
    without ``isced:level``: its name says primary or middle).
    ``name_decides`` are name patterns that settle the type among
    ``exclusive_with`` (symmetric): a feature whose name decides for one type
    of the group loses the others of the group it had only by weak tags or by
    name.
    """

    id: str
    scene: str
    zh: str
    en: str
    level: str
    threshold_m: float
    tags: tuple[TagRule, ...]
    names: tuple[str, ...]
    exclude_names: tuple[str, ...]
    min_floor_area_m2: float | None
    source: str
    verified: bool
    note: str = ""
    weak_tags: tuple[TagRule, ...] = ()
    name_decides: tuple[str, ...] = ()
    exclusive_with: tuple[str, ...] = ()

    def label(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


@dataclass(frozen=True)
class NameRules:
    """When a name keyword does not count (the ``[name_rules]`` table).

    Attributes
    ----------
    mention_prefixes
        Patterns that, found before the keyword in the same name, make the
        name a mere mention (原…, 规划…); ``^`` anchors at the name's start.
    mention_suffixes
        Patterns that, following the keyword and running to the end of the
        name, make it a mention (…停车场, …站).
    conflicting_tags
        Tag rules of features whose own tags say they are something else (a
        car park, a road, a stop, a construction site): their names never match.
    """

    mention_prefixes: tuple[str, ...] = ()
    mention_suffixes: tuple[str, ...] = ()
    conflicting_tags: tuple[TagRule, ...] = ()

    def genuine_pattern(self, keywords: Sequence[str]) -> str:
        """Regex finding a keyword that is not a mention (``re.M``: one name per line)."""
        keyword = "|".join(f"(?:{word})" for word in keywords)
        pattern = f"(?:{keyword})"
        if self.mention_suffixes:
            suffix = "|".join(f"(?:{word})" for word in self.mention_suffixes)
            pattern += rf"(?!(?:{suffix})\s*$)"
        if self.mention_prefixes:
            prefix = "|".join(f"(?:{word})" for word in self.mention_prefixes)
            pattern = f"^(?:(?!{prefix}).)*?{pattern}"
        return pattern

    def conflicts(self, features: pd.DataFrame | TagTable) -> np.ndarray:
        """Mask of features whose tags say they are something else."""
        return any_rule(self.conflicting_tags, features)


@dataclass(frozen=True)
class ResidenceRules:
    """Which buildings are homes (the ``[residences]`` table).

    A building selected by ``building_tags`` is a home unless it stands in a
    non-residential precinct (``precinct_tags`` polygons), carries a use tag of
    ``non_home_tags`` or has a name containing ``non_home_names`` — and even
    then it is a home when ``housing_tags`` or ``housing_names`` say so.
    ``weak_non_home_names`` (大厦, 中心, …馆) count only on a building that no
    housing tag marks as a home: XX大厦 tagged ``apartments`` stays a home.
    """

    building_tags: tuple[TagRule, ...]
    housing_tags: tuple[TagRule, ...]
    housing_names: tuple[str, ...]
    non_home_tags: tuple[TagRule, ...]
    non_home_names: tuple[str, ...]
    precinct_tags: tuple[TagRule, ...]
    weak_non_home_names: tuple[str, ...] = ()

    @property
    def keys(self) -> set[str]:
        rules = (*self.building_tags, *self.housing_tags, *self.non_home_tags,
                 *self.precinct_tags)
        return set().union(*(rule.keys for rule in rules)) if rules else set()


def tag_number(values: pd.Series, pattern: str) -> pd.Series:
    """The number a regex (one group) finds in each tag value; NaN where none.

    Each distinct value is parsed once (a city has few distinct ``layer`` or
    ``building:levels`` values and hundreds of thousands of objects).
    """
    codes, uniques = pd.factorize(values)
    text = pd.Series(uniques, dtype=object).astype("string").str.extract(pattern)[0]
    number = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return pd.Series(np.append(number, np.nan)[codes], index=values.index)


def any_rule(rules: Sequence[TagRule], features: pd.DataFrame | TagTable) -> np.ndarray:
    """Mask of features matching at least one of ``rules``.

    Give a :class:`TagTable` of the features when testing many rules on them.
    """
    table = features if isinstance(features, TagTable) else TagTable(features)
    mask = np.zeros(len(table), dtype=bool)
    for rule in rules:
        mask |= rule.evaluate(table)
    return mask


@dataclass
class Catalogue:
    """Scenes and facility types, in file order, with the name and residence rules."""

    version: str
    name_zh: str
    name_en: str
    scenes: list[Scene]
    types: list[FacilityType]
    path: Path | None = None
    category_map: list[dict] = field(default_factory=list)
    name_rules: NameRules = field(default_factory=NameRules)
    residences: ResidenceRules | None = None

    @property
    def type_ids(self) -> list[str]:
        return [facility_type.id for facility_type in self.types]

    @property
    def scene_ids(self) -> list[str]:
        return [scene.id for scene in self.scenes]

    def type(self, type_id: str) -> FacilityType:
        for facility_type in self.types:
            if facility_type.id == type_id:
                return facility_type
        raise KeyError(type_id)

    def scene(self, scene_id: str) -> Scene:
        for scene in self.scenes:
            if scene.id == scene_id:
                return scene
        raise KeyError(scene_id)

    def thresholds_m(self) -> dict[str, float]:
        return {facility_type.id: facility_type.threshold_m for facility_type in self.types}

    def feature_keys(self) -> list[str]:
        """Every OSM key a tag rule reads (types, name rules, residences), sorted."""
        keys = set()
        for facility_type in self.types:
            for rule in (*facility_type.tags, *facility_type.weak_tags):
                keys |= rule.keys
        for rule in self.name_rules.conflicting_tags:
            keys |= rule.keys
        if self.residences is not None:
            keys |= self.residences.keys
        return sorted(keys)

    def types_frame(self) -> pd.DataFrame:
        """One row per type with its scene's labels; for tables and reports."""
        scenes = {scene.id: scene for scene in self.scenes}
        return pd.DataFrame([
            {"type_id": t.id, "scene_id": t.scene, "scene_zh": scenes[t.scene].zh,
             "scene_en": scenes[t.scene].en, "type_zh": t.zh, "type_en": t.en,
             "level": t.level, "threshold_m": t.threshold_m,
             "min_floor_area_m2": t.min_floor_area_m2, "verified": t.verified,
             "source": t.source}
            for t in self.types])
