"""A conversation as a Markdown document, with headings in the reader's language."""

from __future__ import annotations

import re

from iaforall.store.conversations import PICTURE, ConversationView

# The `_server` strings of a catalogue; these are used when it lacks one.
ENGLISH = {
    "untitled": "Conversation",
    "model": "Model",
    "created": "Created",
    "system_prompt": "System prompt",
    "user": "You",
    "assistant": "Assistant",
    "stopped": "stopped before the end",
    "error": "interrupted by an error",
    "image": "Image",
    "picture": "Picture",
}


def to_markdown(conversation: ConversationView, labels: dict[str, str]) -> str:
    def label(key: str) -> str:
        return labels.get(key) or ENGLISH[key]

    lines = [f"# {conversation.title or label('untitled')}", ""]
    if conversation.model:
        lines.append(f"- {label('model')}: `{conversation.model}`")
    lines += [f"- {label('created')}: {conversation.created_at.isoformat()}", ""]
    if conversation.system_prompt:
        lines += [f"## {label('system_prompt')}", "", conversation.system_prompt, ""]
    for message in conversation.messages:
        roles = {"user": "user", PICTURE: "picture"}
        who = label(roles.get(message.role, "assistant"))
        if message.role != "user" and message.model:
            who += f" ({message.model})"
        lines += [f"## {who}", "", message.content, ""]
        # The images themselves are in the JSON export; Markdown names them.
        lines += [f"*[{label('image')}: {image.name}]*" for image in message.images]
        if message.images:
            lines.append("")
        if message.status in ("stopped", "error"):
            lines += [f"*({label(message.status)})*", ""]
    return "\n".join(lines).rstrip() + "\n"


def filename_for(conversation: ConversationView, extension: str) -> str:
    """An ASCII file name from the title: safe in a Content-Disposition header everywhere."""
    stem = re.sub(r"[^A-Za-z0-9]+", "-", conversation.title).strip("-")[:50] or "conversation"
    return f"{stem}.{extension}"
