"""Group `evaluation`: simulated users watch the models' lists (models/evaluation/simulator.py), a second opinion.

simulated_feedback[D]  sampled users (by train activity), each shown a held-out page (their test
                       item among random unseen items: validation) and one shuffled page per model
                       version on the current data (the champion, popularity, then by valid NDCG)
                       -> lake/simulations/date=D/{choices.parquet, summary.json}, an MLflow run with
                       the pick-rate-vs-NDCG and by-position plots. Advisory unless validated; it
                       never decides the champion.

The simulator is the tuned one by default (RECLAKE_SIM_KIND=probe: the tuned judge's calibrated
P(relevant) as a choice model); `zero-shot` has an LLM of the ladder pick a letter.
"""

import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pyarrow as pa

from models import registry
from models.common.device import torch_threads
from models.evaluation.cases import sample_users
from models.evaluation.judge_probe import load as load_probe_judge
from models.evaluation.simulator import (
    ChoiceModel,
    LLMChooser,
    ProbeChooser,
    simulate,
    simulation_inputs,
    summarize,
)
from models.llm.cache import LLMCache
from models.recsys.data import SplitData
from orchestration.core.files import write_json_atomic, write_parquet_atomic
from orchestration.core.lineage import run_tags
from orchestration.core.partitions import daily_partitions
from orchestration.core.resources import LLM_RUNTIME_FIELDS, LakeResource, LLMResource
from orchestration.core.ui import png_markdown
from orchestration.core.unchanged import Unchanged
from orchestration.core.warehouse import load_splits
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.inputs import eval_topk, item_names_and_cards
from orchestration.defs.evaluation.resources import JudgeResource, SimulatorResource
from orchestration.defs.evaluation.tuned_judge import judge_probe, probe_key, reader_llm

SIMULATOR_CODE_VERSION = "1"
CHOICE_COLUMNS = [
    "user_id",
    "page_id",
    "position",
    "item_id",
    "model_name",
    "model_version",
    "chosen",
    "page_kind",
    "is_heldout",
    "choice_probability",
]  # the DESIGN.md contract's first


def compared_versions(rows: list[dict], champion_name: str, max_models: int) -> list[dict]:
    """Which model versions get a page: the champion, popularity, then the rest by valid NDCG@10."""
    first = [champion_name, "popularity"]
    ordered = sorted(
        rows,
        key=lambda r: (
            first.index(r["model_name"]) if r["model_name"] in first else len(first),
            -np.nan_to_num(r.get("valid_ndcg_at_10", np.nan), nan=-1.0),
        ),
    )
    return ordered[:max_models]


def chooser_for(
    simulator: SimulatorResource,
    judge: JudgeResource,
    llm: LLMResource,
    lake: LakeResource,
    data: SplitData,
    cards: dict[str, str],
    log,
) -> tuple[LLMChooser | ProbeChooser, dict]:
    """The simulator, and what was fitted for it (the probe kind's choice model, on the VALID split)."""
    if simulator.kind == "zero-shot":
        return LLMChooser(
            simulator.llm(llm).load(lake.home_path, log), cards, LLMCache(lake.paths.llm_cache)
        ), {}
    reader = reader_llm(judge, llm)
    path = lake.paths.judge_probe(probe_key(reader))
    if not path.exists():
        raise dg.Failure(
            f"simulated_feedback: no tuned judge at {path}; materialize judge_probe first"
        )
    model = ChoiceModel(
        load_probe_judge(path), dict(zip(map(str, data.items), data.train_counts().tolist()))
    )
    users = data.eval_users("valid")
    facts = model.fit(
        [[str(data.items[i]) for i in data.train[u]] for u in users],
        [str(data.items[data.valid[u]]) for u in users],
    )
    log(f"choice model fitted on {len(users)} valid users: {facts}")
    return ProbeChooser(model, name=f"probe:{probe_key(reader)}"), facts


def simulate_home(
    lake: LakeResource,
    llm: LLMResource,
    judge: JudgeResource,
    simulator: SimulatorResource,
    log=print,
):
    """The whole simulation on a data home's current data (the asset's work, and the bench's):
    the Simulation and its summary (models.evaluation.simulator.summarize, plus run facts)."""
    client = registry.connect(lake.paths.mlflow_dir)
    data, data_version = load_splits(lake.warehouse_path)
    champion = client.get_model_version_by_alias(registry.REGISTERED_MODEL, registry.CHAMPION_ALIAS)
    # each model's newest version on this data, but the champion's own version for its model (a
    # newer version the gate did not promote may exist)
    champion_name = champion.tags["model_name"]
    rows = [
        r
        for r in registry.latest_versions(client, data_version)
        if r["model_name"] != champion_name
    ]
    versions = compared_versions(
        [registry.version_row(client, champion_name, champion), *rows],
        champion_name,
        simulator.max_models,
    )
    lists = {
        (v["model_name"], v["version"]): eval_topk(
            lake, v["model_name"], v["version"], simulator.page_size
        )
        for v in versions
    }
    names, cards = item_names_and_cards(lake)
    profiles = pd.read_parquet(lake.paths.profiles("user"))
    eligible = data.eval_users("test")
    if not len(eligible):
        raise dg.Failure("simulated_feedback: no user has a test item")
    sampled = sample_users(
        pd.Series({data.users[u]: len(data.train[u]) for u in eligible}),
        simulator.n_users,
        simulator.seed,
    )
    users, pages = simulation_inputs(
        data,
        names,
        cards,
        dict(zip(profiles["user_id"], profiles["profile"])),
        lists,
        sampled,
        simulator.page_size,
        simulator.n_recent,
        simulator.seed,
    )
    chooser, fitted = chooser_for(simulator, judge, llm, lake, data, cards, log)
    log(
        f"{chooser.name} simulates {len(users)} users, {1 + len(lists)} pages of {simulator.page_size} each: "
        "held-out + " + ", ".join(f"{n} v{v}" for n, v in lists)
    )
    started = time.perf_counter()
    with torch_threads(llm.torch_threads):
        simulation = simulate(chooser, users, pages, simulator.seed, log)
    seconds = time.perf_counter() - started
    if simulation.choices.empty:
        raise dg.Failure(f"simulated_feedback: no user was simulated: {simulation.unsimulated}")
    summary = {
        "simulator": chooser.name,
        "kind": simulator.kind,
        **summarize(
            simulation.choices,
            {(v["model_name"], v["version"]): v["test_ndcg_at_10"] for v in versions},
            simulator.page_size,
        ),
        "unsimulated_users": sum(simulation.unsimulated.values()),
        "unsimulated_reasons": simulation.unsimulated,
        "heldout_titles_redacted": simulation.redactions,
        "choice_model": fitted,
        "seconds": round(seconds, 1),
        "champion": {"model_name": champion.tags["model_name"], "version": str(champion.version)},
        "config": simulator.model_dump(),
        "data_version": data_version,
    }
    return simulation, summary


@dg.asset(
    group_name="evaluation",
    code_version=SIMULATOR_CODE_VERSION,
    partitions_def=daily_partitions,
    deps=["judge_evaluations", "user_profiles", "item_profiles", "champion_model", judge_probe],
    kinds={"parquet", "mlflow"},
    description="Simulated users shown each model's list and a held-out page: pick rates per model, trusted "
    "only when the held-out item is picked well above 1/K and pick rates order the models like "
    "their offline NDCG@10. Advisory; never decides the champion.",
)
def simulated_feedback(
    context: dg.AssetExecutionContext,
    lake: LakeResource,
    llm: LLMResource,
    judge: JudgeResource,
    simulator: SimulatorResource,
) -> dg.MaterializeResult:
    date = context.partition_key
    out = lake.paths.simulations(date)
    settings = {
        "simulator": simulator.model_dump(),
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
    simulation, summary = simulate_home(lake, llm, judge, simulator, context.log.info)
    summary = {"date": date, **summary}
    champion, data_version = summary["champion"], summary["data_version"]
    write_parquet_atomic(
        pa.Table.from_pandas(simulation.choices[CHOICE_COLUMNS], preserve_index=False),
        out / "choices.parquet",
    )
    write_json_atomic(summary, out / "summary.json")

    backend_failures = sum(
        n for reason, n in simulation.unsimulated.items() if reason.startswith("backend")
    )
    metrics = {
        "heldout_pick_rate": summary["heldout_pick_rate"],
        "heldout_pick_ci_low": summary["heldout_pick_ci"][0],
        "heldout_pick_ci_high": summary["heldout_pick_ci"][1],
        "simulator_trusted": float(summary["trusted"]),
        "n_users": summary["n_users"],
        "unsimulated_users": summary["unsimulated_users"],
        "simulation_seconds": summary["seconds"],
        **({"kendall_tau": summary["kendall_tau"]} if summary["kendall_tau"] is not None else {}),
        **(
            {"position_max_over_min": summary["position_max_over_min"]}
            if summary["position_max_over_min"]
            else {}
        ),
        **{
            f"pick_rate_{name}": m["pick_rate"] for name, m in summary["pick_rate_by_model"].items()
        },
    }
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        versus = plots.pick_rate_vs_ndcg(summary, Path(workdir) / "pick_rate_vs_ndcg.png")
        positions = plots.pick_rate_by_position(
            summary, Path(workdir) / "pick_rate_by_position.png"
        )
        run_id = registry.log_report_run(
            client,
            f"simulated_feedback-{date}",
            {
                **run_tags(context, data_version=data_version),
                "simulator": summary["simulator"],
                "champion_model_name": champion["model_name"],
                "champion_version": champion["version"],
            },
            params={f"simulator_{k}": v for k, v in simulator.model_dump().items()},
            metrics=metrics,
            dicts={"summary.json": summary},
            artifacts={"plots": [versus, positions]},
        )
        metadata_plots = {
            "pick_rate_vs_ndcg": png_markdown(versus),
            "pick_rate_by_position": png_markdown(positions),
        }
    context.log.info(
        f"{date}: held-out pick rate {summary['heldout_pick_rate']:.3f} {summary['heldout_pick_ci']} "
        f"(1/K = {1 / simulator.page_size:.3f}), Kendall tau {summary['kendall_tau']} over "
        f"{summary['n_models']} models, "
        + ("trusted" if summary["trusted"] else f"advisory: {summary['advisory_reason']}")
    )
    return memo.stamp(
        dg.MaterializeResult(
            metadata={
                **metrics,
                "simulator": summary["simulator"],
                "mlflow_run_id": run_id,
                "trusted": summary["trusted"],
                "advisory_reason": summary["advisory_reason"] or "",
                "backend_failures": backend_failures,
                "pick_rate_by_model": dg.MetadataValue.json(summary["pick_rate_by_model"]),
                "unsimulated_reasons": dg.MetadataValue.json(summary["unsimulated_reasons"]),
                "path": dg.MetadataValue.path(str(out)),
                **metadata_plots,
            }
        )
    )
