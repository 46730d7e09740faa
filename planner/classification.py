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

import geopandas as gpd
import numpy as np
import pandas as pd

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
    tags = TagTable(eligible)
    keywords = [word for facility_type in catalogue.types for word in (
        *facility_type.names, *facility_type.exclude_names, *facility_type.name_decides)]
    matcher = _NameMatcher(eligible, catalogue.name_rules, keywords, tags)
    masks = {facility_type.id: _type_masks(facility_type, tags, matcher)
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
    """Regex tests on the names of the named features only (most features have none).

    One search with every keyword of every type (``keywords``) runs first:
    every per-type pattern requires one of them, so the names holding none
    (most) are settled at once and the per-type patterns test the rest only.
    """

    def __init__(self, features: pd.DataFrame, rules: NameRules, keywords: Sequence[str],
                 tags: TagTable) -> None:
        lines = name_lines(features)
        self.n_features = len(features)
        rows = np.flatnonzero(lines.str.strip().str.len().to_numpy() > 0)
        values = lines.to_numpy(dtype=object)[rows]
        screen = _any_of(keywords)
        if screen is not None and len(rows):
            hit = np.fromiter((screen.search(value) is not None for value in values),
                              dtype=bool, count=len(values))
            rows, values = rows[hit], values[hit]
        self.named = rows
        self._values = values
        self.rules = rules
        self.conflict = rules.conflicts(tags)

    def contains(self, pattern: str, within: np.ndarray | None = None) -> np.ndarray:
        """Mask over all features: some name matches ``pattern`` (multiline).

        ``pattern`` must require one of the matcher's keywords; with
        ``within`` (a mask over all features) only those features are tested.
        """
        mask = np.zeros(self.n_features, dtype=bool)
        rows, values = self.named, self._values
        if within is not None:
            keep = within[rows]
            rows, values = rows[keep], values[keep]
        if len(rows):
            search = re.compile(pattern, flags=re.M).search
            mask[rows] = np.fromiter((search(value) is not None for value in values),
                                     dtype=bool, count=len(values))
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
