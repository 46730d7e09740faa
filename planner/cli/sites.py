"""``planner sites``: rank candidate sites and plan the reallocation of premises."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli.common import (
    adopt_language,
    analysis_options,
    check_basemap,
    check_facilities,
    check_files,
    out_option,
    preflight,
    print_scores,
    print_written,
    progress,
    set_language,
    source_kwargs,
)
from planner.i18n import pick

DEFAULT_COUNT = 5


def _min_areas(values: tuple[str, ...]) -> dict[str, float]:
    """``--min-area TYPE=M2`` values as ``{type_id: m2}``."""
    areas = {}
    for text in values:
        type_id, _, number = text.partition("=")
        try:
            areas[type_id.strip()] = float(number)
        except ValueError as error:
            message = pick(f"{text!r} 不是 TYPE=M2 形式", f"{text!r} is not TYPE=M2")
            raise click.BadParameter(message, param_hint="--min-area") from error
        if not areas[type_id.strip()] >= 0:
            message = pick(f"{text!r}: 面积须 ≥ 0", f"{text!r}: the area must be ≥ 0")
            raise click.BadParameter(message, param_hint="--min-area")
    return areas


def _write(analysis, result, out: Path, lang: str, write_options: dict | None) -> None:
    """The analysis outputs plus the sites files and the reallocation layer, in one stage."""
    from planner.export import write_analysis
    from planner.results import catalogue_files
    from planner.sites import sites_layers, write_sites_files

    options = {"lang": lang, **(write_options or {})}
    basemap = options.get("basemap")
    write_analysis(analysis, out, **options, sites=result.ranking.drop(columns="geometry"),
                   extra_layers=sites_layers(result, options["lang"], basemap),
                   extra_files=catalogue_files(analysis, lambda stage: {
                       "sites": write_sites_files(result, stage, lang=options["lang"],
                                                  basemap=basemap, layers=False)}))


def _print_sites(result, lang: str, top: int) -> None:
    """The top of the greedy ranking and of the reallocation plan."""
    from planner.sites import plan_table, ranking_table

    title = pick("候选点排序（贪心，前 3 名）", "Candidate ranking (greedy, top 3)", lang)
    click.echo(f"\n{title}:")
    click.echo(ranking_table(result, top=3, lang=lang))
    if result.premises is not None:
        click.echo(f"\n{pick('房产再利用方案', 'Reallocation plan', lang)} "
                   f"({pick('前', 'top', lang)} {top}):")
        click.echo(plan_table(result, top=top, lang=lang))


def _check_site_options(catalogue, types, min_area, weights, weighting) -> None:
    """--type, --min-area and --weights against the catalogue: seconds, not the analysis."""
    from planner.catalogue import Catalogue, load_catalogue
    from planner.sites.rules import minimum_floor_areas, ranked_types, type_weights

    cat = catalogue if isinstance(catalogue, Catalogue) else load_catalogue(catalogue)
    minimum = minimum_floor_areas(cat, min_area)
    ranked_types(cat, list(types) or None, minimum, ())
    type_weights(cat, cat.type_ids, weights, weighting)


def run_sites(out: Path, lang: str | None, *, premises=None, candidates=None, types=(),
              count: int = DEFAULT_COUNT, weights=None, weighting: str = "type",
              min_area: dict | None = None, new_sites: str = "auto", generate: str = "grid",
              spacing: float = 100.0, time_limit: float = 60.0, max_per_type=None,
              top: int = 10, write_options: dict | None = None, encoding: str | None = None,
              **analysis_kwargs):
    """Analyse, rank, plan, write everything to ``out`` in one staged step, print the tops.

    ``analysis_kwargs`` go to :func:`planner.pipeline.analyze` (``source``,
    ``communities`` …); ``write_options`` to :func:`planner.export.write_analysis`
    (``render_map``, map language …). Returns ``(analysis, result)``.
    """
    from planner.pipeline import analyze
    from planner.sites import rank_sites

    check_basemap(write_options)
    check_files(premises, candidates, weights)
    out = preflight(out, analysis_kwargs, encoding=encoding, numbers={
        "--count": count, "--time-limit": time_limit, "--spacing": spacing,
        "--max-per-type": max_per_type, "--top": top},
        inputs=[path for path in (premises, candidates, weights)
                if isinstance(path, str | Path)])
    _check_site_options(analysis_kwargs.get("catalogue"), types, min_area, weights, weighting)
    click.echo("planner sites", err=True)
    analysis = analyze(progress=progress, **analysis_kwargs)
    check_facilities(analysis, analysis_kwargs)
    result = rank_sites(analysis, premises, candidates=candidates, types=list(types) or None,
                        count=count, new_sites=new_sites, generate=generate,
                        spacing_m=spacing, weights=weights, weighting=weighting,
                        min_floor_area_m2=min_area, max_per_type=max_per_type,
                        time_limit_s=time_limit, progress=progress,
                        basemap=(write_options or {}).get("basemap"))
    analysis.inputs.extend(path for path in result.inputs if path not in analysis.inputs)
    lang = adopt_language(lang, analysis.facilities["name"])
    _write(analysis, result, out, lang, write_options)
    print_scores(analysis, lang)
    _print_sites(result, lang, top)
    print_written(out, lang)
    return analysis, result


@click.command("sites")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@click.option("--premises", type=click.Path(path_type=Path),
              help="Premises layer (GeoPackage, GeoJSON, Shapefile, CSV/XLSX with lon/lat): "
                   "premises_id, name, floor_area_m2, status, owner[, allowed_types].")
@click.option("--candidates", type=click.Path(path_type=Path),
              help="The planner's own candidate sites (points or polygons).")
@click.option("--type", "types", multiple=True, metavar="TYPE",
              help="Facility type to rank and reallocate (repeatable; default: every type "
                   "premises can take).")
@click.option("--count", type=click.IntRange(min=1), default=DEFAULT_COUNT, show_default=True,
              help="Sites to rank per type (and to choose in the exact solution).")
@click.option("--weights", type=click.Path(path_type=Path),
              help="CSV of type_id or scene_id, weight for the reallocation.")
@click.option("--weighting", type=click.Choice(["type", "scene"]), default="type",
              show_default=True, help="Equal weight per type, or per scene.")
@click.option("--min-area", "min_area", multiple=True, metavar="TYPE=M2",
              help="Minimum floor area of a type, replacing the catalogue's (repeatable).")
@click.option("--new-sites", type=click.Choice(["auto", "always", "never"]), default="auto",
              show_default=True,
              help="Rank generated new sites: only where no premises adds anyone, always, never.")
@click.option("--generate", type=click.Choice(["grid", "buildings"]), default="grid",
              show_default=True, help="New sites: network nodes on a grid, or public buildings.")
@click.option("--spacing", type=float, default=100.0, show_default=True,
              help="Grid spacing of generated sites, metres.")
@click.option("--max-per-type", type=click.IntRange(min=0), default=None,
              help="At most this many premises per type in the reallocation plan.")
@click.option("--time-limit", type=float, default=60.0, show_default=True,
              help="HiGHS time limit per solve, seconds.")
@analysis_options
@out_option
def sites_command(source, premises, candidates, types, count, weights, weighting, min_area,
                  new_sites, generate, spacing, max_per_type, time_limit, place, bbox,
                  communities, population, catalogue, facility_lists, facilities_crs,
                  walk_speed, crs, tile_m, encoding, lang, basemap, tianditu_key, out):
    """Rank candidate sites per facility type and plan the reallocation of premises.

    Writes the analysis outputs plus sites.csv, sites_optimal.csv, reallocation.csv,
    reallocation_communities.csv and the layers candidates and reallocation.
    """
    set_language(lang)
    analysis_kwargs = source_kwargs(source, place, bbox, communities, population, catalogue,
                                    walk_speed, crs, facility_lists, facilities_crs, tile_m)
    run_sites(out, lang, premises=premises, candidates=candidates, types=types, count=count,
              weights=weights, weighting=weighting, min_area=_min_areas(min_area),
              new_sites=new_sites, generate=generate, spacing=spacing,
              max_per_type=max_per_type, time_limit=time_limit,
              write_options={"basemap": basemap, "tianditu_key": tianditu_key},
              encoding=encoding, **analysis_kwargs)
