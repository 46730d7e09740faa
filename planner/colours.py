"""Colour ramps of the map, the report and the batch overview (no folium, no analysis).

Scores in [0, 1] go red → yellow → green; counts of missing facility types go
through the YlOrRd classes, with class breaks computed from the values shown
(:func:`class_breaks`), so that a map whose hexagons all miss 30–50 types
still tells them apart.
"""

from __future__ import annotations

import numpy as np

#: Red (0) → yellow → green (1), for community scores.
SCORE_STOPS = ("#d73027", "#fee08b", "#1a9850")
#: Colour of a missing score (a community without residents).
NO_SCORE = "#bdbdbd"

#: Six sequential colours (ColorBrewer YlOrRd), light = few missing types.
CLASS_COLOURS = ("#ffffb2", "#fed976", "#feb24c", "#fd8d3c", "#f03b20", "#bd0026")

#: Scene colours of the packaged catalogue.
SCENE_COLOURS = {
    "neighbourhood": "#e6550d", "public_service": "#3182bd", "health": "#de2d26",
    "culture": "#756bb1", "learning": "#31a354", "innovation": "#d4a20b",
    "safety": "#636363", "urban_safety": "#a50f15",
}
#: Colours for scenes of a user's catalogue that the table above does not name.
EXTRA_COLOURS = ("#1b9e77", "#7570b3", "#e7298a", "#66a61e", "#a6761d", "#17becf")


#: ``_HEX_DIGITS[b]``: the two ASCII digits of byte ``b`` in lower-case hex.
_HEX_DIGITS = np.frombuffer(bytes(range(256)).hex().encode("ascii"),
                            dtype=np.uint8).reshape(256, 2)


def hex_colours(rgb: np.ndarray, missing: np.ndarray, fallback: str) -> np.ndarray:
    """``#rrggbb`` strings of integer RGB rows; ``fallback`` where ``missing``."""
    rgb = np.asarray(rgb)
    if len(rgb) and ((rgb < 0) | (rgb > 255)).any():  # noqa: PLR2004  (not three bytes)
        value = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        text = np.char.mod("#%06x", value)
    else:
        # "#" and the three bytes' digits side by side, read as one 7-byte string per
        # row: the text of "#%06x" without formatting each value
        chars = np.empty((len(rgb), 7), dtype=np.uint8)
        chars[:, 0] = ord("#")
        chars[:, 1:] = _HEX_DIGITS[rgb.astype(np.uint8)].reshape(len(rgb), 6)
        text = chars.view("S7").ravel().astype(str)
    return np.where(missing, fallback, text).astype(object)


def score_colours(scores) -> np.ndarray:
    """Hex colours for scores in [0, 1]: red (0) → yellow → green (1); grey when NaN."""
    scores = np.asarray(scores, dtype=float).ravel()
    stops = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in SCORE_STOPS], float)
    position = np.clip(np.nan_to_num(scores, nan=0.0), 0.0, 1.0) * (len(stops) - 1)
    low = np.minimum(position.astype(int), len(stops) - 2)
    rgb = np.round(stops[low] + (stops[low + 1] - stops[low]) * (position - low)[:, None])
    return hex_colours(rgb.astype(int), np.isnan(scores), NO_SCORE)


def score_colour(score: float | None) -> str:
    """:func:`score_colours` of one score."""
    return str(score_colours([np.nan if score is None else score])[0])


def class_breaks(values, n_classes: int = len(CLASS_COLOURS)) -> list[int]:
    """Lower bounds of up to ``n_classes`` classes of integer counts, from the values shown.

    Breaks sit at the quantiles of the distinct values (each class holds a
    similar share of the features), always starting at the smallest value,
    so the ramp spans what the map shows: with every value between 29 and
    55 the classes split that range instead of one "≥ 21" class. Fewer
    distinct values give fewer classes (one per value).

    Parameters
    ----------
    values
        Integer counts (NaN ignored).
    n_classes
        Most classes.

    Returns
    -------
    list of int
        Increasing lower bounds; ``[0]`` when there are no values.
    """
    array = np.asarray(values, dtype=float).ravel()
    array = np.round(array[~np.isnan(array)]).astype(np.int64)
    if len(array) == 0:
        return [0]
    distinct = np.unique(array)
    if len(distinct) <= n_classes:
        return distinct.tolist()
    quantiles = np.quantile(array, np.linspace(0.0, 1.0, n_classes + 1)[:-1],
                            method="inverted_cdf")
    breaks = np.unique(np.concatenate([[array.min()], np.ceil(quantiles)]).astype(np.int64))
    return breaks.tolist()


def class_colours(breaks: list[int]) -> list[str]:
    """Colours of the classes of ``breaks``: spread over :data:`CLASS_COLOURS`, darkest last."""
    if len(breaks) <= 1:
        return [CLASS_COLOURS[-1]] * len(breaks)
    index = np.round(np.linspace(0, len(CLASS_COLOURS) - 1, len(breaks))).astype(int)
    return [CLASS_COLOURS[i] for i in index]


def class_labels(breaks: list[int]) -> list[str]:
    """Legend labels of the classes of ``breaks``: ``"3"``, ``"3–5"``, the last ``"≥ 9"``."""
    labels = []
    for low, high in zip(breaks, [*breaks[1:], None], strict=True):
        if high is None:
            labels.append(f"≥ {low}" if len(breaks) > 1 else f"{low}")
        elif high - low == 1:
            labels.append(f"{low}")
        else:
            labels.append(f"{low}–{high - 1}")
    return labels


def classify(values, breaks: list[int]) -> np.ndarray:
    """Class index of each value for increasing lower bounds ``breaks`` (below the first: 0)."""
    index = np.searchsorted(np.asarray(breaks, dtype=float),
                            np.asarray(values, dtype=float), side="right") - 1
    return np.clip(index, 0, len(breaks) - 1)


def cell_colours(n_missing, breaks: list[int] | None = None) -> np.ndarray:
    """Colours of counts of missing types, classed by ``breaks`` (default :func:`class_breaks`)."""
    breaks = class_breaks(n_missing) if breaks is None else breaks
    colours = np.array(class_colours(breaks), dtype=object)
    return colours[classify(n_missing, breaks)]
