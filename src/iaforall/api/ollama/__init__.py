"""The Ollama-compatible API under /api: thin adapters onto the same services as /v1."""

from fastapi import APIRouter

from iaforall.api.ollama import embed, models, router

routers: list[APIRouter] = [router.router, models.router, embed.router]  # signed in
public = models.public

__all__ = ["public", "routers"]
