"""The `reclake` command: run the whole pipeline on the configured dataset and say what it made.

reclake demo          materialize every asset and check into RECLAKE_HOME (default ./.reclake)
reclake fetch-data    download ML-100K (recbole wheel via pip) into the cache, verify sha256
reclake paths         where state lives
reclake llm serve     an OpenAI-compatible server (127.0.0.1) over the embedded or hf backend
reclake recommend --user U [--k 10] [--date D] [--json]
                      one user's list: the online store, a batch partition, or the champion now
reclake config [--markdown | --json]
                      every RECLAKE_* setting: its value here, its default, where it is explained
reclake lineage --date D [--user U] [--json]
                      a recommendation partition's chain back to the raw file rows
reclake data synth --users N --items M --interactions K --out DIR [--seed S] [--malformed-share F]
                      a synthetic dataset in the generic folder format (scale tests, benchmarks)
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from orchestration.core.datasets import DatasetError
from orchestration.core.paths import Lake
from orchestration.core.settings import (
    SettingError,
    apply_process_switches,
    check_environment,
    dagster_home,
    ensure_dagster_home,
    home_from_env,
    parse_dbt_project,
    resource_fields,
)


def _step_failures(result) -> list[str]:
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


def _check_lines(result) -> list[str]:
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
    if s.get("verdict_truth_n"):
        low_t, high_t = s["verdict_truth_ci"]
        lines.append(
            f"  list verdict vs held-out truth: agrees on {s['verdict_truth_agreement']:.2f} "
            f"[{low_t:.2f}, {high_t:.2f}] "
            f"of {s['verdict_truth_n']} users whose test item is in exactly one list"
        )
    if s.get("test_ece") is not None:
        lines.append(
            f"  calibrated on the valid split; ECE on these test items {s['test_ece']:.3f}"
        )
    if s.get("judge_agreement"):
        lines.append(f"  second judge agreement: {s['judge_agreement']}")
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
    ]


def run_pipeline() -> int:
    home = home_from_env()
    instance_dir = ensure_dagster_home(home)
    from orchestration.core.resources import LakeResource

    spec = LakeResource(
        **resource_fields("lake", env_vars=False)
    ).spec()  # a bad dataset fails here, before anything runs
    print(f"reclake: dataset {spec.name}, data home {home}")
    print("reclake: parsing the dbt project ...", flush=True)
    parse_dbt_project()

    import dagster as dg

    from orchestration.core.partitions import daily_partitions
    from orchestration.definitions import PIPELINE_JOB, defs

    today = daily_partitions.get_last_partition_key()  # the serving group scores today's partition
    started = time.monotonic()
    from orchestration.core.runs import mark_orphaned_runs, wait_for_other_runs, worker_tags

    with dg.DagsterInstance.from_config(str(instance_dir)) as instance:
        for run_id in mark_orphaned_runs(instance):
            print(f"reclake: run {run_id} was left STARTED by a killed process: marked failed")
        wait_for_other_runs(instance)  # e.g. a run launched from the UI, or the champion sensor's
        result = defs.resolve_job_def(PIPELINE_JOB).execute_in_process(
            instance=instance, raise_on_error=False, partition_key=today, tags=worker_tags()
        )
    elapsed = time.monotonic() - started
    if not result.success:
        print(f"\nreclake: the pipeline FAILED after {elapsed:.1f}s:", file=sys.stderr)
        for message in _step_failures(result) or ["see the Dagster log above"]:
            print(f"  {message}", file=sys.stderr)
        return 1

    print(f"\nreclake: materialized in {elapsed:.1f}s (run {result.run_id})")
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION":
            materialization = event.event_specific_data.materialization
            rows = materialization.metadata.get("dagster/row_count")
            count = f"{rows.value:>9,} rows" if rows is not None else " " * 14
            kept = "  (unchanged: not recomputed)" if "skipped" in materialization.metadata else ""
            print(f"  {materialization.asset_key.to_user_string():<28}{count}{kept}")
    checks = [e for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    print(
        f"  {len(checks)} checks ran, {sum(not e.event_specific_data.passed for e in checks)} failed"
    )
    print(
        "\n".join(
            _check_lines(result)
            + model_lines(home)
            + judge_lines(home, today)
            + simulation_lines(home, today)
        )
    )
    print(f"\nWarehouse: {Lake(home).warehouse}   Lake: {Lake(home).path('lake')}")
    print("Open the Dagster UI with `make ui`, then http://127.0.0.1:3000")
    return 0


def serve_llm(args) -> int:
    from models.common.device import torch_threads
    from models.llm.server import serve
    from orchestration.core.resources import LLMResource

    settings = LLMResource(**resource_fields("llm", env_vars=False))
    if args.backend:
        settings = settings.model_copy(update={"backend": args.backend})
    if settings.backend == "openai":
        print(
            "reclake: `llm serve` serves a local model (embedded or hf), not another server",
            file=sys.stderr,
        )
        return 2
    backend = settings.load(home_from_env(), log=print)
    print(
        f"reclake llm: serving {backend.backend}:{backend.model} on http://{args.host}:{args.port}/v1",
        flush=True,
    )
    with torch_threads(settings.torch_threads):
        serve(backend, args.host, args.port)
    return 0


def print_lineage(home: Path, args) -> int:
    from orchestration.lineage_report import LineageError, lineage_chain, render_tree

    try:
        chain = lineage_chain(home, args.date, args.user)
    except LineageError as err:
        print(f"reclake lineage: {err}", file=sys.stderr)
        return 2
    print(json.dumps(chain, indent=2, default=str) if args.json else render_tree(chain))
    return 0


def print_recommendations(home: Path, engine: str, args) -> int:
    from orchestration.recommend import RecommendError, recommend, render

    try:
        answer = recommend(home, str(args.user), k=args.k, date=args.date, engine=engine)
    except RecommendError as err:
        print(f"reclake recommend: {err}", file=sys.stderr)
        return 2
    print(json.dumps(answer, indent=2) if args.json else render(answer))
    return 0


# where each resource's settings are explained
DOCS = {
    "lake": "docs/data.md",
    "llm": "docs/llm.md",
    "training": "docs/recommenders.md",
    "serving": "docs/serving.md",
    "judge": "docs/judge.md",
    "simulator": "docs/simulator.md",
    None: "docs/serving.md, docs/engines.md",
}


def settings_rows(environ) -> list[dict]:
    """Every RECLAKE_* variable: its value in `environ` (or None), its default, what it sets."""
    from orchestration.core.resources import LakeResource, LLMResource
    from orchestration.core.settings import VARIABLES
    from orchestration.defs.evaluation.resources import JudgeResource, SimulatorResource
    from orchestration.defs.serving.resources import ServingResource
    from orchestration.defs.training.resources import TrainingResource

    classes = {
        "lake": LakeResource,
        "llm": LLMResource,
        "training": TrainingResource,
        "serving": ServingResource,
        "judge": JudgeResource,
        "simulator": SimulatorResource,
    }
    rows = []
    for v in VARIABLES:
        default = classes[v.resource].model_fields[v.field].default if v.resource else v.default
        if v.name == "RECLAKE_NIGHTLY_AT":
            default = "{:02d}:{:02d}".format(*default)
        elif v.name == "RECLAKE_HOME":
            default = "./.reclake"  # home_from_env: the working directory's
        rows.append(
            {
                "variable": v.name,
                "value": environ.get(v.name) or None,
                "default": default,
                "sets": f"{v.resource}.{v.field}" if v.resource else "definitions",
                "docs": DOCS[v.resource],
            }
        )
    return rows


def print_settings(args) -> int:
    import os

    rows = settings_rows({} if args.markdown else os.environ)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif args.markdown:
        print("| variable | default | sets | explained in |\n|---|---|---|---|")
        for r in rows:
            default = "—" if r["default"] is None else f"`{r['default']}`"
            print(
                f"| `{r['variable']}` | {default} | `{r['sets']}` | "
                f"[{r['docs']}]({r['docs'].split(',')[0].removeprefix('docs/')}) |"
            )
    else:
        width = max(len(r["variable"]) for r in rows)
        for r in rows:
            shown = (
                f"{r['value']}  (default {r['default']})"
                if r["value"]
                else f"{r['default']}  (default)"
            )
            print(f"{r['variable']:<{width}}  {shown}")
    return 0


def synthesize(args) -> int:
    from orchestration.defs.ingest.synth import SynthConfig, write_synthetic_dataset

    try:
        config = SynthConfig(
            users=args.users,
            items=args.items,
            interactions=args.interactions,
            seed=args.seed,
            malformed_share=args.malformed_share,
            item_text=args.item_text,
            fmt=args.format,
        )
    except ValueError as err:
        print(f"reclake data synth: {err}", file=sys.stderr)
        return 2
    summary = write_synthetic_dataset(config, Path(args.out))
    print(
        f"reclake data synth: {summary['malformed_rows']:,} malformed rows; use it with "
        f"RECLAKE_DATASET={Path(args.out).resolve()}"
    )
    return 0


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reclake")
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "unknown (not installed)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="reclake", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--version", action="version", version=f"reclake {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="materialize every asset and check into RECLAKE_HOME")
    commands.add_parser("fetch-data", help="download and verify the configured dataset (ML-100K)")
    commands.add_parser("paths", help="print where reclake keeps its state").add_argument(
        "--json", action="store_true", help="machine-readable output"
    )
    llm = commands.add_parser("llm", help="LLM tools").add_subparsers(
        dest="llm_command", required=True
    )
    serve = llm.add_parser("serve", help="OpenAI-compatible HTTP server over a local model")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8011)
    serve.add_argument(
        "--backend", default=None, help="embedded (default) or hf (RECLAKE_LLM_MODEL_PATH)"
    )
    recommend = commands.add_parser(
        "recommend", help="one user's recommendations (online store, a partition, or scored now)"
    )
    recommend.add_argument("--user", required=True)
    recommend.add_argument("--k", type=int, default=10)
    recommend.add_argument(
        "--date", default=None, help="read that night's batch partition instead of the online store"
    )
    recommend.add_argument("--json", action="store_true", help="machine-readable output")
    config = commands.add_parser(
        "config", help="every RECLAKE_* setting: value, default, where it is explained"
    )
    config.add_argument(
        "--markdown", action="store_true", help="the defaults as docs/configuration.md's table"
    )
    config.add_argument("--json", action="store_true", help="machine-readable output")
    lineage = commands.add_parser(
        "lineage", help="a recommendation partition's chain back to the raw files"
    )
    lineage.add_argument("--date", required=True, help="the partition, YYYY-MM-DD")
    lineage.add_argument(
        "--user", default=None, help="also that user's list and raw rows (file, row number)"
    )
    lineage.add_argument("--json", action="store_true", help="machine-readable output")
    data = commands.add_parser("data", help="dataset tools").add_subparsers(
        dest="data_command", required=True
    )
    synth = data.add_parser(
        "synth", help="write a synthetic dataset (power-law items, sessions, malformed rows)"
    )
    synth.add_argument("--users", type=int, required=True)
    synth.add_argument("--items", type=int, required=True)
    synth.add_argument("--interactions", type=int, required=True)
    synth.add_argument(
        "--out", required=True, help="folder to write interactions.* and items.* into"
    )
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument(
        "--malformed-share", type=float, default=0.0, help="share of broken rows, e.g. 0.01"
    )
    synth.add_argument("--item-text", action="store_true", help="give items a description")
    synth.add_argument("--format", choices=("csv", "parquet"), default="csv")
    args = parser.parse_args(argv)
    if args.command == "data":
        return synthesize(args)
    if args.command == "config":
        return print_settings(args)

    apply_process_switches()
    try:
        check_environment()  # a bad RECLAKE_* value stops every command here, before any work
        if args.command == "demo":
            return run_pipeline()
        home = home_from_env()
        from orchestration.core.resources import LakeResource

        lake = LakeResource(**resource_fields("lake", env_vars=False))
        if args.command == "llm":
            return serve_llm(args)
        if args.command == "lineage":
            return print_lineage(home, args)
        if args.command == "recommend":
            return print_recommendations(home, lake.engine, args)
        if args.command == "fetch-data":
            print(lake.source_folder())
        elif args.command == "paths":
            paths = {
                "home": home,
                "warehouse": lake.warehouse_path,
                "raw": lake.raw_dir(),
                "dagster": dagster_home(home),
                "mlflow": lake.paths.mlflow_dir / "mlflow.db",
            }
            if args.json:
                print(json.dumps({label: str(path) for label, path in paths.items()}, indent=2))
            else:
                print("\n".join(f"{label:<10} {path}" for label, path in paths.items()))
        return 0
    except (DatasetError, SettingError) as err:
        print(f"reclake: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
