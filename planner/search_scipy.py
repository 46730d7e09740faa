"""The search of a small network: scipy's Dijkstra and numpy, nothing to compile.

:class:`planner.access.Access` searches a network of a district with
``scipy.sparse.csgraph.dijkstra`` on the reduced graph (terminals, then one
virtual node per facility with one-way legs to its chain's ends), and
expands the terminals' results to every node with numpy. Loading the
compiled search (:mod:`planner.search`: numba's import and cache, ~0.7 s)
would cost a district or a smaller city more than it saves; from
:data:`planner.access.COMPILED_MIN_NODES` nodes up the compiled search runs
instead. Both give the same distances; where two facilities reach a node
over exactly equal distances, scipy keeps the one its heap settles first and
the compiled search the lower index.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import dijkstra

if TYPE_CHECKING:
    from planner.network import Contraction


class ScipyTerminalGraph:
    """The reduced graph searched by scipy: the interface of :class:`planner.search.TerminalGraph`.

    Parameters
    ----------
    graph
        The reduced graph: ``n_terminals`` terminals, then one virtual node
        per facility with one-way legs out of it.
    n_terminals
        How many of its nodes are terminals.
    """

    def __init__(self, graph: sparse.csr_matrix, n_terminals: int) -> None:
        self.graph, self.n_terminals = graph.tocsr(), n_terminals

    def search(self, facilities: np.ndarray, limit_m: float) -> tuple[np.ndarray, np.ndarray]:
        """Distances of the terminals from the nearest of ``facilities`` within ``limit_m``,
        and the facility each was reached from (-1: none)."""
        n_terminals = self.n_terminals
        distance, _, origin = dijkstra(self.graph, directed=True,
                                       indices=n_terminals + np.asarray(facilities),
                                       min_only=True, limit=limit_m, return_predecessors=True)
        origin = origin[:n_terminals]
        return distance[:n_terminals], np.where(origin >= n_terminals, origin - n_terminals,
                                                -1).astype(np.int32)


def expand(contraction: Contraction, reached: np.ndarray, reached_from: np.ndarray,
           on_chain: tuple, limit_m: float, out: tuple | None = None) -> tuple:
    """:func:`planner.search.expand` in numpy: every node's distance and first facility.

    The distance is :meth:`planner.network.Contraction.expand`'s; an interior
    node takes the facility of the chain end it is reached through (the ``a``
    end on a tie), or a facility on the chain itself when that is strictly
    nearer; beyond ``limit_m`` the facility is -1.
    """
    n_nodes = len(contraction.reduced)
    distance_out, source = out if out is not None else (
        None, np.empty(n_nodes, dtype=np.int32))
    distance = contraction.expand(reached, limit_m, out=distance_out, on_chain=on_chain)
    contraction.to_nodes(reached_from, source)
    end_a, end_b, rest = contraction._interior_ends
    terminal_distance = contraction.at_terminals(distance)
    via_a = terminal_distance[end_a] + contraction.offset_m
    via_b = terminal_distance[end_b] + rest
    inner = np.where(via_a <= via_b, reached_from[end_a], reached_from[end_b])
    rows, value, facility = on_chain
    if len(rows):  # one per row, the nearest (see Access._on_chain)
        nearer = value < np.minimum(via_a[rows], via_b[rows])
        inner[rows[nearer]] = facility[nearer]
    source[contraction.interior] = inner
    source[~np.isfinite(distance)] = -1  # beyond the limit, as in a bounded search
    return distance, source
