"""``planner sites``: rank candidate sites and plan the reallocation of premises.

A plain click command; :mod:`planner.cli` registers it with
``main.add_command(sites_command)``. It does not import :mod:`planner.cli` at
module level (that module imports this one), only inside functions.
"""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli_options import analysis_options, source_kwargs
from planner.errors import PlannerError

DEFAULT_COUNT = 5


def _min_areas(values: tuple[str, ...]) -> dict[str, float]:
    areas = {}
    for text in values:
        type_id, _, number = text.partition("=")
        try:
            areas[type_id.strip()] = float(number)
        except ValueError as error:
            raise click.BadParameter(f"{text!r} is not TYPE=M2",
                                     param_hint="--min-area") from error
        if not areas[type_id.strip()] >= 0:
            raise click.BadParameter(f"{text!r}: the area must be ≥ 0", param_hint="--min-area")
    return areas


def run_sites(out: Path, lang: str | None, *, premises=None, candidates=None, types=(),
              count: int = DEFAULT_COUNT, weights=None, weighting: str = "type",
              min_area: dict | None = None, new_sites: str = "auto", generate: str = "grid",
              spacing: float = 100.0, time_limit: float = 60.0, max_per_type=None,
              top: int = 10, write_options: dict | None = None, **analysis_kwargs):
    """Analyse, rank, plan, write everything to ``out`` in one staged step, print the tops.

    ``analysis_kwargs`` go to :func:`planner.pipeline.analyze` (``source``,
    ``communities`` …); ``write_options`` to :func:`planner.outputs.write_analysis`
    (``render_map``, map language …). Returns ``(analysis, result)``.
    """
    from planner.cli import _progress, community_table
    from planner.i18n import detect_lang, facility_origin
    from planner.maps import resolve_basemap
    from planner.outputs import write_analysis
    from planner.pipeline import analyze
    from planner.sites import (
        plan_table,
        rank_sites,
        ranking_table,
        reallocation_layer,
        write_sites_files,
    )

    resolve_basemap((write_options or {}).get("basemap", "osm"),
                    (write_options or {}).get("tianditu_key"))
    for path in (premises, candidates, weights):
        if path is not None and not Path(path).exists():
            raise PlannerError("file not found", path)
    click.echo("planner sites", err=True)
    analysis = analyze(progress=_progress, **analysis_kwargs)
    result = rank_sites(analysis, premises, candidates=candidates, types=list(types) or None,
                        count=count, new_sites=new_sites, generate=generate,
                        spacing_m=spacing, weights=weights, weighting=weighting,
                        min_floor_area_m2=min_area, max_per_type=max_per_type,
                        time_limit_s=time_limit,
                        progress=_progress)
    analysis.inputs.extend(path for path in result.inputs if path not in analysis.inputs)
    lang = lang or detect_lang(analysis.facilities["name"])
    options = {"lang": lang, **(write_options or {})}
    write_analysis(analysis, out, **options, sites=result.ranking.drop(columns="geometry"),
                   extra_layers={"reallocation": reallocation_layer(result, options["lang"])},
                   extra_files=lambda stage: {"sites": write_sites_files(result, stage)})
    zh = lang == "zh"
    click.echo(facility_origin(analysis, lang))
    click.echo(f"\n{'各社区场景得分' if zh else 'Scene scores per community'} "
               f"({'覆盖率 %' if zh else 'coverage %'}; "
               f"{analysis.parameters['community_source']}):")
    click.echo(community_table(analysis, lang))
    click.echo(f"\n{'候选点排序（贪心，前 3 名）' if zh else 'Candidate ranking (greedy, top 3)'}:")
    click.echo(ranking_table(result, top=3, lang=lang))
    if result.premises is not None:
        click.echo(f"\n{'房产再利用方案' if zh else 'Reallocation plan'} "
                   f"({'前' if zh else 'top'} {top}):")
        click.echo(plan_table(result, top=top, lang=lang))
    click.echo(f"\n{'结果已写入' if zh else 'results written to'} {out}")
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
@click.option("--out", type=click.Path(path_type=Path), default=Path("out"), show_default=True,
              help="Output folder.")
def sites_command(source, premises, candidates, types, count, weights, weighting, min_area,
                  new_sites, generate, spacing, max_per_type, time_limit, place, bbox,
                  communities, population, catalogue, facility_lists, facilities_crs,
                  walk_speed, crs, tile_m, lang, basemap, tianditu_key, out):
    """Rank candidate sites per facility type and plan the reallocation of premises.

    Writes the analysis outputs plus sites.csv, sites_optimal.csv, reallocation.csv,
    reallocation_communities.csv and the layers candidates and reallocation.
    """
    analysis_kwargs = source_kwargs(source, place, bbox, communities, population, catalogue,
                                    walk_speed, crs, facility_lists, facilities_crs, tile_m)
    run_sites(out, lang, premises=premises, candidates=candidates, types=types, count=count,
              weights=weights, weighting=weighting, min_area=_min_areas(min_area),
              new_sites=new_sites, generate=generate, spacing=spacing,
              max_per_type=max_per_type, time_limit=time_limit,
              write_options={"basemap": basemap, "tianditu_key": tianditu_key},
              **analysis_kwargs)
