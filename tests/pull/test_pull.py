"""Pulling models: from a URL and from the Hub (through the real `huggingface_hub`), against
loopback stand-ins; every failure leaves nothing installed."""

from __future__ import annotations

import hashlib
import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from iaforall.core.errors import InvalidRequest, ModelNotFound, ModelStoreError
from iaforall.models.projector import projector_for
from iaforall.models.pull import PullRefused, parse_source, pull
from iaforall.models.store import ModelStore
from tests.pull.servers import Served

REPO = "someone/Tiny-Model-GGUF"


def leftovers(store: ModelStore) -> list[str]:
    """Files in the store other than hidden partial downloads."""
    if not store.models_dir.exists():
        return []
    return sorted(p.name for p in store.models_dir.iterdir() if not p.name.startswith("."))


def test_sources_are_recognised(tmp_path: Path) -> None:
    hub = parse_source("hf.co/bartowski/SmolLM2-GGUF:Q4_K_M")
    assert (hub.repo, hub.quant) == ("bartowski/SmolLM2-GGUF", "Q4_K_M")  # type: ignore[union-attr]
    file = parse_source("hf://owner/repo/sub/model.Q8_0.gguf")
    assert file.filename == "sub/model.Q8_0.gguf"  # type: ignore[union-attr]
    assert parse_source("https://example.org/m.gguf").url == "https://example.org/m.gguf"  # type: ignore[union-attr]
    assert parse_source("smollm2:135m").name == "smollm2:135m"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "source",
    [
        "../../etc/passwd",
        "hf://owner/repo/../../etc/passwd.gguf",
        "hf://owner/repo//etc/passwd.gguf",
        "hf.co/../etc:Q4",
        "hf.co/owner/..:Q4",
        "hf://owner/repo/model.bin",
    ],
)
def test_path_traversal_names_are_refused(source: str) -> None:
    with pytest.raises(InvalidRequest):
        parse_source(source, local_files=False)


def test_a_traversal_name_for_the_store_is_refused(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    with pytest.raises(InvalidRequest, match="not a valid model name"):
        pull(store, f"{base_url}/m.gguf", name="../../etc/passwd", allow_private=True)
    assert leftovers(store) == []


def test_a_url_pull_installs_a_plain_gguf(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.files["/files/Tiny.Q4_K_M.gguf"] = gguf_bytes
    sha = hashlib.sha256(gguf_bytes).hexdigest()
    info = pull(store, f"{base_url}/files/Tiny.Q4_K_M.gguf", sha256=sha, allow_private=True)
    assert info.name == "tiny.q4_k_m:latest" and info.sha256 == sha
    assert info.path.read_bytes() == gguf_bytes and info.source.startswith("url:")
    assert leftovers(store) == ["tiny.q4_k_m@latest.gguf"]
    assert not any(store.models_dir.glob(".*"))  # no partial file left


def test_a_loopback_url_is_refused_unless_allowed(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    with pytest.raises(PullRefused, match="IAFORALL_PULL_ALLOW_PRIVATE"):
        pull(store, f"{base_url}/m.gguf")
    assert served.requests == []  # refused before connecting
    with pytest.raises(PullRefused):
        pull(store, "http://10.0.0.1/m.gguf")
    with pytest.raises(PullRefused):
        pull(store, "http://[::1]:9/m.gguf")
    assert pull(store, f"{base_url}/m.gguf", allow_private=True).name == "m:latest"


def test_a_redirect_to_loopback_is_refused(
    store: ModelStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from iaforall.models import pull as pull_module

    monkeypatch.setattr(
        pull_module.socket,
        "getaddrinfo",
        lambda host, port, **kw: [
            (2, 1, 6, "", ("127.0.0.1" if host == "localhost" else "93.184.215.14", port))
        ],
    )
    with pytest.raises(PullRefused):
        pull(store, "http://localhost/m.gguf")


def test_a_file_that_is_not_gguf_is_refused_and_removed(
    store: ModelStore, served: Served, base_url: str
) -> None:
    served.files["/fake.gguf"] = b"<html>not a model</html>" * 100
    with pytest.raises(ModelStoreError, match="not a GGUF"):
        pull(store, f"{base_url}/fake.gguf", allow_private=True)
    assert leftovers(store) == [] and store.list() == []
    assert not any(store.models_dir.glob(".*"))


def test_a_wrong_checksum_installs_nothing(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    with pytest.raises(ModelStoreError, match="checksum"):
        pull(store, f"{base_url}/m.gguf", sha256="0" * 64, allow_private=True)
    assert leftovers(store) == [] and store.list() == []
    assert not any(store.models_dir.glob(".*"))


def test_a_truncated_download_installs_nothing_then_resumes(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    served.truncate.add("/m.gguf")
    with pytest.raises(ModelStoreError, match="pull again to resume"):
        pull(store, f"{base_url}/m.gguf", allow_private=True)
    assert leftovers(store) == [] and store.list() == []
    (partial,) = store.models_dir.glob(".*.download")  # the part received is kept
    kept = partial.stat().st_size
    assert 0 < kept < len(gguf_bytes)
    served.truncate.clear()
    served.requests.clear()
    info = pull(store, f"{base_url}/m.gguf", allow_private=True)
    assert info.path.read_bytes() == gguf_bytes
    assert served.requests == [("GET", "/m.gguf", f"bytes={kept}-")]  # only the rest
    assert not partial.exists()


def test_one_pull_at_a_time_per_url(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    import fcntl

    served.files["/m.gguf"] = gguf_bytes
    served.truncate.add("/m.gguf")
    with pytest.raises(ModelStoreError):  # leaves a part behind
        pull(store, f"{base_url}/m.gguf", allow_private=True)
    (partial,) = store.models_dir.glob(".*.download")
    kept = partial.stat().st_size
    with partial.open("ab") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another pull of the same URL is under way
        with pytest.raises(ModelStoreError, match="already being pulled"):
            pull(store, f"{base_url}/m.gguf", allow_private=True)
    assert partial.stat().st_size == kept and store.list() == []  # the other pull's part intact


def test_a_dropped_connection_resumes_with_a_range_request(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    served.drop_once.add("/m.gguf")
    info = pull(store, f"{base_url}/m.gguf", allow_private=True)
    assert info.path.read_bytes() == gguf_bytes
    ranges = [r for _, p, r in served.requests if p == "/m.gguf"]
    assert ranges == ["", f"bytes={len(gguf_bytes) // 2}-"]


DiskUsage = namedtuple("DiskUsage", "total used free")


def test_not_enough_disk_writes_nothing(
    store: ModelStore,
    served: Served,
    base_url: str,
    gguf_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    served.files["/m.gguf"] = gguf_bytes
    served.repos[REPO] = {"tiny.Q4_K_M.gguf": gguf_bytes}
    monkeypatch.setattr(shutil, "disk_usage", lambda path: DiskUsage(10**9, 10**9 - 100, 100))
    with pytest.raises(ModelStoreError, match="Not enough disk space"):
        pull(store, f"{base_url}/m.gguf", allow_private=True)
    with pytest.raises(ModelStoreError, match="Not enough disk space"):
        pull(store, f"hf.co/{REPO}:Q4_K_M")
    assert leftovers(store) == [] and not any(store.models_dir.glob(".*"))
    assert not (store.home / "downloads").exists()
    assert not any("/resolve/" in path and m == "GET" for m, path, _ in served.requests)


# -- the Hub, through the real huggingface_hub ---------------------------------------------------


def test_hub_pull_picks_the_quantisation_and_brings_the_projector(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes, projector_bytes: bytes
) -> None:
    served.repos[REPO] = {
        "README.md": b"# tiny",
        "tiny.Q8_0.gguf": gguf_bytes + b"",
        "tiny.Q4_K_M.gguf": gguf_bytes,
        "mmproj-tiny-f16.gguf": projector_bytes,
    }
    events: list[tuple[str, int, int]] = []
    info = pull(store, f"hf.co/{REPO}:Q4_K_M", progress=lambda d, c, t: events.append((d, c, t)))
    assert info.name == "tiny-model:q4_k_m"
    assert info.sha256 == hashlib.sha256(gguf_bytes).hexdigest()
    assert info.source == f"hf:{REPO}/tiny.Q4_K_M.gguf"
    assert projector_for(info.path) == info.path.with_name(f"mmproj-{info.path.name}")
    assert info.path.with_name(f"mmproj-{info.path.name}").read_bytes() == projector_bytes
    assert ("pulling tiny.Q4_K_M.gguf", len(gguf_bytes), len(gguf_bytes)) in events
    assert events[-1][0] == "tiny-model:q4_k_m is ready"
    assert [m for m, p, _ in served.requests if p.endswith("tiny.Q8_0.gguf")] == []
    assert store.get(f"hf.co/{REPO}:Q4_K_M") == store.get(f"hf.co/{REPO}") == info
    assert store.get(f"hf.co/{REPO}:Q8_0") is None and store.get("hf.co/other/repo") is None
    assert list((store.home / "downloads" / "hf").iterdir()) == []  # no scratch left
    store.remove(info.name)
    assert leftovers(store) == []


def test_hub_file_url_and_interrupted_then_resumed_download(
    store: ModelStore,
    served: Served,
    base_url: str,
    gguf_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from huggingface_hub import constants

    # huggingface_hub writes whole chunks (10 MB), so it resumes from the last chunk written:
    # small chunks make that visible on a small file.
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024)
    served.repos[REPO] = {"sub/model.gguf": gguf_bytes}
    served.drop_once.add(f"{REPO}/sub/model.gguf")
    info = pull(store, f"hf://{REPO}/sub/model.gguf", name="mine")
    assert info.name == "mine:latest" and info.path.read_bytes() == gguf_bytes
    gets = [r for m, p, r in served.requests if m == "GET" and p.endswith("sub/model.gguf")]
    cut = len(gguf_bytes) // 2
    assert gets == ["", f"bytes={cut // 1024 * 1024}-"]  # resumed from the last whole chunk


def test_hub_checksum_mismatch_and_not_gguf_install_nothing(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.repos[REPO] = {"a.Q4_0.gguf": gguf_bytes, "b.Q4_0.gguf": b"x" * 4096}
    with pytest.raises(ModelStoreError, match="sha256"):
        pull(store, f"hf://{REPO}/a.Q4_0.gguf", sha256="1" * 64)
    with pytest.raises(ModelStoreError, match="not a GGUF"):
        pull(store, f"hf://{REPO}/b.Q4_0.gguf")
    assert leftovers(store) == [] and store.list() == []


def test_hub_unknown_repo_or_quant_is_clear(
    store: ModelStore, served: Served, base_url: str, gguf_bytes: bytes
) -> None:
    served.repos[REPO] = {"tiny.Q4_K_M.gguf": gguf_bytes}
    with pytest.raises(ModelNotFound, match="no repository"):
        pull(store, "hf.co/nobody/nothing")
    with pytest.raises(ModelStoreError, match=r"has no Q2_K file; it has: tiny\.Q4_K_M\.gguf"):
        pull(store, f"hf.co/{REPO}:Q2_K")


def test_hub_token_is_sent_and_a_default_quantisation_chosen(
    store: ModelStore,
    served: Served,
    base_url: str,
    gguf_bytes: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secret_for_a_gated_repo")
    served.repos[REPO] = {"tiny.Q2_K.gguf": b"x", "tiny.Q4_K_M.gguf": gguf_bytes}
    info = pull(store, f"hf.co/{REPO}")
    assert info.name == "tiny-model:q4_k_m" and info.path.read_bytes() == gguf_bytes
    assert served.authorizations == {"Bearer hf_secret_for_a_gated_repo"}


def test_hub_offline_is_honoured(store: ModelStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelStoreError, match="HF_HUB_OFFLINE"):
        pull(store, f"hf.co/{REPO}")


def test_a_local_file_with_a_checksum(store: ModelStore, tmp_path: Path, gguf_bytes: bytes) -> None:
    path = tmp_path / "local.gguf"
    path.write_bytes(gguf_bytes)
    with pytest.raises(ModelStoreError, match="checksum"):
        pull(store, str(path), sha256="2" * 64)
    assert (
        pull(store, str(path), sha256=hashlib.sha256(gguf_bytes).hexdigest()).name == "local:latest"
    )
