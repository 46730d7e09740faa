"""Many areas at once on a Dask cluster.

An areas file (TOML or CSV) lists areas; each runs :func:`planner.analyze` and
writes its own result folder, in parallel on Dask distributed (a
``LocalCluster`` by default, or the cluster at a scheduler address). The batch
then writes one table of communities across all areas, a map of their scores
and a run record. One area's failure is recorded and does not stop the others;
a rerun skips areas whose inputs and parameters did not change (same
fingerprint: SHA-256 of the area's options, its input files, the catalogue and
the planner version).

TOML form::

    [defaults]                 # options every area inherits
    walk_speed = 1.0
    [[areas]]
    name = "bupt"
    source = "beijing/map.osm"            # or place = "海淀区, 北京市"
    communities = "bupt_communities.gpkg"
    facilities = ["bupt_list.csv"]
    facilities_crs = "gcj02"

CSV form: one row per area with the columns ``name``, ``source`` or ``place``,
and optionally ``communities``, ``population``, ``facilities`` (several
separated by ``;``), ``facilities_crs``, ``catalogue``, ``walk_speed``, ``crs``,
``tile_m`` (solve a large area tile by tile, see :mod:`planner.tiling`).
Relative paths are relative to the areas file.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
import time
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path

import geopandas as gpd
import pandas as pd

from planner.errors import PlannerError

log = logging.getLogger(__name__)

PATH_KEYS = ("source", "communities", "population", "catalogue")
OPTION_KEYS = ("walk_speed", "crs", "facilities_crs", "tile_m")
KNOWN_KEYS = {"name", "place", "facilities", *PATH_KEYS, *OPTION_KEYS}
FINGERPRINT_FILE = "fingerprint.txt"


@dataclass(frozen=True)
class AreaSpec:
    """One area of a batch; paths are absolute."""

    name: str
    source: str | None = None
    place: str | None = None
    communities: str | None = None
    population: str | None = None
    catalogue: str | None = None
    facilities: tuple[str, ...] = ()
    facilities_crs: str = "wgs84"
    walk_speed: float | None = None
    crs: str | None = None
    tile_m: float | None = None

    def analyze_kwargs(self) -> dict:
        return dict(source=self.source, place=self.place, communities=self.communities,
                    population=self.population, catalogue=self.catalogue,
                    facility_lists=list(self.facilities), facilities_crs=self.facilities_crs,
                    walk_speed_m_per_s=self.walk_speed, crs=self.crs, tile_m=self.tile_m)

    def fingerprint(self) -> str:
        """SHA-256 of the options, the input files, the catalogue and the planner version."""
        from planner import __version__
        from planner.catalogue import default_catalogue_path
        from planner.outputs import sha256

        digest = hashlib.sha256(json.dumps(asdict(self), sort_keys=True).encode())
        digest.update(__version__.encode())
        files = [self.source, self.communities, self.population,
                 self.catalogue or str(default_catalogue_path()), *self.facilities]
        for path in files:
            if path and Path(path).is_file():
                digest.update(sha256(Path(path)).encode())
        return digest.hexdigest()


def read_areas(path: str | Path) -> list[AreaSpec]:
    """Read an areas file (TOML or CSV).

    Raises
    ------
    PlannerError
        Naming the file and the area at fault.
    """
    path = Path(path)
    if not path.exists():
        raise PlannerError("areas file not found", path)
    try:
        if path.suffix.lower() == ".toml":
            with path.open("rb") as handle:
                document = tomllib.load(handle)
            defaults = document.get("defaults", {})
            rows = [{**defaults, **row} for row in document.get("areas", [])]
        elif path.suffix.lower() == ".csv":
            with path.open(encoding="utf-8-sig", newline="") as handle:
                rows = [{key: value for key, value in row.items() if value not in ("", None)}
                        for row in csv.DictReader(handle)]
        else:
            raise PlannerError("areas file must be .toml or .csv", path)
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, csv.Error) as error:
        raise PlannerError(f"cannot read the areas file ({error})", path) from error
    if not rows:
        raise PlannerError("no areas listed", path)
    specs, names = [], set()
    for index, row in enumerate(rows):
        entry = f"areas[{index}]"
        unknown = set(row) - KNOWN_KEYS
        if unknown:
            raise PlannerError(f"{entry}: unknown field(s) {', '.join(sorted(unknown))}", path)
        name = str(row.get("name") or "").strip()
        if not re.fullmatch(r"[\w\-. ]+", name):
            raise PlannerError(f"{entry}: field 'name' must be a plain folder name", path)
        if name in names:
            raise PlannerError(f"{entry}: name {name!r} repeats", path)
        names.add(name)
        if ("source" in row) == ("place" in row):
            raise PlannerError(f"{entry} ({name}): give exactly one of 'source' or 'place'",
                               path)
        resolved = {key: str((path.parent / row[key]).resolve()) for key in PATH_KEYS
                    if key in row}
        facilities = row.get("facilities", ())
        if isinstance(facilities, str):
            facilities = [item for item in facilities.split(";") if item.strip()]
        speed, tile = row.get("walk_speed"), row.get("tile_m")
        specs.append(AreaSpec(
            name=name, place=row.get("place"),
            facilities=tuple(str((path.parent / item.strip()).resolve())
                             for item in facilities),
            facilities_crs=str(row.get("facilities_crs", "wgs84")),
            walk_speed=None if speed is None else float(speed), crs=row.get("crs"),
            tile_m=None if tile is None else float(tile),
            **resolved))
    return specs


def run_area(spec: AreaSpec, out_dir: str) -> dict:
    """Analyse one area and write its folder; never raises (failures are returned)."""
    from planner.outputs import write_analysis
    from planner.pipeline import analyze

    start = time.perf_counter()
    folder = Path(out_dir)
    try:
        analysis = analyze(**spec.analyze_kwargs())
        write_analysis(analysis, folder)
        (folder / FINGERPRINT_FILE).write_text(spec.fingerprint(), encoding="utf-8")
        return {"name": spec.name, "status": "ok", "seconds": round(time.perf_counter() - start, 3),
                "timings_s": analysis.timings_s}
    except Exception as error:  # one area's failure must not stop the batch
        message = str(error).strip().splitlines()[0] if str(error).strip() else ""
        return {"name": spec.name, "status": "failed",
                "error": f"{type(error).__name__}: {message}",
                "seconds": round(time.perf_counter() - start, 3)}


@dataclass
class BatchResult:
    """What a batch did: per-area records and the combined communities."""

    areas: list[dict]
    communities: gpd.GeoDataFrame
    out_dir: Path
    scheduler: str = ""
    timings_s: dict = field(default_factory=dict)

    @property
    def failed(self) -> list[str]:
        return [area["name"] for area in self.areas if area["status"] == "failed"]


def run_batch(areas_file: str | Path, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int = 2, progress=None) -> BatchResult:
    """Run every area of an areas file on Dask and write the combined outputs.

    Parameters
    ----------
    areas_file
        TOML or CSV (see the module docstring).
    out_dir
        One folder per area inside it, plus ``communities.csv``,
        ``communities.gpkg``, ``map.html`` and ``batch.json``.
    scheduler
        Address of a running Dask scheduler (``tcp://host:port``); a
        ``LocalCluster`` of ``workers`` processes when omitted.
    workers
        Worker processes of the local cluster.
    progress
        Called with each area's record as it completes.
    """
    from dask.distributed import Client, LocalCluster, as_completed

    specs = read_areas(areas_file)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    records: dict[str, dict] = {}
    to_run = []
    for spec in specs:
        folder = out_dir / spec.name
        stamp = folder / FINGERPRINT_FILE
        if stamp.exists() and (folder / "coverage.gpkg").exists() \
                and stamp.read_text(encoding="utf-8") == spec.fingerprint():
            records[spec.name] = {"name": spec.name, "status": "skipped",
                                  "reason": "inputs and parameters unchanged"}
        else:
            to_run.append(spec)
    address = scheduler or ""
    if to_run:
        cluster = None
        if scheduler:
            client = Client(scheduler, timeout="30s")
        else:
            cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                   dashboard_address=None, host="127.0.0.1")
            client = Client(cluster)
            address = cluster.scheduler_address
        try:
            futures = [client.submit(run_area, spec, str(out_dir / spec.name),
                                     key=f"area-{spec.name}-{spec.fingerprint()[:12]}",
                                     pure=False) for spec in to_run]
            for future in as_completed(futures):
                record = future.result()
                records[record["name"]] = record
                if progress is not None:
                    progress(record)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    for record in records.values():
        if record["status"] == "skipped" and progress is not None:
            progress(record)
    areas = [records[spec.name] for spec in specs]
    communities = combined_communities(out_dir, [a["name"] for a in areas
                                                 if a["status"] in ("ok", "skipped")])
    result = BatchResult(areas=areas, communities=communities, out_dir=out_dir,
                         scheduler=address,
                         timings_s={"total": round(time.perf_counter() - start, 3)})
    write_batch_outputs(result)
    return result


def combined_communities(out_dir: Path, names: list[str]) -> gpd.GeoDataFrame:
    """The communities of every finished area, with an ``area`` column (EPSG:4326)."""
    parts = []
    for name in names:
        layer = gpd.read_file(out_dir / name / "coverage.gpkg", layer="communities")
        layer.insert(0, "area", name)
        parts.append(layer)
    if not parts:
        return gpd.GeoDataFrame({"area": [], "community_id": []}, geometry=[], crs=4326)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)


def write_batch_outputs(result: BatchResult) -> None:
    """``communities.csv``, ``communities.gpkg``, ``map.html`` and ``batch.json``, staged."""
    from planner.outputs import package_versions, staged_directory, write_layers

    communities = result.communities
    with staged_directory(result.out_dir) as stage:
        communities.drop(columns="geometry").to_csv(stage / "communities.csv", index=False,
                                                    encoding="utf-8")
        if len(communities):
            write_layers(stage / "communities.gpkg", {"communities": communities})
            write_scores_map(communities, stage / "map.html")
        record = {"areas": result.areas, "scheduler": result.scheduler,
                  "communities": len(communities), "failed": result.failed,
                  "versions": package_versions(), "timings_s": result.timings_s}
        (stage / "batch.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                          encoding="utf-8")


def write_scores_map(communities: gpd.GeoDataFrame, path: Path) -> None:
    """All areas' communities coloured by overall score, one layer per area."""
    import folium

    from planner.maps import score_colour

    west, south, east, north = communities.total_bounds
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    fmap.fit_bounds([[south, west], [north, east]])
    shown = communities[["area", "community_id", "name", "population", "score", "geometry"]]
    for area, group in shown.groupby("area", sort=True):
        folium.GeoJson(
            group.to_json(), name=str(area),
            style_function=lambda feature: {
                "fillColor": score_colour(feature["properties"]["score"]), "color": "#333",
                "weight": 1, "fillOpacity": 0.5},
            tooltip=folium.GeoJsonTooltip(["area", "community_id", "name", "score"]),
        ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.save(str(path))
