"""How faithful an LLM profile is to the input it was written from.

    unsupported_claims(profile, data)   numbers, rating/award claims and names the input does not hold
    genre_precision(profile, genres, top_genres)
                                        of the genres a user profile names, the share among the
                                        user's top train genres (None when it names none)
    complete_sentences(text)            the text up to its last full sentence (generation stops at a
                                        token limit, often mid-sentence)
    supported_sentences(text, data)     the text without the sentences that make unsupported claims
    faithfulness_report(frame, inputs, kind, genres)
                                        the above over many profiles -> one dict of rates

The checks are lexical and conservative: a claim counts as unsupported only when its words do not
appear in the JSON the model was given, so paraphrases of the input pass and invented specifics
("7-star rating on IMDb", "won an Oscar", "directed by Steven Spielberg") do not.
"""

from __future__ import annotations

import json
import re

import pandas as pd

# claims a catalogue profile cannot make from ML-100K's title / year / genres input
RATING_AWARD_WORDS = re.compile(
    r"\b(imdb|rotten tomatoes|metacritic|oscars?|academy awards?|golden globes?|emmys?|award[- ]winning|"
    r"box[- ]office|\d+(\.\d+)?[- ]?stars?|critically acclaimed|nominated|grossed|bestsell\w*)\b",
    re.I,
)
NUMBER = re.compile(r"\b\d+(?:[.,]\d+)?\b")
# two or more capitalized words in a row, not at a sentence start: a person, place or work named
NAME = re.compile(
    r"(?<![.!?]\s)(?<!^)\b([A-Z][a-z]+(?:\s+(?:[A-Z][a-z]+|de|van|von|of|the))*\s+[A-Z][a-z]+)\b"
)
SENTENCE_END = re.compile(r"[.!?][\"')\]]?(?=\s|$)")


def _haystack(data: dict) -> str:
    return json.dumps(data, ensure_ascii=False).lower()


def unsupported_claims(profile: str, data: dict) -> list[str]:
    """What the profile asserts that its input does not contain (lower-cased matches)."""
    source = _haystack(data)
    claims = [
        m.group(0) for m in RATING_AWARD_WORDS.finditer(profile) if m.group(0).lower() not in source
    ]
    claims += [n for n in NUMBER.findall(profile) if n not in source]
    for name in NAME.findall(profile):
        words = [w for w in name.split() if w[0].isupper()]
        if not all(w.lower() in source for w in words):
            claims.append(name)
    return claims


def genre_precision(profile: str, genres: list[str], top_genres: list[str]) -> float | None:
    """Of the catalogue's genres the profile names, the share that are among the user's top genres."""
    lowered = profile.lower()
    named = [g for g in genres if re.search(rf"\b{re.escape(g.lower())}", lowered)]
    if not named:
        return None
    top = {g.lower() for g in top_genres}
    return sum(g.lower() in top for g in named) / len(named)


def ends_mid_sentence(text: str) -> bool:
    return not SENTENCE_END.search(text.rstrip()[-3:] if text.strip() else "")


def complete_sentences(text: str) -> str:
    """Up to the end of the last full sentence; the text unchanged when it has none."""
    text = text.strip()
    ends = [m.end() for m in SENTENCE_END.finditer(text)]
    return text[: ends[-1]] if ends else text


def supported_sentences(text: str, data: dict) -> tuple[str, int]:
    """The text without its sentences that assert something the input does not hold, and how many
    were dropped: a small model told to stick to the data still invents specifics (docs/llm.md), so the
    claims are checked after generation instead of trusted."""
    pieces, start = [], 0
    for match in SENTENCE_END.finditer(text):
        pieces.append(text[start : match.end()].strip())
        start = match.end()
    if text[start:].strip():
        pieces.append(text[start:].strip())
    kept = [p for p in pieces if not unsupported_claims(p, data)]
    return " ".join(kept), len(pieces) - len(kept)


def faithfulness_report(
    frame: pd.DataFrame, inputs: list[tuple[str, dict]], kind: str, genres: list[str] | None = None
) -> dict:
    """Rates over the LLM-written rows of a profile frame (fallbacks are templates: not counted)."""
    data_of = dict(inputs)
    rows = frame[frame["source"] == "llm"]
    id_column = f"{kind}_id"
    claims = [
        unsupported_claims(r.profile, data_of[getattr(r, id_column)]) for r in rows.itertuples()
    ]
    report = {
        "profiles": int(len(rows)),
        "with_unsupported_claim": round(sum(bool(c) for c in claims) / len(rows), 4)
        if len(rows)
        else None,
        "unsupported_claims_per_profile": round(sum(map(len, claims)) / len(rows), 4)
        if len(rows)
        else None,
        "ends_mid_sentence": round(float(rows["profile"].map(ends_mid_sentence).mean()), 4)
        if len(rows)
        else None,
        "examples": [c[0] for c in claims if c][:5],
    }
    if kind == "user" and genres:
        precision = [
            genre_precision(r.profile, genres, list(data_of[r.user_id].get("top_genres", {})))
            for r in rows.itertuples()
        ]
        named = [p for p in precision if p is not None]
        report["genre_precision"] = round(sum(named) / len(named), 4) if named else None
        report["names_a_genre"] = round(len(named) / len(rows), 4) if len(rows) else None
    return report
