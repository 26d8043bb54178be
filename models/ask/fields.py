"""What a request in words becomes: typed fields the catalogue tools can apply exactly.

    fields = AskFields(include_genres=["Comedy"], year_min=1980, year_max=1989, like=["Ghostbusters"])
    fields.meets(genres={"Comedy"}, year=1984)     # the hard constraints, checked per film
    json_schema(GENRES)                            # what the LLM's decoding is constrained to
    follow_up(previous, edit)                      # a follow-up's fields applied to the last ones

Hard constraints (genres to include, all of them; genres to exclude; the year range) hold by
construction: the catalogue filter drops every film that breaks one, so an answer has fewer films
than asked rather than one that breaks the request. `like` and `keywords` only rank.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

MAX_K = 50
DEFAULT_K = 10
YEAR_RANGE = (1900, 2030)


@dataclass(frozen=True)
class AskFields:
    include_genres: list[str] = field(default_factory=list)  # every one of them
    exclude_genres: list[str] = field(default_factory=list)  # none of them
    year_min: int | None = None
    year_max: int | None = None
    like: list[str] = field(default_factory=list)  # titles as the request wrote them
    keywords: list[str] = field(default_factory=list)  # mood or topic words: ranking only
    k: int = DEFAULT_K

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict, genres: list[str]) -> AskFields:
        """Fields from a parser's JSON, cleaned: unknown genres and keys dropped, a genre both
        wanted and excluded excluded, years inside YEAR_RANGE and in order, k in 1..MAX_K."""
        known = {f.name for f in fields(cls)}
        data = {k: v for k, v in (data or {}).items() if k in known}
        by_lower = {g.lower(): g for g in genres}

        def genre_list(values) -> list[str]:
            out = []
            for value in values or []:
                genre = by_lower.get(str(value).strip().lower())
                if genre and genre not in out:
                    out.append(genre)
            return out

        def year(value) -> int | None:
            try:
                value = int(value)
            except (TypeError, ValueError):
                return None
            return value if YEAR_RANGE[0] <= value <= YEAR_RANGE[1] else None

        def texts(values) -> list[str]:
            out = []
            for value in values or []:
                text = " ".join(str(value).split())[:80]
                if text and text.lower() not in {t.lower() for t in out}:
                    out.append(text)
            return out[:5]

        exclude = genre_list(data.get("exclude_genres"))
        include = [g for g in genre_list(data.get("include_genres")) if g not in exclude]
        low, high = year(data.get("year_min")), year(data.get("year_max"))
        if low is not None and high is not None and low > high:
            low, high = high, low
        try:
            k = int(data.get("k") or DEFAULT_K)
        except (TypeError, ValueError):
            k = DEFAULT_K
        return cls(
            include_genres=include,
            exclude_genres=exclude,
            year_min=low,
            year_max=high,
            like=texts(data.get("like")),
            keywords=texts(data.get("keywords")),
            k=min(max(k, 1), MAX_K),
        )

    def meets(self, genres: set[str], year: int | None) -> bool:
        """Whether a film with these genres and release year meets every hard constraint (a film
        with no year meets no year bound)."""
        if not set(self.include_genres) <= genres or set(self.exclude_genres) & genres:
            return False
        if self.year_min is not None and (year is None or year < self.year_min):
            return False
        return not (self.year_max is not None and (year is None or year > self.year_max))

    def describe(self) -> str:
        """The fields in words, for the answer's header."""
        parts = []
        if self.include_genres:
            parts.append(" and ".join(self.include_genres))
        if self.exclude_genres:
            parts.append("no " + ", ".join(self.exclude_genres))
        if self.year_min is not None and self.year_min == self.year_max:
            parts.append(f"from {self.year_min}")
        elif self.year_min is not None or self.year_max is not None:
            parts.append(f"{self.year_min or '…'}–{self.year_max or '…'}")
        if self.like:
            parts.append("like " + ", ".join(self.like))
        if self.keywords:
            parts.append("about " + ", ".join(self.keywords))
        return "; ".join(parts) or "anything"


def json_schema(genres: list[str]) -> dict:
    """The JSON schema the LLM's decoding is held to (llama.cpp turns it into a grammar): genres
    only from the catalogue, years as integers, at most a few titles and keywords."""
    genre_list = {"type": "array", "items": {"enum": list(genres)}, "maxItems": 3}
    year = {"anyOf": [{"type": "integer", "minimum": 1900, "maximum": 2030}, {"type": "null"}]}
    text_list = {"type": "array", "items": {"type": "string", "maxLength": 60}, "maxItems": 3}
    return {
        "type": "object",
        "properties": {
            "include_genres": genre_list,
            "exclude_genres": genre_list,
            "year_min": year,
            "year_max": year,
            "like": text_list,
            "keywords": text_list,
            "k": {"type": "integer", "minimum": 1, "maximum": MAX_K},
        },
        "required": [
            "include_genres",
            "exclude_genres",
            "year_min",
            "year_max",
            "like",
            "keywords",
            "k",
        ],
        "additionalProperties": False,
    }


def follow_up(previous: AskFields, edit: AskFields, edit_text: str) -> AskFields:
    """A follow-up's fields over the last turn's: new genres add to the old ones (an exclusion
    removes the genre from those wanted), a new year range or `like` replaces the old, keywords add
    up, and k stays unless the follow-up names a number."""
    exclude = list(dict.fromkeys(previous.exclude_genres + edit.exclude_genres))
    include = [
        g
        for g in dict.fromkeys(previous.include_genres + edit.include_genres)
        if g not in edit.exclude_genres
    ]
    exclude = [g for g in exclude if g not in edit.include_genres]
    new_years = edit.year_min is not None or edit.year_max is not None
    return replace(
        previous,
        include_genres=include,
        exclude_genres=exclude,
        year_min=edit.year_min if new_years else previous.year_min,
        year_max=edit.year_max if new_years else previous.year_max,
        like=edit.like or previous.like,
        keywords=list(dict.fromkeys(previous.keywords + edit.keywords))[:5],
        k=edit.k if edit.k != DEFAULT_K or _names_a_number(edit_text) else previous.k,
    )


def _names_a_number(text: str) -> bool:
    return any(ch.isdigit() for ch in text)
