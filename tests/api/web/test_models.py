"""The web app's picker offers only the models that chat; the full catalogue knows each model's
kind (the encoder `use:multilingual` once sat in the picker and answered 404)."""

from __future__ import annotations

from pathlib import Path

from iaforall.engines.installed import installed_runtimes
from iaforall.engines.runtime import Runtimes
from iaforall.models.catalog import find_model, list_models
from tests.conftest import FakeWorld, fake_settings, stock_store


async def test_the_web_api_says_what_each_model_does(fake: FakeWorld) -> None:
    r = await fake.client.get("/web/api/models")
    assert r.status_code == 200
    kinds = {m["id"]: m["kind"] for m in r.json()["data"]}
    chat = {name for name, kind in kinds.items() if kind == "chat"}
    assert chat == {"tiny:latest", "other:latest"}  # what the picker offers
    assert kinds["use:multilingual"] == "embeddings" and kinds["whisper:base"] == "speech_to_text"


def test_the_catalogue_knows_every_models_kind(tmp_path: Path) -> None:
    store = stock_store(tmp_path)
    runtimes = Runtimes(installed_runtimes(fake_settings(tmp_path)))
    kinds = {m.id: m.kind for m in list_models(store, runtimes)}
    assert kinds["tiny:latest"] == "chat" and kinds["use:multilingual"] == "embeddings"
    assert kinds["whisper:tiny.en"] == "speech_to_text" and kinds["tts-1"] == "text_to_speech"
    assert kinds["rapidocr"] == "ocr"
    only = list_models(store, runtimes, ("speech_to_text",))
    assert only and {m.kind for m in only} == {"speech_to_text"}
    alias = find_model(store, runtimes, "whisper-1")
    assert alias is not None and alias.id == "whisper:tiny.en" and alias.kind == "speech_to_text"
    assert "tts-1-hd" in (find_model(store, runtimes, "tts-1") or alias).aliases
    assert find_model(store, runtimes, "tiny") is not None
    assert find_model(store, runtimes, "nothing-here") is None
    assert runtimes.made() == []  # listing makes nothing
