"""Faithful profiles (models/text/faithfulness.py): what counts as an unsupported claim, full sentences,
and the check that drops invented sentences inside the profile writer."""

from models.llm.base import Generation
from models.llm.cache import LLMCache
from models.text.faithfulness import (
    complete_sentences,
    ends_mid_sentence,
    faithfulness_report,
    genre_precision,
    supported_sentences,
    unsupported_claims,
)
from models.text.profiles import write_profiles

FARGO = {"title": "Fargo", "year": 1996, "genres": ["Crime", "Drama", "Thriller"]}


def test_claims_the_input_does_not_hold_are_found_and_paraphrases_of_it_pass():
    assert (
        unsupported_claims("Fargo is a 1996 crime drama for fans of dark thrillers.", FARGO) == []
    )
    claims = unsupported_claims(
        "Fargo won an Oscar and has a 7-star rating on IMDb. It was directed by Joel Coen.", FARGO
    )
    assert {"Oscar", "7-star", "IMDb", "Joel Coen"} <= set(claims)
    assert unsupported_claims("A 1994 classic.", FARGO) == ["1994"]


def test_genre_precision_counts_named_genres_among_the_users_top_ones():
    genres = ["Comedy", "Drama", "Horror", "Romance"]
    assert (
        genre_precision("Loves comedy and romance, avoids horror.", genres, ["Comedy", "Romance"])
        == 2 / 3
    )
    assert genre_precision("Likes films.", genres, ["Comedy"]) is None


def test_full_sentences_only():
    assert complete_sentences("A crime film. Fans of dark humour will") == "A crime film."
    assert ends_mid_sentence("Fans of dark humour will") and not ends_mid_sentence("A crime film.")


def test_sentences_with_unsupported_claims_are_dropped_and_the_rest_kept_in_order():
    text = "Fargo is a crime drama. It won three Oscars. Fans of thrillers will enjoy it."
    assert supported_sentences(text, FARGO) == (
        "Fargo is a crime drama. Fans of thrillers will enjoy it.",
        1,
    )
    assert supported_sentences("It won three Oscars.", FARGO) == ("", 1)


class ScriptedBackend:
    """A fake backend answering from a script per title, in call order (fault injection: invented
    claims on purpose)."""

    backend, model = "fake", "scripted"

    def __init__(self, answers: dict[str, list[str]]):
        self.answers, self.calls = {title: list(texts) for title, texts in answers.items()}, 0
        self.prompts: list[str] = []

    def generate(self, conversations, max_new_tokens):
        self.calls += len(conversations)
        self.prompts += [c[-1]["content"] for c in conversations]
        titles = [  # the JSON prompts, or the plain-lines rung's
            next(
                t
                for t in self.answers
                if f'"{t}"' in c[-1]["content"] or f"title: {t}\n" in c[-1]["content"]
            )
            for c in conversations
        ]
        return [Generation(self.answers[title].pop(0), 20) for title in titles]


def test_the_profile_writer_drops_invented_sentences_and_falls_back_when_nothing_true_is_left(
    tmp_path,
):
    inputs = [
        ("1", FARGO),
        ("2", {"title": "Babe", "year": 1995, "genres": ["Children's", "Comedy"]}),
        ("3", {"title": "Heat", "year": 1995, "genres": ["Action", "Crime"]}),
    ]
    invented = (
        "Fargo is a dark crime drama with a thriller's tension and a wry sense of humour. It won two Oscars "
        "including Best Actress for Frances McDormand. Fans of crime stories will enjoy it."
    )
    all_invented = "Babe won seven Academy Awards and grossed 250 million dollars worldwide on its first release."
    heat = "Heat is a 1995 action and crime film. Fans of tense crime stories and long shootouts will enjoy it."
    # Babe and Heat fail twice (first answer, reminder), then are asked with plain lines: Heat's is true
    script = {
        "Fargo": [invented],
        "Babe": [all_invented] * 3,
        "Heat": ["Heat won an Oscar in 1996."] * 2 + [heat],
    }
    backend = ScriptedBackend(script)
    frame, stats = write_profiles(
        backend,
        "item",
        inputs,
        LLMCache(tmp_path / "c.sqlite"),
        90,
        batch_size=2,
        log=lambda _: None,
    )
    assert frame["source"].tolist() == ["llm", "fallback", "llm"]
    assert stats.retries == 2 and stats.plain_retries == 2 and frame["profile"][2] == heat
    assert (
        sum("title: Heat\nyear: 1995\ngenres: Action, Crime\n" in p for p in backend.prompts) == 1
    )
    assert frame["profile"][0] == (
        "Fargo is a dark crime drama with a thriller's tension and a wry sense of humour. "
        "Fans of crime stories will enjoy it."
    )
    # Fargo 1, Babe 1 in each of its 3 answers, Heat 1 in each of its 2 failing ones
    assert stats.unsupported_sentences_dropped == 1 + 3 + 2
    assert "+verified+item_profile_plain_v1@" in frame["prompt_version"][0]
    report = faithfulness_report(frame, inputs, "item")
    assert report["profiles"] == 2 and report["with_unsupported_claim"] == 0.0
    # without the check the invented sentence stays, and the report finds it
    unchecked, _ = write_profiles(
        ScriptedBackend(script),
        "item",
        inputs,
        LLMCache(tmp_path / "d.sqlite"),
        90,
        batch_size=2,
        log=lambda _: None,
        verify=False,
    )
    # Fargo's and Babe's invented answers; not Heat's true one (its short first answers fail validation)
    assert faithfulness_report(unchecked, inputs, "item")["with_unsupported_claim"] == round(
        2 / 3, 4
    )
