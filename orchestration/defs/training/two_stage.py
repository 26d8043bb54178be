"""Group `training`: `two_stage_model`, LightGBM's LambdaMART re-ranking the best other model's top-N
(models/recsys/two_stage.py) over Feast `ranking_v1` stats and LLM features, registered like the others.

    base        the latest complete version with the best valid NDCG@10 among the other models on this
                data version (RECLAKE_TRAIN_TWO_STAGE_BASE names one instead); its eval_topk must exist
    features    Feast user_stats/item_stats as of just before each held-out event; the LLM item and
                user profile vectors (lake/embeddings); the raw score of the newest reclake-judge
                version on this data version (its probe is fitted on train rows only)
    labels      the VALID item; the valid score the gate reads is cross-fitted over users; test only reports

Every input is checked before anything is registered: a missing eval_topk, a user with fewer than N
candidates, or a candidate user/item that Feast has no stats for fails the run naming it.
"""

import time

import dagster as dg
import pandas as pd

from models.common.device import torch_threads
from models.recsys.base import FitResult
from models.recsys.two_stage import TwoStage
from models.recsys.two_stage_fit import fit_two_stage
from models.recsys.two_stage_ranker import TwoStageConfig
from orchestration.core.lineage import raw_files_sha256
from orchestration.core.resources import LakeResource
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits
from orchestration.defs.training import plots
from orchestration.defs.training.registration import reap_crashed, register, version_in_place
from orchestration.defs.training.resources import TrainingResource, TwoStageRunConfig
from orchestration.defs.training.two_stage_inputs import (
    candidate_frames,
    check_same_ids,
    model_inputs,
    new_two_stage,
    pick_base,
)

TWO_STAGE_CODE_VERSION = "1"


@dg.asset(
    group_name="training",
    code_version=TWO_STAGE_CODE_VERSION,
    deps=[
        "ease_model",
        "sasrec_model",
        "llm_sasrec_model",
        "popularity_model",
        "feast_registry",
        "item_text_embeddings",
        "user_profile_embeddings",
        "judge_probe",
    ],
    kinds={"lightgbm", "feast", "mlflow"},
    description="LambdaMART re-ranking the best base model's top-N with Feast stats and LLM features; "
    "valid cross-fitted over users; registered as a reclake-recommender version.",
)
def two_stage_model(
    context: dg.AssetExecutionContext,
    config: TwoStageRunConfig,
    lake: LakeResource,
    training: TrainingResource,
) -> dg.MaterializeResult:
    training = training.model_copy(update=config.overrides())
    data, data_version = load_splits(lake.warehouse_path)
    base_name, base_version, base = pick_base(lake, data_version, training.two_stage_base)
    paths, inputs = model_inputs(lake, data_version, base_name, base_version)
    memo = Unchanged(
        context,
        config={**inputs, "n": training.two_stage_n, "seed": training.seed},
        outputs_present=lambda last: version_in_place(
            lake, TwoStage.name, last.get("model_version")
        ),
    )
    if memo.skip:
        return memo.result
    label = f"{base_name} v{base_version}"
    check_same_ids(base, data, label, data_version)
    ranker_config = TwoStageConfig(
        n=training.two_stage_n,
        seed=training.seed,
        threads=training.torch_threads,
        device=base.model.device,
    )
    started = time.perf_counter()
    model = new_two_stage(ranker_config, base, data, paths)
    with torch_threads(training.torch_threads):
        frames = candidate_frames(lake, model, data, label, context.log.info)
    fitted = fit_two_stage(model, frames, data)
    context.log.info(
        f"two_stage over {label}: valid (cross-fitted) NDCG@10 "
        f"{fitted.valid.metrics['ndcg@10']:.4f}; valid item among the candidates for "
        f"{fitted.with_label:.1%} of users"
    )
    fit = FitResult(
        best_valid_ndcg10=fitted.valid.metrics["ndcg@10"], seconds=time.perf_counter() - started
    )
    reap_crashed(context, lake)
    gains = pd.Series(model.ranker.feature_importance("gain"), index=model.ranker.feature_name())
    gain_json = dg.MetadataValue.json({k: round(float(v), 2) for k, v in gains.items()})
    result = register(
        context,
        lake,
        model,
        data,
        data_version,
        fit,
        fitted.valid,
        fitted.test,
        lambda folder: plots.feature_gains(gains, folder / "two_stage_feature_gain.png"),
        metadata={"feature_gain": gain_json, "base": label, "valid_is": "cross-fitted over users"},
        **inputs,
        raw_files_sha256=raw_files_sha256(lake.dataset_facts()),
        valid_item_among_candidates=f"{fitted.with_label:.4f}",
    )
    return memo.stamp(result)
