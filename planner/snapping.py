"""Snapping points onto the straight edges of a walking network.

The engine behind :meth:`planner.network.WalkNetwork.snap`: candidates come
from a k-d tree of the midpoints of edge pieces at most :data:`SNAP_SAMPLE_M`
long, the exact distance to each candidate edge decides. Points are handled
in blocks of :data:`BLOCK_POINTS` so that the per-candidate temporaries stay in
the processor's cache instead of being allocated (and page-faulted) whole.
"""

from __future__ import annotations

import numpy as np
import shapely

from planner import settings

#: Spacing of the points sampled along edges for snapping, metres.
SNAP_SAMPLE_M = 30.0
#: Nearest samples examined per point when snapping.
SNAP_CANDIDATES = 12
#: Points per block of the candidate search (a few MB of temporaries per block).
BLOCK_POINTS = 8192


class EdgeSnapper:
    """Nearest-edge search over the segments ``node_xy[edge_u] → node_xy[edge_v]``.

    Parameters
    ----------
    node_xy, edge_u, edge_v
        The network's node coordinates and edge ends.
    """

    def __init__(self, node_xy: np.ndarray, edge_u: np.ndarray, edge_v: np.ndarray) -> None:
        self.node_xy, self.edge_u, self.edge_v = node_xy, edge_u, edge_v
        self.n_edges = len(edge_u)
        self._segments: np.ndarray | None = None
        self._samples: tuple | None = None
        self._tree: shapely.STRtree | None = None

    def snap(self, geoms: np.ndarray, limit: float, graded: np.ndarray | None,
             edge_length_m: np.ndarray) -> tuple[np.ndarray, ...]:
        """Edge, offset, access distance and ground-preferred mask per geometry
        (see :meth:`planner.network.WalkNetwork.snap`); ``graded`` is None when
        grade-separated edges are not avoided."""
        n_points = len(geoms)
        offset_m = np.zeros(n_points)
        access_m = np.full(n_points, np.nan)
        moved = np.zeros(n_points, dtype=bool)
        if n_points == 0 or self.n_edges == 0:
            return np.full(n_points, -1, dtype=np.int64), offset_m, access_m, moved
        point = shapely.get_type_id(geoms) == 0
        point_like = point & ~shapely.is_empty(geoms)
        # the coordinates of the points, read once (NaN for the other geometries)
        xy = np.full((n_points, 2), np.nan)
        xy[point_like] = shapely.get_coordinates(geoms[point_like])[:, :2]
        edge = self.nearest_edges(geoms, limit, xy=xy, point_like=point_like)
        if graded is not None and graded.any() and not graded.all():
            moved = self._prefer_ground(geoms, xy, point, edge, graded)
        placed = np.flatnonzero(edge >= 0)
        share, distance = self.project(edge[placed], self._nearest_xy(geoms, xy, point,
                                                                     placed, edge[placed]))
        offset_m[placed] = share * edge_length_m[edge[placed]]
        access_m[placed] = distance
        return edge, offset_m, access_m, moved

    def _prefer_ground(self, geoms: np.ndarray, xy: np.ndarray, point: np.ndarray,
                       edge: np.ndarray, graded: np.ndarray) -> np.ndarray:
        """Move points off grade-separated edges where a ground edge is near (in place)."""
        moved = np.zeros(len(geoms), dtype=bool)
        elevated = np.flatnonzero((edge >= 0) & graded[np.maximum(edge, 0)])
        if not len(elevated):
            return moved
        _, to_elevated = self.project(edge[elevated], self._nearest_xy(
            geoms, xy, point, elevated, edge[elevated]))
        allowed = np.maximum(to_elevated * settings.elevated_snap_factor,
                             to_elevated + settings.elevated_snap_extra_m)
        # the nearest ground-level edge, from the same sample tree with the
        # grade-separated edges left out (no second tree of the whole network)
        found = self.nearest_edges(geoms[elevated], float(allowed.max()), usable=~graded)
        ok = np.flatnonzero(found >= 0)
        _, to_ground = self.project(found[ok], self._nearest_xy(
            geoms, xy, point, elevated[ok], found[ok]))
        ok = ok[to_ground <= allowed[ok]]
        edge[elevated[ok]] = found[ok]
        moved[elevated[ok]] = True
        return moved

    def nearest_edges(self, geoms: np.ndarray, limit: float, usable: np.ndarray | None = None,
                      *, xy: np.ndarray | None = None,
                      point_like: np.ndarray | None = None) -> np.ndarray:
        """Index of the nearest edge of every geometry within ``limit`` (-1 beyond),
        of the ``usable`` edges only when given (a mask over the edges).

        ``xy`` and ``point_like`` (the points' coordinates and which geometries
        are non-empty points) are read from ``geoms`` when not given. Of
        equally near edges the one with the lowest index is taken.
        """
        n_points = len(geoms)
        edge = np.full(n_points, -1, dtype=np.int64)
        if n_points == 0 or self.n_edges == 0:
            return edge
        if point_like is None:
            point_like = (shapely.get_type_id(geoms) == 0) & ~shapely.is_empty(geoms)
        rows = np.flatnonzero(point_like)
        xy = shapely.get_coordinates(geoms[rows])[:, :2] if xy is None else xy[rows]
        undecided = [np.flatnonzero(~point_like)]
        k = SNAP_CANDIDATES
        while len(rows):  # more candidates for the points not decided yet, twice
            k = min(k, len(self.samples[1]))
            nearest, decided = self._search(xy, k, limit, usable)
            near = decided & (nearest >= 0)
            edge[rows[near]] = nearest[near]
            rows, xy = rows[~decided], xy[~decided]
            if k >= 4 * SNAP_CANDIDATES:
                break
            k *= 4
        undecided = np.concatenate([rows, *undecided])
        if len(undecided):
            edge[undecided] = self._nearest_by_rtree(geoms[undecided], limit, usable)
        return edge

    def _search(self, xy: np.ndarray, k: int, limit: float,
                usable: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Nearest edge among the edges of the ``k`` nearest samples of every point
        (-1 beyond ``limit``), and whether that is certain, block by block.

        When the k-th nearest sample is further than the best edge found plus
        half the sample spacing, no other edge can be nearer: every point of an
        edge lies within half that spacing of one of its samples.
        """
        tree, sample_edge = self.samples
        nearest = np.empty(len(xy), dtype=np.int64)
        decided = np.empty(len(xy), dtype=bool)
        block = max(BLOCK_POINTS * SNAP_CANDIDATES // k, 1)
        for start in range(0, len(xy), block):
            part = slice(start, start + block)
            sample_distance, sample = tree.query(xy[part], k=k, workers=-1)
            candidates = sample_edge[sample.reshape(len(sample), k)]
            distance = self.project(candidates, xy[part, None, :])[1]
            if usable is not None:
                distance[~usable[candidates]] = np.inf
            best = distance.min(axis=1)
            # of equally near edges the lowest index: others become n_edges
            candidates[distance != best[:, None]] = self.n_edges
            found = candidates.min(axis=1)
            found[best > limit] = -1
            nearest[part] = found
            decided[part] = (k == len(sample_edge)) | (
                sample_distance.reshape(len(sample), k)[:, -1]
                >= np.minimum(best, limit) + SNAP_SAMPLE_M / 2)
        return nearest, decided

    def _nearest_by_rtree(self, geoms: np.ndarray, limit: float,
                          usable: np.ndarray | None) -> np.ndarray:
        """:meth:`nearest_edges` of the points the sample tree leaves open."""
        edge = np.full(len(geoms), -1, dtype=np.int64)
        edges = None if usable is None else np.flatnonzero(usable)
        if edges is not None:  # rare: a few points near grade-separated edges
            tree = shapely.STRtree(self._lines(edges))
        else:
            if self._tree is None:
                self._tree = shapely.STRtree(self._lines(np.arange(self.n_edges)))
            tree = self._tree
        point_index, edge_index = tree.query_nearest(geoms, max_distance=limit,
                                                     all_matches=True)
        if edges is not None:
            edge_index = edges[edge_index]
        # of equally near edges keep the lowest index, as above
        order = np.lexsort((edge_index, point_index))
        point_index, edge_index = point_index[order], edge_index[order]
        first = np.unique(point_index, return_index=True)[1]
        edge[point_index[first]] = edge_index[first]
        return edge

    def _lines(self, edges: np.ndarray) -> np.ndarray:
        """The segments of ``edges`` as LineStrings (as :attr:`WalkNetwork.edge_geometry`)."""
        ends = np.stack([self.node_xy[self.edge_u[edges]], self.node_xy[self.edge_v[edges]]],
                        axis=1)
        return shapely.linestrings(ends)

    @property
    def segments(self) -> np.ndarray:
        """Per edge ``(x0, y0, dx, dy, 1 / length²)``: one row, so a single gather
        per candidate (cached)."""
        if self._segments is None:
            start = self.node_xy[self.edge_u]
            along = self.node_xy[self.edge_v] - start
            seg_len2 = np.einsum("ij,ij->i", along, along)
            inverse = np.divide(1.0, seg_len2, out=np.zeros_like(seg_len2), where=seg_len2 > 0)
            self._segments = np.column_stack([start, along, inverse])
        return self._segments

    def project(self, edge: np.ndarray, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Share along each edge of the foot of the perpendicular from ``xy``, and
        the distance (``edge`` of any shape, ``xy`` broadcast to it)."""
        segment = self.segments[edge]
        x0, y0, dx, dy, inverse = (segment[..., column] for column in range(5))
        # in place: the same operations in the same order as the plain formula
        # (share = clip((px·dx + py·dy) / length², 0, 1); distance = |p − share·d|)
        px = np.subtract(xy[..., 0], x0)
        py = np.subtract(xy[..., 1], y0)
        share = np.multiply(px, dx)
        gap = np.multiply(py, dy)
        share += gap
        share *= inverse
        np.clip(share, 0.0, 1.0, out=share)
        np.multiply(share, dx, out=gap)
        px -= gap
        np.multiply(share, dy, out=gap)
        py -= gap
        return share, np.hypot(px, py, out=px)

    def _nearest_xy(self, geoms: np.ndarray, xy: np.ndarray, point: np.ndarray,
                    rows: np.ndarray, edge: np.ndarray) -> np.ndarray:
        """Coordinates of the points among ``geoms[rows]``; for other geometries,
        their point nearest to the edge."""
        found = xy[rows]
        other = ~point[rows]
        if other.any():
            ends = np.stack([self.node_xy[self.edge_u[edge[other]]],
                             self.node_xy[self.edge_v[edge[other]]]], axis=1)
            nearest = shapely.shortest_line(geoms[rows[other]], shapely.linestrings(ends))
            found[other] = shapely.get_coordinates(shapely.get_point(nearest, 0))[:, :2]
        return found

    def prepare(self) -> None:
        """Build the sample tree now (else the first snap builds it)."""
        _ = self.samples

    @property
    def samples(self) -> tuple:
        """k-d tree of the midpoints of edge pieces (cached) and the edge of each.

        Every edge is cut into equal pieces no longer than :data:`SNAP_SAMPLE_M`;
        every point of a piece is within half that length of its midpoint.
        """
        if self._samples is None:
            from scipy.spatial import cKDTree

            along = self.segments[:, 2:4]
            span = np.hypot(along[:, 0], along[:, 1])
            pieces = np.maximum(np.ceil(span / SNAP_SAMPLE_M).astype(np.int64), 1)
            sample_edge = np.repeat(np.arange(self.n_edges), pieces)
            step = np.arange(len(sample_edge)) - np.repeat(np.cumsum(pieces) - pieces, pieces)
            share = (step + 0.5) / np.repeat(pieces, pieces)
            xy = self.segments[sample_edge, :2] + share[:, None] * along[sample_edge]
            # a sliding-midpoint tree: built in a third of the time of the median-split
            # default and queried as fast; the k nearest samples are the same
            self._samples = (cKDTree(xy, balanced_tree=False, compact_nodes=False),
                             sample_edge)
        return self._samples
