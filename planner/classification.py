"""Classification of OSM features into the catalogue's facility types.

A feature belongs to a facility type when one of the type's tag rules holds,
or else when its name (``name``, ``name:zh`` or ``official_name``) contains
one of the type's keywords; the catalogue's name rules then decide or veto
types (see :func:`classify_features`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from re import _constants as sre
from re import _parser as sre_parse

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from planner.catalogue_model import (
    NAME_KEYS,
    Catalogue,
    FacilityType,
    NameRules,
    TagTable,
    any_rule,
)

FACILITY_COLUMNS = ["facility_id", "type_id", "scene_id", "name", "match", "osm_type", "osm_id"]
#: Columns of :attr:`Classification.decisions` (and of ``name_matches.csv``).
DECISION_COLUMNS = ["facility_id", "name", "type_ids", "n_types", "reason", "dropped_type_ids"]
#: Why a feature lost a type it would otherwise have, in order of precedence.
DECISION_REASONS = ("name_excludes", "mention", "conflicting_tags", "name_decides")
#: The name shown for a facility: the first of these tags present.
_DISPLAY_KEYS = ("name", "name:zh", "official_name", "name:en")


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
    rows, lines = _named_lines(features)
    blank = "\n" * (len(NAME_KEYS) - 1)
    if len(rows) == len(features):
        return lines.set_axis(features.index)
    # most features have no name: their line is the same blank one
    joined = pd.Series(blank, index=features.index, dtype=lines.dtype)
    joined.iloc[rows] = lines.to_numpy()
    return joined


def _named_lines(features: pd.DataFrame) -> tuple[np.ndarray, pd.Series]:
    """Rows with some name and their :func:`name_lines` (built on those rows only)."""
    keys = [key for key in NAME_KEYS if key in features.columns]
    named = np.zeros(len(features), dtype=bool)
    for key in keys:
        named |= features[key].notna().to_numpy(dtype=bool)
    rows = np.flatnonzero(named)
    subset = features.iloc[rows] if len(rows) < len(features) else features
    joined = None
    for key in NAME_KEYS:
        column = subset[key] if key in keys else None
        if column is None or not column.notna().any():
            # a name nobody has is an empty line: only its separator is added
            joined = (pd.Series("", index=subset.index).astype(str) if joined is None
                      else joined + "\n")
            continue
        part = column.fillna("").astype(str).str.replace("\n", " ", regex=False)
        joined = part if joined is None else joined.str.cat(part, sep="\n")
    return rows, joined


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
    keep = kind.isin(["Point", "Polygon", "MultiPolygon", "MultiPoint"]).to_numpy(dtype=bool)
    for key in ("place", "boundary"):
        if key in features.columns:
            keep = keep & features[key].isna().to_numpy(dtype=bool)
    if keep.all():  # no copy of a city's features when every one is eligible
        eligible = features
    else:  # one take of the columns classification reads
        wanted = {*catalogue.feature_keys(), *NAME_KEYS, *_DISPLAY_KEYS, "osm_type", "osm_id"}
        columns = [column for column in features.columns
                   if column in wanted or column == features.geometry.name]
        eligible = features.iloc[np.flatnonzero(keep), features.columns.get_indexer(columns)]
    tags = TagTable(eligible)
    keywords = [word for facility_type in catalogue.types for word in (
        *facility_type.names, *facility_type.exclude_names, *facility_type.name_decides)]
    matcher = _NameMatcher(eligible, catalogue.name_rules, keywords, tags)
    masks = {facility_type.id: _type_masks(facility_type, tags, matcher)
             for facility_type in catalogue.types}
    final = _apply_decisions(catalogue, masks)
    facilities = _facility_table(catalogue, eligible, masks, final)
    if facilities is None:
        facilities = gpd.GeoDataFrame(columns=FACILITY_COLUMNS, geometry=gpd.GeoSeries(
            [], crs=features.crs), crs=features.crs)
    decisions = _decision_table(catalogue, eligible, masks, final)
    return Classification(facilities=facilities, decisions=decisions)


def _facility_table(catalogue: Catalogue, features: gpd.GeoDataFrame, masks: dict[str, dict],
                    final: dict[str, np.ndarray]) -> gpd.GeoDataFrame | None:
    """One row per (feature, type), type by type in catalogue order; None when empty.

    A feature of several types is looked up (id, name, point) once.
    """
    hits = [np.flatnonzero(final[facility_type.id]) for facility_type in catalogue.types]
    counts = [len(hit) for hit in hits]
    if not sum(counts):
        return None
    rows = np.concatenate(hits)
    by_tag = np.concatenate([(masks[facility_type.id]["firm"]
                              | masks[facility_type.id]["weak"])[hit]
                             for facility_type, hit in zip(catalogue.types, hits, strict=True)])
    unique_rows, inverse = np.unique(rows, return_inverse=True)
    chosen = features.iloc[unique_rows]
    type_ids = np.array([facility_type.id for facility_type in catalogue.types], dtype=object)
    scene_ids = np.array([facility_type.scene for facility_type in catalogue.types],
                         dtype=object)
    return gpd.GeoDataFrame({
        "facility_id": _facility_ids(chosen)[inverse],
        "type_id": np.repeat(type_ids, counts),
        "scene_id": np.repeat(scene_ids, counts),
        "name": _names_column(_display_name(chosen).to_numpy()[inverse], counts),
        "match": np.where(by_tag, "tag", "name"),
        "osm_type": chosen["osm_type"].to_numpy()[inverse],
        "osm_id": chosen["osm_id"].to_numpy()[inverse],
        "geometry": chosen.geometry.representative_point().to_numpy()[inverse],
    }, geometry="geometry", crs=features.crs)


class _NameMatcher:
    """Regex tests on the names of the named features only (most features have none).

    One search with every keyword of every type (``keywords``) runs first:
    every per-type pattern requires one of them, so the names holding none
    (most) are settled at once and the per-type patterns test the rest only.
    Each search first runs, vectorised, a looser RE2 pattern
    (:func:`_re2_superset`) over the names, so Python's ``re`` only confirms
    the few names that may match.
    """

    def __init__(self, features: pd.DataFrame, rules: NameRules, keywords: Sequence[str],
                 tags: TagTable) -> None:
        self.n_features = len(features)
        rows, lines = _named_lines(features)
        keep = lines.str.strip().str.len().to_numpy() > 0
        rows, values = rows[keep], lines.to_numpy(dtype=object)[keep]
        screen = _any_of(keywords)
        if screen is not None and len(rows):
            hit = _search(screen.pattern, values, _arrow_strings(values))
            rows, values = rows[hit], values[hit]
        self.named = rows
        self._values = values
        self._arrow = _arrow_strings(values)
        self.rules = rules
        self.conflict = rules.conflicts(tags)

    def contains(self, pattern: str, within: np.ndarray | None = None) -> np.ndarray:
        """Mask over all features: some name matches ``pattern`` (multiline).

        ``pattern`` must require one of the matcher's keywords; with
        ``within`` (a mask over all features) only those features are tested.
        """
        mask = np.zeros(self.n_features, dtype=bool)
        rows, values, arrow = self.named, self._values, self._arrow
        if within is not None:
            keep = within[rows]
            rows, values = rows[keep], values[keep]
            arrow = None if arrow is None else arrow.filter(pa.array(keep))
        if len(rows):
            mask[rows] = _search(pattern, values, arrow)
        return mask

    def keywords(self, keywords: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """``(any, genuine)``: a keyword occurs at all; one occurs not as a mere mention."""
        empty = np.zeros(self.n_features, dtype=bool)
        if not keywords or not len(self.named):
            return empty, empty.copy()
        present = self.contains("|".join(f"(?:{word})" for word in keywords))
        genuine = np.zeros(self.n_features, dtype=bool)
        if present.any():
            genuine = self.contains(self.rules.genuine_pattern(keywords), within=present)
        return present, genuine


def _arrow_strings(values: np.ndarray) -> pa.Array | None:
    """The names as an Arrow string array (None when Arrow cannot hold them)."""
    try:
        return pa.array(values, type=pa.large_string())
    except (pa.ArrowException, TypeError, ValueError):
        return None


def _search(pattern: str, values: np.ndarray, arrow: pa.Array | None) -> np.ndarray:
    """Per value: ``re.search(pattern, value, re.M)`` finds something.

    Values the vectorised superset pattern rejects cannot match; Python's
    ``re`` decides the rest, so the answer is exactly that of ``re``.
    """
    candidates = np.arange(len(values))
    superset = _re2_superset(pattern)
    if arrow is not None and superset is not None and len(values):
        try:
            maybe = pc.match_substring_regex(arrow, superset)
        except pa.ArrowException:  # beyond RE2's limits: every value is a candidate
            pass
        else:
            candidates = np.flatnonzero(maybe.to_numpy(zero_copy_only=False))
    mask = np.zeros(len(values), dtype=bool)
    if len(candidates):
        search = re.compile(pattern, flags=re.M).search
        mask[candidates] = np.fromiter((search(value) is not None
                                        for value in values[candidates]),
                                       dtype=bool, count=len(candidates))
    return mask


class _NoSuperset(Exception):
    """A regex construct the RE2 superset does not translate."""


#: RE2 for "any character, newline included": what untranslated atoms loosen to.
_ANY = "(?s:.)"


@lru_cache(maxsize=4096)
def _re2_superset(pattern: str) -> str | None:
    """An RE2 pattern matching wherever ``pattern`` (Python, ``re.M``) matches, or None.

    Lookarounds and anchors are dropped and character classes with
    categories (``\\d``, ``\\w``, negations) become "any character": every
    change only loosens the pattern, so a name it rejects cannot match
    ``pattern``. Literals, plain classes, groups, alternation and repetition
    stay as they are. None when the pattern has inline flags or constructs
    beyond that (back references, conditionals).
    """
    try:
        parsed = sre_parse.parse(pattern, re.M)
        if parsed.state.flags & ~(re.M | re.U):
            return None
        return _re2_sequence(parsed)
    except (re.error, _NoSuperset, RecursionError):
        return None


def _re2_char(code: int) -> str:
    return chr(code) if chr(code).isalnum() else f"\\x{{{code:x}}}"


def _re2_sequence(items) -> str:
    return "".join(_re2_item(op, value) for op, value in items)


def _re2_item(op, value) -> str:
    if op is sre.LITERAL:
        return _re2_char(value)
    if op in (sre.ASSERT, sre.ASSERT_NOT, sre.AT):
        return ""
    if op in (sre.ANY, sre.NOT_LITERAL, sre.CATEGORY):
        return _ANY
    if op is sre.IN:
        if all(kind in (sre.LITERAL, sre.RANGE) for kind, _ in value):
            return "[" + "".join(
                _re2_char(item) if kind is sre.LITERAL
                else f"{_re2_char(item[0])}-{_re2_char(item[1])}" for kind, item in value) + "]"
        return _ANY
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
        low, high, inner = value
        if low > 1000:  # RE2's largest counted repetition
            raise _NoSuperset
        upper = "" if high is sre.MAXREPEAT or high > 1000 else str(high)
        return f"(?:{_re2_sequence(inner)}){{{low},{upper}}}"
    if op is sre.SUBPATTERN:
        _, add_flags, del_flags, inner = value
        if add_flags or del_flags:
            raise _NoSuperset
        return f"(?:{_re2_sequence(inner)})"
    if op is sre.ATOMIC_GROUP:
        return f"(?:{_re2_sequence(value)})"
    if op is sre.BRANCH:
        return "(?:" + "|".join(_re2_sequence(branch) for branch in value[1]) + ")"
    raise _NoSuperset


def _any_of(keywords: Sequence[str]) -> re.Pattern | None:
    """One pattern matching where any keyword does; None when they do not combine.

    A keyword with a group reference or a named group cannot share a pattern
    with the others; then every name is tested per type, as it would be anyway.
    """
    if not keywords:
        return None
    try:
        return re.compile("|".join(f"(?:{word})" for word in sorted(set(keywords))),
                          flags=re.M)
    except re.error:
        return None


def _type_masks(facility_type: FacilityType, features: TagTable,
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


def _names_column(names: np.ndarray, counts: list[int]) -> np.ndarray | pd.Series:
    """The ``name`` column as the table built type by type had it.

    A type none of whose facilities has a name made the column ``object``
    (None where unnamed, NaN for the unnamed of the other types); else the
    column is a string column.
    """
    starts = np.cumsum([0, *counts])[:-1][np.asarray(counts) > 0]
    named = pd.notna(names)
    part_named = np.logical_or.reduceat(named, starts)
    if part_named.all():
        return names
    in_named_part = np.repeat(part_named, np.diff([*starts, len(names)]))
    names = names.copy()
    names[in_named_part & ~named] = np.nan
    return pd.Series(names, dtype=object)


def _decision_table(catalogue: Catalogue, features: pd.DataFrame, masks: dict[str, dict],
                    final: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row per (feature, reason) where a rule took a type the feature would have had."""
    rows, type_ids, reasons = [], [], []
    for facility_type in catalogue.types:
        own = masks[facility_type.id]
        # the reasons are looked up on the few features that lost the type only
        lost = np.flatnonzero((own["firm"] | own["weak"] | own["present"])
                              & ~final[facility_type.id])
        reason = np.select([own["excluded"][lost], own["mention"][lost],
                            (own["conflict"] & ~own["firm"] & ~own["weak"])[lost],
                            own["overruled"][lost]], list(DECISION_REASONS), "")
        chosen = reason != ""
        rows.append(lost[chosen])
        type_ids.append(np.full(int(chosen.sum()), facility_type.id, dtype=object))
        reasons.append(reason[chosen])
    if not rows or not sum(len(part) for part in rows):
        return pd.DataFrame(columns=DECISION_COLUMNS)
    long = pd.DataFrame({"row": np.concatenate(rows), "type_id": np.concatenate(type_ids),
                         "reason": np.concatenate(reasons)})
    table = long.groupby(["row", "reason"], sort=True)["type_id"].agg(",".join).reset_index()
    table_rows = table["row"].to_numpy()
    # the types each of these features kept, in catalogue order
    kept_matrix = np.stack([final[t.id][table_rows] for t in catalogue.types], axis=1)
    ids = [t.id for t in catalogue.types]
    kept = pd.Series([",".join(ids[index] for index in np.flatnonzero(row))
                      for row in kept_matrix], index=table.index, dtype=object)
    subset = features.iloc[table_rows]
    return pd.DataFrame({
        "facility_id": _facility_ids(subset),
        "name": _display_name(subset).to_numpy(),
        "type_ids": kept.to_numpy(),
        "n_types": kept.str.len().gt(0).to_numpy() * (kept.str.count(",").to_numpy() + 1),
        "reason": table["reason"].to_numpy(),
        "dropped_type_ids": table["type_id"].to_numpy(),
    }).sort_values(["facility_id", "reason"], kind="stable").reset_index(drop=True)


def _display_name(features: pd.DataFrame) -> pd.Series:
    name = pd.Series([None] * len(features), index=features.index, dtype="object")
    for key in _DISPLAY_KEYS:
        if key in features.columns:
            name = name.fillna(features[key])
    return name


def _facility_ids(features: pd.DataFrame) -> np.ndarray:
    prefix = features["osm_type"].astype(str).str[0]
    return (prefix + features["osm_id"].astype(str)).to_numpy()
