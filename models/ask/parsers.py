"""The parsers `reclake ask --parser` names, each a function text -> AskFields.

    rules                       the rule parser alone (models/ask/rules.py)
    <rung>                      a ladder LLM alone, held to the JSON schema (llm_parser.py)
    rules+<rung>                the rules, and the LLM only to find the film a request names when
                                the rules find none ("I loved Desperado"); a title it gives counts
                                only when the request holds it word for word (it copies, never
                                invents) and it is a catalogue title exactly ("comedy from the 80s"
                                is no film); its words then count as no genre words

bench/ask.py measures each; DEFAULT_PARSER is the fastest that meets the goals (docs/ask.md).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from models.ask.fields import AskFields
from models.ask.guard import AskInputError
from models.ask.rank import Catalogue, title_key
from models.ask.rules import parse_rules

LLM_RUNGS = ("smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b")
PARSERS = ("rules", *LLM_RUNGS, *(f"rules+{r}" for r in LLM_RUNGS))
DEFAULT_PARSER = "rules+qwen2.5-coder-0.5b"


def load_parser(name: str, catalogue: Catalogue, cache_dir: Path, threads: int = 2, log=print):
    if name not in PARSERS:
        raise AskInputError(f"--parser {name!r}: expected one of {', '.join(PARSERS)}")
    genres = catalogue.genre_vocabulary
    titles = {title_key(t): t for t in catalogue.titles}
    if name == "rules":
        return lambda text: parse_rules(text, genres, titles)
    from functools import cache

    from models.ask.llm_parser import LLMParser
    from models.llm.embedded import load_embedded

    @cache
    def llm() -> LLMParser:  # loaded when first needed: the rules read most requests alone
        rung = name.removeprefix("rules+")
        backend = load_embedded(
            cache_dir, model=rung, runtime="llamacpp", threads=threads, batch_size=1, log=log
        )
        return LLMParser(backend, genres)

    if not name.startswith("rules+"):
        llm()
        return lambda text: llm().parse(text)

    def rules_then_llm(text: str) -> AskFields:
        fields = parse_rules(text, genres, titles)
        if fields.like:
            return fields
        named = [
            t
            for t in llm().parse(text).like
            if t.lower() in text.lower() and title_key(t) in titles
        ]
        return replace(parse_rules(text, genres, titles, named), like=named) if named else fields

    return rules_then_llm
