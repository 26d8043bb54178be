"""The rule parser: a request's fields from a genre lexicon and a few patterns, no model.

    parse_rules("a funny 80s film like Ghostbusters, nothing animated", GENRES)
    -> AskFields(include_genres=["Comedy"], exclude_genres=["Animation"], year_min=1980,
                 year_max=1989, like=["Ghostbusters"], ...)
    relative_edit("older", previous_fields, previous_items)   # a follow-up that moves the last turn

It is the floor the LLM parsers are measured against (bench/ask.py), and it reads the follow-ups
that only make sense against the last answer ("older", "more like the second one").
"""

from __future__ import annotations

import re

from models.ask.fields import DEFAULT_K, MAX_K, AskFields
from models.ask.rank import title_key

# words people use for each ML-100K genre (a genre's own name always counts)
GENRE_WORDS = {
    "Action": ["action", "explosive", "shoot-out", "shootout", "car chase"],
    "Adventure": ["adventure", "adventures", "adventurous", "quest", "swashbuckling"],
    "Animation": ["animated", "animation", "cartoon", "cartoons", "anime"],
    "Children's": ["children's", "childrens", "children", "kids", "kid", "family"],
    "Comedy": ["comedy", "comedies", "funny", "hilarious", "laugh", "humor", "humour", "comic"],
    "Crime": ["crime", "gangster", "gangsters", "heist", "mob", "mafia", "criminal"],
    "Documentary": ["documentary", "documentaries", "non-fiction", "real events"],
    "Drama": ["drama", "dramas", "dramatic"],
    "Fantasy": ["fantasy", "magic", "magical", "fairy tale", "fairy-tale"],
    "Film-Noir": ["film-noir", "film noir", "noir"],
    "Horror": ["horror", "scary", "frightening", "creepy", "spooky", "terrifying"],
    "Musical": ["musical", "musicals", "singing", "songs"],
    "Mystery": ["mystery", "mysteries", "whodunit", "detective", "puzzling"],
    "Romance": ["romance", "romantic", "love story", "romcom", "rom-com"],
    "Sci-Fi": ["sci-fi", "scifi", "science fiction", "science-fiction", "space", "futuristic"],
    "Thriller": ["thriller", "thrillers", "suspense", "suspenseful", "tense", "edge of my seat"],
    "War": ["war", "wartime", "battlefield", "soldiers"],
    "Western": ["western", "westerns", "cowboy", "cowboys", "wild west"],
}
NEGATORS = r"(?:no|not|nothing|without|avoid|except|skip|never|none|but not|isn't|n't be)"
DECADE_WORDS = {
    "twenties": 1920,
    "thirties": 1930,
    "forties": 1940,
    "fifties": 1950,
    "sixties": 1960,
    "seventies": 1970,
    "eighties": 1980,
    "nineties": 1990,
}
NUMBER_WORDS = {
    w: n
    for n, w in enumerate(
        "one two three four five six seven eight nine ten eleven twelve".split(), start=1
    )
}
ORDINALS = {"first": 0, "second": 1, "third": 2, "fourth": 3, "fifth": 4, "last": -1}
ORDINALS |= {"1st": 0, "2nd": 1, "3rd": 2, "4th": 3, "5th": 4}
LIKE_WORDS = (
    r"\b(?:like|similar to|in the vein of|such as|resembling|along the lines of|reminds me of)\s+"
)
LIKE_START = re.compile(LIKE_WORDS, re.I)
LIKE = re.compile(
    LIKE_WORDS + r"(?!the (?:first|second|third|fourth|fifth|last|\d)(?:\s+one)?\b)"
    r"([^,;.!?]+?)(?=\s*(?:[,;.!?]|\bbut\b|\bnothing\b|\bno\b|\bwithout\b|\bfrom\b|\bset\b|$))",
    re.I,
)
STOPWORDS = (
    set(
        "a an the i me my we want would like something some film films movie movies please show "
        "give find recommend for to of and or with that is it be from in on one ones any really very "
        "watch see tonight night maybe kind sort type good great nice can you could more less "
        "but nothing no not just also about made between similar vein lines reminds resembling "
        "such set older newer earlier later recent classic less".split()
    )
    | set(NUMBER_WORDS)
    | set(ORDINALS)
)


def _genre_spans(text: str) -> list[tuple[int, int, str]]:
    spans = []
    for genre, words in GENRE_WORDS.items():
        for word in [genre.lower(), *words]:
            for m in re.finditer(rf"(?<![\w-]){re.escape(word)}(?![\w-])", text):
                spans.append((m.start(), m.end(), genre))
    return spans


def _negated(text: str, start: int) -> bool:
    """A genre word with a negator among the few words before it, within its clause."""
    clause = re.split(r"[,;.!?]|\bbut\b|\band\b(?!\s+(?:no|not|nothing)\b)", text[:start])[-1]
    return re.search(rf"\b{NEGATORS}\b(?:\s+\S+){{0,3}}\s*$", clause) is not None


def _years(text: str) -> tuple[int | None, int | None]:
    if m := re.search(r"\bbetween\s+(\d{4})\s+(?:and|-|to)\s+(\d{4})\b", text):
        return int(m.group(1)), int(m.group(2))
    if m := re.search(r"\b(\d{4})\s*(?:-|–|to)\s*(\d{4})\b", text):
        return int(m.group(1)), int(m.group(2))
    if m := re.search(r"\b(?:19)?(\d)0'?s\b|\b'(\d)0s\b", text):
        decade = 1900 + 10 * int(m.group(1) or m.group(2))
        return decade, decade + 9
    for word, decade in DECADE_WORDS.items():
        if re.search(rf"\b{word}\b", text):
            return decade, decade + 9
    if m := re.search(r"\b(?:before|older than|earlier than|prior to|pre-?)\s*(\d{4})\b", text):
        return None, int(m.group(1)) - 1
    if m := re.search(r"\b(?:after|newer than|later than|since|post-?)\s*(\d{4})\b", text):
        return int(m.group(1)) + (0 if "since" in m.group(0) else 1), None
    if m := re.search(r"\b(?:from|in|of)\s+(19\d\d|20[0-3]\d)\b", text):
        return int(m.group(1)), int(m.group(1))
    return None, None


def _k(text: str) -> int:
    number = r"(\d{1,2}|" + "|".join(NUMBER_WORDS) + r")"
    if m := re.search(
        rf"(?:^|\b(?:top|me|show|give|find|recommend|want)\s+){number}\s+(?:[\w'-]+\s+){{0,2}}[\w'-]+s\b",
        text,
    ):
        value = m.group(1)
        return min(int(value) if value.isdigit() else NUMBER_WORDS[value], MAX_K)
    return DEFAULT_K


def _catalogue_titles(text: str, titles: dict[str, str]) -> list[str]:
    """The longest catalogue title right after each "like …": a title may hold commas and dots
    ("Paris, Texas", "G.I. Jane") that end the pattern's guess. `titles`: title_key -> title."""
    found = []
    for match in LIKE_START.finditer(text):
        words = text[match.end() :].split()[:12]
        for n in range(len(words), 0, -1):
            title = titles.get(title_key(" ".join(words[:n]).rstrip(",;.!?")))
            if title:
                found.append(" ".join(words[:n]).rstrip(",;.!?"))
                break
    return found


def parse_rules(
    text: str,
    genres: list[str],
    titles: dict[str, str] | None = None,
    named: list[str] | None = None,
) -> AskFields:
    """The fields the rules read in `text`; genres outside the catalogue's `genres` are dropped.
    With the catalogue's `titles` (title_key -> title), a named film is read as the longest
    catalogue title after "like"; otherwise up to the next comma or clause word. `named`: films
    another reader found in the text (their words are then no genre words either)."""
    text = " ".join(text.split())
    lower = text.lower()
    like = named or _catalogue_titles(text, titles or {})
    if not like:
        like = [m.group(1).strip(" '\"") for m in LIKE.finditer(text)]
    masked = lower
    for title in like:  # a title's words are no genre words ("like Star Wars" is no War film)
        masked = masked.replace(title.lower(), " " * len(title))
    include, exclude = [], []
    spans = sorted(_genre_spans(masked))
    for start, _, genre in spans:
        (exclude if _negated(masked, start) else include).append(genre)
    exclude = list(dict.fromkeys(exclude))
    include = [g for g in dict.fromkeys(include) if g not in exclude]
    low, high = _years(masked)
    consumed = {w for _, _, g in spans for w in [g.lower(), *GENRE_WORDS[g]]}
    keywords = [
        w
        for w in re.findall(r"[a-z][a-z'-]{2,}", masked)
        if w not in STOPWORDS and w not in consumed and w not in DECADE_WORDS
    ]
    return AskFields.from_dict(
        {
            "include_genres": include,
            "exclude_genres": exclude,
            "year_min": low,
            "year_max": high,
            "like": like,
            "keywords": keywords[:3],
            "k": _k(lower),
        },
        genres,
    )


def relative_edit(text: str, previous: AskFields, previous_items: list[dict]) -> dict:
    """What a follow-up changes that only the last turn gives meaning to: "older"/"newer" move the
    year range a decade (or below/above the last answer's films), "more like the second one" names
    a film of the last answer. `previous_items` are the last answer's items (title, year)."""
    lower = text.lower()
    out: dict = {}
    years = [i["year"] for i in previous_items if i.get("year")]
    if re.search(r"\b(?:older|earlier|classic|less recent)\b", lower):
        if previous.year_min is not None:
            out |= {"year_min": previous.year_min - 10, "year_max": previous.year_min - 1}
        elif years:
            out |= {"year_max": min(years) - 1}
    elif re.search(r"\b(?:newer|more recent|later|recent)\b", lower):
        if previous.year_max is not None:
            out |= {"year_min": previous.year_max + 1, "year_max": previous.year_max + 10}
        elif years:
            out |= {"year_min": max(years) + 1}
    if m := re.search(
        r"\bthe\s+(" + "|".join(ORDINALS) + r")(?:\s+one|\s+film|\s+movie)?\b", lower
    ):
        index = ORDINALS[m.group(1)]
        if previous_items and -len(previous_items) <= index < len(previous_items):
            out["like"] = [previous_items[index]["title"]]
    elif m := re.search(r"\b(?:number|#)\s*(\d{1,2})\b", lower):
        index = int(m.group(1)) - 1
        if 0 <= index < len(previous_items):
            out["like"] = [previous_items[index]["title"]]
    return out
