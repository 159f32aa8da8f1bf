"""`iaforall serve`."""

from __future__ import annotations

import logging

import uvicorn

from iaforall.app import create_app
from iaforall.settings import Settings


def serve(settings: Settings) -> int:
    server = settings.server
    logging.basicConfig(level=server.log_level.upper(), format="%(levelname)s: %(message)s")
    print(
        f"IAForAll serving on http://{server.host}:{server.port} "
        f"(default model {server.model}, data in {settings.store.home})",
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
