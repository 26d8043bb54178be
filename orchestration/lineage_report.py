"""`reclake lineage`: from one recommendation partition back to the raw file rows it came from.

    chain = lineage_chain(home, "2026-11-26", user="1")    # a dict (what `--json` prints)
    print(render_tree(chain))                               # the same as a readable tree

Every link is read from what the stages wrote, never from a run's memory: the partition's parquet
(model name + version) -> the MLflow registry (version -> run, its lineage tags) -> the warehouse
(`splits` data version, recomputed and compared with the run's tag) -> the dbt manifest (the models
between `splits` and the raw sources) -> `lake/raw/<dataset>/dataset.json` (raw file sha256) and,
for one user, `fct_interactions`' source_file/source_row.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from models import registry
from models.common.files import sha256_file
from orchestration.core.lineage import dbt_manifest_sha256, raw_files_sha256
from orchestration.core.paths import Lake
from orchestration.core.settings import DBT_PROJECT_DIR
from orchestration.core.warehouse import connect, table_fingerprint

RUN_TAGS = (
    "dagster_run_id",
    "dagster_asset_key",
    "git_commit",
    "dbt_manifest_sha256",
    "data_version",
    "dataset",
)


class LineageError(RuntimeError):
    pass


def _dbt_chain(model: str = "splits") -> list[dict]:
    """Each dbt node from `model` back to its sources, with its parents (from the manifest)."""
    manifest_path = DBT_PROJECT_DIR / "target" / "manifest.json"
    if not manifest_path.exists():
        return []
    parents = json.loads(manifest_path.read_text())["parent_map"]
    chain, todo, seen = [], [f"model.reclake.{model}"], set()
    while todo:
        node = todo.pop(0)
        if node in seen:
            continue
        seen.add(node)
        node_parents = sorted(parents.get(node, []))
        # "model.reclake.splits" -> model splits; "source.reclake.raw.items" -> source raw.items
        chain.append(
            {
                "node": node.split(".", 2)[-1],
                "kind": node.split(".", 1)[0],
                "parents": [p.split(".", 2)[-1] for p in node_parents],
            }
        )
        todo += node_parents
    return chain


def _user_rows(warehouse: Path, user: str) -> dict:
    with connect(warehouse) as con:
        rows = con.execute(
            "select f.source_file, f.source_row, f.item_id, f.rating, f.event_ts, s.split "
            "from main.fct_interactions f left join main.splits s "
            "  on s.user_id = f.user_id and s.item_id = f.item_id and s.event_ts = f.event_ts "
            "where f.user_id = ? order by f.source_file, f.source_row",
            [user],
        ).df()
        quarantined = con.execute(
            "select count(*) from main.quarantine_interactions where user_id = ?", [user]
        ).fetchone()[0]
    rows["event_ts"] = rows["event_ts"].astype(str)
    return {"raw_rows": rows.to_dict("records"), "quarantined_rows": int(quarantined)}


def lineage_chain(home: Path, date: str, user: str | None = None) -> dict:
    lake = Lake(home)
    partition = lake.recommendations(date)
    if not partition.exists():
        raise LineageError(
            f"no recommendation partition for {date}: {partition} does not exist "
            "(materialize batch_recommendations for that date)"
        )
    recs = pd.read_parquet(partition)
    models = recs[["model_name", "model_version"]].drop_duplicates().to_dict("records")
    if len(models) != 1:
        raise LineageError(f"{partition}: expected one model version, found {models}")
    model_name, version = models[0]["model_name"], str(models[0]["model_version"])
    chain: dict = {
        "partition": {
            "date": date,
            "path": str(partition),
            "sha256": sha256_file(partition),
            "rows": len(recs),
            "users": int(recs["user_id"].nunique()),
            "model_name": model_name,
            "model_version": version,
        }
    }

    client = registry.connect(lake.mlflow_dir)
    mv = client.get_model_version(registry.REGISTERED_MODEL, version)
    chain["model_version"] = {
        "registered_model": registry.REGISTERED_MODEL,
        "version": version,
        "aliases": list(mv.aliases),
        "source": mv.source,
        "tags": {k: v for k, v in mv.tags.items()},
    }
    run = client.get_run(mv.run_id)
    chain["mlflow_run"] = {
        "run_id": run.info.run_id,
        "run_name": run.info.run_name,
        "experiment_id": run.info.experiment_id,
        **{k: run.data.tags.get(k) for k in RUN_TAGS},
        "input_versions": {
            k: v
            for k, v in run.data.tags.items()
            if k.endswith("_sha256") and k not in ("dbt_manifest_sha256", "raw_files_sha256")
        },
        "test_ndcg_at_10": run.data.metrics.get("test_ndcg_at_10"),
    }

    warehouse = lake.warehouse
    with connect(warehouse) as con:
        split_rows, split_version = table_fingerprint(con, "splits")
    chain["training_set"] = {
        "table": "main.splits",
        "data_version_at_training": run.data.tags.get("data_version"),
        "data_version_now": split_version,
        "rows_now": split_rows,
        "unchanged_since_training": run.data.tags.get("data_version") == split_version,
    }
    chain["dbt"] = {
        "manifest_sha256_at_training": run.data.tags.get("dbt_manifest_sha256"),
        "manifest_sha256_now": dbt_manifest_sha256(),
        "models": _dbt_chain("splits"),
    }
    raw_facts = lake.ingested_datasets()
    raws = [json.loads(p.read_text()) for p in raw_facts]
    dataset = run.data.tags.get("dataset")
    raw = next((r for r in raws if r["dataset"] == dataset), raws[0] if raws else None)
    chain["raw"] = raw and {
        "dataset": raw["dataset"],
        "files": raw["files"],
        "at_training": run.data.tags.get("raw_files_sha256"),
        "unchanged_since_training": run.data.tags.get("raw_files_sha256")
        == raw_files_sha256(raw_facts[raws.index(raw)]),
    }
    if user is not None:
        mine = recs[recs["user_id"] == user].sort_values("rank")
        if mine.empty:
            raise LineageError(f"user {user!r} has no recommendations in {partition}")
        chain["user"] = {
            "user_id": user,
            "recommendations": mine[["rank", "item_id", "score"]].to_dict("records"),
            **_user_rows(warehouse, user),
        }
    return chain


def _short(value: str | None, n: int = 12) -> str:
    return "?" if value is None else str(value)[:n]


def render_tree(chain: dict, max_user_rows: int = 15) -> str:
    p, mv, run, ts, dbt = (
        chain["partition"],
        chain["model_version"],
        chain["mlflow_run"],
        chain["training_set"],
        chain["dbt"],
    )
    lines = [
        f"recommendations date={p['date']}: {p['rows']:,} rows, {p['users']:,} users, sha256 {_short(p['sha256'])}",
        f"  {p['path']}",
        f"└─ model {mv['registered_model']} v{mv['version']} ({p['model_name']})"
        + (f" [{', '.join('@' + a for a in mv['aliases'])}]" if mv["aliases"] else ""),
        f"   └─ MLflow run {run['run_id']} '{run['run_name']}' (test NDCG@10 {run['test_ndcg_at_10']:.4f})",
        f"      tags: dagster run {run['dagster_run_id']}, asset {run['dagster_asset_key']}, "
        f"git {_short(run['git_commit'])}",
        f"      ├─ training set {ts['table']}: data version {ts['data_version_at_training']}"
        + (
            " (unchanged since)"
            if ts["unchanged_since_training"]
            else f" (now {ts['data_version_now']}: changed since)"
        ),
    ]
    for name, digest in run["input_versions"].items():
        lines.append(f"      ├─ {name.removesuffix('_sha256')}: sha256 {_short(digest)}")
    same = dbt["manifest_sha256_at_training"] == dbt["manifest_sha256_now"]
    lines.append(
        f"      └─ dbt manifest sha256 {_short(dbt['manifest_sha256_at_training'])}"
        + (
            " (the current project)"
            if same
            else f" (current project: {_short(dbt['manifest_sha256_now'])})"
        )
    )
    for node in dbt["models"]:
        arrow = " <- " + ", ".join(node["parents"]) if node["parents"] else ""
        lines.append(f"         {node['kind']} {node['node']}{arrow}")
    raw = chain["raw"]
    if raw:
        if raw["at_training"] is None:
            note = " (the training run did not record them):"
        elif raw["unchanged_since_training"]:
            note = " (the same files the model was trained on):"
        else:
            note = f" (changed since training; then {raw['at_training']}):"
        lines.append(f"         └─ raw files of dataset {raw['dataset']}{note}")
        for f in raw["files"]:
            lines.append(f"            {f['file']}: sha256 {f['sha256']} ({f['rows']:,} rows)")
    if "user" in chain:
        u = chain["user"]
        items = ", ".join(str(r["item_id"]) for r in u["recommendations"][:10])
        lines += [
            "",
            f"user {u['user_id']}: recommended {items}{' ...' if len(u['recommendations']) > 10 else ''}",
            f"  from {len(u['raw_rows'])} raw rows ({u['quarantined_rows']} quarantined):",
        ]
        for r in u["raw_rows"][:max_user_rows]:
            lines.append(
                f"  {r['source_file']} line {r['source_row']}: item {r['item_id']} rating {r['rating']} "
                f"at {r['event_ts']} -> {r['split']}"
            )
        if len(u["raw_rows"]) > max_user_rows:
            lines.append(f"  ... {len(u['raw_rows']) - max_user_rows} more (--json lists all)")
    return "\n".join(lines)
