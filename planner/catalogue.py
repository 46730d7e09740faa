"""The eight service scenes, their facility types, and classification of OSM features.

The catalogue is a TOML file shipped in the package (``planner/catalogue.toml``)
and replaceable by the planner's own (``--catalogue FILE``). A feature belongs
to a facility type when one of the type's tag rules holds, or else when its
name (``name``, ``name:zh`` or ``official_name``) contains one of the type's
keywords; the ``match`` column records which (``tag`` | ``name``). One feature
may serve several types.

Tag rule syntax: conditions joined by ``&``, all of which must hold:
``key=v1|v2`` (equals one of), ``key=*`` (present), ``!key`` (absent),
``key!=v1|v2`` (absent or none of), ``key~regex`` (value matches).
"""

from __future__ import annotations

import math
import re
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import NoReturn

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.errors import PlannerError

LEVELS = ("block", "5min", "10min", "15min")
NAME_KEYS = ("name", "name:zh", "official_name")
_KEY = r"[A-Za-z_][\w:.\-]*"
_CONDITION = re.compile(
    rf"^(?:!(?P<absent>{_KEY})|(?P<key>{_KEY})\s*(?P<op>!=|=|~)\s*(?P<value>.+))$")


@dataclass(frozen=True)
class Condition:
    """One ``key op value`` test on a feature's tags."""

    key: str
    op: str  # "=", "!=", "*", "absent", "~"
    values: tuple[str, ...] = ()

    def evaluate(self, features: pd.DataFrame) -> np.ndarray:
        column = features[self.key] if self.key in features.columns else pd.Series(
            [None] * len(features), index=features.index, dtype="object")
        present = column.notna().to_numpy()
        if self.op == "absent":
            return ~present
        if self.op == "*":
            return present
        if self.op == "~":
            pattern = self.values[0]
            return column.astype("string").str.contains(pattern, regex=True, na=False)\
                .to_numpy(dtype=bool)
        inside = column.isin(self.values).to_numpy()
        return inside if self.op == "=" else ~inside


@dataclass(frozen=True)
class TagRule:
    """Conditions that must all hold; parsed from ``"a=b & !c & d~x"``."""

    text: str
    conditions: tuple[Condition, ...]

    @classmethod
    def parse(cls, text: str) -> TagRule:
        conditions = []
        for part in text.split("&"):
            match = _CONDITION.match(part.strip())
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

    def evaluate(self, features: pd.DataFrame) -> np.ndarray:
        mask = np.ones(len(features), dtype=bool)
        for condition in self.conditions:
            mask &= condition.evaluate(features)
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

    def conflicts(self, features: pd.DataFrame) -> np.ndarray:
        """Mask of features whose tags say they are something else."""
        mask = np.zeros(len(features), dtype=bool)
        for rule in self.conflicting_tags:
            mask |= rule.evaluate(features)
        return mask


@dataclass(frozen=True)
class ResidenceRules:
    """Which buildings are homes (the ``[residences]`` table).

    A building selected by ``building_tags`` is a home unless it stands in a
    non-residential precinct (``precinct_tags`` polygons), carries a use tag of
    ``non_home_tags`` or has a name containing ``non_home_names`` — and even
    then it is a home when ``housing_tags`` or ``housing_names`` say so.
    """

    building_tags: tuple[TagRule, ...]
    housing_tags: tuple[TagRule, ...]
    housing_names: tuple[str, ...]
    non_home_tags: tuple[TagRule, ...]
    non_home_names: tuple[str, ...]
    precinct_tags: tuple[TagRule, ...]

    @property
    def keys(self) -> set[str]:
        rules = (*self.building_tags, *self.housing_tags, *self.non_home_tags,
                 *self.precinct_tags)
        return set().union(*(rule.keys for rule in rules)) if rules else set()


def any_rule(rules: Sequence[TagRule], features: pd.DataFrame) -> np.ndarray:
    """Mask of features matching at least one of ``rules``."""
    mask = np.zeros(len(features), dtype=bool)
    for rule in rules:
        mask |= rule.evaluate(features)
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


def default_catalogue_path() -> Path:
    return Path(str(resources.files("planner") / "catalogue.toml"))


def load_catalogue(path: str | Path | None = None) -> Catalogue:
    """Load and validate a catalogue (the packaged one when ``path`` is None).

    A catalogue without a ``[name_rules]`` or ``[residences]`` table takes
    that table from the packaged catalogue.

    Raises
    ------
    PlannerError
        Naming the file, the entry and the field at fault.
    """
    path = default_catalogue_path() if path is None else Path(path)
    document = _read_toml(path)
    if "name_rules" not in document or "residences" not in document:
        packaged = _read_toml(default_catalogue_path())
        for table in ("name_rules", "residences"):
            document.setdefault(table, packaged.get(table, {}))
    return _parse(document, path)


def _read_toml(path: Path) -> dict:
    if not path.exists():
        message = "catalogue file not found"
        raise PlannerError(message, path)
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        message = f"not valid TOML ({error})"
        raise PlannerError(message, path) from error


class _Checker:
    """Raises :class:`PlannerError` naming the file, entry and field at fault."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, entry: str, message: str) -> NoReturn:
        text = f"{entry}: {message}"
        raise PlannerError(text, self.path)

    def text(self, raw: dict, key: str, entry: str) -> str:
        if not isinstance(raw.get(key), str) or not raw[key].strip():
            self.fail(entry, f"field '{key}' is missing or not a string")
        return raw[key]

    def strings(self, raw: dict, key: str, entry: str) -> list[str]:
        """A list of non-empty strings (an empty keyword would match every name)."""
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            self.fail(entry, f"field '{key}' must be a list of strings")
        if any(not item.strip() for item in value):
            self.fail(entry, f"field '{key}' holds an empty string (it would match everything)")
        return value

    def patterns(self, raw: dict, key: str, entry: str) -> tuple[str, ...]:
        value = self.strings(raw, key, entry)
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as error:
                self.fail(entry, f"field '{key}': bad pattern {pattern!r} ({error})")
        return tuple(value)

    def rules(self, raw: dict, key: str, entry: str) -> tuple[TagRule, ...]:
        parsed = []
        for text in self.strings(raw, key, entry):
            try:
                parsed.append(TagRule.parse(text))
            except (ValueError, re.error) as error:
                self.fail(entry, f"field '{key}': {error}")
        return tuple(parsed)

    def positive(self, raw: dict, key: str, entry: str, *, required: bool) -> float | None:
        value = raw.get(key)
        if value is None and not required:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) \
                or not math.isfinite(value) or not value > 0:
            self.fail(entry, f"field '{key}' must be a finite positive number")
        return float(value)


def _parse(document: dict, path: Path) -> Catalogue:
    check = _Checker(path)
    meta = document.get("catalogue", {})
    if not isinstance(meta, dict):
        check.fail("[catalogue]", "must be a table")
    scenes = _parse_scenes(document.get("scenes"), check)
    types = _parse_types(document.get("types"), {scene.id for scene in scenes}, check)
    category_map = _parse_category_map(document.get("category_map", []),
                                       {t.id for t in types}, check)
    return Catalogue(version=str(meta.get("version", "unversioned")),
                     name_zh=str(meta.get("name_zh", "")), name_en=str(meta.get("name_en", "")),
                     scenes=scenes, types=types, path=path, category_map=category_map,
                     name_rules=_parse_name_rules(document.get("name_rules", {}), check),
                     residences=_parse_residences(document.get("residences", {}), check))


def _parse_scenes(scenes_raw, check: _Checker) -> list[Scene]:
    if not isinstance(scenes_raw, list) or not scenes_raw:
        check.fail("[[scenes]]", "no scenes defined")
    scenes: list[Scene] = []
    for index, raw in enumerate(scenes_raw):
        entry = f"scenes[{index}]" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        if not isinstance(raw, dict):
            check.fail(entry, "must be a table")
        for key in ("id", "zh", "en"):
            check.text(raw, key, entry)
        if any(scene.id == raw["id"] for scene in scenes):
            check.fail(entry, f"field 'id' repeats {raw['id']!r}")
        scenes.append(Scene(raw["id"], raw["zh"], raw["en"]))
    return scenes


def _parse_types(types_raw, scene_ids: set[str], check: _Checker) -> list[FacilityType]:
    if not isinstance(types_raw, list) or not types_raw:
        check.fail("[[types]]", "no facility types defined")
    types: list[FacilityType] = []
    for index, raw in enumerate(types_raw):
        if not isinstance(raw, dict):
            check.fail(f"types[{index}]", "must be a table")
        entry = f"types[{index}] ({raw.get('id', '?')})"
        if any(existing.id == raw.get("id") for existing in types):
            check.fail(entry, f"field 'id' repeats {raw['id']!r}")
        types.append(_parse_type(raw, entry, scene_ids, check))
    return _symmetric_groups(types, check)


def _parse_type(raw: dict, entry: str, scene_ids: set[str], check: _Checker) -> FacilityType:
    for key in ("id", "scene", "zh", "en", "level"):
        check.text(raw, key, entry)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", raw["id"]):
        check.fail(entry, "field 'id' must be lower-case ASCII letters, digits and '_'")
    if raw["scene"] not in scene_ids:
        check.fail(entry, f"field 'scene' names an unknown scene {raw['scene']!r}")
    if raw["level"] not in LEVELS:
        check.fail(entry, f"field 'level' must be one of {', '.join(LEVELS)}")
    threshold = check.positive(raw, "threshold_m", entry, required=True)
    rules = check.rules(raw, "tags", entry)
    weak = check.rules(raw, "weak_tags", entry)
    names = check.patterns(raw, "names", entry)
    if "exclude_names" in raw and "name_excludes" in raw:
        check.fail(entry, "give 'name_excludes' only ('exclude_names' is its old spelling)")
    excludes = check.patterns(raw, "name_excludes" if "name_excludes" in raw
                              else "exclude_names", entry)
    decides = check.patterns(raw, "name_decides", entry)
    exclusive = tuple(check.strings(raw, "exclusive_with", entry))
    if not rules and not weak and not names:
        check.fail(entry, "needs at least one of 'tags', 'weak_tags' or 'names'")
    verified = raw.get("verified", False)
    if not isinstance(verified, bool):
        check.fail(entry, "field 'verified' must be true or false")
    return FacilityType(
        id=raw["id"], scene=raw["scene"], zh=raw["zh"], en=raw["en"], level=raw["level"],
        threshold_m=threshold, tags=rules, names=names, exclude_names=excludes,
        min_floor_area_m2=check.positive(raw, "min_floor_area_m2", entry, required=False),
        source=str(raw.get("source", "")), verified=verified, note=str(raw.get("note", "")),
        weak_tags=weak, name_decides=decides, exclusive_with=exclusive)


def _symmetric_groups(types: list[FacilityType], check: _Checker) -> list[FacilityType]:
    """Check ``exclusive_with`` names known types and make it symmetric."""
    known = {t.id for t in types}
    partners: dict[str, set[str]] = {t.id: set() for t in types}
    for index, facility_type in enumerate(types):
        for other in facility_type.exclusive_with:
            if other not in known or other == facility_type.id:
                check.fail(f"types[{index}] ({facility_type.id})",
                           f"field 'exclusive_with' names an unknown or its own type {other!r}")
            partners[facility_type.id].add(other)
            partners[other].add(facility_type.id)
    return [replace(t, exclusive_with=tuple(sorted(partners[t.id]))) for t in types]


def _parse_category_map(category_map, known: set[str], check: _Checker) -> list[dict]:
    if not isinstance(category_map, list):
        check.fail("[[category_map]]", "must be an array of tables")
    for index, row in enumerate(category_map):
        entry = f"category_map[{index}]"
        if not isinstance(row, dict):
            check.fail(entry, "must be a table")
        if row.get("type") not in known:
            check.fail(entry, f"field 'type' names an unknown facility type {row.get('type')!r}")
        if not isinstance(row.get("provider", "any"), str):
            check.fail(entry, "field 'provider' must be a string")
        code, text = row.get("code"), row.get("text")
        if (code is None) == (text is None):
            check.fail(entry, "give exactly one of 'code' (a code prefix) or 'text' (a regex)")
        if code is not None and (not isinstance(code, str) or not code.strip()):
            check.fail(entry, "field 'code' must be a non-empty string (quote it: \"090300\")")
        if text is not None:
            if not isinstance(text, str) or not text.strip():
                check.fail(entry, "field 'text' must be a non-empty pattern")
            try:
                re.compile(text)
            except re.error as error:
                check.fail(entry, f"field 'text': bad pattern ({error})")
    return category_map


def _parse_name_rules(raw, check: _Checker) -> NameRules:
    entry = "[name_rules]"
    if not isinstance(raw, dict):
        check.fail(entry, "must be a table")
    return NameRules(mention_prefixes=check.patterns(raw, "mention_prefixes", entry),
                     mention_suffixes=check.patterns(raw, "mention_suffixes", entry),
                     conflicting_tags=check.rules(raw, "conflicting_tags", entry))


def _parse_residences(raw, check: _Checker) -> ResidenceRules:
    entry = "[residences]"
    if not isinstance(raw, dict):
        check.fail(entry, "must be a table")
    rules = ResidenceRules(
        building_tags=check.rules(raw, "building_tags", entry),
        housing_tags=check.rules(raw, "housing_tags", entry),
        housing_names=check.patterns(raw, "housing_names", entry),
        non_home_tags=check.rules(raw, "non_home_tags", entry),
        non_home_names=check.patterns(raw, "non_home_names", entry),
        precinct_tags=check.rules(raw, "precinct_tags", entry))
    if not rules.building_tags:
        check.fail(entry, "field 'building_tags' must name at least one rule")
    return rules


# --------------------------------------------------------------------------- classification

FACILITY_COLUMNS = ["facility_id", "type_id", "scene_id", "name", "match", "osm_type", "osm_id"]
#: Columns of :attr:`Classification.decisions` (and of ``name_matches.csv``).
DECISION_COLUMNS = ["facility_id", "name", "type_ids", "n_types", "reason", "dropped_type_ids"]
#: Why a feature lost a type it would otherwise have, in order of precedence.
DECISION_REASONS = ("name_excludes", "mention", "conflicting_tags", "name_decides")


@dataclass
class Classification:
    """Facilities, and the features whose name decided or vetoed a type.

    Attributes
    ----------
    facilities
        One row per (feature, type), see :func:`classify`.
    decisions
        One row per (feature, reason): ``facility_id``, ``name``, ``type_ids``
        (the types kept), ``n_types``, ``reason`` (one of
        :data:`DECISION_REASONS`) and ``dropped_type_ids``.
    """

    facilities: gpd.GeoDataFrame
    decisions: pd.DataFrame


def feature_names(features: pd.DataFrame) -> pd.Series:
    """The names a keyword is matched on, joined with " | " (empty when none)."""
    parts = [features[key].fillna("").astype(str) if key in features.columns
             else pd.Series("", index=features.index) for key in NAME_KEYS]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" | ")
    return joined


def name_lines(features: pd.DataFrame) -> pd.Series:
    """The names of each feature, one per line (so ``^`` and ``$`` anchor per name)."""
    parts = [features[key].fillna("").astype(str).str.replace("\n", " ", regex=False)
             if key in features.columns else pd.Series("", index=features.index)
             for key in NAME_KEYS]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep="\n")
    return joined


def classify(features: gpd.GeoDataFrame, catalogue: Catalogue) -> gpd.GeoDataFrame:
    """Match features to facility types by tags and names (see :func:`classify_features`).

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (feature, type): ``facility_id``, ``type_id``, ``scene_id``,
        ``name``, ``match`` (tag | name), ``osm_type``, ``osm_id``, point geometry.
    """
    return classify_features(features, catalogue).facilities


def classify_features(features: gpd.GeoDataFrame, catalogue: Catalogue) -> Classification:
    """Match features to facility types, applying the catalogue's name rules.

    A feature is of a type when a firm tag rule holds, a weak tag rule holds,
    or one of its names (``name``, ``name:zh``, ``official_name``) contains a
    keyword of the type — unless

    - its name contains one of the type's ``exclude_names`` (also against tags:
      a ``townhall`` named 市人民政府 is no 街道办事处),
    - its name only mentions the type (``[name_rules]`` prefixes and suffixes:
      原幼儿园停车场, 0803-633规划幼儿园; also against tags),
    - its name matched but its tags say it is something else
      (``[name_rules] conflicting_tags``: a car park, a road, a stop),
    - or its name decides for another type of the type's ``exclusive_with``
      group and the type came only from weak tags or the name (清华附小 is a
      primary school, not a middle school).

    Lines (roads, rivers) and places/boundaries are never facilities; areas
    are represented by a point inside them.
    """
    kind = features.geometry.geom_type
    eligible = features[kind.isin(["Point", "Polygon", "MultiPolygon", "MultiPoint"])]
    for key in ("place", "boundary"):
        if key in eligible.columns:
            eligible = eligible[eligible[key].isna()]
    matcher = _NameMatcher(eligible, catalogue.name_rules)
    masks = {facility_type.id: _type_masks(facility_type, eligible, matcher)
             for facility_type in catalogue.types}
    final = _apply_decisions(catalogue, masks)
    display = _display_name(eligible)
    parts = []
    for facility_type in catalogue.types:
        hit = final[facility_type.id]
        if not hit.any():
            continue
        chosen = eligible[hit]
        by_tag = masks[facility_type.id]["firm"] | masks[facility_type.id]["weak"]
        parts.append(pd.DataFrame({
            "facility_id": _facility_ids(chosen),
            "type_id": facility_type.id,
            "scene_id": facility_type.scene,
            "name": display[hit].to_numpy(),
            "match": np.where(by_tag[hit], "tag", "name"),
            "osm_type": chosen["osm_type"].to_numpy(),
            "osm_id": chosen["osm_id"].to_numpy(),
            "geometry": chosen.geometry.representative_point().to_numpy(),
        }))
    if parts:
        facilities = gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry",
                                      crs=features.crs)
    else:
        facilities = gpd.GeoDataFrame(columns=FACILITY_COLUMNS, geometry=gpd.GeoSeries(
            [], crs=features.crs), crs=features.crs)
    decisions = _decision_table(catalogue, eligible, display, masks, final)
    return Classification(facilities=facilities, decisions=decisions)


class _NameMatcher:
    """Regex tests on the names of the named features only (most features have none)."""

    def __init__(self, features: pd.DataFrame, rules: NameRules) -> None:
        lines = name_lines(features)
        self.n_features = len(features)
        self.named = np.flatnonzero(lines.str.strip().str.len().to_numpy() > 0)
        self.lines = lines.iloc[self.named]
        self.rules = rules
        self.conflict = rules.conflicts(features)

    def contains(self, pattern: str) -> np.ndarray:
        """Mask over all features: some name matches ``pattern`` (multiline)."""
        mask = np.zeros(self.n_features, dtype=bool)
        if len(self.named):
            mask[self.named] = self.lines.str.contains(pattern, regex=True, flags=re.M)\
                .to_numpy(dtype=bool)
        return mask

    def keywords(self, keywords: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(any, genuine)``: a keyword occurs at all; one occurs not as a mere mention."""
        empty = np.zeros(self.n_features, dtype=bool)
        if not keywords or not len(self.named):
            return empty, empty.copy()
        present = self.contains("|".join(f"(?:{word})" for word in keywords))
        genuine = np.zeros(self.n_features, dtype=bool)
        if present.any():
            genuine = self.contains(self.rules.genuine_pattern(keywords)) & present
        return present, genuine


def _type_masks(facility_type: FacilityType, features: pd.DataFrame,
                matcher: _NameMatcher) -> dict[str, np.ndarray]:
    """Per feature: firm and weak tag matches, name matches and vetoes of one type."""
    present, genuine = matcher.keywords(facility_type.names)
    excluded = (matcher.contains("|".join(f"(?:{word})" for word in facility_type.exclude_names))
                if facility_type.exclude_names and len(matcher.named)
                else np.zeros(len(features), dtype=bool))
    _, decides = matcher.keywords(facility_type.name_decides)
    conflict = matcher.conflict
    return {
        "firm": any_rule(facility_type.tags, features),
        "weak": any_rule(facility_type.weak_tags, features),
        "present": present,
        "by_name": genuine & ~conflict,
        "mention": present & ~genuine,
        "conflict": present & conflict,
        "excluded": excluded,
        "decides": decides & ~conflict & ~excluded,
    }


def _apply_decisions(catalogue: Catalogue, masks: dict[str, dict]) -> dict[str, np.ndarray]:
    """Final membership per type, and ``overruled`` added to each type's masks."""
    final = {}
    for facility_type in catalogue.types:
        own = masks[facility_type.id]
        others = np.zeros_like(own["firm"])
        for other in facility_type.exclusive_with:
            others |= masks[other]["decides"]
        own["overruled"] = others & ~own["decides"] & ~own["firm"]
        own["candidate"] = own["firm"] | own["weak"] | own["by_name"] | own["decides"]
        final[facility_type.id] = (own["candidate"] & ~own["excluded"] & ~own["mention"]
                                   & ~own["overruled"])
    return final


def _decision_table(catalogue: Catalogue, features: pd.DataFrame, display: pd.Series,
                    masks: dict[str, dict], final: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (feature, reason) where a rule took a type the feature would have had."""
    rows, type_ids, reasons = [], [], []
    for facility_type in catalogue.types:
        own = masks[facility_type.id]
        would = own["firm"] | own["weak"] | own["present"]
        lost = would & ~final[facility_type.id]
        reason = np.select([own["excluded"], own["mention"], own["conflict"] & ~own["firm"]
                            & ~own["weak"], own["overruled"]], list(DECISION_REASONS), "")
        chosen = np.flatnonzero(lost & (reason != ""))
        rows.append(chosen)
        type_ids.append(np.full(len(chosen), facility_type.id, dtype=object))
        reasons.append(reason[chosen])
    if not rows or not sum(len(part) for part in rows):
        return pd.DataFrame(columns=DECISION_COLUMNS)
    long = pd.DataFrame({"row": np.concatenate(rows), "type_id": np.concatenate(type_ids),
                         "reason": np.concatenate(reasons)})
    table = long.groupby(["row", "reason"], sort=True)["type_id"].agg(",".join).reset_index()
    kept = pd.Series(
        [",".join(t.id for t in catalogue.types if final[t.id][row]) for row in
         table["row"].to_numpy()], index=table.index, dtype=object)
    subset = features.iloc[table["row"].to_numpy()]
    return pd.DataFrame({
        "facility_id": _facility_ids(subset),
        "name": display.iloc[table["row"].to_numpy()].to_numpy(),
        "type_ids": kept.to_numpy(),
        "n_types": kept.str.len().gt(0).to_numpy() * (kept.str.count(",").to_numpy() + 1),
        "reason": table["reason"].to_numpy(),
        "dropped_type_ids": table["type_id"].to_numpy(),
    }).sort_values(["facility_id", "reason"], kind="stable").reset_index(drop=True)


def _display_name(features: pd.DataFrame) -> pd.Series:
    name = pd.Series([None] * len(features), index=features.index, dtype="object")
    for key in ("name", "name:zh", "official_name", "name:en"):
        if key in features.columns:
            name = name.fillna(features[key])
    return name


def _facility_ids(features: pd.DataFrame) -> np.ndarray:
    prefix = features["osm_type"].astype(str).str[0]
    return (prefix + features["osm_id"].astype(str)).to_numpy()
