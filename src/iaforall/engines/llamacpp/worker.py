"""The worker process: one model in llama.cpp's own server, on a private loopback port.

Run by the supervisor (`engine.py`) as `python -m iaforall.engines.llamacpp.worker`. It prints
one JSON line `{"ready": true, "url": ...}` on stdout once the model is loaded, then serves
until its stdin closes, so a worker never outlives the server that started it, even after a
`kill -9` of the server. A crash in llama.cpp ends only this process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from iaforall.settings import take_worker_key

# llama.cpp's own default is 8192 MiB: under a soak of varied prompts a worker grew by ~300 MB
# in 5 minutes on its way there (bench/soak.py), memory that the pool's budget does not count.
DEFAULT_CACHE_RAM_MB = 256


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="iaforall-worker")
    p.add_argument("--model", required=True, help="path of the GGUF file")
    p.add_argument("--alias", required=True, help="model name reported in responses")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--parallel", type=int, required=True)
    p.add_argument("--ctx-per-slot", type=int, required=True)
    p.add_argument("--mmproj", help="path of the model's vision projector (mmproj GGUF), if any")
    p.add_argument(
        "--cache-ram-mb",
        type=int,
        default=DEFAULT_CACHE_RAM_MB,
        help="MiB of RAM for the prompts of idle slots, kept for reuse (0: none)",
    )
    p.add_argument(
        "--prompt-lookup",
        action="store_true",
        help="n-gram speculative decoding (no draft model): drafts what repeats the context",
    )
    p.add_argument("--embedding", action="store_true", help="serve embeddings (/v1/embeddings)")
    p.add_argument("--pooling", choices=["mean", "cls", "last"], help="embeddings' pooling")
    return p.parse_args(argv)


def server_params(args: argparse.Namespace) -> Any:
    """The xllamacpp server parameters for the worker's command line."""
    import xllamacpp

    params = xllamacpp.CommonParams()
    params.model.path = args.model
    params.model_alias = {args.alias}
    params.port = 0  # the OS picks a free port; we report it below
    params.hostnames = ["127.0.0.1"]
    params.n_parallel = args.parallel
    params.n_ctx = args.ctx_per_slot * args.parallel  # llama.cpp splits n_ctx between slots
    params.cpuparams.n_threads = args.threads
    params.cpuparams_batch.n_threads = args.threads
    params.cache_prompt = True
    params.cache_ram_mib = args.cache_ram_mb  # bounded: see DEFAULT_CACHE_RAM_MB
    params.use_jinja = True  # the GGUF's own template, tools included
    params.ctx_shift = False  # a full context ends the answer ("length"), never silently drops text
    params.endpoint_slots = True
    params.endpoint_props = True
    params.verbosity = 0
    if args.prompt_lookup:
        # llama.cpp's server reads no speculative field per request (they are compiled out):
        # the choice is the worker's. NGRAM_MOD drafts only where the last tokens were seen
        # before (in the prompt or the answer), so free text costs nearly nothing.
        params.speculative.types = [
            xllamacpp.common_speculative_type.COMMON_SPECULATIVE_TYPE_NGRAM_MOD
        ]
        # Drafts are checked several tokens at a time. llama.cpp's CPU flash attention takes
        # another path for several queries than for one, and its sums differ in the last
        # bits: at a near tie the greedy answer changed. Plain attention computes each row
        # the same way whatever the batch, so a draft never changes the answer.
        params.flash_attn_type = xllamacpp.llama_flash_attn_type.LLAMA_FLASH_ATTN_TYPE_DISABLED
    if args.mmproj:  # llama.cpp's multimodal path: image parts reach the model itself
        params.mmproj.path = args.mmproj
        params.mmproj_use_gpu = False
    if args.embedding:  # a whole input must fit in one batch; vectors are L2-normalised
        params.embedding = True
        params.n_batch = params.n_ubatch = args.ctx_per_slot
        if args.pooling:
            params.pooling_type = getattr(
                xllamacpp.llama_pooling_type, f"LLAMA_POOLING_TYPE_{args.pooling.upper()}"
            )
    return params


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    # The key comes through the environment so that it never shows in `ps`.
    api_key = take_worker_key()
    import xllamacpp

    params = server_params(args)
    if api_key:
        params.api_keys = [api_key]
    server = xllamacpp.Server(params)
    print(json.dumps({"ready": True, "url": server.listening_address}), flush=True)
    os.dup2(2, 1)  # later prints go to the log: nobody reads our stdout pipe any more
    sys.stdin.read()  # returns at EOF: our parent is gone or asked us to stop
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
