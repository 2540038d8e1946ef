"""The one atomic-write helper: mode from creation, old-or-new, no leftovers."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from authenticator.atomicfile import write_atomic


@pytest.mark.parametrize("durable", [True, False])
def test_replaces_with_mode_and_leaves_no_temp(tmp_path: Path, durable: bool) -> None:
    """The new content and mode are in place; only the target file remains."""
    target = tmp_path / "config"
    target.write_bytes(b"old")
    os.chmod(target, 0o644)
    write_atomic(target, b"new", mode=0o600, durable=durable)
    assert target.read_bytes() == b"new"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config"]


def test_a_failed_write_leaves_the_old_file(tmp_path: Path) -> None:
    """Renaming over a directory fails: the target is unchanged, no temp left."""
    target = tmp_path / "taken"
    target.mkdir()
    (target / "keep").write_text("x")
    with pytest.raises(OSError):
        write_atomic(target, b"new", mode=0o600)
    assert (target / "keep").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["taken"]


def test_missing_directory_is_an_error(tmp_path: Path) -> None:
    """A directory that does not exist: an OSError, nothing created."""
    with pytest.raises(FileNotFoundError):
        write_atomic(tmp_path / "missing" / "f", b"x", mode=0o600)
    assert list(tmp_path.iterdir()) == []
