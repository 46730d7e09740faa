"""The report: content in both languages, and Chinese glyphs that really render."""

from __future__ import annotations

import shutil
import subprocess

import numpy as np
import pytest

from planner.report import STYLE, render_report

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


@pytest.fixture(scope="module")
def report_inputs(helsinki_analysis):
    return helsinki_analysis.communities, helsinki_analysis.summary, helsinki_analysis.catalogue


def test_report_in_chinese_lists_scenes_types_and_gaps(report_inputs):
    communities, summary, catalogue = report_inputs
    page = render_report(communities, summary, catalogue, lang="zh", area="Helsinki")
    for scene in catalogue.scenes:
        assert scene.zh in page
    assert "幼儿园" in page and "缺失" in page  # the demo has no kindergarten
    for name in communities["name"]:
        assert name in page
    assert page.count("<svg") == len(communities) + 1  # overview + one chart per community


def test_report_in_english_with_candidate_sites(report_inputs):
    import pandas as pd

    communities, summary, catalogue = report_inputs
    first = communities["community_id"].iloc[0]
    sites = pd.DataFrame({"rank": [1, 2], "name": ["Old post office", "Library annex"],
                          "type_id": ["kindergarten", "kindergarten"],
                          "added_population": [1200.0, 300.0],
                          "communities": [first, "HEL99"]})
    page = render_report(communities, summary, catalogue, lang="en", sites=sites)
    assert "Kindergarten" in page and "Best candidate sites" in page
    assert page.count("Old post office") == 1 and "Library annex" not in page


def screenshot(tmp_path, body: str, size=(900, 200)) -> np.ndarray:
    from PIL import Image

    page = tmp_path / "glyphs.html"
    page.write_text(f'<html><head><meta charset="utf-8"><style>{STYLE} body{{margin:0}}'
                    f"span{{display:inline-block;width:80px;height:80px;font-size:60px;"
                    f"line-height:80px;text-align:center}}</style></head><body>{body}</body>"
                    "</html>", encoding="utf-8")
    image = tmp_path / "glyphs.png"
    subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
                    f"--screenshot={image}", f"--window-size={size[0]},{size[1]}",
                    page.as_uri()], check=True, capture_output=True, timeout=90)
    return np.asarray(Image.open(image).convert("L"))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (.ci/run installs it)")
def test_chinese_text_renders_as_glyphs_not_boxes(tmp_path):
    """Distinct characters must give distinct images; missing glyphs all look the same box."""
    characters = ["邻", "里", "生", "活", "\U000f0001", "\U000f0002"]  # last two: no font has them
    pixels = screenshot(tmp_path, "".join(f"<span>{c}</span>" for c in characters))
    cells = [pixels[0:80, 80 * i:80 * (i + 1)].astype(int) for i in range(len(characters))]
    ink = [int((cell < 128).sum()) for cell in cells]
    assert all(count > 50 for count in ink[:4]), ink

    def same(a, b):
        return np.abs(a - b).mean() < 1.0

    assert same(cells[4], cells[5])  # the check can tell a missing glyph
    for i in range(4):
        assert not same(cells[i], cells[4]), f"{characters[i]} renders as a missing-glyph box"
        for j in range(i + 1, 4):
            assert not same(cells[i], cells[j])


def test_types_without_data_read_no_data_not_zero(report_inputs):
    communities, summary, catalogue = report_inputs
    summary = summary.drop(columns="facilities_in_area", errors="ignore")  # absent: all data
    marked = summary.assign(facilities_in_area=(summary["type_id"] != "kindergarten") * 4)
    page = render_report(communities, marked, catalogue, lang="zh")
    assert "无数据" in page and "无数据" not in render_report(communities, summary, catalogue)
    english = render_report(communities, marked, catalogue, lang="en")
    assert english.count("no data") == len(communities)  # one row per community section


def test_city_scale_report_has_every_row_once_and_bounded_details(report_inputs):
    """9,000 communities: one table row each, a section only for the worst and best few."""
    import pandas as pd

    from planner import settings

    communities, summary, catalogue = report_inputs
    copies = -(-9000 // len(communities))
    many = pd.concat([communities.assign(community_id=communities["community_id"] + f"-{i}",
                                         name=communities["name"] + f" {i}")
                      for i in range(copies)]).head(9000)
    rows = pd.concat([summary.assign(community_id=summary["community_id"] + f"-{i}")
                      for i in range(copies)])
    page = render_report(many, rows, catalogue, lang="en")
    assert page.count("<tr><td>") == 9000  # the overview table: one row per community
    sections = page.count('<section class="community"')
    assert sections == settings.report_worst_communities + settings.report_best_communities
    assert page.count("<svg") == sections + 1
