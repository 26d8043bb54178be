"""Group `evaluation`: simulated users watch the models' lists (models/evaluation/simulator.py), a
second opinion.

simulated_feedback[D]  sampled users (by train activity), each shown a held-out page (their test
                       item among random unseen items: validation) and one shuffled page per model
                       version on the current data (the champion, popularity, then by valid NDCG)
                       -> lake/simulations/date=D/{choices.parquet, summary.json}, an MLflow run with
                       the pick-rate-vs-NDCG and by-position plots. Advisory unless validated; it
                       never decides the champion.

The simulator is the tuned one by default (RECLAKE_SIM_KIND=probe: the tuned judge's calibrated
P(relevant) as a choice model); `zero-shot` has an LLM of the ladder pick a letter. The wiring is
in simulation.py.
"""

import dagster as dg
import pyarrow as pa

from models import registry
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.partitions import daily_partitions
from orchestration.core.resources import LLM_RUNTIME_FIELDS, LakeResource, LLMResource
from orchestration.core.unchanged import Unchanged
from orchestration.defs.evaluation.evaluator_checks import lists_version
from orchestration.defs.evaluation.resources import (
    JudgeResource,
    SimulatorResource,
    SimulatorRunConfig,
)
from orchestration.defs.evaluation.simulation import (
    CHOICE_COLUMNS,
    log_simulation_run,
    simulate_home,
    simulation_log_line,
    simulation_metadata,
)
from orchestration.defs.evaluation.tuned_judge import judge_probe

SIMULATOR_CODE_VERSION = "2"  # 2: the evaluator split's check (#35)


@dg.asset(
    group_name="evaluation",
    code_version=SIMULATOR_CODE_VERSION,
    partitions_def=daily_partitions,
    deps=[
        "judge_evaluations",
        "user_profiles",
        "item_profiles",
        "champion_model",
        judge_probe,
    ],
    kinds={"parquet", "mlflow"},
    description="Simulated users shown each model's list and a held-out page: pick rates per "
    "model, trusted only when the held-out item is picked well above 1/K and the recipe, refit on "
    "the evaluator split, orders both ladders and agrees with held-out events beyond a coin. "
    "Advisory; never decides the champion.",
)
def simulated_feedback(
    context: dg.AssetExecutionContext,
    config: SimulatorRunConfig,
    lake: LakeResource,
    llm: LLMResource,
    judge: JudgeResource,
    simulator: SimulatorResource,
) -> dg.MaterializeResult:
    date, simulator = context.partition_key, simulator.model_copy(update=config.overrides())
    out = lake.paths.simulations(date)
    settings = {
        "simulator": simulator.model_dump(),
        "evaluator_lists": lists_version(lake),
        "judge_reader": judge.embedded_model,
        "llm": llm.model_dump(exclude={*LLM_RUNTIME_FIELDS, "max_items", "max_users"}),
    }
    # users a failing backend skipped are simulated on the next run, not left out for good
    memo = Unchanged(
        context,
        config=settings,
        outputs_present=lambda last: (
            (out / "summary.json").exists() and not last.get("backend_failures")
        ),
    )
    if memo.skip:
        return memo.result
    client = registry.connect(lake.paths.mlflow_dir)
    judge_folder = lake.paths.judge_evaluations(date)  # its evaluator-split refit and lists
    simulation, summary = simulate_home(lake, llm, judge, simulator, context.log.info, judge_folder)
    summary = {"date": date, **summary}
    write_parquet_atomic(
        pa.Table.from_pandas(simulation.choices[CHOICE_COLUMNS], preserve_index=False),
        out / "choices.parquet",
    )
    write_json_atomic(summary, out / "summary.json")
    run_id, plots = log_simulation_run(context, client, lake, simulator, summary)
    context.log.info(simulation_log_line(summary, simulator.page_size))
    metadata = simulation_metadata(summary, simulation.unsimulated, run_id, out, plots)
    return memo.stamp(dg.MaterializeResult(metadata=metadata))
