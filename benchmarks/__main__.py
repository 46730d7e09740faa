"""Run every benchmark in one process and print its tables: ``python -m benchmarks``.

In order: the access stage against its peers (Helsinki demo), every stage of
``planner analyze`` (demo, a 20k-node synthetic city and a 1M-node one, with
peak memory), ``planner analyze`` against the OSMnx-tutorial pipeline (20k and
250k walking nodes, PBF and OSM XML), the district extract, ``planner --help``,
the floor per stage, and the candidate-site solvers.

``--quick`` leaves out the city-scale runs (the 1M-node city and the 250k-node
tutorial comparison, which take tens of minutes): the demo and the 20k-node
city only. ``--district PATH`` (or ``$PLANNER_BENCH_DISTRICT``) names the
district extract; it is skipped when absent.
"""

import argparse
import platform
import sys
from importlib import metadata

from benchmarks import bench_access, bench_pipeline, bench_scale, bench_sites

PACKAGES = ("planner", "numpy", "scipy", "shapely", "geopandas", "pandas", "pyogrio",
            "osmium", "pyrosm", "networkx", "pandana", "cityseer")


def machine() -> str:
    import os

    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError, AttributeError):
        memory = float("nan")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle
                       if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = []
    for name in PACKAGES:
        try:
            versions.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{name} (not installed)")
    return (f"Machine: {cpu}, {os.cpu_count()} cores, {memory:.0f} GiB; "
            f"Python {sys.version.split()[0]} on {platform.system()}\n"
            f"Versions: {', '.join(versions)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="python -m benchmarks",
                                     description="planner benchmarks (make bench)")
    parser.add_argument("--quick", action="store_true",
                        help="skip the city-scale runs (demo and a 20k-node city only)")
    parser.add_argument("--district", default=None,
                        help="a district extract (OSM XML) for its wall time; default "
                             f"${bench_scale.DISTRICT_ENV}, else the shared data beside the "
                             "checkout, else skipped")
    parser.add_argument("--tutorial-density", type=float,
                        default=bench_scale.TUTORIAL_FACILITY_DENSITY,
                        help="facility density of the tutorial comparison's cities")
    args = parser.parse_args()
    print(machine())
    bench_access.main(quick=args.quick)
    pipeline_runs = bench_pipeline.main(quick=args.quick)
    bench_scale.main(quick=args.quick, district_source=args.district,
                     pipeline_runs=pipeline_runs, facility_density=args.tutorial_density)
    print("\nCandidate sites: coverage sets, greedy and exact (HiGHS) on a synthetic city")
    bench_sites.main([])
