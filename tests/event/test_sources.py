import json

import pytest

from gdcld_zoo.event import sources
from gdcld_zoo.errors import MissingExtraError
from gdcld_zoo.event.sources import resolve_sources, source_kind
from tests.event.event_scenes import stac_item


def test_local_files_folders_and_urls(tmp_path):
    folder = tmp_path / "scenes"
    folder.mkdir()
    for name in ("b.tif", "a.vrt", "a_label.tif", "notes.txt", ".hidden.tif"):
        (folder / name).write_bytes(b"x")
    single = tmp_path / "one.tif"
    single.write_bytes(b"x")
    found = resolve_sources([single, folder, "https://example.com/cogs/one.tif?sig=1", "s3://bucket/c.tif"])
    assert [s.id for s in found] == ["one", "a", "b", "one-2", "c"]
    assert found[4].uri == "/vsis3/bucket/c.tif"
    assert found[1].uri == str((folder / "a.vrt").resolve())
    assert found[3].uri == "/vsicurl/https://example.com/cogs/one.tif?sig=1"
    assert all(s.error is None for s in found)


def test_missing_paths_and_empty_folders_are_reported_not_raised(tmp_path):
    (tmp_path / "empty").mkdir()
    missing, empty = resolve_sources([tmp_path / "nope.tif", tmp_path / "empty"])
    assert "no such file" in missing.error and missing.uri is None
    assert "folder without raster files" in empty.error


def test_stac_item_and_item_collection_resolve_relative_assets(tmp_path):
    item = stac_item("scene-1", "data/scene-1.tif", (99, 29, 99.1, 29.1))
    (tmp_path / "item.json").write_text(json.dumps(item))
    other = stac_item("scene-2", "https://example.com/scene-2.tif", (99, 29, 99.1, 29.1))
    other["properties"].update(constellation="planetscope", instruments=["PSB.SD"])
    (tmp_path / "items.json").write_text(json.dumps({"type": "FeatureCollection", "features": [item, other]}))
    one, = resolve_sources([tmp_path / "item.json"])
    assert (one.id, one.uri, one.sensor) == ("scene-1", str(tmp_path / "data" / "scene-1.tif"), "synthetic-sat")
    first, second = resolve_sources([tmp_path / "items.json"])
    assert first.uri == str(tmp_path / "data" / "scene-1.tif")
    assert (second.uri, second.sensor) == ("/vsicurl/https://example.com/scene-2.tif", "planetscope PSB.SD")


def test_missing_stac_asset_lists_the_assets(tmp_path):
    item = stac_item("scene-1", "scene-1.tif", (99, 29, 99.1, 29.1), asset="analytic")
    (tmp_path / "item.json").write_text(json.dumps(item))
    source, = resolve_sources([tmp_path / "item.json"])
    assert "no asset 'visual'" in source.error and "analytic" in source.error and "--asset" in source.error
    assert resolve_sources([tmp_path / "item.json"], asset="analytic")[0].error is None


def test_unreadable_stac_json_is_reported(tmp_path, event):
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "catalog.json").write_text(json.dumps({"type": "Catalog", "id": "x"}))
    bad, catalog, remote = resolve_sources([tmp_path / "bad.json", tmp_path / "catalog.json",
                                            f"{event['base_url']}/missing.json"])
    assert "cannot read the STAC JSON" in bad.error
    assert "not a STAC Item or ItemCollection" in catalog.error
    assert "cannot read the STAC JSON" in remote.error and "404" in remote.error


def test_stac_item_over_http_points_at_vsicurl(event):
    source, = resolve_sources([f"{event['base_url']}/b_item.json"])
    assert source.uri == f"/vsicurl/{event['base_url']}/B.tif"


def test_missing_extra_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "pystac", None)
    with pytest.raises(MissingExtraError, match=r'pip install "gdcld-zoo\[stac\]"'):
        sources._stac_sources("item.json", "visual")


def test_gdal_virtual_paths_are_opened_as_typed(tmp_path):
    scene = tmp_path / "a.tif"
    scene.write_bytes(b"x")
    spec = f"/vsizip/{tmp_path / 'scenes.zip'}/a.tif"
    source, = resolve_sources([spec])
    assert (source.id, source.uri, source.error) == ("a", spec, None)
    assert [source_kind(s) for s in (spec, tmp_path, scene, tmp_path / "b.tif")] == ["gdal", "folder", "file", "missing"]
