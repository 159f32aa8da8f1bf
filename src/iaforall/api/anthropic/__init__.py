"""Anthropic's Messages API (`/v1/messages`), for the tools that speak it (Claude Code, the
`anthropic` SDK): a thin adapter onto the answer pipeline."""
