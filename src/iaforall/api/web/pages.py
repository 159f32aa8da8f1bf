"""The browser app: `/` and its static files. Everything is served from here: no CDN."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import FileResponse, PlainTextResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from iaforall.api.web.catalogues import languages
from iaforall.api.web.offline import read_shell, worker_script
from iaforall.web import STATIC_DIR

router = APIRouter(include_in_schema=False)

# Even if sanitising model output ever failed, the page runs no script but its own files.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob:; "
        "media-src 'self' blob:; "
        "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@router.get("/")
async def index(request: Request) -> Response:
    """The app for browsers; a one-line liveness text for scripts and API clients."""
    if "text/html" in request.headers.get("accept", ""):
        return FileResponse(STATIC_DIR / "index.html", headers=SECURITY_HEADERS)
    return PlainTextResponse("IAForAll is running")


@router.get("/admin")
async def admin_page() -> FileResponse:
    """The admin views; the data behind them is for admins only (/admin/api)."""
    return FileResponse(STATIC_DIR / "admin.html", headers=SECURITY_HEADERS)


@router.get("/web/api/languages", include_in_schema=True, tags=["web app"])
async def list_languages() -> dict[str, Any]:
    """The catalogues present: public, the login page is translated too."""
    return {"data": await run_in_threadpool(languages)}


class _Static(StaticFiles):
    """Static files revalidated on each load (ETag), so an upgrade is seen at once."""

    def file_response(self, *args: object, **kwargs: object) -> Response:
        response = super().file_response(*args, **kwargs)  # type: ignore[arg-type]
        response.headers.update(SECURITY_HEADERS)
        return response


def mount_static(app: FastAPI) -> None:
    app.mount("/static", _Static(directory=STATIC_DIR), name="static")
    script = worker_script(read_shell(STATIC_DIR))

    @app.get("/sw.js", include_in_schema=False)
    async def service_worker() -> Response:
        """The service worker that keeps the app shell (api/web/offline.py); served from the
        root so that it may look after every page of the app."""
        return Response(script, media_type="text/javascript", headers=SECURITY_HEADERS)
