"""Our own extension of every dialect's request, under the `iaforall` key: the same options
whichever API a client speaks (OpenAI chat, Anthropic Messages...)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from iaforall.answering import KnowledgeAsk
from iaforall.core.types import DocumentId, KnowledgeBaseId


class KnowledgeOptions(BaseModel):
    """Answer from knowledge bases: their best passages go to the model, numbered, and come
    back in the answer's `iaforall.citations`."""

    model_config = ConfigDict(extra="forbid")

    bases: list[KnowledgeBaseId] = Field(default_factory=list, max_length=16)
    files: list[DocumentId] = Field(
        default_factory=list, max_length=16, description="Single files."
    )
    k: int = Field(5, ge=1, le=20, description="How many passages to give the model.")


class IAForAllOptions(BaseModel):
    """Our own extension, under the `iaforall` key."""

    return_prompt: bool = Field(False, description="Return the exact prompt the model was given.")
    keep_alive: float | str | None = Field(
        None,
        description=(
            "As Ollama's keep_alive: how long the model stays loaded once idle (seconds or "
            "'5m'; -1 forever, 0 unload after this answer). Unset: unchanged."
        ),
    )
    knowledge: KnowledgeOptions | None = None

    def knowledge_ask(self) -> KnowledgeAsk | None:
        """The knowledge asked for, as the pipeline takes it."""
        asked = self.knowledge
        if asked is None:
            return None
        return KnowledgeAsk(tuple(asked.bases), tuple(asked.files), asked.k)
