"""The tools an answer is made of, as plain functions over arrays aligned with the catalogue.

    catalogue = Catalogue.from_frame(items)              # item_id, title, release_year, genres, card
    catalogue.resolve_titles(["ghostbusters"])           # the request's titles -> catalogue rows
    rows, scores = rank(fields, catalogue, personal, seen, like_rows, like_sim, keyword_sim)
    reason(fields, catalogue, row, like_rows, profile)   # one line, every word from a card/profile

The hard constraints are a mask (films that break one never get a score), so the list is short
rather than wrong. Within the mask the champion's own score for the user orders the films, nudged
by the text similarity to the films named in `like` and to the keywords.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from models.ask.fields import AskFields
from models.evaluation.judge_cards import item_card_texts, natural_title
from models.text.faithfulness import unsupported_claims

LIKE_WEIGHT = 0.5  # cosine of cards lies in about [0.2, 0.9]; the personal percentile in [0, 1]
KEYWORD_WEIGHT = 0.3


def title_key(title: str) -> str:
    """A title as compared: lower case, no year, a trailing article moved to the front, no
    punctuation ("Wizard of Oz, The (1939)" -> "the wizard of oz")."""
    title = re.sub(r"\s*\(\d{4}\)\s*$", "", title.lower())
    if m := re.match(r"^(.*), (the|a|an)$", title):  # ML-100K: "Wizard of Oz, The"
        title = f"{m.group(2)} {m.group(1)}"
    return re.sub(r"[^a-z0-9 ]+", "", title).strip()


@dataclass
class Catalogue:
    item_ids: np.ndarray  # str
    titles: list[str]
    years: np.ndarray  # float, NaN where unknown
    genres: list[set[str]]
    cards: list[str]

    @classmethod
    def from_frame(cls, items: pd.DataFrame) -> Catalogue:
        """From the warehouse's dim_items columns item_id, title, release_year, genres."""
        genres = items["genres"].fillna("").tolist()
        return cls(
            item_ids=items["item_id"].astype(str).to_numpy(),
            titles=[natural_title(t) for t in items["title"].fillna("")],
            years=items["release_year"].astype("float64").to_numpy(),
            genres=[set(filter(None, g.split("|"))) for g in genres],
            cards=item_card_texts(
                items["title"].fillna("").tolist(), items["release_year"].tolist(), genres
            ),
        )

    @cached_property
    def row_of(self) -> dict[str, int]:
        """item_id -> its row."""
        return {item: row for row, item in enumerate(self.item_ids)}

    @property
    def genre_vocabulary(self) -> list[str]:
        return sorted({g for gs in self.genres for g in gs} - {"unknown"})

    def meets(self, fields: AskFields) -> np.ndarray:
        return np.array(
            [
                fields.meets(g, None if np.isnan(y) else int(y))
                for g, y in zip(self.genres, self.years)
            ],
            dtype=bool,
        )

    def with_same_titles(self, mask: np.ndarray) -> np.ndarray:
        """The mask widened to every film titled like one in it: ML-100K lists 22 titles twice,
        under two ids, and a user who saw one has seen the other."""
        keys = pd.Series([title_key(t) for t in self.titles])
        return mask | keys.isin(set(keys[mask])).to_numpy()

    def resolve_titles(self, titles: list[str]) -> list[int]:
        """Catalogue rows of the titles a request names: an exact title, else the one title that
        starts with it, else the closest by characters (at least 0.75 alike); unmatched ones drop."""
        keys = [title_key(t) for t in self.titles]
        rows = []
        for title in titles:
            key = title_key(title)
            if not key:
                continue
            exact = [i for i, k in enumerate(keys) if k == key]
            prefix = [i for i, k in enumerate(keys) if k.startswith(key + " ")]
            close = difflib.get_close_matches(key, keys, n=1, cutoff=0.75)
            match = (
                exact or prefix[:1] or [keys.index(close[0])] if (exact or prefix or close) else []
            )
            rows += [r for r in match[:1] if r not in rows]
        return rows


def percentile(scores: np.ndarray) -> np.ndarray:
    """Each score's rank among all, in [0, 1] (ties share the mean rank): the champion's raw scores
    have no fixed scale across models, their order does."""
    return pd.Series(scores).rank(method="average", pct=True).to_numpy()


def rank(
    fields: AskFields,
    meets: np.ndarray,
    personal: np.ndarray,
    seen: np.ndarray,
    like_rows: list[int],
    like_sim: np.ndarray | None,
    keyword_sim: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The rows of the top `fields.k` films meeting the request (never a seen or named film) and
    their scores: the personal percentile plus the text similarities' nudges."""
    score = percentile(personal)
    if like_sim is not None:
        score = score + LIKE_WEIGHT * like_sim
    if keyword_sim is not None:
        score = score + KEYWORD_WEIGHT * keyword_sim
    allowed = meets & ~seen
    allowed[like_rows] = False
    candidates = np.flatnonzero(allowed)
    order = candidates[np.argsort(-score[candidates], kind="stable")][: fields.k]
    return order, score[order]


def reason(
    fields: AskFields, catalogue: Catalogue, row: int, like_rows: list[int], profile: str | None
) -> str:
    """One line on why this film, every fact from a card or a profile: the genres of its card that
    meet the request and its year, the genres it shares with the named film, and the request's
    keywords that its card or LLM profile contains word for word. A profile sentence is never
    quoted: SmolLM2's profiles invent specifics the lexical check lets through (docs/ask.md)."""
    genres, year = catalogue.genres[row], catalogue.years[row]
    wanted = [g for g in fields.include_genres if g in genres]
    parts = [
        (", ".join(wanted or sorted(genres - {"unknown"})) or "film")
        + (f" from {int(year)}" if not np.isnan(year) else "")
    ]
    for like in like_rows[:1]:
        shared = sorted((catalogue.genres[like] & genres) - {"unknown"})
        if shared:
            parts.append(f"shares {', '.join(shared)} with {catalogue.titles[like]}")
    for source, text in (("card", catalogue.cards[row]), ("profile", profile or "")):
        found = [k for k in fields.keywords if re.search(rf"\b{re.escape(k)}\b", text, re.I)]
        if found:
            parts.append(f"its {source} mentions {', '.join(repr(k) for k in found)}")
            break
    return "; ".join(parts) + "."


def reason_support(reason_text: str, cards: list[str], profile: str | None) -> list[str]:
    """The faithfulness check of a reason: what it claims that neither the cards it may draw on
    (the film's and the named films') nor the film's profile hold."""
    return unsupported_claims(reason_text, {"cards": cards, "profile": profile or ""})
