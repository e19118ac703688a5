"""The viewer in a real browser: `streamlit run` plus headless Chromium driven over WebDriver.

Needs Debian's `chromium` and `chromium-driver` (skipped without them); the
WebDriver protocol is spoken with urllib, so no selenium is needed. Chromium
resolves no host but 127.0.0.1, as on a machine without internet, and the page
starts with the OpenStreetMap basemap: the map must work without it. The test
zooms the map in, turns a layer on and hovers a landslide polygon; a second
test opens an event's inventory.gpkg from the data folder and hovers one of its
polygons. The
screenshot is kept (path printed) as a CI artifact: `$GDCLD_ZOO_ARTIFACT_DIR`,
else pytest's temporary folder; with `GDCLD_ZOO_UPDATE_SCREENSHOT=1` it also
replaces the README's `apps/screenshot.png`.
"""

import base64
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tests.apps.conftest import VIEWER, write_registry

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                "--window-size=1400,1200", "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
MAP_FRAME = 'iframe[title="streamlit_folium.st_folium"]'
# Inside the map's frame: what Leaflet drew.
MAP_STATE = """
const q = (s) => document.querySelectorAll(s);
const tooltip = document.querySelector(".leaflet-tooltip");
const coordinates = document.querySelector(".gdcld-coordinates");
return {ready: !!window.map && q(".leaflet-image-layer").length > 0, zoom: window.map ? window.map.getZoom() : null,
        images: q(".leaflet-image-layer").length, polygons: q("path.leaflet-interactive").length,
        scale: q(".leaflet-control-scale").length, legend: q(".gdcld-legend").length,
        layers: Array.from(q(".leaflet-control-layers-overlays label")).map((l) => l.textContent.trim()),
        tooltip: tooltip ? tooltip.textContent : "", coordinates: coordinates ? coordinates.textContent : ""};
"""
ZOOM_IN = 'document.querySelector(".leaflet-control-zoom-in").click();'
SHOW_PROBABILITY = """
for (const label of document.querySelectorAll(".leaflet-control-layers-overlays label")) {
    if (label.textContent.includes("Landslide probability")) label.querySelector("input").click();
}
"""
HOVER = """
const polygon = document.querySelector("path.leaflet-interactive");
const box = polygon.getBoundingClientRect();
const at = {bubbles: true, clientX: box.x + box.width / 2, clientY: box.y + box.height / 2};
polygon.dispatchEvent(new MouseEvent("mouseover", at));
polygon.dispatchEvent(new MouseEvent("mousemove", at));
"""
SCREENSHOT = Path(__file__).resolve().parents[2] / "apps" / "screenshot.png"
# Elements of a finished page (Streamlit's data-testid names).
PAGE_STATE = """
const count = (id) => document.querySelectorAll(`[data-testid="${id}"]`).length;
return {images: count("stImage"), downloads: count("stDownloadButton"), tables: count("stTable"),
        errors: count("stAlertContentError") + count("stException"),
        maps: document.querySelectorAll('iframe[title="streamlit_folium.st_folium"]').length,
        running: document.querySelector('[data-testid="stStatusWidget"]') !== null};
"""
READY_TIMEOUT_S = 240


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_http(url, process, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args[0]} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.5)
    raise TimeoutError(f"{url} did not answer in {timeout_s} s")


class WebDriver:
    """The few W3C WebDriver commands the test needs, over chromedriver's HTTP API."""

    def __init__(self, url):
        self.url = url
        caps = {"browserName": "chrome", "goog:chromeOptions": {"binary": CHROMIUM, "args": CHROME_FLAGS}}
        self.session = self._call("POST", "/session", {"capabilities": {"alwaysMatch": caps}})["sessionId"]

    def _call(self, method, path, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())["value"]

    def get(self, url):
        self._call("POST", f"/session/{self.session}/url", {"url": url})

    def execute(self, script):
        return self._call("POST", f"/session/{self.session}/execute/sync", {"script": script, "args": []})

    def enter_frame(self, css):
        """Switch into the frame `css` selects (None: back to the page)."""
        frame = None
        if css is not None:
            element = self._call("POST", f"/session/{self.session}/element", {"using": "css selector", "value": css})
            frame = element
        self._call("POST", f"/session/{self.session}/frame", {"id": frame})

    def screenshot(self):
        return base64.b64decode(self._call("GET", f"/session/{self.session}/screenshot"))

    def quit(self):
        self._call("DELETE", f"/session/{self.session}")


@pytest.fixture
def processes():
    started = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.mark.skipif(not (Path(CHROMIUM).exists() and shutil.which("chromedriver")),
                    reason="needs Debian's chromium and chromium-driver")
def test_viewer_renders_the_demo_in_headless_chromium(tmp_path, tiny_weights, processes):
    from PIL import Image

    update = os.environ.get("GDCLD_ZOO_UPDATE_SCREENSHOT") == "1"
    # a tiny model keeps the test short; the README's picture shows the shipped demo weights
    app_url, browser, log = start_viewer(tmp_path, None if update else tiny_weights, processes)
    try:
        browser.get(app_url)
        deadline, state = time.monotonic() + READY_TIMEOUT_S, {}
        while time.monotonic() < deadline:
            state = browser.execute(PAGE_STATE)
            if state["errors"] or (state["images"] >= 4 and state["downloads"] == 4 and state["maps"] == 1
                                   and not state["running"]):
                break
            time.sleep(1)
        browser.enter_frame(MAP_FRAME)
        before = wait_for(browser, MAP_STATE, lambda s: s["ready"])
        browser.execute(ZOOM_IN)
        zoomed = wait_for(browser, MAP_STATE, lambda s: s["zoom"] > before["zoom"])
        browser.execute(SHOW_PROBABILITY)
        shown = wait_for(browser, MAP_STATE, lambda s: s["images"] > before["images"])
        browser.execute(SHOW_PROBABILITY)  # off again: the screenshot shows the scene under the errors
        browser.execute(ZOOM_IN.replace("zoom-in", "zoom-out"))
        browser.execute(HOVER)
        hovered = wait_for(browser, MAP_STATE, lambda s: "mean probability" in s["tooltip"] and "°" in s["coordinates"])
        browser.enter_frame(None)
        time.sleep(1)  # let the map finish painting
        png = browser.screenshot()
    finally:
        browser.quit()
    artifacts = Path(os.environ.get("GDCLD_ZOO_ARTIFACT_DIR") or tmp_path)
    artifacts.mkdir(parents=True, exist_ok=True)
    shot = artifacts / "viewer_screenshot.png"
    shot.write_bytes(png)
    print(f"viewer screenshot: {shot}")
    if update:
        SCREENSHOT.write_bytes(png)
    log.close()
    assert state.get("errors") == 0, (tmp_path / "streamlit.log").read_text()[-3000:]
    assert state["images"] >= 4 and state["downloads"] == 4 and state["tables"] == 1, state
    assert before["scale"] == 1 and before["legend"] == 1 and before["polygons"] >= 1, before
    assert before["layers"][:3] == ["Scene", "Landslide probability", "Mask at threshold 0.50"], before["layers"]
    assert zoomed["zoom"] > before["zoom"] and shown["images"] == before["images"] + 1
    assert "landslide" in hovered["tooltip"] and "area" in hovered["tooltip"], hovered
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), "float32")
    assert pixels.shape[1] == 1400 and pixels.shape[0] > 600
    assert pixels.std() > 20, "the screenshot is blank"
    assert len(np.unique(pixels.reshape(-1, 3).astype("uint8"), axis=0)) > 1000, "too few colours: no images"


def start_viewer(tmp_path, tiny_weights, processes, *args):
    """`streamlit run` the viewer (with `args`, offline, the tiny weights as `demo` unless None) and chromedriver;
    returns (page URL, WebDriver, streamlit's log file)."""
    env = {**os.environ, "GDCLD_ZOO_HOME": str(tmp_path / "home"), "GDCLD_ZOO_OFFLINE": "1"}
    env.pop("GDCLD_ZOO_VIEWER_DATA", None)
    env.pop("GDCLD_ZOO_REGISTRY", None)
    if tiny_weights is not None:
        env["GDCLD_ZOO_REGISTRY"] = str(write_registry(tmp_path / "registry.json", tiny_weights, tile_size=256))
    app_port, driver_port = free_port(), free_port()
    app_url = f"http://127.0.0.1:{app_port}/"
    log = open(tmp_path / "streamlit.log", "wb")
    processes.append(subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(VIEWER), "--server.headless", "true",
         "--server.address", "127.0.0.1", "--server.port", str(app_port), "--browser.gatherUsageStats", "false",
         "--", "--basemap", "OpenStreetMap", *args],
        env=env, stdout=log, stderr=subprocess.STDOUT))
    processes.append(subprocess.Popen(["chromedriver", f"--port={driver_port}"],
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    wait_for_http(app_url + "_stcore/health", processes[0], 60)
    wait_for_http(f"http://127.0.0.1:{driver_port}/status", processes[1], 30)
    return app_url, WebDriver(f"http://127.0.0.1:{driver_port}"), log


# The sidebar's "Predict results" choice, then what the page shows.
OPEN_RESULTS = """
for (const label of document.querySelectorAll('[data-testid="stSidebar"] label')) {
    if (label.textContent.trim() === "Predict results") label.click();
}
"""
INVENTORY_PAGE = """
const running = document.querySelector('[data-testid="stStatusWidget"]') !== null;
return {inventory: document.body.innerText.includes("landslide inventory"), running: running,
        errors: document.querySelectorAll('[data-testid="stAlertContentError"], [data-testid="stException"]').length,
        maps: document.querySelectorAll('iframe[title="streamlit_folium.st_folium"]').length};
"""


@pytest.mark.skipif(not (Path(CHROMIUM).exists() and shutil.which("chromedriver")),
                    reason="needs Debian's chromium and chromium-driver")
def test_an_event_inventory_shows_its_polygons_in_headless_chromium(tmp_path, tiny_weights, processes):
    from gdcld_zoo.event import map_event
    from tests.event.event_scenes import write_event
    from tests.scene.scenes import PixelEngine

    scenes = write_event(tmp_path / "scenes")
    map_event(PixelEngine(), [scenes["A"], scenes["B"]], tmp_path / "data" / "event", block_tiles=2, progress=False)
    app_url, browser, log = start_viewer(tmp_path, tiny_weights, processes, "--data", str(tmp_path / "data"))
    try:
        browser.get(app_url)
        wait_for(browser, PAGE_STATE, lambda s: s["errors"] or (s["maps"] == 1 and not s["running"]),
                 READY_TIMEOUT_S)
        browser.execute(OPEN_RESULTS)
        page = wait_for(browser, INVENTORY_PAGE, lambda s: s["errors"] or (s["inventory"] and s["maps"] == 1
                                                                           and not s["running"]))
        browser.enter_frame(MAP_FRAME)
        drawn = wait_for(browser, MAP_STATE, lambda s: s["polygons"] == 4)
        browser.execute(HOVER)
        hovered = wait_for(browser, MAP_STATE, lambda s: "scenes" in s["tooltip"])
    finally:
        browser.quit()
    log.close()
    assert page["errors"] == 0 and page["inventory"], (page, (tmp_path / "streamlit.log").read_text()[-3000:])
    assert drawn["polygons"] == 4 and drawn["images"] == 0 and drawn["scale"] == 1, drawn
    assert "mean probability" in hovered["tooltip"] and " m²" in hovered["tooltip"], hovered


def wait_for(browser, script, condition, timeout_s=60):
    """The first result of `script` that meets `condition` (the last one after `timeout_s`)."""
    deadline, state = time.monotonic() + timeout_s, None
    while time.monotonic() < deadline:
        state = browser.execute(script)
        if condition(state):
            break
        time.sleep(0.5)
    return state
