"""Prompt templates: one text file per prompt under models/llm/prompts/, a system part and a user
part split by a line of ``---``; ``{data}`` in the user part takes the inputs as JSON, ``{fields}``
as plain "key: value" lines (untrusted text stays data, between the prompt's <data> tags). The
version carries the file's hash, so editing a prompt invalidates the LLM cache."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from models.llm.base import Message

PROMPT_DIR = Path(__file__).parent / "prompts"


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str
    version: str  # name@<sha256 prefix of the file>: editing the file invalidates the cache

    @classmethod
    def load(cls, name: str) -> PromptTemplate:
        text = (PROMPT_DIR / f"{name}.txt").read_text()
        system, user = (part.strip() for part in text.split("\n---\n", 1))
        return cls(name, system, user, f"{name}@{hashlib.sha256(text.encode()).hexdigest()[:8]}")

    def messages(self, data: dict, reminder: str | None = None) -> list[Message]:
        user = self.user.replace("{data}", json.dumps(data, ensure_ascii=False))
        user = user.replace("{fields}", plain_fields(data))
        if reminder:
            user += "\n" + reminder
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]


def plain_fields(data: dict) -> str:
    """The inputs as "key: value" lines, lists joined by commas: a small model copies JSON's syntax
    and words ("This article features a list ...") where it reads plain lines as a film's facts."""
    return "\n".join(
        f"{key}: {', '.join(map(str, value)) if isinstance(value, list) else value}"
        for key, value in data.items()
    )
