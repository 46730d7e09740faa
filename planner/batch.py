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
import io
import json
import logging
import os
import re
import time
import tomllib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from planner import settings
from planner.errors import PlannerError, one_line
from planner.i18n import pick

if TYPE_CHECKING:  # geopandas is imported when a batch runs, not with this module
    import geopandas as gpd

log = logging.getLogger(__name__)

PATH_KEYS = ("source", "communities", "population", "catalogue")
OPTION_KEYS = ("walk_speed", "crs", "facilities_crs", "tile_m")
KNOWN_KEYS = {"name", "place", "facilities", *PATH_KEYS, *OPTION_KEYS}
#: Fields that must be positive numbers.
NUMBER_KEYS = ("walk_speed", "tile_m")
#: Fields that must be text.
TEXT_KEYS = ("place", "crs", "facilities_crs", *PATH_KEYS)
FINGERPRINT_FILE = "fingerprint.txt"
#: Loggers of Dask whose INFO lines (workers starting, clients connecting …) are
#: noise to a planner; only their warnings are shown.
DASK_LOGGERS = ("distributed", "dask")


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
        """The keyword arguments of :func:`planner.analyze` for this area."""
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


# --------------------------------------------------------------------------- areas file


def _toml_rows(path: Path) -> list:
    """The areas of a TOML file, each merged over ``[defaults]``."""
    with path.open("rb") as handle:
        document = tomllib.load(handle)
    unknown = sorted(set(document) - {"defaults", "areas"})
    if unknown:
        message = pick(f"未知的顶层字段 {', '.join(unknown)} (选项须写在 [defaults] 或 "
                       "[[areas]] 中)",
                       f"unknown top-level key(s) {', '.join(unknown)} (options go in "
                       "[defaults] or an [[areas]] table)")
        raise PlannerError(message, path)
    defaults, areas = document.get("defaults", {}), document.get("areas", [])
    if not isinstance(defaults, dict):
        message = pick("'defaults' 须为表 [defaults]", "'defaults' must be a table [defaults]")
        raise PlannerError(message, path)
    if not isinstance(areas, list):
        message = pick("'areas' 须为表数组 [[areas]]",
                       "'areas' must be an array of tables [[areas]]")
        raise PlannerError(message, path)
    return [{**defaults, **row} if isinstance(row, dict) else row for row in areas]


def _read_rows(path: Path) -> list:
    """The rows of an areas file (TOML or CSV), not yet checked."""
    try:
        if path.suffix.lower() == ".toml":
            return _toml_rows(path)
        if path.suffix.lower() == ".csv":
            from planner.encodings import decode_bytes

            # Chinese Excel saves CSV as GBK: decode as the facility lists are
            text, _ = decode_bytes(path.read_bytes(), path)
            return [{key: value for key, value in row.items() if value not in ("", None)}
                    for row in csv.DictReader(io.StringIO(text, newline=""))]
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, csv.Error) as error:
        message = pick(f"无法读取区域文件（{error}）", f"cannot read the areas file ({error})")
        raise PlannerError(message, path) from error
    message = pick("区域文件须为 .toml 或 .csv", "areas file must be .toml or .csv")
    raise PlannerError(message, path)


def _number(row: dict, key: str, entry: str, path: Path) -> float | None:
    """A number field of an area in the range of its CLI option, or ``None`` when absent."""
    from planner.validate import check_number

    try:
        return check_number(row.get(key), key, where=entry)
    except PlannerError as error:
        raise PlannerError(error.message, path) from error


def _crs(row: dict, entry: str, path: Path) -> str | None:
    """The area's ``crs``: valid, projected, in metres (its fit is checked on the extract)."""
    from planner.validate import check_metric_crs

    if row.get("crs") is None:
        return None
    try:
        check_metric_crs(row["crs"], option=f"{entry}: crs")
    except PlannerError as error:
        raise PlannerError(error.message, path) from error
    return row["crs"]


def _facilities(row: dict, entry: str, path: Path) -> tuple[str, ...]:
    """The area's facility lists as absolute paths."""
    facilities = row.get("facilities", ())
    if isinstance(facilities, str):
        facilities = [item for item in facilities.split(";") if item.strip()]
    if not isinstance(facilities, list | tuple) or not all(
            isinstance(item, str) for item in facilities):
        message = pick(f"{entry}: 字段 'facilities' 须为文件路径列表",
                       f"{entry}: field 'facilities' must be a list of file paths")
        raise PlannerError(message, path)
    return tuple(str((path.parent / item.strip()).resolve()) for item in facilities)


def _check_fields(row: dict, entry: str, path: Path) -> None:
    """Unknown fields, text fields and the choice of source or place."""
    unknown = set(row) - KNOWN_KEYS
    if unknown:
        fields = ", ".join(sorted(unknown))
        message = pick(f"{entry}: 未知字段 {fields}", f"{entry}: unknown field(s) {fields}")
        raise PlannerError(message, path)
    for key in TEXT_KEYS:
        if key in row and not isinstance(row[key], str):
            message = pick(f"{entry}: 字段 '{key}' 须为文本, 而不是 {row[key]!r}",
                           f"{entry}: field '{key}' must be text, not {row[key]!r}")
            raise PlannerError(message, path)
    if ("source" in row) == ("place" in row):
        message = pick(f"{entry}: 'source' 与 'place' 须且只须给出一个",
                       f"{entry}: give exactly one of 'source' or 'place'")
        raise PlannerError(message, path)


def _area_spec(row, index: int, names: set[str], path: Path) -> AreaSpec:
    """One row of the areas file as an :class:`AreaSpec`, checked."""
    entry = f"areas[{index}]"
    if not isinstance(row, dict):
        message = pick(f"{entry} 须为表", f"{entry} must be a table")
        raise PlannerError(message, path)
    name = str(row.get("name") or "").strip()
    if not re.fullmatch(r"[\w\-. ]+", name):
        message = pick(f"{entry}: 字段 'name' 须为普通文件夹名",
                       f"{entry}: field 'name' must be a plain folder name")
        raise PlannerError(message, path)
    if name in names:
        message = pick(f"{entry}: 名称 {name!r} 重复", f"{entry}: name {name!r} repeats")
        raise PlannerError(message, path)
    names.add(name)
    entry = f"{entry} ({name})"
    _check_fields(row, entry, path)
    resolved = {key: str((path.parent / row[key]).resolve()) for key in PATH_KEYS
                if key in row}
    return AreaSpec(name=name, place=row.get("place"),
                    facilities=_facilities(row, entry, path),
                    facilities_crs=row.get("facilities_crs", "wgs84"),
                    walk_speed=_number(row, "walk_speed", entry, path),
                    crs=_crs(row, entry, path),
                    tile_m=_number(row, "tile_m", entry, path), **resolved)


def read_areas(path: str | Path) -> list[AreaSpec]:
    """Read an areas file (TOML or CSV).

    Raises
    ------
    PlannerError
        Naming the file and the area at fault.
    """
    path = Path(path)
    if not path.exists():
        message = pick("区域文件不存在", "areas file not found")
        raise PlannerError(message, path)
    rows = _read_rows(path)
    if not rows:
        message = pick("没有列出任何区域", "no areas listed")
        raise PlannerError(message, path)
    names: set[str] = set()
    return [_area_spec(row, index, names, path) for index, row in enumerate(rows)]


# --------------------------------------------------------------------------- running


def run_area(spec: AreaSpec, out_dir: str, fingerprint: str | None = None) -> dict:
    """Analyse one area and write its folder; never raises (failures are returned).

    ``fingerprint`` is :meth:`AreaSpec.fingerprint`, computed once by the
    caller (it hashes every input file); computed here when omitted.
    """
    from planner.export import write_analysis
    from planner.pipeline import analyze
    from planner.results import catalogue_files

    start = time.perf_counter()
    folder = Path(out_dir)
    fingerprint = fingerprint or spec.fingerprint()
    try:
        analysis = analyze(**spec.analyze_kwargs())

        # the stamp is written with the result, so a folder never has one without the other
        def stamp(stage: Path) -> dict:
            (stage / FINGERPRINT_FILE).write_text(fingerprint, encoding="utf-8")
            return {}

        write_analysis(analysis, folder, extra_files=catalogue_files(analysis, stamp))
        return {"name": spec.name, "status": "ok", "seconds": round(time.perf_counter() - start, 3),
                "timings_s": analysis.timings_s}
    except Exception as error:  # one area's failure must not stop the batch
        return {"name": spec.name, "status": "failed", "error": one_line(error),
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
        """Names of the areas that failed."""
        return [area["name"] for area in self.areas if area["status"] == "failed"]


@contextmanager
def quiet_dask() -> Iterator[None]:
    """Show only warnings of Dask's loggers while the block runs (restored after)."""
    import distributed  # noqa: F401  (configures its loggers on import: do that first)

    loggers = [logging.getLogger(name) for name in DASK_LOGGERS]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(max(logger.getEffectiveLevel(), logging.WARNING))
    try:
        yield
    finally:
        for logger, level in zip(loggers, levels, strict=True):
            logger.setLevel(level)


def connect(scheduler: str | None, workers: int):
    """A Dask client: to the scheduler at ``scheduler``, or to a new ``LocalCluster``.

    Returns ``(client, cluster, address)``; ``cluster`` is ``None`` for a
    scheduler address.

    Raises
    ------
    PlannerError
        When the scheduler cannot be reached within
        :data:`planner.settings.scheduler_timeout_s`.
    """
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=f"{settings.scheduler_timeout_s}s")
        except (OSError, ValueError, TypeError) as error:
            message = pick(f"--scheduler {scheduler}: 无法连接 Dask 调度器（{one_line(error)}）",
                           f"--scheduler {scheduler}: cannot reach the Dask scheduler "
                           f"({one_line(error)})")
            raise PlannerError(message) from error
        return client, None, scheduler
    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           dashboard_address=None, host="127.0.0.1",
                           silence_logs=logging.WARNING)
    return Client(cluster), cluster, cluster.scheduler_address


def _unchanged(spec: AreaSpec, out_dir: Path, fingerprint: str) -> bool:
    """Whether the area's folder holds a result of the same inputs and parameters."""
    folder = out_dir / spec.name
    stamp = folder / FINGERPRINT_FILE
    return (stamp.exists() and (folder / "coverage.gpkg").exists()
            and stamp.read_text(encoding="utf-8") == fingerprint)


def _run_on(client, specs: list[AreaSpec], out_dir: Path, records: dict,
            progress: Callable[[dict], None] | None, fingerprints: dict[str, str]) -> None:
    """Submit every area to ``client``; store each record as it completes."""
    from dask.distributed import as_completed

    futures = [client.submit(run_area, spec, str(out_dir / spec.name),
                             fingerprints[spec.name],
                             key=f"area-{spec.name}-{fingerprints[spec.name][:12]}", pure=False)
               for spec in specs]
    for future in as_completed(futures):
        record = future.result()
        records[record["name"]] = record
        if progress is not None:
            progress(record)


def run_batch(areas_file: str | Path, out_dir: str | Path, *, scheduler: str | None = None,
              workers: int = 2, progress: Callable[[dict], None] | None = None) -> BatchResult:
    """Run every area of an areas file on Dask and write the combined outputs.

    Parameters
    ----------
    areas_file
        TOML or CSV (see the module docstring).
    out_dir
        One folder per area inside it, plus ``communities.csv``,
        ``communities.gpkg``, ``map.html`` and ``batch.json``. Created only
        once the cluster is reached.
    scheduler
        Address of a running Dask scheduler (``tcp://host:port``); a
        ``LocalCluster`` of ``workers`` processes when omitted.
    workers
        Worker processes of the local cluster.
    progress
        Called with each area's record as it completes.

    Raises
    ------
    PlannerError
        For a bad areas file, or a scheduler that cannot be reached.
    """
    from planner.staging import check_output_dir, replace_directory
    from planner.validate import check_number

    specs = read_areas(areas_file)
    workers = check_number(workers, "--workers")
    out_dir = check_output_dir(out_dir, inputs=(Path(areas_file), *_input_files(specs)))
    start = time.perf_counter()
    # hashing reads every input file: once per area, here
    fingerprints = {spec.name: spec.fingerprint() for spec in specs}
    skipped = {spec.name for spec in specs
               if _unchanged(spec, out_dir, fingerprints[spec.name])}
    records = {name: {"name": name, "status": "skipped",
                      "reason": "inputs and parameters unchanged"} for name in skipped}
    to_run = [spec for spec in specs if spec.name not in skipped]
    address = scheduler or ""
    with quiet_dask():
        # reached before anything is written: an unreachable scheduler costs seconds
        client, cluster, address = connect(scheduler, workers) if to_run else (None, None,
                                                                                 address)
        try:
            # the whole folder is built beside --out and replaces it as a whole
            with replace_directory(out_dir) as stage:
                for name in sorted(skipped):
                    _carry_over(out_dir / name, stage / name)
                if to_run:
                    _run_on(client, to_run, stage, records, progress, fingerprints)
                result = _finish_batch(specs, records, skipped, stage, address, start,
                                       progress)
        finally:
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
    result.out_dir = out_dir
    return result


def _finish_batch(specs: list[AreaSpec], records: dict, skipped: set[str], stage: Path,
                  address: str, start: float,
                  progress: Callable[[dict], None] | None) -> BatchResult:
    """Report the skipped areas, combine the communities and write the batch files."""
    if progress is not None:  # areas that ran were reported as they completed
        for spec in specs:
            if spec.name in skipped:
                progress(records[spec.name])
    areas = [records[spec.name] for spec in specs]
    communities = combined_communities(stage, [a["name"] for a in areas
                                               if a["status"] in ("ok", "skipped")])
    result = BatchResult(areas=areas, communities=communities, out_dir=stage,
                         scheduler=address,
                         timings_s={"total": round(time.perf_counter() - start, 3)})
    write_batch_files(result, stage)
    return result


def _input_files(specs: list[AreaSpec]) -> list[Path]:
    """Every input file the areas name (they must not lie inside ``--out``)."""
    files = []
    for spec in specs:
        for path in (spec.source, spec.communities, spec.population, spec.catalogue,
                     *spec.facilities):
            if path:
                files.append(Path(path))
    return files


def _carry_over(earlier: Path, new: Path) -> None:
    """An unchanged area's earlier folder into the new result: hard links, else copies."""
    import shutil

    def link(source: str, destination: str) -> None:
        try:
            os.link(source, destination)
        except OSError:  # another file system, or links not supported
            shutil.copy2(source, destination)

    shutil.copytree(earlier, new, copy_function=link)


# --------------------------------------------------------------------------- outputs


def combined_communities(out_dir: Path, names: list[str]) -> gpd.GeoDataFrame:
    """The communities of every finished area, with an ``area`` column (EPSG:4326)."""
    import geopandas as gpd
    import pandas as pd

    parts = []
    for name in names:
        layer = gpd.read_file(out_dir / name / "coverage.gpkg", layer="communities")
        layer.insert(0, "area", name)
        parts.append(layer)
    if not parts:
        return gpd.GeoDataFrame({"area": [], "community_id": []}, geometry=[], crs=4326)
    return gpd.GeoDataFrame(pd.concat(parts, ignore_index=True), geometry="geometry", crs=4326)


def write_batch_files(result: BatchResult, folder: Path) -> None:
    """``communities.csv``, ``communities.gpkg``, ``map.html`` and ``batch.json`` in ``folder``."""
    from planner.outputs import package_versions, write_layers

    communities = result.communities
    communities.drop(columns="geometry").to_csv(folder / "communities.csv", index=False,
                                                encoding="utf-8")
    if len(communities):
        write_layers(folder / "communities.gpkg", {"communities": communities})
        write_scores_map(communities, folder / "map.html")
    record = {"areas": result.areas, "scheduler": result.scheduler,
              "communities": len(communities), "failed": result.failed,
              "versions": package_versions(), "timings_s": result.timings_s}
    (folder / "batch.json").write_text(json.dumps(record, ensure_ascii=False, indent=2),
                                       encoding="utf-8")


def write_scores_map(communities: gpd.GeoDataFrame, path: Path) -> None:
    """All areas' communities coloured by overall score, one layer per area."""
    import folium

    from planner.maps import score_colour

    west, south, east, north = communities.total_bounds
    fmap = folium.Map(tiles="OpenStreetMap", control_scale=True)
    fmap.fit_bounds([[south, west], [north, east]])
    shown = communities[["area", "community_id", "name", "population", "score", "geometry"]]
    fields = ["area", "community_id", "name", "score"]
    aliases = [pick("区域", "area"), pick("社区编号", "community_id"), pick("名称", "name"),
               pick("总分", "score")]
    for area, group in shown.groupby("area", sort=True):
        folium.GeoJson(
            group.to_json(), name=str(area),
            style_function=lambda feature: {
                "fillColor": score_colour(feature["properties"]["score"]), "color": "#333",
                "weight": 1, "fillOpacity": 0.5},
            tooltip=folium.GeoJsonTooltip(fields, aliases=aliases),
        ).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    fmap.save(str(path))
