"""Fixtures of the reliability tests: an isolated gdcld_zoo home and a folder nobody may write."""

import os
from pathlib import Path

import pytest

from gdcld_zoo.weights import sources


@pytest.fixture(autouse=True)
def isolated_home(tmp_path, monkeypatch):
    monkeypatch.setenv(sources.ENV_HOME, str(tmp_path / "home"))


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder that cannot be written: mode 0555, or `/sys` when running as root (which ignores modes)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        folder = Path("/sys")  # sysfs refuses new files, even to root
    yield folder
    (tmp_path / "read-only").chmod(0o755)
