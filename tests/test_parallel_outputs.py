"""Work beside the run (:func:`planner.staging.beside`) and the fast CSV writer.

The output part of a run writes the GeoPackage in this process while a
forked child draws the map and writes the CSV tables; these tests hold the
child to the contract of running in-process (same value, same exception,
log records seen by the parent, no child left behind) and
:func:`planner.outputs.write_csv` to pandas' bytes.
"""

from __future__ import annotations

import logging
import os
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner import settings as planner_settings
from planner import staging
from planner.errors import PlannerError
from planner.outputs import write_csv


@pytest.fixture
def forking(monkeypatch):
    """Fork even when an earlier test left idle threads behind (Dask's, in test_batch).

    :func:`planner.staging.beside` runs in-process when other threads exist,
    since a fork copies locks they may hold; these tiny functions take none.
    """
    monkeypatch.setattr(staging.threading, "active_count", lambda: 1)
    if not staging._can_fork():
        pytest.skip("no fork here (not Linux, or parallel outputs switched off)")


def _pid() -> int:
    return os.getpid()


def _fail_plainly() -> None:
    message = "map.html: no community to draw"
    raise PlannerError(message)


def _fail_with_a_bug() -> None:
    return {}["missing"]


def _log_and_return(value: int) -> int:
    logging.getLogger("planner.test_child").warning("drawn %d squares", value)
    return value * 2


def _sleep_long() -> None:
    time.sleep(60)


def test_the_child_runs_elsewhere_and_returns_its_value(forking):
    with staging.beside(_pid) as work:
        child_pid = work.result()
    assert child_pid != os.getpid()
    with staging.beside(_log_and_return, 21) as work:
        assert work.result() == 42


def test_a_planner_error_in_the_child_is_the_same_one_line_error_here(forking):
    with pytest.raises(PlannerError, match="map.html: no community to draw"), \
            staging.beside(_fail_plainly) as work:
        work.result()


def test_a_bug_in_the_child_keeps_its_type_and_tells_where_it_ran(forking):
    with pytest.raises(KeyError) as raised, staging.beside(_fail_with_a_bug) as work:
        work.result()
    assert any("worker process" in note for note in getattr(raised.value, "__notes__", []))


def test_the_child_log_reaches_the_parent_handlers(forking, caplog):
    with caplog.at_level(logging.WARNING, logger="planner.test_child"), \
            staging.beside(_log_and_return, 5) as work:
        assert work.result() == 10
    assert "drawn 5 squares" in caplog.text


def test_a_failure_here_kills_the_child(forking):
    with pytest.raises(RuntimeError, match="the tables failed"), \
            staging.beside(_sleep_long) as work:
        child = work.process
        message = "the tables failed"
        raise RuntimeError(message)
    assert child.exitcode is not None  # killed and joined, not left running


def test_without_fork_the_function_runs_here(monkeypatch):
    monkeypatch.setattr(planner_settings, "parallel_outputs", False)
    with staging.beside(_pid) as work:
        assert work.result() == os.getpid()


NUMBERS = st.one_of(st.floats(allow_nan=True, allow_infinity=False, width=64),
                    st.sampled_from([0.0, -0.0, 1e-7, 1e16, 123456789.125, 0.1]))
TEXTS = st.one_of(st.none(), st.text(alphabet='ab,"\n 社区网格-', max_size=6))


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(NUMBERS, st.integers(-10**12, 10**12), st.booleans(), TEXTS),
                     min_size=1, max_size=30))
def test_write_csv_gives_the_bytes_of_pandas(tmp_path_factory, rows):
    frame = pd.DataFrame(rows, columns=["distance_m", "population", "reached", "name"])
    with np.errstate(over="ignore"):  # float32 overflows to inf, which pandas writes too
        frame["share"] = frame["distance_m"].astype(np.float32)
    folder = tmp_path_factory.mktemp("csv")
    write_csv(frame, folder / "fast.csv")
    frame.to_csv(folder / "pandas.csv", index=False, encoding="utf-8")
    assert (folder / "fast.csv").read_bytes() == (folder / "pandas.csv").read_bytes()


def test_write_csv_leaves_other_columns_to_pandas(tmp_path):
    frame = pd.DataFrame({"n": pd.array([1, None, 3], dtype="Int64"),
                          "kind": pd.Categorical(["a", "b", "a"]),
                          "mixed": [1, "x", None]})
    write_csv(frame, tmp_path / "fast.csv")
    frame.to_csv(tmp_path / "pandas.csv", index=False, encoding="utf-8")
    assert (tmp_path / "fast.csv").read_bytes() == (tmp_path / "pandas.csv").read_bytes()


def test_the_child_dies_with_a_killed_parent(tmp_path):
    """SIGKILL of the run leaves no child writing into its hidden folder."""
    import signal
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent("""
        import os, signal, sys, time
        from planner import staging
        with staging.beside(time.sleep, 60) as work:
            print(work.process.pid, flush=True)
            os.kill(os.getpid(), signal.SIGKILL)
    """)
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=60, check=False)
    assert run.returncode == -signal.SIGKILL
    if not run.stdout.strip():
        pytest.skip("no fork here")
    child = int(run.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(child, 0)
        except ProcessLookupError:
            return
        # a zombie is dead too: it only waits for init to reap it
        with open(f"/proc/{child}/stat", encoding="ascii") as handle:
            if handle.read().split(") ", 1)[1].startswith("Z"):
                return
        time.sleep(0.05)
    pytest.fail(f"child {child} still runs after its parent was killed")


def test_first_layers_written_beside_are_the_layers_or_written_again(helsinki_analysis, tmp_path):
    """The layers written early by a child end up in the file only when they are the ones
    computed; other frames are replaced, so the GeoPackage always holds ``layers``."""
    import pyogrio

    from planner.layers import analysis_layers, base_layers
    from planner.outputs import write_outputs

    base = base_layers(helsinki_analysis)
    layers = analysis_layers(helsinki_analysis, isochrones=False, base=base)
    assert all(layers[name] is frame for name, frame in base.items())
    stale = {"facilities": base["facilities"].iloc[:3]}
    for name, first in (("same", base), ("stale", stale)):
        out = write_outputs(helsinki_analysis, tmp_path / name, lambda: layers,
                            render_map=lambda _analysis, path: path.write_text("map"),
                            first_layers=first)
        gpkg = out / "coverage.gpkg"
        assert [layer for layer, _ in pyogrio.list_layers(gpkg)] == list(layers)
        assert pyogrio.read_info(gpkg, layer="facilities")["features"] == len(layers["facilities"])
