"""The maps in a real browser: headless Chromium (Debian's), driven by Playwright.

No tile server is reachable (every http(s) request is aborted, as on an
offline machine): the overlays must still render, with no JavaScript error
and without fetching any script or style. Skips when /usr/bin/chromium or
the playwright package is absent (`.ci/run` installs both).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import pytest

from planner.coords import wgs84_to_gcj02
from planner.maps import render_map
from planner.outputs import analysis_layers, write_analysis

CHROMIUM = Path(os.environ.get("PLANNER_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1280, "height": 800}

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_api.sync_playwright() as playwright:
        # a persistent context is the way to give Chromium a fresh --user-data-dir
        context = playwright.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=FLAGS,
            viewport=VIEWPORT)
        yield context
        context.close()


class Visit:
    """A page with its JavaScript errors and the network requests it tried."""

    def __init__(self, context, path: Path) -> None:
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.page = context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", self._console)
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function(
            "window.planner && planner.layers.communities && planner.typeIndex !== null",
            timeout=15_000)
        self.page.wait_for_timeout(300)

    def _console(self, message) -> None:
        # aborted tile requests log "Failed to load resource"; anything else is a fault
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(f"console: {message.text}")

    def _route(self, route) -> None:
        request = route.request
        if request.url.startswith(("http://", "https://")):
            self.requests.append((request.resource_type, request.url))
            route.abort()
        else:
            route.continue_()

    def layer_control(self) -> str:
        return self.page.inner_text(".leaflet-control-layers-overlays")

    def open_community_popup(self) -> str:
        self.page.evaluate("""() => {
            const layer = planner.layers.communities.getLayers()[0];
            layer.fire("click", {latlng: layer.getBounds().getCenter()});
        }""")
        self.page.wait_for_selector(".leaflet-popup-content .pl-table", timeout=5_000)
        return self.page.inner_text(".leaflet-popup-content")

    def screenshot(self, path: Path) -> np.ndarray:
        from PIL import Image

        png = self.page.screenshot(path=str(path))
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def assert_not_blank(pixels: np.ndarray) -> None:
    colours = np.unique(pixels[::4, ::4].reshape(-1, 3), axis=0)
    background = np.all(pixels == pixels[400, 5], axis=2).mean()  # left margin, no data
    assert len(colours) > 200, "the screenshot has almost no colours"
    assert background < 0.8, "the screenshot is mostly background"


@pytest.fixture(scope="module")
def demo_map(helsinki_analysis, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser_demo")
    write_analysis(helsinki_analysis, out)
    return out / "map.html"


@pytest.fixture(scope="module")
def beijing_map(beijing_analysis, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("browser_beijing") / "map.html"
    return render_map(analysis_layers(beijing_analysis), out, beijing_analysis.catalogue,
                      basemap="amap")


def test_demo_map_in_chromium(browser, demo_map, helsinki_analysis, tmp_path):
    visit = Visit(browser, demo_map)
    catalogue = helsinki_analysis.catalogue
    assert visit.errors == []
    # everything the page runs is inline: only basemap tiles were requested
    assert visit.requests and {kind for kind, _ in visit.requests} <= {"image"}
    assert all("tile.openstreetmap.org" in url for _, url in visit.requests)
    control = visit.layer_control()
    for scene in catalogue.scenes:
        assert scene.en in control
    popup = visit.open_community_popup()
    for scene in catalogue.scenes:
        assert scene.en in popup
    table_rows = visit.page.locator(".leaflet-popup-content .pl-table tbody tr").count()
    assert table_rows == len(catalogue.scenes) + len(catalogue.types)
    assert visit.page.locator(".leaflet-popup-content tr.pl-missing").count() > 0
    assert visit.page.locator(".pl-legend").count() == 1
    n_missing, cell_popup = visit.page.evaluate("""() => {
        planner.map.addLayer(planner.layers.missingCells);
        const cell = planner.layers.missingCells.getLayers()[0];
        cell.openPopup(cell.getBounds().getCenter());
        return [cell.feature.properties.n, cell.getPopup().getElement().innerText];
    }""")
    assert f"Types no resident reaches ({n_missing})" in cell_popup
    visit.page.evaluate("() => { planner.map.closePopup(); }")
    assert visit.page.locator(".leaflet-control-scale").count() == 1
    assert_not_blank(visit.screenshot(tmp_path / "demo.png"))
    # choosing another type redraws its service area and the residences beyond it
    counts = visit.page.evaluate("""() => {
        const select = document.getElementById("pl-type");
        const out = [];
        for (const value of [select.options[1].value, select.options[2].value]) {
            select.value = value;
            select.dispatchEvent(new Event("change"));
            out.push([Number(value), planner.typeIndex,
                      planner.layers.gapResidences.getLayers().length]);
        }
        return out;
    }""")
    for value, index, shown in counts:
        assert value == index and shown >= 0
    facility = visit.page.evaluate("""() => new Promise(resolve => {
        const group = planner.layers.facilities["health"];
        const marker = group.getLayers()[0];
        planner.map.closePopup();
        group.zoomToShowLayer(marker, () => {
            marker.openPopup();
            resolve(marker.getPopup().getElement().innerText);
        });
    })""")
    assert "Health and medical care" in facility and "OSM tag" in facility
    assert visit.errors == []
    visit.page.close()


def test_beijing_map_in_chinese_on_amap(browser, beijing_map, beijing_analysis, tmp_path):
    visit = Visit(browser, beijing_map)
    catalogue = beijing_analysis.catalogue
    assert visit.errors == []
    assert visit.requests and all("autonavi.com" in url for _, url in visit.requests)
    control = visit.layer_control()
    for scene in catalogue.scenes:
        assert scene.zh in control
    assert "覆盖率" in visit.open_community_popup()
    # an overlay coordinate on the page is the GCJ-02 transform of the WGS 84 one
    marker = visit.page.evaluate("""() => {
        const marker = planner.layers.facilities["neighbourhood"].getLayers()[0];
        return [marker.options.facilityId, marker.getLatLng().lng, marker.getLatLng().lat];
    }""")
    facilities = beijing_analysis.facilities.to_crs(4326)
    point = facilities[facilities["facility_id"] == marker[0]].geometry.iloc[0]
    lon, lat = (float(value) for value in wgs84_to_gcj02(point.x, point.y))
    assert marker[1] == pytest.approx(lon, abs=2e-6)
    assert marker[2] == pytest.approx(lat, abs=2e-6)
    assert abs(marker[1] - point.x) > 1e-3  # and that is a real shift
    assert_not_blank(visit.screenshot(tmp_path / "beijing.png"))
    assert visit.errors == []
    visit.page.close()
