"""The demo's closing summary, read back from what the run wrote: the checks that are not dbt's
generic tests, the recommenders with the gate's decision, the judge, and the simulated users.

bench/readme_results.py prints the same lines for the README's results.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from orchestration.core.paths import Lake


def step_failures(result) -> list[str]:
    """The user-facing message of each failed step: the innermost error, not the whole traceback."""
    messages = []
    for event in result.all_events:
        if event.event_type_value != "STEP_FAILURE":
            continue
        error = event.event_specific_data.error
        while error.cause is not None:
            error = error.cause
        text = error.message.strip()
        if event.event_specific_data.user_failure_data is not None:
            text = event.event_specific_data.user_failure_data.description or text
        messages.append(f"{event.step_key}: {text}")
    return messages


def print_failure(result, headline: str) -> int:
    """The headline and each failed step's message on stderr; the exit status 1."""
    print(headline, file=sys.stderr)
    for message in step_failures(result) or ["see the Dagster log above"]:
        print(f"  {message}", file=sys.stderr)
    return 1


def check_lines(result) -> list[str]:
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION":
            evaluation = event.event_specific_data
            if evaluation.check_name.startswith(
                ("not_null", "unique", "accepted_values", "value_between", "one_test")
            ):
                continue  # dbt's generic tests: counted, not listed
            status = "passed" if evaluation.passed else "FAILED"
            lines.append(
                f"  check {evaluation.asset_key.to_user_string()}.{evaluation.check_name}: {status}"
            )
    return lines


def model_lines(home: Path) -> list[str]:
    """The model comparison table and the gate's last decision, as the demo's closing summary (and
    bench/readme_results.py's)."""
    report = Lake(home).report("model_comparison.json")
    if not report.exists():
        return []
    lines = [
        "",
        "Recommenders (test, leave-one-out, full ranking):",
        f"  {'model':<12}{'version':>8}{'valid NDCG@10':>15}{'NDCG@10':>9}{'Recall@10':>11}{'MRR@10':>8}",
    ]
    for row in json.loads(report.read_text())["models"]:
        lines.append(
            f"  {row['model_name']:<12}{row['version']:>8}{row['valid_ndcg_at_10']:>15.4f}"
            f"{row['test_ndcg_at_10']:>9.4f}{row['test_recall_at_10']:>11.4f}{row['test_mrr_at_10']:>8.4f}"
        )
    from models import registry  # mlflow: imported only when there is something to show

    if (gate := registry.last_gate(registry.connect(Lake(home).mlflow_dir))) is not None:
        lines.append(
            f"  gate: {gate['decision']} ({gate['reason']}); champion = v{gate['champion']}"
        )
    lines.append(
        f"MLflow UI: .venv/bin/mlflow ui --backend-store-uri sqlite:///{home / 'mlflow' / 'mlflow.db'} "
        "--host 127.0.0.1 --port 5000"
    )
    return lines


def _summary(folder: Path) -> dict | None:
    """A partition's summary.json (judge, simulator), or None before that partition was written."""
    path = folder / "summary.json"
    return json.loads(path.read_text()) if path.exists() else None


def judge_lines(home: Path, date: str) -> list[str]:
    if (s := _summary(Lake(home).judge_evaluations(date))) is None:
        return []
    low, high = s["judge_auc_ci"]
    trust = "trusted" if s["trusted"] else "NOT trusted (CI lower bound < 0.60): verdicts withheld"
    if not s.get("verdicts_trusted", s["trusted"]):
        win = f"withheld ({s['withheld_reason']})" if s["trusted"] else "withheld"
    else:
        win = (
            "n/a (no order-consistent verdict)"
            if s["champion_win_rate"] is None
            else f"{s['champion_win_rate']:.2f}"
        )
    lines = [
        "",
        f"Judge ({s['judge']}, {s['n_users']} users, {date}):",
        f"  judge_auc {s['judge_auc']:.3f}, 95% CI [{low:.2f}, {high:.2f}] (held-out item vs random unseen; "
        f"0.5 = chance): {trust}",
        f"  position_bias_rate {s['position_bias_rate']:.2f}; {s['champion']['model_name']} vs "
        f"{s['baseline']['model_name']} win rate {win} (test NDCG@10 difference {s['test_ndcg10_difference']:+.4f})",
    ]
    lines += evaluator_lines(s)
    if s.get("test_ece") is not None:
        lines.append(
            f"  calibrated on the valid split; ECE on these test items {s['test_ece']:.3f}"
        )
    if s.get("judge_agreement"):
        lines.append(f"  second judge agreement: {s['judge_agreement']}")
    return lines


def evaluator_lines(s: dict) -> list[str]:
    """The evaluator split's check of a judge or simulator summary (docs/evaluators.md)."""
    negatives = s.get("auc_by_negatives") or {}
    lines = []
    if negatives:
        lines.append(
            "  AUC by negatives: "
            + "; ".join(
                f"{kind} {n['auc']:.3f} [{n['ci'][0]:.2f}, {n['ci'][1]:.2f}] (popularity "
                f"{n['popularity_auc']:.3f})"
                for kind, n in negatives.items()
            )
        )
    if s.get("ladder_tau"):
        ladders = ", ".join(
            f"{name} {'n/a' if tau is None else f'{tau:+.2f}'}"
            for name, tau in s["ladder_tau"].items()
        )
        lines.append(f"  ladder tau (>= 0.8 to trust): {ladders}")
    if s.get("verdict_truth_ci"):
        low, high = s["verdict_truth_ci"]
        lines.append(
            f"  verdicts vs held-out events (evaluator split, every pair of models): agree on "
            f"{s['verdict_truth_agreement']:.2f} [{low:.2f}, {high:.2f}] of {s['n_decisive']} "
            "decided cases"
        )
    return lines


def simulation_lines(home: Path, date: str) -> list[str]:
    if (s := _summary(Lake(home).simulations(date))) is None:
        return []
    low, high = s["heldout_pick_ci"]
    tau = "n/a" if s["kendall_tau"] is None else f"{s['kendall_tau']:+.2f}"
    rates = ", ".join(f"{name} {m['pick_rate']:.3f}" for name, m in s["pick_rate_by_model"].items())
    return [
        "",
        f"Simulated users ({s['simulator']}, {s['n_users']} users, {date}): held-out pick rate "
        f"{s['heldout_pick_rate']:.3f} [{low:.2f}, {high:.2f}] vs 1/K {s['chance_pick_rate']:.2f}; Kendall tau "
        f"{tau} vs offline NDCG@10 over {s['n_models']} models: "
        + (
            f"trusted; pick rates {rates}"
            if s["trusted"]
            else f"advisory, pick rates withheld ({s['advisory_reason']})"
        ),
        *evaluator_lines(s),
    ]
