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

import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd

from planner.errors import PlannerError

LEVELS = ("block", "5min", "10min", "15min")
NAME_KEYS = ("name", "name:zh", "official_name")
#: features carrying these keys never match by name (see :func:`classify`).
TRANSPORT_KEYS = ("highway", "public_transport", "railway")
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
                raise ValueError(f"cannot parse condition {part.strip()!r}")
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
                    raise ValueError(f"cannot parse values in {part.strip()!r}")
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
    """A facility type of a scene, judged against its own walking threshold."""

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

    def label(self, lang: str = "zh") -> str:
        return self.zh if lang == "zh" else self.en


@dataclass
class Catalogue:
    """Scenes and facility types, in file order."""

    version: str
    name_zh: str
    name_en: str
    scenes: list[Scene]
    types: list[FacilityType]
    path: Path | None = None
    category_map: list[dict] = field(default_factory=list)

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
        """Every OSM key a tag rule reads, sorted."""
        keys = set()
        for facility_type in self.types:
            for rule in facility_type.tags:
                keys |= rule.keys
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

    Raises
    ------
    PlannerError
        Naming the file, the entry and the field at fault.
    """
    path = default_catalogue_path() if path is None else Path(path)
    if not path.exists():
        raise PlannerError("catalogue file not found", path)
    try:
        with path.open("rb") as handle:
            document = tomllib.load(handle)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise PlannerError(f"not valid TOML ({error})", path) from error
    return _parse(document, path)


def _parse(document: dict, path: Path) -> Catalogue:
    def fail(entry: str, message: str) -> None:
        raise PlannerError(f"{entry}: {message}", path)

    meta = document.get("catalogue", {})
    if not isinstance(meta, dict):
        fail("[catalogue]", "must be a table")
    scenes_raw = document.get("scenes")
    types_raw = document.get("types")
    if not isinstance(scenes_raw, list) or not scenes_raw:
        fail("[[scenes]]", "no scenes defined")
    if not isinstance(types_raw, list) or not types_raw:
        fail("[[types]]", "no facility types defined")

    scenes: list[Scene] = []
    for index, raw in enumerate(scenes_raw):
        entry = f"scenes[{index}]" + (f" ({raw.get('id')})" if isinstance(raw, dict) else "")
        if not isinstance(raw, dict):
            fail(entry, "must be a table")
        for key in ("id", "zh", "en"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                fail(entry, f"field '{key}' is missing or not a string")
        if any(scene.id == raw["id"] for scene in scenes):
            fail(entry, f"field 'id' repeats {raw['id']!r}")
        scenes.append(Scene(raw["id"], raw["zh"], raw["en"]))
    scene_ids = {scene.id for scene in scenes}

    types: list[FacilityType] = []
    for index, raw in enumerate(types_raw):
        if not isinstance(raw, dict):
            fail(f"types[{index}]", "must be a table")
        entry = f"types[{index}] ({raw.get('id', '?')})"
        for key in ("id", "scene", "zh", "en", "level"):
            if not isinstance(raw.get(key), str) or not raw[key].strip():
                fail(entry, f"field '{key}' is missing or not a string")
        if not re.fullmatch(r"[a-z][a-z0-9_]*", raw["id"]):
            fail(entry, "field 'id' must be lower-case ASCII letters, digits and '_'")
        if any(existing.id == raw["id"] for existing in types):
            fail(entry, f"field 'id' repeats {raw['id']!r}")
        if raw["scene"] not in scene_ids:
            fail(entry, f"field 'scene' names an unknown scene {raw['scene']!r}")
        if raw["level"] not in LEVELS:
            fail(entry, f"field 'level' must be one of {', '.join(LEVELS)}")
        threshold = raw.get("threshold_m")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) \
                or not threshold > 0:
            fail(entry, "field 'threshold_m' must be a positive number of metres")
        rules = []
        for rule_text in _string_list(raw, "tags", entry, fail):
            try:
                rules.append(TagRule.parse(rule_text))
            except (ValueError, re.error) as error:
                fail(entry, f"field 'tags': {error}")
        names = _string_list(raw, "names", entry, fail)
        excludes = _string_list(raw, "exclude_names", entry, fail)
        for keyword in (*names, *excludes):
            try:
                re.compile(keyword)
            except re.error as error:
                fail(entry, f"field 'names': bad pattern {keyword!r} ({error})")
        if not rules and not names:
            fail(entry, "needs at least one of 'tags' or 'names'")
        area = raw.get("min_floor_area_m2")
        if area is not None and (isinstance(area, bool) or not isinstance(area, int | float)
                                 or area <= 0):
            fail(entry, "field 'min_floor_area_m2' must be a positive number")
        verified = raw.get("verified", False)
        if not isinstance(verified, bool):
            fail(entry, "field 'verified' must be true or false")
        types.append(FacilityType(
            id=raw["id"], scene=raw["scene"], zh=raw["zh"], en=raw["en"], level=raw["level"],
            threshold_m=float(threshold), tags=tuple(rules), names=tuple(names),
            exclude_names=tuple(excludes),
            min_floor_area_m2=None if area is None else float(area),
            source=str(raw.get("source", "")), verified=verified, note=str(raw.get("note", ""))))
    category_map = document.get("category_map", [])
    if not isinstance(category_map, list):
        fail("[[category_map]]", "must be an array of tables")
    known = {t.id for t in types}
    for index, row in enumerate(category_map):
        entry = f"category_map[{index}]"
        if not isinstance(row, dict):
            fail(entry, "must be a table")
        if row.get("type") not in known:
            fail(entry, f"field 'type' names an unknown facility type {row.get('type')!r}")
        if not isinstance(row.get("provider", "any"), str):
            fail(entry, "field 'provider' must be a string")
        code, text = row.get("code"), row.get("text")
        if (code is None) == (text is None):
            fail(entry, "give exactly one of 'code' (a code prefix) or 'text' (a regex)")
        if code is not None and not isinstance(code, str):
            fail(entry, "field 'code' must be a string (quote it: \"090300\")")
        if text is not None:
            try:
                re.compile(text)
            except (re.error, TypeError) as error:
                fail(entry, f"field 'text': bad pattern ({error})")
    return Catalogue(version=str(meta.get("version", "unversioned")),
                     name_zh=str(meta.get("name_zh", "")), name_en=str(meta.get("name_en", "")),
                     scenes=scenes, types=types, path=path, category_map=category_map)


def _string_list(raw: dict, key: str, entry: str, fail) -> list[str]:
    value = raw.get(key, [])
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        fail(entry, f"field '{key}' must be a list of strings")
    return value


# --------------------------------------------------------------------------- classification

FACILITY_COLUMNS = ["facility_id", "type_id", "scene_id", "name", "match", "osm_type", "osm_id"]


def feature_names(features: pd.DataFrame) -> pd.Series:
    """The names a keyword is matched on, joined with " | " (empty when none)."""
    parts = [features[key].fillna("").astype(str) if key in features.columns
             else pd.Series("", index=features.index) for key in NAME_KEYS]
    joined = parts[0]
    for part in parts[1:]:
        joined = joined.str.cat(part, sep=" | ")
    return joined


def classify(features: gpd.GeoDataFrame, catalogue: Catalogue) -> gpd.GeoDataFrame:
    """Match features to facility types by tags, then by name keywords.

    Lines (roads, rivers) and places/boundaries are never facilities. Areas
    are represented by a point inside them.

    Returns
    -------
    geopandas.GeoDataFrame
        One row per (feature, type): ``facility_id``, ``type_id``, ``scene_id``,
        ``name``, ``match`` (tag | name), ``osm_type``, ``osm_id``, point geometry.
    """
    kind = features.geometry.geom_type
    eligible = features[kind.isin(["Point", "Polygon", "MultiPolygon", "MultiPoint"])]
    for key in ("place", "boundary"):
        if key in eligible.columns:
            eligible = eligible[eligible[key].isna()]
    names = feature_names(eligible)
    # a stop named after the hospital it serves is a stop, not a hospital
    nameable = np.ones(len(eligible), dtype=bool)
    for key in TRANSPORT_KEYS:
        if key in eligible.columns:
            nameable &= eligible[key].isna().to_numpy()
    # keywords only run on the features that have a name (a city has 100,000s without)
    named = np.flatnonzero(nameable & (names.str.len().to_numpy() > 2 * len(" | ")))
    named_names = names.iloc[named]
    display = _display_name(eligible)
    parts = []
    for facility_type in catalogue.types:
        by_tag = np.zeros(len(eligible), dtype=bool)
        for rule in facility_type.tags:
            by_tag |= rule.evaluate(eligible)
        by_name = np.zeros(len(eligible), dtype=bool)
        if facility_type.names and len(named):
            hit = named_names.str.contains("|".join(facility_type.names), regex=True)
            if facility_type.exclude_names:
                hit &= ~named_names.str.contains("|".join(facility_type.exclude_names),
                                                 regex=True)
            by_name[named] = hit.to_numpy(dtype=bool)
        hit = by_tag | by_name
        if not hit.any():
            continue
        chosen = eligible[hit]
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
    if not parts:
        return gpd.GeoDataFrame(columns=FACILITY_COLUMNS, geometry=gpd.GeoSeries(
            [], crs=features.crs), crs=features.crs)
    facilities = pd.concat(parts, ignore_index=True)
    return gpd.GeoDataFrame(facilities, geometry="geometry", crs=features.crs)


def _display_name(features: pd.DataFrame) -> pd.Series:
    name = pd.Series([None] * len(features), index=features.index, dtype="object")
    for key in ("name", "name:zh", "official_name", "name:en"):
        if key in features.columns:
            name = name.fillna(features[key])
    return name


def _facility_ids(features: pd.DataFrame) -> np.ndarray:
    prefix = features["osm_type"].astype(str).str[0]
    return (prefix + features["osm_id"].astype(str)).to_numpy()
