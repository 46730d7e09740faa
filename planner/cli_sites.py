"""Deprecated: the ``sites`` command moved to :mod:`planner.cli.sites`."""

from planner.cli.sites import run_sites, sites_command

__all__ = ["run_sites", "sites_command"]
