"""Analysis parameters with documented defaults.

Like ``osmnx.settings``, these are module-level values a user may change
before a run (``planner.settings.default_storeys = 6``); every public
function that uses one also accepts it as an argument.
"""

from __future__ import annotations

#: Walking speed of an adult, m/s. GB 50180-2018's 800–1000 m for a 15-minute
#: walk implies 0.89–1.11 m/s; 1.0 m/s (60 m/min) is the common Chinese
#: planning figure (reference/standards.md §4, a proposal, not a standard).
walk_speed_m_per_s: float = 1.0

#: Slower "inclusive" profile for the elderly, m/s (TCRP 15th percentile of
#: people over 60: 0.92 m/s; standards.md §4 [S]).
elderly_walk_speed_m_per_s: float = 0.9

#: Distances are searched up to ``search_limit_factor × threshold`` so that a
#: planner sees how far beyond the standard a residence lies; anything further
#: is stored as missing (NaN) and counts as not covered.
search_limit_factor: float = 2.0

#: Gross residential floor area per person, m². China's 7th census (2020)
#: reports about 36.5 m² of housing floor area per urban resident [S]; Finland
#: reports about 40 m². Used only where no population layer is given.
floor_area_per_person_m2: float = 36.0

#: Storeys assumed for a residential building with no ``building:levels`` and
#: no ``height`` tag.
default_storeys: int = 4

#: Storey height used to turn a ``height`` tag into storeys, metres.
storey_height_m: float = 3.0

#: Buildings with a smaller footprint are sheds, kiosks or garages, not homes.
min_residence_footprint_m2: float = 30.0

#: Side of the square cells used as communities when neither the user nor OSM
#: provides boundaries, metres.
grid_cell_m: float = 500.0

#: Lengths below this are raised to it: ``scipy.sparse.csgraph`` treats an
#: explicit zero weight as "no edge".
min_edge_length_m: float = 0.01

#: Points further than this from any walkable edge are not snapped (they lie
#: outside the network's extent); metres.
max_snap_distance_m: float = 500.0

#: Reader of ``.osm.pbf`` files: ``"osmium"`` (pyosmium, one pass, the default)
#: or ``"pyrosm"``. Both give the same walking network; pyosmium also keeps the
#: member ways of relations (e.g. platforms of a stop area) that pyrosm drops.
pbf_reader: str = "osmium"
