"""Group `evaluation`: the profile-aware LLM judge on the champion's and a baseline's lists.

judge_evaluations[D]  sampled users; pointwise 1-5 scores of the champion's and popularity's test
                      top-k, the held-out test item and random unseen items; pairwise champion vs
                      baseline in both orders -> lake/judge_evaluations/date=D/{pointwise,pairwise}.parquet,
                      summary.json (judge_auc, position_bias_rate, win rates), an MLflow run with plots
"""

import tempfile
from pathlib import Path

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from models import registry
from models.judge import Judge, auc, sample_users
from orchestration.defs.evaluation import plots
from orchestration.defs.llm.resources import LLMResource
from orchestration.defs.serving.partitions import daily_partitions
from orchestration.defs.training.assets import latest_versions, load_splits, png_markdown
from orchestration.lake import write_json_atomic, write_parquet_atomic
from orchestration.lineage import run_tags
from orchestration.resources import LakeResource

EVALUATION_CODE_VERSION = "1"
BASELINE_MODEL = "popularity"


class JudgeConfig(dg.Config):
    n_users: int = 200
    k: int = 10  # items of each list judged
    n_random: int = 10  # random unseen items per user: the negatives of judge_auc
    seed: int = 0


def _eval_topk(lake: LakeResource, model_name: str, version: str, k: int) -> dict[str, list[str]]:
    path = lake.home_path / "lake" / "eval_topk" / f"model_name={model_name}" / f"model_version={version}"
    frame = pd.read_parquet(path)
    frame = frame[frame["rank"] <= k].sort_values(["user_id", "rank"])
    return frame.groupby("user_id")["item_id"].apply(list).to_dict()


def _item_cards(lake: LakeResource) -> dict[str, dict]:
    """What the judge reads of an item: title, genres and (shortened) LLM profile."""
    with duckdb.connect(str(lake.warehouse_path), read_only=True) as con:
        items = con.execute("select item_id, title, genres from main.dim_items").df()
    profiles = pd.read_parquet(lake.home_path / "lake" / "profiles" / "items" / "profiles.parquet")
    items = items.merge(profiles[["item_id", "profile"]], on="item_id", how="left")
    return {row.item_id: {"title": row.title or f"item {row.item_id}", "genres": row.genres or "",
                          "profile": (row.profile or "")[:300]} for row in items.itertuples()}


@dg.asset(group_name="evaluation", code_version=EVALUATION_CODE_VERSION, partitions_def=daily_partitions,
          deps=["batch_recommendations", "user_profiles", "item_profiles", "champion_model"],
          kinds={"pytorch", "parquet", "mlflow"},
          description="Profile-aware LLM judge: pointwise and pairwise scores of the champion vs popularity, "
                      "calibrated by the AUC of the held-out item against random unseen items.")
def judge_evaluations(context: dg.AssetExecutionContext, config: JudgeConfig, lake: LakeResource,
                      llm: LLMResource) -> dg.MaterializeResult:
    date = context.partition_key
    client = registry.connect(lake.home_path)
    data, data_version = load_splits(lake)
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS)
    versions = {row["model_name"]: row for row in latest_versions(client, data_version)}
    if BASELINE_MODEL not in versions:
        raise dg.Failure(f"no {BASELINE_MODEL} version on data version {data_version}: materialize popularity_model first")
    champ_name, base = champion.tags["model_name"], versions[BASELINE_MODEL]
    champ_lists = _eval_topk(lake, champ_name, str(champion.version), config.k)
    base_lists = _eval_topk(lake, BASELINE_MODEL, base["version"], config.k)
    cards = _item_cards(lake)
    user_profiles = pd.read_parquet(lake.home_path / "lake" / "profiles" / "users" / "profiles.parquet")
    profile_of = dict(zip(user_profiles["user_id"], user_profiles["profile"]))

    eligible = [u for u in data.eval_users("test") if data.users[u] in profile_of and data.users[u] in champ_lists]
    activity = pd.Series({data.users[u]: len(data.train[u]) for u in eligible})
    sampled = sample_users(activity, config.n_users, config.seed)
    index = {user_id: u for u, user_id in enumerate(data.users)}
    rng = np.random.default_rng(config.seed)
    judge = Judge(llm.load(lake.home_path, context.log.info))
    context.log.info(f"{date}: judging {len(sampled)} users with {judge.name}: {champ_name} v{champion.version} "
                     f"vs {BASELINE_MODEL} v{base['version']}")

    rows, pairs = [], []
    for number, user_id in enumerate(sampled, start=1):
        u = index[user_id]
        seen = set(data.histories([u], "test")[0].tolist()) | {int(data.test[u])}
        unseen = np.setdiff1d(np.arange(data.n_items), list(seen))
        truth = str(data.items[data.test[u]])
        randoms = [str(data.items[i]) for i in rng.choice(unseen, size=min(config.n_random, len(unseen)), replace=False)]
        roles = ([(i, "champion") for i in champ_lists[user_id]] + [(i, "baseline") for i in base_lists[user_id]]
                 + [(truth, "heldout")] + [(i, "random") for i in randoms])
        scores = judge.pointwise(profile_of[user_id], [cards.get(i, {"title": f"item {i}"}) for i, _ in roles])
        for (item_id, role), score in zip(roles, scores):
            model_name, version = {"champion": (champ_name, str(champion.version)),
                                   "baseline": (BASELINE_MODEL, base["version"])}.get(role, ("", ""))
            rows.append({"user_id": user_id, "item_id": item_id, "role": role, "model_name": model_name,
                         "model_version": version, "score": score, "is_heldout_truth": role == "heldout"})
        short = [{k: cards.get(i, {}).get(k, "") for k in ("title", "genres")} for i in champ_lists[user_id]]
        base_short = [{k: cards.get(i, {}).get(k, "") for k in ("title", "genres")} for i in base_lists[user_id]]
        verdict = judge.pairwise(profile_of[user_id], short, base_short)
        pairs.append({"user_id": user_id, "champion_version": str(champion.version), "baseline_version": base["version"],
                      "p_champion_first_order": verdict.p_first_order, "p_champion_swapped": verdict.p_swapped,
                      "verdict": verdict.verdict})
        if number % 20 == 0 or number == len(sampled):
            context.log.info(f"judged {number} of {len(sampled)} users")

    pointwise, pairwise = pd.DataFrame(rows), pd.DataFrame(pairs)
    consistent = pairwise[pairwise["verdict"] != "inconsistent"]
    champ_metrics = client.get_run(champion.run_id).data.metrics
    ndcg_diff = champ_metrics.get("test_ndcg_at_10", np.nan) - base["test_ndcg_at_10"]
    win_rate = float((consistent["verdict"] == "champion").mean()) if len(consistent) else float("nan")
    summary = {
        "date": date, "judge": judge.name, "n_users": len(sampled),
        "judge_auc": auc(pointwise.loc[pointwise["role"] == "heldout", "score"], pointwise.loc[pointwise["role"] == "random", "score"]),
        "position_bias_rate": float((pairwise["verdict"] == "inconsistent").mean()),
        "champion_win_rate": win_rate,
        "mean_score": pointwise.groupby("role")["score"].mean().round(4).to_dict(),
        "champion": {"model_name": champ_name, "version": str(champion.version)},
        "baseline": {"model_name": BASELINE_MODEL, "version": base["version"]},
        "test_ndcg10_difference": float(ndcg_diff),
        "judge_agrees_with_ndcg": bool(np.sign(win_rate - 0.5) == np.sign(ndcg_diff)) if len(consistent) else None,
        "prompts": [judge.pointwise_template.version, judge.pairwise_template.version],
    }
    out = lake.home_path / "lake" / "judge_evaluations" / f"date={date}"
    write_parquet_atomic(pa.Table.from_pandas(pointwise, preserve_index=False), out / "pointwise.parquet")
    write_parquet_atomic(pa.Table.from_pandas(pairwise, preserve_index=False), out / "pairwise.parquet")
    write_json_atomic(summary, out / "summary.json")
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        distribution = plots.score_distributions(pointwise, Path(workdir) / "judge_scores.png")
        roc = plots.roc(pointwise, summary["judge_auc"], Path(workdir) / "judge_roc.png")
        with registry.mlflow.start_run(run_name=f"judge_evaluations-{date}", tags={
                **run_tags(context, data_version=data_version), "champion_version": str(champion.version),
                "judge": judge.name}):
            registry.mlflow.log_metrics({k: summary[k] for k in ("judge_auc", "position_bias_rate", "n_users")}
                                        | ({"champion_win_rate": win_rate} if len(consistent) else {}))
            registry.mlflow.log_dict(summary, "summary.json")
            registry.mlflow.log_artifact(str(distribution), "plots")
            registry.mlflow.log_artifact(str(roc), "plots")
        metadata_plots = {"score_distributions": png_markdown(distribution), "roc": png_markdown(roc)}
    context.log.info(f"judge_auc {summary['judge_auc']:.3f}, position bias {summary['position_bias_rate']:.2f}, "
                     f"champion win rate {win_rate:.2f}")
    return dg.MaterializeResult(metadata={
        "judge_auc": summary["judge_auc"], "position_bias_rate": summary["position_bias_rate"],
        "champion_win_rate": win_rate, "n_users": len(sampled), "judge": judge.name,
        "test_ndcg10_difference": summary["test_ndcg10_difference"],
        "judge_agrees_with_ndcg": str(summary["judge_agrees_with_ndcg"]),
        "mean_score_by_role": dg.MetadataValue.json(summary["mean_score"]),
        "path": dg.MetadataValue.path(str(out)), **metadata_plots,
    })


evaluation_assets = [judge_evaluations]
