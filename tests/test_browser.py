"""The maps in a real browser: headless Chromium (Debian's), driven by Playwright.

Every popup here is opened the way a planner opens it: a mouse click at a
pixel of the page (the pixel is computed from the map's own projection,
``map.latLngToContainerPoint``; the popup is never opened from JavaScript).
Layers are switched on by clicking their checkbox in the layer control.

No tile server is reachable (every http(s) request is aborted, as on an
offline machine): the overlays must still render, with no JavaScript error
and without fetching any script or style. Skips when /usr/bin/chromium or
the playwright package is absent (`.ci/run` installs both).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from planner.coords import wgs84_to_gcj02
from planner.export import write_analysis
from planner.layers import analysis_layers
from planner.maps import render_map

CHROMIUM = Path(os.environ.get("PLANNER_CHROMIUM", "/usr/bin/chromium"))
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 900}

if not CHROMIUM.exists():
    pytest.skip(f"{CHROMIUM} is absent (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
PlaywrightTimeout = sync_api.TimeoutError

#: Pixel positions of map features (and whether a pixel is free of other
#: features and controls), computed from the map's projection.
PIXELS_JS = """([points, avoid]) => {
    const map = planner.map, box = map.getContainer().getBoundingClientRect();
    const taken = [];
    for (const name of avoid) {
        const layer = planner.layers[name];
        if (!layer || !map.hasLayer(layer)) continue;
        layer.eachLayer(l => {
            if (l.getLatLng) taken.push(map.latLngToContainerPoint(l.getLatLng()));
        });
    }
    return points.map(([lat, lng]) => {
        const p = map.latLngToContainerPoint(L.latLng(lat, lng));
        const x = box.left + p.x, y = box.top + p.y;
        const clearance = taken.reduce((m, t) => Math.min(m, t.distanceTo(p)), 1e9);
        const target = document.elementFromPoint(x, y);
        const onMap = !!target && (target.tagName === "CANVAS" || target.tagName === "path"
            || target.classList.contains("leaflet-container")
            || !!target.closest(".leaflet-marker-icon"));
        return [x, y, clearance, onMap && !target.closest(".leaflet-control")];
    });
}"""


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

    def __init__(self, context, path: Path, datum: str = "wgs84") -> None:
        self.errors: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.datum = datum
        self.page = context.new_page()
        self.page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))
        self.page.on("console", self._console)
        self.page.route("**/*", self._route)
        self.page.goto(path.as_uri())
        self.page.wait_for_function(
            "window.planner && planner.layers.communities && planner.typeIndex !== null",
            timeout=15_000)
        self.page.wait_for_timeout(300)
        self.view = self.page.evaluate(
            "() => [[planner.map.getCenter().lat, planner.map.getCenter().lng], "
            "planner.map.getZoom()]")

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

    def shown(self, name: str) -> bool:
        return self.page.evaluate(
            "name => !!planner.layers[name] && planner.map.hasLayer(planner.layers[name])", name)

    def legend_text(self, layer: str) -> str:
        return self.page.inner_text(f'.pl-legend [data-layer="{layer}"]')

    def legend_rows(self) -> dict[str, bool]:
        return self.page.evaluate("""() => Object.fromEntries(Array.from(
            document.querySelectorAll('.pl-legend [data-layer]'),
            row => [row.dataset.layer, row.style.display !== 'none']))""")

    def pixel(self, lon_lat: np.ndarray, avoid=("gapResidences", "candidates", "premises"),
              clearance: float = 14.0) -> tuple[float, float]:
        """The first of the WGS 84 points that lies on the map, clear of markers and controls."""
        lon, lat = np.asarray(lon_lat, dtype=float).T
        if self.datum == "gcj02":
            lon, lat = (np.asarray(value, dtype=float) for value in wgs84_to_gcj02(lon, lat))
        points = np.stack([lat, lon], axis=1).tolist()
        for x, y, free, on_map in self.page.evaluate(PIXELS_JS, [points, list(avoid)]):
            if on_map and free >= clearance:
                return x, y
        raise AssertionError("no free pixel among the points")

    def click(self, x: float, y: float) -> str:
        """Click with the mouse; returns the text of the popup that opens."""
        self.page.mouse.click(x, y)
        self.page.wait_for_selector(".leaflet-popup-content", timeout=5_000)
        text = self.page.inner_text(".leaflet-popup-content")
        return text

    def close_popup(self) -> None:
        # on a loaded machine the first click can land while the popup is still
        # panning into view; click again rather than fail
        for _ in range(3):
            self.page.locator(".leaflet-popup-close-button").first.click()
            try:
                self.page.wait_for_selector(".leaflet-popup", state="detached", timeout=5_000)
                break
            except PlaywrightTimeout:
                continue
        else:
            raise AssertionError("the popup does not close")
        # a popup pans the map to fit; back to the first view for the next pixel
        self.page.evaluate("view => { planner.map.setView(view[0], view[1], {animate: false}); }",
                           self.view)

    def pick_type(self, type_id: str) -> None:
        """Choose a facility type in the picker: a mouse click on it, arrow keys, Enter."""
        options, current, target = self.page.evaluate("""id => {
            const select = document.getElementById('pl-type');
            const values = Array.from(select.options, o => Number(o.value));
            const target = planner.config.types.findIndex(t => t.id === id);
            return [values, Number(select.value), target];
        }""", type_id)
        box = self.page.locator("#pl-type").bounding_box()
        self.page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        steps = options.index(target) - options.index(current)
        for _ in range(abs(steps)):
            self.page.keyboard.press("ArrowDown" if steps > 0 else "ArrowUp")
        self.page.keyboard.press("Enter")
        self.page.wait_for_function("index => planner.typeIndex === index", arg=target,
                                    timeout=5_000)
        self.page.mouse.move(5, VIEWPORT["height"] // 2)

    def candidate_markers(self) -> list[str]:
        """The texts of the candidate markers in the page (one element per marker)."""
        return self.page.evaluate("""() => Array.from(document.querySelectorAll(
            '.pl-rank, .pl-rank-best'), el => el.innerText)""")

    def toggle_layer(self, label_text: str) -> None:
        """Open the layer list by hovering it and click the layer's checkbox."""
        self.open_layer_list()
        checkbox = self.page.locator(".leaflet-control-layers-overlays label",
                                     has_text=label_text).locator("input")
        checkbox.click()
        self.page.mouse.move(5, VIEWPORT["height"] // 2)  # the list collapses again
        self.page.wait_for_timeout(200)

    def open_layer_list(self) -> None:
        """Move the mouse onto the collapsed layer control: it opens."""
        box = self.page.locator(".leaflet-control-layers").bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        self.page.wait_for_selector(".leaflet-control-layers-expanded", timeout=5_000)

    def screenshot(self, path: Path) -> np.ndarray:
        from PIL import Image

        png = self.page.screenshot(path=str(path))
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


def inside_points(geometry, n: int = 9) -> np.ndarray:
    """A grid of points inside a polygon, its representative point first."""
    west, south, east, north = geometry.bounds
    xs, ys = np.meshgrid(np.linspace(west, east, n + 2)[1:-1],
                         np.linspace(south, north, n + 2)[1:-1])
    grid = shapely.points(np.stack([xs.ravel(), ys.ravel()], axis=1))
    inner = grid[shapely.contains(shapely.buffer(geometry, -1e-5), grid)]
    first = shapely.get_coordinates(geometry.representative_point())
    return np.concatenate([first, shapely.get_coordinates(inner)])


def assert_not_blank(pixels: np.ndarray) -> None:
    colours = np.unique(pixels[::4, ::4].reshape(-1, 3), axis=0)
    background = np.all(pixels == pixels[450, 700], axis=2).mean()
    assert len(colours) > 100, "the screenshot has almost no colours"
    assert background < 0.8, "the screenshot is mostly one colour"


def sites_layers_for(layers: dict) -> dict[str, gpd.GeoDataFrame]:
    """Two premises and three candidate sites (two types, ranked per type) in the communities."""
    communities = layers["communities"].to_crs(4326)
    first, second = communities.geometry.iloc[0], communities.geometry.iloc[-1]
    spots = [inside_points(first, 5)[-1], inside_points(second, 5)[-1],
             inside_points(first, 5)[2], inside_points(second, 5)[3], inside_points(second, 5)[1]]
    candidates = gpd.GeoDataFrame({
        "rank": [1, 1, 2], "type_id": ["kindergarten", "pharmacy", "kindergarten"],
        "site_id": ["g001", "g002", "HP01"],
        "label": ["Mannerheimintie · grid 002_003", "学院路 · 网格 001_002", "Old fire station"],
        "community_id": [communities["community_id"].iloc[0],
                         communities["community_id"].iloc[-1],
                         communities["community_id"].iloc[0]],
        "added_population": [640.0, 210.0, 120.0],
        "added_by_type": ['{"kindergarten": 640}', "pharmacy:210", '{"kindergarten": 120}'],
        "kind": ["generated", "generated", "premises"]},
        geometry=shapely.points(spots[:3]), crs=4326)
    premises = gpd.GeoDataFrame({
        "premises_id": ["HP01", "HP02"], "type_label": ["Kindergarten", ""],
        "colour": ["#1b9e77", "#bdbdbd"],
        "popup_html": ["Old fire station (HP01, 900 m², vacant)<br>Kindergarten: +120 residents",
                       "Depot (HP02, 400 m², vacant)<br>not assigned"]},
        geometry=shapely.points(spots[3:]), crs=4326)
    return {"candidates": candidates, "reallocation": premises}


@pytest.fixture(scope="module")
def demo_map(helsinki_analysis, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("browser_demo")
    layers = analysis_layers(helsinki_analysis)
    extra = sites_layers_for(layers)
    write_analysis(helsinki_analysis, out, layers=layers, extra_layers=extra, lang="en")
    return out / "map.html", {**layers, **extra}


@pytest.fixture(scope="module")
def beijing_map(beijing_analysis, tmp_path_factory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("browser_beijing") / "map.html"
    layers = analysis_layers(beijing_analysis)
    layers.update(sites_layers_for(layers))
    render_map({**layers, "summary": beijing_analysis.summary}, out,
               beijing_analysis.catalogue, basemap="amap")
    return out, layers


def click_every_community(visit: Visit, layers: dict, words: tuple[str, ...]) -> None:
    """A click inside each community opens its popup; hovering shows its name and score."""
    communities = layers["communities"].to_crs(4326)
    for row in communities.itertuples():
        x, y = visit.pixel(inside_points(row.geometry))
        name = str(row.name) if isinstance(row.name, str) and row.name else row.community_id
        visit.page.mouse.move(x, y)
        visit.page.wait_for_function("""name => Array.from(document.querySelectorAll(
            '.pl-tooltip'), t => t.innerText).some(t => t.includes(name) && t.includes('%'))""",
                                     arg=name, timeout=5_000)
        text = visit.click(x, y)
        assert str(row.community_id) in text
        for word in words:
            assert word in text
        visit.close_popup()


def click_candidates(visit: Visit, layers: dict, added: str, legend: str) -> None:
    """Each ranked type chosen with the mouse shows its own numbered markers, and only those.

    A click on each marker opens its label and the residents it adds; the
    legend names the chosen type.
    """
    candidates = layers["candidates"]
    for type_id, ranked in candidates.groupby("type_id", sort=True):
        visit.pick_type(type_id)
        shown = visit.candidate_markers()
        assert sorted(shown) == sorted(str(rank) for rank in ranked["rank"])
        assert legend in visit.legend_text("candidates")
        for row in ranked.itertuples():
            xy = shapely.get_coordinates(row.geometry)
            x, y = visit.pixel(xy, avoid=(), clearance=0)
            text = visit.click(x, y)
            assert row.label in text and added in text
            assert f"+{int(row.added_population)}" in text
            visit.close_popup()


def unranked_type(visit: Visit, layers: dict) -> str:
    """A type of the picker with data and no ranked candidate."""
    ranked = set(layers["candidates"]["type_id"])
    types = visit.page.evaluate("() => planner.config.types.map(t => t.id)")
    return next(type_id for type_id in types if type_id not in ranked)


def check_best_of_each_type(visit: Visit, layers: dict, unranked: str, legend: str) -> None:
    """A type nobody ranked shows each ranked type's best site, labelled with the type."""
    visit.pick_type(unranked)
    candidates = layers["candidates"]
    shown = visit.candidate_markers()
    assert len(shown) == candidates["type_id"].nunique()
    assert visit.page.locator(".pl-rank").count() == 0
    assert all(text.startswith("1") for text in shown)
    assert legend in visit.legend_text("candidates")


def click_premises(visit: Visit, layers: dict) -> None:
    premises = layers["reallocation"]
    xy = shapely.get_coordinates(premises.geometry.iloc[0])
    x, y = visit.pixel(xy, avoid=("candidates",))
    assert "HP01" in visit.click(x, y)
    visit.close_popup()


def click_a_hexagon(visit: Visit, layers: dict, missing_words: str) -> None:
    cells = layers["gaps"].to_crs(4326)
    # the largest first: a hexagon with room beside its residences' dots
    for cell in cells.sort_values("n_residences").itertuples():
        try:
            x, y = visit.pixel(inside_points(cell.geometry, 5), clearance=10)
        except AssertionError:
            continue
        text = visit.click(x, y)
        assert str(cell.cell_id) in text and missing_words in text
        visit.close_popup()
        return
    raise AssertionError("no hexagon had a free pixel")


def click_a_facility(visit: Visit, scene_label: str) -> str:
    """Switch a scene on, click one of its markers (zooming into clusters until one shows)."""
    visit.toggle_layer(scene_label)
    for _ in range(6):
        found = visit.page.evaluate("""() => {
            const map = planner.map, box = map.getContainer().getBoundingClientRect();
            const icons = Array.from(document.querySelectorAll('.pl-marker, .pl-cluster'))
                .map(el => el.getBoundingClientRect())
                .filter(r => r.left > box.left + 360 && r.right < box.right - 60
                             && r.top > box.top + 60 && r.bottom < box.bottom - 60);
            const marker = Array.from(document.querySelectorAll('.pl-marker'))
                .map(el => el.getBoundingClientRect())
                .find(r => icons.some(i => i.left === r.left && i.top === r.top));
            const any = marker || icons[0];
            return any ? [any.left + any.width / 2, any.top + any.height / 2, !!marker] : null;
        }""")
        assert found, "no facility marker or cluster in view"
        x, y, single = found
        if single:
            return visit.click(x, y)
        visit.page.mouse.click(x, y)  # a cluster zooms in
        visit.page.wait_for_timeout(700)
    raise AssertionError("clusters never split into markers")


def test_demo_map_clicks_with_the_mouse(browser, demo_map, helsinki_analysis, tmp_path):
    path, layers = demo_map
    visit = Visit(browser, path)
    catalogue = helsinki_analysis.catalogue
    assert visit.errors == []
    # everything the page runs is inline: only basemap tiles were requested
    assert visit.requests and {kind for kind, _ in visit.requests} <= {"image"}
    assert all("tile.openstreetmap.org" in url for _, url in visit.requests)
    # a calm first view: scores, the chosen type's service area and gaps, the candidates
    for name in ("communities", "serviceAreas", "gapResidences", "candidates"):
        assert visit.shown(name), name
    for name in ("missingCells", "premises"):
        assert not visit.shown(name), name
    assert not any(visit.page.evaluate(
        "() => Object.values(planner.layers.facilities).map(l => planner.map.hasLayer(l))"))
    legend = visit.legend_rows()
    assert legend["communities"] and legend["candidates"] and not legend["missingCells"]
    assert not legend["premises"]
    pixels = visit.screenshot(tmp_path / "demo_first_view.png")
    assert_not_blank(pixels)

    click_every_community(visit, layers, ("Coverage", catalogue.scenes[0].en))
    click_candidates(visit, layers, "Residents added", "numbered by rank")
    check_best_of_each_type(visit, layers, unranked_type(visit, layers),
                            "Best candidate site of each ranked type")
    visit.toggle_layer("Premises")
    assert visit.legend_rows()["premises"]
    click_premises(visit, layers)
    click_candidates(visit, layers, "Residents added", "numbered by rank")

    visit.toggle_layer("Missing facility types")
    assert visit.shown("missingCells") and visit.legend_rows()["missingCells"]
    click_a_hexagon(visit, layers, "Types no resident reaches")
    visit.toggle_layer("Missing facility types")
    assert not visit.legend_rows()["missingCells"]

    facility = click_a_facility(visit, "Health and medical care")
    assert "Health and medical care" in facility and "OSM tag" in facility
    visit.close_popup()
    assert visit.errors == []
    visit.page.close()


def test_beijing_map_on_amap_clicks_with_the_mouse(browser, beijing_map, beijing_analysis):
    path, layers = beijing_map
    visit = Visit(browser, path, datum="gcj02")
    catalogue = beijing_analysis.catalogue
    assert visit.errors == []
    assert visit.requests and all("autonavi.com" in url for _, url in visit.requests)
    visit.open_layer_list()
    control = visit.page.inner_text(".leaflet-control-layers-overlays")
    for scene in catalogue.scenes:
        assert scene.zh in control
    visit.page.mouse.move(5, 450)
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

    click_every_community(visit, layers, ("覆盖率",))
    click_candidates(visit, layers, "新增覆盖人口", "数字为排名")
    check_best_of_each_type(visit, layers, unranked_type(visit, layers), "各类型排名第一")
    visit.toggle_layer("国有房产")
    click_premises(visit, layers)
    visit.toggle_layer("缺失设施类型数")
    click_a_hexagon(visit, layers, "无人可达的类型")
    assert visit.errors == []
    visit.page.close()
