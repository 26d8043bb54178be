"""The simulated users' wiring (the asset is simulated_feedback.py): which model versions get a
page, which simulator runs (the tuned choice model, or a zero-shot LLM), the whole simulation on a
data home (the asset's work and the bench's), and what a night's simulation leaves in MLflow and
the Dagster UI.
"""

import tempfile
import time
from pathlib import Path

import dagster as dg
import numpy as np

from models import registry
from models.common.device import torch_threads
from models.evaluation.cases import sample_split_users
from models.evaluation.judge_probe import load as load_probe_judge
from models.evaluation.simulator import simulate, summarize
from models.evaluation.simulator_choosers import (
    CHOICE_NEGATIVES,
    ChoiceModel,
    LLMChooser,
    ProbeChooser,
    fit_on_valid,
)
from models.evaluation.simulator_inputs import simulation_inputs
from models.llm.cache import LLMCache
from models.recsys.data import SplitData
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource, LLMResource
from orchestration.core.ui import png_markdown
from orchestration.core.warehouse import load_splits
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.evaluator_checks import check_simulator
from orchestration.defs.evaluation.inputs import eval_topk, item_names_and_cards, user_profiles
from orchestration.defs.evaluation.resources import JudgeResource, SimulatorResource
from orchestration.defs.evaluation.tuned_judge import probe_key, reader_llm

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
    facts = fit_on_valid(model, data, CHOICE_NEGATIVES, simulator.seed)
    log(f"choice model fitted on {facts['valid_users']} valid users: {facts}")
    return ProbeChooser(model, name=f"probe:{probe_key(reader)}"), facts


def simulate_home(
    lake: LakeResource,
    llm: LLMResource,
    judge: JudgeResource,
    simulator: SimulatorResource,
    log=print,
    judge_folder: Path | None = None,
):
    """The whole simulation on a data home's current data (the asset's work, and the bench's):
    the Simulation and its summary (models.evaluation.simulator.summarize, plus run facts). The
    tuned simulator is checked on the evaluator split (with the refit the night's judge left in
    `judge_folder`, or its own)."""
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
    eligible = data.eval_users("test")
    if not len(eligible):
        raise dg.Failure("simulated_feedback: no user has a test item")
    sampled = sample_split_users(data, eligible, simulator.n_users, simulator.seed)
    users, pages = simulation_inputs(
        data,
        names,
        cards,
        user_profiles(lake),
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
    evaluator = None
    if simulator.kind == "probe":
        started = time.perf_counter()
        probe_path = lake.paths.judge_probe(probe_key(reader_llm(judge, llm)))
        evaluator = check_simulator(lake, data, data_version, judge, probe_path, judge_folder, log)
        log(f"evaluator split check: {time.perf_counter() - started:.0f} s")
    summary = {
        "simulator": chooser.name,
        "kind": simulator.kind,
        **summarize(
            simulation.choices,
            {(v["model_name"], v["version"]): v["test_ndcg_at_10"] for v in versions},
            simulator.page_size,
            evaluator,
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


def simulation_metrics(summary: dict) -> dict[str, float]:
    """The summary's numbers as MLflow metrics (and Dagster metadata); absent figures are left out."""
    return {
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
        **{f"ladder_tau_{k}": v for k, v in (summary["ladder_tau"] or {}).items() if v is not None},
        **(
            {
                "verdict_truth_agreement": summary["verdict_truth_agreement"],
                "n_decisive": summary["n_decisive"],
            }
            if summary["verdict_truth_agreement"] is not None
            else {}
        ),
    }


def log_simulation_run(
    context: dg.AssetExecutionContext,
    client,
    lake: LakeResource,
    simulator: SimulatorResource,
    summary: dict,
) -> tuple[str, dict]:
    """One MLflow run `simulated_feedback-D` (params, metrics, summary.json, the pick-rate plots);
    its id and the plots as Dagster metadata."""
    champion = summary["champion"]
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        versus = plots.pick_rate_vs_ndcg(summary, Path(workdir) / "pick_rate_vs_ndcg.png")
        positions = plots.pick_rate_by_position(
            summary, Path(workdir) / "pick_rate_by_position.png"
        )
        charts = [versus, positions]
        if summary["evaluator_check"]:
            charts.append(
                plots.ladders(
                    summary["evaluator_check"],
                    Path(workdir) / "simulator_ladders.png",
                    "simulator",
                    "P(picks a film from the list)",
                )
            )
        run_id = registry.log_report_run(
            client,
            f"simulated_feedback-{summary['date']}",
            {
                **run_tags(context, data_version=summary["data_version"]),
                "simulator": summary["simulator"],
                "champion_model_name": champion["model_name"],
                "champion_version": champion["version"],
            },
            params={f"simulator_{k}": v for k, v in simulator.model_dump().items()},
            metrics=simulation_metrics(summary),
            dicts={"summary.json": summary},
            artifacts={"plots": charts},
        )
        return run_id, {
            "pick_rate_vs_ndcg": png_markdown(versus),
            "pick_rate_by_position": png_markdown(positions),
            **({"ladders": png_markdown(charts[2])} if len(charts) > 2 else {}),
        }


def simulation_log_line(summary: dict, page_size: int) -> str:
    return (
        f"{summary['date']}: held-out pick rate {summary['heldout_pick_rate']:.3f} "
        f"{summary['heldout_pick_ci']} (1/K = {1 / page_size:.3f}), Kendall tau "
        f"{summary['kendall_tau']} over {summary['n_models']} models, "
        + ("trusted" if summary["trusted"] else f"advisory: {summary['advisory_reason']}")
    )


def simulation_metadata(
    summary: dict, unsimulated: dict[str, int], run_id: str, out: Path, metadata_plots: dict
) -> dict:
    """What the Dagster UI shows of a night's simulation; `backend_failures` makes the next run
    simulate the users a failing backend skipped."""
    return {
        **simulation_metrics(summary),
        "simulator": summary["simulator"],
        "mlflow_run_id": run_id,
        "trusted": summary["trusted"],
        "advisory_reason": summary["advisory_reason"] or "",
        "backend_failures": sum(n for r, n in unsimulated.items() if r.startswith("backend")),
        "pick_rate_by_model": dg.MetadataValue.json(summary["pick_rate_by_model"]),
        "unsimulated_reasons": dg.MetadataValue.json(summary["unsimulated_reasons"]),
        "path": dg.MetadataValue.path(str(out)),
        **metadata_plots,
    }
