"""The eight service scenes and their facility types: loading and validating the catalogue.

The catalogue is a TOML file shipped in the package (``planner/catalogue.toml``)
and replaceable by the planner's own (``--catalogue FILE``). A feature belongs
to a facility type when one of the type's tag rules holds, or else when its
name (``name``, ``name:zh`` or ``official_name``) contains one of the type's
keywords; the ``match`` column records which (``tag`` | ``name``). One feature
may serve several types.

Tag rule syntax: conditions joined by ``&``, all of which must hold:
``key=v1|v2`` (equals one of), ``key=*`` (present), ``!key`` (absent),
``key!=v1|v2`` (absent or none of), ``key~regex`` (value matches).

The model (:mod:`planner.catalogue_model`) and the classification
(:mod:`planner.classification`) live in their own modules; their names stay
importable from here.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import NoReturn

# re-exported: the model and the classification used to live here
from planner.catalogue_model import (  # noqa: F401
    LEVELS,
    NAME_KEYS,
    Catalogue,
    Condition,
    FacilityType,
    NameRules,
    ResidenceRules,
    Scene,
    TagRule,
    any_rule,
)
from planner.classification import (  # noqa: F401
    DECISION_COLUMNS,
    DECISION_REASONS,
    FACILITY_COLUMNS,
    Classification,
    classify,
    classify_features,
    feature_names,
    name_lines,
)
from planner.errors import PlannerError


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
        precinct_tags=check.rules(raw, "precinct_tags", entry),
        weak_non_home_names=check.patterns(raw, "weak_non_home_names", entry))
    if not rules.building_tags:
        check.fail(entry, "field 'building_tags' must name at least one rule")
    return rules


