"""SegmentationAugmentation: same transform on image and mask, masks stay 0/1/255."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from gdcld_zoo.data.augmentation import SegmentationAugmentation
from gdcld_zoo.errors import InvalidInputError
from gdcld_zoo.preprocessing import Preprocessing

GEOMETRY_ONLY = dict(zoom=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, blur=0.0, noise=0.0)
PHOTOMETRY_ONLY = dict(flip=False, rotate90=False, zoom=0.0)


def _masks(batch=8, size=32, seed=0):
    """Masks of large blobs with an ignored (255) corner, so interpolation seams are few."""
    rng = np.random.default_rng(seed)
    coarse = (rng.random((batch, size // 8, size // 8)) < 0.4).astype("uint8")
    masks = np.kron(coarse, np.ones((8, 8), "uint8"))
    masks[:, :5, :5] = 255
    return masks[..., None]


def _encoded(masks):
    """Images whose every channel holds the mask's class (0, 1, 2 for 255)."""
    code = np.where(masks == 255, 2, masks).astype("float32")
    return np.repeat(code, 3, axis=-1)


def _decode(images):
    return np.where(np.rint(images[..., :1]) == 2, 255, np.rint(images[..., :1]))


def _dihedral(a):
    """The 8 flips/rotations of a (H, W, C) array."""
    rotations = [np.rot90(a, k, axes=(0, 1)) for k in range(4)]
    return rotations + [r[:, ::-1] for r in rotations]


def test_flips_and_rotations_move_image_and_mask_together():
    masks = _masks(batch=32)
    aug = SegmentationAugmentation(seed=1, **GEOMETRY_ONLY)
    out = aug({"images": _encoded(masks), "segmentation_masks": masks}, training=True)
    images, out_masks = np.asarray(out["images"]), np.asarray(out["segmentation_masks"])
    np.testing.assert_array_equal(_decode(images), out_masks)
    seen = set()
    for before, after in zip(masks, out_masks):
        matches = [k for k, d in enumerate(_dihedral(before)) if np.array_equal(d, after)]
        assert matches, "output is not a flip/rotation of the input"
        seen.add(matches[0])
    assert len(seen) >= 5  # the random transforms cover the group, rotations included


def test_zoom_keeps_masks_exact_and_aligned():
    masks = _masks(batch=8, size=64)
    aug = SegmentationAugmentation(seed=2, **{**GEOMETRY_ONLY, "zoom": 0.3})
    out = aug({"images": _encoded(masks), "segmentation_masks": masks}, training=True)
    out_masks = np.asarray(out["segmentation_masks"])
    assert set(np.unique(out_masks)) <= {0.0, 1.0, 255.0}
    assert not np.array_equal(out_masks, masks)
    agreement = np.mean(_decode(np.asarray(out["images"])) == out_masks)
    assert agreement > 0.95  # only the bilinear image seams around blob edges may differ


def test_photometric_ops_leave_masks_alone_and_respect_the_value_range():
    spec = Preprocessing()
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, (4, 32, 32, 3)).astype("uint8")
    images = spec.apply(raw)
    masks = _masks(batch=4)
    aug = SegmentationAugmentation(spec, seed=3, brightness=0.3, contrast=0.3, noise=0.05, **PHOTOMETRY_ONLY)
    out = aug({"images": images, "segmentation_masks": masks}, training=True)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), masks)
    unit = np.asarray(out["images"]) * np.asarray(spec.std) + np.asarray(spec.mean)
    assert unit.min() >= -1e-5 and unit.max() <= 1 + 1e-5
    assert np.abs(np.asarray(out["images"]) - images).mean() > 0.01


def test_all_ops_keep_mask_values_and_shapes():
    masks = _masks(batch=4, size=64)
    aug = SegmentationAugmentation(seed=4)
    images = np.random.default_rng(1).normal(size=(4, 64, 64, 3)).astype("float32")
    out = aug({"images": images, "segmentation_masks": masks}, training=True)
    assert out["images"].shape == (4, 64, 64, 3) and out["segmentation_masks"].shape == (4, 64, 64, 1)
    assert set(np.unique(np.asarray(out["segmentation_masks"]))) <= {0.0, 1.0, 255.0}
    assert np.isfinite(np.asarray(out["images"])).all()


def test_inference_mode_is_identity():
    masks = _masks(batch=2)
    images = _encoded(masks)
    out = SegmentationAugmentation(seed=5)({"images": images, "segmentation_masks": masks}, training=False)
    np.testing.assert_array_equal(np.asarray(out["images"]), images)
    np.testing.assert_array_equal(np.asarray(out["segmentation_masks"]), masks)


def test_runs_inside_tf_data_with_fresh_randomness_per_batch():
    masks = _masks(batch=8)
    aug = SegmentationAugmentation(seed=6, **GEOMETRY_ONLY)
    ds = tf.data.Dataset.from_tensor_slices((_encoded(masks), masks)).batch(8).repeat(3)
    ds = ds.map(lambda x, y: aug({"images": x, "segmentation_masks": y}))
    batches = [(np.asarray(b["images"]), np.asarray(b["segmentation_masks"])) for b in ds]
    for images, out_masks in batches:
        np.testing.assert_array_equal(_decode(images), out_masks)
    assert not all(np.array_equal(batches[0][1], b[1]) for b in batches[1:])


def test_config_round_trip_and_serialization():
    spec = Preprocessing(bands=(1, 2, 3, 4), band_names=("r", "g", "b", "nir"), dtype="uint16",
                         scale=(1e4,) * 4, mean=(0.1,) * 4, std=(0.2,) * 4)
    aug = SegmentationAugmentation(spec, zoom=0.1, blur=0.0, seed=9)
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(aug))
    assert clone.get_config() == aug.get_config()
    assert clone.preprocessing == spec and clone.saturation == 0.0 and clone.hue == 0.0


def test_colour_ops_need_rgb():
    spec = Preprocessing(bands=(1, 2, 3, 4), band_names=("r", "g", "b", "nir"),
                         scale=(255.0,) * 4, mean=(0.5,) * 4, std=(0.2,) * 4)
    with pytest.raises(InvalidInputError, match="saturation=0.2 needs 3-band RGB"):
        SegmentationAugmentation(spec, saturation=0.2)
    with pytest.raises(InvalidInputError, match="noise=2"):
        SegmentationAugmentation(noise=2)


def test_float32_under_mixed_precision_and_square_check():
    masks = _masks(batch=2)
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        aug = SegmentationAugmentation(seed=7)
        out = aug({"images": _encoded(masks), "segmentation_masks": masks}, training=True)
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert out["images"].dtype == "float32" and set(np.unique(np.asarray(out["segmentation_masks"]))) <= {0, 1, 255}
    with pytest.raises(InvalidInputError, match="needs square images, got 32x48"):
        SegmentationAugmentation()({"images": np.zeros((1, 32, 48, 3), "float32"),
                                    "segmentation_masks": np.zeros((1, 32, 48, 1), "uint8")})
