"""`gdcld_zoo.files`: unique temporaries, umask permissions, nothing left on failure, exclusive locks."""

import os
import stat

import pytest

from gdcld_zoo.files import OutputLock, OutputLockedError, atomic_path, remove_parts, temporary_path


def test_temporary_names_are_unique_and_carry_the_pid(tmp_path):
    names = {temporary_path(tmp_path / "a.tif").name for _ in range(50)}
    assert len(names) == 50 and all(n.startswith(f".a.tif.{os.getpid()}-") and n.endswith(".part") for n in names)


def test_a_failed_block_leaves_neither_temporary_nor_final_file(tmp_path):
    final = tmp_path / "out.json"
    final.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_path(final) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"] and final.read_text() == "old"


def test_published_files_get_the_umask_permissions(tmp_path):
    previous = os.umask(0o002)
    try:
        with atomic_path(tmp_path / "out.txt") as temporary:
            temporary.write_text("x")
            temporary.chmod(0o600)  # what mkstemp would have made
    finally:
        os.umask(previous)
    assert stat.S_IMODE((tmp_path / "out.txt").stat().st_mode) == 0o664


def test_remove_parts_removes_only_the_named_outputs_temporaries(tmp_path):
    mine, other = tmp_path / ".a_prob.tif.1-ab.part", tmp_path / ".a_b_prob.tif.1-ab.part"
    mine.write_text(""), other.write_text("")
    assert remove_parts(tmp_path / "a_prob.tif") == 1
    assert not mine.exists() and other.exists()


def test_lock_is_exclusive_within_one_process_too(tmp_path):
    with OutputLock(tmp_path, "scene"):
        with pytest.raises(OutputLockedError, match=f"pid {os.getpid()}"):
            OutputLock(tmp_path, "scene").acquire()
    assert not list(tmp_path.iterdir())
