"""GDCLD landslide viewer: look at a model's landslide map of a scene, and where it is wrong.

Run:
    streamlit run apps/viewer.py                      # demo weights on a generated demo scene
    streamlit run apps/viewer.py -- --data /scenes    # also scenes and predict results from a folder
    streamlit run apps/viewer.py -- --basemap OpenStreetMap   # start with an online basemap

An event's `inventory.gpkg` (from the data folder, or uploaded) opens as its
landslide polygons on the map, with counts, areas and per-scene counts, and each
scene of the event opens like a single `predict` result. A result whose scene is
not in the data folder shows its probability, mask and polygons without it.

The page runs `gdcld_zoo.scene` whole-scene inference with the chosen weights
(or opens what `gdcld-zoo predict` wrote in the data folder) and shows an
interactive map (folium/Leaflet: the scene in its place on Earth, probability,
mask and TP/FP/FN layers to toggle, landslide polygons with their area and mean
probability on hover, a scale bar, a colour bar, mouse coordinates and an
optional online basemap), with static overview pictures as a second tab; then,
with a label, the paper's metrics, and landslide counts, areas, an
area-frequency histogram and downloads. Threshold, minimum area and opacity
change without re-running the model. Pictures are downsampled overviews; the
full-resolution scene never goes to the browser.

All the work is done by the library (`gdcld_zoo.weights`, `gdcld_zoo.scene`,
`gdcld_zoo.scene.overview`, `gdcld_zoo.scene.webmap`, `gdcld_zoo.scene.inputs`);
this file only lays out the page. Environment: `GDCLD_ZOO_VIEWER_DATA` is the
data folder when `--data` is not given; files go to `$GDCLD_ZOO_HOME/viewer/`.
"""

import argparse
import collections
import hashlib
import json
import os
import sys
from pathlib import Path

import pandas as pd
import streamlit as st
from rasterio.errors import RasterioError
from rasterio.windows import Window

import gdcld_zoo
from gdcld_zoo.cli.console import quiet_tensorflow

quiet_tensorflow(verbose=False)  # TensorFlow's start-up lines stay out of the terminal running streamlit
from gdcld_zoo.demo import DEMO_NOTE, DEMO_TAG  # noqa: E402
from gdcld_zoo.errors import GdcldZooError, MissingExtraError  # noqa: E402
from gdcld_zoo.event.inventory import read_inventory  # noqa: E402
from gdcld_zoo.scene import D4Engine, SlidingWindowPredictor, make_engine  # noqa: E402
from gdcld_zoo.scene import inputs, overview, webmap  # noqa: E402
from gdcld_zoo.scene.source import check_bands_argument  # noqa: E402
from gdcld_zoo.weights.sources import home_dir  # noqa: E402

ENV_DATA = "GDCLD_ZOO_VIEWER_DATA"
TILE_SIZES = (128, 256, 384, 512, 768, 1024, 1536, 2048)
ZOOMS = (1, 2, 4, 8, 16, 32, 64)
LARGEST_ROWS = 10
BAD_INPUT = (GdcldZooError, RasterioError, OSError)
EVENT_WHOLE = "(the whole event: inventory)"
# An inventory GeoPackage chosen in the sidebar, with the data folder's results beside it (the event's scenes).
InventoryChoice = collections.namedtuple("InventoryChoice", "path name scenes")
METRICS = (("Precision", "precision"), ("Recall", "recall"), ("F1", "f1"), ("IoU", "iou"), ("mIoU", "miou"))


def parse_args(argv):
    """`--data DIR` and `--basemap NAME` (the map's first basemap) after streamlit's `--`;
    unknown arguments are ignored."""
    parser = argparse.ArgumentParser(prog="viewer", allow_abbrev=False, add_help=False)
    parser.add_argument("--data", default=os.environ.get(ENV_DATA) or None)
    parser.add_argument("--basemap", default="None", choices=list(webmap.BASEMAPS))
    args, _ = parser.parse_known_args(argv)
    return args


def work_dir():
    return home_dir() / "viewer"


def file_stamp(path):
    """Identity of a file's content for cache keys: size and modification time."""
    stat = Path(path).stat()
    return stat.st_size, stat.st_mtime_ns


@st.cache_resource(show_spinner="Loading the weights...", max_entries=4)
def load_engine(tag, sha256):
    """The model of a weight tag as an engine (one per tag and file hash)."""
    return make_engine(tag)


def run_model(tag, sha256, scene, stamp, tile_size, overlap, tta, bands, progress=None):
    """Outputs and summary of the weights on a scene with these settings, running the model only once.

    Runs are kept on disk, in a folder named by a hash of the settings, so a
    result survives restarts; `predict_scene` writes its files atomically, so
    a summary file means a complete run. (Not `st.cache_data`: a cached
    function cannot drive the progress bar of the page.)
    """
    key = json.dumps([tag, sha256, scene, stamp, tile_size, overlap, tta, bands])
    out_dir = work_dir() / "runs" / hashlib.sha256(key.encode()).hexdigest()[:16]
    summary_path = out_dir / f"{Path(scene).stem}_summary.json"
    if not summary_path.is_file():
        engine = load_engine(tag, sha256)
        engine = D4Engine(engine) if tta else engine
        if progress is not None:
            engine = inputs.ProgressEngine(engine, progress)
        predictor = SlidingWindowPredictor(engine, tile_size=tile_size, overlap=overlap, progress=False)
        predictor.predict(scene, out_dir, bands=bands or None)
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    return {"outputs": {kind: str(out_dir / name) for kind, name in summary["outputs"].items()}, "summary": summary}


@st.cache_data(show_spinner=False, max_entries=64)
def count_tiles(tag, sha256, scene, stamp, tile_size, overlap, bands):
    """Windows the run will predict (checks the scene's bands against the weights first)."""
    predictor = SlidingWindowPredictor(load_engine(tag, sha256), tile_size=tile_size, overlap=overlap,
                                       progress=False)
    return predictor.prepare(scene, bands or None).grid.num_tiles


@st.cache_data(show_spinner="Thresholding...", max_entries=64)
def landslides_at(prob_path, stamp, threshold, min_area):
    """Mask, polygons and landslide table of a probability map at a threshold and minimum area (m²)."""
    out_dir = work_dir() / "thresholds" / hashlib.sha256(json.dumps([prob_path, stamp]).encode()).hexdigest()[:16]
    out = overview.rethreshold(prob_path, threshold, out_dir / f"t{threshold:.4f}_a{min_area:g}", min_area)
    return {**out, "rows": overview.read_landslides(out["landslides"])}


@st.cache_data(show_spinner="Drawing the map...", max_entries=32)
def map_layers(prob_path, prob_stamp, threshold, opacity, scene, stamp, bands, label, label_stamp):
    """The map's picture layers (Web Mercator) and their bounds; see `webmap.picture_layers`."""
    return webmap.picture_layers(prob_path, threshold, opacity, scene, bands, label)


@st.cache_data(show_spinner=False, max_entries=32)
def polygon_layer(geojson_path, prob_path, prob_stamp):
    """The landslide polygons with `area` (readable) and `mean probability` for the map's tooltip."""
    data = json.loads(Path(geojson_path).read_text(encoding="utf-8"))
    means = webmap.mean_probabilities(data, prob_path)
    for feature in data["features"]:
        props = feature["properties"]
        props["area"] = webmap.format_area(props["area_m2"]) if "area_m2" in props else f"{props['area_px']:,.0f} px"
        props["mean probability"] = f"{means[props['id']]:.2f}" if props["id"] in means else "-"
    return data


@st.cache_data(show_spinner="Reading the inventory...", max_entries=16)
def inventory_at(path, stamp):
    """The inventory's polygons (EPSG:4326) and attributes; see `gdcld_zoo.event.inventory.read_inventory`."""
    return read_inventory(path)


@st.cache_data(show_spinner="Comparing with the label...", max_entries=64)
def metrics_at(prob_path, stamp, label_path, label_stamp, threshold):
    return overview.threshold_metrics(prob_path, label_path, threshold)


@st.cache_data(show_spinner=False, max_entries=64)
def picture(kind, path, stamp, window, max_side, bands=None):
    """A decimated read: `image` (RGB), `prob` (codes, valid) or `label`."""
    window = Window(*window) if window else None
    if kind == "image":
        return overview.read_image(path, bands, window, max_side)
    if kind == "prob":
        return overview.read_probability(path, window, max_side)
    return overview.read_label(path, window, max_side)


def show_error(error, hint=""):
    st.error(f"{error}{' ' + hint if hint else ''}")


def show_scene(scene, stamp, report=True):
    """The whole scene as a picture; when its pixels cannot be read, its error (if `report`) instead."""
    try:
        st.image(picture("image", str(scene), stamp, None, overview.MAX_SIDE), caption="Scene", width="stretch")
    except BAD_INPUT as error:
        if report:
            show_error(error)


def pick_weights():
    """Sidebar weights choice: the record, or None when no weights are registered."""
    try:
        records = gdcld_zoo.list_weights()
    except GdcldZooError as error:
        st.sidebar.error(str(error))
        records = []
    if not records:
        return None
    tags = [r.tag for r in records]
    default = tags.index("demo") if "demo" in tags else 0
    tag = st.sidebar.selectbox("Weights", tags, index=default,
                               format_func=lambda t: f"{t} ({records[tags.index(t)].model})",
                               help="Every weight record: shipped, GDCLD_ZOO_REGISTRY and your own trained runs.")
    return records[tags.index(tag)]


def pick_result(data_folder, name):
    """A `gdcld-zoo predict` output (its summary JSON `name`) in the data folder: (scene, label, name, run)
    as `pick_scene`; the scene is None when it is not in the data folder."""
    run = data_folder.result(name)
    summary = run["summary"]
    stem = Path(summary["scene"]).name
    candidates = [n for n in data_folder.scenes() if Path(n).name == stem]
    st.sidebar.caption(f"Made by `gdcld-zoo predict` with {summary['model_tag']}; the model does not run here.")
    if not candidates:
        st.sidebar.info(f"The scene {stem} is not in the data folder: the map shows the result without it; "
                        "copy the scene there to see it under the result.")
        return None, None, name, run
    label = data_folder.label_for(candidates[0])
    return (data_folder.resolve(candidates[0]), data_folder.resolve(label) if label else None, candidates[0], run)


def pick_output(data_folder):
    """A result of `gdcld-zoo predict` in the data folder: an event's `inventory.gpkg` (an `InventoryChoice`,
    or one of its scenes) or a scene's summary JSON, as `pick_scene`."""
    name = st.sidebar.selectbox("Result (inventory or summary JSON)",
                                data_folder.inventories() + data_folder.results())
    if not name.endswith(".gpkg"):
        return pick_result(data_folder, name)
    scenes = data_folder.results_beside(name)
    if scenes:
        scene = st.sidebar.selectbox("Scene of the event", [EVENT_WHOLE] + scenes,
                                     help="Open one scene's probability, mask and polygons.")
        if scene != EVENT_WHOLE:
            return pick_result(data_folder, scene)
    return InventoryChoice(data_folder.resolve(name), name, len(scenes))


def pick_scene(data_folder):
    """Sidebar scene choice: (scene path or None, label path or None, display name, finished run or None),
    an `InventoryChoice`, or None when nothing is chosen yet."""
    results = ["Predict results"] if data_folder and (data_folder.results() or data_folder.inventories()) else []
    sources = ["Demo scene"] + (["Data folder"] if data_folder else []) + results + ["Upload"]
    source = st.sidebar.radio("Scene", sources, horizontal=True)
    if source == "Demo scene":
        scene, label = inputs.demo_scene(work_dir() / "demo")
        st.sidebar.caption("A synthetic scene with its label (gdcld_zoo.data.synthetic).")
        return scene, label, "demo scene", None
    if source == "Predict results":
        return pick_output(data_folder)
    if source == "Data folder":
        scenes = data_folder.scenes()
        if not scenes:
            st.sidebar.warning(f"No raster files in {data_folder.root}.")
            return None
        name = st.sidebar.selectbox("File", scenes)
        labels = ["(no label)"] + data_folder.labels()
        paired = data_folder.label_for(name)
        label_name = st.sidebar.selectbox("Label", labels, index=labels.index(paired) if paired else 0)
        scene = data_folder.resolve(name)
        label = data_folder.resolve(label_name) if label_name != labels[0] else None
        return scene, label, name, None
    limit_mb = inputs.MAX_UPLOAD_BYTES / 1024**2
    upload = st.sidebar.file_uploader(f"Scene GeoTIFF or inventory.gpkg (up to {limit_mb:.0f} MB)",
                                      key="scene_upload")
    label_upload = st.sidebar.file_uploader("Label GeoTIFF (optional: 1 landslide, 0 background)",
                                            key="label_upload")
    if upload is None:
        st.info("Upload a GeoTIFF scene, or an inventory.gpkg of an event, in the sidebar.")
        return None
    folder = work_dir() / "uploads"
    if upload.name.lower().endswith(".gpkg"):
        return InventoryChoice(inputs.save_upload(upload.name, upload.getvalue(), folder, check=read_inventory),
                               upload.name, 0)
    scene = inputs.save_upload(upload.name, upload.getvalue(), folder)
    label = None
    if label_upload is not None:
        try:
            label = inputs.save_upload(label_upload.name, label_upload.getvalue(), folder)
        except GdcldZooError as error:
            show_error(error, "Continuing without a label.")
    return scene, label, upload.name, None


def pick_run_settings(record):
    st.sidebar.subheader("Inference")
    bands_text = st.sidebar.text_input(
        "Bands", "", placeholder="automatic", help="1-based scene bands fed to the model, e.g. 3,2,1 "
        "for a BGR(N) scene. Empty: chosen from the scene's colour interpretation or the weights.")
    tiles = sorted(set(TILE_SIZES) | {record.tile_size})
    tile_size = st.sidebar.selectbox("Tile size (px)", tiles, index=tiles.index(record.tile_size),
                                     key=f"tile_{record.tag}")
    overlap = st.sidebar.slider("Overlap (px)", 0, tile_size // 2, min(128, tile_size // 4), step=16,
                                key=f"overlap_{record.tag}_{tile_size}")
    tta = st.sidebar.checkbox("Test-time augmentation (D4, 8x slower)", False)
    return bands_text.strip(), tile_size, overlap, tta


def pick_view(tag, default_threshold, height, width, has_crs, basemap):
    st.sidebar.subheader("Display")
    threshold = st.sidebar.slider("Threshold", 0.0, 1.0, float(default_threshold), step=0.01,
                                  key=f"threshold_{tag}",
                                  help="Re-thresholds the probability map; the model does not run again.")
    min_area = st.sidebar.number_input(
        "Minimum landslide area (m²)", 0.0, value=0.0, step=10.0, disabled=not has_crs, key="min_area",
        help="Drop polygons smaller than this ground area, as `gdcld-zoo predict --min-area`. "
        "Needs a scene with a CRS.")
    opacity = st.sidebar.slider("Mask opacity", 0.0, 1.0, 0.5, step=0.05)
    basemap = st.sidebar.selectbox("Basemap", list(webmap.BASEMAPS), list(webmap.BASEMAPS).index(basemap),
                                   key="basemap",
                                   help="Online tiles under the map; without internet only the scene layers show.")
    zooms = [z for z in ZOOMS if z == 1 or max(height, width) / z >= 64]
    zoom = st.sidebar.select_slider("Zoom", zooms, value=1, format_func=lambda z: f"{z}x")
    centre = (0.5, 0.5)
    if zoom > 1:
        centre = (st.sidebar.slider("Window centre, down (%)", 0, 100, 50) / 100,
                  st.sidebar.slider("Window centre, across (%)", 0, 100, 50) / 100)
    return threshold, min_area, opacity, basemap, zoom, centre


def legend():
    swatches = " &nbsp; ".join(
        f"<span style='display:inline-block;width:0.9em;height:0.9em;background:rgb{overview.ERROR_COLOURS[k]};"
        f"vertical-align:middle'></span> {k}: {overview.ERROR_NAMES[k]}" for k in ("TP", "FP", "FN"))
    st.markdown(swatches, unsafe_allow_html=True)


def locator(scene, stamp, info, window, bands):
    """The whole-scene thumbnail with the zoom window outlined."""
    thumb = picture("image", str(scene), stamp, None, 256, bands).copy()
    sy, sx = thumb.shape[0] / info["height"], thumb.shape[1] / info["width"]
    r0, c0 = int(window.row_off * sy), int(window.col_off * sx)
    r1 = min(thumb.shape[0] - 1, int((window.row_off + window.height) * sy))
    c1 = min(thumb.shape[1] - 1, int((window.col_off + window.width) * sx))
    for rows, cols in (((r0, r1 + 1), (c0, c0 + 2)), ((r0, r1 + 1), (c1 - 1, c1 + 1)),
                       ((r0, r0 + 2), (c0, c1 + 1)), ((r1 - 1, r1 + 1), (c0, c1 + 1))):
        thumb[slice(*rows), slice(*cols)] = (255, 255, 0)
    st.sidebar.image(thumb, caption="Zoom window", width="stretch")


def landslide_statistics(found, summary):
    st.subheader("Landslides")
    units = found["units"]
    key = "area_m2" if units == "m2" else "area_px"
    cols = st.columns(4)
    cols[0].metric("Landslides", f"{found['n_landslides']}")
    if units == "m2":
        cols[1].metric("Total area", webmap.format_area(found["landslide_area"]))
        valid = summary.get("valid_area_km2")
        share = found["landslide_area"] / 1e6 / valid if valid else 0.0
        cols[2].metric("Share of mapped area", f"{100 * share:.2f} %")
    else:
        cols[1].metric("Total area", f"{found['landslide_area']:.0f} px")
        cols[2].metric("Share of mapped area", "n/a (no CRS)")
    area = webmap.format_area if units == "m2" else (lambda px: f"{px:,.0f} px")
    cols[3].metric("Largest", area(found["rows"][0][key]) if found["rows"] else "-")
    if not found["rows"]:
        st.caption("No landslide at this threshold and minimum area.")
        return
    left, right = st.columns(2)
    unit = "m²" if units == "m2" else "px"
    bins = overview.area_frequency([r[key] for r in found["rows"]])
    histogram = pd.DataFrame({"landslide area": [f"{area(lo)} – {area(hi)}" for lo, hi, _ in bins],
                              "landslides": [n for _, _, n in bins]})
    left.markdown("**Area-frequency** (logarithmic bins)")
    left.bar_chart(histogram, x="landslide area", y="landslides", x_label="number of landslides",
                   y_label="landslide area", horizontal=True, sort=False)
    right.markdown(f"**Largest {min(LARGEST_ROWS, len(found['rows']))} landslides**")
    right.dataframe(pd.DataFrame(found["rows"][:LARGEST_ROWS]), hide_index=True, width="stretch", column_config={
        key: st.column_config.NumberColumn(f"area ({unit})", format="%.1f"),
        "lon": st.column_config.NumberColumn("longitude", format="%.5f"),
        "lat": st.column_config.NumberColumn("latitude", format="%.5f")})


def downloads(found, run, threshold):
    """Mask and polygons at the page's threshold (named with it), probability map and run summary."""
    st.subheader("Downloads")
    cols = st.columns(4)
    at = f"_t{threshold:.2f}"
    files = ((cols[0], "Mask GeoTIFF", found["mask"], at, "image/tiff"),
             (cols[1], "Probability GeoTIFF", run["outputs"]["prob.tif"], "", "image/tiff"),
             (cols[2], "Polygons GeoJSON", found["landslides"], at, "application/geo+json"),
             (cols[3], "Summary JSON", run["outputs"]["summary.json"], "", "application/json"))
    for column, label, path, suffix, mime in files:
        path = Path(path)
        name = path.name.replace(".", f"{suffix}.", 1)
        column.download_button(label, path.read_bytes(), file_name=name, mime=mime, key=f"download_{label}")


def demo_note(tag):
    """The demo weights' results always say what they are."""
    if tag == DEMO_TAG:
        st.warning(f"Results of the `demo` weights: {DEMO_NOTE}, not a landslide detector for real imagery.")


def show_map(run, threshold, min_area, opacity, basemap, scene, stamp, label, found):
    """The interactive map (folium through streamlit-folium); a note instead when it cannot be drawn."""
    prob_path = run["outputs"]["prob.tif"]
    try:
        from streamlit_folium import st_folium

        layers, bounds = map_layers(prob_path, file_stamp(prob_path), threshold, opacity, scene and str(scene), stamp,
                                    tuple(run["summary"]["bands"]), str(label) if label else None,
                                    file_stamp(label) if label else None)
        polygons = polygon_layer(str(found["landslides"]), prob_path, file_stamp(prob_path))
        fmap = webmap.build_map(layers, bounds, polygons, basemap,
                                (["id", "area", "mean probability"], ["landslide", "area", "mean probability"]))
    except (ImportError, MissingExtraError) as error:
        st.info(f"No interactive map: {error} The static overview is in the next tab.")
        return
    except BAD_INPUT as error:
        st.info(f"No interactive map: {error} The static overview is in the next tab.")
        return
    st_folium(fmap, height=560, use_container_width=True, returned_objects=[], key="map")
    st.caption(f"Landslides: {found['n_landslides']} at threshold {threshold:.2f}"
               f"{f', at least {webmap.format_area(min_area)}' if min_area else ''}. Hover a polygon for its "
               "area and mean probability; layers top right, coordinates bottom left.")


def main():
    st.set_page_config(page_title="GDCLD landslide viewer", layout="wide")
    st.title("GDCLD landslide viewer")
    args = parse_args(sys.argv[1:])
    data_folder = None
    if args.data:
        try:
            data_folder = inputs.DataFolder(args.data)
        except GdcldZooError as error:
            st.sidebar.error(str(error))
    record = pick_weights()
    try:
        chosen = pick_scene(data_folder)
    except BAD_INPUT as error:
        show_error(error)
        return
    if chosen is None:
        return
    if isinstance(chosen, InventoryChoice):
        try:
            show_inventory(chosen, args.basemap)
        except BAD_INPUT as error:
            show_error(error)
        return
    scene, label, name, run = chosen
    try:  # without its scene, a result is drawn on its probability map's grid
        stamp = file_stamp(scene if scene else run["outputs"]["prob.tif"])
        info = inputs.scene_info(scene if scene else run["outputs"]["prob.tif"])
    except BAD_INPUT as error:
        show_error(error)
        return
    res = f", {info['resolution'][0]:g} {'m' if info['crs'] else 'units'}/px" if info["crs"] else ""
    what = f"{info['bands']} band(s) ({', '.join(info['dtypes'])})" if scene else "scene not in the data folder"
    st.caption(f"**{name}**: {info['width']} x {info['height']} px, {what}, {info['crs'] or 'no CRS'}{res}")
    if record is None and run is None:
        st.warning("No weights are registered, so there is nothing to run. Register weights with "
                   "`gdcld-zoo weights add FILE --tag TAG --model MODEL` (or train a model with "
                   "`gdcld-zoo train`), then reload this page.")
        show_scene(scene, stamp)
        return
    if run is None:
        bands_text, tile_size, overlap, tta = pick_run_settings(record)
    tag, default_threshold = (record.tag, record.threshold) if run is None else (
        run["summary"]["model_tag"], run["summary"]["threshold"])
    threshold, min_area, opacity, basemap, zoom, centre = pick_view(
        tag, default_threshold, info["height"], info["width"], bool(info["crs"]), args.basemap)
    if label is not None:
        try:
            overview.check_label(label, scene)
        except BAD_INPUT as error:
            show_error(error, "Continuing without a label.")
            label = None
    try:
        run = run or run_with_progress(record, scene, stamp, bands_text, tile_size, overlap, tta)
    except BAD_INPUT as error:
        hint = "Enter the bands in the sidebar (Bands), e.g. 1,2,3." if "band" in str(error) else ""
        show_error(error, hint)
        show_scene(scene, stamp, report=False)  # the run's error above already says why when it fails
        return
    summary = run["summary"]
    demo_note(summary["model_tag"])
    prob_path = run["outputs"]["prob.tif"]
    prob_stamp = file_stamp(prob_path)
    found = landslides_at(prob_path, prob_stamp, threshold, min_area if info["crs"] else 0.0)

    window = overview.zoom_window(info["height"], info["width"], zoom, centre)
    key = (int(window.col_off), int(window.row_off), int(window.width), int(window.height))
    display = tuple(summary["bands"])
    codes, valid = picture("prob", prob_path, prob_stamp, key, overview.MAX_SIDE)
    image = picture("image", str(scene), stamp, key, overview.MAX_SIDE, display) if scene else None
    selected = valid & (codes >= overview.threshold_code(threshold))
    if zoom > 1 and scene:
        locator(scene, stamp, info, window, display)
    scale = codes.shape[1] / key[2]
    where = (f"window rows {key[1]}-{key[1] + key[3]}, columns {key[0]}-{key[0] + key[2]}" if zoom > 1
             else "whole scene")
    st.caption(f"{summary['model_tag']} · tiles {summary['tile_size']} px, overlap {summary['overlap']} px"
               f"{', TTA' if summary['tta'] else ''} · bands {summary['bands']} ({summary['bands_from']}) · "
               f"model {summary['timings_s']['model']:.1f} s · static overview: {where} at {min(scale, 1.0):.2g}x")

    map_tab, static_tab = st.tabs(["Map", "Static overview"])
    with map_tab:
        if info["crs"]:
            show_map(run, threshold, min_area, opacity, basemap, scene, stamp, label, found)
        else:
            st.info("The scene has no CRS, so it has no place on a map: see the static overview.")
    with static_tab:
        static_overview(image, codes, valid, selected, threshold, opacity, label, key)
    if label is not None:
        metrics_table(prob_path, prob_stamp, label, threshold)
    landslide_statistics(found, summary)
    downloads(found, run, threshold)


def show_inventory(chosen, basemap):
    """An event's landslide inventory: its polygons on the map, counts, areas and landslides per scene."""
    inventory = inventory_at(str(chosen.path), file_stamp(chosen.path))
    st.sidebar.subheader("Display")
    min_area = st.sidebar.number_input("Minimum landslide area (m²)", 0.0, value=0.0, step=10.0,
                                       key="inventory_min_area", help="Show only landslides at least this large.")
    basemap = st.sidebar.selectbox("Basemap", list(webmap.BASEMAPS), list(webmap.BASEMAPS).index(basemap),
                                   key="inventory_basemap",
                                   help="Online tiles under the map; without internet only the polygons show.")
    shown = inventory.at_least(min_area)
    scenes = f", {chosen.scenes} scene(s) of the event in the data folder" if chosen.scenes else ""
    st.caption(f"**{chosen.name}**: landslide inventory, {len(inventory.records)} landslide(s){scenes}")
    st.subheader("Landslides")
    cols = st.columns(4)
    cols[0].metric("Landslides", f"{len(shown.records)}")
    cols[1].metric("Total area", webmap.format_area(shown.area_m2))
    cols[2].metric("Largest", webmap.format_area(max(r["area_m2"] for r in shown.records)) if shown.records else "-")
    counts = shown.scene_counts()
    cols[3].metric("Scenes", f"{len(counts)}" if counts else "-")
    if not shown.records:
        st.info(f"0 landslides{f' of at least {webmap.format_area(min_area)}' if min_area else ''} "
                "in this inventory.")
        return
    try:
        from streamlit_folium import st_folium

        fmap = webmap.build_map([], shown.bounds, webmap.inventory_polygons(shown), basemap,
                                webmap.INVENTORY_TOOLTIP)
    except (ImportError, MissingExtraError) as error:
        st.info(f"No interactive map: {error}")
    else:
        st_folium(fmap, height=560, use_container_width=True, returned_objects=[], key="inventory_map")
        st.caption("Hover a polygon for its id, area, mean probability and source scenes; "
                   "choose a scene of the event in the sidebar to see its probability map.")
    left, right = st.columns(2)
    if counts:
        left.markdown("**Landslides per scene** (one seen by two scenes counts in both)")
        left.dataframe(pd.DataFrame({"scene": list(counts), "landslides": list(counts.values())}),
                       hide_index=True, width="stretch")
    largest = sorted(shown.records, key=lambda r: -r["area_m2"])[:LARGEST_ROWS]
    right.markdown(f"**Largest {len(largest)} landslides**")
    right.dataframe(pd.DataFrame(largest), hide_index=True, width="stretch", column_config={
        "area_m2": st.column_config.NumberColumn("area (m²)", format="%.1f")})


def run_with_progress(record, scene, stamp, bands_text, tile_size, overlap, tta):
    """The weights' run on the scene (from disk when done before), with a progress bar of tiles."""
    bands = check_bands_argument(bands_text) if bands_text else None
    bands = list(bands) if bands else None
    total = count_tiles(record.tag, record.sha256, str(scene), stamp, tile_size, overlap, bands)
    bar = st.progress(0.0, text=f"Running {record.tag} on {total} tile(s)...")

    def progress(tiles):
        bar.progress(min(1.0, tiles / total), text=f"Running {record.tag}: {tiles} of {total} tile(s)")

    run = run_model(record.tag, record.sha256, str(scene), stamp, tile_size, overlap, tta, bands, progress)
    bar.empty()
    return run


def static_overview(image, codes, valid, selected, threshold, opacity, label, key):
    """The four pictures: scene, probability, mask and (with a label) errors; without the scene (`image`
    None) the mask is drawn over the probability."""
    top = st.columns(2)
    heat = overview.heat_map(codes, valid)
    if image is None:
        top[0].info("The scene is not in the data folder: copy it there to see the result over it.")
    else:
        top[0].image(image, caption="Scene", width="stretch")
    top[1].image(heat, caption="Landslide probability (dark 0 → bright 1)", width="stretch")
    bottom = st.columns(2)
    bottom[0].image(overview.overlay(heat if image is None else image, selected, opacity=opacity),
                    caption=f"Mask at threshold {threshold:.2f} (red)", width="stretch")
    truth = None
    if label is not None:
        try:
            truth = picture("label", str(label), file_stamp(label), key, overview.MAX_SIDE)
        except BAD_INPUT as error:
            show_error(error, "Continuing without a label.")
    if truth is not None:
        bottom[1].image(overview.error_map(image, truth, selected, opacity=max(opacity, 0.5)),
                        caption="Errors against the label", width="stretch")
        with bottom[1]:
            legend()
    else:
        bottom[1].info("Add a label GeoTIFF (1 landslide, 0 background) to see errors and metrics.")


def metrics_table(prob_path, prob_stamp, label, threshold):
    """The paper's metrics of the whole scene against the label, in percent."""
    try:
        values, counts = metrics_at(prob_path, prob_stamp, str(label), file_stamp(label), threshold)
    except BAD_INPUT as error:
        show_error(error)
        return
    st.subheader(f"Metrics at threshold {threshold:.2f} (whole scene, every pixel)")
    table = pd.DataFrame([{f"{name} (%)": 100 * values[key] for name, key in METRICS}], index=["whole scene"])
    st.table(table.style.format("{:.2f}"))
    st.caption(f"Pixels: {counts['tp']:,} TP, {counts['fp']:,} FP, {counts['fn']:,} FN, "
               f"{counts['tn']:,} TN (label 255 and nodata left out).")


main()
