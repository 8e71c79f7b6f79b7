"""Atomic writers: complete-or-absent files, no temporary leftovers, ordinary permissions."""

from __future__ import annotations

import os
import stat

import pytest

from codebrain.utils.io import atomic_open, atomic_path, atomic_replace_dir, atomic_write_json


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_027():
    """Run under umask 027 and check the writers never change the process umask."""
    old = os.umask(0o027)
    yield
    assert os.umask(old) == 0o027


def test_atomic_open_writes_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "a.txt"
    with atomic_open(target, "w") as f:
        f.write("hello")
    assert target.read_text() == "hello"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.txt"]


def test_failed_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.json"
    atomic_write_json(target, {"v": 1})
    with pytest.raises(RuntimeError), atomic_open(target, "w") as f:
        f.write('{"v": 2, "trunc')
        raise RuntimeError("killed mid-write")
    assert target.read_text().strip().startswith('{\n  "v": 1')
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_bad_mode_is_rejected(tmp_path):
    with (
        pytest.raises(ValueError, match=r"atomic_open mode must be one of \('w', 'wb'\), got 'a'"),
        atomic_open(tmp_path / "x", "a"),
    ):
        pass


def test_new_files_get_umask_permissions_not_owner_only(tmp_path, umask_027):
    atomic_write_json(tmp_path / "a.json", {})
    with atomic_path(tmp_path / "b.bin") as tmp:
        tmp.write_bytes(b"x")
    with atomic_replace_dir(tmp_path / "d") as d:
        (d / "f").write_text("x")
    assert _mode(tmp_path / "a.json") == 0o640
    assert _mode(tmp_path / "b.bin") == 0o640
    assert _mode(tmp_path / "d") == 0o750


def test_replacing_a_file_keeps_its_permissions(tmp_path, umask_027):
    target = tmp_path / "a.json"
    target.write_text("{}")
    os.chmod(target, 0o604)
    atomic_write_json(target, {"v": 2})
    assert _mode(target) == 0o604
    assert '"v": 2' in target.read_text()


def test_replace_dir_swaps_whole_folder(tmp_path):
    out = tmp_path / "run"
    with atomic_replace_dir(out) as d:
        (d / "old.txt").write_text("1")
    with atomic_replace_dir(out) as d:
        (d / "new.txt").write_text("2")
    assert [p.name for p in out.iterdir()] == ["new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
