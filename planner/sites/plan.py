"""The reallocation plan of the premises and its effect per community."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from planner.coverage import community_coverage
from planner.sites.models import Reallocation
from planner.sites.tables import gains_by_community

PLAN_COLUMNS = ["premises_id", "name", "label", "status", "owner", "floor_area_m2", "type_id",
                "scene_id", "type_en", "type_zh", "min_floor_area_m2", "floor_area_used_m2",
                "weight", "added_population", "communities", "community_gains"]
CHANGE_COLUMNS = ["community_id", "name", "scene_id", "type_id", "population",
                  "covered_before", "covered_after", "coverage_before", "coverage_after",
                  "score_before", "score_after"]


def empty_plan() -> pd.DataFrame:
    """A plan without rows."""
    return pd.DataFrame(columns=PLAN_COLUMNS)


def empty_change() -> pd.DataFrame:
    """A community change table without rows."""
    return pd.DataFrame(columns=CHANGE_COLUMNS)


def plan_tables(analysis, prem, premises, model: Reallocation, minimum: Mapping,
                weight_of: Mapping[str, float]) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """The tables of a solved plan.

    Parameters
    ----------
    analysis
        The area's analysis.
    prem
        The premises as loaded (status, owner).
    premises
        The site rows of the available premises, in the model's row order.
    model
        The solved :class:`~planner.sites.models.Reallocation`.
    minimum, weight_of
        Minimum floor area and weight per type.

    Returns
    -------
    (plan, change, summary)
        ``reallocation.csv``, ``reallocation_communities.csv`` and the solve's figures.
    """
    type_ids = [sets.type_id for sets in model.coverage]
    details = prem.set_index(prem["premises_id"].astype(str))
    plan_rows = []
    for column, sets in enumerate(model.coverage):
        facility_type = analysis.catalogue.type(sets.type_id)
        newly, nearest = model.newly[column], model.nearest[column]
        for row in np.flatnonzero(model.assigned[:, column]):  # assignments: a handful
            served = newly[nearest == row]
            premises_id = premises["site_id"].iloc[row]
            plan_rows.append({
                "premises_id": premises_id, "name": premises["name"].iloc[row],
                "label": premises["label"].iloc[row],
                "status": details["status"].get(premises_id),
                "owner": details["owner"].get(premises_id),
                "floor_area_m2": premises["floor_area_m2"].iloc[row],
                "type_id": sets.type_id, "scene_id": facility_type.scene,
                "type_en": facility_type.en, "type_zh": facility_type.zh,
                "min_floor_area_m2": minimum[sets.type_id],
                "floor_area_used_m2": round(float(model.need[row, column]), 1),
                "weight": weight_of[sets.type_id],
                "added_population": round(float(sets.population[served].sum()), 1),
                **dict(zip(("communities", "community_gains"), gains_by_community(
                    analysis.residences, sets.demand[served], sets.population[served]),
                    strict=True)),
            })
    plan = pd.DataFrame(plan_rows, columns=PLAN_COLUMNS)
    plan = plan.sort_values(["added_population", "premises_id", "type_id"],
                            ascending=[False, True, True], kind="stable").reset_index(drop=True)
    plan.insert(0, "order", np.arange(1, len(plan) + 1))
    change = community_change(analysis, distances_after(analysis, model, type_ids), type_ids)
    summary = {"status": model.status, "objective": round(model.objective, 1),
               "bound": round(model.bound, 1), "mip_gap": round(model.mip_gap, 6),
               "solve_s": round(model.seconds, 3), "assignments": len(plan),
               "premises_used": int(model.assigned.any(axis=1).sum()),
               "premises_available": len(premises),
               "added_population": round(float(plan["added_population"].sum()), 1)}
    return plan, change, summary


def distances_after(analysis, model: Reallocation, type_ids: Sequence[str]) -> np.ndarray:
    """The residences' distances (catalogue type order) once the plan is built."""
    distance = analysis.residence_distances().copy()
    all_types = pd.Index(analysis.catalogue.type_ids)
    for column, type_id in enumerate(type_ids):
        sets, newly, nearest = model.coverage[column], model.newly[column], model.nearest[column]
        if len(newly):
            best = np.asarray(sets.distance[nearest, newly]).ravel()
            target = sets.demand[newly]
            index = all_types.get_loc(type_id)
            current = np.nan_to_num(distance[target, index], nan=np.inf)
            distance[target, index] = np.round(np.minimum(current, best), 1)
    return distance


def community_change(analysis, distance_after: np.ndarray,
                     type_ids: Sequence[str]) -> pd.DataFrame:
    """Coverage per community and type before and after, with the overall score.

    "Before" is the analysis's own per-community table (``summary.csv``),
    "after" the same table of :func:`planner.coverage.community_coverage` on
    the distances after the plan.
    """
    if not type_ids:
        return empty_change()
    boundaries = analysis.communities[["community_id", "name", "community_source", "geometry"]]
    after_communities, after = community_coverage(analysis.residences, distance_after,
                                                  analysis.catalogue, boundaries)
    key = ["community_id", "type_id"]
    before = analysis.summary[analysis.summary["type_id"].isin(type_ids)]
    table = before[[*key, "scene_id", "population", "covered_population", "coverage"]].merge(
        after[[*key, "covered_population", "coverage"]], on=key, suffixes=("_before", "_after"))
    communities = analysis.communities.set_index("community_id")
    score_after = after_communities.set_index("community_id")["score"]
    change = pd.DataFrame({
        "community_id": table["community_id"].to_numpy(object),
        "name": communities["name"].reindex(table["community_id"]).to_numpy(object),
        "scene_id": table["scene_id"].to_numpy(object),
        "type_id": table["type_id"].to_numpy(object),
        "population": table["population"].to_numpy(float),
        "covered_before": table["covered_population_before"].to_numpy(float),
        "covered_after": table["covered_population_after"].to_numpy(float),
        "coverage_before": table["coverage_before"].to_numpy(float),
        "coverage_after": table["coverage_after"].to_numpy(float),
        "score_before": communities["score"].reindex(table["community_id"]).to_numpy(float),
        "score_after": score_after.reindex(table["community_id"]).to_numpy(float),
    }, columns=CHANGE_COLUMNS)
    return change.sort_values(["community_id", "type_id"], kind="stable").reset_index(drop=True)
