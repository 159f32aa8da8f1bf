"""Model runtimes behind one small protocol (see `protocol.py`)."""
