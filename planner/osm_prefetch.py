"""libosmium's pass over an OSM file, and reading it ahead in a forked child.

:func:`write_selection` and :func:`assemble_relations` are the two passes of
:mod:`planner.osm_reader` that run in C++ (the selected nodes and ways as
OPL text, then the multipolygon and boundary relations). They hold the GIL
for about 0.3 s on a city of 250,000 nodes and 1.3 s on one of a million, while
``planner analyze`` spends its first second importing pandas, geopandas,
scipy … on one core. :func:`prefetch_selection` runs both passes in a forked
child meanwhile; :func:`planner.osm_reader.open_osm` then takes the prepared
selection (:func:`take_prefetched`) when it is of the same file and the same
keys, and reads the file itself otherwise (another file, a catalogue asking for
other keys, an unsorted file, any failure of the child: the file's own error
then comes from the read as it always does).

This module imports nothing heavy (no numpy, pandas, osmium at module level):
the CLI imports it before the analysis libraries, and the child imports only
osmium. The keys the child selects with are those of the run's catalogue,
read from its TOML without the catalogue's model (:func:`catalogue_feature_keys`);
the parent checks them against the keys the run asks for.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from planner.tag_syntax import rule_keys

#: Keys every run needs on features, besides those the catalogue's rules name.
BASE_FEATURE_KEYS = (
    "name", "name:zh", "official_name", "name:en",
    "building", "building:levels", "height", "landuse", "place", "boundary", "admin_level",
    "amenity", "shop", "office", "tourism", "leisure", "healthcare", "craft",
)


def merge_keys(feature_keys: Iterable[str]) -> list[str]:
    """:data:`BASE_FEATURE_KEYS` and then ``feature_keys``, each once."""
    keys = list(dict.fromkeys([*BASE_FEATURE_KEYS, *feature_keys]))
    return [key for key in keys if key not in {"osm_type", "osm_id", "geometry"}]


def poi_keys(keys: list[str]) -> list[str]:
    """The keys that make a point of interest (not names, buildings, land use …)."""
    skip = {"name", "name:zh", "official_name", "name:en", "building", "building:levels",
            "height", "landuse", "place", "boundary", "admin_level"}
    return [key for key in keys if key not in skip and ":" not in key and key != "isced:level"]


def selection_keys(keys: list[str]) -> tuple[frozenset[str], frozenset[str]]:
    """What libosmium's passes depend on: the keys that select ways (and relations),
    and the keys kept on relations."""
    way_keys = frozenset(poi_keys(keys)) | {"building", "landuse", "place", "boundary"}
    return way_keys, frozenset(keys)


# --------------------------------------------------------------------------- libosmium


def osm_file(path: Path):
    """The file for libosmium, which tells the format from the suffix (``.xml`` is XML too)."""
    import osmium

    if path.suffix.lower() == ".xml":
        return osmium.io.File(str(path), "osm")
    return osmium.io.File(str(path))


def write_selection(path: Path, opl: Path, index, way_keys: frozenset[str], *,
                    manager=None, locations_first: bool = False,
                    overwrite: bool = False) -> bool:
    """Nodes and ways a run needs, as OPL with way-node locations, all in C++.

    Every node location goes into ``index`` (for the relations); ways pass
    with a feature key or ``highway``, nodes with a point-feature key. With
    ``locations_first`` the nodes are read in a pass of their own before, so
    that ways listed before their nodes get their locations too. With an area
    ``manager``, the same read is its first pass: it takes the multipolygon and
    boundary relations carrying one of ``way_keys`` (:func:`assemble_relations`
    is the second); returns whether there was one. ``overwrite`` lets the
    writer open an existing file (the child's in-memory file).
    """
    import osmium
    from osmium.filter import EntityFilter, KeyFilter

    locations = osmium.NodeLocationsForWays(index)
    locations.ignore_errors()
    if locations_first:
        with osmium.io.Reader(osm_file(path), osmium.osm.NODE) as reader:
            osmium.apply(reader, locations)
    # filters must outlive the pass
    handlers = [locations,
                KeyFilter(*sorted(way_keys | {"highway"})).enable_for(osmium.osm.WAY),
                KeyFilter(*sorted(way_keys - {"landuse"})).enable_for(osmium.osm.NODE)]
    entities = osmium.osm.NODE | osmium.osm.WAY
    found = []
    if manager is not None:

        class Count(osmium.SimpleHandler):
            def relation(self, relation):
                if relation.tags.get("type") in ("multipolygon", "boundary"):
                    found.append(relation.id)

        entities |= osmium.osm.RELATION
        handlers += [KeyFilter(*sorted(way_keys)).enable_for(osmium.osm.RELATION), Count(),
                     manager.first_pass_handler(),
                     EntityFilter(osmium.osm.NODE | osmium.osm.WAY)]  # no relation in the OPL
    writer = osmium.SimpleWriter(osmium.io.File(
        str(opl), "opl,locations_on_ways=true,add_metadata=false"), overwrite=overwrite)
    try:
        with osmium.io.Reader(osm_file(path), entities) as reader:
            osmium.apply(reader, *handlers, writer)
    finally:
        writer.close()
    return bool(found)


def assemble_relations(path: Path, index, manager, key_set):
    """Areas of the relations the first pass of ``manager`` took (ids, tags, WKB)."""
    import osmium

    wkb = osmium.geom.WKBFactory()
    ids, tags, geometries = [], [], []
    buffer = osmium.BufferIterator()
    locations = osmium.NodeLocationsForWays(index)
    locations.ignore_errors()

    def collect():
        for area in buffer:
            if area.from_way():
                continue
            try:
                geometry = wkb.create_multipolygon(area)
            except (osmium.InvalidLocationError, RuntimeError, ValueError):
                continue
            ids.append(area.orig_id())
            tags.append({tag.k: tag.v for tag in area.tags if tag.k in key_set})
            geometries.append(geometry)

    second_pass = manager.second_pass_to_buffer(buffer)
    with osmium.io.Reader(osm_file(path), osmium.osm.WAY | osmium.osm.RELATION) as reader:
        for _ in osmium.OsmFileIterator(reader, locations, second_pass):
            if buffer:
                collect()
    collect()
    return ids, tags, geometries


# --------------------------------------------------------------------------- catalogue keys

#: The rule lists of the catalogue's tables that name OSM keys
#: (:meth:`planner.catalogue_model.Catalogue.feature_keys`).
_RULE_FIELDS = {"types": ("tags", "weak_tags"), "name_rules": ("conflicting_tags",),
                "residences": ("building_tags", "housing_tags", "non_home_tags",
                               "precinct_tags")}


def _packaged_catalogue() -> Path:
    from importlib import resources

    return Path(str(resources.files("planner") / "catalogue.toml"))


def catalogue_feature_keys(path: str | Path | None = None) -> list[str] | None:
    """The OSM keys a catalogue's rules read, from its TOML alone (no pandas); None
    when the file does not read plainly (the run's own loading then reports it).

    The same keys as ``load_catalogue(path).feature_keys()``; a catalogue
    without a ``[name_rules]`` or ``[residences]`` table takes the packaged one's.
    """
    import tomllib

    try:
        with Path(path or _packaged_catalogue()).open("rb") as handle:
            document = tomllib.load(handle)
        if "name_rules" not in document or "residences" not in document:
            with _packaged_catalogue().open("rb") as handle:
                packaged = tomllib.load(handle)
            for table in ("name_rules", "residences"):
                document.setdefault(table, packaged.get(table, {}))
        keys = set()
        for table, fields in _RULE_FIELDS.items():
            entries = document[table] if table == "types" else [document[table]]
            for entry in entries:
                for name in fields:
                    for rule in entry.get(name, []):
                        keys |= rule_keys(rule)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # not a catalogue this reading understands: no prefetch
    return sorted(keys)


# --------------------------------------------------------------------------- the child


@dataclass
class _Prefetch:
    """A selection being read by a forked child (:func:`prefetch_selection`)."""

    path: str
    stat: tuple
    opl_fd: int
    worker: object
    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def close(self) -> None:
        """Kill the child if it still runs, and free its in-memory file."""
        with contextlib.suppress(OSError):
            self.stack.close()  # staging.beside: kills and joins the child
        if self.opl_fd >= 0:  # once: the number may name another file afterwards
            fd, self.opl_fd = self.opl_fd, -1
            with contextlib.suppress(OSError):
                os.close(fd)


#: The prefetch of this process, at most one (:func:`prefetch_selection`).
_pending: _Prefetch | None = None


def _read_file(fd: int) -> bytes:
    """The whole content of the file ``fd``, from its start."""
    os.lseek(fd, 0, os.SEEK_SET)
    with open(fd, "rb", closefd=False) as handle:
        return handle.read()


def _file_identity(path: str) -> tuple:
    status = os.stat(path)
    return status.st_dev, status.st_ino, status.st_size, status.st_mtime_ns


def _read_ahead(path: str, opl_fd: int, catalogue: str | None) -> tuple:
    """The child: both libosmium passes, the OPL into ``opl_fd``; its keys and relations."""
    # one core stays the parent's while it imports (libosmium's threads would take
    # both of two); :func:`take_prefetched` gives them all back when it waits
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(0, cpus[1:])
    import osmium

    feature_keys = catalogue_feature_keys(catalogue)
    if feature_keys is None:
        return None
    way_keys, key_set = selection_keys(merge_keys(feature_keys))
    manager = osmium.area.AreaManager()
    index = osmium.index.create_map("flex_mem")
    found = write_selection(Path(path), Path(f"/proc/self/fd/{opl_fd}"), index, way_keys,
                            manager=manager, overwrite=True)
    relations = assemble_relations(Path(path), index, manager, key_set) if found \
        else ([], [], [])
    return way_keys, key_set, relations


def _osm_source(source) -> bool:
    """Whether :func:`planner.sources.load_area` reads ``source`` with pyosmium."""
    from planner import settings

    if source is None or not isinstance(source, str | os.PathLike):
        return False
    path = Path(source)
    suffixes = "".join(path.suffixes[-2:]).lower()
    if path.suffix.lower() == ".pbf":
        if settings.pbf_reader != "osmium":
            return False
    elif path.suffix.lower() not in {".osm", ".xml"} and suffixes not in {".osm.bz2",
                                                                            ".osm.gz"}:
        return False
    return path.is_file() and not settings.cache_dir


@contextlib.contextmanager
def prefetch_selection(source, catalogue: str | Path | None = None) -> Iterator[bool]:
    """Read an OSM file's selection in a forked child while the ``with`` block runs.

    Use::

        with prefetch_selection(path, catalogue):
            planner.analyze(source=path, catalogue=catalogue)   # imports meanwhile

    The child runs libosmium's two passes (:func:`write_selection`,
    :func:`assemble_relations`) with the keys of ``catalogue`` (the packaged
    one when None); :func:`planner.osm_reader.open_osm` takes its result
    when it reads the same file with the same keys, and reads the file itself
    otherwise, so the analysis is the same with or without. On leaving the
    block the child is killed if it still runs and its in-memory file freed;
    it dies with this process (:func:`planner.staging.beside`).

    Nothing is started (and the block runs as it would without) unless the
    source is an OSM file pyosmium reads, there is no area cache
    (:data:`planner.settings.cache_dir`) and this process may fork
    (Linux, the main thread and no other, :data:`planner.settings.parallel_outputs`).

    Yields
    ------
    bool
        Whether a child was started.
    """
    global _pending  # noqa: PLW0603 - one prefetch per process, taken by the reader
    from planner import staging

    if _pending is not None or not _osm_source(source) or not staging._can_fork():  # noqa: SLF001
        yield False
        return
    path = os.path.realpath(source)
    prefetch = _Prefetch(path=path, stat=_file_identity(path),
                         opl_fd=os.memfd_create("planner-osm", os.MFD_CLOEXEC), worker=None)
    try:
        prefetch.worker = prefetch.stack.enter_context(staging.beside(
            _read_ahead, path, prefetch.opl_fd,
            None if catalogue is None else os.fspath(catalogue)))
        _pending = prefetch
        yield True
    finally:
        if _pending is prefetch:
            _pending = None
        prefetch.close()


def _widen(pid: int) -> None:
    """Let every thread of the child run on all the cores this process may use."""
    cpus = os.sched_getaffinity(0)
    with contextlib.suppress(OSError):
        for thread in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError):
                os.sched_setaffinity(int(thread), cpus)


def drop_prefetched(path: Path) -> None:
    """Stop the prefetch of ``path`` (its area came from elsewhere, e.g. a cache)."""
    global _pending  # noqa: PLW0603
    if _pending is not None and _pending.path == os.path.realpath(path):
        prefetch, _pending = _pending, None
        prefetch.close()


def take_prefetched(path: Path, way_keys: frozenset[str],
                    key_set: frozenset[str]) -> tuple[bytes, tuple] | None:
    """The prefetched OPL text and relations of ``path`` (:func:`prefetch_selection`),
    waiting for the child; None when there is none for this file and these keys, or
    the child failed (the caller then reads the file, which reports the problem).

    A prefetch of another file stays for a later call.
    """
    global _pending  # noqa: PLW0603
    prefetch = _pending
    if prefetch is None or prefetch.path != os.path.realpath(path):
        return None
    _pending = None
    try:
        if _file_identity(prefetch.path) != prefetch.stat:  # changed since: read it anew
            return None
        _widen(prefetch.worker.process.pid)
        try:
            outcome = prefetch.worker.result()
        except Exception:  # noqa: BLE001 - the reader's own read reports the problem
            return None
        if outcome is None or outcome[:2] != (way_keys, key_set):
            return None
        text = _read_file(prefetch.opl_fd)
        if not text:  # the reader's own read says "no ways in the file"
            return None
        return text, outcome[2]
    finally:
        prefetch.close()
