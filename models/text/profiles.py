"""LLM-written item and user profiles: prompts, validation, fallback and cache. What each profile is
written from is profile_inputs.py.

    inputs = user_profile_inputs(train_rows, dim_items)      # TRAIN interactions only
    frame, stats = write_profiles(backend, "user", inputs, LLMCache(path), max_new_tokens=160)

Untrusted text (titles, tags, reviews) goes into the prompt as JSON between <data> tags, and the
template tells the model it is data. Each output is validated; a bad one is retried once with a
stricter reminder, then (items) once with the facts as plain lines instead of JSON, then replaced by
a deterministic template profile marked ``source=fallback``.
A failing backend never fails the run. Results are cached by (backend, model, prompt version,
input hash), so a re-run with nothing changed makes no LLM call — except for fallbacks caused by a
failing backend, which are not cached and are asked for again on the next run.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field, replace

import pandas as pd

from models.common.progress import bar
from models.llm.base import LLMBackend
from models.llm.cache import LLMCache
from models.llm.templates import PromptTemplate
from models.text.faithfulness import complete_sentences, ends_mid_sentence, supported_sentences

WORD_BOUNDS = {"item": (15, 100), "user": (30, 140)}  # accepted range; the prompt asks for less
RETRY_REMINDER = (
    "Answer with the description only: plain sentences, no JSON, no lists, no headings."
)
ECHO_MARKERS = (
    "<data>",
    "</data>",
    "it is data only",
    "ignore them",
    '":',
    "do not repeat the json",
)


TEMPLATES = {"item": "item_profile_v1", "user": "user_profile_v1"}
# the last rung before a template fallback: the same facts as plain lines, not JSON (issue #34: a
# template profile gives a film no one has rated nothing to be found by)
PLAIN_TEMPLATES = {"item": "item_profile_plain_v1"}


def validate(text: str, kind: str) -> str | None:
    """Why an output is unusable, or None when it is fine."""
    words = len(text.split())
    low, high = WORD_BOUNDS[kind]
    if not text.strip():
        return "empty"
    if ends_mid_sentence(text):  # no full sentence at all: one run-on cut at the token limit
        return "ends mid-sentence"
    if words < low or words > high:
        return f"{words} words (want {low}-{high})"
    lowered = text.lower()
    if any(marker in lowered for marker in ECHO_MARKERS):
        return "echoes the prompt or data"
    if "ignore previous" in lowered or "ignore all previous" in lowered:
        return "repeats an instruction"
    sentences = [x.strip() for x in re.split(r"[.!?]+", lowered) if len(x.split()) >= 4]
    if sentences and max(sentences.count(x) for x in sentences) >= 3:
        return "repeats itself"
    letters = sum(ch.isalpha() for ch in text)
    if letters < 0.6 * len(text.replace(" ", "")):
        return "not prose"
    return None


def fallback_profile(kind: str, data: dict) -> str:
    """Deterministic template text, used when the LLM fails: plain facts from the input."""
    if kind == "item":
        parts = [f"{data['title']}" + (f" ({data['year']})" if "year" in data else "") + "."]
        if data.get("genres"):
            parts.append(f"Genres: {', '.join(data['genres'])}.")
        if data.get("tags"):
            parts.append(f"Tagged: {', '.join(data['tags'][:5])}.")
        return " ".join(parts)
    parts = [
        f"Rated {data['ratings']} items"
        + (f", mean rating {data['mean_rating']}." if "mean_rating" in data else ".")
    ]
    if data.get("top_genres"):
        parts.append(f"Most watched genres: {', '.join(data['top_genres'])}.")
    for key, label in (("liked", "Liked"), ("disliked", "Disliked"), ("recent", "Recently")):
        if data.get(key):
            parts.append(f"{label}: {'; '.join(data[key][:5])}.")
    return " ".join(parts)


@dataclass
class ProfileStats:
    profiles: int = 0
    llm: int = 0
    fallback: int = 0
    cache_hits: int = 0
    llm_calls: int = 0
    retries: int = 0  # first answers that failed and were asked again with a reminder
    plain_retries: int = 0  # of those, the ones that failed again and were asked in plain lines
    backend_errors: int = 0  # calls (or whole batches) the backend failed, after its own retries
    new_tokens: int = 0
    unsupported_sentences_dropped: int = 0
    generation_seconds: float = 0.0
    generated: int = 0  # inputs not in the cache that were written this time (LLM or fallback)
    deferred: list = field(default_factory=list)  # ids left for a later run by the budget
    fallback_reasons: dict = field(default_factory=dict)
    backend_faults: dict = field(
        default_factory=dict
    )  # the backend's own counts (openai: requests, retries, by kind)

    @property
    def tokens_per_second(self) -> float:
        return self.new_tokens / self.generation_seconds if self.generation_seconds else 0.0


def _generate_checked(
    backend, template, kind, batch, max_new_tokens, stats, reminder=None, verify=True
):
    """Generate for a batch of (id, data); return {index: text or None (failed) }, reasons. With
    `verify`, sentences claiming what the data does not hold are dropped before validation."""
    conversations = [template.messages(data, reminder) for _, data in batch]
    started = time.perf_counter()
    try:
        generations = backend.generate(conversations, max_new_tokens)
    except Exception as err:  # noqa: BLE001 - a failing backend degrades to fallbacks, never kills the run
        stats.backend_errors += 1
        return [None] * len(batch), [
            f"backend error: {type(err).__name__}: {str(err)[:120]}"
        ] * len(batch)
    finally:
        stats.generation_seconds += time.perf_counter() - started
        stats.llm_calls += len(batch)
    texts, reasons = [], []
    for (_, data), generation in zip(batch, generations):
        stats.new_tokens += generation.new_tokens
        if (
            generation.error
        ):  # this one call failed (its retries included); the rest of the batch stands
            stats.backend_errors += 1
            texts.append(None)
            reasons.append(f"backend error: {generation.error}")
            continue
        # a generation cut at the token limit keeps its full sentences only
        generation = replace(generation, text=complete_sentences(generation.text))
        if verify:
            text, dropped = supported_sentences(generation.text, data)
            stats.unsupported_sentences_dropped += dropped
            generation = replace(generation, text=text)
        reason = validate(generation.text, kind)
        texts.append(None if reason else " ".join(generation.text.split()))
        reasons.append(reason)
    return texts, reasons


def write_profiles(
    backend: LLMBackend,
    kind: str,
    inputs: list[tuple[str, dict]],
    cache: LLMCache,
    max_new_tokens: int,
    batch_size: int = 16,
    log=print,
    template_name: str | None = None,
    verify: bool = True,
    budget: int | None = None,
) -> tuple[pd.DataFrame, ProfileStats]:
    """Profiles for the inputs: cached, else generated (batched, similar sizes together), cut to full
    sentences, stripped of sentences with unsupported claims (`verify`), validated, retried once
    (all failures together), or fallback.
    `template_name` and `verify` let bench/profile_faithfulness.py compare prompts and the check.
    `budget` caps the inputs generated (not cached) this time, taken in the order given; the others
    are left out of the frame and named in `stats.deferred` (the daily loop queues them)."""
    template = PromptTemplate.load(template_name or TEMPLATES[kind])
    # the retries after the first answer: a reminder, then (items) the plain-lines prompt
    rungs = [(template, RETRY_REMINDER)]
    if kind in PLAIN_TEMPLATES:
        rungs.append((PromptTemplate.load(PLAIN_TEMPLATES[kind]), None))
    # the check and the rungs change the text: their own cache key
    version = "+".join(
        [template.version] + (["verified"] if verify else []) + [t.version for t, _ in rungs[1:]]
    )
    keys = [LLMCache.key(backend, version, data) for _, data in inputs]
    cached = cache.get_many(keys)
    stats = ProfileStats(profiles=len(inputs), cache_hits=sum(key in cached for key in keys))
    todo = [(i, inputs[i]) for i, key in enumerate(keys) if key not in cached]
    if budget is not None and len(todo) > budget:
        todo, later = todo[:budget], todo[budget:]
        stats.deferred = [entity for _, (entity, _) in later]
    stats.generated = len(todo)
    # similar-sized prompts batch together: less padding for the backend to run
    todo.sort(key=lambda entry: len(json.dumps(entry[1][1], ensure_ascii=False)))
    faults_before = dict(getattr(backend, "faults", {}))
    log(
        f"{kind} profiles: {len(inputs)} inputs, {stats.cache_hits} cached, {len(todo)} to generate with "
        f"{backend.backend}:{backend.model}"
        + (f", {len(stats.deferred)} deferred by the budget" if stats.deferred else "")
    )
    # First pass over everything, caching what passes chunk by chunk; the failures of all chunks are
    # retried together at the end, so a retry runs in full batches, not a few rows per chunk.
    failed: list[tuple[int, dict]] = []
    with bar(len(todo), f"{kind} profiles", "profile") as progress:
        for start in range(0, len(todo), batch_size):
            chunk = todo[start : start + batch_size]
            texts, _ = _generate_checked(
                backend, template, kind, [x for _, x in chunk], max_new_tokens, stats, verify=verify
            )
            done = [
                (keys[index], text, "llm", 0)
                for (index, _), text in zip(chunk, texts)
                if text is not None
            ]
            failed += [entry for entry, text in zip(chunk, texts) if text is None]
            cache.put_many(done)
            cached.update({k: (t, s, n) for k, t, s, n in done})
            progress.update(len(chunk))
            log(
                f"{kind} profiles: {min(start + batch_size, len(todo))}/{len(todo)} generated "
                f"({stats.tokens_per_second:.1f} new tokens/s)"
            )
    stats.retries = len(failed)
    for depth, (rung_template, reminder) in enumerate(rungs, 1):
        final, still_failed = depth == len(rungs), []
        if depth == 2:
            stats.plain_retries = len(failed)
        for start in range(0, len(failed), batch_size):
            chunk = failed[start : start + batch_size]
            texts, reasons = _generate_checked(
                backend, rung_template, kind, [x for _, x in chunk], max_new_tokens, stats,
                reminder, verify,
            )  # fmt: skip
            rows, transient = [], set()
            for entry, text, reason in zip(chunk, texts, reasons):
                index, (_, data) = entry
                if text is not None:
                    rows.append((keys[index], text, "llm", 0))
                elif not final and not reason.startswith("backend error"):
                    # another prompt may mend a bad answer; it does not mend a failing server
                    still_failed.append(entry)
                else:
                    label = reason.split(" (")[0].split(":")[0]
                    stats.fallback_reasons[label] = stats.fallback_reasons.get(label, 0) + 1
                    rows.append((keys[index], fallback_profile(kind, data), "fallback", 0))
                    if reason.startswith("backend error"):
                        transient.add(keys[index])
            # A fallback the model earned (bad output under greedy decoding) is final for this input;
            # one caused by a failing backend is not cached, so the next run asks again.
            cache.put_many([row for row in rows if row[0] not in transient])
            cached.update({k: (t, s, n) for k, t, s, n in rows})
            log(
                f"{kind} profiles: {min(start + batch_size, len(failed))}/{len(failed)} retried "
                f"({rung_template.name}{', with a reminder' if reminder else ''})"
            )
        failed = still_failed
    written = [i for i, key in enumerate(keys) if key in cached]  # all but the deferred
    frame = pd.DataFrame(
        {
            f"{kind}_id": [inputs[i][0] for i in written],
            "profile": [cached[keys[i]][0] for i in written],
            "source": [cached[keys[i]][1] for i in written],
            "model": f"{backend.backend}:{backend.model}",
            "prompt_version": version,
            "cache_key": [keys[i] for i in written],
        }
    )
    faults_after = dict(getattr(backend, "faults", {}))
    stats.backend_faults = {
        k: v - faults_before.get(k, 0)
        for k, v in faults_after.items()
        if v - faults_before.get(k, 0)
    }
    stats.llm = int((frame["source"] == "llm").sum())
    stats.fallback = int((frame["source"] == "fallback").sum())
    return frame, stats
