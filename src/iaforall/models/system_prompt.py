"""Whether a model gets its chat template's built-in system prompt, and what that prompt is.

Most chat templates put a system prompt of their own before a chat that has none ("You are
Qwen, created by Alibaba Cloud..."). Whether that helps is measured per model by
bench/quality.py and recorded in the packaged registry; the operator's setting
(`IAFORALL_TEMPLATE_DEFAULT_SYSTEM`: auto, on, off) overrides it for every model. Whatever is
chosen is shown: the rendered prompt includes the built-in one when it is used, and
`builtin_prompt` reads its text from the template itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal

from iaforall.models.packaged import PACKAGED, Registry

Choice = Literal["auto", "on", "off"]

# A model no one measured (pulled from the Hub, a local file) keeps what its template's
# authors wrote: their prompt is what the model was tuned with.
UNMEASURED = True

# A system message no template writes: where it lands in the rendered text is where the
# template's own prompt goes when there is none.
_PROBE = "\u2063IAFORALL-SYSTEM-PROBE\u2063"
_USER = {"role": "user", "content": "Hello"}

Render = Callable[[Sequence[dict[str, Any]]], Awaitable[str]]  # messages -> the prompt


def uses_builtin_prompt(choice: Choice, sha256: str, registry: Registry = PACKAGED) -> bool:
    """`on`/`off` as the operator said; `auto`: the measured default of this very file (its
    sha256, so a copy under another name keeps it), else `UNMEASURED`."""
    if choice != "auto":
        return choice == "on"
    for model in registry.values():
        if model.sha256 == sha256:
            return model.builtin_system_prompt
    return UNMEASURED


async def builtin_prompt(render: Render) -> str | None:
    """The text the chat template adds when a chat has no system message (None: nothing),
    found by rendering with the real template: once without a system message, once with a
    probe in its place; what stands where the probe would be is the built-in prompt."""
    without = await render([_USER])
    probed = await render([{"role": "system", "content": _PROBE}, _USER])
    before, found, after = probed.partition(_PROBE)
    if not found or not without.startswith(before) or not without.endswith(after):
        return None  # a template that writes no system block without a system message
    end = len(without) - len(after)
    if end < len(before):
        return None
    text = without[len(before) : end]
    return text or None
