"""Installed-looking packages in a temporary directory: a module dir plus its dist-info."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from iaforall.models.packaged import PackagedModel, PackagePart


def install_fake_package(root: Path, module: str, version: str, file: str, data: bytes) -> None:
    package = root / module
    (package / file).parent.mkdir(parents=True, exist_ok=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    (package / file).write_bytes(data)
    info = root / f"{module}-{version}.dist-info"
    info.mkdir()
    dist = module.replace("_", "-")
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")


def fake_split_model(
    root: Path,
    monkeypatch: pytest.MonkeyPatch,
    content: bytes,
    *,
    name: str = "fake:1b",
    sha256: str | None = None,
    size: int | None = None,
    parts: int = 3,
) -> PackagedModel:
    """`content` split into `parts` packages, found through sys.path like real wheels."""
    step = -(-len(content) // parts)
    specs = []
    for n in range(1, parts + 1):
        module = f"iaforall_fake_part{n}"
        install_fake_package(
            root, module, "1.0", f"data/part{n:02d}.bin", content[(n - 1) * step : n * step]
        )
        specs.append(
            PackagePart(f"{module.replace('_', '-')}==1.0", module, f"data/part{n:02d}.bin")
        )
    monkeypatch.syspath_prepend(str(root))
    return PackagedModel(
        name=name,
        title="Fake model for tests",
        parts=tuple(specs),
        size=len(content) if size is None else size,
        sha256=sha256 or hashlib.sha256(content).hexdigest(),
        licence="test data",
    )
