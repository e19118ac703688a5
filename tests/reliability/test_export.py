"""`gdcld-zoo export` into places that cannot take the file, and the permissions of what it writes."""

import os
import stat

import pytest

from gdcld_zoo.cli import main
from tests.reliability.bad_files import assert_one_line_error
from tests.reliability.models import tiny_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return tiny_run(tmp_path_factory.mktemp("run"))


def export(capsys, run_dir, output, *extra):
    code = main(["export", str(run_dir), str(output), "--tile-size", "64", *extra])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_read_only_folder(run_dir, read_only_dir, capsys):
    code, _, err = export(capsys, run_dir, read_only_dir / "model.onnx")
    assert_one_line_error(code, err, "gdcld-zoo export: error:", str(read_only_dir), "choose a folder you can write to")


def test_path_under_a_file(run_dir, tmp_path, capsys):
    blocker = tmp_path / "notes.txt"
    blocker.write_text("keep me")
    code, _, err = export(capsys, run_dir, blocker / "model.onnx")
    assert_one_line_error(code, err, str(blocker), "is a file, not a folder")
    assert blocker.read_text() == "keep me"


def test_path_that_is_a_folder(run_dir, tmp_path, capsys):
    folder = tmp_path / "exports"
    folder.mkdir()
    code, _, err = export(capsys, run_dir, folder)
    assert_one_line_error(code, err, str(folder), "is a folder", "give the ONNX file a file name")
    assert not list(folder.iterdir())


def test_the_onnx_file_gets_the_umask_permissions(run_dir, tmp_path, capsys):
    previous = os.umask(0o022)
    try:
        code, _, err = export(capsys, run_dir, tmp_path / "model.onnx", "--no-check")
    finally:
        os.umask(previous)
    assert code in (0, None), err
    assert stat.S_IMODE((tmp_path / "model.onnx").stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["model.onnx"]
