"""Group `training`: recommenders trained on `splits`, tracked and registered in MLflow, and gated.

suspicious_users                likely fake (poisoning) accounts in TRAIN, flagged before any model
                                learns (suspicious_users.py); the models leave them out
popularity_model, ease_model,   each: fit on TRAIN (early stopping / grid on VALID), evaluate on
sasrec_model, llm_sasrec_model  TEST, one MLflow run + a version of `reclake-recommender`, top-20
                                to lake/eval_topk/model_name=…/model_version=…/ (registration.py)
two_stage_model                 the best of those re-ranked by LightGBM over Feast and LLM features,
                                registered the same way (two_stage.py)
model_comparison                every model's latest version on this data version, side by side (PNG)
champion_model                  the gate: `champion` alias by VALID NDCG@10 read with its noise (paired
                                bootstrap over users; the simplest model within noise of the best)
"""

import dagster as dg
import numpy as np
import pandas as pd
from mlflow.exceptions import MlflowException

from models import registry
from models.common.device import torch_threads
from models.evaluation.outcomes import GATE_WINDOW_DAYS, challenger_evidence, read_per_user
from models.recsys.data import SplitData
from models.recsys.metrics import evaluate
from models.recsys.warm_start import warm_start
from orchestration.core.files import write_json_atomic
from orchestration.core.lineage import raw_files_sha256, run_tags
from orchestration.core.resources import LakeResource
from orchestration.core.ui import png_markdown
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits, splits_version
from orchestration.defs.training import plots
from orchestration.defs.training.builders import BUILDERS
from orchestration.defs.training.cold_items import cold_item_evaluation
from orchestration.defs.training.cold_users import cold_user_evaluation
from orchestration.defs.training.evaluator_lists import evaluator_split_lists
from orchestration.defs.training.registration import reap_crashed, register, version_in_place
from orchestration.defs.training.resources import TrainingResource, TrainingRunConfig
from orchestration.defs.training.retraining import (
    SEQUENTIAL,
    data_window,
    item_vectors,
    plan_retraining,
)
from orchestration.defs.training.suspicious_users import flagged_user_ids, suspicious_users
from orchestration.defs.training.timeline import timeline_evaluation
from orchestration.defs.training.two_stage import two_stage_model

TRAINING_CODE_VERSION = "2"  # 2: flagged suspicious users left out of training (poisoning defence)


def _recommender_asset(name: str, description: str, build, deps: tuple[str, ...] = ()):
    @dg.asset(
        name=f"{name}_model",
        group_name="training",
        code_version=TRAINING_CODE_VERSION,
        deps=["splits", "suspicious_users", *deps],
        kinds={"pytorch", "mlflow"},
        description=description,
    )
    def _asset(
        context: dg.AssetExecutionContext,
        config: TrainingRunConfig,
        lake: LakeResource,
        training: TrainingResource,
    ) -> dg.MaterializeResult:
        training = training.model_copy(update=config.overrides())
        memo = Unchanged(
            context,
            config={
                "model": name,
                "dataset": lake.dataset,
                **training.model_dump(exclude={"torch_threads", "two_stage_base", "two_stage_n"}),
            },
            outputs_present=lambda last: version_in_place(lake, name, last.get("model_version")),
        )
        if memo.skip:
            return memo.result
        data, data_version = load_splits(lake.warehouse_path)
        model, input_versions = build(training, lake, data)
        input_versions["raw_files_sha256"] = raw_files_sha256(lake.dataset_facts())
        fit_data, input_versions["users_left_out"] = defended(lake, training, data, data_version)
        reap_crashed(context, lake)
        context.log.info(
            f"{model.name}: {data.n_users} users, {data.n_items} items, device {model.device}"
        )
        policy, plan = training.retrain_policy(), None
        if name in SEQUENTIAL:
            client = registry.connect(lake.paths.mlflow_dir)
            plan = plan_retraining(client, model, data, data_window(lake.warehouse_path), policy)
            input_versions |= plan.tags
            context.log.info(f"{name}: {plan.kind} training ({plan.reason})")
        with torch_threads(
            training.torch_threads
        ):  # fit on what the defence leaves; evaluate on the full split
            if plan is not None and plan.kind == "warm":
                vectors, vector_tags = item_vectors(model, lake.paths.embeddings("items"), data)
                input_versions |= vector_tags
                previous = plan.previous
                fit = warm_start(
                    model, previous.model, previous.items, fit_data, plan.changed_users, vectors,
                    policy, log=context.log.info,
                )  # fmt: skip
            else:
                fit = model.fit(fit_data, log=context.log.info)
            valid, test = evaluate(model, data, "valid"), evaluate(model, data, "test")
        return memo.stamp(
            register(
                context,
                lake,
                model,
                data,
                data_version,
                fit,
                valid,
                test,
                lambda folder: plots.learning_curve(
                    model.name, fit, folder / f"{model.name}_learning_curve.png"
                ),
                {"training": plan.kind, "training_reason": plan.reason} if plan else None,
                **input_versions,
            )
        )

    return _asset


def defended(
    lake: LakeResource, training: TrainingResource, data: SplitData, data_version: str
) -> tuple[SplitData, str]:
    """What the models learn from: with the poisoning defence on, the split without the users
    `suspicious_users` flagged (still evaluated: the protocol is unchanged); and how many were left out."""
    if not training.poisoning_defence:
        return data, "0"
    flagged = np.flatnonzero(np.isin(data.users, list(flagged_user_ids(lake, data_version))))
    return data.without_users(flagged), str(len(flagged))


popularity_model = _recommender_asset(
    "popularity",
    "Most-popular items by train count: the floor every model must beat.",
    BUILDERS["popularity"],
)
content_retriever_model = _recommender_asset(
    "content_retriever",
    "A user's recent films against every film in text space (item vectors only): ranks films no "
    "interaction ID knows; the cold-item baseline.",
    BUILDERS["content_retriever"],
    deps=("item_text_embeddings",),
)
ease_model = _recommender_asset(
    "ease",
    "EASE item-item model, lambda chosen on valid NDCG@10 from a recorded grid.",
    BUILDERS["ease"],
)
sasrec_model = _recommender_asset(
    "sasrec",
    "SASRec (self-attention over each user's sequence), cross-entropy over all items.",
    BUILDERS["sasrec"],
)
llm_sasrec_model = _recommender_asset(
    "llm_sasrec",
    "SASRec whose item embeddings add a learned map of the items' LLM-profile/title vectors.",
    BUILDERS["llm_sasrec"],
    deps=("item_text_embeddings", "user_profile_embeddings"),
)
RECOMMENDER_ASSETS = [
    popularity_model,
    content_retriever_model,
    ease_model,
    sasrec_model,
    llm_sasrec_model,
    two_stage_model,
]


@dg.asset(
    group_name="training",
    code_version=TRAINING_CODE_VERSION,
    deps=RECOMMENDER_ASSETS,
    kinds={"mlflow"},
    description="Every model's latest version on this data version, side by side (table + bar chart).",
)
def model_comparison(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    report = lake.paths.report("model_comparison.json")
    if (memo := Unchanged(context, outputs_present=report.exists())).skip:
        return memo.result
    client = registry.connect(lake.paths.mlflow_dir)
    data_version = splits_version(lake.warehouse_path)
    rows = registry.latest_versions(client, data_version)
    if not rows:
        raise dg.Failure(
            f"no registered model versions on data version {data_version}: materialize the models first"
        )
    table = pd.DataFrame(rows)
    chart = plots.model_comparison(rows, lake.paths.report("model_comparison.png"))
    write_json_atomic({"data_version": data_version, "models": rows}, report)
    registry.log_report_run(
        client,
        "model_comparison",
        run_tags(context, data_version=data_version),
        artifacts={"plots": [chart]},
        tables={"model_comparison.json": table},
    )
    shown = [
        "model_name",
        "version",
        "valid_ndcg_at_10",
        "test_ndcg_at_10",
        "test_recall_at_10",
        "test_mrr_at_10",
        "seconds_per_epoch",
    ]
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "models": dg.MetadataValue.md(table[shown].round(4).to_markdown(index=False)),
                "chart": png_markdown(chart),
                "data_version": data_version,
                "dagster/row_count": len(rows),
            }
        )
    )


@dg.asset(
    group_name="training",
    code_version=TRAINING_CODE_VERSION,
    deps=[model_comparison],
    kinds={"mlflow"},
    description="The gate: `champion` alias to the best valid NDCG@10 only if it beats the current champion.",
)
def champion_model(context: dg.AssetExecutionContext, lake: LakeResource) -> dg.MaterializeResult:
    client = registry.connect(lake.paths.mlflow_dir)
    memo = Unchanged(
        context, outputs_present=lambda last: _alias_points_to(client, last.get("champion_version"))
    )
    if memo.skip:
        return memo.result
    data_version = splits_version(lake.warehouse_path)
    decision = registry.gate(client, data_version, outcome_evidence(lake))
    context.log.info(
        f"gate: {decision['decision']} ({decision['reason']}); champion is v{decision['champion']}"
    )
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                "decision": decision["decision"],
                "reason": decision["reason"],
                "champion_version": str(decision["champion"]),
                "candidate": f"{decision.get('candidate_model')} v{decision.get('candidate')}",
                "candidate_valid_ndcg@10": decision.get("candidate_valid_ndcg10"),
                "previous_champion": str(decision["champion_before"]),
                "previous_champion_valid_ndcg@10": decision["champion_before_valid_ndcg@10"],
                "candidates": dg.MetadataValue.json(decision["candidates"]),
                "outcomes": dg.MetadataValue.json(decision.get("outcomes")),
            },
            data_version=dg.DataVersion(f"champion-v{decision['champion']}"),
        )
    )


def outcome_evidence(lake: LakeResource) -> dict | None:
    """The served and shadow lists' next-day outcomes the gate reads (None until enough days)."""
    days = lake.paths.outcome_days()
    if not days:
        return None
    per_user = read_per_user(lake.paths.outcomes, days[-1], GATE_WINDOW_DAYS)
    return challenger_evidence(per_user, days[-1])


def _alias_points_to(client, version) -> bool:
    try:
        return str(
            client.get_model_version_by_alias(
                registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS
            ).version
        ) == str(version)
    except MlflowException:
        return False


training_assets = [
    suspicious_users,
    *RECOMMENDER_ASSETS,
    model_comparison,
    champion_model,
    timeline_evaluation,
    evaluator_split_lists,
    cold_item_evaluation,
    cold_user_evaluation,
]
