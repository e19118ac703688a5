"""Synthetic GDCLD-like data: georeferenced RGB terrain with landslide scars.

GDCLD tiles (Fang et al., 2024, section 3) are 8-bit RGB GeoTIFFs of vegetated
mountain terrain after earthquakes, with fresh landslide scars (bright,
elongated, irregular bare-soil blobs) labelled 1 in a binary mask, plus
negative tiles with look-alikes such as rivers and roads. This module draws such
scenes from a seed so that tests, benchmarks and the demo run without the real
data: textured vegetation (multi-octave value noise), an optional river and road
as negatives, and teardrop-shaped scars with noisy outlines. Tiles are written in
a projected metric CRS (UTM zone 47N, where Luding and Jiuzhaigou lie) with a
north-up transform at the requested resolution.

Example:
>>> import tempfile
>>> root = write_synthetic_dataset(tempfile.mkdtemp(), n_train=2, n_val=1, tile_size=64, seed=0)
>>> sorted(p.name for p in root.iterdir())
['manifest.csv', 'train', 'val']
"""

from pathlib import Path

import numpy as np
import rasterio
from affine import Affine

from gdcld_zoo.data.layout import TilePair, write_manifest
from gdcld_zoo.files import atomic_path

DEFAULT_CRS = "EPSG:32647"
# (event, sensor, resolution_m) cycled over the synthetic tiles, after paper Table 3.
SYNTHETIC_SOURCES = (
    ("Luding 2022", "UAV", 0.2),
    ("Luding 2022", "PlanetScope", 3.0),
    ("Hokkaido 2018", "Map World", 0.5),
    ("Jiuzhaigou 2017", "UAV", 0.2),
)


def _upsample(grid, height, width):
    """Bilinear upsampling of a small 2-D grid to (height, width)."""
    gh, gw = grid.shape
    y = np.linspace(0, gh - 1, height, dtype="float32")
    x = np.linspace(0, gw - 1, width, dtype="float32")
    y0 = np.minimum(np.floor(y).astype(int), gh - 2)
    x0 = np.minimum(np.floor(x).astype(int), gw - 2)
    fy = (y - y0)[:, None]
    fx = (x - x0)[None, :]
    top = grid[y0][:, x0] * (1 - fx) + grid[y0][:, x0 + 1] * fx
    bottom = grid[y0 + 1][:, x0] * (1 - fx) + grid[y0 + 1][:, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def value_noise(rng, height, width, octaves=5, base_cells=4, persistence=0.55):
    """Multi-octave value noise in [0, 1] of shape (height, width), float32."""
    total = np.zeros((height, width), "float32")
    amplitude, norm = 1.0, 0.0
    for octave in range(octaves):
        cells = base_cells * 2**octave
        if cells > max(height, width):
            break
        grid = rng.random((cells + 2, cells + 2), dtype="float32")
        total += amplitude * _upsample(grid, height, width)
        norm += amplitude
        amplitude *= persistence
    total /= norm
    lo, hi = total.min(), total.max()
    return (total - lo) / max(hi - lo, 1e-6)


def _scar(rng, yy, xx, height, width, roughness):
    """Boolean mask of one teardrop-shaped scar whose outline `roughness` (in [0, 1]) frays."""
    size = min(height, width, 512)
    length = rng.uniform(0.08, 0.25) * size
    breadth = length * rng.uniform(0.2, 0.45)
    cy, cx = rng.uniform(0.1, 0.9) * height, rng.uniform(0.1, 0.9) * width
    angle = rng.uniform(0, np.pi)
    u = (xx - cx) * np.cos(angle) + (yy - cy) * np.sin(angle)
    v = -(xx - cx) * np.sin(angle) + (yy - cy) * np.cos(angle)
    along = u / length  # -1 (crown, wide) .. 1 (toe, narrow)
    half_width = breadth * np.clip(0.75 - 0.45 * along, 0.15, None)
    return along**2 + (v / half_width) ** 2 < 1.0 + 0.8 * (roughness - 0.5)


def synthetic_scene(height, width, seed=0, n_scars=None, river=None, road=None):
    """Draw one RGB scene and its landslide mask.

    Args:
        height, width: Size in pixels.
        seed: Seed of the numpy Generator; equal seeds give equal scenes.
        n_scars: Number of landslide scars; None draws 1-5 per 512x512 pixels.
        river, road: Draw a river / a road (negatives); None decides at random.

    Returns:
        image: uint8 (3, height, width), bands red, green, blue.
        mask: uint8 (height, width), 1 on scars, 0 elsewhere.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype("float32")
    texture = value_noise(rng, height, width)
    fine = rng.random((height, width), dtype="float32")
    shade = value_noise(rng, height, width, octaves=3, base_cells=2)
    # Vegetated slopes: dark green with lighter patches and hill shading.
    red = 35 + 45 * texture + 10 * fine
    green = 60 + 70 * texture + 12 * fine
    blue = 30 + 35 * texture + 8 * fine
    rgb = np.stack([red, green, blue]) * (0.7 + 0.5 * shade)

    area_scale = max(1.0, height * width / 512**2)  # scars keep their size on large scenes
    if river if river is not None else rng.random() < 0.4:
        centre = rng.uniform(0.2, 0.8) * width
        wave = centre + 0.08 * width * np.sin(2 * np.pi * yy / (height * rng.uniform(0.5, 1.5)))
        inside = np.abs(xx - wave) < rng.uniform(0.02, 0.05) * width
        rgb[:, inside] = np.array([70, 85, 90], "float32")[:, None] + 15 * fine[inside]
    if road if road is not None else rng.random() < 0.4:
        slope, offset = rng.uniform(-1, 1), rng.uniform(0.2, 0.8) * height
        inside = np.abs(yy - (offset + slope * (xx - width / 2))) < max(1.0, 0.006 * height)
        rgb[:, inside] = np.array([150, 145, 135], "float32")[:, None]

    if n_scars is None:
        n_scars = int(rng.integers(1, 6) * area_scale)
    mask = np.zeros((height, width), bool)
    roughness = value_noise(rng, height, width, octaves=3, base_cells=max(4, min(height, width) // 32))
    for _ in range(n_scars):
        mask |= _scar(rng, yy, xx, height, width, roughness)
    soil = np.array([185, 165, 140], "float32")[:, None]
    rgb[:, mask] = soil * (0.8 + 0.25 * texture[mask]) + 20 * (fine[mask] - 0.5)
    image = np.clip(rgb, 0, 255).astype("uint8")
    return image, mask.astype("uint8")


def _profile(height, width, count, dtype, transform, crs, compress):
    profile = {
        "driver": "GTiff",
        "height": height,
        "width": width,
        "count": count,
        "dtype": dtype,
        "crs": crs,
        "transform": transform,
    }
    if compress:
        profile["compress"] = compress
    if height >= 256 and width >= 256:
        profile.update(tiled=True, blockxsize=256, blockysize=256)
    return profile


def write_geotiff(path, array, transform, crs=DEFAULT_CRS, compress="deflate", nodata=None):
    """Write a (bands, H, W) or (H, W) array as a GeoTIFF, atomically."""
    path = Path(path)
    array = array[None] if array.ndim == 2 else array
    profile = _profile(array.shape[1], array.shape[2], array.shape[0], array.dtype.name, transform, crs, compress)
    if nodata is not None:
        profile["nodata"] = nodata
    with atomic_path(path) as temporary, rasterio.open(temporary, "w", **profile) as dst:
        dst.write(array)
    return path


def write_synthetic_scene(
    path,
    height,
    width,
    label_path=None,
    seed=0,
    resolution_m=0.5,
    crs=DEFAULT_CRS,
    origin=(500000.0, 3300000.0),
    n_scars=None,
    compress="deflate",
):
    """Write one synthetic scene and its label as GeoTIFFs.

    Args:
        path: Image destination (.tif).
        height, width: Scene size in pixels (any size; large scenes are tiled).
        label_path: Label destination; defaults to `<stem>_label.tif` next to it.
        seed: Seed; equal seeds give identical files.
        resolution_m: Pixel size in metres.
        crs: A projected CRS in metres.
        origin: (x, y) of the upper-left corner in CRS units.
        n_scars: Number of scars; None scales with the area.
        compress: GeoTIFF compression ("deflate", "lzw", None).

    Returns:
        (image_path, label_path) as Paths.
    """
    path = Path(path)
    label_path = Path(label_path) if label_path else path.with_name(f"{path.stem}_label.tif")
    image, mask = synthetic_scene(height, width, seed=seed, n_scars=n_scars)
    transform = Affine(resolution_m, 0.0, origin[0], 0.0, -resolution_m, origin[1])
    write_geotiff(path, image, transform, crs, compress)
    write_geotiff(label_path, mask, transform, crs, compress)
    return path, label_path


def write_synthetic_dataset(
    root,
    n_train,
    n_val,
    tile_size,
    seed=0,
    n_test=0,
    positive_fraction=0.75,
    manifest=True,
    compress="deflate",
    crs=DEFAULT_CRS,
):
    """Write a GDCLD-layout folder of synthetic tiles.

    Layout: `root/{train,val,test}/{images,labels}/tile_NNNNN.tif` (test only
    when `n_test > 0`), each tile georeferenced on its own cell of a UTM grid,
    and (with `manifest=True`) `root/manifest.csv` with columns
    `image,label,event,sensor,resolution_m,split`.

    Args:
        root: Destination folder (created).
        n_train, n_val, n_test: Tiles per split.
        tile_size: Tile height and width in pixels.
        seed: Seed; equal seeds give identical datasets.
        positive_fraction: Share of tiles that contain scars; the rest are
            negatives (terrain, rivers and roads only).
        manifest: Also write `manifest.csv`.
        compress: GeoTIFF compression ("deflate", "lzw", None).
        crs: Projected CRS of the tiles.

    Returns:
        The root Path.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    pairs, splits = [], []
    index = 0
    for split, count in (("train", n_train), ("val", n_val), ("test", n_test)):
        for i in range(count):
            event, sensor, resolution = SYNTHETIC_SOURCES[index % len(SYNTHETIC_SOURCES)]
            positive = rng.random() < positive_fraction
            image, mask = synthetic_scene(
                tile_size, tile_size, seed=int(rng.integers(2**31)), n_scars=None if positive else 0
            )
            x0 = 500000.0 + (index % 64) * tile_size * resolution
            y0 = 3300000.0 - (index // 64) * tile_size * resolution
            transform = Affine(resolution, 0.0, x0, 0.0, -resolution, y0)
            name = f"tile_{i:05d}.tif"
            image_path = write_geotiff(root / split / "images" / name, image, transform, crs, compress)
            label_path = write_geotiff(root / split / "labels" / name, mask, transform, crs, compress)
            pairs.append(TilePair(image_path, label_path, event, sensor, resolution))
            splits.append(split)
            index += 1
    if manifest:
        write_manifest(root / "manifest.csv", pairs, splits)
    return root
