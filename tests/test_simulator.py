"""Simulated users (models/evaluation/simulator.py): the leakage guard on real ML-100K titles, the trust rule,
bad input counted, position bias, the cache, the choice model; and the nightly `simulated_feedback`
partition of the ML-100K pipeline run. Its figures per simulator are measured by bench/simulator.py."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from support.data import ML100K_DIR, TODAY
from support.pipelines import materializations

from models import registry
from models.evaluation.judge_probe import Calibration, ProbeJudge
from models.evaluation.simulator import simulate, summarize
from models.evaluation.simulator_choosers import ChoiceModel, LLMChooser
from models.evaluation.simulator_inputs import (
    HELDOUT_PAGE,
    MODEL_PAGE,
    Page,
    SimulatedUser,
    guard_leakage,
    simulation_inputs,
)
from models.llm.cache import LLMCache
from models.recsys.data import SplitData
from models.recsys.pair_probe import Probe

K = 10


@pytest.fixture(scope="module")
def names(slice_data):
    items = pd.read_csv(ML100K_DIR / "ml-100k.item", sep="\t", dtype=str)
    return dict(zip(items.iloc[:, 0], items.iloc[:, 1].fillna("")))


class StubBackend:
    """Fault injection: an LLM backend that answers from a script and counts its calls."""

    backend, model = "stub", "scripted"

    def __init__(
        self,
        answer=lambda labels: {label: 1.0 / len(labels) for label in labels},
        fail_on: str | None = None,
    ):
        self.answer, self.fail_on, self.calls = answer, fail_on, 0

    def score_choices(self, conversations, choices):
        self.calls += 1
        if self.fail_on and any(self.fail_on in json.dumps(c) for c in conversations):
            raise ConnectionError("injected backend failure")
        return [self.answer(choices) for _ in conversations]


def test_no_heldout_title_reaches_the_simulator_from_the_user_side(slice_data, names):
    users = [str(u) for u in slice_data.users[slice_data.eval_users("test")][:40]]
    index = {u: i for i, u in enumerate(slice_data.users)}
    heldout = {
        u: [
            names[str(slice_data.items[slice_data.valid[index[u]]])],
            names[str(slice_data.items[slice_data.test[index[u]]])],
        ]
        for u in users
    }
    # fault injection: every profile names the user's valid and test films, as an LLM might
    profiles = {u: f"Loves {heldout[u][0]} and {heldout[u][1]}; watches dramas." for u in users}
    lists = {("popularity", "1"): {u: [str(i) for i in slice_data.items[:K]] for u in users}}
    simulated, pages = simulation_inputs(
        slice_data,
        names,
        {i: f"{t}." for i, t in names.items()},
        profiles,
        lists,
        users,
        K,
        n_recent=10,
        seed=0,
    )
    chooser = LLMChooser(StubBackend(), {i: f"{t}." for i, t in names.items()})
    for user in simulated:
        assert user.redactions >= 2
        prompt = chooser.conversation(user, pages[user.user_id][0])[1]["content"]
        person = prompt[: prompt.index('"page":')]  # the user's side of the prompt, before the page
        for title in heldout[user.user_id]:
            assert not re.search(
                rf"(?<!\w){re.escape(json.dumps(title)[1:-1])}(?!\w)", person, re.IGNORECASE
            ), title
        held = [p for p in pages[user.user_id] if p.kind == HELDOUT_PAGE][0]
        test_item = str(slice_data.items[slice_data.test[index[user.user_id]]])
        assert (
            held.items.count(test_item) == 1 and len(held.items) == K and held.heldout == test_item
        )
        assert not set(held.items[1:]) & set(user.history)
    assert (
        len(
            {
                p.items.index(p.heldout)
                for u in simulated
                for p in pages[u.user_id]
                if p.kind == HELDOUT_PAGE
            }
        )
        > 3
    )
    # a repeat (the test film is already in the train history): skipped and counted, not leaked
    index_of_test = index[users[0]]
    repeat = SplitData(
        slice_data.users,
        slice_data.items,
        list(slice_data.train),
        slice_data.valid,
        slice_data.test,
    )
    repeat.train[index_of_test] = np.append(repeat.train[index_of_test], repeat.test[index_of_test])
    again, _ = simulation_inputs(
        repeat,
        names,
        {i: f"{t}." for i, t in names.items()},
        profiles,
        lists,
        users[:1],
        K,
        n_recent=10,
        seed=0,
    )
    assert again[0].unusable and not again[0].history
    counted = simulate(chooser, again, {users[0]: pages[users[0]]}, seed=0)
    assert (
        counted.unsimulated == {"held-out film already in the train history": 1}
        and counted.choices.empty
    )
    leaky = SimulatedUser("u", history=["1", "2"], recent_titles=[])
    with pytest.raises(ValueError, match=r"held-out item\(s\) \['2'\] in the simulator's history"):
        guard_leakage(leaky, {"2": "Some Film"})


class ScriptedChooser:
    """Fault injection: P(held-out item) and each model's P(a pick) set by the test."""

    name, needs_profile = "scripted", False

    def __init__(self, heldout_probability: float, pick_rate_of: dict[str, float]):
        self.heldout_probability, self.pick_rate_of = heldout_probability, pick_rate_of

    def choose(self, user, pages):
        out = []
        for page in pages:
            if page.kind == HELDOUT_PAGE:
                p = np.full(len(page.items), (1 - self.heldout_probability) / (len(page.items) - 1))
                p[page.items.index(page.heldout)] = self.heldout_probability
                out.append(np.append(p * 0.9, 0.1))
            else:
                rate = self.pick_rate_of[page.model_name]
                out.append(np.append(np.full(len(page.items), rate / len(page.items)), 1 - rate))
        return out


def _pages(n_users: int, models: list[str]) -> tuple[list[SimulatedUser], dict[str, list[Page]]]:
    users = [
        SimulatedUser(f"u{n}", history=[], recent_titles=[], profile="likes films")
        for n in range(n_users)
    ]
    rng = np.random.default_rng(0)
    pages = {
        u.user_id: [
            Page(
                f"{u.user_id}/heldout",
                u.user_id,
                HELDOUT_PAGE,
                list(map(str, rng.permutation(K))),
                heldout="0",
            )
        ]
        + [
            Page(f"{u.user_id}/{m}", u.user_id, MODEL_PAGE, [f"{m}{i}" for i in range(K)], m, "1")
            for m in models
        ]
        for u in users
    }
    return users, pages


def evaluator_check(popular_tau=1.0, random_tau=1.0, agreement=0.7, ci=(0.62, 0.78)):
    """What models/evaluation/evaluator_split.check_evaluator reports (the fields the rule reads)."""
    return {
        "ladder_tau": {"popular": popular_tau, "random": random_tau},
        "verdict_truth_agreement": agreement,
        "verdict_truth_ci": list(ci),
        "n_decisive": 900,
    }


def test_trusted_only_when_the_heldout_pick_rate_the_ladders_and_the_verdicts_all_hold():
    models = ["popularity", "ease", "sasrec", "two_stage"]
    ndcg = {(m, "1"): v for m, v in zip(models, [0.04, 0.07, 0.10, 0.12])}
    users, pages = _pages(60, models)
    agreeing = ScriptedChooser(0.5, dict(zip(models, [0.2, 0.3, 0.4, 0.5])))
    choices = simulate(agreeing, users, pages, seed=0).choices
    summary = summarize(choices, ndcg, K, evaluator_check())
    assert (
        summary["trusted"]
        and summary["kendall_tau"] == pytest.approx(1.0)
        and summary["n_models"] == 4
    )
    assert summary["ladder_tau"] == {"popular": 1.0, "random": 1.0} and summary["n_decisive"] == 900
    assert (
        summary["heldout_pick_rate"] == pytest.approx(0.5) and summary["heldout_pick_ci"][0] > 0.15
    )
    assert summary["pick_rate_by_model"]["sasrec"]["pick_rate"] == pytest.approx(0.4)
    # the model order against offline NDCG is reported, not a condition of trust
    reversed_ = ScriptedChooser(0.5, dict(zip(models, [0.5, 0.4, 0.3, 0.2])))
    summary = summarize(
        simulate(reversed_, users, pages, seed=0).choices, ndcg, K, evaluator_check()
    )
    assert summary["trusted"] and summary["kendall_tau"] == pytest.approx(-1.0)
    blind = ScriptedChooser(
        0.1, dict(zip(models, [0.2, 0.3, 0.4, 0.5]))
    )  # the held-out item at chance
    summary = summarize(simulate(blind, users, pages, seed=0).choices, ndcg, K, evaluator_check())
    assert not summary["trusted"] and "held-out pick rate" in summary["advisory_reason"]
    # a simulator that loves popular films fails the popular ladder; one at a coin, the verdicts
    summary = summarize(choices, ndcg, K, evaluator_check(popular_tau=-0.9))
    assert not summary["trusted"] and "popular ladder's tau is -0.90" in summary["advisory_reason"]
    summary = summarize(choices, ndcg, K, evaluator_check(agreement=0.52, ci=(0.48, 0.56)))
    assert not summary["trusted"] and "not clear of a coin" in summary["advisory_reason"]
    summary = summarize(choices, ndcg, K)
    assert (
        not summary["trusted"]
        and "not checked on the evaluator split" in summary["advisory_reason"]
    )


def test_backend_failure_empty_page_and_missing_profile_are_counted_fault_injected(tmp_path):
    users, pages = _pages(6, ["popularity"])
    users[1].profile = ""
    pages["u2"][1].items = []
    users[3].profile = "likes films that break the backend"
    chooser = LLMChooser(
        StubBackend(fail_on="break the backend"),
        {
            **{str(i): f"film {i}" for i in range(K)},
            **{f"popularity{i}": f"hit {i}" for i in range(K)},
        },
    )
    simulation = simulate(chooser, users, pages, seed=0)
    assert simulation.unsimulated == {
        "no profile": 1,
        "empty page": 1,
        "backend failure: ConnectionError": 1,
    }
    assert sorted(simulation.choices["user_id"].unique()) == ["u0", "u4", "u5"]
    assert (
        simulation.choices.groupby("page_id")["chosen"].sum() <= 1
    ).all()  # one pick or none per page


def test_a_simulator_that_always_answers_A_shows_its_position_bias_fault_injected(tmp_path):
    users, pages = _pages(20, ["popularity"])
    cards = {
        **{str(i): f"film {i}" for i in range(K)},
        **{f"popularity{i}": f"hit {i}" for i in range(K)},
    }
    first = StubBackend(answer=lambda labels: {label: float(label == "A") for label in labels})
    summary = summarize(simulate(LLMChooser(first, cards), users, pages, seed=0).choices, {}, K)
    assert summary["pick_rate_by_position"][1] == pytest.approx(1.0)
    assert summary["pick_rate_by_position"][K] == pytest.approx(0.0)
    fair = StubBackend()  # uniform over the page and "none": flat by position
    summary = summarize(simulate(LLMChooser(fair, cards), users, pages, seed=0).choices, {}, K)
    assert summary["position_max_over_min"] == pytest.approx(1.0)


def test_llm_answers_are_cached_by_model_template_and_prompt(tmp_path):
    users, pages = _pages(3, ["popularity"])
    cards = {
        **{str(i): f"film {i}" for i in range(K)},
        **{f"popularity{i}": f"hit {i}" for i in range(K)},
    }
    backend, cache = StubBackend(), LLMCache(tmp_path / "llm.sqlite")
    first = simulate(LLMChooser(backend, cards, cache), users, pages, seed=0).choices
    calls = backend.calls
    again = simulate(LLMChooser(backend, cards, cache), users, pages, seed=0).choices
    assert (
        calls == 3 and backend.calls == calls
    )  # one call per user (their pages share a prefix), then none
    pd.testing.assert_frame_equal(first, again)


def test_the_choice_model_learns_a_planted_taste_for_popular_films():
    rng = np.random.default_rng(0)
    n_items, d = 200, 8
    items = [str(i) for i in range(n_items)]
    vectors = rng.normal(size=(n_items, d))
    uninformative = Probe(
        np.zeros(3 * d), np.ones(3 * d), np.zeros(3 * d), 0.0
    )  # the judge says nothing
    judge = ProbeJudge(
        uninformative, Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0])), vectors, items
    )
    counts = {i: int(c) for i, c in zip(items, rng.zipf(1.5, n_items).clip(max=500))}
    popular = sorted(items, key=counts.get, reverse=True)
    histories = [list(rng.choice(items, size=15, replace=False)) for _ in range(300)]
    targets = [
        next(i for i in popular if i not in h) for h in histories
    ]  # each picks the most popular unseen film
    model = ChoiceModel(judge, counts)
    facts = model.fit(histories[:200], targets[:200])
    assert facts["weights"]["log_popularity"] > 1.0 and facts["valid_hit_rate_at_10"] > 0.9
    log_p = model.log_probabilities(histories[200:])
    picked = [log_p[row, int(t)] for row, t in enumerate(targets[200:])]
    assert np.exp(picked).mean() > 10 / n_items  # far above a uniform pick
    assert np.isneginf(
        log_p[0, [int(i) for i in histories[200]]]
    ).all()  # never a film already watched


@pytest.mark.integration
def test_simulated_feedback_partition_in_the_lake_mlflow_and_dagster(ml100k_runs, mlflow_client):
    runs, _ = ml100k_runs
    out = runs[-1].home / "lake" / "simulations" / f"date={TODAY}"
    summary = json.loads((out / "summary.json").read_text())
    choices = pd.read_parquet(out / "choices.parquet")
    assert list(choices.columns[:7]) == [
        "user_id",
        "page_id",
        "position",
        "item_id",
        "model_name",
        "model_version",
        "chosen",
    ]
    assert {
        "page_size",
        "heldout_pick_rate",
        "heldout_pick_ci",
        "kendall_tau",
        "n_models",
        "pick_rate_by_model",
        "trusted",
        "n_users",
    } <= set(summary)
    assert (
        summary["n_users"] == choices["user_id"].nunique() == 200
        and summary["unsimulated_users"] == 0
    )
    pages_per_user = choices.groupby("user_id")["page_id"].nunique()
    assert (pages_per_user == 1 + summary["n_models"]).all() and summary["n_models"] >= 4
    assert (choices.groupby("page_id")["chosen"].sum() <= 1).all()
    # each page holds one model's list, shuffled, under that model's name and version
    champion = mlflow_client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion")
    champion_pages = choices[(choices["model_name"] == champion.tags["model_name"])]
    assert set(champion_pages["model_version"]) == {str(champion.version)}
    # validation (a) on real ML-100K: the held-out film is picked far above 1/K (bench/simulator.py: 3.7x)
    assert summary["heldout_pick_ci"][0] > 1.5 / summary["page_size"]
    # the evaluator split's check decides trust (ladders, verdicts against held-out events)
    check = summary["evaluator_check"]
    assert check["n_decisive"] > 0 and set(check["ladder_tau"]) == {"popular", "random"}
    assert summary["trusted"] == (
        all(tau is not None and tau >= 0.8 for tau in check["ladder_tau"].values())
        and check["verdict_truth_ci"][0] > 0.5
    )
    assert (
        summary["trusted"]
        or "ladder" in summary["advisory_reason"]
        or "coin" in summary["advisory_reason"]
    )
    meta = materializations(runs[-1])["simulated_feedback"]
    assert (
        meta["pick_rate_vs_ndcg"].value.startswith("![")
        and meta["trusted"].value == summary["trusted"]
    )
    run = mlflow_client.get_run(meta["mlflow_run_id"].value)
    assert run.data.tags["dagster_asset_key"] == "simulated_feedback"
    assert run.data.metrics["heldout_pick_rate"] == pytest.approx(summary["heldout_pick_rate"])
    assert {a.path for a in mlflow_client.list_artifacts(run.info.run_id, "plots")} == {
        "plots/pick_rate_vs_ndcg.png",
        "plots/pick_rate_by_position.png",
        "plots/simulator_ladders.png",
    }
    assert meta["ladders"].value.startswith("![")


def test_a_choice_model_fitted_against_its_only_choices_learns_from_those_alone():
    """Sampled negatives: with the target against films of its own popularity only, popularity
    cannot explain the pick, so its weight is not learned (against every film it is, above)."""
    rng = np.random.default_rng(0)
    n_items, d = 200, 8
    items = [str(i) for i in range(n_items)]
    vectors = rng.normal(size=(n_items, d))
    uninformative = Probe(np.zeros(3 * d), np.ones(3 * d), np.zeros(3 * d), 0.0)
    judge = ProbeJudge(
        uninformative, Calibration(np.array([0.0, 1.0]), np.array([0.0, 1.0])), vectors, items
    )
    counts = {i: int(c) for i, c in zip(items, rng.zipf(1.5, n_items).clip(max=500))}
    popular = sorted(items, key=counts.get, reverse=True)
    histories = [list(rng.choice(items, size=15, replace=False)) for _ in range(200)]
    targets = [next(i for i in popular if i not in h) for h in histories]
    same_count = {
        t: [i for i in items if counts[i] == counts[t] and i != t and i not in h][:5]
        for t, h in zip(targets, histories)
    }
    negatives = [same_count[t] for t in targets]
    assert all(negatives), "every target has films of its own count to compete with"
    model = ChoiceModel(judge, counts)
    facts = model.fit(histories, targets, negatives=negatives)
    assert facts["negatives"] == "sampled"
    assert abs(facts["weights"]["log_popularity"]) < 0.1, facts
