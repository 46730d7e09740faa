"""A synthetic city written as a real OSM PBF or XML file, for benchmarks and tests.

The street network is a jittered lattice of blocks of varied sizes (50–180 m)
with the irregularities of a real walking network:

- every street segment carries 0–4 intermediate nodes with a small lateral
  wiggle (crossings and curve points; OSM walking graphs are mostly such
  degree-2 nodes),
- some street segments are missing, a few diagonal avenues cut across the
  blocks, footways cross many blocks and dead-end paths enter others,
- a river crosses the city from west to east and another from south to
  north; only bridges (``bridge=yes``) cross them,
- an expressway (``highway=motorway``), ways tagged ``foot=no`` or
  ``access=private`` and cycleways are present but not walkable.

Facilities of every catalogue type are tagged with the catalogue's own OSM
tag rules (a value matching each condition, so classification finds them by
tag), or, for types that have only name keywords, named with the first
keyword; about a fifth of them are areas. Residential buildings are
rectangles set back from the streets, tagged ``building=apartments`` or
``building=residential`` with ``building:levels``; commercial blocks carry
``landuse=commercial`` and non-residential ``building=yes``.

Everything is drawn from one seed, so a (size, seed) pair always gives the
same file. Files go to ``benchmarks/_work/`` (git-ignored) unless told
otherwise and are reused when present.

Run ``python -m benchmarks.synthetic_city --nodes 20000 [--format xml]`` to write one.
"""

from __future__ import annotations

import argparse
import re
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

WORK_DIR = Path(__file__).resolve().parent / "_work"

#: Origin of the local frame (a Chinese city's latitude), degrees.
ORIGIN_LON, ORIGIN_LAT = 114.30, 30.55
EARTH_RADIUS_M = 6_371_008.8
#: Expected walking-network nodes per block, used to size the lattice.
NODES_PER_BLOCK = 5.4
#: Block sides to draw from, metres, and how often.
BLOCK_SIDES_M = np.array([50.0, 60.0, 75.0, 90.0, 110.0, 140.0, 180.0])
BLOCK_SIDE_WEIGHTS = np.array([0.10, 0.20, 0.22, 0.20, 0.14, 0.09, 0.05])
#: Nominal residential slot inside a block (a building is drawn inside each), metres.
SLOT_M = (32.0, 26.0)
#: Set-back of buildings and facilities from the lattice lines, metres.
SETBACK_M = 18.0
#: Share of each type's facilities drawn as areas instead of points.
AREA_SHARE = 0.2


@dataclass(frozen=True)
class CitySpec:
    """Size and seed of a synthetic city.

    Attributes
    ----------
    nodes
        Target number of walking-network nodes (the result is within a few percent).
    buildings
        Number of residential buildings.
    seed
        Seed of every random draw.
    facility_density
        Multiplies every type's facility count (1.0: a type's facilities
        cover, on average, 20–80% of the city within its threshold).
    """

    nodes: int = 1_000_000
    buildings: int = 300_000
    seed: int = 0
    facility_density: float = 1.0

    @property
    def name(self) -> str:
        density = "" if self.facility_density == 1.0 else f"-f{self.facility_density:g}"
        return f"synthetic-city-n{self.nodes}-b{self.buildings}-s{self.seed}{density}"


@dataclass
class City:
    """A generated city, before writing (coordinates in metres, local frame).

    Attributes
    ----------
    node_xy
        ``(n, 2)`` coordinates of every OSM node, id = index + 1.
    node_tags
        ``{index: tags}`` for tagged nodes (point facilities).
    ways
        ``(node_index_array, tags)`` per way, id = position + 1; areas are closed.
    counts
        What was generated (for the report).
    """

    node_xy: np.ndarray
    node_tags: dict[int, dict[str, str]]
    ways: list[tuple[np.ndarray, dict[str, str]]]
    counts: dict[str, int]


# --------------------------------------------------------------------------- streets


class _Nodes:
    """An append-only table of node coordinates."""

    def __init__(self) -> None:
        self.parts: list[np.ndarray] = []
        self.count = 0

    def add(self, xy: np.ndarray) -> np.ndarray:
        xy = np.asarray(xy, dtype=float).reshape(-1, 2)
        self.parts.append(xy)
        index = self.count + np.arange(len(xy))
        self.count += len(xy)
        return index

    def array(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros((0, 2))


def _segments(rng, nodes: _Nodes, start: np.ndarray, end: np.ndarray, xy: np.ndarray,
              mean_inner: float):
    """Intermediate nodes on segments ``start → end``.

    Returns ``(inner_index, inner_segment, inner_rank, inner_count)``: the node
    index of every intermediate node, its segment, its rank along the segment
    and the number of intermediate nodes per segment.
    """
    a, b = xy[start], xy[end]
    length = np.hypot(*(b - a).T)
    lam = mean_inner * length / 110.0
    count = np.minimum(rng.poisson(lam), 4)
    segment = np.repeat(np.arange(len(start)), count)
    # sorted fractions along each segment: cumulative sums of positive gaps
    gaps = rng.uniform(0.5, 1.5, len(segment) + len(start))
    owner = np.concatenate([segment, np.arange(len(start))])
    order = np.argsort(owner, kind="stable")
    gaps, owner = gaps[order], owner[order]
    cumulative = np.cumsum(gaps)
    first = np.searchsorted(owner, np.arange(len(start)))
    base = np.where(first > 0, cumulative[first - 1], 0.0)
    total = cumulative[first + count] - base
    is_inner = np.ones(len(owner), dtype=bool)
    is_inner[first + count] = False
    fraction = (cumulative[is_inner] - base[owner[is_inner]]) / total[owner[is_inner]]
    rank = np.arange(len(segment)) - np.repeat(np.cumsum(count) - count, count)
    direction = (b - a)[segment] / np.maximum(length[segment], 1e-9)[:, None]
    normal = np.column_stack([-direction[:, 1], direction[:, 0]])
    wiggle = rng.normal(0.0, 1.5, len(segment))[:, None] * normal
    inner_xy = a[segment] + fraction[:, None] * (b - a)[segment] + wiggle
    return nodes.add(inner_xy), segment, rank, count


def _chains(chain: np.ndarray, position: np.ndarray, start: np.ndarray, end: np.ndarray,
            inner_index: np.ndarray, inner_segment: np.ndarray, inner_rank: np.ndarray,
            ) -> list[np.ndarray]:
    """Node sequences of ways made of consecutive segments.

    Segments with the same ``chain`` id and consecutive ``position`` join into
    one way: start node, intermediate nodes, then the end node of the last one.
    """
    n_seg = len(start)
    segment_ids = np.arange(n_seg)
    key_chain = np.concatenate([chain, chain[inner_segment], chain])
    key_position = np.concatenate([position * 8.0, position[inner_segment] * 8.0 + 1
                                   + inner_rank, position * 8.0 + 8.0 - 0.5])
    node = np.concatenate([start, inner_index, end])
    is_end = np.concatenate([np.zeros(n_seg + len(inner_index), dtype=bool),
                             np.ones(n_seg, dtype=bool)])
    segment = np.concatenate([segment_ids, inner_segment, segment_ids])
    # keep the end node only for the last segment of each chain
    last = np.zeros(n_seg, dtype=bool)
    order_seg = np.lexsort((position, chain))
    last[order_seg] = np.r_[chain[order_seg][1:] != chain[order_seg][:-1], True]
    keep = ~is_end | last[segment]
    key_chain, key_position, node = key_chain[keep], key_position[keep], node[keep]
    order = np.lexsort((key_position, key_chain))
    key_chain, node = key_chain[order], node[order]
    cuts = np.flatnonzero(key_chain[1:] != key_chain[:-1]) + 1
    return np.split(node, cuts)


def _line_chains(line: np.ndarray, step: np.ndarray, kept: np.ndarray, rng,
                 max_segments: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Chain id and position of segments along lattice lines.

    A way breaks where a segment is missing and, at random, every few segments.
    """
    order = np.lexsort((step, line))
    line_o, step_o, kept_o = line[order], step[order], kept[order]
    new_line = np.r_[True, line_o[1:] != line_o[:-1]]
    gap = np.r_[True, ~kept_o[:-1]] | (step_o - np.r_[-2, step_o[:-1]] != 1)
    random_break = rng.random(len(order)) < 1.0 / max_segments
    starts = new_line | gap | random_break
    chain_o = np.cumsum(starts) - 1
    chain = np.empty_like(chain_o)
    chain[order] = chain_o
    position = np.empty_like(step)
    position[order] = step_o
    return chain, position


# --------------------------------------------------------------------------- facilities


def _value_for(pattern: str) -> str:
    """A tag value that matches a catalogue regex condition."""
    for word in re.findall(r"[A-Za-z0-9_]+", pattern):
        if re.search(pattern, word):
            return word
    raise ValueError(f"no simple value matches {pattern!r}")


def facility_tags(catalogue=None) -> dict[str, dict[str, str]]:
    """One OSM tag set per catalogue type that classifies as that type by tag.

    Types with name keywords only get ``name`` = the first keyword and
    ``office=yes`` (a key the PBF reader keeps, matching no tag rule).
    """
    from planner.catalogue import load_catalogue

    catalogue = catalogue or load_catalogue()
    result = {}
    for facility_type in catalogue.types:
        if not facility_type.tags:
            result[facility_type.id] = {"office": "yes", "name": facility_type.names[0]}
            continue
        tags: dict[str, str] = {}
        for condition in facility_type.tags[0].conditions:
            if condition.op == "=":
                tags[condition.key] = condition.values[0]
            elif condition.op == "*":
                tags[condition.key] = "yes"
            elif condition.op == "~":
                tags[condition.key] = _value_for(condition.values[0])
        result[facility_type.id] = tags
    return result


# --------------------------------------------------------------------------- the city


def generate(spec: CitySpec) -> City:
    """Generate a city (arrays in metres; nothing written)."""
    rng = np.random.default_rng(spec.seed)
    blocks = spec.nodes / NODES_PER_BLOCK
    side = max(int(np.ceil(np.sqrt(blocks))) + 1, 6)
    n_col = n_row = side  # lattice lines in x and y
    xs = np.r_[0.0, np.cumsum(rng.choice(BLOCK_SIDES_M, n_col - 1, p=BLOCK_SIDE_WEIGHTS))]
    ys = np.r_[0.0, np.cumsum(rng.choice(BLOCK_SIDES_M, n_row - 1, p=BLOCK_SIDE_WEIGHTS))]
    nodes = _Nodes()
    grid_i, grid_j = np.meshgrid(np.arange(n_col), np.arange(n_row), indexing="ij")
    grid_i, grid_j = grid_i.ravel(), grid_j.ravel()
    corner_xy = np.column_stack([xs[grid_i], ys[grid_j]]) + rng.normal(0, 5.0, (len(grid_i), 2))
    corner = nodes.add(corner_xy).reshape(n_col, n_row)

    river_row = int(n_row * 0.43)  # between lattice rows river_row and river_row + 1
    river_col = int(n_col * 0.61)
    bridge_every = 9
    motorway_row = int(n_row * 0.77)

    # street segments: horizontal (i, j)-(i+1, j), vertical (i, j)-(i, j+1)
    hi, hj = np.meshgrid(np.arange(n_col - 1), np.arange(n_row), indexing="ij")
    vi, vj = np.meshgrid(np.arange(n_col), np.arange(n_row - 1), indexing="ij")
    hi, hj, vi, vj = hi.ravel(), hj.ravel(), vi.ravel(), vj.ravel()

    def rank_of(index):
        return np.select([index % 12 == 0, index % 6 == 0, index % 3 == 0],
                         ["primary", "secondary", "tertiary"], "residential")

    h_class, v_class = rank_of(hj), rank_of(vi)
    h_kept = (rng.random(len(hi)) > 0.06) | (h_class != "residential")
    v_kept = (rng.random(len(vi)) > 0.06) | (v_class != "residential")
    v_bridge = (vj == river_row) & (vi % bridge_every == 3)
    h_bridge = (hi == river_col) & (hj % bridge_every == 5)
    v_kept &= (vj != river_row) | v_bridge
    h_kept &= (hi != river_col) | h_bridge

    ways: list[tuple[np.ndarray, dict[str, str]]] = []
    street_names = 0

    def add_streets(i0, j0, i1, j1, kept, klass, bridge, line, step, axis):
        nonlocal street_names
        start, end = corner[i0, j0][kept], corner[i1, j1][kept]
        xy = np.concatenate(nodes.parts)
        inner = _segments(rng, nodes, start, end, xy, 2.0)
        # bridges are ways of their own
        chain_line = np.where(bridge[kept], -1 - np.arange(kept.sum()), line[kept])
        chain, position = _line_chains(chain_line, step[kept], np.ones(kept.sum(), bool), rng)
        sequences = _chains(chain, position, start, end, inner[0], inner[1], inner[2])
        first_segment = np.full(chain.max() + 1, -1)
        order = np.lexsort((position, chain))
        first_segment[chain[order][::-1]] = order[::-1]
        klass_kept, bridge_kept, line_kept = klass[kept], bridge[kept], line[kept]
        motorway = (line_kept == motorway_row) if axis == "h" else np.zeros(len(line_kept),
                                                                              bool)
        roll = rng.random(len(sequences))
        for k, sequence in enumerate(sequences):
            s = first_segment[k]
            tags = {"highway": str(klass_kept[s]),
                    "name": f"{'East-West' if axis == 'h' else 'North-South'} "
                            f"Street {line_kept[s]}"}
            street_names += 1
            if motorway[s]:
                tags = {"highway": "motorway", "name": "Ring Expressway", "oneway": "yes"}
            elif bridge_kept[s]:
                tags.update(bridge="yes", layer="1")
            elif tags["highway"] == "residential" and roll[k] < 0.04:
                tags.update(highway="service", access="private")
            elif tags["highway"] == "residential" and roll[k] < 0.06:
                tags["foot"] = "no"
            elif tags["highway"] == "residential" and roll[k] < 0.15:
                tags["highway"] = "living_street"
            ways.append((sequence, tags))
        return inner

    h_inner = add_streets(hi, hj, hi + 1, hj, h_kept, h_class, h_bridge, hj, hi, "h")
    v_inner = add_streets(vi, vj, vi, vj + 1, v_kept, v_class, v_bridge, vi, vj, "v")

    # first intermediate node of each kept segment (-1 when it has none)
    def first_inner(kept, inner):
        index, segment, rank, _ = inner
        first = np.full(len(kept), -1)
        kept_ids = np.flatnonzero(kept)
        mask = rank == 0
        first[kept_ids[segment[mask]]] = index[mask]
        return first

    h_first = first_inner(h_kept, h_inner).reshape(n_col - 1, n_row)
    v_first = first_inner(v_kept, v_inner).reshape(n_col, n_row - 1)

    # blocks (i, j): between lines i, i+1 and j, j+1
    bi, bj = np.meshgrid(np.arange(n_col - 1), np.arange(n_row - 1), indexing="ij")
    bi, bj = bi.ravel(), bj.ravel()
    water = (bj == river_row) | (bi == river_col)
    diagonal = ((bi - bj) % 41 == 0) & ~water
    xy_now = np.concatenate(nodes.parts)

    # diagonal avenues: corner (i, j) → (i+1, j+1) through the block
    d_start, d_end = corner[bi[diagonal], bj[diagonal]], corner[bi[diagonal] + 1,
                                                                bj[diagonal] + 1]
    d_inner = _segments(rng, nodes, d_start, d_end, xy_now, 2.0)
    d_line = (bi - bj)[diagonal]
    d_chain, d_position = _line_chains(d_line, bi[diagonal], np.ones(diagonal.sum(), bool),
                                       rng, max_segments=6)
    for sequence in _chains(d_chain, d_position, d_start, d_end, *d_inner[:3]):
        ways.append((sequence, {"highway": "secondary", "name": "Diagonal Avenue"}))

    # footways across blocks: bottom street's first inner node → top street's
    south = h_first[bi, bj]
    north = h_first[bi, bj + 1]
    cross = (south >= 0) & (north >= 0) & ~water & ~diagonal & (rng.random(len(bi)) < 0.55)
    a, b = south[cross], north[cross]
    xy_now = np.concatenate(nodes.parts)
    f_inner = _segments(rng, nodes, a, b, xy_now, 2.5)
    f_chain = np.arange(cross.sum())
    kinds = rng.choice(["footway", "path", "steps", "cycleway", "pedestrian"],
                       cross.sum(), p=[0.72, 0.16, 0.04, 0.05, 0.03])
    for k, sequence in enumerate(_chains(f_chain, np.zeros_like(f_chain), a, b,
                                         *f_inner[:3])):
        ways.append((sequence, {"highway": str(kinds[k])}))

    # dead-end paths into blocks from the west street
    west = v_first[bi, bj]
    dead = (west >= 0) & ~water & ~diagonal & ~cross & (rng.random(len(bi)) < 0.35)
    start = west[dead]
    xy_now = np.concatenate(nodes.parts)
    depth = rng.uniform(25, 60, dead.sum())
    tip_xy = xy_now[start] + np.column_stack([depth, rng.normal(0, 4, dead.sum())])
    tip = nodes.add(tip_xy)
    mid = nodes.add((xy_now[start] + tip_xy) / 2 + rng.normal(0, 2, (dead.sum(), 2)))
    for s, m, t, kind in zip(start, mid, tip, rng.choice(["footway", "service"], dead.sum(),
                                                          p=[0.6, 0.4]), strict=True):
        ways.append((np.array([s, m, t]), {"highway": str(kind)}))
    n_network_nodes = nodes.count

    # ----------------------------------------------------------------- land use and buildings
    x0, x1 = xs[bi] + SETBACK_M, xs[bi + 1] - SETBACK_M
    y0, y1 = ys[bj] + SETBACK_M, ys[bj + 1] - SETBACK_M
    usable = ~water & ~diagonal & (x1 - x0 > 20) & (y1 - y0 > 16)
    use_roll = rng.random(len(bi))
    commercial = usable & (use_roll < 0.04)
    park = usable & (use_roll >= 0.04) & (use_roll < 0.07)
    residential = usable & ~commercial & ~park
    node_tags: dict[int, dict[str, str]] = {}

    def add_rectangles(lx, ly, ux, uy, tags_list):
        count = len(lx)
        corners = np.stack([np.column_stack(c) for c in ((lx, ly), (ux, ly), (ux, uy),
                                                          (lx, uy))], axis=1)
        index = nodes.add(corners.reshape(-1, 2)).reshape(count, 4)
        for row, tags in zip(index, tags_list, strict=True):
            ways.append((np.r_[row, row[0]], tags))

    for kind, mask in (("commercial", commercial), ("park", park)):
        tags = ({"landuse": "commercial"} if kind == "commercial"
                else {"leisure": "park", "name": "Block Park"})
        add_rectangles(x0[mask] - 6, y0[mask] - 6, x1[mask] + 6, y1[mask] + 6,
                       [tags] * int(mask.sum()))

    # residential slots: a sub-grid per block, then choose the buildings among them
    slots_x = np.maximum(((x1 - x0) // SLOT_M[0]).astype(int), 1) * residential
    slots_y = np.maximum(((y1 - y0) // SLOT_M[1]).astype(int), 1) * residential
    per_block = slots_x * slots_y
    total_slots = int(per_block.sum())
    wanted = min(spec.buildings, total_slots)
    chosen = np.sort(rng.choice(total_slots, wanted, replace=False))
    block = np.searchsorted(np.cumsum(per_block), chosen, side="right")
    local = chosen - (np.cumsum(per_block) - per_block)[block]
    sx, sy = local % slots_x[block], local // slots_x[block]
    cell_w = (x1 - x0)[block] / slots_x[block]
    cell_h = (y1 - y0)[block] / slots_y[block]
    width = np.minimum(rng.uniform(12, 28, wanted), cell_w - 3)
    height = np.minimum(rng.uniform(9, 20, wanted), cell_h - 3)
    lx = x0[block] + sx * cell_w + rng.uniform(0, 1, wanted) * (cell_w - width - 2) + 1
    ly = y0[block] + sy * cell_h + rng.uniform(0, 1, wanted) * (cell_h - height - 2) + 1
    apartments = rng.random(wanted) < 0.8
    levels = np.where(apartments, rng.choice([6, 7, 9, 11, 12, 18, 24, 30], wanted),
                      rng.integers(2, 7, wanted))
    has_levels = rng.random(wanted) < 0.9
    building_tags = [{"building": "apartments" if apt else "residential",
                      **({"building:levels": str(level)} if has else {})}
                     for apt, level, has in zip(apartments, levels, has_levels, strict=True)]
    add_rectangles(lx, ly, lx + width, ly + height, building_tags)

    # non-residential buildings on commercial land (building=yes, excluded by land use)
    c_blocks = np.flatnonzero(commercial)
    add_rectangles(x0[c_blocks] + 4, y0[c_blocks] + 4,
                   np.minimum(x0[c_blocks] + 40, x1[c_blocks]),
                   np.minimum(y0[c_blocks] + 30, y1[c_blocks]),
                   [{"building": "yes"}] * len(c_blocks))

    # ----------------------------------------------------------------- facilities
    from planner.catalogue import load_catalogue

    catalogue = load_catalogue()
    tags_by_type = facility_tags(catalogue)
    extent_km2 = (xs[-1] - xs[0]) * (ys[-1] - ys[0]) / 1e6
    facility_blocks = np.flatnonzero(usable)
    n_facilities = 0
    for facility_type in catalogue.types:
        # coverage share ≈ 1 - exp(-density · π (threshold / 1.3)²) in 20–80%
        reach_km2 = np.pi * (facility_type.threshold_m / 1300.0) ** 2
        target = rng.uniform(-np.log(0.8), -np.log(0.2))
        count = max(int(round(spec.facility_density * target / reach_km2 * extent_km2)), 3)
        where = rng.choice(facility_blocks, count)
        fx = rng.uniform(x0[where], x1[where])
        fy = rng.uniform(y0[where], y1[where])
        tags = tags_by_type[facility_type.id]
        as_area = rng.random(count) < AREA_SHARE
        points = nodes.add(np.column_stack([fx[~as_area], fy[~as_area]]))
        for k, index in enumerate(points):
            node_tags[int(index)] = {**tags, **({} if "name" in tags
                                                else {"name": f"F{n_facilities + k}"})}
        add_rectangles(fx[as_area] - 8, fy[as_area] - 6, fx[as_area] + 8, fy[as_area] + 6,
                       [tags] * int(as_area.sum()))
        n_facilities += count

    counts = {"network_nodes": n_network_nodes, "osm_nodes": nodes.count,
              "ways": len(ways), "residential_buildings": wanted,
              "facilities": n_facilities, "blocks": len(bi), "lattice": n_col,
              "extent_km": round(float(xs[-1] - xs[0]) / 1000, 2)}
    return City(node_xy=nodes.array(), node_tags=node_tags, ways=ways, counts=counts)


def to_lonlat(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Local metres → WGS84 degrees (equirectangular about the origin)."""
    lat = ORIGIN_LAT + np.degrees(xy[:, 1] / EARTH_RADIUS_M)
    lon = ORIGIN_LON + np.degrees(xy[:, 0] / (EARTH_RADIUS_M * np.cos(np.radians(ORIGIN_LAT))))
    return lon, lat


def write_osm(city: City, path: Path) -> Path:
    """Write the city as an OSM file (nodes, then ways, ids ascending).

    pyosmium picks the format from the name: ``.osm.pbf`` gives PBF, ``.osm``
    OSM XML (``.osm.bz2`` compressed XML).
    """
    import osmium
    from osmium.osm.mutable import Node, Way

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # the partial name keeps the suffixes, which tell pyosmium the format
    partial = path.with_name(".partial-" + path.name)
    lon, lat = to_lonlat(city.node_xy)
    tagged = city.node_tags
    with osmium.SimpleWriter(str(partial), overwrite=True) as writer:
        for index, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
            tags = tagged.get(index)
            writer.add_node(Node(id=index + 1, location=(x, y), version=1, tags=tags or {}))
        for index, (refs, tags) in enumerate(city.ways):
            writer.add_way(Way(id=index + 1, nodes=(refs + 1).tolist(), version=1, tags=tags))
    partial.replace(path)
    return path


#: The PBF writer under its former name (the format follows the file name).
write_pbf = write_osm


def convert(source: Path, target: Path) -> Path:
    """Copy an OSM file into another format (``.osm.pbf`` ↔ ``.osm``), object by object."""
    import osmium

    target = Path(target)
    partial = target.with_name(".partial-" + target.name)
    with osmium.SimpleWriter(str(partial), overwrite=True) as writer:
        for entity in osmium.FileProcessor(str(source)):
            writer.add(entity)
    partial.replace(target)
    return target


#: File suffix of each output format.
SUFFIXES = {"pbf": ".osm.pbf", "xml": ".osm"}


def synthetic_city(nodes: int = 1_000_000, buildings: int = 300_000, seed: int = 0, *,
                   facility_density: float = 1.0, directory: str | Path | None = None,
                   verbose: bool = False, fmt: str = "pbf") -> Path:
    """The path of a synthetic city's OSM file, generating it when absent.

    Parameters
    ----------
    nodes, buildings, seed, facility_density
        See :class:`CitySpec`.
    directory
        Where the file goes; ``benchmarks/_work`` when omitted.
    verbose
        Print what was generated and how long it took.
    fmt
        ``"pbf"`` (``.osm.pbf``) or ``"xml"`` (``.osm``, OSM XML); the XML file
        is converted from the PBF of the same city when that exists, so both
        hold the same objects.
    """
    if fmt not in SUFFIXES:
        message = f"fmt must be one of {sorted(SUFFIXES)}, not {fmt!r}"
        raise ValueError(message)
    spec = CitySpec(nodes=nodes, buildings=buildings, seed=seed,
                    facility_density=facility_density)
    directory = Path(directory or WORK_DIR)
    path = directory / f"{spec.name}{SUFFIXES[fmt]}"
    if path.exists():
        return path
    start = time.perf_counter()
    pbf = directory / f"{spec.name}{SUFFIXES['pbf']}"
    if fmt != "pbf" and pbf.exists():
        convert(pbf, path)
        if verbose:
            print(f"synthetic city {spec.name}: converted to {path.name} in "
                  f"{time.perf_counter() - start:.1f} s ({path.stat().st_size / 1e6:.1f} MB)")
        return path
    city = generate(spec)
    generated = time.perf_counter() - start
    write_osm(city, path)
    if verbose:
        print(f"synthetic city {spec.name}: {city.counts}; generated in {generated:.1f} s, "
              f"written in {time.perf_counter() - start - generated:.1f} s "
              f"({path.stat().st_size / 1e6:.1f} MB)")
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--buildings", type=int, default=None,
                        help="residential buildings (default: 0.3 per network node)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--facility-density", type=float, default=1.0)
    parser.add_argument("--out", type=Path, default=None, help="directory (benchmarks/_work)")
    parser.add_argument("--format", choices=sorted(SUFFIXES), default="pbf",
                        help="pbf (.osm.pbf, default) or xml (.osm)")
    args = parser.parse_args(argv)
    buildings = args.buildings if args.buildings is not None else int(args.nodes * 0.3)
    path = synthetic_city(args.nodes, buildings, args.seed,
                          facility_density=args.facility_density, directory=args.out,
                          verbose=True, fmt=args.format)
    print(path)


if __name__ == "__main__":
    main()
