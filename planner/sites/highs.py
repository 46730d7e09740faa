"""The HiGHS plumbing: one silent solver, one call for a mixed-integer program."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse


@dataclass
class MipResult:
    """What HiGHS returned."""

    values: np.ndarray
    objective: float
    bound: float
    mip_gap: float
    status: str
    seconds: float


_HIGHS_BANNER_SHOWN = False


def _new_highs():
    """A silent ``highspy.Highs``; its first construction prints a banner on fd 1."""
    import highspy

    global _HIGHS_BANNER_SHOWN
    if _HIGHS_BANNER_SHOWN:
        highs = highspy.Highs()
    else:
        sys.stdout.flush()
        saved = os.dup(1)
        try:
            with open(os.devnull, "w") as null:
                os.dup2(null.fileno(), 1)
                highs = highspy.Highs()
        finally:
            os.dup2(saved, 1)
            os.close(saved)
        _HIGHS_BANNER_SHOWN = True
    highs.setOptionValue("output_flag", False)
    return highs


def _model(cost, matrix: sparse.csc_matrix, row_lower, row_upper, col_upper, integer):
    """The ``highspy.HighsLp`` of a maximisation, with infinite bounds as HiGHS infinity."""
    import highspy

    inf = highspy.kHighsInf
    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = matrix.shape[1], matrix.shape[0]
    lp.col_cost_ = np.asarray(cost, float)
    lp.col_lower_ = np.zeros(matrix.shape[1])
    lp.col_upper_ = np.asarray(col_upper, float)
    lp.row_lower_ = np.where(np.isneginf(row_lower), -inf, row_lower).astype(float)
    lp.row_upper_ = np.where(np.isposinf(row_upper), inf, row_upper).astype(float)
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = matrix.indptr.astype(np.int32)
    lp.a_matrix_.index_ = matrix.indices.astype(np.int32)
    lp.a_matrix_.value_ = matrix.data.astype(float)
    lp.integrality_ = [highspy.HighsVarType.kInteger if flag else
                       highspy.HighsVarType.kContinuous for flag in integer]
    lp.sense_ = highspy.ObjSense.kMaximize
    return lp


def solve_mip(cost: np.ndarray, constraints: sparse.spmatrix,
              row_bounds: tuple[np.ndarray, np.ndarray], col_upper: np.ndarray,
              integer: np.ndarray, *, time_limit_s: float = 60.0, mip_rel_gap: float = 0.0,
              start: np.ndarray | None = None) -> MipResult:
    """Maximise ``cost · v`` s.t. ``row_lower ≤ A v ≤ row_upper``, ``0 ≤ v ≤ col_upper``.

    ``row_bounds`` is ``(row_lower, row_upper)``; ``integer`` marks integer
    columns. Infinite bounds are passed as HiGHS infinity. The solve is
    deterministic (fixed seed); ``start`` warm-starts it.
    """
    import highspy

    row_lower, row_upper = row_bounds

    matrix = sparse.csc_matrix(constraints)
    matrix.sort_indices()
    highs = _new_highs()
    highs.setOptionValue("time_limit", float(time_limit_s))
    highs.setOptionValue("mip_rel_gap", float(mip_rel_gap))
    highs.setOptionValue("random_seed", 0)
    highs.passModel(_model(cost, matrix, row_lower, row_upper, col_upper, integer))
    if start is not None:
        solution = highspy.HighsSolution()
        solution.col_value = list(np.asarray(start, float))
        solution.value_valid = True
        highs.setSolution(solution)
    began = time.perf_counter()
    highs.run()
    seconds = time.perf_counter() - began
    status = highs.modelStatusToString(highs.getModelStatus())
    info = highs.getInfo()
    values = np.asarray(highs.getSolution().col_value, float)
    if len(values) != matrix.shape[1]:
        values = np.zeros(matrix.shape[1])
    objective = float(info.objective_function_value)
    bound = float(info.mip_dual_bound) if np.isfinite(info.mip_dual_bound) else objective
    gap = float(info.mip_gap) if np.isfinite(info.mip_gap) else 0.0
    return MipResult(values, objective, bound, max(gap, 0.0), status, seconds)
