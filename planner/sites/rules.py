"""The planner's rules: type weights, minimum floor areas, which site may host what."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from planner.catalogue import Catalogue
from planner.columns import find_column
from planner.errors import PlannerError


def type_weights(catalogue: Catalogue, type_ids: Sequence[str], weights=None,
                 weighting: str = "type") -> dict[str, float]:
    """Weight of each type in the reallocation objective.

    Parameters
    ----------
    catalogue
        Scenes and types.
    type_ids
        The types to weigh.
    weights
        A mapping or a CSV file (``type_id`` or ``scene_id`` or ``id``, and
        ``weight``); a scene's weight is shared equally among its catalogue
        types, a type's weight is its own.
    weighting
        ``"type"`` (each unlisted type weighs 1) or ``"scene"`` (each unlisted
        scene weighs 1, shared among its types).
    """
    if weighting not in ("type", "scene"):
        message = f"unknown weighting {weighting!r} (type or scene)"
        raise PlannerError(message)
    path = None
    if weights is not None and not isinstance(weights, Mapping):
        path = Path(weights)
        weights = _read_weights(path)
    weights = dict(weights or {})
    _check_weights(catalogue, weights, path)
    sizes = pd.Series([t.scene for t in catalogue.types]).value_counts()
    result = {}
    for type_id in type_ids:
        scene = catalogue.type(type_id).scene
        if type_id in weights:
            result[type_id] = float(weights[type_id])
        elif scene in weights:
            result[type_id] = float(weights[scene]) / int(sizes[scene])
        else:
            result[type_id] = 1.0 if weighting == "type" else 1.0 / int(sizes[scene])
    return result


def _check_weights(catalogue: Catalogue, weights: Mapping, path: Path | None) -> None:
    scene_ids, known_types = set(catalogue.scene_ids), set(catalogue.type_ids)
    for key, value in weights.items():
        if key not in scene_ids and key not in known_types:
            message = f"weights name an unknown type or scene {key!r}"
            raise PlannerError(message, path)
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            message = f"the weight of {key!r} must be a number ≥ 0, got {value!r}"
            raise PlannerError(message, path)


def _read_weights(path: Path) -> dict[str, float]:
    if not path.exists():
        message = "weights file not found"
        raise PlannerError(message, path)
    try:
        table = pd.read_csv(path, encoding="utf-8-sig")
    except Exception as error:
        message = f"cannot read the weights table ({type(error).__name__})"
        raise PlannerError(message, path) from error
    id_column = find_column(table, ("type_id", "scene_id", "id"))
    weight_column = find_column(table, ("weight",))
    if id_column is None or weight_column is None:
        message = ("the weights table needs an id column (type_id, scene_id or id) "
                   "and a weight column")
        raise PlannerError(message, path)
    values = pd.to_numeric(table[weight_column], errors="coerce")
    if values.isna().any():
        message = "the weights table has a non-numeric weight"
        raise PlannerError(message, path)
    ids = table[id_column].astype(str).str.strip()
    if ids.duplicated().any():
        message = f"the weights table repeats {ids[ids.duplicated()].iloc[0]!r}"
        raise PlannerError(message, path)
    return dict(zip(ids, values.astype(float), strict=True))


def minimum_floor_areas(catalogue: Catalogue, overrides: Mapping[str, float] | None = None
                        ) -> dict[str, float | None]:
    """Minimum floor area per type: the catalogue's, replaced by the planner's overrides."""
    overrides = dict(overrides or {})
    for type_id, value in overrides.items():
        if type_id not in catalogue.type_ids:
            message = f"a minimum floor area names an unknown type {type_id!r}"
            raise PlannerError(message)
        if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
            message = f"the minimum floor area of {type_id!r} must be ≥ 0, got {value!r}"
            raise PlannerError(message)
    return {t.id: float(overrides[t.id]) if t.id in overrides else t.min_floor_area_m2
            for t in catalogue.types}


def suitability(floor_area: np.ndarray, allowed: np.ndarray, type_ids: Sequence[str],
                minimum: Mapping[str, float | None]) -> tuple[np.ndarray, np.ndarray]:
    """Which sites may host which types, and the floor area each pair takes.

    Returns
    -------
    (suitable, need)
        ``(n_sites, n_types)`` boolean and floor area taken (NaN where unsuitable
        or for sites without a floor area). See :mod:`planner.sites` for the rule.
    """
    floor_area = np.asarray(floor_area, float)
    allowed_sets = [set(filter(None, str(value).split(","))) for value in allowed]
    open_to_all = np.array([not names for names in allowed_sets], dtype=bool)
    has_area = np.isfinite(floor_area)
    suitable = np.zeros((len(floor_area), len(type_ids)), dtype=bool)
    need = np.full(suitable.shape, np.nan)
    for column, type_id in enumerate(type_ids):  # one vectorised pass per type
        named = np.array([type_id in names for names in allowed_sets], dtype=bool)
        permitted = open_to_all | named
        least = minimum.get(type_id)
        if least is None:
            fits = ~has_area | named
            takes = floor_area
        else:
            fits = ~has_area | (floor_area >= least)
            takes = np.full(len(floor_area), least)
        suitable[:, column] = permitted & fits
        need[:, column] = np.where(suitable[:, column] & has_area, takes, np.nan)
    return suitable, need


def ranked_types(catalogue: Catalogue, types: Sequence[str] | None,
                 minimum: Mapping[str, float | None], tables) -> list[str]:
    """The types to rank: those asked for, or every type premises can take.

    A type premises can take has a minimum floor area, or is named in the
    ``allowed_types`` of one of ``tables`` (None entries are skipped).
    """
    if types:
        unknown = [t for t in types if t not in catalogue.type_ids]
        if unknown:
            message = (f"unknown facility type {', '.join(unknown)} "
                       "(see `planner catalogue`)")
            raise PlannerError(message)
        return [t for t in catalogue.type_ids if t in set(types)]
    named = set()
    for table in tables:
        if table is not None:
            for value in table["allowed_types"]:
                named |= set(filter(None, str(value).split(",")))
    return [t for t in catalogue.type_ids if minimum[t] is not None or t in named]


def pool(reach: np.ndarray, kind: np.ndarray, new_sites: str) -> tuple[str, np.ndarray]:
    """The site rows ranked for a type, and the pool's name.

    ``reach`` marks the sites that add a resident to the type. With
    ``new_sites="auto"`` generated sites are ranked only when no premises or
    candidate adds anyone.
    """
    rows = np.arange(len(kind))
    existing = kind != "generated"
    if new_sites == "always":
        return "all sites", rows
    if new_sites == "never":
        return "premises and candidates", rows[existing]
    if (reach & existing).any() or not (reach & ~existing).any():
        return "premises and candidates", rows[existing]
    return "new sites", rows[~existing]
