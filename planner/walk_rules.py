"""Walk rules: which OSM ways a pedestrian may use, and the tags kept on them.

Vectorised over a table of way tags, so every reader (pyosmium, pyrosm,
osmnx) applies the same rules (:func:`walkable_mask`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner import settings
from planner.errors import PlannerError

#: highway values that are never walked (after osmnx's "walk" filter, plus the
#: clearly non-pedestrian values that pyrosm keeps in "all").
NOT_WALKABLE_HIGHWAYS = frozenset(
    {
        "motorway", "motorway_link", "construction", "proposed", "planned", "abandoned",
        "razed", "platform", "raceway", "bus_guideway", "busway", "escape", "no", "disused",
        "rest_area", "services",
    }
)
#: highway values walked only where foot is explicitly allowed (profile "strict").
FOOT_OPT_IN_HIGHWAYS = frozenset({"cycleway", "bridleway", "trunk", "trunk_link"})
FOOT_ALLOWED = frozenset({"yes", "designated", "permissive", "official", "destination"})
ACCESS_CLOSED = frozenset({"no", "private"})
#: sidewalk values that put pedestrians beside the carriageway (not "separate":
#: then the sidewalk is its own way, and "no").
SIDEWALK_PRESENT = frozenset({"both", "left", "right", "yes"})
#: highway values of the inner roads and paths of a gated compound (小区), walked
#: by its residents even where tagged ``access=private`` (profile "china").
COMPOUND_HIGHWAYS = frozenset({"service", "residential", "living_street", "footway", "path",
                               "pedestrian", "steps", "corridor"})
#: The named sets of walk rules (:data:`planner.settings.walk_profile`).
WALK_PROFILES = ("china", "strict", "osmnx")

#: Tags read from ways of the network besides highway.
WAY_TAGS = ("highway", "foot", "access", "service", "sidewalk", "sidewalk:both",
            "sidewalk:left", "sidewalk:right", "name", "area", "bridge", "tunnel", "layer")
#: Tags kept on every walkable segment (``bridge``/``tunnel``/``layer`` tell a
#: grade-separated edge, see :attr:`planner.network.WalkNetwork.edge_grade_separated`).
EDGE_TAGS = ("highway", "name", "bridge", "tunnel", "layer")


def walkable_mask(ways: pd.DataFrame, profile: str | None = None) -> np.ndarray:
    """Which ways a pedestrian may use, vectorised over a table of way tags.

    Every profile keeps streets, footways, paths, steps and pedestrian areas,
    and drops motorways, construction and ``foot=no``. They differ where OSM
    is read differently (:data:`planner.settings.walk_profile`):

    ``"china"`` (default)
        Cycleways are walkable unless ``foot=no``: in Chinese cities the
        非机动车道 beside a road is where people walk when the sidewalk is
        missing or blocked, and OSM's own default for ``highway=cycleway`` in
        China allows pedestrians unless signed otherwise. Trunk roads only
        with a ``foot=yes``-like tag or a ``sidewalk`` on them: many are fenced
        urban expressways (快速路). ``access=private`` service roads,
        residential streets and footways are walkable: they are the inner
        roads of gated 小区, walked by the residents whose homes lie there;
        ``access=no`` stays closed.
    ``"strict"``
        Cycleways and trunk roads only with an explicit foot permission;
        ``access=no/private`` only with a foot permission.
    ``"osmnx"``
        OSMnx's "walk" filter: trunk roads in, cycleways and
        ``access=private``/``service=private`` out.

    Parameters
    ----------
    ways
        One row per way (or segment) with its tags as columns.
    profile
        One of :data:`WALK_PROFILES`; :data:`planner.settings.walk_profile` when omitted.
    """
    profile = profile or settings.walk_profile
    if profile not in WALK_PROFILES:
        message = (f"unknown walk profile {profile!r} (settings.walk_profile: "
                   f"{', '.join(WALK_PROFILES)})")
        raise PlannerError(message)
    highway, foot, access, service = (_column(ways, key)
                                      for key in ("highway", "foot", "access", "service"))
    foot_ok = foot.isin(FOOT_ALLOWED)
    mask = highway.notna() & ~highway.isin(NOT_WALKABLE_HIGHWAYS) & (foot.ne("no") | foot.isna())
    if profile == "osmnx":
        mask &= ~highway.isin({"cycleway", "bus_guideway"}) & access.ne("private")
        return (mask & service.ne("private")).to_numpy(dtype=bool)
    if profile == "strict":
        mask &= ~highway.isin(FOOT_OPT_IN_HIGHWAYS) | foot_ok
        mask &= ~access.isin(ACCESS_CLOSED) | foot_ok
        return (mask & (service.ne("private") | foot_ok)).to_numpy(dtype=bool)
    sidewalk = _column(ways, "sidewalk").isin(SIDEWALK_PRESENT)
    for key in ("sidewalk:both", "sidewalk:left", "sidewalk:right"):
        sidewalk |= _column(ways, key).eq("yes")
    mask &= ~highway.isin({"trunk", "trunk_link", "bridleway"}) | foot_ok | sidewalk
    compound = highway.isin(COMPOUND_HIGHWAYS)
    mask &= access.ne("no") | foot_ok
    mask &= access.ne("private") | foot_ok | compound
    return (mask & (service.ne("private") | foot_ok | compound)).to_numpy(dtype=bool)


def _column(frame: pd.DataFrame, key: str) -> pd.Series:
    if key in frame.columns:
        return frame[key].astype("object").where(frame[key].notna(), None)
    return pd.Series([None] * len(frame), index=frame.index, dtype="object")


def walk_edges(ways: pd.DataFrame, mask: np.ndarray) -> pd.DataFrame:
    """The walkable rows of a way/segment table: ``u``, ``v`` and :data:`EDGE_TAGS`."""
    edges = ways.loc[mask, ["u", "v"]].copy()
    for key in EDGE_TAGS:
        edges[key] = _column(ways, key)[mask]
    return edges
