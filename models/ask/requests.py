"""Requests in words built from a held-out film's own attributes, and the fields each implies.

    request = make_request(catalogue, test_row, like_row, level, rng)
    request.text       "a Comedy and Romance film from the 1990s like Sleepless in Seattle, no Horror"
    request.expected   AskFields(include_genres=[...], exclude_genres=["Horror"], year_min=1990, ...)

Three levels of vagueness: `clear` names the genres, decade and a film; `loose` says it in everyday
words (one genre's adjective, the decade in words); `vague` gives a mood and a film the user
enjoyed, no years and no exclusion. The held-out film's title never appears; the named film is
the one of the user's own history nearest to it (by card vectors). The phrasings were written
before the parsers were measured on them (bench/ask.py); a phrasing no parser reads is kept.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.ask.fields import AskFields
from models.ask.rank import Catalogue

LEVELS = ("clear", "loose", "vague")
EVERYDAY = {
    "Action": ["action-packed", "action"],
    "Adventure": ["adventurous", "adventure"],
    "Animation": ["animated", "cartoon"],
    "Children's": ["kids'", "family"],
    "Comedy": ["funny", "hilarious"],
    "Crime": ["crime", "gangster"],
    "Documentary": ["documentary", "non-fiction"],
    "Drama": ["dramatic", "serious"],
    "Fantasy": ["fantasy", "magical"],
    "Film-Noir": ["noir", "film noir"],
    "Horror": ["scary", "creepy"],
    "Musical": ["musical", "singing"],
    "Mystery": ["mysterious", "whodunit"],
    "Romance": ["romantic", "love story"],
    "Sci-Fi": ["sci-fi", "futuristic"],
    "Thriller": ["suspenseful", "tense"],
    "War": ["war", "wartime"],
    "Western": ["cowboy", "western"],
}
DECADE_WORDS = {1920: "twenties", 1930: "thirties", 1940: "forties", 1950: "fifties"}
DECADE_WORDS |= {1960: "sixties", 1970: "seventies", 1980: "eighties", 1990: "nineties"}
TEMPLATES = {
    "clear": [
        "a {genres} film from the {decade}s like {title}, no {exclude}",
        "{genres} movies from the {decade}s similar to {title}, nothing {exclude}",
        "recommend a {genres} film released in the {decade}s, something like {title}, but no {exclude}",
    ],
    "loose": [
        "something {adjective} from the {decade_words} like {title}, nothing {exclude_adjective}",
        "I want a {adjective} movie, {decade_words} maybe, along the lines of {title}, "
        "not {exclude_adjective}",
        "any {adjective} films from the '{short}s? similar to {title}. no {exclude_adjective} stuff",
    ],
    "vague": [
        "in the mood for something {adjective}, I loved {title}",
        "{adjective} please, like {title}",
        "what should I watch? something {adjective}, I enjoyed {title}",
    ],
}
COMMON_GENRES = ["Drama", "Comedy", "Action", "Thriller", "Romance", "Horror", "Sci-Fi", "War"]


@dataclass(frozen=True)
class Request:
    level: str
    text: str
    expected: AskFields
    like_row: int


def nearest_in_history(catalogue_cards: np.ndarray, test_row: int, history_rows: list[int]) -> int:
    """The history film whose card is nearest the held-out film's."""
    similarity = catalogue_cards[history_rows] @ catalogue_cards[test_row]
    return history_rows[int(np.argmax(similarity))]


def make_request(
    catalogue: Catalogue, test_row: int, like_row: int, level: str, rng: np.random.Generator
) -> Request | None:
    """One request about the held-out film at `test_row`; None when it has no genre or no year."""
    genres = sorted(catalogue.genres[test_row] - {"unknown"})
    year = catalogue.years[test_row]
    if not genres or np.isnan(year) or year < 1920:
        return None
    decade = int(year) // 10 * 10
    chosen = sorted(rng.choice(genres, size=min(2, len(genres)), replace=False).tolist())
    one = str(rng.choice(genres))
    exclude = str(rng.choice([g for g in COMMON_GENRES if g not in genres]))
    template = str(rng.choice(TEMPLATES[level]))
    text = template.format(
        genres=" and ".join(chosen),
        decade=decade,
        decade_words=DECADE_WORDS[decade],
        short=str(decade)[2:],
        title=catalogue.titles[like_row],
        exclude=exclude,
        adjective=str(rng.choice(EVERYDAY[one])),
        exclude_adjective=str(rng.choice(EVERYDAY[exclude])),
    )
    expected = AskFields(
        include_genres=chosen if level == "clear" else [one],
        exclude_genres=[] if level == "vague" else [exclude],
        year_min=None if level == "vague" else decade,
        year_max=None if level == "vague" else decade + 9,
        like=[catalogue.titles[like_row]],
    )
    return Request(level, text, expected, like_row)


def field_matches(parsed: AskFields, expected: AskFields, like_titles: list[str]) -> dict:
    """Per field, whether the parse got it exactly: genres as sets, the named film by the title it
    resolved to (ML-100K holds a few films twice, under two ids)."""
    return {
        "include_genres": set(parsed.include_genres) == set(expected.include_genres),
        "exclude_genres": set(parsed.exclude_genres) == set(expected.exclude_genres),
        "years": (parsed.year_min, parsed.year_max) == (expected.year_min, expected.year_max),
        "like": like_titles == expected.like,
    }


# requests that name no film: a parser that finds one here invents it (written after the first
# hybrid parser took "a comedy from the 80s" for a title; a check, not a benchmark level)
NO_FILM_REQUESTS = [
    "a comedy from the 80s",
    "something scary",
    "a romantic film for tonight",
    "an old western",
    "three sci-fi movies, no horror",
    "a family film",
    "something light and funny",
    "a war drama from the seventies",
    "a crime thriller",
    "a musical",
    "films with a strong female lead",
    "a feel-good movie about friendship",
    "something short and silly",
    "a detective story",
    "an epic adventure",
    "a sad drama about family",
    "a movie about space travel",
    "a film set in New York",
    "a classic from the fifties",
    "a documentary about music",
]
