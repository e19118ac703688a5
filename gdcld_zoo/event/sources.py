"""What an event run maps: local rasters, folders, VRTs, (C)OG URLs and STAC items, resolved to scenes.

`resolve_sources` turns what the user typed into one `EventSource` per scene:

* a local raster (GeoTIFF, VRT, any format GDAL reads) is used as is;
* a folder gives every raster file directly inside it (sorted; `*_label.*` skipped);
* an `http(s)://` URL to a raster is read window by window through GDAL's
  `/vsicurl/` (HTTP range requests, never downloaded whole), as rasterio opens it;
* a STAC Item or ItemCollection (`.json`, local or URL) gives one scene per item,
  the asset named `asset` (default `visual`), read with pystac; relative asset
  hrefs are resolved against the JSON's own location.

A source that cannot be resolved (missing file, unreachable or invalid STAC
JSON, missing asset) becomes an `EventSource` with `error` set, so one bad
source is reported and the others are still mapped. Scene ids (the output
file stems) are the file stems or STAC item ids, made unique.

Example:
>>> [s.id for s in resolve_sources(["https://example.com/cogs/B.tif"])]
['B']
>>> resolve_sources(["https://example.com/cogs/B.tif"])[0].uri
'/vsicurl/https://example.com/cogs/B.tif'
"""

import dataclasses
from pathlib import Path
from urllib.parse import urlparse

from gdcld_zoo.errors import GdcldZooError
from gdcld_zoo.lazy_imports import require
from gdcld_zoo.scene.inputs import LABEL_SUFFIX, RASTER_SUFFIXES

DEFAULT_ASSET = "visual"
# GDAL settings for rasters behind URLs: no directory listing on open, retries on
# transient HTTP errors, a block cache for the ranges read.
REMOTE_ENV = {"GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR", "GDAL_HTTP_MAX_RETRY": 3,
              "GDAL_HTTP_RETRY_DELAY": 1, "VSI_CACHE": True}
_VSI_PREFIXES = {"http": "/vsicurl/", "https": "/vsicurl/", "s3": "/vsis3/", "gs": "/vsigs/"}


class EventError(GdcldZooError):
    """An event run that cannot start: no usable source, bad AOI or scheduler."""


@dataclasses.dataclass
class EventSource:
    """One scene of an event.

    Attributes:
        id: Unique scene id, the stem of its output files.
        origin: What the user gave (path, URL, STAC JSON with `#item/asset`).
        uri: What rasterio opens (a path, or `/vsicurl/https://...`); None when unresolved.
        sensor: Platform / constellation / instrument from STAC, when known.
        error: Why the source cannot be used (None when it can).
    """

    id: str
    origin: str
    uri: str = None
    sensor: str = None
    error: str = None


def is_url(text):
    return urlparse(str(text)).scheme in _VSI_PREFIXES


def gdal_path(href):
    """The path rasterio opens for a local path or a URL (`/vsicurl/` for http(s))."""
    scheme = urlparse(str(href)).scheme
    if scheme in _VSI_PREFIXES:
        prefix = _VSI_PREFIXES[scheme]
        return prefix + href if prefix == "/vsicurl/" else prefix + href.split("://", 1)[1]
    return str(Path(href).expanduser().resolve())


def _stem(href):
    name = urlparse(str(href)).path.rstrip("/").rsplit("/", 1)[-1] if is_url(href) else Path(href).name
    return name.split(".")[0] or "scene"


def resolve_sources(specs, asset=DEFAULT_ASSET):
    """One `EventSource` per scene named by `specs` (paths, folders, URLs, STAC JSON).

    Unusable sources come back with `error` set; the order of `specs` is kept.
    """
    found = []
    for spec in specs:
        spec = str(spec)
        kind = source_kind(spec)
        if kind == "stac":
            found.extend(_stac_sources(spec, asset))
        elif kind == "url":
            found.append(EventSource(_stem(spec), spec, gdal_path(spec)))
        elif kind == "gdal":
            found.append(EventSource(_stem(spec), spec, spec))
        elif kind == "folder":
            rasters = sorted(p for p in Path(spec).iterdir() if p.is_file() and not p.name.startswith(".")
                             and p.suffix.lower() in RASTER_SUFFIXES and not p.stem.endswith(LABEL_SUFFIX))
            if not rasters:
                found.append(EventSource(_stem(spec), spec, error=f"{spec}: folder without raster files "
                                         f"({', '.join(RASTER_SUFFIXES)})."))
            found.extend(EventSource(p.stem, str(p), gdal_path(p)) for p in rasters)
        elif kind == "missing":
            found.append(EventSource(_stem(spec), spec, error=f"{spec}: no such file or folder."))
        else:
            found.append(EventSource(Path(spec).stem, spec, gdal_path(spec)))
    _make_ids_unique(found)
    return found


def source_kind(spec):
    """What a source names: `"stac"` (a `.json` file or URL), `"url"`, `"gdal"` (a `/vsi...` path,
    opened as is), `"folder"`, `"missing"` or `"file"` (a local raster).

    The one classification the CLI's checks and `resolve_sources` share.

    Example:
    >>> [source_kind(s) for s in ["items.json", "s3://b/c.tif", "/vsizip/a.zip/b.tif", "/no/such.tif"]]
    ['stac', 'url', 'gdal', 'missing']
    """
    spec = str(spec)
    if spec.lower().split("?")[0].endswith(".json"):
        return "stac"
    if is_url(spec):
        return "url"
    if spec.startswith("/vsi"):
        return "gdal"
    path = Path(spec)
    return "folder" if path.is_dir() else "file" if path.exists() else "missing"


def _make_ids_unique(sources):
    seen = {}
    for source in sources:
        count = seen.get(source.id, 0)
        seen[source.id] = count + 1
        if count:
            source.id = f"{source.id}-{count + 1}"


def _stac_sources(href, asset):
    """Scenes of a STAC Item or ItemCollection file or URL."""
    pystac = require("pystac", "stac")
    try:
        data = pystac.StacIO.default().read_json(href)
    except Exception as error:  # pystac wraps HTTP errors in a bare Exception; bad JSON is a ValueError
        cause = f" ({error.__cause__})" if error.__cause__ else ""
        return [EventSource(_stem(href), href, error=f"{href}: cannot read the STAC JSON: {error}{cause}")]
    kind = data.get("type") if isinstance(data, dict) else None
    try:
        if kind == "Feature":
            items = [pystac.Item.from_dict(data)]
        elif kind == "FeatureCollection":
            items = list(pystac.ItemCollection.from_dict(data))
        else:
            raise ValueError(f"type {kind!r}; expected a STAC Item (Feature) or ItemCollection (FeatureCollection)")
    except (ValueError, KeyError, TypeError) as error:
        return [EventSource(_stem(href), href, error=f"{href}: not a STAC Item or ItemCollection: {error}")]
    base = href if is_url(href) else str(Path(href).expanduser().resolve())
    return [_item_source(item, href, base, asset) for item in items]


def _item_source(item, href, base, asset):
    origin = f"{href}#{item.id}/{asset}"
    if asset not in item.assets:
        names = ", ".join(sorted(item.assets)) or "none"
        return EventSource(item.id, origin, error=f"{href}: item {item.id!r} has no asset {asset!r}; its assets are "
                           f"{names} (choose one with --asset).")
    if item.get_self_href() is None:
        item.set_self_href(base)
    target = item.assets[asset].get_absolute_href()
    props = item.properties
    sensor = props.get("constellation") or props.get("platform")
    instruments = props.get("instruments")
    if instruments:
        sensor = f"{sensor or ''} {'/'.join(instruments)}".strip()
    return EventSource(item.id, origin, gdal_path(target), sensor=sensor)
