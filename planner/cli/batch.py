"""``planner batch``: many areas at once on a Dask cluster."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from planner.cli.common import lang_option, set_language
from planner.i18n import pick

#: Chinese names of an area's status in the batch record.
STATUS_ZH = {"ok": "完成", "failed": "失败", "skipped": "跳过"}


def report_area(record: dict) -> None:
    """One line on stderr per finished (or skipped) area."""
    zh = pick("zh", "en") == "zh"
    status = STATUS_ZH.get(record["status"], record["status"]) if zh else record["status"]
    reason = record.get("reason")
    if zh and record["status"] == "skipped":
        reason = "输入与参数未变"
    seconds = f"{record.get('seconds', 0)} {pick('秒', 's')}"
    detail = record.get("error") or reason or seconds
    click.echo(f"  {record['name']:<24} {status:<8} {detail}", err=True)


def print_communities(table) -> None:
    """The communities of every area with their overall score (percent)."""
    import pandas as pd

    if not len(table):
        return
    columns = {"area": pick("区域", "area"), "community_id": "id",
               "name": pick("名称", "name"), "population": pick("人口", "population"),
               "score": pick("总分", "score")}
    shown = table[list(columns)].copy()
    shown["score"] = (shown["score"] * 100).round(0)
    with pd.option_context("display.unicode.east_asian_width", True):
        click.echo(shown.rename(columns=columns).to_string(index=False, na_rep="-"))


@click.command("batch")
@click.argument("areas_file", type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Output folder.")
@click.option("--scheduler", default=None,
              help="Address of a running Dask scheduler, e.g. tcp://127.0.0.1:8786 "
                   "(default: a local cluster).")
@click.option("--workers", type=click.IntRange(min=1), default=2, show_default=True,
              help="Worker processes of the local cluster.")
@lang_option("Language of the messages and tables (default: the system locale).")
def batch_command(areas_file: Path, out: Path, scheduler: str | None, workers: int,
                  lang: str | None) -> None:
    """Run every area of AREAS_FILE (TOML or CSV) in parallel on Dask."""
    from planner.batch import run_batch

    set_language(lang)
    result = run_batch(areas_file, out, scheduler=scheduler, workers=workers,
                       progress=report_area)
    print_communities(result.communities)
    click.echo(pick(f"\n{len(result.areas)} 个区域，{len(result.failed)} 个失败；结果见 {out}",
                    f"\n{len(result.areas)} areas, {len(result.failed)} failed; "
                    f"results in {out}"))
    if result.failed:
        sys.exit(1)
