"""The CLI's error boundary: expected failures are one line, bugs say how to see the traceback (--debug)."""

import errno
import subprocess
import sys

import pytest

from gdcld_zoo import files
from gdcld_zoo.cli import main
from gdcld_zoo.cli import models as models_command
from tests.reliability.bad_files import assert_one_line_error


def broken_run(args):
    raise KeyError("a bug")


def test_a_bug_is_one_line_that_points_to_debug(monkeypatch, capsys):
    monkeypatch.setattr(models_command, "run", broken_run)
    code = main(["models"])
    assert_one_line_error(code, capsys.readouterr().err, "gdcld-zoo models: error: unexpected KeyError",
                          "re-run with --debug for the traceback")


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(monkeypatch, where):
    monkeypatch.setattr(models_command, "run", broken_run)
    with pytest.raises(KeyError, match="a bug"):
        main(["--debug", "models"] if where == "before" else ["models", "--debug"])


def test_a_full_disk_is_one_line_naming_the_file_and_nothing_is_left(tmp_path, monkeypatch, capsys):
    weights = tmp_path / "w.weights.h5"
    from gdcld_zoo.registry import build_model

    build_model("unet_tiny", input_shape=(None, None, 3)).save_weights(weights)

    def full(temporary, path):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(files, "publish", full)
    code = main(["weights", "add", str(weights), "--tag", "unet_tiny.full", "--model", "unet_tiny"])
    registry = tmp_path / "home" / "registry.json"
    assert_one_line_error(code, capsys.readouterr().err, "gdcld-zoo weights add: error:", str(registry),
                          "No space left on device", "the disk is full")
    assert not list((tmp_path / "home").glob(".*part*"))


def test_a_real_process_prints_one_line_and_exits_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "gdcld_zoo", "data", "check", str(tmp_path / "nowhere")],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("gdcld-zoo data check: error:")
