"""Event fixtures: the synthetic event written once per module, B served over HTTP."""

import json

import pytest

from tests.event.event_scenes import serve, stac_item, write_event


@pytest.fixture(scope="module")
def event(tmp_path_factory):
    """Paths of the event's scenes; `B_url` is B over HTTP (range requests) and `base_url` the server."""
    folder = tmp_path_factory.mktemp("event")
    paths = write_event(folder)
    served = folder / "served"
    served.mkdir()
    paths["B"].rename(served / "B.tif")
    (served / "corrupt.tif").write_bytes(b"II*\x00 this is not a GeoTIFF")
    (served / "b_item.json").write_text(json.dumps(stac_item("B", "B.tif", (98.9, 29.7, 99.1, 29.9))))
    server, base = serve(served)
    yield {**paths, "B_url": f"{base}/B.tif", "base_url": base, "folder": folder}
    server.kill()
