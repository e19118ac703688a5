import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import rasterio.shutil
import shapely

from gdcld_zoo.event import AreaOfInterest, EventError, MissingExtraError, format_event_summary, map_event
from gdcld_zoo.event.geometry import reproject
from gdcld_zoo.event.inventory import FIELDS
from tests.event.event_scenes import L1, L2, L3, L5, RES, ROWS, TOP, pixel_area_m2, stac_item
from tests.scene.scenes import PixelEngine

# UTM 47N's scale factor 0.9996 at x = 500000: grid areas are 0.08 % smaller than ground areas.
UTM_AREA_SCALE = 0.9996**2


def sources(event):
    return [event["A"], event["B_url"], event["item"]]


def run(event, out, engine=None, **options):
    return map_event(engine or PixelEngine(), sources(event), out, block_tiles=2, progress=False, **options)


@pytest.fixture(scope="module")
def mapped(event, tmp_path_factory):
    out = tmp_path_factory.mktemp("mapped")
    return run(event, out), out


def by_scenes(records):
    return {r["scenes"]: r for r in records}


def test_overlapping_scenes_in_three_crs_give_each_landslide_once(mapped):
    result, out = mapped
    report = result.report
    assert [s["status"] for s in report["scenes"]] == ["done", "done", "done"]
    assert [s["crs"] for s in report["scenes"]][::2] == ["EPSG:32647", "EPSG:4326"]
    c_area = report["scenes"][2]["landslide_area_km2"] * 1e6  # ellipsoidal, from C's own pixels
    union = pixel_area_m2([L1, L2, L5, L3]) / UTM_AREA_SCALE + c_area
    assert report["landslide_count"] == 5
    assert report["landslide_area_km2"] * 1e6 == pytest.approx(union, rel=1e-3)
    per_scene_sum = sum(s["landslide_area_km2"] for s in report["scenes"]) * 1e6
    seen_twice = pixel_area_m2([L2]) + pixel_area_m2([(L5[0], 500120.0, L5[2], L5[3])])
    # scene summaries give UTM grid areas, the inventory ground areas: 0.08 % apart
    assert per_scene_sum - report["landslide_area_km2"] * 1e6 == pytest.approx(seen_twice, rel=3e-3)
    assert sorted(by_scenes(result_records(out))) == ["A", "A;B", "B", "C"]
    merged = [r for r in result_records(out) if r["scenes"] == "A;B"]
    assert [r["n_scenes"] for r in merged] == [2, 2]
    assert sorted(r["area_m2"] for r in merged) == pytest.approx(
        sorted([pixel_area_m2([L2]) / UTM_AREA_SCALE, pixel_area_m2([L5]) / UTM_AREA_SCALE]), rel=1e-3)


def result_records(out):
    meta, _, _, columns = pyogrio.raw.read(out / "inventory.gpkg", layer="landslides")
    return [dict(zip(meta["fields"], values)) for values in zip(*columns)]


def test_inventory_files_attributes_and_report(mapped):
    result, out = mapped
    records = result_records(out)
    assert list(pyogrio.read_info(out / "inventory.gpkg")["fields"]) == list(FIELDS)
    assert [r["id"] for r in records] == [1, 2, 3, 4, 5]
    assert records[0]["area_m2"] == max(r["area_m2"] for r in records)
    for record in records:
        assert record["probability_mean"] == pytest.approx(230 / 255, abs=0.01)
        assert record["probability_max"] == pytest.approx(230 / 255, abs=0.01)
        assert 99.0 < record["centroid_lon"] < 99.003 and 29.82 < record["centroid_lat"] < 29.84
    info = pyogrio.read_info(out / "inventory.geojson")
    assert info["crs"] == "EPSG:4326" and info["features"] == 5
    gpkg_area = shapely.union_all(shapely.from_wkb(pyogrio.raw.read(out / "inventory.gpkg")[2])).area
    assert gpkg_area == pytest.approx(result.report["landslide_area_km2"] * 1e6, rel=1e-6)
    report = json.loads((out / "inventory.json").read_text())
    for key in ("landslide_count", "landslide_area_km2", "mapped_area_km2", "scenes", "model_tag", "threshold",
                "options", "largest_landslide", "area_histogram_m2"):
        assert key in report
    assert report["model_tag"] == "pixel-test" and report["threshold"] == 0.5
    a, b, c = report["scenes"]
    assert (a["resolution_m"], b["resolution_m"]) == (0.5, 0.5) and c["sensor"] == "synthetic-sat"
    assert all(s["timings_s"]["total"] > 0 for s in report["scenes"])
    valid = sum(s["valid_area_km2"] for s in report["scenes"]) * 1e6
    a_b_overlap = 60 * 100 / UTM_AREA_SCALE
    assert report["mapped_area_km2"] * 1e6 < valid - a_b_overlap + 1
    assert report["mapped_area_km2"] * 1e6 > valid - a_b_overlap - 2000  # C shares at most 20 m x 100 m with B
    assert sum(h["count"] for h in report["area_histogram_m2"]) == 5
    assert not (out / ".blocks").exists() and not list(out.glob(".*part*"))


def test_failed_sources_are_reported_and_the_rest_mapped(event, tmp_path):
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00 truncated")
    item = tmp_path / "item.json"
    item.write_text(json.dumps(stac_item("D", "D.tif", (99, 29, 99.1, 29.1), asset="analytic")))
    result = map_event(PixelEngine(), [f"{event['base_url']}/missing.tif", event["A"], f"{event['base_url']}/corrupt.tif",
                                       corrupt, item], tmp_path / "out", progress=False)
    statuses = {s["id"]: (s["status"], s["reason"]) for s in result.report["scenes"]}
    assert statuses["A"] == ("done", None)
    assert statuses["missing"][0] == "failed" and "404" in statuses["missing"][1]
    assert statuses["corrupt"][0] == "failed" and "not a raster" in statuses["corrupt"][1]
    assert statuses["corrupt-2"][0] == "failed" and "not a raster" in statuses["corrupt-2"][1]
    assert statuses["D"][0] == "failed" and "analytic" in statuses["D"][1]
    assert len(result.failed) == 4 and result.report["landslide_count"] == 3


def test_every_source_failing_is_one_error_and_writes_nothing(event, tmp_path):
    with pytest.raises(EventError, match="no source could be mapped: .*404.*no such file"):
        map_event(PixelEngine(), [f"{event['base_url']}/missing.tif", tmp_path / "nope.tif"], tmp_path / "out")
    assert not (tmp_path / "out").exists()


class Interrupted(PixelEngine):
    """Stops the run as a kill would (KeyboardInterrupt is not a scene failure) after `calls` batches."""

    def __init__(self, stop_after):
        super().__init__()
        self.stop_after = stop_after

    def predict(self, raw):
        if self.calls >= self.stop_after:
            raise KeyboardInterrupt
        return super().predict(raw)


def test_a_killed_run_restarts_with_the_scenes_it_did_not_finish(event, tmp_path):
    out = tmp_path / "out"
    first = PixelEngine()
    run(event, tmp_path / "reference", first)
    a_calls = 9  # A: 3 x 3 blocks of 2 x 2 tiles, one batch each
    with pytest.raises(KeyboardInterrupt):
        run(event, out, Interrupted(a_calls + 2))
    assert sorted(p.name for p in out.iterdir()) == ["A_landslides.geojson", "A_mask.tif", "A_prob.tif",
                                                     "A_summary.json"]
    (out / ".blocks").mkdir()  # what a SIGKILL would leave behind
    (out / ".blocks" / "B.0.prob.npy").write_bytes(b"stale")
    (out / ".B_mask.tif.part").write_bytes(b"stale")
    stamp = os.stat(out / "A_mask.tif").st_mtime_ns
    again = PixelEngine()
    result = run(event, out, again)
    assert again.calls == first.calls - a_calls
    assert os.stat(out / "A_mask.tif").st_mtime_ns == stamp
    assert result.report["scenes"][0]["reason"].startswith("finished by an earlier run")
    assert result.report["landslide_count"] == 5 and not (out / ".blocks").exists()
    (out / "B_mask.tif").write_bytes((out / "B_mask.tif").read_bytes()[:200])  # damaged output: redone
    damaged = PixelEngine()
    result = run(event, out, damaged)
    assert 0 < damaged.calls < first.calls and result.report["scenes"][1]["reason"] is None
    changed = PixelEngine()
    run(event, out, changed, threshold=0.6)  # other arguments: nothing is reused
    assert changed.calls == first.calls


def test_a_scene_file_replaced_under_its_name_is_mapped_again(event, tmp_path):
    folder = tmp_path / "scenes"
    folder.mkdir()
    scene = folder / "A.tif"
    scene.write_bytes(event["A"].read_bytes())
    out = tmp_path / "out"
    first = PixelEngine()
    map_event(first, [scene], out, progress=False)
    again = PixelEngine()
    map_event(again, [scene], out, progress=False)
    assert again.calls == 0
    scene.write_bytes(event["A"].read_bytes())  # a new download of the same scene: same name, new file
    os.utime(scene, ns=(os.stat(scene).st_atime_ns, os.stat(scene).st_mtime_ns + 10**9))
    redone = PixelEngine()
    map_event(redone, [scene], out, progress=False)
    assert redone.calls == first.calls


def test_weights_files_enter_the_restart_fingerprint(tmp_path):
    from gdcld_zoo.event.mapping import file_identity

    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / "best.weights.h5").write_bytes(b"epoch 10")
    (run_dir / ".lock").write_bytes(b"1234")
    before = file_identity(run_dir)
    assert [name for name, _, _ in before] == ["best.weights.h5"]
    (run_dir / "best.weights.h5").write_bytes(b"epoch 20 weights")  # retrained into the same folder
    assert file_identity(run_dir) != before
    assert file_identity("demo") is None and file_identity(PixelEngine()) is None


def write_aoi(path, utm_box, crs="EPSG:3857"):
    polygon = reproject(shapely.segmentize(shapely.box(*utm_box), 5.0), "EPSG:32647", crs)
    pyogrio.raw.write(path, shapely.to_wkb(np.array([polygon], dtype=object)), [np.array([1])], ["id"],
                      layer="aoi", driver="GPKG" if str(path).endswith(".gpkg") else "GeoJSON",
                      geometry_type="Polygon", crs=crs)
    return path


def test_aoi_limits_windows_clips_outputs_and_skips_scenes(event, tmp_path):
    aoi = write_aoi(tmp_path / "aoi.gpkg", (500000.0, TOP - ROWS * RES, 500050.0, TOP))
    engine = PixelEngine()
    result = run(event, tmp_path / "out", engine, aoi=aoi)
    report = result.report
    assert [s["status"] for s in report["scenes"]] == ["done", "skipped", "skipped"]
    assert report["scenes"][1]["reason"] == "the scene does not touch the AOI"
    assert report["landslide_count"] == 1 and report["largest_landslide"]["scenes"] == "A"
    assert report["landslide_area_km2"] * 1e6 == pytest.approx(pixel_area_m2([L1]) / UTM_AREA_SCALE, rel=1e-3)
    a = report["scenes"][0]
    assert a["tiles_predicted"] == 15  # of 25: the tile columns reaching x < 500050
    with rasterio.open(tmp_path / "out" / "A_prob.tif") as dataset:
        prob = dataset.read(1)
    assert np.all(prob[:, 100:] == 255) and np.all(prob[50:, 40:100] != 255)
    inside = 100 * ROWS - 465  # A's valid pixels west of x = 500050 (its nodata corner holds 465)
    assert report["mapped_area_km2"] * 1e6 == pytest.approx(inside * RES**2 / UTM_AREA_SCALE, rel=1e-3)
    assert AreaOfInterest.read(aoi).crs == "EPSG:3857"


def test_bad_aoi_and_scheduler_are_errors_before_any_work(event, tmp_path):
    (tmp_path / "points.geojson").write_text(json.dumps({"type": "FeatureCollection", "features": [
        {"type": "Feature", "properties": {}, "geometry": {"type": "Point", "coordinates": [99, 29]}}]}))
    with pytest.raises(EventError, match="no polygon"):
        map_event(PixelEngine(), sources(event), tmp_path / "out", aoi=tmp_path / "points.geojson")
    with pytest.raises(EventError, match="no such file"):
        map_event(PixelEngine(), sources(event), tmp_path / "out", aoi=tmp_path / "nope.geojson")
    with pytest.raises(EventError, match="processes:N"):
        map_event(PixelEngine(), sources(event), tmp_path / "out", scheduler="threads")
    assert not (tmp_path / "out").exists()


def test_event_summary_text(mapped):
    text = format_event_summary(mapped[0].report)
    assert text.startswith("Event: 5 landslides, 0.00073")
    assert "scenes: 3 done, 0 skipped, 0 failed (weights pixel-test, threshold 0.5)" in text
    assert "Largest landslide: 225." in text and "(seen by A;B)" in text
    assert "100 - 1,000" in text and "5  ####" in text


def test_a_cluster_without_dask_names_the_extra(event, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(MissingExtraError, match=r'pip install "gdcld-zoo\[distributed\]"'):
        map_event("demo", [event["A"]], tmp_path / "out", scheduler="processes:2")
    monkeypatch.delitem(sys.modules, "distributed")
    with pytest.raises(EventError, match="weight tag"):
        map_event(PixelEngine(), [event["A"]], tmp_path / "out", scheduler="processes:2")
    assert not (tmp_path / "out").exists()  # checked before any work


KILLED_RUN = """
import sys, time
from gdcld_zoo.event import map_event
from tests.scene.scenes import PixelEngine

class Slow(PixelEngine):
    def predict(self, raw):
        time.sleep(0.3)
        return super().predict(raw)

map_event(Slow(), sys.argv[2:], sys.argv[1], block_tiles=2, progress=False)
"""


def test_a_run_killed_with_sigkill_restarts_where_it_stopped(event, tmp_path):
    out = tmp_path / "out"
    process = subprocess.Popen([sys.executable, "-c", KILLED_RUN, str(out), *map(str, sources(event))],
                               env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])})
    deadline = time.monotonic() + 120
    while not (out / "A_summary.json").exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert (out / "A_summary.json").exists() and not (out / "B_summary.json").exists()
    engine = PixelEngine()
    result = run(event, out, engine)
    assert [s["reason"] is not None for s in result.report["scenes"]] == [True, False, False]
    assert engine.calls == 13  # B and C only (A: 9 batches)
    assert result.report["landslide_count"] == 5 and not (out / ".blocks").exists()


def test_a_vrt_source_is_mapped(event, tmp_path):
    vrt = tmp_path / "A_mosaic.vrt"
    rasterio.shutil.copy(event["A"], vrt, driver="VRT")
    result = map_event(PixelEngine(), [vrt], tmp_path / "out", progress=False)
    assert result.report["scenes"][0]["id"] == "A_mosaic" and result.report["landslide_count"] == 3
