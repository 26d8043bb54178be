"""Group `evaluation`: the judge on the champion's and a baseline's lists.

judge_evaluations[D]  sampled users; pointwise scores of the champion's and popularity's test top-k,
                      the held-out test item and random unseen items; champion vs baseline per user
                      -> lake/judge_evaluations/date=D/{pointwise,pairwise}.parquet, summary.json
                      (judge_auc + CI, trusted, position_bias_rate, win rates or why they are
                      withheld), an MLflow run with plots

The judge is the tuned one by default (RECLAKE_JUDGE_KIND=probe, tuned_judge.py: calibrated
P(relevant), order-free list comparison); `zero-shot` asks the LLM for a 1-5 rating and an A/B
preference in both orders (models/evaluation/judge.py).
"""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from models import registry
from models.common.device import torch_threads
from models.common.stats import ece
from models.evaluation.cases import random_unseen, sample_users
from models.evaluation.judge import Judge, JudgeCase, agreement, judge_cases, summarize
from models.evaluation.judge_probe import load as load_probe_judge
from models.text.sanitize import sanitize_fields
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.partitions import daily_partitions
from orchestration.core.resources import LLM_RUNTIME_FIELDS, LakeResource, LLMResource
from orchestration.core.ui import png_markdown
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits, query
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.inputs import eval_topk
from orchestration.defs.evaluation.resources import JudgeResource
from orchestration.defs.evaluation.simulated_feedback import simulated_feedback
from orchestration.defs.evaluation.tuned_judge import judge_probe, probe_key, reader_llm

EVALUATION_CODE_VERSION = (
    "3"  # 2: item cards are sanitized (#11); 3: the tuned judge, histories in cases
)
BASELINE_MODEL = "popularity"


def _shorten(text: str, chars: int) -> str:
    """At most `chars` characters, cut at a word boundary."""
    return text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + " ..."


def item_cards(lake: LakeResource, profile_chars: int) -> tuple[dict[str, dict], dict[str, dict]]:
    """What the judge reads of an item: alone (title, genres, the start of its LLM profile) and
    inside a list (title and genres). Title and genres are sanitized, so injected instructions never
    reach the judge; the profile is the LLM's own text, written from sanitized inputs."""
    items = query(lake.warehouse_path, "select item_id, title, genres from main.dim_items")
    profiles = pd.read_parquet(lake.paths.profiles("item"))
    items = items.merge(profiles[["item_id", "profile"]], on="item_id", how="left")
    cards, list_cards = {}, {}
    for row in items.itertuples():
        short = {"title": row.title or f"item {row.item_id}"}
        if isinstance(row.genres, str) and row.genres:
            short["genres"] = row.genres.replace("|", ", ")
        short = sanitize_fields(short)[0]
        list_cards[row.item_id] = short
        cards[row.item_id] = (
            {**short, "profile": _shorten(row.profile, profile_chars)}
            if isinstance(row.profile, str)
            else short
        )
    return cards, list_cards


def _frames_for_contract(
    pointwise: pd.DataFrame, names: dict[str, tuple[str, str]]
) -> pd.DataFrame:
    """The contract's model_name / model_version columns from each row's role."""
    pointwise = pointwise.copy()
    pointwise["model_name"] = pointwise["role"].map(lambda r: names.get(r, ("", ""))[0])
    pointwise["model_version"] = pointwise["role"].map(lambda r: names.get(r, ("", ""))[1])
    return pointwise[
        [
            "judge",
            "user_id",
            "item_id",
            "role",
            "model_name",
            "model_version",
            "score",
            "is_heldout_truth",
        ]
    ]


@dg.asset(
    group_name="evaluation",
    code_version=EVALUATION_CODE_VERSION,
    partitions_def=daily_partitions,
    deps=["batch_recommendations", "user_profiles", "item_profiles", "champion_model", judge_probe],
    kinds={"pytorch", "parquet", "mlflow"},
    description="The judge (tuned probe by default, or the zero-shot LLM): pointwise and pairwise scores of "
    "the champion vs popularity, trusted only when its AUC of held-out vs random unseen items is "
    "clear of chance.",
)
def judge_evaluations(
    context: dg.AssetExecutionContext, lake: LakeResource, llm: LLMResource, judge: JudgeResource
) -> dg.MaterializeResult:
    date = context.partition_key
    out = lake.paths.judge_evaluations(date)
    # what decides the verdicts: the judge settings and the judge models (not batch size or threads)
    settings = {
        "judge": judge.model_dump(),
        "llm": llm.model_dump(exclude={*LLM_RUNTIME_FIELDS, "max_items", "max_users"}),
    }
    # users a failing judge backend skipped are judged on the next run, not left out for good
    memo = Unchanged(
        context,
        config=settings,
        outputs_present=lambda last: (
            (out / "summary.json").exists() and not last.get("unjudged_users")
        ),
    )
    if memo.skip:
        return memo.result
    client = registry.connect(lake.paths.mlflow_dir)
    data, data_version = load_splits(lake.warehouse_path)
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS)
    versions = {row["model_name"]: row for row in registry.latest_versions(client, data_version)}
    if BASELINE_MODEL not in versions:
        raise dg.Failure(
            f"judge_evaluations: no {BASELINE_MODEL} version on data version {data_version}; "
            "materialize popularity_model first"
        )
    champ_name, base = champion.tags["model_name"], versions[BASELINE_MODEL]
    champ_lists = eval_topk(lake, champ_name, str(champion.version), judge.k)
    base_lists = eval_topk(lake, BASELINE_MODEL, base["version"], judge.k)
    cards, list_cards = item_cards(lake, judge.item_profile_chars)
    user_profiles = pd.read_parquet(lake.paths.profiles("user"))
    profile_of = dict(zip(user_profiles["user_id"], user_profiles["profile"]))

    # users with a test item, both lists and (for a zero-shot judge, which reads it) a profile;
    # sampled by train activity
    needs_profile = judge.kind == "zero-shot" or judge.second_backend is not None
    eligible = [
        u
        for u in data.eval_users("test")
        if data.users[u] in champ_lists
        and data.users[u] in base_lists
        and (data.users[u] in profile_of or not needs_profile)
    ]
    if not eligible:
        raise dg.Failure(
            "judge_evaluations: no user has a test item, both models' lists"
            + (
                " and a profile; materialize user_profiles and"
                if needs_profile
                else "; materialize"
            )
            + " the models first"
        )
    sampled = sample_users(
        pd.Series({data.users[u]: len(data.train[u]) for u in eligible}), judge.n_users, judge.seed
    )
    index = {user_id: u for u, user_id in enumerate(data.users)}
    rng = np.random.default_rng(judge.seed)
    cases = []
    for user_id in sampled:
        u = index[user_id]
        seen = np.append(data.histories([u], "test")[0], data.test[u])
        randoms = random_unseen(rng, data.n_items, seen, judge.n_random)
        cases.append(
            JudgeCase(
                user_id,
                profile_of.get(user_id, ""),
                champ_lists[user_id],
                base_lists[user_id],
                str(data.items[data.test[u]]),
                [str(data.items[i]) for i in randoms],
                history=[str(data.items[i]) for i in seen[:-1]],
            )
        )

    # the first judge: the tuned probe on the `llm` resource's model, or that LLM zero-shot; a second
    # one (RECLAKE_JUDGE2_*) is the zero-shot wiring on another model
    llms = judge.llms(llm)
    if judge.kind == "probe":
        reader = reader_llm(judge, llm)
        path = lake.paths.judge_probe(probe_key(reader))
        if not path.exists():
            raise dg.Failure(
                f"judge_evaluations: no tuned judge at {path}; materialize judge_probe first"
            )
        judges = [load_probe_judge(path, name=f"probe:{probe_key(reader)}")]
    else:
        judges = [Judge(llms[0].load(lake.home_path, context.log.info))]
    judges += [Judge(one.load(lake.home_path, context.log.info)) for one in llms[1:]]
    context.log.info(
        f"{date}: judging {len(cases)} users with {', '.join(j.name for j in judges)}: "
        f"{champ_name} v{champion.version} vs {BASELINE_MODEL} v{base['version']}"
    )
    with torch_threads(llm.torch_threads):
        results = [judge_cases(j, cases, cards, list_cards, context.log.info) for j in judges]

    names = {
        "champion": (champ_name, str(champion.version)),
        "baseline": (BASELINE_MODEL, base["version"]),
    }
    pointwise = _frames_for_contract(pd.concat([p for p, _ in results], ignore_index=True), names)
    pairwise = pd.concat([p for _, p in results], ignore_index=True).assign(
        champion_version=str(champion.version), baseline_version=base["version"]
    )
    ndcg_diff = (
        client.get_run(champion.run_id).data.metrics.get("test_ndcg_at_10", np.nan)
        - base["test_ndcg_at_10"]
    )
    per_judge = {j.name: summarize(*frames) for j, frames in zip(judges, results)}
    first = per_judge[judges[0].name]
    if (
        judge.kind == "probe"
    ):  # its scores are probabilities: how well do they match the test truth?
        truth = results[0][0][results[0][0]["role"].isin(["heldout", "random"])]
        first["test_ece"] = ece(truth["score"].to_numpy(), truth["role"].eq("heldout").to_numpy())
    win_rate = first["champion_win_rate"]
    summary = {
        "date": date,
        "judge": judges[0].name,
        **first,
        "champion": {
            "model_name": champ_name,
            "version": str(champion.version),
            "run_id": champion.run_id,
        },
        "baseline": {
            "model_name": BASELINE_MODEL,
            "version": base["version"],
            "run_id": base["run_id"],
        },
        "test_ndcg10_difference": float(ndcg_diff),
        # does the judge prefer the model that the held-out truth prefers?
        "judge_agrees_with_ndcg": None
        if win_rate is None
        else bool(np.sign(win_rate - 0.5) == np.sign(ndcg_diff)),
        "judges": per_judge,
        "judge_agreement": agreement(results[0], results[1]) if len(results) > 1 else None,
        "judge_kind": judge.kind,
        "prompts": [j.pointwise_template.version for j in judges if isinstance(j, Judge)][:1]
        + [j.pairwise_template.version for j in judges if isinstance(j, Judge)][:1],
        "config": {
            "n_users": judge.n_users,
            "k": judge.k,
            "n_random": judge.n_random,
            "seed": judge.seed,
        },
    }
    write_parquet_atomic(
        pa.Table.from_pandas(pointwise, preserve_index=False), out / "pointwise.parquet"
    )
    write_parquet_atomic(
        pa.Table.from_pandas(pairwise, preserve_index=False), out / "pairwise.parquet"
    )
    write_json_atomic(summary, out / "summary.json")

    first_points = pointwise[pointwise["judge"] == judges[0].name]
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        distribution = plots.score_distributions(
            first_points,
            Path(workdir) / "judge_scores.png",
            *(
                ("calibrated P(relevant)", (0.0, max(0.05, float(first_points["score"].max()))))
                if judge.kind == "probe"
                else ()
            ),
        )
        roc = plots.roc(first_points, summary["judge_auc"], Path(workdir) / "judge_roc.png")
        metrics = {
            "judge_auc": summary["judge_auc"],
            "judge_auc_ci_low": summary["judge_auc_ci"][0],
            "judge_auc_ci_high": summary["judge_auc_ci"][1],
            "judge_trusted": float(summary["trusted"]),
            "position_bias_rate": summary["position_bias_rate"],
            "n_users": summary["n_users"],
            "unjudged_users": summary["unjudged_users"],
        }
        if summary["verdict_truth_agreement"] is not None:
            metrics["verdict_truth_agreement"] = summary["verdict_truth_agreement"]
        if "test_ece" in summary:
            metrics["test_ece"] = summary["test_ece"]
        if win_rate is not None:
            metrics["champion_win_rate"] = win_rate
        if (
            summary["judge_agreement"]
            and summary["judge_agreement"]["verdict_agreement_rate"] is not None
        ):
            metrics["judge_verdict_agreement_rate"] = summary["judge_agreement"][
                "verdict_agreement_rate"
            ]
        run_id = registry.log_report_run(
            client,
            f"judge_evaluations-{date}",
            {
                **run_tags(context, data_version=data_version),
                "champion_model_name": champ_name,
                "champion_version": str(champion.version),
                "champion_run_id": champion.run_id,
                "judge": ", ".join(per_judge),
            },
            params={
                "judge_users": judge.n_users,
                "judge_k": judge.k,
                "judge_random_items": judge.n_random,
                "judge_seed": judge.seed,
            },
            metrics=metrics,
            dicts={"summary.json": summary},
            artifacts={"plots": [distribution, roc]},
        )
        metadata_plots = {
            "score_distributions": png_markdown(distribution),
            "roc": png_markdown(roc),
        }
    # the link back from the model version to its latest judgement, visible on its registry page
    client.set_model_version_tag(
        registry.REGISTERED_MODEL, champion.version, "judge_run_id", run_id
    )
    client.set_model_version_tag(
        registry.REGISTERED_MODEL, champion.version, "judge_auc", f"{summary['judge_auc']:.4f}"
    )
    context.log.info(
        f"judge_auc {summary['judge_auc']:.3f} {summary['judge_auc_ci']}, position bias "
        f"{summary['position_bias_rate']:.2f}, "
        + (
            f"champion win rate {win_rate}"
            if summary["trusted"]
            else f"verdicts withheld: {summary['withheld_reason']}"
        )
    )
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                **metrics,
                "judge": ", ".join(per_judge),
                "mlflow_run_id": run_id,
                "trusted": summary["trusted"],
                "withheld_reason": summary["withheld_reason"] or "",
                "champion_win_rate": win_rate if win_rate is not None else float("nan"),
                "test_ndcg10_difference": summary["test_ndcg10_difference"],
                "judge_agrees_with_ndcg": str(summary["judge_agrees_with_ndcg"]),
                "mean_score_by_role": dg.MetadataValue.json(summary["mean_score"]),
                "judge_agreement": dg.MetadataValue.json(summary["judge_agreement"] or {}),
                "path": dg.MetadataValue.path(str(out)),
                **metadata_plots,
            }
        )
    )


evaluation_assets = [judge_probe, judge_evaluations, simulated_feedback]
