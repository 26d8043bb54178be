"""Next-day outcomes (models/evaluation/outcomes.py): hand-computed lists and events."""

import math

import numpy as np
import pandas as pd
import pytest

from models.evaluation.outcomes import (
    day_targets,
    new_items_on,
    score_lists,
    window_summary,
)


def lists_of(rows: dict[tuple[str, str], list[str]], role: str = "served") -> pd.DataFrame:
    """{(user, model): [item at rank 1, 2, ...]} as the lists' frame."""
    out = []
    for (user, model), items in rows.items():
        for rank, item in enumerate(items, start=1):
            out.append((user, item, rank, model, "1", role))
    return pd.DataFrame(
        out, columns=["user_id", "item_id", "rank", "model_name", "model_version", "role"]
    )


def test_targets_leave_out_items_already_in_the_users_history():
    events = pd.DataFrame({"user_id": ["u", "u", "v"], "item_id": ["a", "b", "a"]})
    before = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    targets = day_targets(events, before)
    assert sorted(map(tuple, targets.to_numpy())) == [("u", "b"), ("v", "a")]


def test_hit_ndcg_recall_and_new_item_hit_by_hand():
    lists = lists_of({("u", "m"): ["x", "a", "y", "b"], ("v", "m"): ["z", "w"], ("w", "m"): ["a"]})
    targets = pd.DataFrame({"user_id": ["u", "u", "u", "v"], "item_id": ["a", "b", "c", "q"]})
    per_user = score_lists(lists, targets, new_items={"b", "q"}).set_index("user_id")
    # w has no event that day: not scored
    assert list(per_user.index) == ["u", "v"]
    u, v = per_user.loc["u"], per_user.loc["v"]
    assert u["n_events"] == 3 and u["hit_at_10"] == 1.0
    dcg = 1 / math.log2(3) + 1 / math.log2(5)  # hits at ranks 2 and 4
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)  # three targets
    assert u["ndcg_at_10"] == pytest.approx(dcg / ideal)
    assert u["recall_at_10"] == pytest.approx(2 / 3)
    assert u["new_item_hit_at_10"] == 1.0  # b is new and hit
    assert v["hit_at_10"] == 0.0 and v["ndcg_at_10"] == 0.0 and v["new_item_hit_at_10"] == 0.0


def test_ranks_past_ten_do_not_count_and_no_new_target_gives_nan():
    lists = lists_of({("u", "m"): [f"i{r}" for r in range(1, 12)] + ["a"]})
    lists.loc[lists["item_id"] == "a", "rank"] = 11
    targets = pd.DataFrame({"user_id": ["u"], "item_id": ["a"]})
    row = score_lists(lists, targets, new_items=set()).iloc[0]
    assert row["hit_at_10"] == 0.0 and np.isnan(row["new_item_hit_at_10"])


def test_new_items_are_those_first_seen_in_the_fourteen_days_before():
    first_seen = pd.Series(
        pd.to_datetime(["1998-03-31", "1998-04-01", "1998-04-14", "1998-04-15"]),
        index=["old", "edge", "last", "today"],
    )
    assert new_items_on(first_seen, "1998-04-15") == {"edge", "last"}


def test_window_pairs_a_shadow_with_the_served_list_on_the_same_user_days():
    rows = []
    for day, user, served, shadow in [
        ("1998-04-01", "u", 1.0, 0.0),
        ("1998-04-02", "u", 1.0, 1.0),
        ("1998-04-02", "v", 0.0, 0.0),
        ("1998-03-20", "u", 0.0, 1.0),  # outside a 7-day window ending 04-02
    ]:
        for model, role, hit in (("champ", "served", served), ("pop", "shadow", shadow)):
            rows.append((day, user, model, role, hit))
    frame = pd.DataFrame(rows, columns=["date", "user_id", "model_name", "role", "hit_at_10"])
    frame["ndcg_at_10"] = frame["hit_at_10"]
    frame["new_item_hit_at_10"] = np.nan
    summary = window_summary(frame, "1998-04-02", 7)
    assert summary["champ"]["user_days"] == 3
    assert summary["champ"]["hit_at_10"] == pytest.approx(2 / 3, abs=1e-4)
    assert summary["pop"]["minus_served"] == pytest.approx(-1 / 3, abs=1e-4)
    low, high = summary["pop"]["minus_served_ci"]
    assert low <= -0.3333 <= high
    assert "minus_served" not in summary["champ"]
    assert summary["champ"]["new_item_hit_at_10"] is None


@pytest.mark.integration
def test_a_past_days_served_and_shadow_lists_are_scored_by_that_days_events(ml100k_runs):
    """On the trained ML-100K home: the lists of 1998-03-10 (the champion's, every other current
    model's and popularity over the 7 days before), scored by that day's events; the served hit
    rate recomputed here from the files."""
    import json

    import dagster as dg
    from dagster_pyspark import LazyPySparkResource

    from models import registry
    from orchestration.core.resources import LakeResource
    from orchestration.core.spark import spark_config
    from orchestration.core.warehouse import query
    from orchestration.defs.evaluation.outcomes import served_outcomes
    from orchestration.defs.serving.assets import batch_recommendations
    from orchestration.defs.serving.resources import ServingResource
    from orchestration.defs.serving.shadow import shadow_recommendations

    runs, _ = ml100k_runs
    home, day = runs[-1].home, "1998-03-10"
    with dg.DagsterInstance.ephemeral() as instance:
        result = dg.materialize(
            [batch_recommendations, shadow_recommendations, served_outcomes],
            partition_key=day,
            instance=instance,
            resources={
                "lake": LakeResource(home=str(home)),
                "serving": ServingResource(),
                "spark": LazyPySparkResource(spark_config=spark_config()),
            },
        )
    assert result.success
    client = registry.connect(home / "mlflow")
    champion = registry.load_champion(client)
    data_version = client.get_model_version(registry.REGISTERED_MODEL, champion.version).tags[
        "data_version"
    ]
    expected = set(registry.latest_per_model(client, data_version)) | {"popularity_7d"}
    summary = json.loads((home / "lake" / "outcomes" / f"date={day}" / "summary.json").read_text())
    assert set(summary["by_model"]) == expected
    assert summary["by_model"][champion.model_name]["role"] == "served"
    assert {m["role"] for n, m in summary["by_model"].items() if n != champion.model_name} == {
        "shadow"
    }
    lists = pd.read_parquet(home / "lake" / "recommendations" / f"date={day}")
    events = query(
        home / "warehouse.duckdb",
        "select user_id, item_id from fct_interactions where event_ts >= ? and event_ts < ?",
        [pd.Timestamp(day), pd.Timestamp(day) + pd.Timedelta(days=1)],
    )
    top = lists[lists["rank"] <= 10].merge(events.assign(hit=1), how="left")
    scored = top[top["user_id"].isin(events["user_id"])]
    hit_rate = scored.groupby("user_id")["hit"].max().fillna(0).mean()
    assert summary["n_users"] == scored["user_id"].nunique() > 0
    assert summary["by_model"][champion.model_name]["hit_at_10"] == pytest.approx(
        hit_rate, abs=1e-4
    )
    # popularity over the 7 days before: its first pick is the week's most-rated film
    week = query(
        home / "warehouse.duckdb",
        "select item_id from (select item_id, count(*) as n from fct_interactions where "
        "event_ts >= ? and event_ts < ? group by 1) qualify n = max(n) over ()",
        [pd.Timestamp(day) - pd.Timedelta(days=7), pd.Timestamp(day)],
    )
    popular = pd.read_parquet(
        home / "lake" / "shadow_recommendations" / f"date={day}" / "model_name=popularity_7d"
    )
    firsts = popular[popular["rank"] == 1]["item_id"].value_counts()
    assert firsts.index[0] in set(week["item_id"])


def test_the_ratio_to_a_baseline_is_paired_on_the_same_user_days():
    from models.evaluation.outcomes import against_baseline

    rows = []
    for i in range(40):  # champ hits on 20 user-days, the baseline on 10 of them
        day, user = f"1998-04-{1 + i % 4:02d}", f"u{i}"
        rows += [(day, user, "champ", "served", float(i < 20)),
                 (day, user, "pop", "shadow", float(i < 10))]  # fmt: skip
    rows.append(("1998-04-09", "lonely", "champ", "served", 1.0))  # no baseline row: left out
    frame = pd.DataFrame(rows, columns=["date", "user_id", "model_name", "role", "hit_at_10"])
    frame["ndcg_at_10"] = frame["hit_at_10"]
    frame["new_item_hit_at_10"] = np.nan
    report = against_baseline(frame, "pop")
    assert report["champ"]["user_days"] == 40 and report["champ"]["ratio_to_pop"] == 2.0
    low, high = report["champ"]["ratio_ci"]
    assert 1.0 < low < 2.0 < high
    assert report["pop"]["ratio_to_pop"] == 1.0


def test_the_gate_reads_outcomes_only_once_enough_days_are_scored():
    from models.evaluation.outcomes import challenger_evidence

    rows = []
    for day in range(1, 16):
        for user in range(20):
            served, shadow = float(user < 5), float(user < 10)
            date = f"1998-04-{day:02d}"
            rows += [(date, f"u{user}", "champ", "served", served),
                     (date, f"u{user}", "ease", "shadow", shadow)]  # fmt: skip
    frame = pd.DataFrame(rows, columns=["date", "user_id", "model_name", "role", "hit_at_10"])
    frame["ndcg_at_10"], frame["new_item_hit_at_10"] = frame["hit_at_10"], np.nan
    assert challenger_evidence(frame[frame["date"] <= "1998-04-13"], "1998-04-13") is None
    evidence = challenger_evidence(frame, "1998-04-15")
    assert evidence["days"] == 15 and set(evidence["shadows"]) == {"ease"}
    ease = evidence["shadows"]["ease"]
    assert ease["user_days"] == 300 and ease["minus_served"] == pytest.approx(0.25, abs=1e-4)
    assert 0 < ease["minus_served_ci"][0] < 0.25 < ease["minus_served_ci"][1]
