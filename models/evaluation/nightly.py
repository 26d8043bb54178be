"""The nightly judge's report: every judge's scores of the cases, turned into the files of
judge_evaluations[D] (the contract's pointwise and pairwise frames, summary.json) and the metrics
MLflow and Dagster show.

    results = [judge_cases(j, cases, cards, list_cards) for j in judges]
    report = judge_report(judges, results, compared, kind="probe", config={...}, date=D)
    report.pointwise, report.pairwise, report.summary, judge_metrics(report.summary)
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from models.common.stats import ece
from models.evaluation.judge import Judge
from models.evaluation.judge_summary import agreement, summarize

POINTWISE_COLUMNS = [
    "judge",
    "user_id",
    "item_id",
    "role",
    "negative_kind",
    "model_name",
    "model_version",
    "score",
    "is_heldout_truth",
    "item_train_count",
]


@dataclass
class ComparedLists:
    """Whose lists the judge compares: the champion's and the baseline's versions and runs."""

    champion_name: str
    champion_version: str
    champion_run_id: str
    baseline_name: str
    baseline_version: str
    baseline_run_id: str
    test_ndcg10_difference: (
        float  # champion - baseline, offline: what the verdicts should agree with
    )

    def names(self) -> dict[str, tuple[str, str]]:
        return {
            "champion": (self.champion_name, self.champion_version),
            "baseline": (self.baseline_name, self.baseline_version),
        }


@dataclass
class JudgeReport:
    pointwise: pd.DataFrame
    pairwise: pd.DataFrame
    summary: dict


def frames_for_contract(pointwise: pd.DataFrame, names: dict[str, tuple[str, str]]) -> pd.DataFrame:
    """The contract's model_name / model_version columns from each row's role."""
    pointwise = pointwise.copy()
    pointwise["model_name"] = pointwise["role"].map(lambda r: names.get(r, ("", ""))[0])
    pointwise["model_version"] = pointwise["role"].map(lambda r: names.get(r, ("", ""))[1])
    return pointwise[POINTWISE_COLUMNS]


def judge_report(
    judges: list,
    results: list[tuple[pd.DataFrame, pd.DataFrame]],
    compared: ComparedLists,
    *,
    kind: str,
    config: dict,
    date: str,
    train_counts: dict[str, int],
    evaluator: dict | None = None,
) -> JudgeReport:
    """The frames and summary of one night's judging: the first judge's figures at the top, every
    judge's under `judges`, two judges' agreement when there is a second one. `train_counts` give
    each item's popularity (the bar each AUC is shown beside); `evaluator` is the first judge's
    check on the evaluator split (models/evaluation/evaluator_split.py), which earns its win rates."""
    results = [
        (
            points.assign(item_train_count=points["item_id"].map(train_counts).fillna(0))
            if "item_id" in points
            else points,
            pairs,
        )
        for points, pairs in results
    ]
    pointwise = frames_for_contract(
        pd.concat([p for p, _ in results], ignore_index=True), compared.names()
    )
    pairwise = pd.concat([p for _, p in results], ignore_index=True).assign(
        champion_version=compared.champion_version, baseline_version=compared.baseline_version
    )
    per_judge = {
        j.name: summarize(*frames, evaluator if n == 0 else None)
        for n, (j, frames) in enumerate(zip(judges, results))
    }
    first = per_judge[judges[0].name]
    if kind == "probe":  # its scores are probabilities: how well do they match the test truth?
        truth = results[0][0][results[0][0]["role"].isin(["heldout", "random"])]
        first["test_ece"] = ece(truth["score"].to_numpy(), truth["role"].eq("heldout").to_numpy())
    win_rate = first["champion_win_rate"]
    ndcg_diff = compared.test_ndcg10_difference
    zero_shot = [j for j in judges if isinstance(j, Judge)]
    summary = {
        "date": date,
        "judge": judges[0].name,
        **first,
        "champion": {
            "model_name": compared.champion_name,
            "version": compared.champion_version,
            "run_id": compared.champion_run_id,
        },
        "baseline": {
            "model_name": compared.baseline_name,
            "version": compared.baseline_version,
            "run_id": compared.baseline_run_id,
        },
        "test_ndcg10_difference": float(ndcg_diff),
        # does the judge prefer the model that the held-out truth prefers?
        "judge_agrees_with_ndcg": None
        if win_rate is None
        else bool(np.sign(win_rate - 0.5) == np.sign(ndcg_diff)),
        "judges": per_judge,
        "judge_agreement": agreement(results[0], results[1]) if len(results) > 1 else None,
        "judge_kind": kind,
        "prompts": [j.pointwise_template.version for j in zero_shot][:1]
        + [j.pairwise_template.version for j in zero_shot][:1],
        "config": config,
    }
    return JudgeReport(pointwise, pairwise, summary)


def judge_metrics(summary: dict) -> dict[str, float]:
    """The summary's numbers as MLflow metrics (and Dagster metadata); absent figures are left out."""
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
        metrics["n_decisive"] = summary["n_decisive"]
    for kind, figures in summary.get("auc_by_negatives", {}).items():
        metrics[f"auc_{kind}"] = figures["auc"]
        metrics[f"popularity_auc_{kind}"] = figures["popularity_auc"]
    for ladder, tau in (summary.get("ladder_tau") or {}).items():
        if tau is not None:
            metrics[f"ladder_tau_{ladder}"] = tau
    if "test_ece" in summary:
        metrics["test_ece"] = summary["test_ece"]
    if summary["champion_win_rate"] is not None:
        metrics["champion_win_rate"] = summary["champion_win_rate"]
    agreement_rate = (summary["judge_agreement"] or {}).get("verdict_agreement_rate")
    if agreement_rate is not None:
        metrics["judge_verdict_agreement_rate"] = agreement_rate
    return metrics


def judge_log_line(summary: dict) -> str:
    """One line for the run's log: the judge's AUC, its position bias, and the verdict or why withheld."""
    return (
        f"judge_auc {summary['judge_auc']:.3f} {summary['judge_auc_ci']}, position bias "
        f"{summary['position_bias_rate']:.2f}, "
        + (
            f"champion win rate {summary['champion_win_rate']}"
            if summary["verdicts_trusted"]
            else f"verdicts withheld: {summary['withheld_reason']}"
        )
    )
