"""The three models, in spopt's shape: built from a coverage matrix, ``solve()`` returns self.

- :class:`GreedyRanking`: the ranked list planners read ("site k adds N residents").
- :class:`MaximalCovering`: the exact maximal-covering location problem
  (Church & ReVelle 1974) for the same number of sites, with HiGHS.
- :class:`Reallocation`: premises assigned to facility types across all
  scenes, one exact integer program within each premises' floor area.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from planner.sites.coverage_sets import CoverageSets, aggregate_demand, covered_weight
from planner.sites.highs import MipResult, solve_mip


class GreedyRanking:
    """Rank sites greedily by the demand weight each newly covers.

    Parameters
    ----------
    matrix
        ``(n_sites, n_demand)`` sparse; nonzero where the site covers the demand.
    weights
        Demand weights (population).
    count
        Sites to rank at most; all that add something when omitted.

    Attributes
    ----------
    order
        Row indices of the ranked sites, best first (ties by row index, so
        order the rows by id).
    added
        Weight newly covered by each ranked site; never increases along the ranking.
    objective
        Total weight covered.

    Examples
    --------
    >>> ranking = GreedyRanking(sets.matrix, sets.population, count=5).solve()
    >>> ranking.order, ranking.added
    """

    def __init__(self, matrix: sparse.spmatrix, weights: np.ndarray,
                 count: int | None = None) -> None:
        self.matrix = sparse.csr_matrix(matrix, dtype=float)
        self.matrix.data = (self.matrix.data != 0).astype(float)
        self.matrix.eliminate_zeros()
        self.weights = np.asarray(weights, float)
        self.count = self.matrix.shape[0] if count is None else int(count)
        self.order = np.zeros(0, dtype=np.int64)
        self.added = np.zeros(0)
        self.covered = np.zeros(self.matrix.shape[1], dtype=bool)
        self.objective = 0.0

    def solve(self) -> GreedyRanking:
        """Pick sites one by one, each time the one adding the most remaining weight."""
        csr = self.matrix
        csc = csr.tocsc()
        remaining = self.weights.copy()
        gains = csr @ remaining
        tolerance = 1e-9 * max(1.0, float(np.abs(self.weights).sum()))
        order, added = [], []
        for _ in range(min(self.count, csr.shape[0])):  # one pick per step, not per site
            best = gains.max() if len(gains) else 0.0
            if best <= tolerance:
                break
            pick = int(np.flatnonzero(gains >= best - tolerance)[0])
            newly = csr.indices[csr.indptr[pick]:csr.indptr[pick + 1]]
            newly = newly[remaining[newly] > 0]
            order.append(pick)
            added.append(float(remaining[newly].sum()))
            gains -= csc[:, newly] @ remaining[newly]
            gains[pick] = 0.0
            remaining[newly] = 0.0
        self.order = np.array(order, dtype=np.int64)
        self.added = np.array(added)
        self.covered = np.zeros(csr.shape[1], dtype=bool)
        self.covered[csr[self.order].indices] = True
        self.objective = float(self.added.sum())
        return self

    def newly_covered(self) -> list[np.ndarray]:
        """Per ranked site, the demand columns it newly covers (in ranking order)."""
        taken = np.zeros(self.matrix.shape[1], dtype=bool)
        result = []
        for pick in self.order:  # at most `count` picks
            newly = self.matrix.indices[self.matrix.indptr[pick]:self.matrix.indptr[pick + 1]]
            newly = newly[~taken[newly]]
            taken[newly] = True
            result.append(newly)
        return result


class MaximalCovering:
    """The maximal covering location problem, solved exactly with HiGHS.

    Choose at most ``count`` sites maximising the demand weight within reach:
    binary ``x_j`` (site open), ``0 ≤ y_g ≤ 1`` (demand group covered),
    ``y_g ≤ Σ_j a_gj x_j``, ``Σ_j x_j ≤ count``, maximise ``Σ_g w_g y_g``.
    Demand with identical covering sets is merged first (:func:`aggregate_demand`).

    Parameters
    ----------
    matrix, weights
        As for :class:`GreedyRanking`.
    count
        Number of sites.
    time_limit_s
        HiGHS time limit; the best solution found and the gap are reported.
    mip_rel_gap
        Relative gap at which HiGHS stops (0: prove optimality).
    start
        Rows of a feasible solution to warm-start from (e.g. the greedy ranking).

    Attributes
    ----------
    selected
        Row indices of the chosen sites, ascending.
    objective, bound, mip_gap, status, seconds, n_groups
        The solution's weight, HiGHS's dual bound, the relative gap, the model
        status, the solve time and the number of demand rows after merging.
    """

    def __init__(self, matrix: sparse.spmatrix, weights: np.ndarray, count: int, *,
                 time_limit_s: float = 60.0, mip_rel_gap: float = 0.0,
                 start: Sequence[int] | None = None) -> None:
        self.matrix = sparse.csr_matrix(matrix)
        self.weights = np.asarray(weights, float)
        self.count = int(count)
        self.time_limit_s = float(time_limit_s)
        self.mip_rel_gap = float(mip_rel_gap)
        self.start = None if start is None else np.asarray(start, dtype=np.int64)
        self.selected = np.zeros(0, dtype=np.int64)
        self.objective = 0.0
        self.bound = 0.0
        self.mip_gap = 0.0
        self.status = "empty"
        self.seconds = 0.0
        self.n_groups = 0

    def solve(self) -> MaximalCovering:
        """Build the model on the merged demand and solve it."""
        groups, group_weight, _ = aggregate_demand(self.matrix, self.weights)
        useful = np.flatnonzero(np.diff(sparse.csr_matrix(groups).indptr) > 0)
        self.n_groups = groups.shape[1]
        if len(useful) == 0 or self.count <= 0 or self.n_groups == 0:
            self.status = "Optimal"  # nothing any site can add: the empty choice is optimal
            return self
        n_x, n_y = len(useful), self.n_groups
        cover = sparse.csr_matrix(groups)[useful].T.tocsr()  # groups × useful sites
        constraints = sparse.vstack([
            sparse.hstack([-cover, sparse.identity(n_y, format="csr")]),
            sparse.hstack([sparse.csr_matrix(np.ones((1, n_x))),
                           sparse.csr_matrix((1, n_y))]),
        ]).tocsc()
        lower = np.r_[np.full(n_y, -np.inf), -np.inf]
        upper = np.r_[np.zeros(n_y), float(self.count)]
        result = solve_mip(np.r_[np.zeros(n_x), group_weight], constraints, (lower, upper),
                           np.ones(n_x + n_y), np.r_[np.ones(n_x, bool), np.zeros(n_y, bool)],
                           time_limit_s=self.time_limit_s, mip_rel_gap=self.mip_rel_gap,
                           start=self._start(useful, cover))
        self.selected = np.sort(useful[result.values[:n_x] > 0.5])
        # the covered weight of the chosen sites, computed exactly rather than from y
        self.objective = covered_weight(self.matrix, self.weights, self.selected)
        self.bound = max(result.bound, self.objective)
        self.mip_gap = result.mip_gap
        self.status = result.status
        self.seconds = result.seconds
        return self

    def _start(self, useful: np.ndarray, cover: sparse.csr_matrix) -> np.ndarray | None:
        """The warm start as (x, y) values, when one is given and feasible."""
        if self.start is None or not len(self.start):
            return None
        x0 = np.isin(useful, self.start).astype(float)
        if x0.sum() > self.count:
            return None
        return np.r_[x0, np.minimum(1.0, cover @ x0)]


class Reallocation:
    """Assign premises to facility types, exactly, within each premises' floor area.

    Binary ``x_pt`` (premises p hosts type t) for suitable pairs,
    ``0 ≤ y_gt ≤ 1`` (demand group g of type t newly covered),
    ``y_gt ≤ Σ_p a_gpt x_pt``, ``Σ_t need_pt x_pt ≤ floor_area_p``;
    maximise ``Σ_t weight_t Σ_g population_gt y_gt``.

    Parameters
    ----------
    coverage
        One :class:`CoverageSets` per type, every one with a row per premises
        (rows of unsuitable pairs empty).
    floor_area
        Floor area per premises, m².
    need
        ``(n_premises, n_types)`` floor area each type takes in each premises
        (its minimum, or the whole floor area for a type without one); NaN
        where the premises may not host the type.
    weights
        Weight per type (same order as ``coverage``).
    max_per_type
        At most this many premises per type (no limit when omitted).
    time_limit_s, mip_rel_gap
        HiGHS options.

    Attributes
    ----------
    assigned
        ``(n_premises, n_types)`` boolean plan. Assignments that add nobody
        (everyone they reach is reached by another premises of the plan) are
        dropped after the solve, last id first.
    newly
        Per type, the demand columns of its CoverageSets the plan covers.
    nearest
        Per type, the premises row serving each newly covered column (the
        nearest assigned premises; ties by row).
    objective, bound, mip_gap, status, seconds
        As for :class:`MaximalCovering`; objective in weighted residents.
    """

    def __init__(self, coverage: Sequence[CoverageSets], floor_area: np.ndarray,
                 need: np.ndarray, weights: Sequence[float], *,
                 max_per_type: int | None = None, time_limit_s: float = 60.0,
                 mip_rel_gap: float = 0.0) -> None:
        self.coverage = list(coverage)
        self.floor_area = np.asarray(floor_area, float)
        self.need = np.asarray(need, float).reshape(len(self.floor_area), len(self.coverage))
        self.weights = np.asarray(weights, float)
        self.max_per_type = max_per_type
        self.time_limit_s = time_limit_s
        self.mip_rel_gap = mip_rel_gap
        n_premises, n_types = self.need.shape
        self.assigned = np.zeros((n_premises, n_types), dtype=bool)
        self.newly: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_types
        self.nearest: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * n_types
        self.objective = 0.0
        self.bound = 0.0
        self.mip_gap = 0.0
        self.status = "empty"
        self.seconds = 0.0

    def pairs(self) -> np.ndarray:
        """``(n_pairs, 2)`` (premises row, type column) of the model's x variables."""
        fits = np.isfinite(self.need) & (self.need <= self.floor_area[:, None] + 1e-9)
        reach = np.column_stack([
            np.diff(sparse.csr_matrix(sets.distance).indptr) > 0 for sets in self.coverage
        ]) if self.coverage else np.zeros_like(fits)
        return np.argwhere(fits & reach & (self.weights[None, :] > 0))

    def solve(self) -> Reallocation:
        """Build the integer program, solve it, prune and attribute the plan."""
        pairs = self.pairs()
        if len(pairs) == 0:
            self.status = "Optimal"  # no premises can add anyone
            return self
        n_x = len(pairs)
        cover_rows, cover_cols, group_weights = self._cover(pairs)
        n_y = len(group_weights)
        # rows: y_g − Σ x ≤ 0 per group, capacity per shared premises, count per type
        blocks = [(np.concatenate([cover_rows, np.arange(n_y)]),
                   np.concatenate([cover_cols, n_x + np.arange(n_y)]),
                   np.concatenate([-np.ones(len(cover_rows)), np.ones(n_y)]),
                   np.zeros(n_y))]
        blocks.append(self._capacity(pairs, n_y))
        if self.max_per_type is not None:
            blocks.append(self._per_type(pairs, n_y + len(blocks[1][3])))
        rows, cols, values, upper = (np.concatenate(part) for part in zip(*blocks, strict=True))
        constraints = sparse.csc_matrix((values, (rows, cols)),
                                        shape=(len(upper), n_x + n_y))
        result = solve_mip(np.r_[np.zeros(n_x), group_weights], constraints,
                           (np.full(len(upper), -np.inf), upper), np.ones(n_x + n_y),
                           np.r_[np.ones(n_x, bool), np.zeros(n_y, bool)],
                           time_limit_s=self.time_limit_s, mip_rel_gap=self.mip_rel_gap)
        self._adopt(pairs[result.values[:n_x] > 0.5], result)
        return self

    def _cover(self, pairs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Covering entries (group row, x column) of every type, and the group weights."""
        pair_index = np.full(self.need.shape, -1, dtype=np.int64)
        pair_index[pairs[:, 0], pairs[:, 1]] = np.arange(len(pairs))
        rows, cols, weights = [], [], []
        n_y = 0
        for column, sets in enumerate(self.coverage):  # one block per type
            groups, group_weight, _ = aggregate_demand(sets.matrix, sets.population)
            cover = sparse.csr_matrix(groups).T.tocoo()  # groups × premises
            x_col = pair_index[cover.col, column]
            ok = x_col >= 0
            rows.append(cover.row[ok] + n_y)
            cols.append(x_col[ok])
            weights.append(group_weight * self.weights[column])
            n_y += groups.shape[1]
        return np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)

    def _capacity(self, pairs: np.ndarray, first_row: int) -> tuple[np.ndarray, ...]:
        """``Σ_t need_pt x_pt ≤ floor_area_p`` for premises with several pairs."""
        per_premises = np.bincount(pairs[:, 0], minlength=len(self.floor_area))
        shared = np.flatnonzero(per_premises > 1)
        capacity_row = np.full(len(self.floor_area), -1, dtype=np.int64)
        capacity_row[shared] = first_row + np.arange(len(shared))
        in_shared = capacity_row[pairs[:, 0]] >= 0
        return (capacity_row[pairs[in_shared, 0]], np.flatnonzero(in_shared),
                self.need[pairs[in_shared, 0], pairs[in_shared, 1]],
                self.floor_area[shared] + 1e-9)

    def _per_type(self, pairs: np.ndarray, first_row: int) -> tuple[np.ndarray, ...]:
        """``Σ_p x_pt ≤ max_per_type``, one row per type."""
        n_types = self.need.shape[1]
        return (first_row + pairs[:, 1], np.arange(len(pairs)), np.ones(len(pairs)),
                np.full(n_types, float(self.max_per_type)))

    def _adopt(self, chosen: np.ndarray, result: MipResult) -> None:
        """Take the solver's plan, prune it, attribute the residents, keep the figures."""
        self.assigned[chosen[:, 0], chosen[:, 1]] = True
        self._prune()
        self._attribute()
        self.objective = float(sum(
            self.weights[column] * sets.population[self.newly[column]].sum()
            for column, sets in enumerate(self.coverage)))
        self.bound = max(result.bound, self.objective)
        self.mip_gap = result.mip_gap
        self.status = result.status
        self.seconds = result.seconds

    def _prune(self) -> None:
        """Drop assignments whose residents all have another assigned premises."""
        for column, sets in enumerate(self.coverage):
            matrix = sets.matrix
            weight = sets.population
            while True:
                rows = np.flatnonzero(self.assigned[:, column])
                if len(rows) == 0:
                    break
                counts = np.asarray(matrix[rows].sum(axis=0)).ravel()
                unique = matrix[rows].multiply(counts == 1).multiply(weight)
                alone = np.asarray(unique.sum(axis=1)).ravel()
                useless = rows[alone <= 0]
                if len(useless) == 0:
                    break
                self.assigned[useless[-1], column] = False

    def _attribute(self) -> None:
        """Newly covered demand and the nearest assigned premises serving each."""
        for column, sets in enumerate(self.coverage):
            rows = np.flatnonzero(self.assigned[:, column])
            if len(rows) == 0:
                self.newly[column] = np.zeros(0, dtype=np.int64)
                self.nearest[column] = np.zeros(0, dtype=np.int64)
                continue
            block = sets.distance[rows].tocoo()
            order = np.lexsort((block.row, block.data, block.col))
            col, row = block.col[order], block.row[order]
            first = np.r_[True, col[1:] != col[:-1]]
            self.newly[column] = col[first]
            self.nearest[column] = rows[row[first]]
