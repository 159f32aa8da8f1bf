"""`iaforall doctor`: each capability the server promises, working or not, why, and the exact
command that fixes it. Shared by the CLI, the administrator's /health and the web app's
"About this server".

Two steps: `gather` looks at this machine (installed packages, the store, the database, all
cheap: nothing is downloaded, no model is loaded); `diagnose` turns what it found into the
table, a pure function the tests feed with pieces taken away. `deep` loads the runtimes too.
"""

from __future__ import annotations

import asyncio
import sqlite3
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from iaforall.core.errors import IAForAllError
from iaforall.engines import install
from iaforall.models.store import ModelInfo
from iaforall.settings import Settings

Status = Literal["ok", "missing", "broken"]

# Each row: its id (stable, for scripts and the web app), its title.
CAPABILITIES = {
    "chat": "Chat",
    "speech_to_text_en": "Speech to text, English",
    "speech_to_text_fr": "Speech to text, French",
    "text_to_speech_en": "Text to speech, English",
    "text_to_speech_fr": "Text to speech, French",
    "images": "Images (OCR, vision)",
    "drawing": "Drawing pictures",
    "embeddings": "Embeddings",
    "knowledge": "Knowledge bases",
    "database": "Database",
    "cluster": "Cluster",
}
# Rows of what a default install does without: missing, they say so and how to add it, but
# `doctor` does not fail for them (no image model ships with IAForAll: docs/images.md).
OPTIONAL = frozenset({"drawing"})


@dataclass(frozen=True, slots=True)
class Check:
    id: str
    status: Status
    why: str  # one sentence
    fix: str | None = None  # the exact command (or setting) that fixes it
    details: dict[str, Any] = field(default_factory=dict)  # for administrators

    @property
    def title(self) -> str:
        return CAPABILITIES[self.id]

    def as_dict(self, details: bool = True) -> dict[str, Any]:
        shown = {"id": self.id, "title": self.title, "status": self.status, "why": self.why}
        return {**shown, "fix": self.fix, **({"details": self.details} if details else {})}


@dataclass(frozen=True, slots=True)
class ChatModel:
    name: str
    path: Path | None  # None: not in the store
    is_gguf: bool = False
    projector: Path | None = None
    problem: str | None = None  # why its GGUF header or size is wrong


@dataclass(frozen=True, slots=True)
class Found:
    """What `gather` saw; the tests build it by hand with pieces missing."""

    chat: ChatModel
    packaged_chat: bool  # the default model is one `iaforall pull` rebuilds from a wheel
    whisper: tuple[str, ...]  # installed Whisper models
    piper: bool  # piper's command
    piper_voice: bool  # the English neural voice's wheel
    espeak: str | None  # "system", "pip" or None
    espeak_choice: str
    ocr: bool
    encoder: bool
    embedding_model: str
    embedding_in_store: bool
    vector_search: str | None  # None: works; else why not
    database: str | None  # None: opens; else why not
    database_backend: str
    schema: Literal["head", "behind", "ahead", "new"]
    cluster: str  # the address, "" for none
    ray: bool
    cluster_token: bool
    deep: dict[str, str | None] = field(default_factory=dict)  # runtime -> error, when deep
    image_models: tuple[str, ...] = ()  # text-to-image models in the store


def diagnose(found: Found) -> list[Check]:
    rows = [
        _chat(found),
        *_hearing(found),
        *_speaking(found),
        _images(found),
        _drawing(found),
        _embeddings(found),
        _knowledge(found),
        _database(found),
    ]
    if found.cluster:
        rows.append(_cluster(found))
    return [_deepened(row, found) for row in rows]


def failing(rows: list[Check]) -> list[Check]:
    """What the default setup promises and is not there: `doctor` exits 1 for these (an
    optional row only when it is broken)."""
    return [
        row
        for row in rows
        if row.status == "broken" or (row.status != "ok" and row.id not in OPTIONAL)
    ]


# -- each row -------------------------------------------------------------------------------


def _chat(found: Found) -> Check:
    model = found.chat
    details: dict[str, Any] = {"model": model.name}
    if model.path is None:
        why = f"The default model {model.name} is not in the store."
        if found.packaged_chat or model.name.startswith(("hf.co/", "hf://", "https://")):
            return Check("chat", "missing", why, f"iaforall pull {model.name}", details)
        why = f"The default model {model.name} is not in the store: set IAFORALL_MODEL to one."
        return Check("chat", "missing", why, "iaforall list", details)
    details["path"] = str(model.path)
    if not model.is_gguf or model.problem:
        why = model.problem or f"Its file {model.path} is missing or is not a GGUF file."
        why = f"{why.rstrip('.')}: remove it, then pull or add it again."
        return Check("chat", "broken", why, f"iaforall rm {model.name}", details)
    return Check("chat", "ok", f"{model.name} is in the store.", None, details)


def _hearing(found: Found) -> list[Check]:
    details = {"installed": list(found.whisper)}
    multilingual = "whisper:base" in found.whisper
    if "whisper:tiny.en" in found.whisper:
        en = Check("speech_to_text_en", "ok", "whisper:tiny.en is installed.", None, details)
    elif multilingual:
        en = Check(
            "speech_to_text_en",
            "ok",
            "whisper:base hears English (whisper:tiny.en, faster, is not installed).",
            install.install_command("whisper:tiny.en"),
            details,
        )
    else:
        en = Check(
            "speech_to_text_en",
            "missing",
            "No Whisper model is installed, so the microphone cannot be used.",
            install.install_command("whisper:tiny.en"),
            details,
        )
    if multilingual:
        fr = Check("speech_to_text_fr", "ok", "whisper:base is installed.", None, details)
    else:
        why = "French needs whisper:base (whisper:tiny.en knows English only)."
        fix = install.install_command("whisper:base")
        fr = Check("speech_to_text_fr", "missing", why, fix, details)
    return [en, fr]


def _speaking(found: Found) -> list[Check]:
    details = {"piper": found.piper, "piper_voice": found.piper_voice, "espeak": found.espeak}
    if found.espeak is None:
        espeak_fix = "IAFORALL_ESPEAK=auto" if found.espeak_choice == "system" else install.ESPEAK
    else:
        espeak_fix = None
    if found.piper and found.piper_voice:
        en = Check("text_to_speech_en", "ok", "piper's voice joe is installed.", None, details)
    else:
        lacking = install.PIPER if not found.piper else install.install_command("voice:joe")
        if found.espeak is not None:
            why = "eSpeak NG speaks English; piper's neural voice is not installed."
            en = Check("text_to_speech_en", "ok", why, lacking, details)
        else:
            why = "No English voice is installed (neither piper's voice nor eSpeak NG)."
            en = Check("text_to_speech_en", "missing", why, lacking, details)
    if found.espeak is not None:
        why = f"eSpeak NG ({'the system one' if found.espeak == 'system' else 'the pip one'})."
        fr = Check("text_to_speech_fr", "ok", why, None, details)
    elif found.espeak_choice == "system":
        why = "IAFORALL_ESPEAK=system but the `espeak-ng` command is not installed."
        fr = Check("text_to_speech_fr", "missing", why, espeak_fix, details)
    else:
        why = "French is spoken by eSpeak NG, which is not installed."
        fr = Check("text_to_speech_fr", "missing", why, espeak_fix, details)
    return [en, fr]


def _images(found: Found) -> Check:
    projector = found.chat.projector
    details = {"ocr": found.ocr, "vision_projector": str(projector) if projector else None}
    if found.ocr:
        seen = "the default model also sees them" if projector else "read as text by OCR"
        return Check("images", "ok", f"Images are {seen} (rapidocr).", None, details)
    if projector:
        why = "The default model sees images; without rapidocr, other models cannot read them."
        return Check("images", "ok", why, install.OCR, details)
    why = "rapidocr is not installed, so images in chat cannot be read."
    return Check("images", "missing", why, install.OCR, details)


DRAWING_FIX = "iaforall pull FOLDER --name NAME"


def _drawing(found: Found) -> Check:
    details = {"models": list(found.image_models)}
    if found.image_models:
        names = ", ".join(found.image_models)
        why = f"Pictures are drawn with {names} (ONNX Runtime)."
        return Check("drawing", "ok", why, None, details)
    why = (
        "No image model is installed, so pictures cannot be drawn (optional): an "
        f"administrator adds one with `{DRAWING_FIX}` (docs/images.md), then restarts the "
        "server."
    )
    return Check("drawing", "missing", why, DRAWING_FIX, details)


def _embeddings(found: Found) -> Check:
    name = found.embedding_model
    details = {"model": name}
    if name == "use:multilingual":
        if found.encoder:
            why = "The built-in multilingual sentence encoder is installed."
            return Check("embeddings", "ok", why, None, details)
        why = "The built-in sentence encoder's package is not installed."
        return Check("embeddings", "missing", why, install.ENCODER, details)
    if found.embedding_in_store:
        return Check("embeddings", "ok", f"{name} is in the store.", None, details)
    why = f"The embedding model {name} is not in the store."
    return Check("embeddings", "missing", why, f"iaforall pull {name}", details)


def _knowledge(found: Found) -> Check:
    details = {"backend": found.database_backend}
    if found.vector_search is not None:
        why = f"Vector search does not work: {found.vector_search}"
        return Check("knowledge", "broken", why, install.SQLITE_VEC, details)
    if found.database is not None:
        return Check("knowledge", "broken", "The database does not open.", None, details)
    if found.database_backend == "sqlite":
        why = "Documents are searched with sqlite-vec and BM25 in the database."
    else:
        why = "Documents are searched in the database and in memory."
    return Check("knowledge", "ok", why, None, details)


def _database(found: Found) -> Check:
    details = {"backend": found.database_backend, "schema": found.schema}
    if found.database is not None:
        return Check("database", "broken", f"It does not open: {found.database}", None, details)
    if found.schema == "ahead":
        why = (
            "It was last used by a newer IAForAll, whose schema this one does not know: run "
            "that version again (in a clone: `git pull`, then `make run`)."
        )
        return Check("database", "broken", why, None, details)
    why = {
        "head": "It opens and its schema is the latest.",
        "behind": "It opens; its schema is brought up to date when the server starts.",
        "new": "Not created yet: the server creates it when it first starts.",
    }[found.schema]
    return Check("database", "ok", why, None, details)


def _cluster(found: Found) -> Check:
    details = {"address": found.cluster, "ray": found.ray}
    if not found.ray:
        why = "IAFORALL_CLUSTER is set but Ray is not installed."
        return Check("cluster", "missing", why, install.CLUSTER, details)
    if not found.cluster_token:
        why = "Ray's token file is missing (the head's `cluster up` writes it)."
        return Check("cluster", "missing", why, "iaforall cluster up", details)
    return Check(
        "cluster", "ok", f"Ray is installed; the cluster is {found.cluster}.", None, details
    )


# Which runtime a `--deep` load tried, by row.
_DEEP_ROWS = {
    "speech_to_text_en": "whisper:tiny.en",
    "speech_to_text_fr": "whisper:base",
    "text_to_speech_fr": "espeak-ng",
    "images": "rapidocr",
    "embeddings": "use:multilingual",
}


def _deepened(row: Check, found: Found) -> Check:
    """A row whose runtime failed to load under `--deep` is broken, with the reason."""
    runtime = _DEEP_ROWS.get(row.id)
    if row.id == "drawing" and found.image_models:
        runtime = found.image_models[0]
    if row.status != "ok" or runtime not in found.deep:
        return row
    error = found.deep[runtime]
    if error is None:
        return replace(row, details={**row.details, "loaded": True})
    details = {**row.details, "loaded": False}
    return Check(row.id, "broken", f"{runtime} did not load: {error}", row.fix, details)


# -- looking at this machine ----------------------------------------------------------------


def gather(settings: Settings) -> Found:
    """What is installed and configured here, cheaply: no download, no model loaded."""
    from iaforall.embeddings import encoder
    from iaforall.engines import whisper
    from iaforall.engines.tts import piper_command, piper_voices
    from iaforall.engines.tts.espeak import find
    from iaforall.models.gguf_meta import is_gguf
    from iaforall.models.packaged import PACKAGED
    from iaforall.models.projector import projector_for
    from iaforall.models.runtime_store import RuntimeStore
    from iaforall.models.store import ModelStore
    from iaforall.vision import ocr

    store = ModelStore(settings.store.home, install_missing=False)
    name = settings.server.model
    info = store.get(name)
    chat = ChatModel(name, None)
    if info is not None:
        chat = ChatModel(
            name, info.path, is_gguf(info.path), projector_for(info.path), _problem(info)
        )
    espeak = find(settings.voice.espeak)
    embedding = settings.embeddings.embedding_model
    database, backend, schema = _database_state(settings)
    cluster = settings.cluster
    return Found(
        chat=chat,
        packaged_chat=name in PACKAGED,
        whisper=tuple(whisper.installed(settings.store.home)),
        piper=piper_command() is not None,
        piper_voice=bool(piper_voices(settings.store.home)),
        espeak=espeak.kind if espeak else None,
        espeak_choice=settings.voice.espeak,
        ocr=ocr.installed(),
        encoder=encoder.installed(),
        embedding_model=embedding,
        embedding_in_store=store.get(embedding) is not None,
        vector_search=_vector_search() if backend == "sqlite" else None,
        database=database,
        database_backend=backend,
        schema=schema,
        cluster=cluster.cluster,
        ray=_importable("ray"),
        cluster_token=cluster.token_path(settings.store.home).is_file(),
        image_models=tuple(
            stored.name
            for stored in RuntimeStore(settings.store.home).list()
            if stored.manifest.kind == "image"
        ),
    )


def _problem(info: ModelInfo) -> str | None:
    """What is wrong with a stored model's file, from its size and its header (not its sha256:
    reading a gigabyte is not cheap)."""
    from iaforall.models.gguf_meta import read_metadata

    try:
        size = info.path.stat().st_size
        if size != info.size:
            return f"Its file is {size} bytes, not the {info.size} it had when added."
        read_metadata(info.path)
    except IAForAllError as exc:
        return exc.message
    except Exception as exc:  # a header that does not parse, however it fails: the row says it
        return f"Its GGUF header does not read: {type(exc).__name__}: {exc}"
    return None


def _importable(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def _vector_search() -> str | None:
    """None when sqlite-vec loads into a fresh in-memory SQLite; else why not."""
    from iaforall.store.extensions import load_sqlite_vec

    connection = sqlite3.connect(":memory:")
    try:
        load_sqlite_vec(connection)
        connection.execute("select vec_version()").fetchone()
    except Exception as exc:  # any failure is the answer: the row says it
        return str(exc) or type(exc).__name__
    finally:
        connection.close()
    return None


def _database_state(
    settings: Settings,
) -> tuple[str | None, str, Literal["head", "behind", "ahead", "new"]]:
    """(why it does not open or None, its backend, its schema against this version's)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    from iaforall.store.database import MIGRATIONS

    url = make_url(settings.database_url)
    backend = url.get_backend_name()
    if backend == "sqlite" and url.database and not Path(url.database).exists():
        return None, backend, "new"  # never made here: opening it would create it
    heads = set(ScriptDirectory(str(MIGRATIONS)).get_heads())
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except Exception as exc:  # the driver's own errors: the row says it
        return f"{type(exc).__name__}: {str(exc).splitlines()[0]}", backend, "new"
    finally:
        engine.dispose()
    if not current:
        return None, backend, "new"
    if current == heads:
        return None, backend, "head"
    known = {r.revision for r in ScriptDirectory(str(MIGRATIONS)).walk_revisions()}
    return None, backend, "behind" if current <= known else "ahead"


async def load_runtimes(settings: Settings) -> dict[str, str | None]:
    """`--deep`: each installed runtime loaded once (then closed): its name -> the error."""
    from iaforall.engines.installed import installed_runtimes
    from iaforall.engines.tts import Speaker, resolve

    results: dict[str, str | None] = {}
    try:  # a French word through the eSpeak NG that would speak it (a few milliseconds)
        french = resolve("espeak:fr", settings.voice.espeak)
        await asyncio.to_thread(Speaker(0, settings.voice.espeak).synthesize, french, "Bonjour.")
        results["espeak-ng"] = None
    except Exception as exc:  # a failure is what --deep reports
        results["espeak-ng"] = str(exc) or type(exc).__name__
    for spec in installed_runtimes(settings):
        if spec.kind == "text_to_speech":
            continue  # its processes start on the first sentence
        runtime = spec.build()
        try:
            await runtime.start()
            results[spec.model] = None
        except Exception as exc:  # a load that fails is what --deep reports
            results[spec.model] = str(exc) or type(exc).__name__
        finally:
            await runtime.close()
    return results


def doctor(settings: Settings, *, deep: bool = False) -> list[Check]:
    found = gather(settings)
    if deep:
        found = replace(found, deep=asyncio.run(load_runtimes(settings)))
    return diagnose(found)
