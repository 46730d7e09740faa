"""What the commands share: options, language, progress lines and the console summary.

Imported to print ``planner --help``, so it imports nothing heavy at module
level (no numpy, pandas, geopandas …): the commands import the library inside
their functions.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click

from planner import settings
from planner.basemaps import BASEMAP_CHOICES, resolve_basemap
from planner.errors import PlannerError, one_line
from planner.i18n import CJK, detect_lang, pick, system_lang

#: Chinese names of the stages reported by :func:`planner.analyze` and
#: :func:`planner.sites.rank_sites` (a stage missing here prints its id).
STAGES_ZH = {
    "catalogue": "设施目录", "load": "读取数据", "classify": "设施分类", "lists": "设施清单",
    "name_conflicts": "名称冲突", "network": "步行路网", "access": "可达性",
    "residences": "住宅", "communities": "社区边界", "snap": "吸附路网", "distances": "步行距离",
    "coverage": "覆盖率", "network_quality": "路网质量", "street_reach": "服务范围",
    "sites_load": "读取房产",
    "coverage_sets": "覆盖集合", "ranking": "候选点排序", "reallocation": "再利用方案",
}

#: How the community boundaries were chosen (``community_source``), in Chinese.
COMMUNITY_SOURCES_ZH = {"grid": "网格", "osm": "OSM 边界", "user": "用户边界"}


# --------------------------------------------------------------------------- language


def set_language(lang: str | None) -> str:
    """Set :data:`planner.settings.lang` from ``--lang`` or the system locale; return it.

    Called first in every command, so that messages logged during the work are
    in the user's language. The previous value comes back when the command
    ends, so a command run in-process (tests, notebooks) leaves no trace.
    """
    context = click.get_current_context(silent=True)
    if context is not None:  # the root's: the group prints errors in the language too
        previous = settings.lang
        context.find_root().call_on_close(lambda: setattr(settings, "lang", previous))
    settings.lang = lang if lang in ("zh", "en") else system_lang()
    return settings.lang


def adopt_language(lang: str | None, names) -> str:
    """The language of the outputs: ``--lang``, else Chinese when the facility names are."""
    settings.lang = lang or detect_lang(names)
    return settings.lang


def error_line(error: BaseException | str) -> str:
    """``error: …`` (``错误: …`` in Chinese), one line."""
    return f"{pick('错误', 'error')}: {error}"


class LogFormatter(logging.Formatter):
    """``WARNING: …`` as ``警告: …`` when the language is Chinese."""

    LEVELS_ZH = {"DEBUG": "调试", "INFO": "信息", "WARNING": "警告", "ERROR": "错误",
                 "CRITICAL": "严重错误"}

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname
        if settings.lang == "zh":
            level = self.LEVELS_ZH.get(level, level)
        return f"{level}: {record.getMessage()}"


def configure_logging(verbose: bool) -> None:
    """Log warnings (and with ``verbose`` details) to stderr, one line each."""
    handler = logging.StreamHandler()
    handler.setFormatter(LogFormatter())
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, handlers=[handler])


# --------------------------------------------------------------------------- options


def lang_option(help_text: str = "Language of tables and labels "
                                 "(default: Chinese when the names are).",
                choices: tuple[str, ...] = ("zh", "en"), default: str | None = None):
    """The ``--lang`` option."""
    return click.option("--lang", type=click.Choice(choices), default=default,
                        show_default=default is not None, help=help_text)


def basemap_options(function):
    """``--basemap`` and ``--tianditu-key``."""
    function = click.option(
        "--tianditu-key", envvar="TIANDITU_KEY", default=None, metavar="KEY",
        help="Tianditu (天地图) token for --basemap tianditu [env TIANDITU_KEY].")(function)
    return click.option(
        "--basemap", type=click.Choice(BASEMAP_CHOICES), default="osm", show_default=True,
        help="Map tiles: OpenStreetMap, Amap/高德 (GCJ-02; every overlay is shifted to "
             "match) or Tianditu/天地图 (needs a key).")(function)


def out_option(function):
    """``--out``: the output folder."""
    return click.option("--out", type=click.Path(path_type=Path), default=Path("out"),
                        show_default=True, help="Output folder.")(function)


def analysis_options(function):
    """The options of a command that runs an analysis (source, inputs, language, map)."""
    options = [
        click.option("--place", help='Download by place name, e.g. "西陵区, 宜昌市, 湖北省".'),
        click.option("--bbox", nargs=4, type=float, default=None,
                     metavar="WEST SOUTH EAST NORTH", help="Download a bounding box (degrees)."),
        click.option("--communities", type=click.Path(path_type=Path),
                     help="Community boundaries (GeoPackage, GeoJSON, Shapefile)."),
        click.option("--population", type=click.Path(path_type=Path),
                     help="Population points or polygons (overrides the building estimate)."),
        click.option("--catalogue", type=click.Path(path_type=Path),
                     help="Replace the packaged catalogue of scenes and facility types."),
        click.option("--facilities", "facility_lists", multiple=True,
                     type=click.Path(path_type=Path),
                     help="A facility list (CSV, XLSX, GeoJSON, GeoPackage); repeatable."),
        click.option("--facilities-crs", type=click.Choice(["wgs84", "gcj02", "bd09"]),
                     default="wgs84", show_default=True,
                     help="Datum of the lists' coordinates (Amap: gcj02, Baidu: bd09)."),
        click.option("--walk-speed", "walk_speed", type=float, default=None,
                     help=f"Walking speed, m/s (default {settings.walk_speed_m_per_s})."),
        click.option("--crs", default=None, help="Metric CRS to compute in (default: local UTM)."),
        click.option("--tile-m", "tile_m", type=float, default=None,
                     help="Solve distances in square tiles of this side (metres) to bound "
                          "memory on a whole city; same results."),
        click.option("--encoding", default=None, metavar="CODEC",
                     help="Text encoding of your CSV/TXT tables and shapefiles, e.g. gbk "
                          "(default: detected: UTF-8, GBK/GB18030, a shapefile's .cpg)."),
        lang_option(),
    ]
    for option in reversed(options):
        function = option(function)
    return basemap_options(function)


def check_files(*paths) -> None:
    """Raise :class:`PlannerError` for the first given path that does not exist."""
    for path in paths:
        if path is not None and not Path(path).exists():
            message = pick("文件不存在", "file not found")
            raise PlannerError(message, path)


def source_kwargs(source, place, bbox, communities, population, catalogue, walk_speed, crs,
                  facility_lists=(), facilities_crs="wgs84", tile_m=None) -> dict:
    """The keyword arguments of :func:`planner.analyze`, input files checked."""
    if source is None and place is None and not bbox:
        raise click.UsageError(pick("请给出 SOURCE 文件、--place 或 --bbox",
                                    "give a SOURCE file, --place or --bbox"))
    check_files(source, communities, population, catalogue, *facility_lists)
    return dict(source=source, place=place, bbox=tuple(bbox) if bbox else None,
                communities=communities, population=population, catalogue=catalogue,
                walk_speed_m_per_s=walk_speed, crs=crs, facility_lists=facility_lists,
                facilities_crs=facilities_crs, tile_m=tile_m)


def set_encoding(encoding: str | None) -> None:
    """``--encoding``, checked, as :data:`planner.settings.input_encoding` for this command."""
    if encoding is None:
        return
    from planner.encodings import check_encoding

    name = check_encoding(encoding)
    context = click.get_current_context(silent=True)
    if context is not None:
        previous = settings.input_encoding
        context.find_root().call_on_close(
            lambda: setattr(settings, "input_encoding", previous))
    settings.input_encoding = name


def preflight(out: Path, kwargs: dict, *, encoding: str | None = None,
              numbers: dict | None = None, inputs=()) -> Path:
    """Check every option, input file and ``--out`` before any work; returns ``--out``.

    Numbers (finite, in range), ``--bbox``, ``--crs`` (valid, projected, in
    metres; its fit to the extract once that is read), ``--encoding``, that the
    input files exist, and that ``--out`` can be replaced as a whole
    (:func:`planner.staging.check_output_dir`). A bad input costs a second,
    not the analysis.

    Parameters
    ----------
    out
        ``--out``.
    kwargs
        The keyword arguments of :func:`planner.analyze` (:func:`source_kwargs`).
    encoding
        ``--encoding``.
    numbers
        More numeric options of the command (``{"--count": 5, …}``).
    inputs
        More input files of the command (premises, weights …).
    """
    from planner import validate
    from planner.staging import check_output_dir

    validate.check_options({"--walk-speed": kwargs.get("walk_speed_m_per_s"),
                            "--tile-m": kwargs.get("tile_m"), **(numbers or {})})
    bounds = validate.check_bbox(kwargs.get("bbox"))
    if kwargs.get("crs") is not None:
        validate.check_metric_crs(kwargs["crs"], bounds)
    set_encoding(encoding)
    files = [kwargs.get(key) for key in ("source", "communities", "population", "catalogue")]
    files = [Path(path) for path in [*files, *(kwargs.get("facility_lists") or ()), *inputs]
             if path is not None]
    check_files(*files)
    RUN["inputs"] = [str(path) for path in files]
    return check_output_dir(out, inputs=tuple(files))


def check_facilities(analysis, kwargs: dict) -> None:
    """Refuse an area with no facility of any type: every coverage would be "no data".

    The outputs and the map need at least one facility; the message says what
    to add instead of writing a result that shows nothing.
    """
    if len(analysis.facilities):
        return
    what = kwargs.get("source") or kwargs.get("place") or "--bbox"
    message = pick("区域内没有任何类型的设施 (OSM 与设施清单均无), 无可计算的覆盖率; "
                   "请用 --facilities 添加设施清单",
                   "no facility of any type in the area (neither OSM nor the lists): there is "
                   "no coverage to measure; add the planner's lists with --facilities")
    raise PlannerError(message, what)


def check_basemap(write_options: dict | None) -> None:
    """Fail on a bad basemap (or Tianditu without a key) before any work."""
    options = write_options or {}
    resolve_basemap(options.get("basemap", "osm"), options.get("tianditu_key"))


# --------------------------------------------------------------------------- printing


#: Terminal columns of a progress line's stage name (padded to this width).
PROGRESS_LABEL_COLUMNS = 16


def progress(stage: str, seconds: float) -> None:
    """Print a finished stage and its duration on stderr (a :data:`planner.timing.Progress`)."""
    RUN["stage"] = stage
    label = STAGES_ZH.get(stage, stage) if settings.lang == "zh" else stage
    # a Chinese character takes two columns of the terminal; the longest stage
    # names (network_quality) still leave the seconds in one column
    padding = " " * max(PROGRESS_LABEL_COLUMNS - len(label) - len(CJK.findall(label)), 0)
    click.echo(f"  {label}{padding} {seconds:6.2f} {pick('秒', 's')}", err=True)


def _community_names(communities, lang: str):
    """Names to print: grid cells get a label in ``lang`` instead of the stored bilingual one."""
    names = communities["name"].astype(str)
    if "community_source" not in communities:
        return names
    grid = communities["community_source"].eq("grid")
    cell = communities["community_id"].astype(str).str[1:]
    return names.where(~grid, pick("网格 ", "grid ", lang) + cell)


def community_table(analysis, lang: str, max_rows: int = 50) -> str:
    """Scene scores per community as a fixed-width text table (percent).

    A scene none of whose types has a facility in the area reads "无数据 / no
    data" rather than 0; the last two columns are the overall score over every
    type and over the types with data.
    """
    import pandas as pd

    zh = lang == "zh"
    communities = analysis.communities
    no_data = pick("无数据", "no data", lang)
    table = pd.DataFrame({
        "id": communities["community_id"].to_numpy(),
        "名称" if zh else "name": _community_names(communities, lang).to_numpy(),
        "人口" if zh else "population": communities["population"].round(0).to_numpy()})
    with_data = _types_with_data(analysis)
    for scene in analysis.catalogue.scenes:
        percent = (communities[f"score_{scene.id}"] * 100).round(0)
        has_data = any(t.id in with_data for t in analysis.catalogue.types
                       if t.scene == scene.id)
        table[scene.zh if zh else scene.id] = (percent.to_numpy() if has_data
                                               else [no_data] * len(table))
    table["总分" if zh else "score"] = (communities["score"] * 100).round(0).to_numpy()
    if "score_data" in communities:
        table["有数据总分" if zh else "score (data)"] = (
            communities["score_data"] * 100).round(0).to_numpy()
    table = table.sort_values(table.columns[0])
    note = ""
    if len(table) > max_rows:  # a whole city on a grid has thousands of cells
        hidden = len(table) - max_rows
        table = table.head(max_rows)
        note = pick(f"\n… 另有 {hidden} 个社区, 见 summary.csv",
                    f"\n… {hidden} more communities in summary.csv", lang)
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.unicode.east_asian_width", True):
        return table.to_string(index=False, na_rep="-") + note


def _types_with_data(analysis) -> set[str]:
    """The type ids with at least one facility in the area (all, when unknown)."""
    status = getattr(analysis, "type_status", None)
    if status is None:
        return {t.id for t in analysis.catalogue.types}
    return set(status.index[status["has_data"].to_numpy(bool)])


def _score_basis(analysis, lang: str) -> str:
    """One line: over how many types the scores were computed."""
    n_types = len(analysis.catalogue.types)
    n_data = len(_types_with_data(analysis))
    return pick(f"总分按全部 {n_types} 类设施计算; 有数据总分只计 {n_data} 类有数据的设施"
                f" (其余 {n_types - n_data} 类在数据中没有任何设施: 是缺数据, 不是缺设施)",
                f"score over all {n_types} types; score (data) over the {n_data} types with "
                f"data (the other {n_types - n_data} have no facility in the sources: "
                "missing data, not missing provision)", lang)


def print_scores(analysis, lang: str) -> None:
    """Where the facilities came from, then the scene scores per community."""
    from planner.i18n import facility_origin

    source = analysis.parameters["community_source"]
    if lang == "zh":
        source = COMMUNITY_SOURCES_ZH.get(source, source)
    click.echo(facility_origin(analysis, lang))
    click.echo(f"\n{pick('各社区场景得分', 'Scene scores per community', lang)} "
               f"({pick('覆盖率 %', 'coverage %', lang)}; {source}):")
    click.echo(community_table(analysis, lang))
    click.echo(_score_basis(analysis, lang))


def print_written(out: Path, lang: str) -> None:
    """The last line: where the results are."""
    click.echo(f"\n{pick('结果已写入', 'results written to', lang)} {out}")


# --------------------------------------------------------------------------- errors


#: What the running command has reached, for the line of an unexpected error:
#: its input files and the last stage it finished.
RUN: dict = {"inputs": [], "stage": None}
#: ``planner -v``: an unexpected error also prints its traceback.
VERBOSE = {"on": False}
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def _origin(error: BaseException) -> str:
    """``in planner.coverage.community_coverage`` for the innermost frame of the package."""
    import traceback

    found = ""
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename).resolve()
        if PACKAGE_DIR in path.parents:
            module = ".".join(path.relative_to(PACKAGE_DIR.parent).with_suffix("").parts)
            found = f"{module}.{frame.name}"
    return found


def unexpected_line(error: BaseException) -> str:
    """One line for a bug: the error, where it arose, after which stage, and the inputs."""
    where = [f"{pick('位于', 'in')} {_origin(error)}"] if _origin(error) else []
    if RUN["stage"]:
        stage = STAGES_ZH.get(RUN["stage"], RUN["stage"]) if settings.lang == "zh" \
            else RUN["stage"]
        where.append(f"{pick('在阶段之后', 'after stage')} {stage}")
    if RUN["inputs"]:
        where.append(f"{pick('输入', 'inputs')} {', '.join(RUN['inputs'])}")
    hint = pick("用 planner -v 可显示回溯", "planner -v shows the traceback")
    return error_line(f"{pick('意外错误', 'unexpected')} {one_line(error)} "
                      f"({'; '.join([*where, hint])})")


class PlannerGroup(click.Group):
    """Turns PlannerError into one line on stderr and exit code 2; a bug into one line, exit 1."""

    def invoke(self, ctx):
        RUN.update(inputs=[], stage=None)
        VERBOSE["on"] = bool(ctx.params.get("verbose"))
        try:
            return super().invoke(ctx)
        except PlannerError as error:
            click.echo(error_line(error), err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as error:  # a bug: one line, the traceback only with -v
            if os.environ.get("PLANNER_DEBUG"):
                raise
            if VERBOSE["on"]:
                import traceback

                traceback.print_exc()
            click.echo(unexpected_line(error), err=True)
            sys.exit(1)
