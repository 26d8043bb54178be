"""The LLM cache: one SQLite file under RECLAKE_HOME/cache/llm that keeps every LLM answer by
(backend, model, prompt version, inputs), so a re-run with nothing changed makes no LLM call.
Profiles and the zero-shot simulator's choices are stored in it."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

from models.common.failpoints import failpoint
from models.llm.base import LLMBackend


class LLMCache:
    """SQLite under RECLAKE_HOME/cache/llm: key -> (text, source, new_tokens). One writer at a time."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.con = sqlite3.connect(str(path))
        self.con.execute(
            "create table if not exists profiles (key text primary key, text text not null, "
            "source text not null, new_tokens integer not null)"
        )

    @staticmethod
    def key(backend: LLMBackend, version: str, data: dict) -> str:
        payload = json.dumps(
            [backend.backend, backend.model, version, data], sort_keys=True, ensure_ascii=False
        )
        return hashlib.sha256(payload.encode()).hexdigest()

    def get_many(self, keys: list[str]) -> dict[str, tuple[str, str, int]]:
        found = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = self.con.execute(
                f"select key, text, source, new_tokens from profiles where key in "
                f"({','.join('?' * len(chunk))})",
                chunk,
            )
            found.update({k: (t, s, n) for k, t, s, n in rows})
        return found

    def put_many(self, rows: list[tuple[str, str, str, int]]) -> None:
        with self.con:  # one transaction: a crash leaves either all or none of a batch
            self.con.executemany("insert or replace into profiles values (?, ?, ?, ?)", rows)
            failpoint("profile_cache.mid_transaction")
