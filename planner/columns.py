"""Finding a column of a user's table by any of its usual names."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd


def find_column(frame: pd.DataFrame, aliases: Sequence[str]) -> str | None:
    """The first column of ``frame`` whose name matches one of ``aliases``.

    Names are compared stripped and lower-cased; the geometry column is never
    returned. ``aliases`` are tried in order, so put the most specific first.

    Parameters
    ----------
    frame
        A table or GeoDataFrame read from the user's file.
    aliases
        Lower-case names to look for (``("population", "pop", "人口")``).

    Returns
    -------
    str or None
        The column's name as spelled in ``frame``, or None when none matches.
    """
    geometry = getattr(frame, "_geometry_column_name", None)
    lowered = {str(column).strip().lower(): column for column in frame.columns
               if column != geometry}
    return next((lowered[name] for name in aliases if name in lowered), None)
