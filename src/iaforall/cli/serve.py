"""`iaforall serve`."""

from __future__ import annotations

import logging

import uvicorn

from iaforall.app import create_app
from iaforall.settings import Settings


def serve(settings: Settings) -> int:
    server = settings.server
    logging.basicConfig(level=server.log_level.upper(), format="%(levelname)s: %(message)s")
    url = f"http://{server.host}:{server.port}"
    print(
        f"IAForAll serving on {url} (default model {server.model}, data in "
        f"{settings.store.home})\n  chat in a browser: {url}/   OpenAI API: {url}/v1",
        flush=True,
    )
    uvicorn.run(
        create_app(settings),
        host=server.host,
        port=server.port,
        log_level=server.log_level,
        timeout_graceful_shutdown=5,
    )
    return 0
