"""The API's own documentation, served offline and only to those the API serves.

FastAPI's defaults load Swagger UI from a CDN and answer anyone; here the schema and the pages
ask for the same credentials (and, without accounts, the same loopback host) as the API, and
their scripts come from the fastapi-offline package (MIT), so the docs work with no internet.
"""

from __future__ import annotations

from importlib.resources import files
from typing import Any

from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

from iaforall.api.auth import authenticate

ASSETS = "/docs/assets"

router = APIRouter(include_in_schema=False, dependencies=[Depends(authenticate)])


@router.get("/openapi.json")
async def openapi(request: Request) -> dict[str, Any]:
    return request.app.openapi()  # type: ignore[no-any-return]


@router.get("/docs")
async def swagger(request: Request) -> HTMLResponse:
    return get_swagger_ui_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} API",
        swagger_js_url=f"{ASSETS}/swagger-ui-bundle.js",
        swagger_css_url=f"{ASSETS}/swagger-ui.css",
        swagger_favicon_url=f"{ASSETS}/favicon.png",
    )


@router.get("/redoc")
async def redoc(request: Request) -> HTMLResponse:
    return get_redoc_html(
        openapi_url="/openapi.json",
        title=f"{request.app.title} API",
        redoc_js_url=f"{ASSETS}/redoc.standalone.js",
        redoc_favicon_url=f"{ASSETS}/favicon.png",
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """Call with `FastAPI(docs_url=None, redoc_url=None, openapi_url=None)`."""
    app.include_router(router)
    # The same scripts for everyone (nothing about this server in them).
    assets = str(files("fastapi_offline") / "static")
    app.mount(ASSETS, StaticFiles(directory=assets), name="docs-assets")
