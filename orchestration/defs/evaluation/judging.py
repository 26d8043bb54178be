"""The nightly judge's wiring: which judges run (from the judge and llm resources) and what one
night's judging leaves in MLflow (a run with the summary and two plots, tags on the champion)."""

import tempfile
from pathlib import Path

import dagster as dg

from models import registry
from models.evaluation.cases import judge_cases_for
from models.evaluation.judge import Judge, JudgeCase
from models.evaluation.judge_probe import load as load_probe_judge
from models.evaluation.nightly import ComparedLists, JudgeReport, judge_metrics
from orchestration.core.lineage import run_tags
from orchestration.core.resources import LakeResource, LLMResource
from orchestration.core.ui import png_markdown
from orchestration.defs.evaluation import plots
from orchestration.defs.evaluation.inputs import compared_lists, user_profiles
from orchestration.defs.evaluation.resources import JudgeResource
from orchestration.defs.evaluation.tuned_judge import probe_key, reader_llm


def nightly_cases(
    lake: LakeResource, client, data, data_version: str, judge: JudgeResource, baseline: str
) -> tuple[ComparedLists, list[JudgeCase]]:
    """The lists compared tonight and the sampled users' cases; a missing baseline version or no
    eligible user fails the asset, saying what to materialize."""
    try:
        compared, champion_lists, baseline_lists = compared_lists(
            lake, client, data_version, baseline, judge.k
        )
        cases = judge_cases_for(
            data,
            champion_lists,
            baseline_lists,
            user_profiles(lake),
            n_users=judge.n_users,
            n_random=judge.n_random,
            seed=judge.seed,
            needs_profile=judge.kind == "zero-shot" or judge.second_backend is not None,
        )
    except (LookupError, ValueError) as err:
        raise dg.Failure(f"judge_evaluations: {err}") from err
    return compared, cases


def load_judges(judge: JudgeResource, llm: LLMResource, lake: LakeResource, log) -> list:
    """The first judge: the tuned probe on the `llm` resource's model, or that LLM zero-shot; a
    second one (RECLAKE_JUDGE2_*) is the zero-shot wiring on another model."""
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
        judges = [Judge(llms[0].load(lake.home_path, log))]
    return judges + [Judge(one.load(lake.home_path, log)) for one in llms[1:]]


def log_judge_run(
    context: dg.AssetExecutionContext,
    client,
    lake: LakeResource,
    judge: JudgeResource,
    report: JudgeReport,
    compared: ComparedLists,
    data_version: str,
) -> tuple[str, dict]:
    """One MLflow run `judge_evaluations-D` (params, metrics, summary.json, the score-distribution
    and ROC plots), linked from the champion's version; its id and the plots as Dagster metadata."""
    summary = report.summary
    first = report.pointwise[report.pointwise["judge"] == summary["judge"]]
    with tempfile.TemporaryDirectory(dir=lake.home_path) as workdir:
        distribution = plots.score_distributions(
            first,
            Path(workdir) / "judge_scores.png",
            *(
                ("calibrated P(relevant)", (0.0, max(0.05, float(first["score"].max()))))
                if judge.kind == "probe"
                else ()
            ),
        )
        roc = plots.roc(first, summary["judge_auc"], Path(workdir) / "judge_roc.png")
        charts = [distribution, roc]
        if summary["evaluator_check"]:
            label = "mean P(relevant) of the list" if judge.kind == "probe" else "mean rating"
            charts.append(
                plots.ladders(
                    summary["evaluator_check"], Path(workdir) / "judge_ladders.png", "judge", label
                )
            )
        run_id = registry.log_report_run(
            client,
            f"judge_evaluations-{summary['date']}",
            {
                **run_tags(context, data_version=data_version),
                "champion_model_name": compared.champion_name,
                "champion_version": compared.champion_version,
                "champion_run_id": compared.champion_run_id,
                "judge": ", ".join(summary["judges"]),
            },
            params={
                "judge_users": judge.n_users,
                "judge_k": judge.k,
                "judge_random_items": judge.n_random,
                "judge_seed": judge.seed,
            },
            metrics=judge_metrics(summary),
            dicts={"summary.json": summary},
            artifacts={"plots": charts},
        )
        metadata_plots = {
            "score_distributions": png_markdown(distribution),
            "roc": png_markdown(roc),
            **({"ladders": png_markdown(charts[2])} if len(charts) > 2 else {}),
        }
    # the link back from the model version to its latest judgement, visible on its registry page
    version = compared.champion_version
    client.set_model_version_tag(registry.REGISTERED_MODEL, version, "judge_run_id", run_id)
    client.set_model_version_tag(
        registry.REGISTERED_MODEL, version, "judge_auc", f"{summary['judge_auc']:.4f}"
    )
    return run_id, metadata_plots


def judge_metadata(summary: dict, run_id: str, out: Path, metadata_plots: dict) -> dict:
    """What the Dagster UI shows of a night's judging."""
    win_rate = summary["champion_win_rate"]
    return {
        **judge_metrics(summary),
        "judge": ", ".join(summary["judges"]),
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
