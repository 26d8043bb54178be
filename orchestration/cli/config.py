"""`reclake config`: every RECLAKE_* variable (core/variables.py) with its kind, its value in this
shell, its default, what it sets and where it is explained. `--markdown` prints the defaults as
docs/configuration.md's table (tests/test_cli.py keeps the two equal); `--json` the same rows."""

from __future__ import annotations

import json
import os

from orchestration.core.settings import VARIABLES

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
    """Every RECLAKE_* variable: its kind, its value in `environ` (or None), its default, what it
    sets and the run config it is the default of."""
    rows = []
    for v in VARIABLES:
        default = v.default
        if v.name == "RECLAKE_NIGHTLY_AT":
            default = "{:02d}:{:02d}".format(*default)
        rows.append(
            {
                "variable": v.name,
                "kind": v.kind,
                "value": environ.get(v.name) or None,
                "default": default,
                "sets": f"{v.resource}.{v.field}" if v.resource else "definitions",
                "run_config": v.run_config,
                "docs": DOCS[v.resource],
            }
        )
    return rows


def _markdown(rows: list[dict]) -> list[str]:
    lines = [
        "| variable | kind | default | sets | run config | explained in |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        default = "—" if r["default"] is None else f"`{r['default']}`"
        run_config = "—" if r["run_config"] is None else f"`{r['run_config']}`"
        lines.append(
            f"| `{r['variable']}` | {r['kind']} | {default} | `{r['sets']}` | {run_config} | "
            f"[{r['docs']}]({r['docs'].split(',')[0].removeprefix('docs/')}) |"
        )
    return lines


def print_settings(args) -> int:
    rows = settings_rows({} if args.markdown else os.environ)
    if args.json:
        print(json.dumps(rows, indent=2, default=str))
    elif args.markdown:
        print("\n".join(_markdown(rows)))
    else:
        width = max(len(r["variable"]) for r in rows)
        kind_width = max(len(r["kind"]) for r in rows)
        for r in rows:
            shown = (
                f"{r['value']}  (default {r['default']})"
                if r["value"]
                else f"{r['default']}  (default)"
            )
            if r["run_config"]:
                shown += f"  run config: {r['run_config']}"
            print(f"{r['variable']:<{width}}  {r['kind']:<{kind_width}}  {shown}")
    return 0
