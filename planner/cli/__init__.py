"""Command-line interface: a thin layer over the library API.

One module per command (:mod:`~planner.cli.analyze`, :mod:`~planner.cli.sites`,
:mod:`~planner.cli.map`, :mod:`~planner.cli.batch`,
:mod:`~planner.cli.catalogue`, :mod:`~planner.cli.demo`) and
:mod:`~planner.cli.common` for what they share. Importing the package imports
no numpy, pandas or geopandas, so ``planner --help`` is quick; each command
imports the library when it runs.
"""

from __future__ import annotations

import atexit
import os
import sys

import click

from planner.cli.analyze import analyze_command, run_analysis
from planner.cli.batch import batch_command
from planner.cli.catalogue import catalogue_command
from planner.cli.common import PlannerGroup, community_table, configure_logging
from planner.cli.demo import demo_command
from planner.cli.map import map_command, render_results_map
from planner.cli.sites import run_sites, sites_command

__all__ = ["PlannerGroup", "community_table", "main", "render_results_map", "run",
           "run_analysis", "run_sites"]


@click.group(cls=PlannerGroup)
@click.version_option(package_name="planner")
@click.option("-v", "--verbose", is_flag=True, help="Show warnings and details.")
def main(verbose: bool) -> None:
    """planner: 15-minute community life circle facility planner (十五分钟社区生活圈).

    Walking-distance coverage of the eight service scenes per community, maps of
    provision and gaps, and ranking of candidate sites and state-owned premises.
    """
    configure_logging(verbose)


for _command in (analyze_command, catalogue_command, demo_command, sites_command,
                 map_command, batch_command):
    main.add_command(_command)


def run() -> None:
    """The ``planner`` console script: :func:`main`, then leave without tearing down.

    Freeing a city's analysis object by object takes a second or more once
    everything is written; the files are closed and renamed into place by
    then, so the process flushes its streams, runs its exit handlers and
    leaves at once. ``main`` stays an ordinary Click command for tests and
    callers in Python.
    """
    try:
        main()  # standalone: always ends in SystemExit
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    if isinstance(code, str):  # what SystemExit itself would print
        print(code, file=sys.stderr)
        code = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - what the interpreter runs before its teardown
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    os._exit(code or 0)
