"""Self-contained results: what redrawing a results folder needs is stored in it.

A run writes the exact text of the catalogue it used as ``catalogue.toml``
beside its outputs (:func:`catalogue_files`), so that ``planner map`` draws
the thresholds of the run even when the custom catalogue file was since
edited or deleted, or the packaged one changed with an upgrade
(:func:`results_catalogue`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from planner import settings
from planner.errors import PlannerError

#: The copy of the catalogue in a results folder.
CATALOGUE_FILE = "catalogue.toml"


def _text(english: str, chinese: str) -> str:
    return chinese if settings.lang == "zh" else english


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def store_catalogue(catalogue: Any, folder: Path) -> dict:
    """Copy the catalogue's file into ``folder`` as :data:`CATALOGUE_FILE`, byte for byte.

    Returns
    -------
    dict
        ``{"catalogue_file": {"file": …, "sha256": …}}`` for ``run.json``;
        empty when the catalogue was built in memory (no file to copy).
    """
    path = getattr(catalogue, "path", None)
    if path is None or not Path(path).is_file():
        return {}
    data = Path(path).read_bytes()
    (folder / CATALOGUE_FILE).write_bytes(data)
    return {"catalogue_file": {"file": CATALOGUE_FILE, "sha256": _sha256(data)}}


def catalogue_files(analysis: Any, more: Callable[[Path], dict] | None = None
                    ) -> Callable[[Path], dict]:
    """An ``extra_files`` writer for :func:`planner.export.write_analysis`: the catalogue copy.

    ``more`` writes further files into the same folder (e.g. the sites tables);
    the run-record entries of both are merged.
    """
    def write(stage: Path) -> dict:
        entries = store_catalogue(analysis.catalogue, stage)
        if more is not None:
            entries.update(more(stage))
        return entries
    return write


def results_catalogue(results_dir: str | Path):
    """The catalogue a results folder was made with.

    ``catalogue.toml`` in the folder; for a folder written before it was
    stored, the file ``run.json`` names when it still has the recorded
    SHA-256; for a folder without ``run.json``, the packaged catalogue.

    Raises
    ------
    PlannerError
        The run's catalogue cannot be found unchanged (one line naming it).
    """
    from planner.catalogue import load_catalogue

    results_dir = Path(results_dir)
    stored = results_dir / CATALOGUE_FILE
    if stored.is_file():
        return load_catalogue(stored)
    record_path = results_dir / "run.json"
    if not record_path.is_file():
        return load_catalogue()
    try:
        recorded = json.loads(record_path.read_text(encoding="utf-8")).get("catalogue") or {}
        path, digest = recorded.get("path"), recorded.get("sha256")
    except (ValueError, AttributeError, UnicodeDecodeError) as error:
        message = _text("run.json is not a valid run record", "run.json 不是有效的运行记录")
        raise PlannerError(message, record_path) from error
    if path and Path(path).is_file() and (
            digest is None or _sha256(Path(path).read_bytes()) == digest):
        return load_catalogue(path)
    state = _text("was changed since", "已被修改") if path and Path(path).is_file() \
        else _text("no longer exists", "已不存在")
    message = _text(f"the catalogue of this run ({path}) {state}, and the results hold no "
                    f"copy of it ({CATALOGUE_FILE}); rerun the analysis to redraw with "
                    "its thresholds",
                    f"本次运行的设施目录 ({path}) {state}, 结果中也没有其副本 "
                    f"({CATALOGUE_FILE}); 请重新运行分析")
    raise PlannerError(message, results_dir)
