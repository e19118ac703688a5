import json

import numpy as np
import pytest
from affine import Affine
from rasterio.features import shapes

from gdcld_zoo.scene.area import GroundArea
from gdcld_zoo.scene.vectorize import StripVectorizer, vectorize_mask
from tests.scene.scenes import UTM_TRANSFORM, write_scene


def blobs(height=120, width=90, seed=0):
    """A mask with small blobs, a U whose arms join far below, a ring with a hole and a tall snake."""
    rng = np.random.default_rng(seed)
    mask = rng.random((height // 4, width // 4)) > 0.8
    mask = np.kron(mask, np.ones((4, 4), bool))[:height, :width]
    mask[:, 40:60] = False
    mask[5:60, 42:44] = mask[5:60, 50:52] = True  # the U's arms ...
    mask[58:60, 42:52] = True  # ... joined at the bottom
    mask[70:80, 42:52] = True
    mask[73:77, 45:49] = False  # a ring with a hole
    mask[2:118, 56] = True  # a snake through every strip
    return mask


def features(path):
    return json.loads(path.read_text())["features"]


@pytest.mark.parametrize("chunk_rows", [7, 16, 33])
def test_strip_tracing_equals_tracing_the_whole_mask(tmp_path, chunk_rows):
    mask = blobs()
    area = GroundArea("EPSG:32647", UTM_TRANSFORM, mask.shape[1], mask.shape[0])
    whole = sorted(
        round(abs(sum((1 if i == 0 else -1) * abs(_area(r)) for i, r in enumerate(g["coordinates"]))))
        for g, _ in shapes(mask.astype("uint8"), mask=mask)
    )
    vectorizer = StripVectorizer(tmp_path / "strips.geojson", UTM_TRANSFORM, "EPSG:32647", area, chunk_rows=chunk_rows)
    for row in range(0, mask.shape[0], 5):
        vectorizer.add(mask[row:row + 5], row)
    stats = vectorizer.close()
    got = sorted(f["properties"]["pixels"] for f in features(tmp_path / "strips.geojson"))
    assert got == whole and stats["n_landslides"] == len(whole)
    assert stats["area"] == pytest.approx(mask.sum() * 0.25)
    ring = [f for f in features(tmp_path / "strips.geojson") if f["properties"]["pixels"] == 100 - 16]
    assert ring and len(ring[0]["geometry"]["coordinates"]) == 2  # the hole survives


def _area(ring):
    ring = np.asarray(ring)
    return 0.5 * np.sum(ring[:-1, 0] * ring[1:, 1] - ring[1:, 0] * ring[:-1, 1])


def test_vectorize_mask_reads_a_mask_file_and_drops_small_polygons(tmp_path):
    mask = np.zeros((1, 60, 80), "uint8")
    mask[0, 10:20, 10:30] = 1  # 200 px = 50 m2
    mask[0, 40:42, 60:62] = 1  # 4 px = 1 m2
    mask[0, 50:, :] = 255  # nodata is not a landslide
    path = write_scene(tmp_path / "mask.tif", mask, nodata=255)
    area = GroundArea("EPSG:32647", UTM_TRANSFORM, 80, 60)
    stats = vectorize_mask(path, tmp_path / "out.geojson", area, min_area_m2=2, chunk_rows=16)
    assert stats == {"n_landslides": 1, "n_dropped": 1, "area": 50.0}
    (feature,) = features(tmp_path / "out.geojson")
    exterior = np.asarray(feature["geometry"]["coordinates"][0])
    assert _area(exterior) > 0  # counter-clockwise exterior (RFC 7946)


def test_mercator_polygons_get_ellipsoidal_areas(tmp_path):
    transform = Affine(1.0, 0, 11020000.0, 0, -1.0, 4865942.0)  # Web Mercator near 99 E, 40 N
    mask = np.zeros((50, 50), bool)
    mask[10:40, 10:40] = True
    area = GroundArea("EPSG:3857", transform, 50, 50)
    vectorizer = StripVectorizer(tmp_path / "m.geojson", transform, "EPSG:3857", area, chunk_rows=8)
    vectorizer.add(mask, 0)
    stats = vectorizer.close()
    assert stats["area"] == pytest.approx(area.pixel_area_sum(mask, 0), rel=1e-3)
    assert 900 / stats["area"] > 1.6  # the map's 900 m2 are about 530 m2 on the ground


def test_a_landslide_taller_than_the_buffer_is_split_with_a_warning(tmp_path):
    mask = np.zeros((200, 20), bool)
    mask[:, 5:8] = True  # one polygon the height of the scene
    mask[50:52, 12:14] = True  # and a small one
    area = GroundArea("EPSG:32647", UTM_TRANSFORM, 20, 200)
    vectorizer = StripVectorizer(tmp_path / "s.geojson", UTM_TRANSFORM, "EPSG:32647", area, chunk_rows=10,
                                 max_pixels=20 * 60)
    with pytest.warns(UserWarning, match="split"):
        for row in range(0, 200, 10):
            vectorizer.add(mask[row:row + 10], row)
        stats = vectorizer.close()
    found = features(tmp_path / "s.geojson")
    tall = [f for f in found if f["properties"].get("split")]
    assert len(tall) > 1 and sum(f["properties"]["pixels"] for f in tall) == 600
    assert stats["area"] == pytest.approx(604 * 0.25) and stats["n_landslides"] == len(tall) + 1
