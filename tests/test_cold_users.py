"""The cold-user protocol (issue #34, Build 1): `cold_user_splits` holds people out of training,
SplitData reads each context size with their first events as history only, and
`cold_user_evaluation` writes top-k files that recompute its report. The dbt unit test
cold_user_splits_hold_cold_users_out_of_training checks the SQL on a toy table."""

import json

import numpy as np
import pandas as pd
import pytest
from support.protocols import recompute

from models.evaluation.cold_users import CONTEXT_SIZES, cold_user_data
from orchestration.core.warehouse import query


def _toy() -> pd.DataFrame:
    """Warm users w0..w3 (train, then valid); cold user c with 6 events, at each context size."""
    rows = []
    for user in range(4):
        for t, item in enumerate(["x", "y", "z", "x"][: 3 + user % 2]):
            rows.append((f"w{user}", item, t, "train", None))
        rows.append((f"w{user}", "y", 10, "valid", None))
    events = ["x", "z", "y", "v", "w", "x2"]
    for size in CONTEXT_SIZES:
        for t, item in enumerate(events[: size + 1]):
            rows.append(("c", item, 20 + t, "context" if t < size else "test", size))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "event_ts", "split", "context_size"])
    return frame.assign(source_file="f", source_row=range(1, len(frame) + 1))


def test_a_cold_user_is_seen_only_through_their_first_events_and_never_trained_on():
    datas = cold_user_data(_toy(), catalog=np.array(["v", "w", "x", "x2", "y", "z", "q"]))
    assert sorted(datas) == [1, 3, 5]
    c = list(datas[1].users).index("c")
    for size, data in datas.items():
        assert len(data.train[c]) == 0 and data.valid[c] == -1
        assert [data.items[i] for i in data.histories(np.array([c]), "test")[0]] == [
            "x",
            "z",
            "y",
            "v",
            "w",
        ][:size]
        assert data.items[data.test[c]] == ["z", "v", "x2"][CONTEXT_SIZES.index(size)]
        assert data.not_candidates("test") is None  # every film, also those only c has met
    w0 = list(datas[1].users).index("w0")
    assert [datas[5].items[i] for i in datas[5].train[w0]] == ["x", "y", "z"]


def test_cold_user_splits_on_ml100k_keep_held_out_users_out_of_training(ml100k_runs):
    warehouse = ml100k_runs[0][-1].warehouse
    counts = query(
        warehouse,
        "select context_size, count(distinct user_id) as users, count(*) as n "
        "from cold_user_splits where split = 'test' group by 1 order by 1",
    )
    # 15% of each activity decile of ML-100K's 943 users (all have 20+ ratings): ceil(0.15 * 94.3)
    assert counts["context_size"].tolist() == [1, 3, 5]
    assert counts["users"].nunique() == 1 and 140 <= counts["users"].iloc[0] <= 150
    assert (counts["users"] == counts["n"]).all()  # one test event per user and size
    mixed = query(
        warehouse,
        "select count(*) as n from cold_user_splits c join cold_user_splits t "
        "on c.user_id = t.user_id and c.split in ('context', 'test') and t.split in ('train', 'valid')",
    )["n"].iloc[0]
    assert mixed == 0  # a cold user has no row any model trains or selects on


def test_cold_user_report_recomputes_from_its_topk_files(ml100k_runs):
    home = ml100k_runs[0][-1].home
    report = json.loads((home / "lake" / "reports" / "cold_users.json").read_text())
    assert sorted(report["context_sizes"], key=int) == ["1", "3", "5"]
    assert (home / "lake" / "reports" / "cold_users.png").stat().st_size > 0
    for size, sized in report["context_sizes"].items():
        assert set(sized["models"]) >= {"popularity", "content_retriever", "sasrec", "llm_sasrec"}
        test = dict(
            query(
                ml100k_runs[0][-1].warehouse,
                "select user_id, item_id from cold_user_splits "
                "where split = 'test' and context_size = ?",
                [int(size)],
            ).itertuples(index=False)
        )
        for name, version in report["versions"].items():
            _, recomputed = recompute(
                home, "eval_cold_users", name, version, test, context_size=int(size)
            )
            if len(sized["models"][name]["seeds"]) == 1:
                assert recomputed["recall@10"] == pytest.approx(
                    sized["models"][name]["hit_at_10"], abs=1e-4
                )
