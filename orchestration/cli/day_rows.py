"""One replayed day's row: what the day brought (read back from the warehouse), how the lists
served on it scored, the night's retrain and gate; kept in lake/replay/days.parquet and printed as
one line by `reclake replay` and `reclake demo` (replay.py)."""

from __future__ import annotations

import json

import pyarrow as pa

from orchestration.core.files import write_parquet_atomic
from orchestration.core.paths import Lake
from orchestration.core.warehouse import connect

DAY_SCHEMA = pa.schema(
    [
        ("date", pa.string()),
        ("events", pa.int64()),
        ("new_items", pa.int64()),
        ("new_users", pa.int64()),
        ("quarantined", pa.int64()),
        ("profiles_refreshed", pa.int64()),
        ("seconds", pa.float64()),
        ("run_id", pa.string()),
        # the lists served on this day, scored by its events (lake/outcomes/date=D/summary.json)
        ("scored_users", pa.int64()),
        ("served_hit_at_10", pa.float64()),
        ("popularity_7d_hit_at_10", pa.float64()),
        # with RECLAKE_NIGHTLY_RETRAIN=1: how tonight's models were trained, the gate's decision
        ("retrained", pa.string()),
        ("champion", pa.string()),
        ("gate", pa.string()),
    ]
)


def day_figures(paths: Lake, day: str) -> dict:
    """What one landed day brought, read back from the warehouse the day's run wrote."""
    with connect(paths.warehouse, read_only=True) as con:
        events = con.execute(
            "select count(*) from main.fct_interactions where landed_date = ?", [day]
        ).fetchone()[0]
        new_users = con.execute(
            "select count(*) from (select min(landed_date) as first_day from main.fct_interactions "
            "group by user_id) where first_day = ?",
            [day],
        ).fetchone()[0]
        quarantined = con.execute(
            "select count(*) from main.quarantine_interactions where landed_date = ?", [day]
        ).fetchone()[0]
    return {"events": events, "new_users": new_users, "quarantined": quarantined}


def outcome_figures(paths: Lake, day: str) -> dict:
    """The served list's and the 7-day-popularity shadow's next-day hit@10 on `day`, if scored."""
    path = paths.outcomes(day) / "summary.json"
    summary = json.loads(path.read_text()) if path.exists() else {"by_model": {}}
    models = summary["by_model"].values()
    served = next((m["hit_at_10"] for m in models if m["role"] == "served"), None)
    popular = summary["by_model"].get("popularity_7d", {}).get("hit_at_10")
    return {"scored_users": summary.get("n_users"), "served_hit_at_10": served,
            "popularity_7d_hit_at_10": popular}  # fmt: skip


def retrain_figures(paths: Lake, results) -> dict:
    """How the night's retrain trained each model (`training` metadata: full or warm) and the
    champion and gate decision after it; empty when the night had no retrain run."""
    from models import registry

    trained = {
        event.asset_key.path[-1].removesuffix("_model"): event.materialization.metadata[
            "training"
        ].value
        for result in results
        for event in result.get_asset_materialization_events()
        if "training" in event.materialization.metadata
    }
    if not trained:
        return {}
    client = registry.connect(paths.mlflow_dir)
    gate = registry.last_gate(client)
    if gate is None or gate["champion"] is None:
        return {"retrained": _listed(trained)}
    version = client.get_model_version(registry.REGISTERED_MODEL, str(gate["champion"]))
    return {
        "retrained": _listed(trained),
        "champion": f"{version.tags.get('model_name')} v{gate['champion']}",
        "gate": f"{gate['decision']}: {gate['reason']}",
    }


def _listed(trained: dict) -> str:
    return ", ".join(f"{name} {kind}" for name, kind in sorted(trained.items()))


def record_day(paths: Lake, row: dict) -> None:
    """Upsert one day's row of lake/replay/days.parquet (a re-run replaces the day's row)."""
    import pyarrow.parquet as pq

    rows = []
    if paths.replay_days.exists():
        rows = [r for r in pq.read_table(paths.replay_days).to_pylist() if r["date"] != row["date"]]
    rows = sorted([*rows, row], key=lambda r: r["date"])
    write_parquet_atomic(pa.Table.from_pylist(rows, schema=DAY_SCHEMA), paths.replay_days)


def refreshed_profiles(results) -> int:
    """Profiles the day's runs wrote anew (not from the LLM cache), items and users together."""
    return sum(
        int(event.materialization.metadata["refreshed"].value)
        for result in results
        for event in result.get_asset_materialization_events()
        if "refreshed" in event.materialization.metadata
    )


DAY_HEADER = (
    f"{'date':<11}{'events':>7}{'new items':>10}{'new users':>10}{'quarantined':>12}"
    f"{'profiles':>9}{'seconds':>9}   next-day hit@10 served / popularity_7d (users)"
)


def day_line(row: dict) -> str:
    line = (
        f"{row['date']:<11}{row['events']:>7}{row['new_items']:>10}{row['new_users']:>10}"
        f"{row['quarantined']:>12}{row['profiles_refreshed']:>9}{row['seconds']:>9.1f}"
    )
    if row.get("served_hit_at_10") is None:
        return line + "   (no list served)"
    popular = row.get("popularity_7d_hit_at_10")
    line = (
        f"{line}   {row['served_hit_at_10']:.3f} / "
        f"{'-' if popular is None else f'{popular:.3f}'} ({row['scored_users']})"
    )
    if row.get("champion"):  # a nightly retrain ran
        line += f"   champion {row['champion']} ({row['gate'].split(':')[0]})"
    return line
