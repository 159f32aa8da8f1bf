#!/usr/bin/env bash
# System packages the test suite needs, installed as root by `make test` and `.ci/run`.
# The foundation needs none beyond Python 3.11+ and a C library: the engine (xllamacpp) and the
# models install from PyPI. Later features add theirs here (chromium, espeak-ng...).
set -euo pipefail
PACKAGES=()
if [ ${#PACKAGES[@]} -eq 0 ]; then
  exit 0
fi
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"
fi
