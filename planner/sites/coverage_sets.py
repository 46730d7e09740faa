"""Which candidate sites newly bring which residences within a type's threshold."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import geopandas as gpd
import numpy as np
from scipy import sparse

from planner.network import Snap, WalkNetwork
from planner.sites.distances import site_distances


@dataclass
class CoverageSets:
    """Which candidate sites newly bring which residences within one type's threshold.

    Attributes
    ----------
    type_id, threshold_m
        The facility type and its walking threshold.
    distance
        ``(n_sites, n_demand)`` sparse walking distances ≤ threshold; a row per
        candidate site (empty where the site cannot host the type), a column per
        demand residence.
    demand
        Residence position (row of ``Analysis.residences``) of every column:
        residences no existing facility of the type covers and some site reaches.
    population
        Population of every column.
    """

    type_id: str
    threshold_m: float
    distance: sparse.csr_matrix
    demand: np.ndarray
    population: np.ndarray

    @property
    def matrix(self) -> sparse.csr_matrix:
        """The binary incidence (1 where the site covers the residence)."""
        incidence = self.distance.copy()
        incidence.data = np.ones_like(incidence.data)
        return incidence

    def rows(self, rows: np.ndarray) -> CoverageSets:
        """The same sets restricted to some sites (rows), demand unchanged."""
        return CoverageSets(self.type_id, self.threshold_m, self.distance[rows],
                            self.demand, self.population)

    @classmethod
    def from_distances(cls, distances: sparse.csr_matrix, threshold_m: float,
                       population: np.ndarray, *, covered: np.ndarray | None = None,
                       suitable: np.ndarray | None = None, type_id: str = "") -> CoverageSets:
        """Cut a site × residence distance matrix at a threshold.

        Parameters
        ----------
        distances
            From :func:`~planner.sites.distances.site_distances` (limit ≥ threshold).
        threshold_m
            The type's threshold; distances are rounded to 0.1 m first, as in
            the residences' ``dist_<type>`` columns.
        population
            Per residence.
        covered
            Residences already covered by existing facilities (dropped).
        suitable
            Sites that may host the type (other rows are emptied).
        type_id
            The type's id.
        """
        matrix = distances.tocoo()
        keep = np.round(matrix.data, 1) <= threshold_m
        if covered is not None:
            keep &= ~np.asarray(covered, bool)[matrix.col]
        if suitable is not None:
            keep &= np.asarray(suitable, bool)[matrix.row]
        rows, cols, values = matrix.row[keep], matrix.col[keep], matrix.data[keep]
        demand, column = np.unique(cols, return_inverse=True)
        cut = sparse.csr_matrix((values, (rows, column)),
                                shape=(distances.shape[0], len(demand)))
        return cls(type_id, float(threshold_m), cut, demand,
                   np.asarray(population, float)[demand])


def coverage_sets(network: WalkNetwork, sites, residences: gpd.GeoDataFrame,
                  thresholds_m: Mapping[str, float], *, covered: Mapping[str, np.ndarray],
                  suitable: Mapping[str, np.ndarray] | None = None,
                  residence_snap: Snap | None = None) -> dict[str, CoverageSets]:
    """Coverage sets of several types from one Dijkstra pass (limit = largest threshold).

    Parameters
    ----------
    network
        The walking network.
    sites
        Site points (or their Snap).
    residences
        With ``population``; geometry used unless ``residence_snap`` is given.
    thresholds_m
        Threshold per type id.
    covered
        Per type, the residences existing facilities already cover.
    suitable
        Per type, the sites that may host it (all when omitted).
    residence_snap
        The residences' snap, when already computed.
    """
    if not thresholds_m:
        return {}
    snap = residence_snap if residence_snap is not None else network.snap(residences.geometry)
    distances = site_distances(network, sites, snap, max(thresholds_m.values()))
    population = residences["population"].to_numpy(float)
    return {type_id: CoverageSets.from_distances(
        distances, threshold, population, covered=covered[type_id],
        suitable=None if suitable is None else suitable[type_id], type_id=type_id)
        for type_id, threshold in thresholds_m.items()}


def aggregate_demand(matrix: sparse.spmatrix, weights: np.ndarray
                     ) -> tuple[sparse.csc_matrix, np.ndarray, np.ndarray]:
    """Merge demand columns with identical covering sets.

    Parameters
    ----------
    matrix
        ``(n_sites, n_demand)``; nonzero = covers.
    weights
        Per demand column.

    Returns
    -------
    (groups, group_weights, group_of_column)
        The binary ``(n_sites, n_groups)`` matrix, the summed weight per group,
        and the group of every column (-1 for columns no site covers or of
        zero weight, which are dropped).
    """
    csc = sparse.csc_matrix(matrix, dtype=float)
    csc.sum_duplicates()
    csc.eliminate_zeros()
    csc.data[:] = 1.0
    weights = np.asarray(weights, float)
    n_sites, n_demand = csc.shape
    nnz = np.diff(csc.indptr)
    live = (nnz > 0) & (weights > 0)
    # two independent 64-bit sums of random row keys identify a column's row set
    rng = np.random.default_rng(20240601)
    keys = rng.integers(0, np.iinfo(np.int64).max, size=(2, n_sites), dtype=np.int64)
    keys = keys.astype(np.uint64)
    hashes = []
    for key in keys:
        cumulative = np.concatenate([[np.uint64(0)], np.cumsum(key[csc.indices],
                                                               dtype=np.uint64)])
        hashes.append(cumulative[csc.indptr[1:]] - cumulative[csc.indptr[:-1]])
    signature = np.stack([nnz.astype(np.uint64), *hashes], axis=1)[live]
    _, first, inverse = np.unique(signature, axis=0, return_index=True, return_inverse=True)
    live_columns = np.flatnonzero(live)
    representative = live_columns[first]
    groups = csc[:, representative]
    # verify: every column equals its group's representative (hash collisions)
    rebuilt = groups[:, inverse.ravel()]
    if (rebuilt != csc[:, live_columns]).nnz:
        groups, inverse = csc[:, live_columns], np.arange(len(live_columns))
    group_of_column = np.full(n_demand, -1, dtype=np.int64)
    group_of_column[live_columns] = inverse.ravel()
    group_weights = np.bincount(inverse.ravel(), weights=weights[live_columns],
                                minlength=groups.shape[1])
    return sparse.csc_matrix(groups), group_weights, group_of_column


def covered_weight(matrix: sparse.spmatrix, weights: np.ndarray, sites) -> float:
    """Total weight of the demand any of ``sites`` covers."""
    rows = sparse.csr_matrix(matrix)[np.asarray(sites, dtype=np.int64)]
    hit = np.zeros(matrix.shape[1], dtype=bool)
    hit[rows.indices[rows.data != 0]] = True
    return float(np.asarray(weights, float)[hit].sum())
