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

#: Language of messages, warnings and labels the user sees: ``"zh"`` or ``"en"``.
#: The CLI sets it from ``--lang`` (or the system locale) before any work, so
#: warnings logged deep in the analysis come out in the user's language.
lang: str = "en"

#: Seconds ``planner batch --scheduler`` waits to connect to a Dask scheduler
#: before giving up with a one-line error (an unreachable address would
#: otherwise hang the command for Dask's default 30 s).
scheduler_timeout_s: float = 4.0

#: Walking rules, a named profile (see :func:`planner.sources.walkable_mask`):
#: ``"china"`` (default) reads OSM as it is mapped in Chinese cities: cycleways
#: (非机动车道, mostly shared with pedestrians) are walkable unless ``foot=no``;
#: trunk roads (often fenced urban expressways) only with ``foot=yes``-like or
#: ``sidewalk`` tags; ``access=private`` service roads, residential streets and
#: footways are walkable, because they are the inner roads of gated 小区 that
#: their own residents walk every day (the people whose homes lie there).
#: ``"strict"`` walks cycleways and trunk roads only with an explicit foot
#: permission and never private ways; ``"osmnx"`` follows OSMnx's "walk" filter
#: (trunk roads in, cycleways and private ways out).
walk_profile: str = "china"

#: A residence or facility whose nearest edge is grade-separated (a bridge,
#: viaduct, tunnel or ``layer`` ≠ 0) is snapped onto the nearest ground-level
#: edge instead when that edge is within ``factor ×`` the distance to the
#: grade-separated one, or within that distance plus
#: :data:`elevated_snap_extra_m` (whichever allows more): a building 88 m from
#: a viaduct deck is reached from the street below, not from the deck.
elevated_snap_factor: float = 2.0

#: See :data:`elevated_snap_factor`; metres.
elevated_snap_extra_m: float = 50.0

#: Detour index (network ÷ straight-line distance from a residence to the
#: facility it reaches) uses only pairs at least this far apart in a straight
#: line, so that short access legs do not dominate it; metres.
detour_min_straight_m: float = 300.0

#: Walkable ways dropped as fragments disconnected from the main network (cut
#: off at the extract's edge, or closed compounds) above this total length
#: give a data warning; kilometres.
fragment_warning_km: float = 0.5

#: A dropped network fragment with a node within this distance of the
#: extract's bounding box counts as cut off at the extract's edge; metres.
fragment_edge_margin_m: float = 100.0

#: A run whose facilities (OSM and lists) cover fewer than this share of the
#: catalogue's types warns once, naming the types without data.
min_type_data_share: float = 0.5

#: Plausible walking speeds, m/s: ``--walk-speed`` and batch ``walk_speed``
#: outside this range are refused (0.3 m/s is a very frail pedestrian, 3 m/s
#: a run), since they would make every threshold in minutes meaningless.
min_walk_speed_m_per_s: float = 0.3
max_walk_speed_m_per_s: float = 3.0

#: Smallest ``--tile-m``, metres: smaller tiles would repeat the same
#: network search in hundreds of tiles for no gain in memory.
min_tile_m: float = 100.0

#: A ``--crs`` is refused when it distorts lengths within the extract by more
#: than this share (EPSG:3857 at Beijing: 30 %; a UTM zone 170° away: 41 %).
max_crs_scale_error: float = 0.01

#: A layer (communities, population, lists) with more than this share of its
#: features outside the analysis area gives a warning naming the first rows;
#: with all of them outside it is refused.
layer_outside_warning_share: float = 0.0

#: A generated candidate site is labelled with the nearest named street within
#: this distance, metres ("学院路 · 网格 002_003"); further away the label falls
#: back to the site id, as a far street would mislead more than help.
site_label_street_max_m: float = 250.0

#: Text encoding of the user's CSV/TXT tables and shapefiles (``--encoding``):
#: None detects UTF-8 (with or without BOM), GBK/GB18030 and a shapefile's ``.cpg``.
input_encoding: str | None = None

# --------------------------------------------------------------------------- outputs, map, report

#: Walking service areas (:mod:`planner.isochrones`): how they are drawn,
#: ``"streets"`` (the streets within reach, the default), ``"partition"`` or
#: ``"buffer"`` (the reachable streets widened into polygons).
isochrone_method: str = "streets"

#: Half-width of the band drawn around reachable streets by the polygon
#: methods, metres: wide enough to take in the buildings that line a street,
#: narrow enough not to bridge blocks.
isochrone_buffer_m: float = 30.0

#: Segments per quarter circle of the buffer's round ends (GEOS ``quad_segs``);
#: 2 keeps the polygons small, the error is under 8% of the buffer width.
isochrone_quad_segs: int = 2

#: Simplification tolerance of the service areas, metres (0 keeps every vertex).
isochrone_simplify_m: float = 1.0

#: Distance between the street samples of the ``partition`` method, metres.
isochrone_sample_spacing_m: float = 10.0

#: Most samples the ``partition`` method takes; on larger networks the spacing
#: grows to keep to it (memory: about 1 kB per sample).
isochrone_max_samples: int = 1_000_000

#: Networks with more edges get no polygon service areas (``partition`` and
#: ``buffer``: an empty layer and a warning); ``streets`` has no limit. None lifts it.
isochrone_max_edges: int | None = 150_000

#: Above this many coordinates of street lines in all service areas together,
#: ``coverage.gpkg`` holds the service areas as the squares of a grid of
#: :data:`service_cell_m` (layer ``service_cells``) instead of the streets
#: (layer ``isochrones``, still written with ``full=True``): a city's 55 types
#: of streets are ~150 MB and most of the writing time.
max_isochrone_coordinates: int = 2_000_000

#: Width of the grid squares of city-scale service areas (``service_cells``
#: and the map), metres.
service_cell_m: float = 100.0

#: Side-to-side width of the hexagons of the ``gaps`` layer, metres (the
#: distance between neighbouring cell centres).
gap_cell_m: float = 150.0

#: Above this many residences the map leaves out the layer of residences beyond
#: reach (the gap hexagons still show where they are): a city's 300,000 homes
#: would make the page tens of megabytes.
map_max_residences: int = 30_000

#: Simplification tolerance of polygons drawn on the map, metres (applied in a
#: metric CRS, before the conversion to degrees).
map_display_tolerance_m: float = 3.0

#: Above this many coordinates the map draws the service areas as the squares
#: of :data:`service_cell_m` that hold a street within reach, not the streets.
map_max_area_coordinates: int = 400_000

#: Decimal places of map coordinates in degrees (5 ≈ 1 m): points and polygons.
map_point_digits: int = 5
map_polygon_digits: int = 5

#: The report details the communities with the lowest and the highest
#: overall scores, this many of each; the overview table lists every
#: community once, and summary.csv has every figure.
report_worst_communities: int = 30
report_best_communities: int = 10

#: ``coverage.gpkg`` holds the walking network (layer ``walk_edges``) when it
#: has at most this many edges, or always with ``full=True``: a district's
#: network is small and useful beside the results, a city's is a million rows
#: and seconds of writing.
max_default_walk_edges: int = 100_000

#: Folder of the cache of parsed OSM extracts (:func:`planner.sources.load_area`),
#: e.g. ``~/.cache/planner``; ``None`` (the default) reads every time. An entry
#: is keyed by the file's SHA-256, the reader's code, the keys and the CRS, so
#: a second run on the same file (new lists, premises or thresholds) skips reading.
cache_dir: str | None = None

#: Above this many facility markers (all scenes together) the map counts the
#: facilities of each scene per square of :data:`map_facility_cell_m` metres,
#: one marker per square with the types and counts in its popup: a city's
#: hundreds of thousands of markers would make the page tens of megabytes.
map_max_facility_markers: int = 20_000
map_facility_cell_m: float = 250.0

#: Write the results beside other work (Linux, forked children): the first
#: GeoPackage layers while the service areas are computed, then ``map.html``,
#: ``report.html`` and the CSV tables while the other layers are written;
#: ``False`` does it all one step after the other in this process (e.g. to
#: profile the map). The files are the same either way. Also governs the
#: homes found beside the search on a city (:data:`min_edges_beside`).
parallel_outputs: bool = True

#: Walking networks with at least this many edges (a city) have their homes,
#: their snap to the network and the communities found by a forked child
#: while this process snaps the facilities and contracts the graph, and the
#: streets within reach of every type drawn by another beside the coverage
#: stages (:func:`planner.staging.beside`; off
#: with :data:`parallel_outputs`). Smaller areas do it in turn: a fork costs
#: more than it saves there.
min_edges_beside: int = 50_000

#: Above this many residences, and unless ``full=True`` (``--full``), the
#: residences' walking distances (one ``dist_<type>`` column per type) are
#: written to ``residence_distances.parquet`` (GeoParquet, joined by
#: ``residence_id``) and the GeoPackage's ``residences`` layer keeps the other
#: columns: a city's 300k × 55 distances are half the GeoPackage and seconds
#: of GDAL's writing, GeoParquet writes them in a fraction of that.
max_default_residence_distances: int = 100_000

#: Niceness added to the forked children that write the CSV tables, the
#: report and the map (:func:`planner.outputs.write_outputs`): the GeoPackage
#: is written one layer after the other (a child's, then this process'), so
#: on two cores its writers go first and the others fill the gaps. 0 shares
#: the cores evenly. The files are the same either way.
output_helper_niceness: int = 5
