"""Tiny synthetic GDCLD datasets written by the generator."""

import shutil

import pytest

from gdcld_zoo.data.synthetic import write_synthetic_dataset

TILE = 96


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory):
    """A read-only GDCLD-layout dataset: 8 train / 4 val tiles of 96 px + manifest.csv."""
    root = tmp_path_factory.mktemp("gdcld") / "synthetic"
    return write_synthetic_dataset(root, n_train=8, n_val=4, tile_size=TILE, seed=7)


@pytest.fixture
def dataset_copy(synthetic_root, tmp_path):
    """A private copy of `synthetic_root` that a test may damage."""
    return shutil.copytree(synthetic_root, tmp_path / "copy")
