"""The timeline protocol (issue #33, Build 2): `timeline_splits` cuts every user at the same moment,
SplitData reads it (history up to the test cutoff, no item from after the valid cutoff at valid),
and `timeline_evaluation` writes top-k files that recompute its report, beside leave-one-out's order.
The dbt unit test timeline_splits_cut_every_user_at_the_same_moment checks the SQL on a toy table."""

import json

import numpy as np
import pandas as pd
import pytest
import torch
from support.protocols import recompute

from models.evaluation.refit import RefitRun
from models.evaluation.timeline import compare_protocols
from models.recsys.data import SplitData
from models.recsys.metrics import top_unseen
from orchestration.core.warehouse import query


def _frame(rows):
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_ts", "split"])
    return frame.assign(source_file="f", source_row=range(1, len(frame) + 1))


def test_timeline_test_history_is_everything_before_the_cutoff_and_new_items_are_no_valid_candidates():
    data = SplitData.from_splits(
        _frame(
            [
                ("a", "x", 1, "train"),
                ("b", "x", 2, "train"),
                ("b", "y", 3, "train"),
                ("a", "z", 5, "context"),  # z first seen after the valid cutoff
                ("a", "y", 6, "valid"),
                ("b", "z", 7, "valid"),
                ("a", "w", 8, "test"),
            ]
        ),
        timeline=True,
    )
    index = {item: k for k, item in enumerate(data.items)}
    a = list(data.users).index("a")
    assert [data.items[i] for i in data.histories(np.array([a]), "test")[0]] == ["x", "z", "y"]
    assert [data.items[i] for i in data.histories(np.array([a]), "valid")[0]] == ["x"]
    assert data.new_at_valid[index["z"]] and data.new_at_valid[index["w"]]
    assert not data.new_at_valid[index["x"]]
    users, ranked, _, _ = top_unseen(_PrefersNewItems(data, ["z", "w"]), data, "valid", k=1)
    assert [data.items[i] for i in ranked[list(users).index(a)]] == ["y"]


class _PrefersNewItems:
    """A stand-in model (not a recommender) that scores the given items highest: were they
    candidates at valid, they would top every list."""

    def __init__(self, data, items):
        self.scores = torch.as_tensor(np.isin(data.items, items).astype(np.float32))

    def score_all(self, users, histories):
        return self.scores.expand(len(users), -1)


def _run(name, seed, ndcg, users):
    per_user = pd.Series(np.full(len(users), ndcg), index=users)
    return RefitRun(name, seed, ndcg, ndcg, 1.0, per_user, pd.DataFrame())


def test_protocol_comparison_gives_both_orders_and_kendall_tau():
    users = ["1", "2", "3"]
    runs = [_run("a", 0, 0.3, users), _run("b", 0, 0.2, users), _run("c", 0, 0.1, users)]
    same = compare_protocols({"a": 0.5, "b": 0.4, "c": 0.3}, runs)
    assert same["timeline_order"] == ["a", "b", "c"] and same["kendall_tau"] == 1.0
    flipped = compare_protocols({"a": 0.3, "b": 0.4, "c": 0.5}, runs)
    assert flipped["loo_order"] == ["c", "b", "a"] and flipped["kendall_tau"] == -1.0
    assert same["models"]["a"]["timeline_ci"] == [0.3, 0.3]


def test_timeline_splits_on_ml100k_never_train_on_what_comes_after(ml100k_runs):
    warehouse = ml100k_runs[0][-1].warehouse
    bounds = query(
        warehouse,
        "select split, min(event_ts) as first, max(event_ts) as last, count(*) as n, "
        "count(distinct user_id) as users from timeline_splits group by split",
    ).set_index("split")
    assert bounds.loc["train", "last"] < bounds.loc["valid", "first"]
    assert bounds.loc["context", "last"] < bounds.loc["test", "first"]
    assert bounds.loc["valid", "last"] < bounds.loc["test", "first"]
    assert bounds.loc["test", "n"] == bounds.loc["test", "users"]  # one test event per user
    unknown = query(
        warehouse,
        "select count(*) as n from timeline_splits t where split = 'test' and not exists ("
        "select 1 from timeline_splits s where s.item_id = t.item_id and s.split != 'test')",
    )["n"].iloc[0]
    assert unknown == 0  # every test item was seen before the cutoff


def test_timeline_report_recomputes_from_its_topk_files(ml100k_runs):
    home = ml100k_runs[0][-1].home
    report = json.loads((home / "lake" / "reports" / "timeline.json").read_text())
    assert set(report["models"]) == {
        "popularity",
        "content_retriever",
        "ease",
        "sasrec",
        "llm_sasrec",
    }
    assert sorted(report["loo_order"]) == sorted(report["timeline_order"])
    assert -1.0 <= report["kendall_tau"] <= 1.0
    assert (home / "lake" / "reports" / "timeline.png").stat().st_size > 0
    test = dict(
        query(
            ml100k_runs[0][-1].warehouse,
            "select user_id, item_id from timeline_splits where split = 'test'",
        ).itertuples(index=False)
    )
    for name, version in report["versions"].items():
        topk, recomputed = recompute(home, "eval_timeline", name, version, test)
        assert set(topk["seed"]) == set(report["models"][name]["seeds"])
        assert report["models"][name]["test_users"] == len(test)
        if len(report["models"][name]["seeds"]) == 1:
            assert recomputed["ndcg@10"] == pytest.approx(
                report["models"][name]["timeline_ndcg_at_10"], abs=1e-4
            )
