"""``planner catalogue``: print the scenes and facility types."""

from __future__ import annotations

from pathlib import Path

import click

from planner.cli.common import lang_option, set_language


def type_line(facility_type, lang: str) -> str:
    """One facility type: id, name(s), level, threshold, minimum floor area, verification."""
    t = facility_type
    label = {"zh": t.zh, "en": t.en}.get(lang, f"{t.zh} / {t.en}")
    unverified = {"zh": "（待核实）", "en": "  (unverified)"}.get(lang, "  (unverified 待核实)")
    mark = "" if t.verified else unverified
    area = f", ≥{t.min_floor_area_m2:g} m²" if t.min_floor_area_m2 else ""
    return f"  {t.id:<28} {label}  [{t.level}, {t.threshold_m:g} m{area}]{mark}"


def heading(cat, lang: str) -> str:
    """The catalogue's name, version and number of types."""
    if lang == "zh":
        return f"{cat.name_zh}（版本 {cat.version}，{len(cat.types)} 类设施）"
    name = cat.name_en if lang == "en" else f"{cat.name_zh} / {cat.name_en}"
    return f"{name}  (version {cat.version}, {len(cat.types)} types)"


@click.command("catalogue")
@click.option("--catalogue", "path", type=click.Path(path_type=Path), default=None,
              help="A catalogue file to check and print instead of the packaged one.")
@lang_option("Language of the names (both: Chinese and English).",
             choices=("zh", "en", "both"), default="both")
def catalogue_command(path, lang):
    """Print the scenes and facility types (Chinese and English)."""
    from planner.catalogue import load_catalogue

    set_language(lang if lang != "both" else None)
    cat = load_catalogue(path)
    click.echo(heading(cat, lang))
    for scene in cat.scenes:
        name = {"zh": scene.zh, "en": scene.en}.get(lang, f"{scene.zh} {scene.en}")
        click.echo(f"\n[{scene.id}] {name}")
        for facility_type in (t for t in cat.types if t.scene == scene.id):
            click.echo(type_line(facility_type, lang))
