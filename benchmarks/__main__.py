"""Run every benchmark in one process and print its tables: ``python -m benchmarks``.

``--quick`` leaves out the city-scale run (a synthetic city of about a million
walking-network nodes; generating it and running ``planner analyze`` on it
take several minutes).
"""

import argparse
import platform
import sys
from importlib import metadata

from benchmarks import bench_access, bench_pipeline, bench_sites

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
                        help="skip the city-scale run (demo and a 20k-node city only)")
    args = parser.parse_args()
    print(machine())
    bench_access.main(quick=args.quick)
    bench_pipeline.main(quick=args.quick)
    print("\nCandidate sites: coverage sets, greedy and exact (HiGHS) on a synthetic city")
    bench_sites.main([])
