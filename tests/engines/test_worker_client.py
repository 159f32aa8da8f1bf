"""The llama.cpp client against a loopback HTTP server that misbehaves as a dying engine would."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from iaforall.core.errors import EngineUnavailable
from iaforall.core.types import ChatRequest, ModelId
from iaforall.engines.llamacpp.client import REPLICA_HEADER, WorkerClient

CHUNK = (
    b'data: {"object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"}}]}\n\n'
)
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\n'
REQUEST = ChatRequest(model=ModelId("m"), messages=({"role": "user", "content": "hi"},))


async def serve(body: bytes, route: str = "/v1/chat/completions") -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.StreamResponse:
        assert request.headers["Authorization"] == "Bearer k"
        response = web.StreamResponse(headers={REPLICA_HEADER: "node1/42"})
        await response.prepare(request)
        await response.write(body)
        return response  # then the connection ends, with or without llama.cpp's [DONE]

    app = web.Application()
    app.router.add_post(route, answer)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def client(url: str) -> WorkerClient:
    return WorkerClient(
        ModelId("m"),
        url,
        "k",
        connections=2,
        read_timeout=5,
        template_default_system=False,
        where="replica",
    )


async def test_a_complete_stream_ends_at_done_with_its_usage() -> None:
    async for url in serve(CHUNK + USAGE + b"data: [DONE]\n\n"):
        worker = client(url)
        chunks = [chunk async for chunk in worker.stream(REQUEST)]
        await worker.close()
    assert chunks[0].data.startswith(b'{"object"') and chunks[-1].usage is not None
    assert worker.served_by == {"node1/42": 1}


async def test_a_stream_cut_off_before_done_is_a_clean_error() -> None:
    async for url in serve(CHUNK):
        worker = client(url)
        seen = []
        with pytest.raises(EngineUnavailable, match="replica of 'm' stopped while answering"):
            async for chunk in worker.stream(REQUEST):
                seen.append(chunk)
        await worker.close()
    assert len(seen) == 1  # what came before the cut was passed on


async def test_a_route_prefix_is_kept_for_every_path() -> None:
    async for url in serve(
        CHUNK + USAGE + b"data: [DONE]\n\n", "/iaforall/m-1/v1/chat/completions"
    ):
        worker = client(url + "/iaforall/m-1")
        answer = await worker.generate(REQUEST)
        await worker.close()
    assert answer["choices"][0]["message"]["content"] == "Hi"
