"""``planner analyze``: coverage of every facility type per community."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli.common import (
    adopt_language,
    analysis_options,
    check_basemap,
    check_facilities,
    out_option,
    preflight,
    print_scores,
    print_written,
    progress,
    set_language,
    source_kwargs,
)


def run_analysis(out: Path, lang: str | None, *, basemap: str = "osm",
                 tianditu_key: str | None = None, encoding: str | None = None,
                 full: bool = False, **kwargs):
    """Analyse, write everything to ``out`` and print the summary; returns the analysis.

    ``kwargs`` go to :func:`planner.analyze`. ``lang`` is the ``--lang`` option:
    when omitted the outputs are Chinese when the facility names are. Every
    option, input and ``--out`` is checked first (:func:`~planner.cli.common.preflight`);
    ``--out`` is then replaced as a whole by the complete result.
    """
    from planner.export import write_analysis
    from planner.pipeline import analyze
    from planner.results import catalogue_files

    check_basemap({"basemap": basemap, "tianditu_key": tianditu_key})
    out = preflight(out, kwargs, encoding=encoding)
    click.echo("planner analyze", err=True)
    analysis = analyze(progress=progress, service_areas=True, **kwargs)
    check_facilities(analysis, kwargs)
    lang = adopt_language(lang, analysis.facilities["name"])
    write_analysis(analysis, out, lang=lang, basemap=basemap, tianditu_key=tianditu_key,
                   extra_files=catalogue_files(analysis), full=full)
    print_scores(analysis, lang)
    print_written(out, lang)
    return analysis


@click.command("analyze")
@click.argument("source", required=False, type=click.Path(path_type=Path))
@analysis_options
@click.option("--full", is_flag=True,
              help="Also write the walking network and the service-area streets of a "
                   "whole city (left out above settings.max_default_walk_edges), and keep "
                   "the residences' distances in coverage.gpkg (a city's go to "
                   "residence_distances.parquet).")
@out_option
def analyze_command(source, place, bbox, communities, population, catalogue, facility_lists,
                    facilities_crs, walk_speed, crs, tile_m, encoding, lang, basemap,
                    tianditu_key, full, out):
    """Coverage of every facility type per community, written to --out."""
    from planner.osm_prefetch import prefetch_selection

    set_language(lang)
    kwargs = source_kwargs(source, place, bbox, communities, population, catalogue,
                           walk_speed, crs, facility_lists, facilities_crs, tile_m)
    # libosmium reads the file in a child while this process imports the libraries
    with prefetch_selection(source, catalogue):
        run_analysis(out, lang, basemap=basemap, tianditu_key=tianditu_key,
                     encoding=encoding, full=full, **kwargs)
