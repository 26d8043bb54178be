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

import dagster as dg
import pyarrow as pa

from models import registry
from models.common.device import torch_threads
from models.evaluation.judge import judge_cases
from models.evaluation.nightly import judge_log_line, judge_report
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.partitions import daily_partitions
from orchestration.core.resources import LLM_RUNTIME_FIELDS, LakeResource, LLMResource
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits
from orchestration.defs.evaluation.evaluator_checks import check_judge, lists_version
from orchestration.defs.evaluation.inputs import item_cards
from orchestration.defs.evaluation.judging import (
    judge_metadata,
    load_judges,
    log_judge_run,
    nightly_cases,
)
from orchestration.defs.evaluation.outcomes import served_outcomes
from orchestration.defs.evaluation.resources import JudgeResource, JudgeRunConfig
from orchestration.defs.evaluation.simulated_feedback import simulated_feedback
from orchestration.defs.evaluation.tuned_judge import judge_probe

# 2: item cards are sanitized (#11); 3: the tuned judge, histories in cases; 4: negatives by kind,
# the evaluator split's check (#35)
EVALUATION_CODE_VERSION = "4"
BASELINE_MODEL = "popularity"


@dg.asset(
    group_name="evaluation",
    code_version=EVALUATION_CODE_VERSION,
    partitions_def=daily_partitions,
    deps=[
        "batch_recommendations",
        "user_profiles",
        "item_profiles",
        "champion_model",
        judge_probe,
    ],
    kinds={"pytorch", "parquet", "mlflow"},
    description="The judge (tuned probe by default, or the zero-shot LLM): pointwise and pairwise "
    "scores of the champion vs popularity, AUC against random, popularity-matched and in-list "
    "negatives; its win rates are results only when its recipe, refit on the evaluator split, "
    "orders both ladders and agrees with held-out events beyond a coin.",
)
def judge_evaluations(
    context: dg.AssetExecutionContext,
    config: JudgeRunConfig,
    lake: LakeResource,
    llm: LLMResource,
    judge: JudgeResource,
) -> dg.MaterializeResult:
    date, judge = context.partition_key, judge.model_copy(update=config.overrides())
    out = lake.paths.judge_evaluations(date)
    # what decides the verdicts: the judge settings and the judge models (not batch size or threads)
    settings = {
        "judge": judge.model_dump(),
        "evaluator_lists": lists_version(lake),  # the lists its recipe is checked on
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
    compared, cases = nightly_cases(lake, client, data, data_version, judge, BASELINE_MODEL)
    judges = load_judges(judge, llm, lake, context.log.info)
    context.log.info(
        f"{date}: judging {len(cases)} users with {', '.join(j.name for j in judges)}: "
        f"{compared.champion_name} v{compared.champion_version} vs "
        f"{BASELINE_MODEL} v{compared.baseline_version}"
    )
    cards, list_cards = item_cards(lake, judge.item_profile_chars)
    with torch_threads(llm.torch_threads):
        results = [judge_cases(j, cases, cards, list_cards, context.log.info) for j in judges]
        # the tuned judge earns its win rates on the evaluator split; a zero-shot one is not checked
        # (its LLM would read every film for every user)
        evaluator = (
            check_judge(lake, data, data_version, judge, judges[0], out, context.log.info)
            if judge.kind == "probe"
            else None
        )
    report = judge_report(
        judges,
        results,
        compared,
        kind=judge.kind,
        config={k: getattr(judge, k) for k in ("n_users", "k", "n_random", "seed")},
        date=date,
        train_counts=dict(zip(map(str, data.items), data.train_counts().tolist())),
        evaluator=evaluator,
    )
    for name, frame in (("pointwise", report.pointwise), ("pairwise", report.pairwise)):
        table = pa.Table.from_pandas(frame, preserve_index=False)
        write_parquet_atomic(table, out / f"{name}.parquet")
    write_json_atomic(report.summary, out / "summary.json")
    run_id, plots = log_judge_run(context, client, lake, judge, report, compared, data_version)
    context.log.info(judge_log_line(report.summary))
    return memo.stamp(
        dg.MaterializeResult(metadata=judge_metadata(report.summary, run_id, out, plots))
    )


evaluation_assets = [judge_probe, judge_evaluations, simulated_feedback, served_outcomes]
