"""MLflow tracking, registration and the champion gate, on a real sqlite-backed MLflow in a temp home."""

import shutil
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import pytest

from models import registry
from models.recsys.catalog import EASE, Popularity
from models.recsys.metrics import evaluate


def _register(client, model, data, home: Path, data_version="dv1"):
    fit = model.fit(data, log=lambda _: None)
    candidate = registry.log_and_register(
        client,
        model,
        data,
        fit,
        evaluate(model, data, "valid"),
        evaluate(model, data, "test"),
        workdir=home / "work",
        run_tags={"dagster_run_id": "test"},
        plots=[],
        version_tags={"dataset": "ml-100k-slice", "data_version": data_version},
    )
    registry.mark_complete(client, candidate.version)  # as the training asset does
    return candidate


@pytest.fixture
def client(tmp_path):
    return registry.connect(tmp_path / "mlflow")


def test_run_is_logged_and_version_serves_through_pyfunc(client, slice_data, tmp_path, monkeypatch):
    candidate = _register(client, EASE(EASE.Config(lambdas=(50.0, 200.0))), slice_data, tmp_path)
    run = client.get_run(candidate.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.params["model_name"] == "ease" and "test_ndcg_at_10" in run.data.metrics
    assert [
        m.step for m in client.get_metric_history(candidate.run_id, "grid_valid_ndcg_at_10")
    ] == [0, 1]
    version = client.get_model_version(registry.REGISTERED_MODEL, candidate.version)
    assert version.tags["model_name"] == "ease" and version.tags["data_version"] == "dv1"
    assert registry.artifacts_present(client, candidate.version)

    # as a user loads it: MLflow's own models:/ URI, with the tracking URI from the environment
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.tracking_uri(tmp_path / "mlflow"))
    served = mlflow.pyfunc.load_model(f"models:/{registry.REGISTERED_MODEL}/{candidate.version}")
    user = str(slice_data.users[0])
    recs = served.predict(pd.DataFrame({"user_id": [user]}), params={"k": 7})
    assert list(recs.columns) == ["user_id", "item_id", "rank", "score"]
    assert len(recs) == 7 and set(recs["user_id"]) == {user}


def test_gate_promotes_the_best_and_keeps_the_champion_when_the_new_one_is_worse(
    client, slice_data, tmp_path
):
    good = _register(client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path)
    weak = _register(client, Popularity(Popularity.Config()), slice_data, tmp_path)
    assert good.valid_ndcg10 > weak.valid_ndcg10
    first = registry.gate(client, "dv1")
    assert first["decision"] == "promote" and first["champion"] == good.version
    assert (
        str(client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion").version)
        == good.version
    )

    # a newer EASE version that is worse on valid (absurd regularization) must not take over
    worse = _register(client, EASE(EASE.Config(lambdas=(1e7,))), slice_data, tmp_path)
    assert worse.valid_ndcg10 < good.valid_ndcg10
    second = registry.gate(client, "dv1")
    assert second["decision"] == "keep" and second["champion"] == good.version
    assert second["champion_before_valid_ndcg@10"] == pytest.approx(good.valid_ndcg10)
    assert (
        str(client.get_model_version_by_alias(registry.REGISTERED_MODEL, "champion").version)
        == good.version
    )
    assert (
        "keep"
        in client.get_model_version(registry.REGISTERED_MODEL, worse.version).tags["gate_decision"]
    )


def test_gate_prefers_the_simpler_model_within_noise_scripted_scores(
    client, slice_data, tmp_path, monkeypatch
):
    # per-user valid scores are logged with each version; here they are scripted (fault injection)
    # so that EASE's lead over popularity is 0.01 on 400 users with a per-user spread of 0.3: noise
    ease = _register(client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path)
    pop = _register(client, Popularity(Popularity.Config()), slice_data, tmp_path)
    logged = registry.valid_by_user(
        client, client.get_model_version(registry.REGISTERED_MODEL, ease.version)
    )
    assert len(logged) == len(slice_data.eval_users("valid"))  # the real per-user scores are there
    assert logged.mean() == pytest.approx(ease.valid_ndcg10)
    rng = np.random.default_rng(0)
    base = pd.Series(rng.uniform(0, 0.3, 400), index=[f"u{k}" for k in range(400)])
    scripted = {ease.version: base + 0.01 + rng.normal(0, 0.3, 400), pop.version: base}
    monkeypatch.setattr(
        registry.gating, "valid_by_user", lambda client, v: scripted[str(v.version)]
    )
    decision = registry.gate(client, "dv1")
    assert decision["champion"] == pop.version and "simplest within noise" in decision["reason"]
    low, high = decision["candidates"]["popularity"]["best_minus_this_ci95"]
    assert low < 0 < high

    # a clear lead (0.05, spread 0.01) is beyond noise: EASE replaces the simpler champion
    scripted[ease.version] = base + 0.05 + rng.normal(0, 0.01, 400)
    decision = registry.gate(client, "dv1")
    assert decision["decision"] == "promote" and decision["champion"] == ease.version
    assert "above 0" in decision["reason"]


def test_gate_never_points_champion_at_missing_artifacts(client, slice_data, tmp_path):
    good = _register(client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path)
    registry.gate(client, "dv1")
    weak = _register(client, Popularity(Popularity.Config()), slice_data, tmp_path)
    # the champion's files vanish (a wiped artifact store): the next gate must move the alias
    shutil.rmtree(registry.local_artifact_dir(client, good.version))
    decision = registry.gate(client, "dv1")
    assert decision["decision"] == "promote" and decision["champion"] == weak.version
    assert "missing" in decision["reason"]


def test_gate_compares_only_on_the_same_data_version(client, slice_data, tmp_path):
    old = _register(
        client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path, data_version="dv-old"
    )
    registry.gate(client, "dv-old")
    new = _register(
        client, Popularity(Popularity.Config()), slice_data, tmp_path, data_version="dv-new"
    )
    decision = registry.gate(client, "dv-new")
    assert decision["candidates"].keys() == {
        "popularity"
    }  # the old data version's EASE is no candidate
    assert decision["champion"] == new.version and "another data version" in decision["reason"]
    assert old.version != new.version


def test_gate_reads_next_day_outcomes_before_changing_the_served_model(
    client, slice_data, tmp_path, monkeypatch
):
    """With enough days of outcomes, the offline favourite (EASE, scripted clear lead on valid)
    replaces the served popularity only if its shadow lists beat the served ones beyond noise."""
    first_pop = _register(client, Popularity(Popularity.Config()), slice_data, tmp_path, "dv1")
    registry.gate(client, "dv1")
    ease = _register(client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path, "dv2")
    pop = _register(client, Popularity(Popularity.Config()), slice_data, tmp_path, "dv2")
    rng = np.random.default_rng(0)
    base = pd.Series(rng.uniform(0, 0.3, 400), index=[f"u{k}" for k in range(400)])
    scripted = {ease.version: base + 0.05 + rng.normal(0, 0.01, 400), pop.version: base}
    monkeypatch.setattr(
        registry.gating, "valid_by_user", lambda client, v: scripted[str(v.version)]
    )

    def outcomes(low, high):  # what models.evaluation.outcomes.challenger_evidence returns
        shadow = {
            "minus_served": (low + high) / 2,
            "minus_served_ci": [low, high],
            "user_days": 900,
        }
        return {"last_day": "1998-04-20", "days": 21, "shadows": {"ease": shadow}}

    decision = registry.gate(client, "dv2", outcomes(-0.02, 0.03))
    assert decision["champion"] == pop.version != first_pop.version  # popularity, retrained
    assert "not above 0; popularity stays" in decision["reason"]
    decision = registry.gate(client, "dv2", outcomes(0.01, 0.05))
    assert decision["decision"] == "promote" and decision["champion"] == ease.version
    assert "ease's shadow hit@10 minus the served lists' in [0.0100, 0.0500]" in decision["reason"]
    # no shadow evidence for the offline favourite, and the served model not retrained: keep
    client.set_registered_model_alias(registry.REGISTERED_MODEL, "champion", first_pop.version)
    only_ease = _register(client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path, "dv4")
    scripted[only_ease.version] = base + 0.05
    decision = registry.gate(client, "dv4", {"last_day": "1998-04-20", "days": 21, "shadows": {}})
    assert decision["decision"] == "keep" and decision["champion"] == first_pop.version
    assert "ease has no shadow lists" in decision["reason"]


def test_gate_lets_any_shadow_that_beats_the_served_lists_take_over(
    client, slice_data, tmp_path, monkeypatch
):
    """The offline favourite is the served model's (popularity, scripted ahead on valid), but EASE's
    shadow lists beat the served ones beyond noise next day: EASE takes over, and the reason names
    the evidence. A shadow inside noise, or a model without a version on this data, does not."""
    _register(client, Popularity(Popularity.Config()), slice_data, tmp_path, "dv1")
    registry.gate(client, "dv1")
    ease = _register(client, EASE(EASE.Config(lambdas=(50.0,))), slice_data, tmp_path, "dv2")
    pop = _register(client, Popularity(Popularity.Config()), slice_data, tmp_path, "dv2")
    base = pd.Series(
        np.random.default_rng(0).uniform(0, 0.3, 400), index=[f"u{k}" for k in range(400)]
    )
    scripted = {ease.version: base, pop.version: base + 0.05}
    monkeypatch.setattr(
        registry.gating, "valid_by_user", lambda client, v: scripted[str(v.version)]
    )

    def shadow(low, high):
        return {"minus_served": (low + high) / 2, "minus_served_ci": [low, high], "user_days": 900}

    inside = {"ease": shadow(-0.01, 0.04), "sasrec": shadow(0.05, 0.09)}  # sasrec: no version here
    decision = registry.gate(
        client, "dv2", {"last_day": "1998-04-20", "days": 21, "shadows": inside}
    )
    assert decision["champion"] == pop.version
    assert "popularity is already the served model; no shadow beats it" in decision["reason"]
    beyond = {
        "ease": shadow(0.02, 0.06),
        "popularity_7d": shadow(0.03, 0.08),
    }  # a baseline, no model
    decision = registry.gate(
        client, "dv2", {"last_day": "1998-04-20", "days": 21, "shadows": beyond}
    )
    assert decision["decision"] == "promote" and decision["champion"] == ease.version
    assert "ease's shadow hit@10 minus the served lists' in [0.0200, 0.0600]" in decision["reason"]


def test_crash_while_logging_leaves_no_model_version_fault_injected(
    client, slice_data, tmp_path, monkeypatch
):
    model = Popularity(Popularity.Config())

    def broken_state():  # fault injection: the checkpoint cannot be written
        raise OSError("disk full")

    monkeypatch.setattr(model, "state", broken_state)
    with pytest.raises(OSError, match="disk full"):
        _register(client, model, slice_data, tmp_path)
    assert client.search_model_versions(f"name='{registry.REGISTERED_MODEL}'") == []
    runs = client.search_runs([client.get_experiment_by_name(registry.EXPERIMENT).experiment_id])
    assert [r.info.status for r in runs] == ["FAILED"]
