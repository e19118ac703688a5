"""An interactive map of a scene and its landslide map: folium (Leaflet) with every asset inline.

Leaflet is what people who inspect landslide maps already use in web maps and
QGIS: pan, zoom, layers to toggle, hover for a polygon's numbers. Its
JavaScript and CSS come from the `xstatic-leaflet` package and go to the page
inline, so the map works with no network; only the optional basemap's tiles are
fetched from the internet, and without a connection they simply do not appear.
Pictures are decimated overviews (`gdcld_zoo.scene.overview`) warped to Web
Mercator, so each pixel lies where it is on Earth. Needs the `viewer` extra.
"""

import base64
import functools
import io
import json
from pathlib import Path

import numpy as np
from affine import Affine

from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.lazy_imports import require
from gdcld_zoo.scene import overview

WEB_MERCATOR = "EPSG:3857"
# Optional basemaps: name -> (tile URL, attribution); "None" draws the scene layers only.
BASEMAPS = {
    "None": None,
    "OpenStreetMap": ("https://tile.openstreetmap.org/{z}/{x}/{y}.png",
                      "&copy; OpenStreetMap contributors"),
    "Satellite (Esri World Imagery)": (
        "https://server.arcgisonline.com/ArcGIS/rest/services/World_Imagery/MapServer/tile/{z}/{y}/{x}",
        "Tiles &copy; Esri, Maxar, Earthstar Geographics"),
}


def format_area(m2):
    """A ground area that reads well: m² under 0.01 km², hectares under 1 km², km² above.

    Example:
    >>> [format_area(a) for a in (31.6, 12345.0, 2.5e6)]
    ['32 m²', '1.23 ha', '2.50 km²']
    """
    if m2 < 1e4:
        return f"{m2:,.0f} m²"
    if m2 < 1e6:
        return f"{m2 / 1e4:,.2f} ha"
    return f"{m2 / 1e6:,.2f} km²"


@functools.lru_cache(maxsize=1)
def leaflet_assets():
    """Leaflet's JavaScript and CSS as `data:` URLs (from the `xstatic-leaflet` package)."""
    base = Path(require("xstatic.pkg.leaflet", "viewer").BASE_DIR)

    def data_url(name, mime):
        return f"data:{mime};base64,{base64.b64encode((base / name).read_bytes()).decode()}"

    return data_url("leaflet.js", "text/javascript"), data_url("leaflet.css", "text/css")


def png_url(rgba):
    """An (H, W, 4) uint8 picture as a PNG `data:` URL."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgba), "RGBA").save(buffer, format="PNG")
    return f"data:image/png;base64,{base64.b64encode(buffer.getvalue()).decode()}"


def to_web_mercator(picture, scene_shape, transform, crs):
    """An (h, W, 4) overview of a scene of `scene_shape` (rows, cols) warped to Web Mercator.

    Returns:
        (picture, bounds): the warped RGBA picture (transparent outside the
        scene) and its `[[south, west], [north, east]]` in degrees.
    """
    from rasterio.transform import array_bounds
    from rasterio.warp import Resampling, calculate_default_transform, reproject, transform_bounds

    h, w = picture.shape[:2]
    src_transform = transform @ Affine.scale(scene_shape[1] / w, scene_shape[0] / h)
    west, south, east, north = array_bounds(h, w, src_transform)
    dst_transform, dw, dh = calculate_default_transform(crs, WEB_MERCATOR, w, h, west, south, east, north)
    out = np.zeros((4, dh, dw), "uint8")
    reproject(np.moveaxis(picture, -1, 0), out, src_transform=src_transform, src_crs=crs,
              dst_transform=dst_transform, dst_crs=WEB_MERCATOR, resampling=Resampling.nearest)
    west, south, east, north = transform_bounds(WEB_MERCATOR, "EPSG:4326", *array_bounds(dh, dw, dst_transform))
    return np.moveaxis(out, 0, -1), [[south, west], [north, east]]


def picture_layers(prob_path, threshold, opacity, scene=None, bands=None, label=None, max_side=None):
    """The map's picture layers of a probability map, optionally over its scene and against a label.

    Returns:
        (layers, bounds): `(name, RGBA picture in Web Mercator, shown at start)`
        for the scene, the probability heat map, the mask at `threshold` (alpha
        `opacity`) and the TP/FP/FN errors, and their `[[south, west], [north, east]]`.
    """
    import rasterio

    max_side = max_side or overview.MAX_SIDE
    with rasterio.open(prob_path) as prob:
        shape, transform, crs = (prob.height, prob.width), prob.transform, prob.crs
    if crs is None:
        raise InvalidInputError(f"{Path(prob_path).name} has no CRS, so no place on a map.")
    codes, valid = overview.read_probability(prob_path, None, max_side)
    selected = valid & (codes >= overview.threshold_code(threshold))
    layers = [] if scene is None else [("Scene", overview.read_image(scene, bands, None, max_side), valid, True)]
    layers += [("Landslide probability", overview.heat_map(codes, valid), valid * 0.8, scene is None),
               (f"Mask at threshold {threshold:.2f}",
                np.broadcast_to(np.asarray(overview.MASK_COLOUR, "uint8"), (*codes.shape, 3)),
                selected * opacity, label is None)]
    if label is not None:
        classes = overview.error_classes(overview.read_label(label, None, max_side), selected)
        lut = np.array([(0, 0, 0)] + [overview.ERROR_COLOURS[k] for k in ("TP", "FP", "FN")], "uint8")
        layers.append(("Errors against the label (TP/FP/FN)", lut[classes], classes > 0, True))
    warped = []
    for name, rgb, alpha, shown in layers:
        alpha = np.round(255 * np.asarray(alpha, "float32")).astype("uint8")
        picture, bounds = to_web_mercator(np.dstack([rgb, alpha]), shape, transform, crs)
        warped.append((name, picture, shown))
    return warped, bounds


def mean_probabilities(geojson, prob_path, max_side=None):
    """Mean landslide probability of each polygon id, from the probability map's overview."""
    import rasterio
    from rasterio.features import rasterize
    from rasterio.warp import transform_geom

    max_side = max_side or overview.MAX_SIDE
    with rasterio.open(prob_path) as prob:
        shape, transform, crs = (prob.height, prob.width), prob.transform, prob.crs
    codes, valid = overview.read_probability(prob_path, None, max_side)
    grid = transform @ Affine.scale(shape[1] / codes.shape[1], shape[0] / codes.shape[0])
    shapes = [(transform_geom("EPSG:4326", crs, f["geometry"]) if crs else f["geometry"], f["properties"]["id"] + 1)
              for f in geojson["features"]]
    means = {}
    # Pixel centres inside each polygon; polygons smaller than an overview pixel take the pixels they touch.
    for all_touched in (False, True):
        todo = [(geometry, i) for geometry, i in shapes if i - 1 not in means]
        if not todo:
            break
        ids = rasterize(todo, out_shape=codes.shape, transform=grid, all_touched=all_touched, fill=0, dtype="int32")
        keep = valid & (ids > 0)
        sums = np.bincount(ids[keep], weights=codes[keep] / overview.PROB_SCALE, minlength=len(shapes) + 1)
        counts = np.bincount(ids[keep], minlength=len(shapes) + 1)
        means.update({i - 1: float(sums[i] / counts[i]) for _, i in todo if counts[i]})
    return means


def _control(script, header=""):
    """A folium element made of inline JavaScript (`script`) and CSS (`header`): a Leaflet control."""
    branca = require("branca.element", "viewer")
    from jinja2 import Template

    element = branca.MacroElement()
    element._name = "GdcldControl"
    element._template = Template("{% macro header(this, kwargs) %}" + header + "{% endmacro %}"
                                 "{% macro script(this, kwargs) %}" + script + "{% endmacro %}")
    return element


_CONTROL_STYLE = (
    "<style>.gdcld-coordinates{background:rgba(255,255,255,.85);padding:2px 6px;font:12px sans-serif}"
    ".gdcld-legend{background:rgba(255,255,255,.9);padding:6px 8px;font:12px sans-serif;line-height:1.5}"
    ".gdcld-legend i{display:inline-block;width:12px;height:12px;margin-right:4px;vertical-align:middle}</style>"
)
# A Leaflet control at `position` whose div (class `css`) is filled by `fill(div)`.
_CONTROL_SCRIPT = """
(function(map) {
    var control = L.control({position: '%(position)s'});
    control.onAdd = function() {
        var div = L.DomUtil.create('div', '%(css)s');
        %(fill)s
        return div;
    };
    control.addTo(map);
})({{ this._parent.get_name() }});
"""


def mouse_position():
    """A control showing the latitude and longitude under the mouse."""
    fill = ("div.innerHTML = 'lat, lon';"
            "map.on('mousemove', function(e) {div.innerHTML = e.latlng.lat.toFixed(5) + '\\u00b0, '"
            " + e.latlng.lng.toFixed(5) + '\\u00b0';});")
    return _control(_CONTROL_SCRIPT % {"position": "bottomleft", "css": "gdcld-coordinates", "fill": fill},
                    _CONTROL_STYLE)


def legend(with_errors):
    """The probability colour bar and, with a label, the TP/FP/FN colours, as a map control."""
    stops = ", ".join(f"rgb{tuple(int(v) for v in overview.HEAT_LUT[i])} {100 * i / 255:.0f}%"
                      for i in (*range(0, 256, 32), 255))
    html = ("<b>Landslide probability</b>"
            f"<div style='width:160px;height:10px;background:linear-gradient(to right, {stops})'></div>"
            "<div style='display:flex;justify-content:space-between;width:160px'>"
            "<span>0</span><span>0.5</span><span>1</span></div>")
    if with_errors:
        html += "".join(f"<i style='background:rgb{overview.ERROR_COLOURS[k]}'></i>{k}: {overview.ERROR_NAMES[k]}<br>"
                        for k in ("TP", "FP", "FN"))
    fill = f"div.innerHTML = {json.dumps(html)};"
    return _control(_CONTROL_SCRIPT % {"position": "bottomright", "css": "gdcld-legend", "fill": fill})


def build_map(layers, bounds, polygons=None, basemap="None", polygon_tooltip=None):
    """A folium map fitted to `bounds` with RGBA picture layers, landslide polygons and controls.

    Args:
        layers: `(name, rgba picture, shown at start)` in drawing order (already
            in Web Mercator, all with `bounds`).
        bounds: `[[south, west], [north, east]]` in degrees.
        polygons: A GeoJSON dict (WGS84) of landslides, or None.
        basemap: A key of `BASEMAPS`.
        polygon_tooltip: `(fields, aliases)` of polygon properties for the hover tooltip.

    Returns:
        A `folium.Map` with a scale bar, mouse coordinates, a layer list and a legend.
    """
    folium = require("folium", "viewer")
    js, css = leaflet_assets()

    class OfflineMap(folium.Map):
        default_js = [("leaflet", js)]
        default_css = [("leaflet_css", css)]

    fmap = OfflineMap(tiles=None, control_scale=True, prefer_canvas=False, zoom_snap=0.25)
    if BASEMAPS[basemap]:
        url, attribution = BASEMAPS[basemap]
        folium.TileLayer(url, attr=attribution, name=f"Basemap: {basemap}", max_zoom=20,
                         max_native_zoom=19).add_to(fmap)
    for name, picture, shown in layers:
        folium.raster_layers.ImageOverlay(png_url(picture), bounds, name=name, show=shown,
                                          interactive=False).add_to(fmap)
    if polygons is not None and polygons["features"]:
        fields, aliases = polygon_tooltip or (["id"], ["id"])
        folium.GeoJson(polygons, name="Landslides (polygons)",
                       style_function=lambda _: {"color": "#ffff00", "weight": 1.5, "fillOpacity": 0.0},
                       highlight_function=lambda _: {"weight": 3, "fillOpacity": 0.2},
                       tooltip=folium.GeoJsonTooltip(fields=fields, aliases=aliases)).add_to(fmap)
    folium.LayerControl(collapsed=False).add_to(fmap)
    mouse_position().add_to(fmap)
    legend(any(name.startswith("Errors") for name, _, _ in layers)).add_to(fmap)
    fmap.fit_bounds(bounds)
    return fmap


INVENTORY_TOOLTIP = (["id", "area", "mean probability", "scenes"], ["landslide", "area", "mean probability", "scenes"])


def inventory_polygons(inventory):
    """An opened inventory (`gdcld_zoo.event.inventory.read_inventory`) as a GeoJSON dict for `build_map`:
    its polygons (EPSG:4326) with `id`, `area` (readable), `mean probability` and `scenes` for the tooltip."""
    import shapely

    features = []
    for polygon, record in zip(inventory.polygons, inventory.records):
        mean = record.get("probability_mean")
        features.append({"type": "Feature", "geometry": shapely.geometry.mapping(polygon), "properties": {
            "id": record["id"], "area": format_area(record["area_m2"]),
            "mean probability": "-" if mean is None else f"{mean:.2f}",
            "scenes": str(record.get("scenes") or "-").replace(";", ", ")}})
    return {"type": "FeatureCollection", "features": features}
