"""The one answer pipeline: every dialect (OpenAI, Ollama, Responses, Anthropic, the web app)
translates its request into a `Question`, asks the `Pipeline`, and translates the events back."""

from iaforall.answering.pipeline import Pipeline, Streamed, Whole
from iaforall.answering.question import KnowledgeAsk, Question

__all__ = ["KnowledgeAsk", "Pipeline", "Question", "Streamed", "Whole"]
