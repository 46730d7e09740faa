"""Deprecated: the ``map`` command moved to :mod:`planner.cli.map`."""

from planner.cli.map import MAP_LAYERS, map_command, read_map_layers, render_results_map

__all__ = ["MAP_LAYERS", "map_command", "read_map_layers", "render_results_map"]
