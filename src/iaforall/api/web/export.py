"""A conversation as a Markdown document, with headings in the reader's language."""

from __future__ import annotations

import re

from iaforall.store.conversations import ConversationView

# Used when a catalogue lacks a key (or has none of them, like an older one).
ENGLISH = {
    "export.untitled": "Conversation",
    "export.model": "Model",
    "export.created": "Created",
    "export.system_prompt": "System prompt",
    "export.user": "You",
    "export.assistant": "Assistant",
    "export.stopped": "stopped before the end",
    "export.error": "interrupted by an error",
}


def to_markdown(conversation: ConversationView, labels: dict[str, str]) -> str:
    def label(key: str) -> str:
        return labels.get(key) or ENGLISH[key]

    lines = [f"# {conversation.title or label('export.untitled')}", ""]
    if conversation.model:
        lines.append(f"- {label('export.model')}: `{conversation.model}`")
    lines += [f"- {label('export.created')}: {conversation.created_at.isoformat()}", ""]
    if conversation.system_prompt:
        lines += [f"## {label('export.system_prompt')}", "", conversation.system_prompt, ""]
    for message in conversation.messages:
        who = label("export.user") if message.role == "user" else label("export.assistant")
        if message.role != "user" and message.model:
            who += f" ({message.model})"
        lines += [f"## {who}", "", message.content, ""]
        if message.status in ("stopped", "error"):
            lines += [f"*({label('export.' + message.status)})*", ""]
    return "\n".join(lines).rstrip() + "\n"


def filename_for(conversation: ConversationView, extension: str) -> str:
    """An ASCII file name from the title: safe in a Content-Disposition header everywhere."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", conversation.title).strip("-")[:50] or "conversation"
    return f"{stem}.{extension}"
