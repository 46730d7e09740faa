"""Run every benchmark in one process and print its table."""

from benchmarks import bench_access

if __name__ == "__main__":
    bench_access.main()
