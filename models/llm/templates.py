"""Prompt templates: one text file per prompt under models/llm/prompts/, a system part and a user
part split by a line of ``---``; ``{data}`` in the user part takes the inputs as JSON (untrusted text
stays data). The version carries the file's hash, so editing a prompt invalidates the LLM cache."""

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
        if reminder:
            user += "\n" + reminder
        return [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
