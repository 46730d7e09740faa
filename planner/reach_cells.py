"""Service areas at city scale: the grid squares reached by each type's streets.

Where drawing the streets within reach (:mod:`planner.isochrones`) would be
too heavy, the service areas are ``cell_m`` squares: a square is reached by a
type when a stretch of street within the type's threshold lies in it
(:func:`service_cells`). One pass over the edges serves every type.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from planner import settings
from planner.access import Access
from planner.isochrones import drawn_types, points_along, street_areas
from planner.network import WalkNetwork

logger = logging.getLogger(__name__)


class _Grid:
    """A grid of ``cell_m`` squares fixed to the CRS origin, over an extent.

    A square is numbered ``(i − i₀)·span + (j − j₀)`` (``i = ⌊x / cell_m⌋``,
    ``j = ⌊y / cell_m⌋``), so the numbers sort like ``(i, j)``; the extent
    is grown by a square on every side.
    """

    def __init__(self, xy: np.ndarray, cell_m: float) -> None:
        self.cell_m = cell_m
        low = np.floor(xy.min(axis=0) / cell_m) if len(xy) else np.zeros(2)
        high = np.floor(xy.max(axis=0) / cell_m) if len(xy) else np.zeros(2)
        self.low = low.astype(np.int64) - 1
        self.span = int(high[1]) + 1 - int(self.low[1]) + 1
        self.size = (int(high[0]) + 1 - int(self.low[0]) + 1) * self.span

    def locate_edges(self, network: WalkNetwork) -> None:
        """Sets :attr:`edge_square`: the square of each edge lying in one square, else −1.

        When the coordinates of the two ends are within a factor of two of
        each other (positive projected metres), ``v − u`` is exact (Sterbenz),
        so every point interpolated along the edge lies between its ends, and
        in their square when they share one.
        """
        x, y = network.node_xy[:, 0], network.node_xy[:, 1]
        u, v = network.edge_u, network.edge_v
        u_x, u_y, v_x, v_y = x[u], y[u], x[v], y[v]
        exact = (u_x / 2 <= v_x) & (v_x <= 2 * u_x) & (u_y / 2 <= v_y) & (v_y <= 2 * u_y)
        square = self.code(u_x, u_y)
        same = exact & (square == self.code(v_x, v_y))
        self.edge_square = np.where(same, square, -1)

    def code(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """The number of the square holding each point ``(x, y)``."""
        i = np.floor(x / self.cell_m).astype(np.int64) - self.low[0]
        return i * self.span + (np.floor(y / self.cell_m).astype(np.int64) - self.low[1])

    def ij(self, code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Grid indices ``(i, j)`` of squares numbered ``code``."""
        return code // self.span + self.low[0], code % self.span + self.low[1]


def _edge_cells(network: WalkNetwork, grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """The grid squares each edge crosses: ``(edge, square)`` pairs (repeats possible).

    Every edge is sampled at both ends and every half square in between, so
    a street crossing a square marks it (a corner clipped by less than a
    quarter square may be missed). Squares are numbered by ``grid``; an edge
    lying in one square (:meth:`_Grid.locate_edges`) is that square without
    sampling.
    """
    alone = np.flatnonzero(grid.edge_square >= 0)
    crossing = np.flatnonzero(grid.edge_square < 0)
    length = network.edge_length_m[crossing]
    count = np.ceil(length / (grid.cell_m / 2)).astype(np.int64) + 1
    # the first sample of an edge is its u end, exactly: only the others are interpolated
    later = count - 1
    row = np.repeat(np.arange(len(crossing)), later)
    rank = 1 + np.arange(len(row)) - np.repeat(np.cumsum(later) - later, later)
    share = rank / np.maximum(count[row] - 1, 1)
    edge = crossing[row]
    xy = points_along(network, edge, share * length[row])
    u_xy = network.node_xy[network.edge_u[crossing]]
    return (np.concatenate([alone, crossing, edge]),
            np.concatenate([grid.edge_square[alone], grid.code(u_xy[:, 0], u_xy[:, 1]),
                            grid.code(xy[:, 0], xy[:, 1])]))


def _squares(codes: list[np.ndarray], size: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Sorted distinct square numbers of all ``codes``, and the index among them of each code.

    Marks on a dense array of the grid when it is not much larger than the
    samples (no sort), else :func:`numpy.unique`.
    """
    total = sum(len(code) for code in codes)
    if size > max(1 << 24, 4 * total):
        squares, inverse = np.unique(np.concatenate(codes), return_inverse=True)
        bounds = np.cumsum([0, *(len(code) for code in codes)])
        inverse = inverse.ravel()
        return squares, [inverse[low:high] for low, high in zip(bounds[:-1], bounds[1:],
                                                                 strict=True)]
    mark = np.zeros(size, dtype=bool)
    for code in codes:
        mark[code] = True
    squares = np.flatnonzero(mark)
    # the grid is small here: 32-bit slots halve the memory the lookups read
    slot = np.zeros(size, dtype=np.int32 if len(squares) < 1 << 31 else np.int64)
    slot[squares] = np.arange(len(squares))
    return squares, [slot[code] for code in codes]


#: Edges per block of :class:`StreetReach` (a block's budgets stay in the CPU cache).
_REACH_BLOCK = 2048


def _node_budget(distance_m: np.ndarray, column: np.ndarray, threshold_m: np.ndarray,
                 rows: int = 1 << 16, pool: ThreadPoolExecutor | None = None) -> np.ndarray:
    """``(n_nodes, len(column))`` walking metres left at every node: threshold − distance.

    Row-major, so that a block of edges reads the budgets of an end node for
    all types in one stretch of memory (many times faster than a column per
    type); NaN (unreached) stays NaN and compares like the −inf it stands for.
    """
    if not np.array_equal(column, np.arange(distance_m.shape[1])):
        distance_m = distance_m[:, column]
    # in the distances' precision, as ``threshold − distance`` with a Python float
    dtype = distance_m.dtype if np.issubdtype(distance_m.dtype, np.floating) else np.float64
    budget = np.empty((len(distance_m), len(column)), dtype=dtype)
    threshold_m = threshold_m.astype(dtype)

    def fill(low: int) -> None:  # blocks: a cache-friendly transposition
        np.subtract(threshold_m, distance_m[low:low + rows], out=budget[low:low + rows])

    list((pool.map if pool is not None else map)(fill, range(0, len(distance_m), rows)))
    return budget


def _reach_block(network: WalkNetwork, budget: np.ndarray, grid: _Grid,
                 low: int, high: int) -> tuple:
    """What every type reaches of the edges ``low:high``, for :func:`service_cells`.

    ``budget`` is :func:`_node_budget`. The comparisons are those of
    :func:`_edge_reach` (``fmax`` skips a NaN end as :func:`_edge_reach`
    skips an infinite one); only the pairs with budget left at an end but
    reached across from neither end (the rim of a type's area, a few
    percent) are compared further.

    Returns
    -------
    tuple
        The edges reached end to end (``(high − low, ⌈n_types / 8⌉)`` bits,
        little-endian), the squares of the pieces reached from one end and
        their type index (:func:`_piece_squares`), the number of whole
        ``(edge, type)`` pairs and the number of pieces.
    """
    n_types = budget.shape[1]
    length = network.edge_length_m[low:high]
    from_u = budget[network.edge_u[low:high]]
    from_v = budget[network.edge_v[low:high]]
    most = np.fmax(from_u, from_v)
    whole = most >= length[:, None]
    rim = np.flatnonzero((most > 0) & ~whole)
    row, kind = np.divmod(rim, n_types)
    rim_u, rim_v = from_u.ravel()[rim], from_v.ravel()[rim]
    across = (rim_u > 0) & (rim_v > 0) & (rim_u + rim_v >= length[row])
    whole.ravel()[rim[across]] = True
    part_u, part_v = ~across & (rim_u > 0), ~across & (rim_v > 0)
    row_u, row_v = row[part_u], row[part_v]
    edge = low + np.concatenate([row_u, row_v])
    start = np.concatenate([np.zeros(len(row_u)), length[row_v] - rim_v[part_v]])
    end = np.concatenate([rim_u[part_u], length[row_v]])
    kind = np.concatenate([kind[part_u], kind[part_v]])
    # a piece of an edge lying in one square marks that square: nothing to interpolate
    square = grid.edge_square[edge]
    alone = (square >= 0) & (end > start)
    sampled = square < 0
    code, piece_type, n_pieces = _piece_squares(network, grid, edge[sampled], start[sampled],
                                                end[sampled], kind[sampled])
    return (np.packbits(whole, axis=1, bitorder="little"),
            np.concatenate([square[alone], code]), np.concatenate([kind[alone], piece_type]),
            np.count_nonzero(whole), n_pieces + np.count_nonzero(alone))


def _piece_squares(network: WalkNetwork, grid: _Grid, edge: np.ndarray, start_m: np.ndarray,
                   end_m: np.ndarray, kind: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """Squares of the pieces ``[start_m, end_m]`` of edges, their type, and the pieces kept.

    Empty pieces are dropped, as :func:`reachable_segments` drops them; the
    piece ends are interpolated as :func:`points_along` does, one coordinate at a time.
    """
    keep = end_m > start_m
    edge, kind = edge[keep], kind[keep]
    u, v = network.edge_u[edge], network.edge_v[edge]
    x, y = network.node_xy[:, 0], network.node_xy[:, 1]
    u_x, u_y = x[u], y[u]
    d_x, d_y = x[v] - u_x, y[v] - u_y
    scale = np.maximum(network.edge_length_m[edge], 1e-12)
    first = np.clip(start_m[keep] / scale, 0.0, 1.0)
    last = np.clip(end_m[keep] / scale, 0.0, 1.0)
    code, row = _segment_squares(u_x + first * d_x, u_y + first * d_y,
                                 u_x + last * d_x, u_y + last * d_y, grid.cell_m / 2, grid)
    return code, kind[row], len(edge)


def _facility_squares(network: WalkNetwork, access: Access, code: np.ndarray,
                      threshold_m: np.ndarray, facility_xy: np.ndarray | None,
                      grid: _Grid) -> tuple:
    """The stretches of street around every facility within reach of it, and its access leg.

    A facility reaches along its own edge before it reaches either end. The
    squares and type indices of these pieces, as :func:`_reach_block` gives
    them (no whole edges), with the number of pieces and legs.
    """
    snap = access.facility_snap
    on_net = np.flatnonzero((code >= 0) & snap.snapped)
    remaining = threshold_m[code[on_net]] - snap.access_m[on_net]
    inside = on_net[remaining > 0]
    remaining = remaining[remaining > 0]
    edge, offset = snap.edge[inside].astype(np.int64), snap.offset_m[inside]
    squares, kind, n_pieces = _piece_squares(
        network, grid, edge, np.maximum(offset - remaining, 0.0),
        np.minimum(offset + remaining, network.edge_length_m[edge]), code[inside])
    if facility_xy is None:
        return None, squares, kind, 0, n_pieces
    legged = inside[snap.access_m[inside] > 0]
    foot = points_along(network, snap.edge[legged], snap.offset_m[legged])
    leg_squares, row = _segment_squares(facility_xy[legged, 0], facility_xy[legged, 1],
                                        foot[:, 0], foot[:, 1], grid.cell_m / 2, grid)
    return (None, np.concatenate([squares, leg_squares]),
            np.concatenate([kind, code[legged][row]]), 0, n_pieces + len(legged))


def service_cells(network: WalkNetwork, access: Access,
                  thresholds_m: Mapping[str, float] | None = None, *,
                  facility_points=None, cell_m: float | None = None) -> gpd.GeoDataFrame:
    """Service areas as the grid squares that hold a street within reach, all types at once.

    The compact form of the ``streets`` drawing for a city (a few bytes per
    square instead of every street vertex per type): the squares of a grid of
    ``cell_m`` fixed to the CRS origin that any type reaches, with one 0/1
    column per type. The streets within reach are those of
    :func:`reachable_segments`, found for every type in one pass over blocks
    of edges (:func:`_reach_block`, on two threads: numpy releases the GIL,
    and the result does not depend on it). Whole edges within reach mark the
    squares they cross (:func:`_edge_cells`, computed once for all types: the
    edges' type bits are or-ed per square); the pieces of edges reached from
    one end or around a facility and the access legs are sampled every half
    square.

    Parameters
    ----------
    network, access, thresholds_m, facility_points
        As for :func:`service_areas` (the facilities' access legs mark their squares).
    cell_m
        Width of the squares, metres (:data:`planner.settings.service_cell_m`).

    Returns
    -------
    geopandas.GeoDataFrame
        One square per row, in the network's CRS, ordered by ``(i, j)``:
        ``cell_id`` (``"i_j"``), ``cell_m``, ``n_types`` (types reaching it)
        and ``reach_<type_id>`` (1 where the type reaches a street of the
        square) for every type drawn, in the order of ``thresholds_m``.
        ``attrs["street_coordinates"]`` estimates the coordinates of the
        ``streets`` drawing (one per whole edge within reach, two per piece,
        summed over the types).
    """
    return StreetReach(network, access, thresholds_m, facility_points=facility_points,
                       cell_m=cell_m).cells()


class StreetReach:
    """The streets within reach of every drawn type, on the squares of a grid.

    The pass of :func:`service_cells` over the edges, kept apart from building
    the squares: :attr:`street_coordinates` decides whether a drawing takes
    the streets (:func:`service_areas`) or the squares (:meth:`cells`), and the
    squares are then built from this pass, not from a second one; so are the
    streets (:meth:`draw_streets`, the whole edges read from this pass's bits).

    Parameters
    ----------
    network, access, thresholds_m, facility_points, cell_m
        As for :func:`service_cells`.

    Attributes
    ----------
    drawn
        ``(type_id, threshold)`` of the types with a facility on the network.
    street_coordinates
        Coordinates of the ``streets`` drawing: one per whole edge within
        reach, two per piece, summed over the types.
    """

    def __init__(self, network: WalkNetwork, access: Access,
                 thresholds_m: Mapping[str, float] | None = None, *,
                 facility_points=None, cell_m: float | None = None) -> None:
        if access.node_distance_m is None:
            access.solve()
        self.network = network
        self.cell_m = settings.service_cell_m if cell_m is None else float(cell_m)
        self.drawn = drawn_types(network, access, thresholds_m, limited=False)
        threshold = np.array([value for _, value in self.drawn], dtype=float)
        code = pd.Index([type_id for type_id, _ in self.drawn]).get_indexer(access.facility_type)
        xy = None
        if facility_points is not None:
            xy = shapely.get_coordinates(np.asarray(getattr(facility_points, "values",
                                                            facility_points), dtype=object))
        legs = xy[(code >= 0) & access.facility_snap.snapped] if xy is not None \
            else np.empty((0, 2))
        self.grid = _Grid(np.concatenate([network.node_xy, legs]), self.cell_m)
        self.grid.locate_edges(network)
        lows = list(range(0, network.n_edges, _REACH_BLOCK))
        highs = [min(low + _REACH_BLOCK, network.n_edges) for low in lows]
        with ThreadPoolExecutor(max_workers=max(1, min(2, os.cpu_count() or 1))) as pool:
            facilities = pool.submit(_facility_squares, network, access, code, threshold, xy,
                                     self.grid)
            budget = _node_budget(access.node_distance_m, pd.Index(access.type_ids).get_indexer(
                [type_id for type_id, _ in self.drawn]), threshold, pool=pool)
            parts = list(pool.map(partial(_reach_block, network, budget, self.grid),
                                  lows, highs))
            del budget  # (n_nodes, n_types) floats: not kept while the squares are built
            parts.append(facilities.result())
        self._whole_bits = np.concatenate([
            np.zeros((0, (len(self.drawn) + 7) // 8), dtype=np.uint8),
            *(part[0] for part in parts[:-1])])
        self._piece_code = np.concatenate([part[1] for part in parts])
        self._piece_type = np.concatenate([part[2] for part in parts]).astype(np.int64)
        self.street_coordinates = sum(int(part[3]) + 2 * int(part[4]) for part in parts)
        self._cells: gpd.GeoDataFrame | None = None  # built once (:meth:`cells`)
        #: the ``streets`` drawing (:meth:`draw_streets`) and its simplification
        self._streets: gpd.GeoDataFrame | None = None
        self._streets_tolerance_m: float | None = None

    @property
    def drawn_as_squares(self) -> bool:
        """Whether the streets are too many to draw (more than
        :data:`planner.settings.max_isochrone_coordinates` coordinates): the
        service areas are then the squares of :meth:`cells`."""
        return self.street_coordinates > settings.max_isochrone_coordinates

    def __getstate__(self) -> dict:
        # the network stays behind: the reach is sent back from a forked child
        # (planner.pipeline) to the process that holds the network already
        state = {**self.__dict__, "network": None}
        if self._streets is not None:
            # the streets cross as WKB, read on first use (:meth:`streets`): the
            # process receiving the reach reads them while its gap hexagons are
            # computed (planner.layers), not while it waits for the reach
            frame = self._streets
            state["_streets"] = None
            state["_streets_wkb"] = (
                pd.DataFrame(frame.drop(columns=frame.geometry.name)), frame.geometry.name,
                shapely.to_wkb(frame.geometry.to_numpy()), frame.crs, dict(frame.attrs))
        return state

    def cells(self) -> gpd.GeoDataFrame:
        """The ``service_cells`` layer (:func:`service_cells`): built once, a copy each call."""
        if self._cells is None:
            self._cells = self._build_cells()
        frame = self._cells.copy()
        frame.attrs = dict(self._cells.attrs)
        return frame

    def draw_streets(self, access: Access, facility_points=None) -> None:
        """Draws the ``streets`` service areas (:func:`planner.isochrones.street_areas`), kept
        for :meth:`streets`: the drawing of
        :func:`planner.isochrones.analysis_service_areas` with the settings of now.

        The edges reached end to end are read from this pass's bits (the same
        comparisons), not compared again.

        Parameters
        ----------
        access
            The access this reach was computed from.
        facility_points
            As given to this reach (the facilities' access legs).
        """
        xy = None
        if facility_points is not None:
            xy = shapely.get_coordinates(np.asarray(getattr(facility_points, "values",
                                                            facility_points), dtype=object))
        tolerance_m = settings.isochrone_simplify_m
        self._streets = street_areas(self.network, access, self.drawn, facility_xy=xy,
                                     tolerance_m=tolerance_m, whole_bits=self._whole_bits)
        self._streets_tolerance_m = tolerance_m

    def streets(self) -> gpd.GeoDataFrame | None:
        """The ``isochrones`` layer :meth:`draw_streets` drew, a copy each call.

        None when it was not drawn, or when the drawing it would stand for has
        changed since (``settings.isochrone_method`` no longer ``"streets"``,
        another ``settings.isochrone_simplify_m``): the caller then draws.
        """
        sent = self.__dict__.pop("_streets_wkb", None)
        if sent is not None:
            table, name, wkb, crs, attrs = sent
            self._streets = gpd.GeoDataFrame(table, geometry=gpd.GeoSeries.from_wkb(
                wkb, index=table.index, crs=crs).rename(name), crs=crs)
            self._streets.attrs = attrs
        if (self._streets is None or settings.isochrone_method != "streets"
                or settings.isochrone_simplify_m != self._streets_tolerance_m):
            return None
        frame = self._streets.copy()
        frame.attrs = dict(self._streets.attrs)
        return frame

    def _build_cells(self) -> gpd.GeoDataFrame:
        cell = self.cell_m
        squares, flags = _square_flags(self.network, self.grid, self._whole_bits,
                                       self._piece_code, self._piece_type, len(self.drawn))
        i, j = self.grid.ij(squares)
        frame = gpd.GeoDataFrame(
            {"cell_id": pd.Series(i).astype(str) + "_" + pd.Series(j).astype(str),
             "cell_m": cell, "n_types": flags.sum(axis=1).astype(np.int64),
             **{f"reach_{type_id}": flags[:, index].astype(np.int8)
                for index, (type_id, _) in enumerate(self.drawn)}},
            geometry=shapely.box(i * cell, j * cell, (i + 1) * cell, (j + 1) * cell),
            crs=self.network.crs)
        frame.attrs["street_coordinates"] = self.street_coordinates
        return frame


def _square_flags(network: WalkNetwork, grid: _Grid, whole_bits: np.ndarray,
                  piece_code: np.ndarray, piece_type: np.ndarray,
                  n_types: int) -> tuple[np.ndarray, np.ndarray]:
    """The squares some type reaches (sorted numbers) and ``(n_squares, n_types)`` flags.

    The type bits of the edges crossing a square (whole edges) are or-ed
    into it 64 types a word; the pieces mark their ``(square, type)`` flag.
    """
    pair_edge, pair_code = _edge_cells(network, grid)
    n_words = (n_types + 63) // 64
    padded = np.zeros((network.n_edges, n_words * 8), dtype=np.uint8)
    padded[:, :whole_bits.shape[1]] = whole_bits
    edge_words = padded.view("<u8")
    reached = np.zeros(network.n_edges, dtype=bool)
    for word in range(n_words):
        reached |= edge_words[:, word] != 0
    marked = reached[pair_edge]
    pair_edge, pair_code = pair_edge[marked], pair_code[marked]
    squares, (pair_slot, piece_slot) = _squares([pair_code, piece_code], grid.size)
    square_words = np.zeros((n_words, len(squares)), dtype="<u8")
    for word in range(n_words):  # a catalogue of 55 types takes one word
        np.bitwise_or.at(square_words[word], pair_slot, edge_words[pair_edge, word])
    flags = np.unpackbits(np.ascontiguousarray(square_words.T).view(np.uint8), axis=1,
                          count=n_types, bitorder="little").view(bool)
    # millions of pieces: one flag each, set in place (ufunc.at on words is slower)
    flags.ravel()[piece_slot.astype(np.int64) * n_types + piece_type] = True
    return squares, flags


def _segment_squares(start_x: np.ndarray, start_y: np.ndarray, end_x: np.ndarray,
                     end_y: np.ndarray, spacing_m: float,
                     grid: _Grid) -> tuple[np.ndarray, np.ndarray]:
    """Squares of points along segments, and the segment of each point.

    Both ends and every ``spacing_m`` between, interpolated as
    ``start + share · (end − start)``: the first point is the start itself and
    the last ``start + (end − start)`` (the same point twice for an empty
    segment: the square counts once), so only the longer segments need more.
    """
    d_x, d_y = end_x - start_x, end_y - start_y
    count = np.ceil(np.hypot(d_x, d_y) / spacing_m).astype(np.int64) + 1
    every = np.arange(len(start_x))
    inner = np.maximum(count - 2, 0)
    row = np.repeat(every, inner)
    rank = 1 + np.arange(len(row)) - np.repeat(np.cumsum(inner) - inner, inner)
    share = rank / np.maximum(count[row] - 1, 1)
    return (np.concatenate([grid.code(start_x, start_y),
                            grid.code(start_x + d_x, start_y + d_y),
                            grid.code(start_x[row] + share * d_x[row],
                                      start_y[row] + share * d_y[row])]),
            np.concatenate([every, every, row]))


def analysis_service_cells(analysis, **kwargs) -> gpd.GeoDataFrame:
    """:func:`service_cells` of every catalogue type of a :class:`planner.pipeline.Analysis`."""
    return analysis_street_reach(analysis, **kwargs).cells()


def analysis_street_reach(analysis, **kwargs) -> StreetReach:
    """:class:`StreetReach` of every catalogue type of a :class:`planner.pipeline.Analysis`.

    The one the analysis computed ahead (``analyze(service_areas=True)``) when
    it has one and no other ``cell_m`` is asked for.
    """
    ready = getattr(analysis, "street_reach", None)
    if ready is not None and kwargs.get("cell_m", ready.cell_m) == ready.cell_m:
        ready.network = analysis.network
        return ready
    return StreetReach(analysis.network, analysis.access, analysis.catalogue.thresholds_m(),
                       facility_points=analysis.facilities.geometry.to_numpy(), **kwargs)
