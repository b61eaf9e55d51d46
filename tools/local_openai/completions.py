"""Builders of the API's objects: ``chat.completion``, stored messages and ``chat.completion.deleted``.

The local server does not run a model: every completion answers with the same canned text.
"""

from __future__ import annotations

import secrets
import string
import time
from typing import Any

CANNED_REPLY = "This is a canned reply from the local OpenAI server."
DEFAULT_MODEL = "gpt-4o-mini"
SEEDED_MESSAGES: list[dict[str, Any]] = [{"role": "user", "content": "Hello from a seeded completion."}]

_ID_ALPHABET = string.ascii_letters + string.digits


def new_completion_id() -> str:
    """An id shaped like the real ones: ``chatcmpl-`` and 29 letters or digits."""
    return "chatcmpl-" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(29))


def now() -> int:
    return int(time.time())


def _count_tokens(text: str) -> int:
    """A rough stand-in for a tokenizer; usage figures only need to be plausible."""
    return max(1, len(text.split()))


def message_text(message: dict[str, Any]) -> str:
    """The text of a request message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", "")) for part in content if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def build_completion(
    *,
    completion_id: str,
    model: str,
    messages: list[dict[str, Any]],
    metadata: dict[str, str],
    created: int,
) -> dict[str, Any]:
    prompt_tokens = sum(_count_tokens(message_text(message)) for message in messages)
    completion_tokens = _count_tokens(CANNED_REPLY)
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": CANNED_REPLY,
                    "refusal": None,
                    "annotations": [],
                },
                "finish_reason": "stop",
                "logprobs": None,
            }
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
        "metadata": dict(metadata),
        "service_tier": "default",
        "system_fingerprint": "fp_local_openai",
    }


def stored_messages(completion_id: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The request messages as ``GET /chat/completions/{id}/messages`` returns them (ids ``<id>-<n>``)."""
    stored: list[dict[str, Any]] = []
    for index, message in enumerate(messages):
        content = message.get("content")
        parts = content if isinstance(content, list) else None
        stored.append(
            {
                "id": f"{completion_id}-{index}",
                "role": message.get("role"),
                "content": message_text(message) if content is not None else None,
                "name": message.get("name"),
                "content_parts": parts,
            }
        )
    return stored


def deleted_object(completion_id: str) -> dict[str, Any]:
    return {"object": "chat.completion.deleted", "id": completion_id, "deleted": True}
