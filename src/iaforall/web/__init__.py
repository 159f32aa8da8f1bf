"""The browser app: static files served at `/` (no Node.js needed to run it)."""

from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"
