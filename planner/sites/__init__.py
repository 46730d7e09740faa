"""Candidate sites and state-owned premises ranked by the residents they add.

Three questions, one engine:

- *Which site first?* :class:`GreedyRanking` opens, for one facility type and
  with the existing facilities fixed, the candidate that newly brings the most
  residents within the type's threshold, then the next, and so on: the ranked
  list planners read ("site k adds N residents").
- *How good is that list?* :class:`MaximalCovering` solves the exact
  maximal-covering location problem (Church & ReVelle 1974) for the same number
  of sites with HiGHS and reports the greedy/optimal ratio and the MIP gap.
- *Which premises should become what?* :class:`Reallocation` assigns vacant and
  idle premises to facility types across all scenes, as one exact integer
  program maximising the weighted residents newly covered, within each
  premises' floor area.

Coverage sets
-------------
A candidate site enters the walking graph like a facility (a virtual node on
its nearest edge, see :mod:`planner.access`). One bounded Dijkstra from every
candidate (``scipy.sparse.csgraph.dijkstra(min_only=False, limit=…)``, in
chunks so that the dense block stays small) gives node distances; residences
snapped on edge (u, v) at offset r with access leg a are then at
``a + min(d[u] + r, d[v] + len − r)``, or directly along the edge when the site
lies on the same edge, exactly as :meth:`planner.access.Access.point_distances`
measures them. The result is a sparse candidate × residence matrix of walking
distances (:func:`site_distances`), cut per type at its threshold and
restricted to residences that no existing facility of the type covers
(:class:`CoverageSets`).

Modules
-------
One concept each, imports flowing down this list:
:mod:`~planner.sites.inputs` (premises, candidates, generated sites),
:mod:`~planner.sites.distances` (site → residence walking distances),
:mod:`~planner.sites.coverage_sets`, :mod:`~planner.sites.highs` (the solver),
:mod:`~planner.sites.models` (greedy, maximal covering, reallocation),
:mod:`~planner.sites.rules` (weights, floor areas, suitability, pools),
:mod:`~planner.sites.tables` and :mod:`~planner.sites.plan` (the result tables),
:mod:`~planner.sites.labels` (readable names and coordinates of the sites),
:mod:`~planner.sites.run` (:func:`rank_sites`), :mod:`~planner.sites.layers`
(map layers and files) and :mod:`~planner.sites.text` (terminal tables).

Rules where the issue is silent
-------------------------------
- **Availability.** Premises with status ``vacant`` or ``idle`` (空置, 闲置) are
  candidates; ``in use`` (在用, 使用中) premises are kept in the outputs but never
  reallocated.
- **Suitability.** A site with a floor area (premises, buildings) can host a
  type when it is allowed (an ``allowed_types`` column, comma-separated type
  ids; empty = any type) and its floor area reaches the type's minimum
  (``min_floor_area_m2`` from the catalogue, all unverified, or the planner's
  override). A type without a minimum is a type no standard sizes, often not a
  building use at all (bus stop, park, hydrant): premises take it only when
  their ``allowed_types`` names it, and then it occupies the whole premises.
  Sites without a floor area (the planner's candidate sites, generated network
  nodes) can host any allowed type: they stand for a new facility.
- **Several types per premises.** A premises may host several types when the
  sum of their minimum floor areas fits within its floor area (a type without
  a minimum counts the whole floor area).
- **Weights.** Each type weighs 1 by default ("type" weighting). With "scene"
  weighting each scene weighs 1, shared equally among the catalogue's types of
  that scene, as in the overall score. A weights file (CSV with ``type_id`` or
  ``scene_id`` and ``weight``) overrides: a scene row is shared among its
  types, a type row sets the type's own weight.
- **Ties** in the greedy ranking are broken by kind (premises, then planner
  candidates, then generated sites) and then by site id. The exact solves are
  deterministic (fixed HiGHS seed), but which of several equal optima they
  return is HiGHS's choice.
- **Rankings are per type**: one premises may top the lists of several
  types; the reallocation plan settles who gets it.
- **New sites.** Network nodes on a regular grid (or public buildings of the
  area) answer "where should a new X go". By default ("auto") they are ranked
  for a type only when no premises or planner candidate adds a resident.
- **The plan** has no limit per type unless ``max_per_type`` is given; after
  the solve, assignments that add nobody (all they reach is reached by another
  premises of the same type in the plan) are dropped, and each newly covered
  resident is credited to the nearest assigned premises of the type.
- **Inside the area** means within :data:`planner.settings.max_snap_distance_m`
  of the walking network; other rows are skipped with one warning each.

Outputs (:func:`write_sites_files`): ``sites.csv`` (the greedy ranking per type),
``sites_optimal.csv`` (greedy against the exact optimum), ``reallocation.csv``
(the plan), ``reallocation_communities.csv`` (coverage per community and type
before and after the plan) and the GeoPackage layers ``candidates`` and
``reallocation`` (EPSG:4326).
"""

from planner.sites.coverage_sets import (
    CoverageSets,
    aggregate_demand,
    coverage_sets,
    covered_weight,
)
from planner.sites.distances import site_distances
from planner.sites.highs import MipResult, solve_mip
from planner.sites.inputs import (
    AVAILABLE_STATUSES,
    KINDS,
    PUBLIC_BUILDINGS,
    STATUS_VALUES,
    generate_candidates,
    load_candidates,
    load_premises,
)
from planner.sites.layers import (
    TYPE_PALETTE,
    UNASSIGNED_COLOUR,
    reallocation_layer,
    sites_layers,
    write_sites_files,
)
from planner.sites.models import GreedyRanking, MaximalCovering, Reallocation
from planner.sites.plan import CHANGE_COLUMNS, PLAN_COLUMNS
from planner.sites.rules import minimum_floor_areas, suitability, type_weights
from planner.sites.run import SitesResult, rank_sites
from planner.sites.tables import OUTSIDE
from planner.sites.text import plan_table, ranking_table

__all__ = [
    "AVAILABLE_STATUSES", "CHANGE_COLUMNS", "KINDS", "OUTSIDE", "PLAN_COLUMNS",
    "PUBLIC_BUILDINGS", "STATUS_VALUES", "TYPE_PALETTE", "UNASSIGNED_COLOUR",
    "CoverageSets", "GreedyRanking", "MaximalCovering", "MipResult", "Reallocation",
    "SitesResult", "aggregate_demand", "coverage_sets", "covered_weight",
    "generate_candidates", "load_candidates", "load_premises", "minimum_floor_areas",
    "plan_table", "rank_sites", "ranking_table", "reallocation_layer", "site_distances",
    "sites_layers", "solve_mip", "suitability", "type_weights", "write_sites_files",
]
