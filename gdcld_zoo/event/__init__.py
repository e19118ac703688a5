"""Event mapping: many scenes (local, COG URLs, STAC items) in, one deduplicated landslide inventory out.

* `map_event(weights, sources, out_dir, aoi=None, scheduler=None, ...)`: per-scene
  maps as `predict_scene` writes them, plus `inventory.gpkg`, `inventory.geojson`
  and `inventory.json`; in process or on a Dask cluster; restartable.
* `resolve_sources`, `AreaOfInterest`, `build_inventory`: the steps on their own.

Needs the `event` extra (shapely, pyogrio, pystac); clusters the `distributed` extra.
"""

from gdcld_zoo.event.aoi import AreaOfInterest
from gdcld_zoo.event.inventory import Inventory, build_inventory, write_inventory
from gdcld_zoo.event.mapping import EventResult, format_event_summary, map_event
from gdcld_zoo.errors import MissingExtraError
from gdcld_zoo.event.sources import EventError, EventSource, resolve_sources, source_kind

__all__ = [
    "AreaOfInterest",
    "EventError",
    "EventResult",
    "EventSource",
    "Inventory",
    "MissingExtraError",
    "build_inventory",
    "format_event_summary",
    "map_event",
    "resolve_sources",
    "source_kind",
    "write_inventory",
]
