"""The code location loads, and its shape is what users and later stages rely on."""

import dagster as dg
import pytest

from orchestration.definitions import PIPELINE_JOB, defs


def test_definitions_load_and_resolve():
    repository = defs.get_repository_def()
    assert repository.get_job(PIPELINE_JOB) is not None
    dg.Definitions.validate_loadable(defs)


def test_the_daily_loop_runs_by_event_day_from_the_landing_sensor():
    """Raw interactions and the per-record models share the nightly stages' daily partitions (a
    range of days is one run), and the landing sensor, on by default, starts the day's two jobs."""
    repository = defs.get_repository_def()
    graph = defs.resolve_asset_graph()
    for name in ("raw_interactions", "raw_items", "fct_interactions", "batch_recommendations",
                 "shadow_recommendations", "served_outcomes"):  # fmt: skip
        node = graph.get(dg.AssetKey(name))
        assert isinstance(node.partitions_def, dg.DailyPartitionsDefinition), name
        assert node.backfill_policy == dg.BackfillPolicy.single_run(), name
    assert graph.get(dg.AssetKey("splits")).partitions_def is None  # a whole table
    sensor = repository.get_sensor_def("landing_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.RUNNING
    assert {job.name for job in sensor.jobs} == {"daily_update", "nightly_retrain", "serve_lists"}
    daily = repository.get_job("daily_update").asset_layer.executable_asset_keys
    assert dg.AssetKey("training_set") not in daily and dg.AssetKey("user_profiles") in daily
    # a landed day scores the lists served on it; the lists of the next day are serve_lists'
    assert dg.AssetKey("served_outcomes") in daily
    assert dg.AssetKey("batch_recommendations") not in daily
    lists = repository.get_job("serve_lists").asset_layer.executable_asset_keys
    assert dg.AssetKey("shadow_recommendations") in lists


def test_asset_groups_and_contract_tables():
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    for name in ["raw_interactions", "raw_items", "raw_users", "raw_item_tags"]:
        assert groups[name] == "ingest"
    for name in [
        "stg_interactions",
        "fct_interactions",
        "quarantine_interactions",
        "splits",
        "dim_items",
        "dim_users",
        "feat_user_stats",
        "feat_item_stats",
    ]:
        assert groups[name] == "transform"


def test_fct_checks_are_blocking_and_gate_the_marts():
    graph = defs.resolve_asset_graph()
    fct = dg.AssetKey("fct_interactions")
    specs = {
        key.name: graph.get_check_spec(key)
        for key in graph.asset_check_keys
        if key.asset_key == fct
    }
    assert specs["fct_interactions_expectations"].blocking
    assert specs["raw_rows_reconcile"].blocking
    # the dbt tests on fct_interactions are checks too
    assert any(name.startswith("unique_combination_fct_interactions") for name in specs)
    assert fct in graph.get(dg.AssetKey("splits")).parent_keys


def test_every_python_asset_has_a_code_version():
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        assert graph.get(key).code_version, f"{key.to_user_string()} has no code version"


def test_stage_groups_and_the_nightly_job():
    graph = defs.resolve_asset_graph()
    groups = {key.to_user_string(): graph.get(key).group_name for key in graph.get_all_asset_keys()}
    # suspicious_users runs before training and feeds it: it belongs to the training group
    assert groups["suspicious_users"] == "training"
    assert {groups[name] for name in ("popularity_model", "champion_model")} == {"training"}
    nightly = defs.resolve_job_def("batch_scoring")
    assert {key.to_user_string() for key in nightly.asset_layer.selected_asset_keys} == {
        "batch_recommendations",
        "online_recommendations",
        "shadow_recommendations",
        "judge_evaluations",
        "simulated_feedback",
    }


def test_the_long_stages_take_their_per_run_knobs_as_run_config():
    """The judge's, the simulator's and the trainers' knobs are run config in the launchpad; an
    empty field keeps the resource's value (its variable), a set one replaces it, out of range fails."""
    import pydantic

    from orchestration.defs.evaluation.resources import (
        JudgeResource,
        JudgeRunConfig,
        SimulatorRunConfig,
    )

    expected = {
        "judge_evaluations": {"n_users", "k", "n_random", "seed"},
        "simulated_feedback": {"n_users", "page_size", "max_models", "seed"},
        "sasrec_model": {"seed", "max_epochs", "patience"},
        "two_stage_model": {"seed", "two_stage_n"},
    }
    for asset, fields in expected.items():
        schema = defs.resolve_assets_def(asset).node_def.config_schema.as_field().config_type
        assert set(schema.fields) == fields, asset
        assert not any(field.is_required for field in schema.fields.values()), asset
    judge = JudgeResource(n_users=200, seed=0)
    assert judge.model_copy(update=JudgeRunConfig().overrides()) == judge
    assert judge.model_copy(update=JudgeRunConfig(n_users=7).overrides()).n_users == 7
    with pytest.raises(pydantic.ValidationError):
        SimulatorRunConfig(page_size=50)


def test_the_pipeline_job_leaves_the_protocol_refits_out_when_told():
    """RECLAKE_PROTOCOLS=0 (training.protocol_evaluations): the pipeline job, and so `reclake demo`
    and the replay's training run, skip the protocol refits; the assets stay, for a run of their own."""
    from orchestration.definitions import build_defs
    from orchestration.defs.training.protocols import PROTOCOL_ASSETS
    from orchestration.defs.training.resources import TrainingResource

    protocols = {dg.AssetKey(key) for key in PROTOCOL_ASSETS}
    for enabled in (True, False):
        defs = build_defs(training=TrainingResource(protocol_evaluations=enabled))
        in_job = set(defs.resolve_job_def(PIPELINE_JOB).asset_layer.selected_asset_keys)
        assert (protocols <= in_job) == enabled and (protocols & in_job == set()) != enabled
        assert protocols <= set(defs.resolve_asset_graph().materializable_asset_keys)
