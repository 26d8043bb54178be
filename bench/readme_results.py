"""The README's demo output, regenerated from a data home: every accuracy figure the README shows
comes from here, so they are the default configuration's (what `make demo` trained and judged).

    make demo                                    # the default configuration, into $RECLAKE_HOME
    .venv/bin/python bench/readme_results.py [--home .reclake] [--date YYYY-MM-DD]

Prints the "Recommenders" block (model_comparison.json, the gate's last decision from MLflow) and
the "Judge" block (the newest judge_evaluations summary, or --date's) exactly as `reclake demo`
prints them, plus the models' configuration as MLflow logged it, to check it was the default.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from models import registry
from orchestration.cli.reports import judge_lines, model_lines, simulation_lines
from orchestration.core.paths import Lake
from orchestration.core.settings import home_from_env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--home", type=Path, default=None)
    parser.add_argument("--date", default=None, help="the judged partition (default: the newest)")
    args = parser.parse_args()
    home = Lake(args.home or home_from_env()).home
    report = Lake(home).report("model_comparison.json")
    if not report.exists():
        raise SystemExit(f"{report} not found: run `make demo` first")
    dates = sorted(
        p.name.removeprefix("date=")
        for p in Lake(home).path("lake", "judge_evaluations").glob("date=*")
    )
    date = args.date or (dates[-1] if dates else None)
    print(
        "\n".join(
            model_lines(home)
            + (judge_lines(home, date) + simulation_lines(home, date) if date else [])
        )
    )
    client = registry.connect(Lake(home).mlflow_dir)
    print("\nconfiguration as logged (MLflow params of each compared version):")
    for row in json.loads(report.read_text())["models"]:
        params = client.get_run(row["run_id"]).data.params
        tags = client.get_model_version(registry.REGISTERED_MODEL, row["version"]).tags
        shown = {
            k: params[k]
            for k in (
                "seed",
                "max_epochs",
                "patience",
                "item_text",
                "use_user_profile",
                "n",
                "groups",
            )
            if k in params
        }
        print(
            f"  {row['model_name']:<11} v{row['version']}: {shown}, users left out by the poisoning defence: "
            f"{tags.get('users_left_out', '-')}"
        )


if __name__ == "__main__":
    main()
