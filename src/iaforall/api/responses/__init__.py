"""The OpenAI Responses API (`/v1/responses`): one adapter onto the answer pipeline."""
