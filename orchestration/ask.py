"""`reclake ask`: films for a request in words, from the lakehouse's own tools.

    service = AskService.load(home)                        # catalogue, cards, champion, parser
    answer = service.answer("1", "a funny 80s film like Ghostbusters, nothing animated")
    answer = service.answer("1", "older", session="s1")    # a follow-up edits the session's fields

The parser (models/ask: rules, or a ladder LLM held to a JSON schema) only turns the words into
fields. The tools do the rest: the catalogue filter (every hard constraint, so no film that breaks
the request is ever listed), the champion's scores for the user's history (the warehouse's events,
the named films appended as the latest), text similarity over item cards and LLM profiles
(lake/embeddings), and the user's seen films left out. A user with no history is cold: popularity
orders the films instead. Each film's reason comes from its card or profile and is checked for
claims they lack.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from models import registry
from models.ask.fields import AskFields, follow_up
from models.ask.guard import AskInputError, check_request
from models.ask.parsers import DEFAULT_PARSER, load_parser
from models.ask.rank import Catalogue, rank, reason, reason_support
from models.ask.rules import parse_rules, relative_edit
from orchestration.core.feast import bind_ranking_stats
from orchestration.core.files import write_json_atomic
from orchestration.core.paths import Lake
from orchestration.core.warehouse import query, user_history

PARSE_FAILED = "the parser's fields did not parse"
SESSION_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class AskError(RuntimeError):
    """The lakehouse cannot answer yet (no champion, no catalogue): exit status 2 too."""


@dataclass
class AskService:
    home: Path
    catalogue: Catalogue
    cards: np.ndarray  # unit vectors of the item cards (MiniLM), catalogue order
    profile_vectors: np.ndarray | None  # of the LLM profiles, zero rows where none
    profiles: dict[str, str]
    popularity: np.ndarray  # events per film: what a cold user's list is ordered by
    champion: object
    parser_name: str
    parse: object

    @classmethod
    def load(
        cls, home: Path, parser: str = DEFAULT_PARSER, cache_dir: Path | None = None, log=print
    ):
        lake = Lake(home)
        if not lake.warehouse.exists():
            raise AskError(f"no warehouse at {lake.warehouse}: run the pipeline first (make demo)")
        items = query(
            lake.warehouse,
            "select i.item_id, i.title, i.release_year, i.genres, coalesce(n.events, 0) as events "
            "from main.dim_items i left join (select item_id, count(*) as events from "
            "main.fct_interactions group by item_id) n using (item_id) order by i.item_id",
        )
        catalogue = Catalogue.from_frame(items)
        try:
            champion = registry.load_champion(registry.connect(lake.mlflow_dir))
        except registry.NoChampionError as err:
            raise AskError(str(err)) from None
        cards, profile_vectors = _card_vectors(lake, catalogue)
        profiles_path = lake.profiles("item")
        profiles = {}
        if profiles_path.exists():
            frame = pd.read_parquet(profiles_path, columns=["item_id", "profile"])
            profiles = dict(zip(frame["item_id"].astype(str), frame["profile"]))
        return cls(
            home,
            catalogue,
            cards,
            profile_vectors,
            profiles,
            items["events"].to_numpy(dtype=np.float64),
            champion,
            parser,
            load_parser(parser, catalogue, cache_dir or lake.cache, log=log),
        )

    def personal_scores(self, user_id: str, history: list[str], like_rows: list[int]) -> np.ndarray:
        """The champion's score of every catalogue film for this history with the named films as
        its latest events (a sequential model reads "like X" as "X was just watched")."""
        recommender = self.champion.recommender
        sequence = history + [self.catalogue.item_ids[r] for r in like_rows]
        known = recommender.item_index.reindex(sequence).dropna().astype(np.int64).to_numpy()
        user = recommender.user_index.reindex([user_id]).fillna(-1).astype(np.int64).to_numpy()
        bind_ranking_stats(recommender.model, self.home, "duckdb", datetime.now(UTC))
        scores = recommender.model.score_all(user, [known]).float().cpu().numpy()[0]
        out = np.full(len(self.catalogue.item_ids), np.nanmin(scores) - 1.0)
        position = recommender.item_index.reindex(self.catalogue.item_ids)
        mapped = position.notna().to_numpy()
        out[mapped] = scores[position[mapped].astype(np.int64).to_numpy()]
        return out

    def keyword_similarity(self, keywords: list[str]) -> np.ndarray | None:
        if not keywords:
            return None
        from models.text.embeddings import encode_texts

        query_vector = encode_texts([", ".join(keywords)])[0]
        similarity = self.cards @ query_vector
        if self.profile_vectors is not None:
            similarity = np.maximum(similarity, self.profile_vectors @ query_vector)
        return similarity

    def answer(
        self,
        user_id: str,
        text: str,
        session: str | None = None,
        history: list[str] | None = None,
    ) -> dict:
        """The answer dict (DESIGN.md's contract). `history` overrides the warehouse's (the
        benchmark passes the events before a held-out film)."""
        started = time.perf_counter()
        user_id = str(user_id).strip()
        if not user_id:
            raise AskInputError("--user is empty")
        request, notices = check_request(text)
        state = self._session(session, user_id)
        try:
            fields = self.parse(request)
        except ValueError as err:  # an LLM's answer cut short: the rules read the request instead
            notices.append(f"{PARSE_FAILED} ({err}); the rules read the request instead")
            fields = parse_rules(request, self.catalogue.genre_vocabulary)  # titles cut at commas
        if state:
            relative = relative_edit(request, AskFields(**state["fields"]), state["items"])
            edit = AskFields.from_dict(
                {**fields.to_dict(), **relative}, self.catalogue.genre_vocabulary
            )
            fields = follow_up(AskFields(**state["fields"]), edit, request)
        like_rows = []
        for title in fields.like:
            found = self.catalogue.resolve_titles([title])
            if not found:
                notices.append(f"no film called {title!r} in the catalogue: ranked without it")
            like_rows += [r for r in found if r not in like_rows]
        if history is None:
            history = user_history(Lake(self.home).warehouse, user_id)
        history = list(history)
        named = np.zeros(len(self.catalogue.item_ids), dtype=bool)
        named[like_rows] = True
        seen = self.catalogue.with_same_titles(np.isin(self.catalogue.item_ids, history) | named)
        if history:
            personal = self.personal_scores(user_id, history, like_rows)
        else:
            notices.append(f"user {user_id} has no history here: films ordered by popularity")
            personal = self.popularity.copy()
        like_sim = (self.cards @ self.cards[like_rows].T).max(axis=1) if like_rows else None
        meets = self.catalogue.meets(fields)
        rows, scores = rank(
            fields,
            meets,
            personal,
            seen,
            like_rows,
            like_sim,
            self.keyword_similarity(fields.keywords),
        )
        if len(rows) < fields.k:
            notices.append(
                f"{f'only {len(rows)}' if len(rows) else 'no'} unseen film{'s' * (len(rows) != 1)} "
                f"meet{'s' * (len(rows) == 1)} the request ({fields.describe()}); "
                "no film that breaks it was added"
            )
        items = [self._item(fields, row, score, like_rows) for row, score in zip(rows, scores)]
        for position, item in enumerate(items, start=1):
            item["rank"] = position
        if session:
            self._save_session(session, user_id, fields, items)
        return {
            "user_id": user_id,
            "request": text,
            "fields": {
                **fields.to_dict(),
                "like_item_ids": [str(self.catalogue.item_ids[r]) for r in like_rows],
            },
            "items": items,
            "model_name": self.champion.model_name if history else "popularity",
            "model_version": str(self.champion.version) if history else None,
            "parser": self.parser_name,
            "session": session,
            "notices": notices,
            "seconds": round(time.perf_counter() - started, 3),
        }

    def _item(self, fields: AskFields, row: int, score: float, like_rows: list[int]) -> dict:
        item_id, year = str(self.catalogue.item_ids[row]), self.catalogue.years[row]
        profile = self.profiles.get(item_id)
        line = reason(fields, self.catalogue, row, like_rows, profile)
        cards = [self.catalogue.cards[r] for r in [row, *like_rows]]
        if reason_support(
            line, cards, profile
        ):  # the whole line checked again: its card part alone
            line = reason(fields, self.catalogue, row, like_rows, None)
        return {
            "item_id": item_id,
            "title": self.catalogue.titles[row],
            "year": None if np.isnan(year) else int(year),
            "rank": 0,
            "score": round(float(score), 4),
            "reason": line,
        }

    def _session_path(self, session: str) -> Path:
        if not SESSION_NAME.match(session):
            raise AskInputError(f"--session {session!r}: letters, digits, '.', '_', '-' only")
        return Lake(self.home).cache / "ask" / "sessions" / f"{session}.json"

    def _session(self, session: str | None, user_id: str) -> dict | None:
        if not session or not (path := self._session_path(session)).exists():
            return None
        state = json.loads(path.read_text())
        if state["user_id"] != user_id:
            raise AskInputError(f"session {session!r} belongs to user {state['user_id']}")
        return state

    def _save_session(
        self, session: str, user_id: str, fields: AskFields, items: list[dict]
    ) -> None:
        path = self._session_path(session)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"user_id": user_id, "fields": fields.to_dict(), "items": items}
        write_json_atomic(payload, path)


def _card_vectors(lake: Lake, catalogue: Catalogue) -> tuple[np.ndarray, np.ndarray | None]:
    """The cards' and profiles' MiniLM vectors from lake/embeddings (what the llm group wrote);
    every card encoded now when it lacks one (a home whose llm group has not run)."""
    path = lake.embeddings("items")
    frame = pd.read_parquet(path).set_index("item_id") if path.exists() else pd.DataFrame()
    if "card_embedding" in frame and pd.Index(catalogue.item_ids).isin(frame.index).all():
        cards = np.stack(frame.loc[catalogue.item_ids, "card_embedding"].to_numpy()).astype(
            np.float32
        )
    else:
        from models.text.embeddings import encode_texts

        cards = encode_texts(catalogue.cards)
    profiles = None
    if "profile_embedding" in frame and frame.get("has_profile", pd.Series(dtype=bool)).any():
        rows = frame.reindex(catalogue.item_ids)
        has = rows["has_profile"].fillna(False).to_numpy(dtype=bool)
        profiles = np.zeros_like(cards)
        profiles[has] = np.stack(rows.loc[has, "profile_embedding"].to_numpy())
    return cards, profiles


def render(answer: dict) -> str:
    """The answer for a terminal: the fields read, the notices, one film a line with its reason."""
    version = f" v{answer['model_version']}" if answer["model_version"] else ""
    fields = AskFields(**{k: v for k, v in answer["fields"].items() if k != "like_item_ids"})
    lines = [
        f"user {answer['user_id']}: {fields.describe()} ({answer['model_name']}{version}, "
        f"parser {answer['parser']})"
    ]
    lines += [f"  note: {n}" for n in answer["notices"]]
    lines += [
        f"  {i['rank']:>3}. {i['title']} ({i['year'] or '?'}) - {i['reason']}"
        for i in answer["items"]
    ]
    return "\n".join(lines)
