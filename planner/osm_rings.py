"""The rings of OSM area ways as polygons: closed, oriented, repaired where invalid.

Most rings of a city (building footprints) are convex: an exact-sign
orientation test in numpy (:func:`convex_rings`) settles them without GEOS,
which judges only the others.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import shapely

from planner.opl import Objects


@dataclass
class Rings:
    """Closed rings of area ways (:func:`ring_parts`), counter-clockwise where valid."""

    coords: np.ndarray
    offsets: np.ndarray
    rows: np.ndarray
    repaired_rings: np.ndarray
    repaired: np.ndarray


def ring_parts(ways: Objects, area: np.ndarray) -> Rings:
    """The rings of the area ways with four located nodes or more, as polygons will have them.

    A ring that lost nodes outside the extract is closed over the gap. A
    valid clockwise ring is reversed (what ``orient_polygons`` does to a valid
    shell); an invalid one is repaired with ``buffer(0)`` and oriented.
    """
    none = Rings(np.empty((0, 2)), np.zeros(1, dtype=np.int64), np.empty(0, dtype=np.int64),
                  np.empty(0, dtype=np.int64), np.empty(0, dtype=object))
    if not len(area):
        return none
    renumber = np.full(len(ways.ids), -1, dtype=np.int64)
    renumber[area] = np.arange(len(area))
    keep = (renumber[ways.way] >= 0) & ways.valid
    coords, which = ways.xy[keep], renumber[ways.way[keep]]
    if not len(which):
        return none
    starts = np.flatnonzero(np.r_[True, which[1:] != which[:-1]])
    ends = np.r_[starts[1:], len(which)] - 1
    gap = np.flatnonzero(np.any(coords[starts] != coords[ends], axis=1))
    if len(gap):
        coords = np.insert(coords, ends[gap] + 1, coords[starts[gap]], axis=0)
        which = np.insert(which, ends[gap] + 1, which[starts[gap]])
    enough = np.bincount(which, minlength=len(area)) >= 4
    keep = enough[which]
    coords, which = coords[keep], which[keep]
    rows = np.flatnonzero(enough)
    lengths = np.bincount(which, minlength=len(area))[rows]
    offsets = np.r_[0, np.cumsum(lengths)]
    valid, ccw = convex_rings(coords, offsets)
    unsure = np.flatnonzero(~valid)
    repaired_rings = np.empty(0, dtype=np.int64)
    repaired = np.empty(0, dtype=object)
    if len(unsure):  # not convex: GEOS judges, in the coordinates of the file
        polygons = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, coords[_ring_positions(offsets, unsure)],
            (np.r_[0, np.cumsum(lengths[unsure])], np.arange(len(unsure) + 1)))
        is_valid = shapely.is_valid(polygons)
        valid[unsure] = is_valid
        ccw[unsure[is_valid]] = shapely.is_ccw(shapely.get_exterior_ring(polygons[is_valid]))
        repaired_rings = unsure[~is_valid]
        repaired = shapely.orient_polygons(shapely.buffer(polygons[~is_valid], 0),
                                           exterior_cw=False)
    clockwise = np.flatnonzero(valid & ~ccw)
    if len(clockwise):
        coords = coords[_reversed_positions(offsets, clockwise)]
    return Rings(coords, offsets, rows, repaired_rings, repaired)


def _ring_positions(offsets: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Positions in the coordinates of the chosen rings' coordinates, ring after ring."""
    lengths = offsets[chosen + 1] - offsets[chosen]
    start = np.repeat(offsets[chosen] - (np.cumsum(lengths) - lengths), lengths)
    return start + np.arange(lengths.sum())


def _reversed_positions(offsets: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """A permutation of the coordinates that reverses the chosen rings (others stay)."""
    positions = np.arange(offsets[-1])
    inside = _ring_positions(offsets, chosen)
    lengths = offsets[chosen + 1] - offsets[chosen]
    # position p of a ring [s, e) takes s + e - 1 - p
    mirror = np.repeat(offsets[chosen] + offsets[chosen + 1] - 1, lengths)
    positions[inside] = mirror - inside
    return positions


#: Shewchuk's error bound of a floating-point orientation test (``orient2dfast``):
#: beyond it the sign of the computed determinant is the sign of the exact one.
_ORIENTATION_ERROR = (3.0 + 16.0 * np.finfo(float).eps / 2) * np.finfo(float).eps / 2


def convex_rings(coords: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Which closed rings are surely strictly convex (so valid shells), and which of them
    are counter-clockwise, without GEOS.

    Every turn is judged with an exact-sign orientation test (the error bound
    :data:`_ORIENTATION_ERROR`); a ring whose turns all surely go the same way
    and sum to one full turn is a strictly convex polygon: simple, valid, and
    oriented as its turns (what GEOS finds too, its predicates being exact).
    A ring with a doubtful, flat or opposite turn is left to GEOS.
    """
    n_rings = len(offsets) - 1
    n_vertices = np.diff(offsets) - 1  # the closing coordinate repeats the first
    # vertex v of ring r is coordinate v + r; the last vertex precedes the first
    first = offsets[:-1] - np.arange(n_rings)
    here = np.arange(offsets[-1] - n_rings) + np.repeat(np.arange(n_rings), n_vertices)
    before = here - 1
    before[first] = offsets[1:] - 2
    a, b, c = coords[before], coords[here], coords[here + 1]
    left = (a[:, 0] - c[:, 0]) * (b[:, 1] - c[:, 1])
    right = (a[:, 1] - c[:, 1]) * (b[:, 0] - c[:, 0])
    turn = left - right
    sure = np.abs(turn) > _ORIENTATION_ERROR * (np.abs(left) + np.abs(right))
    positive = np.add.reduceat((sure & (turn > 0)).astype(np.int64), first)
    negative = np.add.reduceat((sure & (turn < 0)).astype(np.int64), first)
    convex = (positive == n_vertices) | (negative == n_vertices)
    # the turning angles of a one-way ring sum to whole turns: one for a convex polygon,
    # more for a star (a pentagram turns twice); four vertices cannot turn twice
    star = np.flatnonzero(convex & (n_vertices > 4))
    if len(star):
        rows = _ring_positions(np.r_[first, len(here)], star)
        ab, bc = b[rows] - a[rows], c[rows] - b[rows]
        angle = np.arctan2(np.abs(ab[:, 0] * bc[:, 1] - ab[:, 1] * bc[:, 0]),
                           ab[:, 0] * bc[:, 0] + ab[:, 1] * bc[:, 1])
        turning = np.add.reduceat(angle, np.r_[0, np.cumsum(n_vertices[star])[:-1]])
        convex[star] &= turning < 3 * np.pi
    return convex, convex & (positive == n_vertices)


def ring_polygons(ways: Objects, area: np.ndarray) -> np.ndarray:
    """Polygons of the area ways in WGS84 (None for a ring with fewer than four located nodes)."""
    rings = ring_parts(ways, area)
    geometry = np.full(len(area), None, dtype=object)
    if len(rings.rows):
        polygons = shapely.from_ragged_array(
            shapely.GeometryType.POLYGON, rings.coords,
            (rings.offsets, np.arange(len(rings.rows) + 1)))
        polygons[rings.repaired_rings] = rings.repaired
        geometry[rings.rows] = polygons
    return geometry
