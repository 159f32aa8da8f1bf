"""Structured output, as every dialect asks for it (OpenAI's `response_format`, the Responses
API's `text.format`, Ollama's `format`): one checked form for the engine."""

from __future__ import annotations

from typing import Any

from jsonschema import SchemaError
from jsonschema.validators import validator_for

from iaforall.core.errors import InvalidRequest


def json_schema_format(
    schema: dict[str, Any],
    *,
    name: str = "response",
    strict: bool | None = None,
    param: str,
) -> dict[str, Any]:
    """The engine's `response_format` for answers that follow `schema`; a schema that is not
    valid JSON Schema is refused, naming `param`."""
    try:
        validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        raise InvalidRequest(
            f"The JSON schema is invalid: {exc.message}",
            param=param,
            code="invalid_json_schema",
        ) from None
    described: dict[str, Any] = {"name": name, "schema": schema}
    if strict is not None:
        described["strict"] = strict
    return {"type": "json_schema", "json_schema": described}


def json_object_format() -> dict[str, Any]:
    """The engine's `response_format` for answers that are any JSON object."""
    return {"type": "json_object"}
