"""``planner batch``: many areas at once on a Dask cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import click


@click.command("batch")
@click.argument("areas_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler, e.g. tcp://127.0.0.1:8786 "
                   "(default: a local cluster).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes of the local cluster.")
def batch_command(areas_file: Path, out: Path, scheduler: str | None, workers: int) -> None:
    """Run every area of AREAS_FILE (TOML or CSV) in parallel on Dask."""
    from planner.batch import run_batch

    def report(record: dict) -> None:
        detail = record.get("error") or record.get("reason") or f"{record.get('seconds', 0)} s"
        click.echo(f"  {record['name']:<24} {record['status']:<8} {detail}", err=True)

    result = run_batch(areas_file, out, scheduler=scheduler, workers=workers, progress=report)
    table = result.communities
    if len(table):
        shown = table[["area", "community_id", "name", "population", "score"]].copy()
        shown["score"] = (shown["score"] * 100).round(0)
        click.echo(shown.to_string(index=False, na_rep="-"))
    click.echo(f"\n{len(result.areas)} areas, {len(result.failed)} failed; results in {out}")
    if result.failed:
        sys.exit(1)
