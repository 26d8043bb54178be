"""The cold-item protocol (issue #34, Build 1): `cold_item_splits` holds films out of training,
SplitData reads it with every film of the catalog as a candidate at test and none of the held-out
ones at valid, models train without learning anything about those films, and
`cold_item_evaluation` writes top-k files that recompute its report. The dbt unit test
cold_item_splits_keep_cold_items_out_of_training checks the SQL on a toy table."""

import json
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
import torch
from support.protocols import recompute

from models.evaluation.cold_items import cold_item_report
from models.evaluation.refit import RefitRun
from models.recsys.cold_rows import CANDIDATES, nearest_mean_rows
from models.recsys.content_retriever import ContentRetriever
from models.recsys.data import SplitData
from models.recsys.llm_sasrec import LLMSASRec
from models.recsys.metrics import top_unseen
from models.recsys.sasrec import SASRec
from orchestration.core.warehouse import query


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_ts", "split"])
    return frame.assign(source_file="f", source_row=range(1, len(frame) + 1))


def _toy():
    """Films x, y, z known; c cold (one user's test); d in the catalog only."""
    rows = []
    for user in range(8):
        for t, item in enumerate(["x", "y", "z", "x", "y"][: 3 + user % 3]):
            rows.append((f"u{user}", item, t, "train"))
        rows.append((f"u{user}", "z" if user % 2 else "y", 10, "valid"))
    rows.append(("u0", "c", 11, "test"))
    return SplitData.from_splits(
        _frame(rows), cold_items=True, catalog=np.array(["x", "y", "z", "c", "d"])
    )


def test_every_catalog_film_is_a_candidate_at_test_and_no_cold_one_at_valid():
    data = _toy()
    assert sorted(data.items) == ["c", "d", "x", "y", "z"]
    index = {item: k for k, item in enumerate(data.items)}
    assert data.new_at_valid[index["c"]] and data.new_at_valid[index["d"]]
    assert not data.new_at_valid[index["x"]]
    assert data.not_candidates("test") is None
    u0 = list(data.users).index("u0")
    history = data.histories(np.array([u0]), "test")[0]
    assert [data.items[i] for i in history] == ["x", "y", "z", "y"]  # train then valid


def test_sasrec_learns_nothing_about_a_film_absent_from_train():
    """An untrained film's row starts at zero and stays there (it is in no input and, masked out of
    the softmax, in no loss term): the model has nothing to rank it by, rather than having learnt
    to push it down as a negative."""
    torch.manual_seed(0)
    data = _toy()
    model = SASRec(SASRec.Config(max_len=8, hidden=16, max_epochs=3, patience=3))
    model.fit(data, log=lambda _: None)
    rows = model.net.item_emb.weight[1:]
    untrained = torch.as_tensor(data.train_counts() == 0)
    assert untrained.sum() == 2 and torch.all(rows[untrained] == 0)
    assert torch.all(rows[~untrained].abs().sum(1) > 0)


def test_the_content_retriever_ranks_a_film_it_never_saw_by_its_text():
    data = _toy()
    index = {item: k for k, item in enumerate(data.items)}
    vectors = np.zeros((data.n_items, 3), np.float32)
    vectors[index["x"]], vectors[index["y"]], vectors[index["z"]] = (
        [1, 0, 0],
        [1, 0.1, 0],
        [0, 1, 0],
    )
    vectors[index["c"]], vectors[index["d"]] = [1, 0.05, 0], [0, 0, 1]  # c reads like x and y
    model = ContentRetriever(ContentRetriever.Config(center=False), item_text=vectors)
    model.fit(data, log=lambda _: None)
    u0 = list(data.users).index("u0")
    users, ranked, _, _ = top_unseen(model, data, "test", k=2)
    assert data.items[ranked[list(users).index(u0)][0]] == "c"
    with pytest.raises(ValueError, match="one text vector per item"):
        ContentRetriever(ContentRetriever.Config(), item_text=vectors[:3]).fit(data)


def _run(name, seed, hits):
    users = [f"u{k}" for k in range(len(hits))]
    per_user = pd.Series(np.asarray(hits, float), index=users)
    return RefitRun(name, seed, 0.0, 0.0, 1.0, per_user * 0.5, pd.DataFrame(), per_user)


def test_cold_item_report_gives_ratios_on_the_same_users_and_none_for_a_model_that_hits_nothing():
    runs = [
        _run("sasrec", 0, [0, 0, 0, 0]),
        _run("content_retriever", 0, [1, 0, 0, 0]),
        _run("llm_sasrec", 0, [1, 1, 0, 0]),
        _run("llm_sasrec", 1, [1, 0, 0, 0]),
    ]
    report = cold_item_report(runs)
    llm = report["models"]["llm_sasrec"]
    assert llm["hit_at_10"] == 0.375 and llm["seeds"] == [0, 1]
    assert llm["ratio_to_content_retriever"] == 1.5  # (1 + 0.5) / 1 over the same users
    assert llm["ratio_to_sasrec"] is None and llm["ratio_to_sasrec_ci"] is None
    assert report["order"][0] == "llm_sasrec" and report["best"] == "llm_sasrec"
    assert "ratio_to_content_retriever" not in report["models"]["content_retriever"]


def test_cold_item_splits_on_ml100k_keep_held_out_films_out_of_training(ml100k_runs):
    warehouse = ml100k_runs[0][-1].warehouse
    counts = query(
        warehouse,
        "select split, count(*) as n, count(distinct user_id) as users from cold_item_splits "
        "group by split",
    ).set_index("split")
    assert counts.loc["test", "n"] == counts.loc["test", "users"] > 100  # one film per test user
    leaked = query(
        warehouse,
        "select count(*) as n from cold_item_splits t where split = 'test' and exists ("
        "select 1 from cold_item_splits s where s.item_id = t.item_id and s.split != 'test')",
    )["n"].iloc[0]
    assert leaked == 0  # no test film is in anyone's train or valid
    late = query(
        warehouse,
        "select count(*) as n from cold_item_splits s join cold_item_splits t "
        "on s.user_id = t.user_id and t.split = 'test' and s.split != 'test' "
        "where s.event_ts > t.event_ts",
    )["n"].iloc[0]
    assert late == 0  # a test user's history is what came before the test


def test_cold_item_report_recomputes_from_its_topk_files(ml100k_runs):
    home = ml100k_runs[0][-1].home
    report = json.loads((home / "lake" / "reports" / "cold_items.json").read_text())
    assert set(report["models"]) >= {"popularity", "content_retriever", "sasrec", "llm_sasrec"}
    assert report["models"]["popularity"]["hit_at_10"] == 0.0  # a film nobody had counts nothing
    assert (home / "lake" / "reports" / "cold_items.png").stat().st_size > 0
    test = dict(
        query(
            ml100k_runs[0][-1].warehouse,
            "select user_id, item_id from cold_item_splits where split = 'test'",
        ).itertuples(index=False)
    )
    for name, version in report["versions"].items():
        _, recomputed = recompute(home, "eval_cold_items", name, version, test)
        assert report["models"][name]["test_users"] == len(test)
        if len(report["models"][name]["seeds"]) == 1:
            assert recomputed["recall@10"] == pytest.approx(
                report["models"][name]["hit_at_10"], abs=1e-4
            )


def test_an_untrained_film_borrows_the_rows_of_its_nearest_trained_films_by_text():
    rows = torch.tensor([[1.0, 0.0], [0.0, 2.0], [3.0, 3.0], [0.0, 0.0], [0.0, 0.0]])
    vectors = np.array([[1, 0], [0, 1], [1, 1], [1, 0.1], [0, 0]], np.float32)
    donors, targets = np.array([0, 1, 2]), np.array([3, 4])
    one = nearest_mean_rows(rows, vectors, donors, targets, k=1)
    # film 3 reads like film 0; film 4 has no text: the mean of every donor's row
    assert torch.equal(one[0], rows[0]) and torch.allclose(one[1], rows[:3].mean(0))
    two = nearest_mean_rows(rows, vectors, donors, targets, k=2)
    assert torch.allclose(two[0], (rows[0] + rows[2]) / 2)  # cos(3, 2) > cos(3, 1)
    scaled = nearest_mean_rows(rows, vectors, donors, targets, k=2, rescale=True)
    median = rows[:3].norm(dim=1).median()
    assert torch.allclose(scaled.norm(dim=1), median.expand(2))
    assert torch.allclose(scaled[0] / scaled[0].norm(), two[0] / two[0].norm())


def test_llm_sasrec_gives_untrained_films_rows_by_the_rule_pseudo_cold_valid_chose():
    data = _toy()
    vectors = np.random.default_rng(0).normal(size=(data.n_items, 4)).astype(np.float32)
    config = LLMSASRec.Config(max_len=8, hidden=16, max_epochs=2, patience=2, item_text="card")
    model = LLMSASRec(config, item_text=vectors)
    fit = model.fit(data, log=lambda _: None)
    assert [(t["k"], t["rescale"]) for t in fit.cold_rows] == list(CANDIDATES)
    best = max(fit.cold_rows, key=lambda t: t["valid_hr@10"])
    rows = model.net.item_emb.weight[1:].detach()
    trained = np.flatnonzero(data.train_counts() > 0)
    untrained = np.flatnonzero(data.train_counts() == 0)
    expected = (
        nearest_mean_rows(rows, vectors, trained, untrained, best["k"], best["rescale"])
        if best["k"]
        else torch.zeros(len(untrained), rows.shape[1])
    )
    assert torch.allclose(rows[untrained], expected)
    # without the rule the rows stay zero, as in SASRec
    plain = LLMSASRec(LLMSASRec.Config(**{**vars(config), "cold_rows": False}), item_text=vectors)
    assert plain.fit(data, log=lambda _: None).cold_rows == []
    assert torch.all(plain.net.item_emb.weight[1:][untrained] == 0)


def test_llm_card_vectors_need_an_llm_that_gives_hidden_states(tmp_path):
    """An OpenAI-style server gives no hidden states: the items get no llm_card_embedding, and a
    model asked for them says which column is missing instead of training on zeros."""
    from models.recsys.llm_sasrec import item_text_columns, text_vectors
    from orchestration.core.resources import LakeResource, LLMResource
    from orchestration.defs.llm.vectors import card_readings

    server = LLMResource(backend="openai", base_url="http://127.0.0.1:9/v1", model="m")
    assert card_readings(LakeResource(home=str(tmp_path)), server, ["Heat."], print) is None
    frame = pd.DataFrame({"item_id": ["1"], "card_embedding": [[1.0, 0.0]]})
    with pytest.raises(ValueError, match="no llm_card_embedding column"):
        text_vectors(np.array(["1"]), frame, "item_id", item_text_columns("llm_card"))


def test_a_film_landed_without_events_is_trained_for_and_served_from_the_next_night(tmp_path):
    """Build 5: `load_splits` takes every film of dim_items (so a model gets a row for one nobody
    has picked yet), and a night's candidates are the films with an event before it or landed before
    it; a film landing later is never served early."""
    import duckdb

    from orchestration.core.resources import LakeResource
    from orchestration.core.warehouse import load_splits
    from orchestration.defs.serving.scoring import seen_by

    lake = LakeResource(home=str(tmp_path))
    with duckdb.connect(str(lake.warehouse_path)) as con:
        con.execute(
            "create table splits as select * from (values "
            "('a', 'x', timestamp '2000-01-01', 'train', 'f', 1), "
            "('a', 'y', timestamp '2000-01-02', 'train', 'f', 2), "
            "('b', 'x', timestamp '2000-01-02', 'train', 'f', 3)) "
            "t(user_id, item_id, event_ts, split, source_file, source_row)"
        )
        con.execute(
            "create table dim_items as select * from (values ('x', date '2000-01-01'), "
            "('y', date '2000-01-01'), ('z', date '2000-01-03'), ('w', date '2000-01-05')) "
            "t(item_id, first_landed_on)"
        )
    data, _ = load_splits(lake.warehouse_path)
    assert list(data.items) == ["w", "x", "y", "z"] and data.train_counts().tolist() == [0, 2, 1, 0]
    night = datetime(2000, 1, 4, tzinfo=UTC)  # lists served on Jan 4 from data before it
    assert seen_by(lake, night, data.items, data.train_counts()).tolist() == [
        False,
        True,
        True,
        True,
    ]
    with duckdb.connect(str(lake.warehouse_path)) as con:  # a snapshot: no landing days
        con.execute("update dim_items set first_landed_on = null")
    assert seen_by(lake, night, data.items, data.train_counts()).tolist() == [
        False,
        True,
        True,
        False,
    ]
    assert seen_by(lake, night, data.items, None) is None
