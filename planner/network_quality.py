"""Network quality per community: detour index and compounds without paths.

Two measures of how well the walking network serves the homes, beside the
coverage itself (:mod:`planner.coverage`): the median detour index (network ÷
straight-line distance to the facilities reached) and the residential
compounds where no walkable way is mapped inside.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings

if TYPE_CHECKING:
    from planner.network import WalkNetwork

#: Shapely's type ids of Polygon and MultiPolygon.
POLYGON_TYPE_IDS = (3, 6)
#: Homes per block of the detour index: the block's (home × type) arrays stay in the cache.
_DETOUR_BLOCK_HOMES = 4096
#: Below this minimum (m) the detour index does not screen pairs by their complex
#: modulus (whose relative error grows among subnormal numbers).
_SCREEN_FROM_M = 1e-3
#: Keys of the sort within groups stay below 2**this (positive finite floats).
_MAX_KEY_BITS = 62


def community_detour_index(residences: gpd.GeoDataFrame, distance_m: np.ndarray,
                           nearest: np.ndarray, facility_points,
                           communities: gpd.GeoDataFrame,
                           min_straight_m: float | None = None) -> np.ndarray:
    """Median detour index per community: network ÷ straight-line distance.

    Computed over the (residence, facility reached) pairs of every type, on
    the pairs at least ``min_straight_m`` apart in a straight line (short legs,
    where the walk to the edge dominates, would swamp the measure). A high
    value shows where the walk is long for its distance: barriers (fences,
    rivers, dual carriageways without crossings) or missing paths.

    Parameters
    ----------
    residences
        With ``community_id`` and point geometry.
    distance_m
        ``(n_residences, n_types)`` network distances (as published).
    nearest
        ``(n_residences, n_types)`` index of the facility reached (-1: none),
        from :meth:`planner.access.Access.nearest_facilities`.
    facility_points
        The facility points the indices refer to.
    communities
        ``community_id`` in output order.
    min_straight_m
        :data:`planner.settings.detour_min_straight_m` when omitted.

    Returns
    -------
    numpy.ndarray
        One value per community, rounded to 0.01; NaN where no pair qualifies.
    """
    minimum = settings.detour_min_straight_m if min_straight_m is None else min_straight_m
    points = np.asarray(getattr(facility_points, "values", facility_points), dtype=object)
    home_code, uniques = pd.factorize(residences["community_id"].to_numpy(dtype=object))
    # homes grouped by community (as groupby: no unnamed group): the pairs of a
    # block of whole communities then come out grouped, and sort within the block
    homes = np.flatnonzero(home_code >= 0)
    homes = homes[np.argsort(home_code[homes], kind="stable")]
    home_xy = shapely.get_coordinates(residences.geometry.to_numpy())
    facility_xy = shapely.get_coordinates(points)
    median = np.full(len(uniques), np.nan)
    if len(facility_xy):
        # blocks of whole communities, a few thousand homes each: every temporary
        # stays in the cache and no array over all (home × type) pairs is made
        first_home = np.r_[0, np.cumsum(np.bincount(home_code[homes], minlength=len(uniques)))]
        cuts = np.searchsorted(first_home, np.arange(0, len(homes), _DETOUR_BLOCK_HOMES),
                               side="right") - 1
        bounds = np.unique(np.r_[cuts, len(uniques)])
        for begin, end in itertools.pairwise(bounds):
            rows = homes[first_home[begin]:first_home[end]]
            pair, ratio = _detour_ratios(nearest[rows], distance_m[rows], home_xy[rows],
                                         facility_xy, minimum)
            code = (home_code[rows] - begin)[pair // nearest.shape[1]]
            if len(code):
                median[begin:end] = _group_medians(_sorted_in_groups(code, ratio), code,
                                                   end - begin)
    position = pd.Index(uniques).get_indexer(communities["community_id"].to_numpy(dtype=object))
    result = np.where(position >= 0, median[np.maximum(position, 0)], np.nan)
    return np.round(result, 2)


def _detour_ratios(facility: np.ndarray, network: np.ndarray, home_xy: np.ndarray,
                   facility_xy: np.ndarray, minimum: float) -> tuple[np.ndarray, np.ndarray]:
    """The (home × type) pairs that count for the detour index, and their ratios.

    A pair counts when a facility is reached over a finite distance at least
    ``minimum`` away in a straight line and the ratio is a number. Pairs are
    flat row-major positions, ascending (masks are turned into positions once:
    taking by position is several times faster than boolean indexing).
    """
    # x + iy: one gather and one subtraction for both coordinates (exactly the
    # real ones, component by component)
    delta = (facility_xy.view(np.complex128).ravel().take(facility)
             - home_xy.view(np.complex128))
    keep = (facility >= 0) & np.isfinite(network)
    if minimum > _SCREEN_FROM_M:
        # np.hypot is exact but slow: the complex modulus (within a few ulp of it)
        # rules out the pairs clearly closer than the minimum, hypot decides the rest
        keep &= ~(np.abs(delta) < minimum * (1 - 1e-9))
    pair = np.flatnonzero(keep)
    chosen = delta.ravel().take(pair)
    straight = np.hypot(chosen.real, chosen.imag)
    far = np.flatnonzero(straight >= minimum)
    pair = pair.take(far)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = network.ravel().take(pair) / straight.take(far)
    number = ~np.isnan(ratio)
    if not number.all():
        pair, ratio = pair[number], ratio[number]
    return pair, ratio


def _group_medians(value: np.ndarray, code: np.ndarray, n_groups: int) -> np.ndarray:
    """Median of the sorted ``value`` per group ``code`` (ascending, 0 … n_groups - 1)."""
    count = np.bincount(code, minlength=n_groups)
    start = np.cumsum(count) - count
    median = np.full(n_groups, np.nan)
    has = np.flatnonzero(count)
    median[has] = (value[start[has] + (count[has] - 1) // 2]
                   + value[start[has] + count[has] // 2]) / 2
    return median


def _sorted_in_groups(code: np.ndarray, value: np.ndarray) -> np.ndarray:
    """``value`` (≥ 0, no NaN) sorted within the runs of ascending integer ``code``.

    A non-negative float orders as its bit pattern, so the code (plus one) goes
    in the high bits of one key and the value's bits (less the smallest) in the
    low ones: one plain sort of the keys, many times faster than an argsort of
    the values, and exact. The key, below 2**62, is itself the bit pattern of a
    positive float that orders as the key does, and numpy sorts floats faster
    than unsigned integers. When code and value do not fit, the codes are
    taken a batch at a time (a lexsort for values spanning nearly every float).
    """
    bits = value.view(np.uint64)
    low = bits.min()
    bits = bits - low
    span = int(bits.max()).bit_length()
    if span > _MAX_KEY_BITS - 2:
        return value[np.lexsort((value, code))]
    per_batch = (1 << (_MAX_KEY_BITS - span)) - 1
    result = np.empty_like(value)
    firsts = np.arange(code[0], code[-1] + 1, per_batch)
    bounds = np.r_[np.searchsorted(code, firsts), len(code)]
    for first, begin, end in zip(firsts, bounds[:-1], bounds[1:], strict=True):
        key = ((code[begin:end] - (first - 1)).astype(np.uint64) << np.uint64(span)) \
            | bits[begin:end]
        ordered = np.sort(key.view(np.float64)).view(np.uint64)
        result[begin:end] = ((ordered & np.uint64((1 << span) - 1)) + low).view(np.float64)
    return result


def compounds_without_paths(features: gpd.GeoDataFrame, residences: gpd.GeoDataFrame,
                            network: WalkNetwork) -> np.ndarray:
    """Residences in a residential compound with no walkable way mapped inside.

    A compound is a ``landuse=residential`` polygon; it has no paths when no
    network edge has its midpoint inside. Distances from such homes start at
    the compound's edge, so thin network data shows up where it is.

    Returns
    -------
    numpy.ndarray
        Per residence: the compound's index in ``features`` (-1 when the
        residence is in no compound without paths).
    """
    result = np.full(len(residences), -1, dtype=np.int64)
    if "landuse" not in features.columns or not len(residences):
        return result
    geometry = features.geometry.to_numpy()
    compounds = geometry[features["landuse"].eq("residential").to_numpy(dtype=bool)
                         & np.isin(shapely.get_type_id(geometry), POLYGON_TYPE_IDS)]
    if not len(compounds):
        return result
    # the midpoint of each segment u → v, as GEOS interpolates it, without
    # building a LineString per edge (a city has a million)
    start = network.node_xy[network.edge_u]
    midpoints = shapely.points(start + 0.5 * (network.node_xy[network.edge_v] - start))
    # as geopandas' sjoin "within": the points' trees queried with "contains"
    # (prepared compounds); a home in several compounds goes to the first
    with_paths = shapely.STRtree(midpoints).query(compounds, predicate="contains")[0]
    compound, home = shapely.STRtree(residences.geometry.to_numpy()).query(
        compounds, predicate="contains")
    first = np.full(len(residences), len(compounds))
    np.minimum.at(first, home, compound)
    homes = np.flatnonzero((first < len(compounds)) & ~np.isin(first, with_paths))
    result[homes] = first[homes]
    return result
